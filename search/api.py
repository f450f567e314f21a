"""The Python API: the same operations as the command line.

    from search import api
    stats = api.run("examples/quickstart.yaml", storage="sqlite:///atlas.db", executor="inline")
    stats = api.resume("quickstart", storage="sqlite:///atlas.db")

A run is prepared whole before anything is written: the spec is checked, the evaluator's
config and target with it (:func:`workers.registry.check`), the cell layout, the search
space and the proposer are built and the executor chosen, then started, and the
evaluator's setup waited on (:meth:`~workers.executors.base.Executor.setup_problem`). Only
then is the campaign row created, so a refused campaign, or one whose evaluator cannot be
set up, leaves no trace in the storage. :func:`run` does every
check that needs no storage before it opens the storage at all (the executor, and the
proposer with each of its options, built on the spec's own layout): a refused campaign
creates no storage file and no schema either.

Each run builds its space and layout once (:class:`search.run.RunSetup`); the proposer
is built from that setup, and the scheduler gets the same objects with the campaign's
record (:class:`search.run.CampaignRun`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archive.engine import DEFAULT_STORAGE, default_storage  # re-exported: the API's default
from archive.errors import SchemaBehind
from archive.records import Stats
from archive.store import Store
from entropy_atlas import settings
from search.campaigns import CampaignPlan, commit_campaign, layout_for, plan_campaign, stored_spec
from search.proposers import build_proposer
from search.proposers.base import OptionError, Proposer
from search.run import CampaignRun, RunSetup, setup_run
from search.scheduler import EvaluatorSetupFailed, Scheduler, setup_failed_message
from search.spec import CampaignSpec, SpecError, evaluator_problems, load_spec, parse_spec
from workers.executors import ExecutorConfig, make_executor
from workers.executors import base as executor_base
from workers.executors.base import Executor

__all__ = ["DEFAULT_STORAGE", "as_spec", "check_campaign", "checked_proposer", "default_storage", "is_complete",
           "prepare", "resume", "run"]


def as_spec(spec_or_path: CampaignSpec | dict[str, Any] | str | Path) -> CampaignSpec:
    if isinstance(spec_or_path, CampaignSpec):
        return spec_or_path
    if isinstance(spec_or_path, dict):
        return parse_spec(spec_or_path)
    return load_spec(spec_or_path)


def executor_config(spec: CampaignSpec) -> ExecutorConfig:
    return ExecutorConfig(
        kind=spec.evaluator.kind, config=dict(spec.evaluator.config), target=spec.evaluator.target,
        measure_names=[m.name for m in spec.measures], campaign=spec.name,
        num_cpus=spec.resources.num_cpus, num_gpus=spec.resources.num_gpus,
        timeout_s=spec.resources.timeout_s, max_in_flight=spec.search.max_in_flight,
        custom_resources=dict(spec.resources.custom), memory_mb=spec.resources.memory_mb,
    )


def check_evaluator(spec: CampaignSpec, source: str = "campaign") -> None:
    """Raise :class:`SpecError` when the evaluator's kind, target or config is wrong."""
    problems = evaluator_problems(spec)
    if problems:
        raise SpecError(problems, source)


@dataclass
class PreparedRun:
    """Everything a run needs, built before the campaign row is written: what to write
    (``plan``), the run's one space and layout (``setup``), its proposer and executor."""

    plan: CampaignPlan
    setup: RunSetup
    proposer: Proposer
    executor: Executor

    def commit(self, store: Store) -> CampaignRun:
        """Write the planned campaign (:func:`commit_campaign`; its new run limits are the
        scheduler's to write, once it holds the lease) and return the run of it."""
        return self.setup.committed(commit_campaign(store, self.plan, limits=False))  # the run writes them


def built_executor(spec: CampaignSpec, executor: str | Executor, address: str | None) -> Executor:
    """``executor`` for ``spec``, not started: a name (``ray``, ``inline``; an unknown one is
    refused) or an executor already built (a simulated pool in benchmarks and tests)."""
    if isinstance(executor, Executor):
        return executor
    return make_executor(executor, executor_config(spec), address=address)


def checked_executor(spec: CampaignSpec, executor: str | Executor, address: str | None,
                     source: str = "campaign") -> Executor:
    """The evaluator checked (:func:`check_evaluator`), then :func:`built_executor`."""
    check_evaluator(spec, source)
    return built_executor(spec, executor, address)


@dataclass(frozen=True)
class CheckedProposer:
    """A proposer built before any storage is opened, on the spec's own layout."""

    setup: RunSetup
    proposer: Proposer


def checked_proposer(spec: CampaignSpec) -> CheckedProposer:
    """The proposer built on the spec's own layout (:func:`layout_for`), which checks each of
    its options (:class:`~search.proposers.base.OptionError`) with no storage open: a new
    campaign runs it as built; one that continues is built again on its stored layout."""
    setup = setup_run(spec, layout_for(spec))
    return CheckedProposer(setup, build_proposer(spec.search.algorithm, setup.proposer_context()))


def check_campaign(spec: CampaignSpec, source: str = "campaign", evaluator: bool = True) -> CheckedProposer:
    """Every check of a parsed campaign that needs no storage, its problems raised together
    as one :class:`SpecError` naming ``source`` (the file): the evaluator's kind, config and
    target (unless ``evaluator`` is False: ``atlas submit``, whose evaluator may need
    packages that only the cluster has), and each of the proposer's options
    (:func:`checked_proposer`, whose proposer is returned)."""
    problems = evaluator_problems(spec) if evaluator else []
    try:
        checked = checked_proposer(spec)
    except OptionError as exc:
        raise SpecError([*problems, *exc.lines], source) from None
    if problems:
        raise SpecError(problems, source)
    return checked


def prepare(store: Store, spec: CampaignSpec, executor: str, address: str | None) -> PreparedRun:
    """Check and build the whole run without writing (see the module's rule)."""
    return _prepare(store, spec, checked_executor(spec, executor, address))


def _prepare(store: Store, spec: CampaignSpec, ex: Executor, checked: CheckedProposer | None = None,
             source: str = "campaign") -> PreparedRun:
    plan = plan_campaign(store, spec, checked.setup.layout if checked else None, source)
    if checked is not None and plan.existing is None:
        return PreparedRun(plan, checked.setup, checked.proposer, ex)
    setup = setup_run(spec, plan.layout)
    try:
        proposer = build_proposer(spec.search.algorithm, setup.proposer_context())
    except OptionError as exc:
        raise SpecError(exc.lines, source) from None
    return PreparedRun(plan, setup, proposer, ex)


def _run(store: Store, spec: CampaignSpec, ex: Executor, progress: Callable[[Stats], None] | None,
         lease_ttl_s: float, checked: CheckedProposer | None = None, source: str = "campaign") -> Stats:
    prepared = _prepare(store, spec, ex, checked, source)
    prepared.executor.start()  # Ray's address and resources are refused before the campaign is written
    try:
        problem = prepared.executor.setup_problem(executor_base.SETUP_CHECK_S)  # and a setup that fails
        if problem is not None:
            written = prepared.plan.existing is not None
            raise EvaluatorSetupFailed(setup_failed_message(spec.name, problem, written=written))
        return Scheduler(store, prepared.commit(store), prepared.proposer, prepared.executor, progress=progress,
                         lease_ttl_s=lease_ttl_s).run()
    except BaseException:
        prepared.executor.shutdown()  # where the run did not get to (a busy campaign); a second one does nothing
        raise


def run(spec_or_path: CampaignSpec | dict[str, Any] | str | Path, storage: str | None = None,
        executor: str | Executor = "ray", address: str | None = None, name: str | None = None,
        budget: int | None = None, progress: Callable[[Stats], None] | None = None,
        source: str | None = None) -> Stats:
    """Create the campaign (or continue it if the same spec exists) and run it to budget.
    A refused campaign's errors name ``source`` (default: the file's path, when given one)."""
    spec = as_spec(spec_or_path)
    source = source or (str(spec_or_path) if isinstance(spec_or_path, str | Path) else "campaign")
    if name is not None or budget is not None:
        spec = spec.with_overrides(name=name, budget=budget, source=source)
    ex = built_executor(spec, executor, address)  # before the storage is even opened
    checked = check_campaign(spec, source)  # likewise: a refused campaign creates no storage
    lease_ttl_s = settings.lease_ttl_s()  # and so does a malformed ATLAS_LEASE_TTL
    ex.start()  # and a cluster that cannot serve it (resources, address): Store() below creates the file
    try:
        store = Store(storage or default_storage())
    except BaseException:
        ex.shutdown()
        raise
    try:
        return _run(store, spec, ex, progress, lease_ttl_s, checked, source)
    finally:
        store.close()


def resume(name: str, storage: str | None = None, executor: str | Executor = "ray", address: str | None = None,
           budget: int | None = None, progress: Callable[[Stats], None] | None = None) -> Stats:
    """Continue a stopped or killed campaign from what its storage holds."""
    lease_ttl_s = settings.lease_ttl_s()  # a malformed ATLAS_LEASE_TTL is refused before anything is written
    store = Store(storage or default_storage())
    try:
        _, spec = stored_spec(store, name)
        source = f"stored spec of {name}"  # what its errors name, as parsing it does
        if budget is not None:
            spec = spec.with_overrides(budget=budget, source=source)
        return _run(store, spec, checked_executor(spec, executor, address, source), progress, lease_ttl_s,
                    source=source)
    finally:
        store.close()


def is_complete(storage: str, name: str, budget: int | None = None) -> tuple[bool, int, int]:
    """Whether campaign ``name`` has nothing left to do at ``budget`` (default: its own):
    every row created and finished, and the campaign recorded ``finished`` (a run killed
    after its last result but before that has its record to finish). Returns (complete,
    finished, budget); opens read-only, but for an archive at an older schema revision,
    which it brings up (a resume writes)."""
    try:
        store = Store(storage, readonly=True)
    except SchemaBehind:
        store = Store(storage)
    try:
        record = store.require_campaign(name)
        total = record.settings.budget if budget is None else budget
        stats = store.stats(record.id, 0)
        below = budget is not None and budget < stats.created  # not "finished": the run refuses it (plan_campaign)
        done = stats.created >= total and not below and stats.finished == stats.created
        return done and record.status == "finished", stats.finished, total
    finally:
        store.close()
