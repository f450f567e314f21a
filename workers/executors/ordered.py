"""Whole batches in submit order, around an executor whose outcomes come back as its workers
finish them (Ray): what ``search.reproducible`` asks of the Ray executor.

The scheduler tells the proposer what a poll hands back and asks for as much as that frees
(``max_in_flight`` less what is still in flight). :class:`OrderedBatches` hands back one
submitted batch a poll (what one :meth:`submit` carried: a turn's asks, dispatched together),
the oldest, once every evaluation in it has an outcome, its outcomes in the order submitted;
later batches' outcomes wait in it and count as still in flight. So the proposer is told
batch by batch and asked after each, the same sequence on every run whatever the order the
workers finish in (the inline executor's ``whole_batches``).

- A ``lost`` outcome (its worker died) comes back at once: the scheduler submits it again
  while retries are left, and it stays in its own batch. One not submitted again by the
  next poll was given up (the scheduler settled it ``failed``) and leaves its batch.
- A ``setup_failed`` outcome comes back at once, with every outcome held: the run stops
  after that turn, which writes them.
- :meth:`take_finished` gives back every outcome held (and the inner executor's): a stop
  writes them rather than run them again.

What it cannot make the same: an evaluation given up after its retries is told to the
proposer alone, as the turn that gives it up finds it, and the room it frees is asked for
then; and anything the results themselves depend on besides the evaluation's params and
``ctx.seed`` (which worker ran it, a timeout that one run hits and another does not).
"""

from __future__ import annotations

import dataclasses
import time

from workers.executors.base import SETUP_CHECK_S, Executor
from workers.runner import EvaluationTask, Outcome


@dataclasses.dataclass
class _Held:
    """One submitted batch: its evaluations in submit order, and the outcomes come so far."""

    ids: list[int]
    outcomes: dict[int, Outcome] = dataclasses.field(default_factory=dict)

    def complete(self) -> bool:
        """Whether every evaluation of the batch has an outcome."""
        return len(self.outcomes) == len(self.ids)

    def in_order(self) -> list[Outcome]:
        """Its outcomes in submit order (those come so far)."""
        return [self.outcomes[i] for i in self.ids if i in self.outcomes]


class OrderedBatches(Executor):
    """``inner``'s outcomes handed back a whole submitted batch a poll, oldest first."""

    def __init__(self, inner: Executor) -> None:
        super().__init__(inner.config)
        self.inner = inner
        self.reports_starts_late = inner.reports_starts_late
        inner.on_start = self._report_started
        self._batches: list[_Held] = []  # oldest first
        self._batch_of: dict[int, _Held] = {}  # evaluation id → its batch
        self._resubmit: set[int] = set()  # lost, handed back: in their batch again once submitted again

    def start(self) -> None:
        self.inner.start()

    def setup_problem(self, wait_s: float = SETUP_CHECK_S) -> str | None:
        return self.inner.setup_problem(wait_s)

    def capacity(self) -> int:
        return self.inner.capacity()

    def shutdown(self) -> None:
        self.inner.shutdown()

    def in_flight(self) -> int:
        """The inner executor's, and the outcomes held here: not yet reported."""
        return self.inner.in_flight() + sum(len(b.outcomes) for b in self._batches)

    def submit(self, tasks: list[EvaluationTask]) -> None:
        """A new batch of the tasks not held already; one held (lost, submitted again) stays in its own."""
        new = [t.evaluation_id for t in tasks if t.evaluation_id not in self._batch_of]
        self._resubmit.difference_update(t.evaluation_id for t in tasks)
        if new:
            batch = _Held(new)
            self._batches.append(batch)
            self._batch_of.update(dict.fromkeys(new, batch))
        self.inner.submit(tasks)

    def poll(self, timeout: float) -> list[Outcome]:
        """The oldest batch once complete (at once where it is), with the ``lost`` and
        ``setup_failed`` outcomes that came meanwhile; what came of later batches is held.
        Waits up to ``timeout`` for the oldest batch, polling the inner executor again while
        it brings outcomes of other batches; [] where it brought none in time."""
        self._drop_given_up()
        if self._head_complete():
            return self._release()
        deadline = time.monotonic() + timeout
        while True:
            came = self.inner.poll(max(0.0, deadline - time.monotonic()))
            now_out = self._take(came)
            if any(o.setup_failed for o in now_out):  # the run stops after this turn: it writes them all
                return now_out + self._release_all()
            if self._head_complete():
                return now_out + self._release()
            if now_out or not came or time.monotonic() >= deadline:
                return now_out

    def take_finished(self) -> list[Outcome]:
        """The inner executor's finished outcomes and every one held here (a stop writes them)."""
        return self._take(self.inner.take_finished()) + self._release_all()

    def _take(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Hold ``outcomes`` in their batches; those to hand back at once: ``lost`` ones (kept
        in their batch for their retry), ``setup_failed`` ones, and any of no batch held here.
        A second outcome of an evaluation held is dropped, as the scheduler drops one."""
        now_out: list[Outcome] = []
        for o in outcomes:
            batch = self._batch_of.get(o.evaluation_id)
            if batch is None or o.setup_failed:
                now_out.append(o)
            elif o.status == "lost":
                self._resubmit.add(o.evaluation_id)
                now_out.append(o)
            else:
                batch.outcomes.setdefault(o.evaluation_id, o)
        return now_out

    def _drop_given_up(self) -> None:
        """Take out of their batches the lost evaluations the scheduler did not submit again
        after the turn that had them (it gave them up: settled ``failed``); empty batches go."""
        for eid in self._resubmit:
            batch = self._batch_of.pop(eid, None)
            if batch is not None:
                batch.ids.remove(eid)
        self._resubmit.clear()
        self._batches = [b for b in self._batches if b.ids]

    def _head_complete(self) -> bool:
        """Whether the oldest batch held has all its outcomes."""
        return bool(self._batches) and self._batches[0].complete()

    def _release(self) -> list[Outcome]:
        """The oldest batch's outcomes, in submit order; it is no longer held."""
        batch = self._batches.pop(0)
        for eid in batch.ids:
            self._batch_of.pop(eid, None)
        return batch.in_order()

    def _release_all(self) -> list[Outcome]:
        """Every outcome held, batch by batch in submit order; the batches keep what has none."""
        out: list[Outcome] = []
        for batch in self._batches:
            out += batch.in_order()
            for eid in batch.outcomes:
                batch.ids.remove(eid)
                self._batch_of.pop(eid, None)
            batch.outcomes.clear()
        self._batches = [b for b in self._batches if b.ids]
        return out
