"""The scheduler: an asynchronous steady-state loop from proposer to workers to archive.

Up to ``max_in_flight`` evaluations run at once; whenever a batch worth of slots is
free (or what is left of the budget), the proposer is asked, the rows are written
``pending`` with the proposer's checkpoint in one transaction, and only then dispatched.
Results are told to the proposer as they arrive and recorded, elites updated and the
checkpoint saved, in one transaction. ``budget`` counts rows, across resumes.

Faults: an evaluator error, a non-finite or missing value, or a timeout fails that
evaluation (kept with its error, never an elite); a lost worker's evaluation is
dispatched again while ``attempts <= max_retries``. ``attempts`` counts starts: a row is
marked ``running`` (attempts + 1) when a worker starts it, not when it is queued, so a
row that never started is not charged. A scheduler that dies leaves rows
``pending``/``running``; the next scheduler dispatches them again.

Failing fast: an evaluator that cannot be set up stops the run at once
(:class:`EvaluatorSetupFailed`; its rows go back to ``pending`` uncharged), and a run
whose first ``search.fail_fast`` evaluations all fail stops (:class:`CampaignFailing`,
status ``failed``), each naming the first error. Inline and Ray behave the same.

One scheduler holds a campaign at a time, under a lease it renews. Every write of the
run is fenced by the lease: rows, results and the campaign's status are written only
while this scheduler holds it, and a scheduler that finds its lease taken stops with
:class:`LeaseLost` without writing over the new holder's work.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from archive.errors import LeaseConflict
from archive.records import NewEvaluation, Result, Stats
from archive.store import Store
from entropy_atlas.errors import AtlasError
from search.history import ArchiveHistory
from search.holders import holder_is_dead, lease_holder_id
from search.proposers.base import Observation, Proposal, Proposer
from search.proposers.checkpoint import CheckpointError
from search.run import CampaignRun
from workers.executors.base import Executor
from workers.runner import EvaluationTask, Outcome

LEASE_TTL_S = float(os.environ.get("ATLAS_LEASE_TTL", "30"))


class CampaignBusy(AtlasError, RuntimeError):
    """Another live scheduler holds the campaign's lease."""


class LeaseLost(AtlasError, RuntimeError):
    """This scheduler's lease was taken over (it was presumed dead)."""


class CampaignFailing(AtlasError, RuntimeError):
    """The run's first ``fail_fast`` evaluations all failed."""


class EvaluatorSetupFailed(AtlasError, RuntimeError):
    """The evaluator could not be set up on a worker."""


def evaluation_seed(campaign_seed: int, seq: int) -> int:
    """A per-evaluation seed, a pure function of the campaign seed and the sequence number."""
    return int(np.random.SeedSequence([campaign_seed, seq]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclasses.dataclass
class _InFlight:
    evaluation_id: int
    seq: int
    params: dict[str, Any]
    x: np.ndarray
    meta: dict[str, Any]
    proposer: str
    attempts: int


class Scheduler:
    """Runs one campaign to its budget.

    ``run`` is the campaign's one setup (spec, space, layout, record); the proposer was
    built from the same setup, so both see one space, one layout and one batch size.
    """

    def __init__(
        self,
        store: Store,
        run: CampaignRun,
        proposer: Proposer,
        executor: Executor,
        progress: Callable[[Stats], None] | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        poll_s: float = 0.2,
    ) -> None:
        self.store = store
        self.campaign_run = run
        self.campaign = run.record
        self.spec = run.spec
        self.proposer = proposer
        self.executor = executor
        self.progress = progress
        self.lease_ttl_s = lease_ttl_s
        self.poll_s = poll_s
        self.layout = run.layout
        self.space = run.space
        self.sign = run.sign
        self.holder = lease_holder_id()
        self.inflight: dict[int, _InFlight] = {}
        self.created = 0
        self.next_seq = 0
        self._last_renew = 0.0
        self._last_report = 0.0
        self.fail_fast = run.spec.search.fail_fast
        self._run_done = 0
        self._run_failed = 0
        self._first_error: str | None = None
        self._started_here: set[int] = set()  # evaluations this run charged an attempt
        executor.on_start = self._started

    @property
    def cid(self) -> int:
        return self.campaign.id

    def stats(self) -> Stats:
        return self.store.stats(self.cid, self.layout.cells, self.campaign_run.qd_offset)

    # -- the loop ------------------------------------------------------------
    def run(self) -> Stats:
        other = self.store.acquire_lease(self.cid, self.holder, self.lease_ttl_s, holder_is_dead)
        if other is not None:
            raise CampaignBusy(
                f"campaign {self.campaign.name!r} is being run by scheduler {other}; "
                f"wait for it to finish, or for its lease to expire if it died "
                f"(at most {self.lease_ttl_s:g} s), then `atlas resume {self.campaign.name}`"
            )
        self._last_renew = time.time()
        status = "stopped"
        try:
            self.store.set_status(self.cid, self.holder, "running")
            history = ArchiveHistory(self.store, self.cid, self.layout, self.sign)
            try:
                self.proposer.restore(self.store.load_checkpoint(self.cid, self.proposer.name), history)
            except CheckpointError as exc:
                raise CheckpointError(f"campaign {self.campaign.name!r}: {exc}") from None
            self.executor.start()
            self.created = self.store.count_created(self.cid)
            self.next_seq = self.store.next_seq(self.cid)
            self._adopt_unfinished()
            while True:
                self._fill()
                if not self.inflight and self.created >= self.spec.search.budget:
                    break
                self._handle(self.executor.poll(self.poll_s))
                self._heartbeat()
                self._report()
            status = "finished"
        except LeaseConflict as exc:
            raise LeaseLost(f"campaign {self.campaign.name!r}: another scheduler took over ({exc}); "
                            f"this one stopped without writing more") from None
        except CampaignFailing:
            status = "failed"
            raise
        finally:
            try:
                self.store.finish_run(self.cid, self.holder, status)
            finally:
                self.executor.shutdown()
        stats = self.stats()
        if self.progress:
            self.progress(stats)
        return stats

    def _adopt_unfinished(self) -> None:
        """Dispatch again what an earlier scheduler wrote but never finished."""
        rows = self.store.unfinished(self.cid)
        given_up: list[tuple[_InFlight, Outcome]] = []
        again: list[_InFlight] = []
        for row in rows:
            item = _InFlight(row["id"], row["seq"], row["params"], np.asarray(row["x"], dtype=float),
                             row["proposal"] or {}, row["proposer"], row["attempts"])
            self.inflight[item.evaluation_id] = item
            if item.attempts > self.spec.resources.max_retries:
                error = (f"gave up after {item.attempts} attempts: its worker or scheduler "
                         f"was lost each time")
                given_up.append((item, Outcome(item.evaluation_id, "failed", error=error)))
            else:
                again.append(item)
        if given_up:
            self._record([o for _, o in given_up])
        self._dispatch(again)

    def _fill(self) -> None:
        budget = self.spec.search.budget
        max_in_flight = self.spec.search.max_in_flight
        while self.created < budget:
            target = min(self.campaign_run.batch_size, budget - self.created, max_in_flight)
            if max_in_flight - len(self.inflight) < target:
                return
            proposals = self._initial_points(target) or self.proposer.ask(target)
            calls = self.proposer.take_calls()
            if not proposals:
                if calls:
                    self.store.add_pending(self.cid, [], checkpoint=(self.proposer.name, self.proposer.state()),
                                           calls=calls, holder=self.holder)
                if not self.inflight:
                    raise RuntimeError(f"proposer {self.proposer.name} proposed nothing with nothing in flight")
                return
            rows = []
            for i, p in enumerate(proposals[:target]):
                params = p.params if p.params is not None else self.space.decode(p.x)
                rows.append(NewEvaluation(
                    seq=self.next_seq + i, params=params, x=[float(v) for v in p.x],
                    proposer=p.proposer or self.proposer.name, proposal=p.meta,
                ))
            ids = self.store.add_pending(self.cid, rows, checkpoint=(self.proposer.name, self.proposer.state()),
                                         calls=calls, holder=self.holder)
            items = [
                _InFlight(eid, r.seq, r.params, np.asarray(r.x), r.proposal, r.proposer, 0)
                for eid, r in zip(ids, rows, strict=True)
            ]
            for item in items:
                self.inflight[item.evaluation_id] = item
            self.created += len(rows)
            self.next_seq += len(rows)
            self._dispatch(items)

    def _initial_points(self, n: int) -> list[Proposal]:
        points = self.spec.search.initial_points
        if self.created >= len(points):
            return []
        out = []
        for point in points[self.created : self.created + n]:
            params, _ = self.space.coerce(point)
            out.append(Proposal(self.space.encode(params), params=params,
                                meta={"source": "initial"}, proposer="initial"))
        return out

    def _started(self, evaluation_ids: list[int]) -> None:
        """The executor's word that workers started these: charge each an attempt."""
        self.store.mark_running(evaluation_ids)
        self._started_here.update(evaluation_ids)

    def _dispatch(self, items: list[_InFlight]) -> None:
        if not items:
            return
        for item in items:
            item.attempts += 1
        self.executor.submit([
            EvaluationTask(i.evaluation_id, i.seq, i.params, evaluation_seed(self.campaign_run.seed, i.seq),
                           i.attempts)
            for i in items
        ])

    def _handle(self, outcomes: list[Outcome]) -> None:
        setup = [o for o in outcomes if o.setup_failed]
        if setup:  # the run stops: what was in flight goes back uncharged (its workers are ended unfinished)
            self.store.requeue([i for i in self.inflight if i in self._started_here], uncharge=True)
            raise EvaluatorSetupFailed(f"campaign {self.campaign.name!r}: {setup[0].error}; nothing was "
                                       f"charged, fix the evaluator and `atlas resume {self.campaign.name}`")
        final: list[Outcome] = []
        retry: list[_InFlight] = []
        for o in outcomes:
            item = self.inflight.get(o.evaluation_id)
            if item is None:
                continue  # a late duplicate: the evaluation was settled already
            if o.status == "lost":
                if item.attempts <= self.spec.resources.max_retries:
                    retry.append(item)
                    continue
                o = dataclasses.replace(o, status="failed",
                                        error=f"{o.error} (gave up after {item.attempts} attempts)")
            final.append(o)
        if retry:
            self.store.requeue([i.evaluation_id for i in retry])
            self._dispatch(retry)
        if final:
            self._record(final)

    def _record(self, outcomes: list[Outcome]) -> None:
        names = self.layout.measure_names
        done = [o for o in outcomes if o.status == "done"]
        cells: dict[int, int] = {}
        if done:
            vectors = np.array([[o.measures[m] for m in names] for o in done], dtype=float)  # type: ignore[index]
            for o, cell in zip(done, self.layout.index_of(vectors), strict=True):
                cells[o.evaluation_id] = int(cell)
        results, observations = [], []
        for o in outcomes:
            item = self.inflight.pop(o.evaluation_id)
            ok = o.status == "done"
            results.append(Result(
                evaluation_id=o.evaluation_id, status="done" if ok else "failed",
                objective=o.objective if ok else None, measures=o.measures, metrics=o.metrics,
                cell=cells.get(o.evaluation_id), error=o.error, worker=o.worker,
            ))
            observations.append(Observation(
                evaluation_id=o.evaluation_id, seq=item.seq, x=item.x, params=item.params,
                fitness=self.sign * o.objective if ok and o.objective is not None else None,
                measures=np.array([o.measures[m] for m in names]) if ok and o.measures else None,
                cell=cells.get(o.evaluation_id), meta=item.meta, proposer=item.proposer,
            ))
        self.proposer.tell(observations)
        self.store.record_results(self.cid, results, self.sign,
                                  checkpoint=(self.proposer.name, self.proposer.state()), holder=self.holder)
        self._check_fail_fast(outcomes)

    def _check_fail_fast(self, outcomes: list[Outcome]) -> None:
        """Stop when this run's first ``fail_fast`` evaluations have all failed."""
        for o in outcomes:
            if o.status == "done":
                self._run_done += 1
            else:
                self._run_failed += 1
                self._first_error = self._first_error or (o.error or "unknown error")
        if self.fail_fast and self._run_done == 0 and self._run_failed >= self.fail_fast:
            first = (self._first_error or "").strip().splitlines()[0] if self._first_error else "unknown error"
            raise CampaignFailing(
                f"campaign {self.campaign.name!r}: the first {self._run_failed} evaluations all failed; "
                f"the first error: {first} (see `atlas failures {self.campaign.name}`; "
                f"search.fail_fast: 0 turns this check off)")

    def _heartbeat(self) -> None:
        now = time.time()
        if now - self._last_renew < self.lease_ttl_s / 3:
            return
        if not self.store.renew_lease(self.cid, self.holder, self.lease_ttl_s):
            raise LeaseLost(
                f"campaign {self.campaign.name!r}: this scheduler's lease was taken over; stopping"
            )
        self._last_renew = now

    def _report(self) -> None:
        if self.progress is None:
            return
        now = time.time()
        if now - self._last_report >= 0.3:
            self._last_report = now
            self.progress(self.stats())
