"""The Python API: the same operations as the command line.

    from search import api
    stats = api.run("examples/quickstart.yaml", storage="sqlite:///atlas.db", executor="inline")
    stats = api.resume("quickstart", storage="sqlite:///atlas.db")

A run is prepared whole before anything is written: the spec is checked, the evaluator's
config and target with it (:func:`workers.registry.check`; its warnings, such as a space
parameter the evaluator does not read, are logged on ``entropy_atlas.spec``), the cell
layout, the search space and the proposer are built and the executor chosen, then started, and the
evaluator's setup waited on (:meth:`~workers.executors.base.Executor.setup_problem`). Only
then is the campaign row created, so a refused campaign, or one whose evaluator cannot be
set up, leaves no trace in the storage. :func:`run` does every
check that needs no storage before it opens the storage at all (the executor, and the
proposer with each of its options, built on the spec's own layout; the executor started
and the evaluator's setup waited on): a refused campaign, a setup that fails and an
interrupt while it is waited on create no storage file and no schema either. One look comes
before all of these: a campaign whose lease a live scheduler holds is refused at once, as
its take would refuse it (:func:`refuse_busy`, read-only), not after the proposer's imports
(seconds) and the evaluator's setup; the take of the lease still decides.

The arguments are checked at the entry, before anything else, each wrong one a
``TypeError`` naming it and what it takes (``spec_or_path``, ``storage``, ``progress``, …),
where a bare error had come from the internals, or, for a ``progress`` that is not
callable, after the campaign was written (its rows left ``running``). A ``storage`` is a
URL, or a :class:`pathlib.Path` taken as a SQLite file's path
(:func:`archive.handle.storage_url`). :func:`resume` looks its campaign up before it
opens the storage for writing: a campaign that is not there creates no storage file.

:func:`check` runs the same checks, in the same order, through the same functions
(:meth:`_StorageAhead.look`), and says what the run would do (:class:`CheckReport`),
writing nothing and starting no workers (``setup=True``: the evaluator's setup, once, in
this process).

The executor is started inside the ``try`` that shuts it down: a start refused after it
has started something (a private Ray, then a cluster without the resources asked for)
leaves nothing running.

Each run builds its space and layout once (:class:`search.run.RunSetup`); the proposer
is built from that setup, and the scheduler gets the same objects with the campaign's
record (:class:`search.run.CampaignRun`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from archive.engine import (  # the default re-exported
    DEFAULT_STORAGE,
    default_storage,
    from_atlas_storage,
    missing_hint,
    new_file_problem,
    parse_storage_url,
    shown_url,
    sqlite_file,
)
from archive.errors import CampaignNotFound, NoArchive, SchemaBehind, StorageError, StorageURLError
from archive.handle import campaign_name, shown_value, storage_url
from archive.records import CampaignRecord, Stats, scheduler_is_live
from archive.store import Store
from entropy_atlas import interrupts, settings
from entropy_atlas.holders import holder_text
from search.campaigns import CampaignPlan, commit_campaign, layout_for, plan_campaign, stored_spec
from search.proposers import build_proposer
from search.proposers.base import OptionError, Proposer
from search.run import CampaignRun, RunSetup, setup_run
from search.scheduler import CampaignBusy, EvaluatorSetupFailed, Scheduler, busy_message, setup_failed_message
from search.spec import CampaignSpec, SpecError, evaluator_review, load_spec, parse_spec, spec_warnings
from workers.executors import ExecutorConfig, make_executor
from workers.executors import base as executor_base
from workers.executors.base import Executor

log = logging.getLogger("entropy_atlas.spec")

__all__ = ["DEFAULT_STORAGE", "CheckReport", "Completion", "as_spec", "check", "check_campaign", "checked_proposer",
           "checked_storage", "completion", "default_storage", "prepare", "require_stored", "resume", "run"]


def as_spec(spec_or_path: CampaignSpec | dict[str, Any] | str | Path) -> CampaignSpec:
    """A :class:`CampaignSpec` as it is, a dict parsed (made plain data first: :func:`plain_data`),
    a str or :class:`pathlib.Path` read as the campaign file; anything else a ``TypeError``."""
    if not isinstance(spec_or_path, CampaignSpec | dict | str | Path):
        raise TypeError(f"spec_or_path: must be a CampaignSpec, a dict, or a campaign file's path (a str or "
                        f"pathlib.Path), got {shown_value(spec_or_path)}")
    if isinstance(spec_or_path, CampaignSpec):
        return spec_or_path
    if isinstance(spec_or_path, dict):
        try:
            data = plain_data(spec_or_path)
        except RecursionError:  # the spec's own words: "(file): nested too deeply"
            data = spec_or_path
        return parse_spec(data)
    return load_spec(spec_or_path)


def plain_data(value: Any) -> Any:
    """``value``, a dict spec as a notebook writes it, as the plain data a campaign file
    holds: NumPy's scalars (``np.int64(10)``, ``np.float32(0.5)``, ``np.bool_(True)``) as the
    Python values they hold, a NumPy array as a list of them, a tuple as a list, through
    every dict and list; anything else as it is, for the spec to take or refuse. A spec's
    ``bins: np.int64(10)`` had been refused (``must be an integer (got an int64)``) and a
    tuple of measures read ``must be a list (got a list)``; the stored spec is plain JSON."""
    if isinstance(value, dict):
        return {plain_data(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def given_words(name: str | None = None, budget: int | None = None, cli_words: bool = False) -> str:
    """How an error or a warning names the overrides given: as Python's arguments
    (``name='q2', budget=10``), or, with ``cli_words``, as ``atlas``'s flags
    (``--name q2 --budget 10``), which the command line passes."""
    given = []
    if name is not None:
        given.append(f"--name {name}" if cli_words else f"name={name!r}")
    if budget is not None:
        given.append(f"--budget {budget}" if cli_words else f"budget={budget}")
    return (" " if cli_words else ", ").join(given)


def overridden(spec: CampaignSpec, name: str | None, budget: int | None, source: str,
               cli_words: bool = False) -> CampaignSpec:
    """``spec`` with another ``name`` or ``budget`` (:meth:`CampaignSpec.with_overrides`); a
    refused one names ``source`` and the override in the caller's words (:func:`given_words`):
    ``campaign with budget=-1 is not valid``, ``c.yaml with --budget -1`` for ``atlas``."""
    try:
        return spec.with_overrides(name=name, budget=budget, source=source)
    except SpecError as exc:
        if cli_words:
            raise
        raise SpecError(exc.problems, f"{source} with {given_words(name, budget)}") from None


def lowered_budget_warning(name: str, budget: int | None, stored: int, created: int,
                           cli_words: bool = False) -> str | None:
    """The warning that ``budget`` lowers campaign ``name``'s ``stored`` budget, where it
    does and a resume takes it (not below the ``created`` evaluations: that is refused);
    else None. The budget named in the caller's words (:func:`given_words`)."""
    if budget is None or not created <= budget < stored:
        return None
    return (f"{given_words(budget=budget, cli_words=cli_words)} lowers campaign {name}'s budget from {stored}: "
            f"it stops at {budget} evaluations")


def _logged(text: str) -> None:
    """A warning where the caller passed no ``on_warning``: logged at WARNING on
    ``entropy_atlas.spec``, as the evaluator's warnings are (Python's last-resort handler
    prints it on standard error where logging is not configured)."""
    log.warning("%s", text)


def checked_warner(on_warning: object) -> Callable[[str], None]:
    """``on_warning`` when it is callable, :func:`_logged` where it is None; else a ``TypeError``."""
    if on_warning is None:
        return _logged
    if not callable(on_warning):
        raise TypeError(f"on_warning: must be a callable taking a warning's text, or None, "
                        f"got {shown_value(on_warning)}")
    return on_warning  # type: ignore[return-value]


@contextlib.contextmanager
def _sigterm_as_stop() -> Iterator[None]:
    """A SIGTERM during the block, on the main thread of a process whose SIGTERM handler is
    the default (``SIG_DFL``: the caller set none), stops the run as a Ctrl-C does
    (:func:`entropy_atlas.interrupts.interrupt`: a :class:`KeyboardInterrupt` where the main
    thread is, a storage write finishing first); once the block has ended, the default is
    put back and the SIGTERM sent again, so that the process ends as a SIGTERM ends it (exit
    143, ``-15`` to its parent), with nothing charged. A second SIGTERM meanwhile ends it at
    once. A handler of the caller's own (or ``SIG_IGN``), or a thread other than the main
    one, is left as it is. It had killed the process at once: the campaign left ``running``
    with its rows ``running``, charged again on resume."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    received: list[int] = []

    def stop(signum: int, frame: Any) -> None:
        if received:  # a second: the caller insists
            _end_by_sigterm()
        received.append(signum)
        interrupts.interrupt(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is stop:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if received:
            interrupts.clear()  # acted on: not left for a later run of this process to find
            _end_by_sigterm()


def _end_by_sigterm() -> None:
    """End this process as SIGTERM's default action does (no exit handlers: as before)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _stops_cleanly(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """``function`` (:func:`run`, :func:`resume`) with a SIGTERM taken as a clean stop
    (:func:`_sigterm_as_stop`) and an interrupt raised as a plain :class:`KeyboardInterrupt`:
    the scheduler's internal ``InterruptedBatch`` (a subclass, with an empty message) had
    come out of the API."""

    @functools.wraps(function)
    def stoppable(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with _sigterm_as_stop():
            try:
                return function(*args, **kwargs)
            except KeyboardInterrupt as exc:
                if type(exc) is KeyboardInterrupt:
                    raise
                raise KeyboardInterrupt().with_traceback(exc.__traceback__) from None

    return stoppable


def checked_storage(storage: object) -> str:
    """The storage URL: ``storage`` (a URL, or a :class:`pathlib.Path` of a SQLite file), or
    the default where it is None (or empty); any other type a ``TypeError``. A default taken
    from ``$ATLAS_STORAGE`` that is no storage URL is refused here, naming the variable
    (``ATLAS_STORAGE=sqlit:///x: unsupported storage 'sqlit' …``)."""
    if storage is not None and storage != "":
        return storage_url(storage)
    url = default_storage()
    if os.environ.get("ATLAS_STORAGE"):
        try:
            parse_storage_url(url)
        except StorageURLError as exc:
            raise StorageURLError(from_atlas_storage(url, str(exc))) from None
    return url


def check_arguments(executor: object, address: object, progress: object, *, name: object = None,
                    budget: object = None) -> None:
    """A ``TypeError`` for an argument of :func:`run` or :func:`resume` of the wrong type:
    ``executor`` (a name or an :class:`Executor`), ``address`` (a str or None), ``progress``
    (a callable or None), ``name`` (a str or None), ``budget`` (an integer, not a bool, or
    None), each checked before anything is started or written. A value of the right type
    that the spec refuses (``budget=-1``) is the spec's error, as ``--budget -1`` is."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name: must be a campaign's name (a str) or None, got {shown_value(name)}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, numbers.Integral)):
        raise TypeError(f"budget: must be an integer or None, got {shown_value(budget)}")
    if not isinstance(executor, str | Executor):
        raise TypeError(f"executor: must be an executor's name (ray, inline) or an Executor, "
                        f"got {shown_value(executor)}")
    if address is not None and not isinstance(address, str):
        raise TypeError(f"address: must be a Ray cluster's address (a str) or None, got {shown_value(address)}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: must be a callable taking the run's Stats, or None, got {shown_value(progress)}")


def executor_config(spec: CampaignSpec) -> ExecutorConfig:
    return ExecutorConfig(
        kind=spec.evaluator.kind, config=dict(spec.evaluator.config), target=spec.evaluator.target,
        measure_names=[m.name for m in spec.measures], campaign=spec.name,
        num_cpus=spec.resources.num_cpus, num_gpus=spec.resources.num_gpus,
        timeout_s=spec.resources.timeout_s, max_in_flight=spec.search.max_in_flight,
        custom_resources=dict(spec.resources.custom), memory_mb=spec.resources.memory_mb, seed=spec.search.seed,
        whole_batches=spec.search.reproducible,
    )


def check_evaluator(spec: CampaignSpec, source: str = "campaign") -> None:
    """Raise :class:`SpecError` when the evaluator's kind, target or config is wrong;
    else log its warnings (:func:`evaluator_checked`)."""
    problems = evaluator_checked(spec)
    if problems:
        raise SpecError(problems, source)


def evaluator_checked(spec: CampaignSpec) -> list[str]:
    """The evaluator's problems with ``spec`` (:func:`~search.spec.evaluator_review`); where
    there are none, each of its warnings (a space parameter it does not read) is logged
    at WARNING on ``entropy_atlas.spec``, which ``atlas run`` and ``atlas resume`` print
    as ``warning:`` lines."""
    problems, warnings = evaluator_review(spec)
    for line in warnings:
        log.warning("%s", line)
    return problems


@dataclass
class PreparedRun:
    """Everything a run needs, built before the campaign row is written: what to write
    (``plan``), the run's one space and layout (``setup``), its proposer and executor."""

    plan: CampaignPlan
    setup: RunSetup
    proposer: Proposer
    executor: Executor

    def commit(self, store: Store, cli_words: bool = False) -> CampaignRun:
        """Write the planned campaign (:func:`commit_campaign`; its new run limits are the
        scheduler's to write, once it holds the lease) and return the run of it; a name taken
        meanwhile is refused in the caller's words (``cli_words``)."""
        return self.setup.committed(commit_campaign(store, self.plan, limits=False,  # the run writes them
                                                    cli_words=cli_words))


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
    problems = evaluator_checked(spec) if evaluator else []
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
             source: str = "campaign", budget_source: str | None = None, cli_words: bool = False) -> PreparedRun:
    plan = plan_campaign(store, spec, checked.setup.layout if checked else None, source, budget_source, cli_words)
    if checked is not None and plan.existing is None:
        return PreparedRun(plan, checked.setup, checked.proposer, ex)
    # The plan's spec: a campaign continued by an equivalent file (defaults written out) runs as stored.
    setup = setup_run(plan.spec, plan.layout)
    try:
        proposer = build_proposer(plan.spec.search.algorithm, setup.proposer_context())
    except OptionError as exc:
        raise SpecError(exc.lines, source) from None
    return PreparedRun(plan, setup, proposer, ex)


@dataclass(frozen=True)
class RunSettings:
    """The environment's settings a run takes (``ATLAS_LEASE_TTL``,
    ``ATLAS_MAX_PROPOSER_STATE_MB``), read before anything is written: a malformed one is
    refused with nothing created. ``ATLAS_DB_LOCK_TIMEOUT_S`` is read here too, whatever the
    storage: only PostgreSQL's engines use it, and a malformed one had been refused there
    and taken without a word on SQLite."""

    lease_ttl_s: float
    max_state_mb: float
    lock_timeout_s: float = 15.0

    @classmethod
    def read(cls) -> RunSettings:
        return cls(settings.lease_ttl_s(), settings.max_proposer_state_mb(), settings.db_lock_timeout_s())


def _run(store: Store, spec: CampaignSpec, ex: Executor, progress: Callable[[Stats], None] | None,
         run_settings: RunSettings, checked: CheckedProposer | None = None, source: str = "campaign",
         setup_checked: bool = False, budget_source: str | None = None, warning: str | None = None,
         on_warning: Callable[[str], None] = _logged, cli_words: bool = False) -> Stats:
    try:
        prepared = _prepare(store, spec, ex, checked, source, budget_source, cli_words)
        if warning is not None:  # once the plan is taken: a refusal stands alone
            on_warning(warning)
        ex.start()  # Ray's address and resources are refused before the campaign is written
        # and a setup that fails (:func:`run` waited on it before it opened the storage)
        problem = None if setup_checked else ex.setup_problem(executor_base.SETUP_CHECK_S)
        if problem is not None:
            written = prepared.plan.existing is not None
            raise EvaluatorSetupFailed(setup_failed_message(spec.name, problem, written=written, cli_words=cli_words))
        return Scheduler(store, prepared.commit(store, cli_words), prepared.proposer, ex, progress=progress,
                         lease_ttl_s=run_settings.lease_ttl_s, max_state_mb=run_settings.max_state_mb,
                         cli_words=cli_words).run()
    except BaseException:
        ex.shutdown()  # where the run did not get to (a busy campaign, a refused start); a second one does nothing
        raise


@_stops_cleanly
def run(spec_or_path: CampaignSpec | dict[str, Any] | str | Path,
        storage: str | os.PathLike[str] | None = None, executor: str | Executor = "ray",
        address: str | None = None, name: str | None = None, budget: int | None = None,
        progress: Callable[[Stats], None] | None = None, source: str | None = None,
        on_warning: Callable[[str], None] | None = None, *, cli_words: bool = False) -> Stats:
    """Create the campaign (or continue it if the same spec exists) and run it to budget.

    ``spec_or_path``: a :class:`CampaignSpec`, a dict (NumPy's numbers and tuples in it
    taken as plain numbers and lists: :func:`plain_data`), or the campaign file's path (str or
    :class:`pathlib.Path`); ``storage``: a URL, or a :class:`pathlib.Path` taken as a
    SQLite file's path (None: the default storage); ``progress``: a callable given the
    :class:`Stats` as the run goes, or None. A wrong type is a ``TypeError`` before
    anything is done. A refused campaign's errors name ``source`` (default: the file's
    path, when given one), a refused ``name`` or ``budget`` the override too, as Python's
    argument (``c1.yaml with budget=200``; ``cli_words``: as ``atlas``'s flag, ``c1.yaml
    with --budget 200``, which the command line passes), and so does the way on that a
    refusal gives: ``use another name=…, or resume it with `api.resume('c1', …)```, ``run
    more with budget= above 12`` (``cli_words``: ``--name``, ``atlas resume c1``, ``--budget``:
    :func:`~search.campaigns.plan_campaign`), and so does each stop of the run (a busy campaign,
    a proposer's error, a failed setup, a full or lost storage): ``api.resume('c1', …)``,
    ``archive.open(…, readonly=False).campaign('c1').delete()`` (``cli_words``: ``atlas resume
    c1``, ``atlas delete c1 --yes``: :class:`~search.scheduler.Scheduler`). Each of the file's warnings
    (:func:`~search.spec.spec_warnings`: ``search.batch_size: 10 is more than the budget (3)``)
    is given once every check that needs no workers has passed, so that a refusal stands
    alone: to ``on_warning``, where given (``atlas run`` prints them so), else logged at
    WARNING on ``entropy_atlas.spec``, as the evaluator's warnings are.

    Stopping: a Ctrl-C stops the run cleanly (what finished is written, what it cut short
    requeued uncharged) and raises a plain :class:`KeyboardInterrupt`. On the main thread of
    a process whose SIGTERM handler is the default (the caller set none), a SIGTERM stops it
    the same way; then the default is put back and the SIGTERM sent again, so the process
    still ends by it (exit 143), nothing charged. A SIGTERM handler of the caller's own is
    left alone (:func:`_sigterm_as_stop`)."""
    check_arguments(executor, address, progress, name=name, budget=budget)
    warn = checked_warner(on_warning)
    url, spec, source, budget = _given(spec_or_path, storage, name, budget, source, cli_words)
    ex = built_executor(spec, executor, address)  # before the storage is even opened
    run_settings = RunSettings.read()  # a malformed setting (ATLAS_LEASE_TTL, …) creates no storage
    budget_source = _budget_source(source, budget, cli_words)
    with _StorageAhead.open(url) as ahead:  # one read-only look serves the lease and the plan
        checked, stored = ahead.look(spec, source, budget_source, run_settings.lease_ttl_s, cli_words)
    for warning in spec_warnings(spec):  # once the checks that need no workers have passed: a refusal
        warn(warning)  # stands alone
    try:
        # a cluster that cannot serve it (resources, address): Store() below creates the file; and the
        # evaluator's setup (a failure, or an interrupt while it is waited on, leaves no new file)
        _set_up(ex, spec.name, written=stored, cli_words=cli_words)
        store = Store(url)
    except BaseException:
        ex.shutdown()  # a refused start too: the private Ray it started goes with it
        raise
    try:
        return _run(store, spec, ex, progress, run_settings, checked, source, setup_checked=True,
                    budget_source=budget_source, cli_words=cli_words)
    finally:
        store.close()


def _given(spec_or_path: CampaignSpec | dict[str, Any] | str | Path, storage: str | os.PathLike[str] | None,
           name: str | None, budget: int | None, source: str | None,
           cli_words: bool = False) -> tuple[str, CampaignSpec, str, int | None]:
    """What :func:`run` and :func:`check` are given, checked in the run's order: the storage
    URL, the spec with the ``name`` and ``budget`` overrides, where it came from (``source``,
    default: the file's path, else ``campaign``), and the budget override as an int (NumPy's
    integers as well)."""
    budget = None if budget is None else int(budget)
    url = checked_storage(storage)
    spec = as_spec(spec_or_path)
    source = source or (str(spec_or_path) if isinstance(spec_or_path, str | Path) else "campaign")
    if name is not None or budget is not None:
        spec = overridden(spec, name, budget, source, cli_words)
    return url, spec, source, budget


def _budget_source(source: str, budget: int | None, cli_words: bool = False) -> str:
    """Where a run's budget came from, as a refused budget names it: the file (``source``), or
    the file with the override in the caller's words (``c1.yaml with --budget 200``)."""
    return source if budget is None else f"{source} with {given_words(budget=budget, cli_words=cli_words)}"


def _set_up(ex: Executor, name: str, written: bool, cli_words: bool = False) -> None:
    """Start ``ex`` and wait on the evaluator's setup (:meth:`~workers.executors.base.Executor.setup_problem`);
    a setup that fails is :class:`~search.scheduler.EvaluatorSetupFailed` with the run's words
    for campaign ``name`` (``written``: the storage holds it already). The caller shuts ``ex`` down."""
    ex.start()
    problem = ex.setup_problem(executor_base.SETUP_CHECK_S)
    if problem is not None:
        raise EvaluatorSetupFailed(setup_failed_message(name, problem, written=written, cli_words=cli_words))


def refuse_busy(record: CampaignRecord | None, lease_ttl_s: float, cli_words: bool = False) -> None:
    """Raise :class:`~search.scheduler.CampaignBusy` where a live scheduler holds campaign
    ``record``'s lease (:func:`~archive.records.scheduler_is_live`: held, not expired, its
    holder not known dead), with the words the take of the lease refuses it with (its way on
    in Python's words, or with ``cli_words`` in ``atlas``'s): a look
    ahead, so that a busy campaign is refused before the proposer (its imports), the
    executor and the evaluator's setup are built. The take itself
    (:meth:`~search.scheduler.Scheduler.run`) still decides: a scheduler that takes the lease
    after this look still has the later run refused there."""
    if record is not None and record.lease_holder is not None \
            and scheduler_is_live(record.lease_holder, record.lease_expires):
        raise CampaignBusy(busy_message(record.name, record.lease_holder, lease_ttl_s, cli_words))


def _open_readonly(url: str) -> Store | None:
    """Storage ``url`` opened read-only, or None where its archive is at an older schema
    revision (:class:`~archive.errors.SchemaBehind`): that archive is taken to hold what it
    held, and only an open for writing (which brings it up) can read it. The one such open
    of :class:`_StorageAhead`, :func:`require_stored` and :func:`completion`; the other
    errors (no archive, not reachable) are raised, for each caller to take as it must."""
    try:
        return Store(url, readonly=True)
    except SchemaBehind:
        return None


@dataclass
class _StorageAhead:
    """What :func:`run` reads of its storage before the workers start, read-only and with
    one open for both looks: whether a live scheduler holds the campaign's lease
    (:meth:`refuse_busy`, before the proposer is built) and whether the storage holds a
    campaign this spec may not continue (:meth:`holds`, before an evaluator's setup that
    may take minutes). A SQLite file that is not there, or an empty database, holds nothing
    (``store`` None); an archive at an older schema revision (``behind``) is taken to hold
    the campaign, the open for writing bringing it up. A storage that cannot be opened (not
    reachable, refused), or that holds another application's tables (which the open for
    writing refuses), is kept in ``error``, not raised: :func:`run` raises
    it after the checks that need no storage, so that their errors still come first and
    the storage is not tried twice (a server that never answers costs one connect timeout)."""

    store: Store | None = None
    behind: bool = False
    error: StorageError | None = None
    record: CampaignRecord | None = None  # the campaign's, as :meth:`refuse_busy` read it
    plan: CampaignPlan | None = None  # what :meth:`holds` planned for a campaign the storage holds
    busy: bool = False  # a live scheduler holds the campaign's lease (:meth:`look`, ``busy_ok``)

    @classmethod
    def open(cls, url: str) -> _StorageAhead:
        parsed = parse_storage_url(url)
        path = sqlite_file(parsed)
        if parsed.get_backend_name() == "sqlite" and (path is None or not path.is_file()):
            # in memory, or no file yet; a path that cannot be one (its folder missing, a file where a
            # folder belongs) is said before the workers start, not after their setup
            return cls(error=None if path is None else new_file_problem(url, path))
        try:
            store = _open_readonly(url)
        except NoArchive as exc:  # empty: the open for writing creates the schema there
            # another application's tables: refused as the open for writing refuses them, before the workers start
            return cls() if exc.foreign is None else cls(error=exc.foreign)
        except StorageError as exc:
            return cls(error=exc)
        return cls(behind=True) if store is None else cls(store=store)

    def __enter__(self) -> _StorageAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.store is not None:
            self.store.close()

    def refuse_busy(self, name: str, lease_ttl_s: float, cli_words: bool = False) -> StorageError | None:
        """:func:`refuse_busy` for campaign ``name`` (in the caller's words: ``cli_words``);
        returns what the storage could not answer (the open's error, or the read's) for
        :func:`run` to raise later."""
        if self.store is None:
            return self.error
        try:
            self.record = self.store.campaign(name)
        except StorageError as exc:
            self.error = exc
            return exc
        refuse_busy(self.record, lease_ttl_s, cli_words)
        return None

    def look(self, spec: CampaignSpec, source: str, budget_source: str, lease_ttl_s: float,
             cli_words: bool = False, busy_ok: bool = False) -> tuple[CheckedProposer, bool]:
        """Every check of :func:`run` before its workers start, in its order: the lease
        (:meth:`refuse_busy`, before the proposer's imports), the checks that need no storage
        (:func:`check_campaign`), what the storage could not answer, then the campaign it holds
        (:meth:`holds`). Returns the proposer checked and whether the storage holds the
        campaign. ``busy_ok`` (:func:`check`): a campaign a live scheduler holds is noted
        (``busy``), not refused, and the checks go on."""
        try:
            unreachable = self.refuse_busy(spec.name, lease_ttl_s, cli_words)  # before the proposer
        except CampaignBusy:
            if not busy_ok:
                raise
            unreachable, self.busy = None, True
        checked = check_campaign(spec, source)  # likewise: a refused campaign creates no storage
        if unreachable is not None:  # what the look ahead met, said after the checks that need no storage
            raise unreachable
        return checked, self.holds(spec, source, budget_source, cli_words)  # a changed spec: refused here

    def holds(self, spec: CampaignSpec, source: str, budget_source: str | None = None,
              cli_words: bool = False) -> bool:
        """Whether the storage holds campaign ``spec.name``; one that ``spec`` may not
        continue (another spec, a budget below what it has, a failed campaign whose budget
        is spent) is refused here (:func:`~search.campaigns.plan_campaign`), in the caller's
        words (``cli_words``); one it may, planned (kept as ``plan``)."""
        if self.error is not None:
            raise self.error
        if self.store is None:
            return self.behind
        if self.store.campaign(spec.name) is None:
            return False
        self.plan = plan_campaign(self.store, spec, source=source, budget_source=budget_source, cli_words=cli_words)
        return True


@_stops_cleanly
def resume(name: str, storage: str | os.PathLike[str] | None = None, executor: str | Executor = "ray",
           address: str | None = None, budget: int | None = None,
           progress: Callable[[Stats], None] | None = None, on_warning: Callable[[str], None] | None = None,
           *, cli_words: bool = False) -> Stats:
    """Continue a stopped or killed campaign from what its storage holds. ``storage``,
    ``progress``, ``on_warning``, ``cli_words`` and stopping (Ctrl-C, SIGTERM) as for
    :func:`run`. A ``budget`` below the stored one (and not below the evaluations created:
    that is refused) is a warning, once the resume's checks have passed: ``budget=40 lowers
    campaign NAME's budget from 200: it stops at 40 evaluations`` (:func:`lowered_budget_warning`).
    The campaign is looked up before the storage is opened for writing
    (:func:`require_stored`): one that is not there is :class:`~archive.errors.CampaignNotFound`
    with nothing created."""
    name = campaign_name(name)
    check_arguments(executor, address, progress, budget=budget)
    warn = checked_warner(on_warning)
    budget = None if budget is None else int(budget)  # numpy's integers as well
    url = checked_storage(storage)
    run_settings = RunSettings.read()  # a malformed setting is refused before anything is written
    require_stored(url, name)
    store = Store(url)
    try:
        record, spec = stored_spec(store, name)
        refuse_busy(record, run_settings.lease_ttl_s, cli_words)  # before the evaluator, executor and proposer
        source = f"stored spec of {name}"  # what its errors name, as parsing it does
        budget_source, lowered = source, None
        if budget is not None:
            spec = overridden(spec, None, budget, source, cli_words)
            budget_source = f"{source} with {given_words(budget=budget, cli_words=cli_words)}"  # as it was given
            lowered = lowered_budget_warning(name, budget, record.settings.budget, store.count_created(record.id),
                                             cli_words)
        return _run(store, spec, checked_executor(spec, executor, address, source), progress, run_settings,
                    source=source, budget_source=budget_source, warning=lowered, on_warning=warn,
                    cli_words=cli_words)
    finally:
        store.close()


def require_stored(url: str, name: str) -> None:
    """Raise :class:`~archive.errors.CampaignNotFound` where storage ``url`` holds no
    campaign ``name``, writing nothing: a SQLite file that does not exist holds none (and
    is not created), and another storage is opened read-only to look. An archive at an
    older schema revision is left to the open for writing, which brings it up and looks;
    a storage that holds no archive is refused as the read commands refuse it."""
    path = sqlite_file(parse_storage_url(url))
    if path is not None and not path.exists():
        raise CampaignNotFound(f"no campaign named {name!r}: the storage file {path} does not exist; "
                               f"{missing_hint(path)}")
    store = _open_readonly(url)
    if store is None:
        return
    try:
        store.require_campaign(name)
    finally:
        store.close()


@dataclass(frozen=True)
class Completion:
    """What :func:`completion` read of a campaign, in one read-only open: whether it has
    nothing left to do (``complete``), its evaluations ``finished`` and ``created``, the
    ``budget`` judged (the one asked for, else the stored one) and the ``stored_budget``
    (what ``atlas resume --budget`` says it lowers)."""

    complete: bool
    finished: int
    budget: int
    stored_budget: int
    created: int


def completion(storage: str | Path, name: str, budget: int | None = None) -> Completion:
    """Whether campaign ``name`` has nothing left to do at ``budget`` (default: its own):
    every row created and finished, and the campaign recorded ``finished`` (a run killed
    after its last result but before that has its record to finish); with the counts and
    budgets read on the way (:class:`Completion`). Opens the storage once, read-only, but for
    an archive at an older schema revision, which it brings up (a resume writes).
    ``storage`` as for :func:`run` (None not taken)."""
    storage, name = storage_url(storage), campaign_name(name)
    store = _open_readonly(storage)
    if store is None:  # behind: the open for writing brings it up
        store = Store(storage)
    try:
        return completion_in(store, name, budget)
    finally:
        store.close()


def completion_in(store: Store, name: str, budget: int | None = None) -> Completion:
    """:func:`completion` read from an open ``store`` (a caller that holds one opens none)."""
    record = store.require_campaign(name)
    stored = record.settings.budget
    total = stored if budget is None else budget
    stats = store.stats(record.id, 0)
    below = budget is not None and budget < stats.created  # not "finished": the run refuses it (plan_campaign)
    done = stats.created >= total and not below and stats.finished == stats.created
    return Completion(complete=done and record.status == "finished", finished=stats.finished, budget=total,
                      stored_budget=stored, created=stats.created)


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check` found a run of a campaign file would do: the campaign (``name``,
    its ``algorithm``, ``budget``, ``batch_size``, ``max_in_flight``, its map's ``archive``
    type, ``cells`` and ``measures``, its ``evaluator``: the kind, and a ``python`` target
    after it) and, in ``storage`` (the URL, its password hidden), the ``campaign`` it is
    there: ``"new"``, one it ``"continues"``, or one ``"finished"`` at this budget, with the
    evaluations ``done`` and those it would run (``to_run``), or ``"unknown"`` (``done`` and
    ``to_run`` None) in an archive at an older schema revision, which the run brings up
    before it reads the campaign there (``behind``); ``held_by`` the scheduler that
    runs it now (a run now would be refused as busy), else None; the file's ``warnings``
    (the evaluator's, then the spec's: :func:`~search.spec.spec_warnings`), as ``atlas run``
    prints them; ``setup``: whether the evaluator's setup was run, and succeeded."""

    name: str
    algorithm: str
    budget: int
    batch_size: int
    max_in_flight: int
    archive: str
    cells: int
    measures: tuple[str, ...]
    evaluator: str
    storage: str
    campaign: str
    done: int | None
    to_run: int | None
    held_by: str | None
    warnings: tuple[str, ...]
    setup: bool = False
    behind: bool = False


def check(spec_or_path: CampaignSpec | dict[str, Any] | str | Path, storage: str | os.PathLike[str] | None = None,
          name: str | None = None, budget: int | None = None, setup: bool = False, *, source: str | None = None,
          on_warning: Callable[[str], None] | None = None, cli_words: bool = False) -> CheckReport:
    """Check a campaign as :func:`run` would, against the storage it would run on, and say
    what the run would do (:class:`CheckReport`); write nothing, start no workers.

    Arguments as :func:`run`'s. Each refusal of :func:`run` before its workers start is
    raised here with its words, by the run's own checks in its order: the arguments' types,
    the storage URL, the file, the ``name`` and ``budget`` overrides, the environment's
    settings (:class:`RunSettings`), the evaluator's kind, config and target and the
    proposer's options (:func:`check_campaign`), a storage that cannot be opened, and the
    campaign it holds (:meth:`_StorageAhead.look`: another spec, a budget below what it has,
    a spent fail-fast budget). A campaign a live scheduler holds is no refusal here: its
    holder is ``held_by``. A storage is only read: a SQLite file that is not there is not
    created, and an archive at an older schema revision is not brought up, as the run would
    bring it up before it reads the campaign there: the report says so (``behind``, the
    campaign ``"unknown"``), and what the archive holds is checked by a check after ``atlas
    migrate``, or by the run.

    ``setup``: the evaluator's setup is also run once, in this process (the inline
    executor's start and :meth:`~workers.executors.base.Executor.setup_problem`, then its
    shutdown): one that fails is the run's :class:`~search.scheduler.EvaluatorSetupFailed`.
    The warnings (the evaluator's, not logged meanwhile, then the file's) are in the report
    and each is given to ``on_warning`` where given, before the setup (``atlas check`` prints
    them so)."""
    check_arguments("inline", None, None, name=name, budget=budget)  # name's and budget's types, as run's
    if not isinstance(setup, bool):
        raise TypeError(f"setup: must be True or False, got {shown_value(setup)}")
    warn = checked_warner(on_warning) if on_warning is not None else None
    url, spec, source, budget = _given(spec_or_path, storage, name, budget, source, cli_words)
    run_settings = RunSettings.read()
    with _kept_warnings() as said, _StorageAhead.open(url) as ahead:
        checked, stored = ahead.look(spec, source, _budget_source(source, budget, cli_words),
                                     run_settings.lease_ttl_s, cli_words, busy_ok=True)
        campaign, done, to_run = ("unknown", None, None) if ahead.behind else _campaign_state(ahead, spec)
        held_by = holder_text(ahead.record.lease_holder) if ahead.busy and ahead.record else None
    warnings = (*said, *spec_warnings(spec))
    if warn is not None:
        for warning in warnings:
            warn(warning)
    if setup:
        ex = make_executor("inline", executor_config(spec))
        try:
            _set_up(ex, spec.name, written=stored, cli_words=cli_words)
        finally:
            ex.shutdown()
    planned = spec if ahead.plan is None else ahead.plan.spec
    layout = checked.setup.layout if ahead.plan is None else ahead.plan.layout
    evaluator = planned.evaluator
    return CheckReport(
        name=planned.name, algorithm=planned.search.algorithm, budget=planned.search.budget,
        batch_size=planned.search.batch_size, max_in_flight=planned.search.max_in_flight, archive=layout.kind,
        cells=layout.cells, measures=tuple(layout.measure_names),
        evaluator=evaluator.kind if evaluator.target is None else f"{evaluator.kind} {evaluator.target}",
        storage=shown_url(url), campaign=campaign, done=done, to_run=to_run, held_by=held_by, warnings=warnings,
        setup=setup, behind=ahead.behind)


def _campaign_state(ahead: _StorageAhead, spec: CampaignSpec) -> tuple[str, int, int]:
    """``(campaign, done, to_run)`` of :class:`CheckReport` for ``spec`` in the storage
    ``ahead`` looked at: ``new`` where it holds no such campaign; else ``finished`` where it
    has nothing left to do at ``spec``'s budget (:func:`completion_in`, as ``atlas run``
    judges it), or ``continues``, its finished evaluations done and the rest of the budget
    to run."""
    if ahead.plan is None or ahead.store is None:
        return "new", 0, spec.search.budget
    done = completion_in(ahead.store, spec.name, spec.search.budget)
    if done.complete:
        return "finished", done.finished, 0
    return "continues", done.finished, max(done.budget - done.finished, 0)


@contextlib.contextmanager
def _kept_warnings() -> Iterator[list[str]]:
    """The warnings this thread logs on ``entropy_atlas.spec`` during the block (the
    evaluator's: :func:`evaluator_checked`), kept in the list yielded and not logged; those
    of other threads (another run's) are logged as ever."""
    kept: list[str] = []
    thread = threading.get_ident()

    def keep(record: logging.LogRecord) -> bool:
        if record.thread != thread or record.levelno != logging.WARNING:
            return True
        kept.append(record.getMessage())
        return False

    log.addFilter(keep)
    try:
        yield kept
    finally:
        log.removeFilter(keep)
