"""The scheduler: an asynchronous steady-state loop from proposer to workers to archive.

Up to ``max_in_flight`` evaluations run at once. Each turn of the loop takes every
outcome that came back (tells the proposer), asks the proposer for every batch worth of
free slots (or what is left of the budget), and writes it all in one transaction: the
results with their elites, the new rows ``pending``, the starts reported since the last
turn and the proposer's checkpoint. Only then are the new rows dispatched, so a row
exists before its work does, and a scheduler killed between turns loses no result it
wrote. ``budget`` counts rows, across resumes.

With ``search.reproducible``, a turn whose asks the budget cut short (room left for more)
has the results of what it asked written but not told: the uninterrupted run asks the rest
of that turn before it tells them. The checkpoint stays the one of that ask, with the
untold ids beside it (:meth:`Store.load_untold`); a resume restores the proposer from the
archive as it knew it (:class:`ArchiveHistory`: the untold still in flight), asks what
room they leave, and tells them with the results of those asks (alone, where it can ask
none), so a run stopped at a whole batch resumes as the uninterrupted run, seq by seq.

Faults: an evaluator error, a non-finite or missing value, or a timeout fails that
evaluation (kept with its error, never an elite); a lost worker's evaluation is
dispatched again while ``attempts <= max_retries``. ``attempts`` counts starts: a row is
marked ``running`` (attempts + 1) when a worker starts it, not when it is queued, so a
row that never started is not charged. The inline executor, whose evaluation runs in
this process, waits on its charge: on the row, or for evaluations under 1 ms in the
start log (:mod:`archive.starts`), which counts as the charge until the loop's next write
charges the row. Workers that start on their own (Ray, whose queued call starts as the
one before it ends) have their starts charged with the loop's next write. A scheduler
that dies leaves rows ``pending``/``running`` (and its last starts logged); the next
scheduler charges the log and dispatches those rows again. A clean stop (Ctrl-C,
SIGTERM) charges nothing: the outcomes polled before it, and those its executor holds
finished (:meth:`Executor.take_finished`), are written (those of a turn it
cut short, inside the proposer's ``tell`` or ``ask``, are not: its state may hold part of
them), and what it cut short goes back ``pending`` with its attempt taken back, to run
again (:meth:`Scheduler._stop_cleanly`). A run stopped by its executor (a Ray cluster gone)
puts what was in flight back charged (:meth:`Scheduler._stop_for_executor`), after writing
what finished that its executor still held.
With slow asks (a model's fit) a turn writes its results before it asks, so a kill during
the ask loses none of them.

A proposer that raises stops the run with one line (:class:`ProposerFailed`): in ``ask``
(or ``take_calls``, its rows going with the calls that made them), after writing the turn
as far as it got (the results it was told, the rows asked before with their calls, the
checkpoint of the state it is in), so a resume dispatches those rows and loses none;
in ``tell`` or ``state``, writing nothing of the turn, whose evaluations a resume runs and
tells again; in ``restore``, before the run writes anything. Each is a stop as clean as a
Ctrl-C's: the evaluations it cut short (in flight, or settled with their results unwritten)
go back ``pending`` with their attempt taken back, since a proposer's bug crashed none of
them (with ``max_retries: 0`` a resume runs them, not marks them given up). What an ask returns is checked
before it is stored (:class:`search.proposals.ProposalRows`): coordinates outside [0, 1] are
clipped and params a proposer gives are repaired where the repair is plain
(:meth:`SearchSpace.repair_proposed`; a clipped point marked ``clipped``, one warning a run);
anything else (not a list of proposals, a point of
another dimension or with a non-finite coordinate, params the space cannot take, meta JSON
cannot store) stops the run as an ask that raised does; so do calls a ``take_calls`` returns
that ``proposer_calls`` cannot hold (:func:`search.proposals.checked_calls`). A ``state()``
that is not ``bytes``, or larger than ``ATLAS_MAX_PROPOSER_STATE_MB`` (64 MB: a checkpoint
is written every turn), stops it as a ``state`` that raised, the last checkpoint kept. No
row ever holds params outside the space.

A progress callback that raises stops the run as a Ctrl-C does (the outcomes polled before
it written), then its exception propagates unchanged.

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

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from archive.errors import CampaignDeleted, LeaseConflict, StorageError, StorageFull
from archive.records import NewEvaluation, Result, Stats
from archive.store import CheckpointWrite, Store
from entropy_atlas import interrupts, settings
from entropy_atlas.errors import AtlasError
from entropy_atlas.holders import holder_is_dead, holder_text, lease_holder_id
from entropy_atlas.interrupts import held_interrupts
from entropy_atlas.wording import count
from search.campaigns import delete_words, rename_words, resume_words, write_limits
from search.history import ArchiveHistory
from search.lease_keeper import LeaseKeeper, elapsed_clock
from search.proposals import BadProposals, ProposalRows, checked_calls
from search.proposers.base import Observation, Proposal, Proposer, ProposerFailed, raised_error
from search.proposers.checkpoint import CheckpointError
from search.run import CampaignRun
from search.seeds import evaluation_seeds
from search.step_writer import StepWriter
from workers.executors.base import Executor, ExecutorError
from workers.runner import EvaluationTask, Outcome

# inline: evaluations that took less than this (the last turn's mean) have their starts
# logged (archive.starts), where a charge's commit on the row would be a large share of them
LOG_STARTS_BELOW_S = 0.001
# asks that took this long (a model's fit) have the turn's results written before the next
SLOW_ASK_S = 0.25
MB = 2**20  # the unit of ATLAS_MAX_PROPOSER_STATE_MB


class CampaignBusy(AtlasError, RuntimeError):
    """Another live scheduler holds the campaign's lease."""


def busy_message(name: str, holder: str, lease_ttl_s: float, cli_words: bool = False) -> str:
    """The refusal of a run of campaign ``name`` whose lease live scheduler ``holder`` holds
    (said alike by the take of the lease and by :mod:`search.api`'s look ahead at it), the
    holder as a person reads it (:func:`~entropy_atlas.holders.holder_text`), and the resume
    after it in Python's words, or with ``cli_words`` in ``atlas``'s (:func:`resume_words`)."""
    return (f"campaign {name!r} is being run by {holder_text(holder)}; "
            f"wait for it to finish, or for its lease to expire if it died "
            f"(at most {lease_ttl_s:g} s), then `{resume_words(name, cli_words=cli_words)}`")


class LeaseLost(AtlasError, RuntimeError):
    """This scheduler's lease was taken over (it was presumed dead)."""


class CampaignFailing(AtlasError, RuntimeError):
    """The run's first ``fail_fast`` evaluations all failed."""


class EvaluatorSetupFailed(AtlasError, RuntimeError):
    """The evaluator could not be set up on a worker."""


class ProposerStuck(AtlasError, RuntimeError):
    """The proposer proposed nothing while nothing was in flight: the run cannot go on."""


class _ProgressRaised(Exception):
    """The progress callback raised ``error`` (not a Ctrl-C): the run stops as a Ctrl-C
    stops it, then ``error`` propagates unchanged (:meth:`Scheduler.run`)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def proposer_failed_message(name: str, proposer: str, phase: str, exc: BaseException, kept: str,
                            cli_words: bool = False) -> str:
    """The one line a proposer's error ends a run with: what raised, where, what of the turn
    was ``kept``, and the resume after the fix in Python's words (:func:`resume_words`: a
    proposer registered in a script is unknown to ``atlas``), or with ``cli_words`` in
    ``atlas``'s."""
    return (f"campaign {name!r}: proposer {proposer} raised in {phase}: {raised_error(exc)}; {kept}; "
            f"fix the proposer (or its options) and `{resume_words(name, cli_words=cli_words)}`")


def proposer_output_message(name: str, proposer: str, problem: str, kept: str, cli_words: bool = False) -> str:
    """The one line a proposer's unusable output ends a run with: ``problem`` (what it
    gave, as :class:`BadProposals` words it), what of the turn was ``kept``, and the resume
    in the caller's words (as :func:`proposer_failed_message`)."""
    return (f"campaign {name!r}: proposer {proposer} {problem}; {kept}; "
            f"fix the proposer (or its options) and `{resume_words(name, cli_words=cli_words)}`")


def rerun_words(name: str, cli_words: bool = False) -> str:
    """The way on of a campaign whose stored spec must change: delete it and run the corrected
    one, in Python's words (:func:`delete_words`, and the corrected spec), or with
    ``cli_words`` in ``atlas``'s (`` `atlas delete quad --yes` and run the corrected file``)."""
    return f"`{delete_words(name, cli_words)}` and run the corrected {'file' if cli_words else 'spec'}"


def setup_failed_message(name: str, error: str, written: bool, cli_words: bool = False) -> str:
    """The one line a failed setup ends a run with: ``error`` and how to go on, for a campaign
    already written (nothing charged: resume, or delete and rerun where its config must
    change: :func:`rerun_words`) or refused before it was (nothing written: run the corrected
    file), the way on in Python's words, or with ``cli_words`` in ``atlas``'s."""
    if not written:
        return (f"campaign {name!r}: {error}; nothing was written: correct the evaluator's config, or what it "
                f"reads, and run the file again")
    return (f"campaign {name!r}: {error}; nothing was charged: fix what the evaluator reads and "
            f"`{resume_words(name, cli_words=cli_words)}`, or, where its config must change (the stored spec is "
            f"the campaign's), {rerun_words(name, cli_words)}")


def _raise_if_interrupted(exc: BaseException) -> None:
    """Raise :class:`KeyboardInterrupt` where ``exc`` came of one: a Ctrl-C that landed in
    compiled code (numba, which pyribs' CMA-ES calls) comes back as a ``SystemError`` whose
    context is the interrupt. It is the user's stop, not the proposer's failure."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            raise KeyboardInterrupt from exc
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__


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
        lease_ttl_s: float | None = None,
        poll_s: float = 0.2,
        max_state_mb: float | None = None,
        cli_words: bool = False,
    ) -> None:
        self.store = store
        self.cli_words = cli_words  # how each stop and refusal names the way on: atlas's or Python's
        self.campaign_run = run
        self.campaign = run.record
        self.spec = run.spec
        self.proposer = proposer
        self.executor = executor
        self.progress = progress
        self.lease_ttl_s = settings.lease_ttl_s() if lease_ttl_s is None else lease_ttl_s
        self.poll_s = poll_s
        self.max_state_mb = settings.max_proposer_state_mb() if max_state_mb is None else max_state_mb
        self.layout = run.layout
        self.space = run.space
        self._proposal_rows = ProposalRows(self.space, proposer.name)
        self.sign = run.sign
        self.holder = lease_holder_id()
        self.inflight: dict[int, _InFlight] = {}
        self.created = 0
        self.next_seq = 0
        self._last_report = 0.0
        self.fail_fast = run.spec.search.fail_fast
        self._run_done = 0
        self._run_failed = 0
        self._run_total = self.fail_fast  # how many evaluations this run finishes, once known (run)
        self._first_error: str | None = None
        self._charged: set[int] = set()  # evaluations this run charged an attempt, durably
        self._to_charge: dict[int, float] = {}  # starts not yet charged on their rows (id → when): next write
        self._logged: set[int] = set()  # those of them in the start log (inline), unlogged by that write
        self._eval_s: float | None = None  # the mean time of the evaluations whose results came last
        self._writer: StepWriter | None = None  # turns written behind the loop (PostgreSQL, starts reported late)
        self._keeper: LeaseKeeper | None = None  # renews the lease on a thread of its own while the run lives
        self._setup_failed: list[Outcome] = []  # outcomes of a failed setup: the run stops after this turn
        self._ask_failed: tuple[str, Exception] | None = None  # (ask or take_calls, its error): the run stops
        self._ask_s = 0.0  # how long the last turn's asks took
        self._polled: list[Outcome] = []  # outcomes polled but not yet written when the progress callback raised
        self._unwritten: set[int] = set()  # evaluations settled (out of flight) whose results are not written yet
        self._untold: list[Observation] = []  # results written but not told to the proposer, in ask order (_results)
        self._marking = False  # whether checkpoints are written with the untold ids (some were untold: _checkpoint)
        # reproducible: a turn's asks stopped with room left (the budget reached, or less room than a batch:
        # then the untold are told once nothing is in flight, before the next ask, as before): _asked
        self._group_cut = False
        executor.on_start = self._started

    @property
    def cid(self) -> int:
        return self.campaign.id

    def stats(self) -> Stats:
        return self.store.stats(self.cid, self.layout.cells, self.campaign_run.qd_offset)

    # -- the loop ------------------------------------------------------------
    def run(self) -> Stats:
        taken_at = elapsed_clock()  # before the take: the lease lasts at least the TTL from here
        try:
            other = self.store.acquire_lease(self.cid, self.holder, self.lease_ttl_s, holder_is_dead)
        except KeyboardInterrupt:  # a write holds an interrupt until it commits: the lease may be taken
            self.store.release_lease(self.cid, self.holder)  # fenced: only a lease this run holds
            raise
        if other is not None:
            raise CampaignBusy(busy_message(self.campaign.name, other, self.lease_ttl_s, self.cli_words))
        status = "stopped"
        progress_error: Exception | None = None  # the callback's, raised once the run has stopped
        full: StorageFull | None = None  # the storage's, told once the run has stopped (with the lease's fate)
        unreleased = False  # the lease could not be released (no space to write it, no storage): it lapses
        lost: StorageError | None = None  # the storage, gone past its retries: told once the run has stopped
        try:
            self._keeper = LeaseKeeper(self.store.url, self.cid, self.holder, self.lease_ttl_s, taken_at)
            self._restore()  # first: a proposer that cannot be restored leaves the campaign as it was
            write_limits(self.store, self.campaign, self.spec, self.cli_words)  # a new budget, under the lease
            self.store.set_status(self.cid, self.holder, "running")
            self.store.fold_starts(self.cid, self.holder)  # a dead scheduler's last starts count first
            self.executor.start()
            self.created = self.store.count_created(self.cid)
            self.next_seq = self.store.next_seq(self.cid)
            self._adopt_unfinished()
            self._run_total = self.spec.search.budget - self.created + len(self.inflight)  # what this run finishes
            if self.store.dialect == "postgresql" and self.executor.reports_starts_late:
                self._writer = StepWriter(self.store)
            self._report_polled([])  # started (workers set up, the proposer restored): the caller's spinner stops
            # before the first evaluation, which an inline executor runs within the first poll
            outcomes: list[Outcome] = []
            while True:
                self._turn(outcomes)
                if interrupts.requested():  # a Ctrl-C that compiled code swallowed
                    raise KeyboardInterrupt
                if not self.inflight and self.created >= self.spec.search.budget:
                    break
                outcomes = self._poll()
                self._heartbeat()
                self._report_polled(outcomes)
            self._flush()
            status = "finished"
        except CampaignDeleted:
            raise LeaseLost(self._deleted()) from None
        except LeaseConflict as exc:
            raise LeaseLost(f"campaign {self.campaign.name!r}: another scheduler took over ({exc}); "
                            f"this one stopped without writing more") from None
        except CampaignFailing:
            status = "failed"
            self._report(final=True)  # the bar shows the failures that stopped the run, not the last tick's
            raise
        except ProposerFailed:  # a stop as clean as a Ctrl-C's: what it cut short goes back pending, uncharged
            self._stop_held(told=False)
            raise
        except KeyboardInterrupt:
            self._stop_held()
            raise
        except ExecutorError as exc:
            self._stop_for_executor()
            if exc.resumes_when_back:
                address = "--address" if self.cli_words else "address="
                raise type(exc)(f"{exc} and resumes with `{self._resume_words()}` (with {address} once the "
                                "cluster is back)") from None
            raise
        except _ProgressRaised as stop:
            self._stop_held()
            progress_error = stop.error
        except StorageFull as exc:
            full = exc
        except StorageError as exc:  # lost past its retries: said with the way on once the run has stopped
            if type(exc) is not StorageError:  # a kind with its own words (CampaignNotFound, …)
                raise
            lost = exc
        finally:
            try:
                if self._keeper is not None:
                    self._keeper.stop()
                    self._keeper = None
                if self._writer is not None:  # what is queued is written, unless a write failed
                    self._writer.close()
                    self._writer = None
                try:
                    self.store.finish_run(self.cid, self.holder, status)
                except StorageFull as exc:
                    full, unreleased = full or exc, True
                except StorageError:
                    if lost is None:
                        raise
                    unreleased = True  # still lost: the lease lapses
            finally:
                self.executor.shutdown()
        if full is not None:
            raise self._full(full, unreleased) from None
        if lost is not None:
            raise self._lost(lost, unreleased) from None
        if progress_error is not None:
            raise progress_error  # the caller's own exception, outside this handler's context
        stats = self.stats()
        if self.progress:
            self.progress(stats)
        return stats

    def _full(self, exc: StorageFull, unreleased: bool) -> StorageFull:
        """The run stopped on a full storage (:class:`StorageFull`: raised at once, not retried):
        its failed transaction rolled back, what it wrote before kept, and the campaign resumable
        once there is space. Where the lease's release could not be written either, it lapses."""
        lease = (f" (its lease could not be released for want of space and lapses within {self.lease_ttl_s:g} s)"
                 if unreleased else "")
        name = self.campaign.name
        return StorageFull(f"{exc.problem}; campaign {name!r} stopped, every evaluation written before kept{lease}",
                           exc.where, f"`{self._resume_words()}`")

    def _lost(self, exc: StorageError, unreleased: bool) -> StorageError:
        """The run stopped on a storage lost past its retries (``ATLAS_DB_RETRY_S``): what it
        wrote before is kept, and the campaign resumes once the storage answers; where the
        lease's release could not be written either, it lapses first."""
        lease = f" (its lease lapses within {self.lease_ttl_s:g} s)" if unreleased else ""
        name = self.campaign.name
        return StorageError(f"{exc}; campaign {name!r} stopped, every evaluation written before kept: "
                            f"`{self._resume_words()}` continues it once the storage answers{lease}")

    def _resume_words(self, budget: int | None = None) -> str:
        """The resume of this campaign (at ``budget``) in the caller's words (:func:`resume_words`)."""
        return resume_words(self.campaign.name, budget, self.cli_words)

    def _restore(self) -> None:
        """Restore the proposer from its checkpoint and the archive. An unreadable checkpoint
        is a :class:`CheckpointError` naming the campaign (and, where only a new campaign can
        go on, how to run one in the caller's words); any other error the proposer
        raises (a plug-in's bug) is :class:`ProposerFailed`: one line, nothing of the run
        written. The archive's own errors (a lease lost, a campaign deleted) stay themselves."""
        untold = self.store.load_untold(self.cid, self.proposer.name)
        history = ArchiveHistory(self.store, self.cid, self.layout, self.sign, untold)
        try:
            self.proposer.restore(self.store.load_checkpoint(self.cid, self.proposer.name), history)
        except CheckpointError as exc:
            way = f" (`{rename_words(self.cli_words)}`)" if exc.rerun else ""
            raise CheckpointError(f"campaign {self.campaign.name!r}: {exc}{way}") from None
        except AtlasError:
            raise
        except Exception as exc:
            _raise_if_interrupted(exc)
            raise ProposerFailed(proposer_failed_message(
                self.campaign.name, self.proposer.name, "restore", exc, "nothing of the run was written",
                self.cli_words)) from exc
        self._untold = history.untold_observations()  # told with the next results (_results), or alone (_asked)
        self._marking = bool(self._untold)

    def _stop_held(self, told: bool = True) -> None:
        """:meth:`_stop_cleanly`, as :class:`LeaseLost` where the lease went meanwhile."""
        try:
            self._stop_cleanly(told)
        except CampaignDeleted:
            raise LeaseLost(self._deleted()) from None
        except LeaseConflict:
            raise LeaseLost(f"campaign {self.campaign.name!r}: another scheduler took over while this one "
                            "was stopped; it stopped without writing more") from None

    def _report_polled(self, outcomes: list[Outcome]) -> None:
        """Report progress between a poll and the turn that writes its ``outcomes``. A
        callback that raises (a Ctrl-C, or any error: :class:`_ProgressRaised`) stops the
        run with ``outcomes`` kept for :meth:`_stop_cleanly` to write, so none is lost."""
        try:
            self._report()
        except KeyboardInterrupt:
            self._polled = outcomes
            raise
        except Exception as exc:
            self._polled = outcomes
            raise _ProgressRaised(exc) from exc

    def _poll(self) -> list[Outcome]:
        """The executor's outcomes within ``poll_s``."""
        return self.executor.poll(self.poll_s)

    def _adopt_unfinished(self) -> None:
        """Dispatch again what an earlier scheduler wrote but never finished."""
        rows = self.store.unfinished(self.cid)
        given_up: list[Outcome] = []
        again: list[_InFlight] = []
        for row in rows:
            item = _InFlight(row["id"], row["seq"], row["params"], np.asarray(row["x"], dtype=float),
                             row["proposal"] or {}, row["proposer"], row["attempts"])
            self.inflight[item.evaluation_id] = item
            if item.attempts > self.spec.resources.max_retries:
                error = (f"gave up after {count(item.attempts, 'attempt')}: its worker or scheduler "
                         f"was lost each time")
                given_up.append(Outcome(item.evaluation_id, "failed", error=error))
            else:
                again.append(item)
        if given_up:  # an earlier run's losses: not this run's evaluations, so not its fail-fast's
            results = self._results(given_up)
            self.store.step(self.cid, results=results, sign=self.sign, checkpoint=self._checkpoint(len(results)),
                            holder=self.holder)
        self._dispatch(again)

    def _turn(self, outcomes: list[Outcome]) -> None:
        """One turn of the loop: settle what came back (told to the proposer), ask for what
        there is room for, write both in one transaction (:meth:`Store.step`, with the
        starts not yet charged and the proposer's checkpoint), then dispatch the new rows.
        Where the proposer's asks are slow (a model's fit: ``asks_are_slow``, or the last
        took :data:`SLOW_ASK_S` or more), the results are written first, with the checkpoint
        of the proposer they were told to, and the new rows after the ask: a scheduler
        killed during the fit loses none."""
        final = self._settle(outcomes)
        timed = [o.seconds for o in final if o.seconds > 0]
        if timed:
            self._eval_s = sum(timed) / len(timed)
        results = self._results(final)
        failing = self._fail_fast_tripped(final)
        asks = not (failing or self._setup_failed)
        written = len(results)
        if asks and results and (self.proposer.asks_are_slow or self._ask_s >= SLOW_ASK_S):
            self._write(results, [], [])
            results = []
        rows, calls, stuck = self._plan() if asks else ([], [], False)
        ids = self._write(results, rows, calls)
        self._check_fail_fast(final)
        if self._setup_failed:
            self._stop_for_setup(self._setup_failed)
        if self._ask_failed is not None:  # what it asked before is written, for a resume to dispatch
            self._flush()
            kept = f"this turn's {count(written, 'result')} and {count(len(rows), 'new row')} are written"
            raise ProposerFailed(self._ask_failed_message(kept))
        if stuck:
            raise ProposerStuck(self._stuck_message())
        items = [_InFlight(eid, r.seq, r.params, np.asarray(r.x), r.proposal, r.proposer, 0)
                 for eid, r in zip(ids, rows, strict=True)]
        for item in items:
            self.inflight[item.evaluation_id] = item
        self.created += len(rows)
        self.next_seq += len(rows)
        self._dispatch(items)

    def _stuck_message(self) -> str:
        """The line a run whose proposer proposed nothing, with nothing in flight, stops with:
        after some evaluations a small discrete space may be used up (lower the budget to
        them); before any, nothing was used up, and no budget is that low (it is > 0)."""
        name = self.campaign.name
        at = (f"campaign {name!r}: proposer {self.proposer.name} proposed nothing with nothing in flight, "
              f"at {self.created} of {self.spec.search.budget} evaluations")
        if self.created == 0:
            return (f"{at}; the run cannot start (no space is used up before its first evaluation): fix the "
                    f"proposer (or its options) and `{self._resume_words()}`, or "
                    f"{rerun_words(name, self.cli_words)}")
        return (f"{at}; the run cannot go on (a small discrete space may be used up: lower the budget with "
                f"`{self._resume_words(self.created)}`, or widen the space)")

    def _ask_failed_message(self, kept: str) -> str:
        """The line the run stops with when an ask (or a ``take_calls``) raised or returned what
        cannot be used."""
        assert self._ask_failed is not None
        phase, error = self._ask_failed
        if isinstance(error, BadProposals):
            return proposer_output_message(self.campaign.name, self.proposer.name, str(error), kept, self.cli_words)
        return proposer_failed_message(self.campaign.name, self.proposer.name, phase, error, kept, self.cli_words)

    def _write(self, results: list[Result], rows: list[NewEvaluation], calls: list[dict[str, Any]]) -> list[int]:
        """Write ``results``, new ``rows`` and ``calls`` with the starts not yet charged and,
        where anything changed, the proposer's checkpoint, in one transaction (behind the
        loop where it writes so); the new rows' ids."""
        if not (results or rows or calls or self._to_charge):
            return []
        changed = bool(results or rows or calls)
        checkpoint = self._checkpoint(len(results)) if changed else None
        started, logged = self._take_starts()
        step = {"started": started, "results": results, "sign": self.sign, "rows": rows, "calls": calls,
                "checkpoint": checkpoint, "holder": self.holder, "logged": logged}
        with held_interrupts():  # the charges written and known here together, for a clean stop to take back
            if self._writer is not None:
                ids = self._writer.reserve(len(rows), ahead=self.spec.search.budget - self.created - len(rows))
                self._writer.submit(self.cid, ids=ids, **step)
            else:
                ids = self.store.step(self.cid, **step)
            self._charged.update(started)
            self._unwritten.difference_update(r.evaluation_id for r in results)
        return ids

    def _stop_cleanly(self, told: bool = True) -> None:
        """A Ctrl-C or SIGTERM (or a progress callback that raised) stops the run: what
        finished is kept, what it cut short is not charged. Outcomes the executor holds
        finished (:meth:`Executor.take_finished`: the inline executor's when the interrupt
        came during its poll, those :class:`~workers.executors.ordered.OrderedBatches` held
        back for their batch), and those polled when the callback raised (the proposer
        between turns), are written as a turn writes them, unless the proposer failed
        (``told`` False: its state may hold part of a turn, so it is told nothing more);
        every evaluation still in flight goes back to ``pending`` with its attempt taken
        back: it was stopped, it crashed nothing (``attempts`` counts the starts that may
        have: a ``kill -9``'s)."""
        finished = self._finished([*self._polled, *(self.executor.take_finished() if told else [])])
        if finished:
            try:
                self._write(self._results(finished), [], [])
            except (ProposerFailed, KeyboardInterrupt):  # its tell or state raised on them (read as the
                self._requeue_cut_short()  # Ctrl-C's own where that stops the run): they go back too
                raise
        self._requeue_cut_short()

    def _finished(self, outcomes: list[Outcome]) -> list[Outcome]:
        """Of ``outcomes`` a stop took, those to write: of evaluations in flight, once each,
        neither ``lost`` nor of a failed setup (those never ran to an end)."""
        finished = {o.evaluation_id: o for o in outcomes
                    if o.evaluation_id in self.inflight and o.status != "lost" and not o.setup_failed}
        return list(finished.values())

    def _requeue_cut_short(self) -> None:
        """Put what a stop cut short back to ``pending`` with its attempt taken back: every
        evaluation still in flight, and those settled whose results were not written (a
        ``tell`` or a ``state`` that raised on them)."""
        self._take_starts()  # the logged ones are in _charged: the requeue folds them
        self._flush()
        cut_short = [*self.inflight, *self._unwritten]  # the latter finished, but their results were not written
        self._requeue([i for i in cut_short if i in self._charged], uncharge=True)

    def _stop_for_executor(self) -> None:
        """The executor stopped the run (:class:`ExecutorError`: its Ray cluster gone). The
        starts it reported are charged, and every evaluation in flight goes back to
        ``pending`` charged, as a killed run's would (what ran there may be what brought the
        cluster down): ``atlas status`` shows none in flight on the stopped campaign, and a
        resume runs them again. What had finished that the executor still held (its
        :meth:`~Executor.take_finished`) is written first, as a turn writes it; where the
        proposer's ``tell`` raises on it, it goes back with the rest. With the lease gone
        meanwhile nothing is written."""
        if not (self.inflight or self._unwritten or self._to_charge):
            return
        with contextlib.suppress(LeaseConflict, StorageError):  # the executor's error is the one to tell
            try:
                self._write(self._results(self._finished(self.executor.take_finished())), [], [])
            except ProposerFailed:  # its tell or state raised on them: they go back with the rest (_unwritten)
                self._write([], [], [])
            self._flush()
            self._requeue([*self.inflight, *self._unwritten])

    def _requeue(self, ids: list[int], uncharge: bool = False) -> None:
        """Put ``ids`` back to ``pending`` (:meth:`Store.requeue`) while this run holds the lease."""
        self.store.requeue(ids, uncharge, campaign_id=self.cid, holder=self.holder)

    def _stop_for_setup(self, setup: list[Outcome]) -> None:
        """Stop the run: the evaluator could not be set up. What failed so never ran and
        goes back to ``pending`` uncharged; what is still in flight on other workers (ended
        unfinished with the run) goes back charged, as a killed run's would; the outcomes
        that came with the failure were written by this turn."""
        never_ran = {o.evaluation_id for o in setup}
        self._take_starts()  # the logged ones are in _charged: the requeue folds them
        self._flush()
        self._requeue([i for i in self.inflight if i in never_ran and i in self._charged], uncharge=True)
        self._requeue([i for i in self.inflight if i not in never_ran])
        raise EvaluatorSetupFailed(setup_failed_message(self.campaign.name, setup[0].error or "", written=True,
                                                        cli_words=self.cli_words))

    def _plan(self) -> tuple[list[NewEvaluation], list[dict[str, Any]], bool]:
        """Ask the proposer for every batch there is room for (``batch_size`` at a time, or
        what is left of the budget): the new rows, the proposer's calls, and whether it
        proposed nothing with nothing in flight (the run cannot go on). How long the asks
        took is kept (``_ask_s``)."""
        start = time.perf_counter()
        try:
            return self._asked()
        finally:
            self._ask_s = time.perf_counter() - start

    def _asked(self) -> tuple[list[NewEvaluation], list[dict[str, Any]], bool]:
        budget = self.spec.search.budget
        max_in_flight = self.spec.search.max_in_flight
        rows: list[NewEvaluation] = []
        calls: list[dict[str, Any]] = []
        while self.created + len(rows) < budget:
            created = self.created + len(rows)
            target = min(self.campaign_run.batch_size, budget - created, max_in_flight)
            if self._room(rows) < target:
                if self._told_untold(rows):
                    continue
                break
            try:
                proposals = self._initial_points(created, target) or self.proposer.ask(target)
                batch = self._proposal_rows.rows(proposals, target, self.next_seq + len(rows))
            except Exception as exc:  # the turn is written as far as it got, then the run stops (_turn)
                _raise_if_interrupted(exc)
                self._ask_failed, batch = ("ask", exc), []
            calls += self._taken_calls()
            if self._ask_failed is not None:  # the batch of an ask whose calls are lost goes with them
                return rows, calls, False
            if not batch:
                if self._told_untold(rows):
                    continue
                return rows, calls, not self.inflight and not rows
            rows += batch
        if self.spec.search.reproducible and rows and self._room(rows) > 0:
            self._group_cut = True  # its results are not told (_results): a resume asks the rest first
        return rows, calls, False

    def _room(self, rows: list[NewEvaluation]) -> int:
        """The room left for asks: ``max_in_flight`` less what is in flight, the results not
        told yet (in flight, as the proposer knows them) and the ``rows`` asked this turn."""
        return self.spec.search.max_in_flight - len(self.inflight) - len(self._untold) - len(rows)

    def _told_untold(self, rows: list[NewEvaluation]) -> bool:
        """Tell the proposer the results a resume found untold, where their group is whole:
        nothing in flight and nothing asked this turn, so no room to ask before them, or an ask
        that gave nothing (the uninterrupted run, with them in flight, told them then and
        asked again); whether it did. Its checkpoint is the turn's."""
        if not self._untold or self.inflight or rows:
            return False
        self._tell(self._untold, f"the {count(len(self._untold), 'result')} it was told are written and "
                                 f"told again on resume")
        self._untold = []
        return True

    def _taken_calls(self) -> list[dict[str, Any]]:
        """The calls the proposer made since the last take, checked as
        :func:`~search.proposals.checked_calls` rules. A ``take_calls`` that raised, or gave
        what ``proposer_calls`` cannot hold, gives none and stops the run after this turn as
        an ask that raised does (``_ask_failed``, unless an ask's error came first)."""
        try:
            return checked_calls(self.proposer.take_calls())
        except Exception as exc:
            _raise_if_interrupted(exc)
            self._ask_failed = self._ask_failed or ("take_calls", exc)
            return []

    def _initial_points(self, created: int, n: int) -> list[Proposal]:
        points = self.spec.search.initial_points
        if created >= len(points):
            return []
        out = []
        for point in points[created : created + n]:
            params, _ = self.space.complete(point)  # the spec checked it
            out.append(Proposal(self.space.encode(params), params=params,
                                meta={"source": "initial"}, proposer="initial"))
        return out

    def _started(self, evaluation_ids: list[int]) -> None:
        """The executor's word that workers started these: charge each an attempt.

        Where workers start on their own (Ray), with the loop's next write. Where the
        evaluation waits on its charge (inline), durably at once: on the row
        (:meth:`Store.mark_running`), or, while evaluations take less than
        ``LOG_STARTS_BELOW_S`` (1 ms), in the start log (:meth:`Store.log_starts`, a third of
        the commit on SQLite; on PostgreSQL sent, its round trip during the evaluation),
        which the loop's next write charges on the rows. A long evaluation's
        row reads ``running`` in the table itself while it runs.

        Where the evaluation waits on this (inline), the lease is first known to be this
        run's (:meth:`LeaseKeeper.holds`): a run that went on after a pause past its lease,
        its campaign taken over meanwhile, stops here (:class:`LeaseLost`) rather than run
        an evaluation whose result it could not write and charge the new holder's row."""
        if self.executor.reports_starts_late:
            self._to_charge.update(dict.fromkeys(evaluation_ids, time.time()))
            return
        if self._keeper is not None and not self._keeper.holds():
            self._lease_lost()
        if self._eval_s is None or self._eval_s >= LOG_STARTS_BELOW_S:
            with held_interrupts():  # charged and known so together (the log's window, below, is a few µs)
                self.store.mark_running(evaluation_ids)
                self._charged.update(evaluation_ids)
            return
        when = self.store.log_starts(self.cid, evaluation_ids)
        self._to_charge.update(dict.fromkeys(evaluation_ids, when))
        self._logged.update(evaluation_ids)
        self._charged.update(evaluation_ids)

    def _take_starts(self) -> tuple[dict[int, float], list[int]]:
        """The starts for the next write to charge on their rows, and which of them it
        takes out of the start log; none are left to charge after it."""
        started, self._to_charge = self._to_charge, {}
        logged = [i for i in started if i in self._logged]
        self._logged.difference_update(logged)
        return started, logged

    def _flush(self) -> None:
        """Wait for the turns written behind the loop (if it writes so) before a write of its own."""
        if self._writer is not None:
            self._writer.flush()

    def _dispatch(self, items: list[_InFlight]) -> None:
        if not items:
            return
        for item in items:
            item.attempts += 1
        seeds = evaluation_seeds(self.campaign_run.seed, [i.seq for i in items])
        self.executor.submit([EvaluationTask(i.evaluation_id, i.seq, i.params, seed, i.attempts)
                              for i, seed in zip(items, seeds, strict=True)])

    def _settle(self, outcomes: list[Outcome]) -> list[Outcome]:
        """The outcomes to record; a lost worker's evaluations go back to ``pending`` and
        out again while retries are left; a failed setup stops the run."""
        setup = [o for o in outcomes if o.setup_failed]
        if setup:  # the run stops once this turn's other outcomes are written (_stop_for_setup)
            self._setup_failed = self._setup_failed or setup
            outcomes = [o for o in outcomes if not o.setup_failed]
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
                                        error=f"{o.error} (gave up after {count(item.attempts, 'attempt')})")
            final.append(o)
        if retry and not self._setup_failed:  # a run that stops retries nothing: they stay in flight
            self._write([], [], [])  # their starts first, so that the requeue is the last word on them
            self._flush()
            self._requeue([i.evaluation_id for i in retry])
            self._dispatch(retry)
        return final

    def _results(self, outcomes: list[Outcome]) -> list[Result]:
        """Settle ``outcomes``: their cells, the proposer told, out of flight; the results to write."""
        if not outcomes:
            return []
        names = self.layout.measure_names
        done = [o for o in outcomes if o.status == "done"]
        placed: dict[int, tuple[int, np.ndarray]] = {}  # evaluation id → (cell, measure vector)
        if done:
            vectors = np.array([[o.measures[m] for m in names] for o in done], dtype=float)  # type: ignore[index]
            for o, cell, vector in zip(done, self.layout.index_of(vectors).tolist(), vectors, strict=True):
                placed[o.evaluation_id] = (cell, vector)
        results, observations = [], []
        for o in outcomes:
            item = self.inflight.pop(o.evaluation_id)
            self._unwritten.add(o.evaluation_id)
            cell, vector = placed.get(o.evaluation_id, (None, None))
            ok = cell is not None
            results.append(Result(
                evaluation_id=o.evaluation_id, status="done" if ok else "failed",
                objective=o.objective if ok else None, measures=o.measures, metrics=o.metrics,
                cell=cell, error=o.error, worker=o.worker,
            ))
            observations.append(Observation(
                evaluation_id=o.evaluation_id, seq=item.seq, x=item.x, params=item.params,
                fitness=self.sign * o.objective if ok and o.objective is not None else None,
                measures=vector, cell=cell, meta=item.meta, proposer=item.proposer,
            ))
        if self._group_cut:  # written, not told: the uninterrupted run asks more before it tells them
            self._untold += observations
            self._marking = True
            return results
        # its state may hold part of them: they are run again on resume, and told again
        self._tell([*self._untold, *observations],
                   f"the {len(results)} results it was told are not written and run again on resume")
        self._untold = []
        return results

    def _tell(self, observations: list[Observation], kept: str) -> None:
        """Tell the proposer ``observations``; :class:`ProposerFailed` saying what was ``kept`` where it raised."""
        try:
            self.proposer.tell(observations)
        except Exception as exc:
            _raise_if_interrupted(exc)
            raise ProposerFailed(proposer_failed_message(
                self.campaign.name, self.proposer.name, "tell", exc, kept, self.cli_words)) from exc

    def _checkpoint(self, results: int) -> CheckpointWrite:
        """The proposer's checkpoint for a write (:meth:`_proposer_state`), with the ids of the
        results it was not told once this run or its checkpoint had any (:meth:`Store.step`
        keeps their row, or drops it once they are told)."""
        state = self._proposer_state(results)
        if not self._marking:
            return (self.proposer.name, state)
        return (self.proposer.name, state, [o.evaluation_id for o in self._untold])

    def _proposer_state(self, results: int) -> bytes:
        """The proposer's checkpoint; :class:`ProposerFailed` where it cannot give one: its
        ``state()`` raised, returned anything but ``bytes``, or more than ``max_state_mb``
        (``ATLAS_MAX_PROPOSER_STATE_MB``): the turn is not written, the last checkpoint kept."""
        kept = f"this turn ({results} results) is not written; its evaluations run again on resume"
        try:
            state = self.proposer.state()
        except Exception as exc:
            _raise_if_interrupted(exc)
            raise ProposerFailed(proposer_failed_message(
                self.campaign.name, self.proposer.name, "state", exc, kept, self.cli_words)) from exc
        if not isinstance(state, bytes):
            raise ProposerFailed(proposer_output_message(
                self.campaign.name, f"{self.proposer.name}:", f"state() returned {type(state).__name__}, not bytes",
                kept, self.cli_words))
        if len(state) > self.max_state_mb * MB:
            raise ProposerFailed(proposer_output_message(
                self.campaign.name, f"{self.proposer.name}:",
                f"state() returned {len(state):,} bytes ({len(state) / MB:.3g} MB), over ATLAS_MAX_PROPOSER_STATE_MB="
                f"{self.max_state_mb:g} (a checkpoint is written every turn; raise it where the state is meant "
                f"to be this large)", kept, self.cli_words))
        return state

    def _fail_fast_tripped(self, outcomes: list[Outcome]) -> bool:
        """Whether, with ``outcomes``, this run's first ``fail_fast`` evaluations have all failed."""
        done = self._run_done + sum(o.status == "done" for o in outcomes)
        failed = self._run_failed + sum(o.status != "done" for o in outcomes)
        return self._all_failed(done, failed)

    def _all_failed(self, done: int, failed: int) -> bool:
        """The fail-fast rule: none of this run's evaluations done, and ``fail_fast`` failed,
        or every one this run finishes, where it finishes fewer (a run of 3 that all fail is
        refused as one of 10 is, not reported finished)."""
        return bool(self.fail_fast) and done == 0 and failed >= min(self.fail_fast, max(self._run_total, 1))

    def _check_fail_fast(self, outcomes: list[Outcome]) -> None:
        """Stop when this run's first ``fail_fast`` evaluations have all failed."""
        for o in outcomes:
            if o.status == "done":
                self._run_done += 1
            else:
                self._run_failed += 1
                self._first_error = self._first_error or (o.error or "unknown error")
        if self._all_failed(self._run_done, self._run_failed):
            first = (self._first_error or "").strip().splitlines()[0] if self._first_error else "unknown error"
            raise CampaignFailing(
                f"campaign {self.campaign.name!r}: the first {self._run_failed} evaluations all failed; "
                f"the first error: {first} (see `{self._failures_words()}`; "
                f"search.fail_fast: 0 turns this check off)")

    def _failures_words(self) -> str:
        """Where this campaign's failures are read, in the caller's words: ``atlas failures
        quad``, or the handle's ``failure_summary()`` (what that command groups)."""
        name = self.campaign.name
        return f"atlas failures {name}" if self.cli_words else f"archive.open(…).campaign({name!r}).failure_summary()"

    def _heartbeat(self) -> None:
        """Stop (:class:`LeaseLost`) once the lease is known gone (:meth:`LeaseKeeper.holds`:
        a renewal of the keeper's found it taken, or one made now, after a pause past half
        the TTL, did). The keeper renews it on its own thread, so that neither an inline
        evaluation nor a proposer's ask longer than the lease's TTL (a model's reply, a slow
        fit) lets it lapse."""
        if self._keeper is not None and not self._keeper.holds():
            self._lease_lost()

    def _lease_lost(self) -> None:
        """Raise :class:`LeaseLost`: the campaign deleted under the run, or its lease taken over."""
        if self.store.campaign(self.campaign.name) is None:
            raise LeaseLost(self._deleted())
        raise LeaseLost(f"campaign {self.campaign.name!r}: another scheduler took over while this one was paused "
                        f"or cut off from the storage for longer than the lease ({self.lease_ttl_s:g} s); "
                        f"it stopped without writing more")

    def _deleted(self) -> str:
        """The line a run whose campaign was deleted under it (a forced delete) stops with, the
        delete named in the caller's words (``atlas delete --force``, or the handle's)."""
        forced = "atlas delete --force" if self.cli_words else delete_words(self.campaign.name, force=True)
        return (f"campaign {self.campaign.name!r} was deleted while this run held it (`{forced}`); "
                f"this run stopped without writing more")

    def _report(self, final: bool = False) -> None:
        if self.progress is None:
            return
        now = time.time()
        if final or now - self._last_report >= 0.3:
            self._last_report = now
            self.progress(self.stats())
