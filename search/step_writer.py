"""Writing the scheduler's turns behind its loop.

A turn's write (:meth:`archive.store.Store.step`: starts, results with their elites, new
rows, the proposer's checkpoint) waits on the database server. Where the server is another
process (PostgreSQL), that wait can overlap the loop's own work: :class:`StepWriter` takes a
turn's write and returns at once, and one thread writes the turns in the order given; the
turns that queued up while a write ran go out together, as one transaction (group commit,
:func:`merged`). The loop hands out the new rows before they are written, under ids reserved
from the table's sequence (:meth:`Store.reserve_ids`), so nothing it dispatches waits on
the write.

What a write behind the loop changes, and what it does not:

- each turn is still all or nothing (with the turns merged into its write), and turns land
  in order: a turn's results are written
  after the rows they belong to, and a checkpoint never runs ahead of what it was told;
- the loop learns of a failed write (a lost lease, the database gone for good) at its next
  :meth:`StepWriter.submit` or :meth:`StepWriter.flush`, at most ``depth`` turns later; after
  a failure nothing more is written, and the error is raised again on every call;
- a scheduler killed with turns queued loses those turns, as it loses the results it had not
  yet written when it writes in its loop: what was committed is a consistent prefix, and a
  resume goes on from it.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Any

from archive.store import Store

RESERVE_AT_ONCE = 65536  # at most this many ids taken ahead of those asked for, per round trip


class StepWriter:
    """A thread that runs :meth:`Store.step` for each submitted turn, in order, with at
    most ``depth`` turns waiting (a submit beyond that waits for the writer)."""

    def __init__(self, store: Store, depth: int = 4) -> None:
        self.store = store
        self._turns: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._ids: deque[int] = deque()
        self._thread = threading.Thread(target=self._write, name="atlas-step-writer", daemon=True)
        self._thread.start()

    def reserve(self, n: int, ahead: int = 0) -> list[int]:
        """``n`` ids for new rows, from a stock refilled, when short, with the ``n`` and what
        the run may still need after them (``ahead``, at most :data:`RESERVE_AT_ONCE` of it:
        ids are 32-bit, so a run takes no more than it can use), in one round trip."""
        if len(self._ids) < n:
            want = n - len(self._ids) + min(max(ahead, 0), RESERVE_AT_ONCE)
            self._ids.extend(self.store.reserve_ids(want))
        return [self._ids.popleft() for _ in range(n)]

    def submit(self, campaign_id: int, **step: Any) -> None:
        """Queue one turn's :meth:`Store.step` (its keyword arguments); raise the error of an
        earlier turn's write, if one failed."""
        self._raise()
        self._turns.put({"campaign_id": campaign_id, **step})
        self._raise()

    def flush(self) -> None:
        """Wait until every queued turn is written; raise the error of one that failed."""
        self._turns.join()
        self._raise()

    def close(self) -> None:
        """Write what is queued (unless a write failed), then end the thread. Raises nothing:
        :meth:`flush` first to learn of a failure."""
        self._turns.put(None)
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _write(self) -> None:
        while True:
            turns = [self._turns.get()]
            while turns[-1] is not None:  # the turns that queued up while the last write ran: one write
                try:
                    turns.append(self._turns.get_nowait())
                except queue.Empty:
                    break
            try:
                if self._error is None and turns[0] is not None:
                    self.store.step(**merged([t for t in turns if t is not None]))
            except BaseException as exc:  # handed to the loop's thread, raised there
                self._error = exc
            finally:
                for _ in turns:
                    self._turns.task_done()
            if turns[-1] is None:
                return


def merged(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Consecutive turns' :meth:`Store.step` arguments as one step, the same writes in one
    transaction (group commit): rows, calls and results in turn order (so finished order and
    the elites' tie rule are kept; a step writes its rows before its results, which may
    belong to them), the starts of all (a start whose result is among them is charged by the
    result's write), and the last checkpoint (each one is the proposer's whole state, and a
    scheduler has one proposer)."""
    if len(turns) == 1:
        return turns[0]
    out = {"campaign_id": turns[0]["campaign_id"], "sign": turns[0]["sign"], "holder": turns[0]["holder"],
           "started": {}, "results": [], "rows": [], "calls": [], "ids": [], "logged": [], "checkpoint": None}
    for turn in turns:
        out["started"].update(turn.get("started") or {})
        for key in ("results", "rows", "calls", "ids", "logged"):
            out[key] += turn.get(key) or []
        if turn.get("checkpoint") is not None:
            out["checkpoint"] = turn["checkpoint"]
    if not out["ids"]:
        out["ids"] = None  # rows without reserved ids take the sequence's
    return out
