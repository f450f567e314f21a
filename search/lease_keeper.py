"""A run's lease, renewed on a thread of its own for as long as the run lives.

The scheduler's thread is busy for long stretches that have nothing to do with the lease:
an inline evaluation runs on it, and so does the proposer's ask (a model's reply under
its own timeout and retries, a slow fit). Renewed between polls, one of them longer than
the TTL (30 s by default) let the lease expire while the process was alive: ``atlas
status`` read ``stopped``, a plain ``atlas delete`` went through, and another ``atlas
resume`` took the campaign over. The keeper renews every third of the TTL, over a store
of its own (the run's store holds a connection for start charges that only the loop's
thread may use); the loop reads at its own heartbeat whether a renewal found the lease
gone.
"""

from __future__ import annotations

import logging
import threading

from archive.store import Store

log = logging.getLogger("entropy_atlas.scheduler")


class LeaseKeeper:
    """Renews ``holder``'s lease of campaign ``campaign_id`` in ``url`` until :meth:`stop`,
    or until a renewal finds it held by another or the campaign gone (``lost``)."""

    def __init__(self, url: str, campaign_id: int, holder: str, ttl_s: float) -> None:
        self.campaign_id = campaign_id
        self.holder = holder
        self.ttl_s = ttl_s
        self.lost = False
        self._store = Store(url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="atlas-lease", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                renewed = self._store.renew_lease(self.campaign_id, self.holder, self.ttl_s)
            except Exception as exc:  # a storage that is briefly away: the next renewal tries again
                log.warning("could not renew the campaign's lease: %s: %s", type(exc).__name__, exc)
                continue
            if not renewed:
                self.lost = True
                return

    def stop(self) -> None:
        """End the renewals (waiting for one under way) and close the keeper's store; the
        run's own store, closed after it, empties the WAL (:meth:`Store.close`)."""
        self._stop.set()
        self._thread.join()
        self._store.close(empty_wal=False)
