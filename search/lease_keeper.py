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

Before the run starts an evaluation it asks the keeper whether the lease is still its own
(:meth:`LeaseKeeper.holds`): known so where a renewal began less than half the TTL ago,
else (the process was paused past the lease: ``SIGSTOP``, Ctrl-Z, a frozen VM; or the
storage kept the keeper waiting) renewed on the asking thread first. A scheduler that went
on after such a pause while another took its campaign over had started the evaluations it
had queued, charging attempts on the new holder's rows, and stopped only at its next write.
The pause is measured on a clock that counts a suspended machine's sleep too
(``CLOCK_BOOTTIME`` where there is one).
"""

from __future__ import annotations

import logging
import threading
import time

from archive.store import Store

log = logging.getLogger("entropy_atlas.scheduler")


def elapsed_clock() -> float:
    """Seconds on a clock that never goes back and that counts the time a suspended machine
    slept (``CLOCK_BOOTTIME``; ``time.monotonic`` where there is none), so that a lease's
    age is its age however the process or the machine was paused."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class LeaseKeeper:
    """Renews ``holder``'s lease of campaign ``campaign_id`` in ``url`` until :meth:`stop`,
    or until a renewal finds it held by another or the campaign gone (``lost``).
    ``taken_at``: when the lease was taken (:func:`elapsed_clock`, read before the take)."""

    def __init__(self, url: str, campaign_id: int, holder: str, ttl_s: float, taken_at: float | None = None) -> None:
        self.campaign_id = campaign_id
        self.holder = holder
        self.ttl_s = ttl_s
        self.lost = False
        self._confirmed = elapsed_clock() if taken_at is None else taken_at  # when the last renewal began
        self._renewing = threading.Lock()  # one renewal at a time, the keeper's or an asking thread's
        self._store = Store(url)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="atlas-lease", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3) and not self.lost:
            try:
                self._renew()
            except Exception as exc:  # a storage that is briefly away: the next renewal tries again
                log.warning("could not renew the campaign's lease: %s: %s", type(exc).__name__, exc)

    def _renew(self) -> bool:
        """Renew the lease now; whether this scheduler still holds it (``lost`` once not).
        A renewal that began at ``t`` leaves the lease live until at least ``t`` + TTL."""
        with self._renewing:
            if self.lost:
                return False
            began = elapsed_clock()
            if self._store.renew_lease(self.campaign_id, self.holder, self.ttl_s):
                self._confirmed = max(self._confirmed, began)
                return True
            self.lost = True
            return False

    def holds(self) -> bool:
        """Whether this scheduler still holds the lease, to ask before it starts an
        evaluation: ``True`` at once where a renewal began less than half the TTL ago (the
        lease cannot have lapsed, so nobody can have taken it), else after renewing it on
        the asking thread (the process was paused, or the keeper kept waiting, past that);
        ``False`` once a renewal found it taken or the campaign gone. A storage error of
        that renewal is raised, as the run's own writes raise it."""
        if self.lost:
            return False
        if elapsed_clock() - self._confirmed < self.ttl_s / 2:
            return True
        return self._renew()

    def stop(self) -> None:
        """End the renewals (waiting for one under way) and close the keeper's store; the
        run's own store, closed after it, empties the WAL (:meth:`Store.close`)."""
        self._stop.set()
        self._thread.join()
        self._store.close(empty_wal=False)
