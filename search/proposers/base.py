"""The proposer protocol: ask for candidates, tell results, save and restore state.

A proposer works in the unit cube of :class:`search.space.SearchSpace`. The scheduler
writes each proposal as a ``pending`` row together with ``state()`` in one transaction,
and records results together with ``state()`` after ``tell`` in one transaction, so the
checkpoint always matches what the archive holds. On resume, ``restore`` gets the last
checkpoint and a :class:`History` view of the archive to rebuild caches from.
"""

from __future__ import annotations

import abc
import dataclasses
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from archive.layout import CellLayout
from entropy_atlas.errors import AtlasError
from entropy_atlas.names import closest_name, did_you_mean
from search.proposers import checkpoint
from search.proposers.checkpoint import Checkpoint
from search.space import SearchSpace


@dataclasses.dataclass
class Proposal:
    """A candidate. ``params`` set means "evaluate exactly these" (else decode ``x``).

    The scheduler checks every proposal before it stores it (``search/scheduler.py``,
    :class:`search.proposals.ProposalRows`): ``x`` is a vector of the space's dimension with finite
    coordinates, clipped into [0, 1] (the clipped ``x`` is stored, decoded and told);
    ``params``, where given, are repaired as :meth:`SearchSpace.repair_proposed` allows
    (clipped into bounds, an ``int`` rounded, unknown and inactive keys dropped) and ``x``
    re-encoded from them unless it decodes to them; ``meta`` is a dict (None: empty) that
    JSON can store; ``proposer`` a label of at most 64 characters. A clipped point is stored
    with ``clipped: true`` in its proposal, and the first of a run is one warning. Anything
    else stops the run with one line naming the proposer and the problem."""

    x: np.ndarray
    params: dict[str, Any] | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    proposer: str | None = None


@dataclasses.dataclass
class Observation:
    """A finished evaluation as a proposer sees it (``fitness`` None when it failed)."""

    evaluation_id: int
    seq: int
    x: np.ndarray
    params: dict[str, Any]
    fitness: float | None
    measures: np.ndarray | None
    cell: int | None
    meta: dict[str, Any]
    proposer: str = ""

    @property
    def ok(self) -> bool:
        return self.fitness is not None


class History(Protocol):
    """Read access to a campaign's archive, for rebuilding a proposer's caches."""

    def elites(self) -> list[Observation]: ...

    def finished(self) -> list[Observation]: ...

    def pending_x(self) -> np.ndarray: ...

    def in_flight(self) -> list[Observation]:
        """The evaluations in flight (as :meth:`pending_x`, by ``seq``) with their params,
        proposal (``meta``) and proposer, and no result (``fitness``, ``measures``, ``cell``
        None): what a proposer rebuilding its asks needs (the Optuna ones). Added after the
        others: a history written before it may lack it, so a proposer reads it with ``getattr``."""
        ...

    def calls(self, proposer: str) -> list[dict[str, Any]]: ...


@dataclasses.dataclass
class ProposerContext:
    """Everything a proposer is built from.

    A run builds it once from its setup (:meth:`search.run.RunSetup.proposer_context`):
    ``space`` and ``layout`` are the very objects the scheduler uses, and the settings
    (``batch_size``, ``seed``, the objective, ``qd_offset``) are read from the spec there.
    A proposer reads them here, never from the spec.
    """

    space: SearchSpace
    layout: CellLayout
    options: dict[str, Any]
    batch_size: int
    seed: int
    objective_name: str = "objective"
    maximize: bool = True
    qd_offset: float = 0.0
    evaluator_kind: str = ""
    evaluator_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    goal: str = ""
    options_path: str = "search.options"  # where ``options`` sit in the campaign file, for errors


class ProposerFailed(AtlasError, RuntimeError):
    """The proposer raised (a bug in it, a plug-in's or ours): one line naming it, the phase
    (``__init__``, ``restore``, ``ask``, ``tell``, ``state``…) and where it raised. Its
    constructor's, before anything is written (:func:`search.proposers.build_proposer`); the
    scheduler's phases stop the run as cleanly as a Ctrl-C (:mod:`search.scheduler`)."""


def raised_error(exc: BaseException) -> str:
    """``exc`` as one line: its type, the first line of its message, and where it was raised
    (``KeyError: 'needed' (at hill_climb.py:12, in __init__)``)."""
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        where = f" (at {Path(last.filename).name}:{last.lineno}, in {last.name})"
    lines = str(exc).strip().splitlines()
    return (f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__) + where


def construction_failed(proposer: str, campaign: str, exc: Exception) -> ProposerFailed:
    """The error of a proposer's constructor that raised anything but an :class:`OptionError`
    (a plug-in's bug): one line, raised before anything of the campaign is written."""
    named = f"campaign {campaign!r}: " if campaign else ""
    return ProposerFailed(f"{named}proposer {proposer} raised in __init__: {raised_error(exc)}; nothing was "
                          f"written; fix the proposer (or its options), then run the campaign again")


class OptionError(AtlasError, ValueError):
    """Proposer options that are unknown or out of range: one line (``lines``) each."""

    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)
        super().__init__("\n".join(lines))


class _ChecksEveryOption(abc.ABCMeta):
    """Building a proposer reports every bad option at once.

    A read that fails its check (:meth:`Proposer.option`) is recorded and reads as the
    default, so that the constructor reads on to the next one; the construction then
    raises one :class:`OptionError` with a line for each. A check across options raised
    by the constructor itself is reported only when no single option was bad (it may
    have read a default standing in for one); so is any other error it raised then.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        proposer = cls.__new__(cls)
        proposer.option_problems = []
        try:
            proposer.__init__(*args, **kwargs)
        except Exception as exc:
            if proposer.option_problems:
                raise OptionError(*proposer.option_problems) from None
            if isinstance(exc, OptionError):
                raise OptionError(*exc.lines) from None
            raise
        if proposer.option_problems:
            raise OptionError(*proposer.option_problems)
        return proposer


def is_int(value: Any) -> bool:
    """An integer, not a boolean (YAML's ``true`` is not a count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a boolean (non-finite numbers are refused with the file)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def formerly_shared(shared: tuple[str, ...], own: tuple[str, ...]) -> tuple[str, ...]:
    """The options of ``shared`` (a list one class once took for every algorithm of its
    family) that an algorithm taking ``own`` does not use: its :attr:`Proposer.ignored_options`."""
    return tuple(o for o in shared if o not in own)


class Proposer(metaclass=_ChecksEveryOption):
    """Base class: subclasses implement ``ask`` and ``tell``, and save their state explicitly.

    ``state()`` writes :meth:`to_checkpoint` (named JSON fields and arrays, never a pickle:
    :mod:`search.proposers.checkpoint`) under ``name`` and ``checkpoint_version``; a
    subclass with state of its own overrides :meth:`to_checkpoint` and :meth:`from_checkpoint`
    together, and bumps ``checkpoint_version`` when the fields change (listing in
    ``migrates_versions`` the older ones its :meth:`from_checkpoint` still reads).
    """

    name: str = "proposer"
    option_names: tuple[str, ...] = ()
    #: Options this algorithm takes but does not use: its siblings' (one class once took
    #: them all: :func:`formerly_shared`). Warned about (:meth:`option_warnings`), not
    #: refused, so that a stored campaign naming one still resumes; never read.
    ignored_options: tuple[str, ...] = ()
    checkpoint_version: int = 1
    migrates_versions: tuple[int, ...] = ()
    #: Its asks fit a model or call one (seconds, not microseconds): the scheduler writes a
    #: turn's results before it asks, so a stop or a kill during the ask loses none.
    asks_are_slow: bool = False
    option_problems: list[str]  # this construction's bad options, one line each (_ChecksEveryOption)

    def __init__(self, ctx: ProposerContext) -> None:
        self.ctx = ctx
        unknown = set(ctx.options) - set(self.option_names) - set(self.ignored_options)
        if unknown:
            self.option_problems.append(
                f"{ctx.options_path}: {', '.join(sorted(unknown))} not understood by {self.name} "
                f"(known: {', '.join(self.option_names) or 'none'}){_meant(sorted(unknown), self.option_names)}"
            )
        self.rng = np.random.default_rng(ctx.seed)

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any], path: str = "search.options") -> list[str]:
        """What valid ``options`` ask that is probably not meant, as ``path: reason`` lines:
        each option this algorithm takes but ignores (:attr:`ignored_options`)."""
        return [f"{path}.{key}: {cls.name} does not use it; it is ignored" for key in options
                if key in cls.ignored_options]

    # -- options: each read checked, every out-of-range value a line of one OptionError --
    def option(self, key: str, default: Any, check: Callable[[Any], bool] | None = None,
               rule: str = "") -> Any:
        """Option ``key`` (``default`` when absent), refused unless ``check`` holds: the
        refusal is recorded (:class:`_ChecksEveryOption`) and the default read instead."""
        value = self.ctx.options.get(key, default)
        if check is not None and not check(value):
            self.option_problems.append(str(self.option_error(key, f"{rule} (got {value!r})")))
            return default
        return value

    def option_error(self, key: str, reason: str) -> OptionError:
        """The error for option ``key``, named by its path in the campaign file."""
        return OptionError(f"{self.ctx.options_path}.{key}: {reason}")

    def int_option(self, key: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        """An integer in [``minimum``, ``maximum``] (a boolean is not one)."""
        top = maximum if maximum is not None else float("inf")
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        return self.option(key, default, lambda v: is_int(v) and minimum <= v <= top, f"must be an integer {bound}")

    def number_option(self, key: str, default: float, *, above: float | None = None, minimum: float | None = None,
                      maximum: float | None = None) -> float:
        """A number > ``above``, >= ``minimum`` and <= ``maximum`` (those given)."""
        tests = [(above, ">", float.__gt__), (minimum, ">=", float.__ge__), (maximum, "<=", float.__le__)]
        bounds = [(float(limit), f"{sign} {limit:g}", holds) for limit, sign, holds in tests if limit is not None]
        rule = " ".join(["must be a number", " and ".join(text for _, text, _ in bounds)]).rstrip()
        return float(self.option(key, default, lambda v: is_number(v) and all(
            holds(float(v), limit) for limit, _, holds in bounds), rule))

    def choice_option(self, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        """One of ``choices``."""
        return self.option(key, default, lambda v: isinstance(v, str | int) and not isinstance(v, bool)
                           and v in choices, "must be one of " + ", ".join(map(str, choices)))

    def flag_option(self, key: str, default: bool) -> bool:
        """``true`` or ``false``."""
        return bool(self.option(key, default, lambda v: isinstance(v, bool), "must be true or false"))

    def measures_option(self, key: str, default: list[str]) -> list[str]:
        """A non-empty list of the campaign's measure names, each once."""
        names = self.ctx.layout.measure_names
        return list(self.option(key, default, lambda v: isinstance(v, list) and len(v) >= 1 and len(set(map(str, v)))
                                == len(v) and all(m in names for m in v),
                                f"must be a list of measures, each once, from {', '.join(names)}"))

    def directions_option(self, key: str) -> dict[str, str]:
        """A mapping from measure names to ``maximize`` or ``minimize`` (absent: maximize)."""
        names = self.ctx.layout.measure_names
        return dict(self.option(key, {}, lambda v: isinstance(v, dict) and all(
            m in names and d in ("maximize", "minimize") for m, d in v.items()),
            f"must map measures ({', '.join(names)}) to maximize or minimize"))

    @abc.abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Up to ``n`` candidates (fewer, even none, when waiting on results in flight), as a
        list of :class:`Proposal` (a generator or an array is refused)."""

    @abc.abstractmethod
    def tell(self, observations: list[Observation]) -> None:
        """Results of earlier proposals (and of initial points), in the order recorded."""

    def take_calls(self) -> list[dict[str, Any]]:
        """Calls to an outside model made since the last ask (written with its rows): a list
        of dicts with ``proposer``, ``key``, ``request`` and ``status`` (the rules of
        :func:`search.proposals.checked_calls`; anything else stops the run with one line)."""
        return []

    # -- checkpoints ---------------------------------------------------------
    def state(self) -> bytes:
        """What ``restore`` needs, minus caches that the archive can rebuild: the bytes of
        :meth:`to_checkpoint` in the checkpoint format (no pickle). ``bytes`` only: anything
        else stops the run, as a ``state`` that raised does."""
        saved = self.to_checkpoint()
        return checkpoint.dumps(self.name, self.checkpoint_version, saved.fields, saved.arrays, saved.requires)

    def restore(self, state: bytes | None, history: History) -> None:
        """Load ``state()`` from a checkpoint (None: there is none yet), then rebuild caches
        from the archive. A legacy pickle is never unpickled: :meth:`from_legacy` rebuilds
        from the archive, or refuses; any other unreadable checkpoint is a
        :class:`~search.proposers.checkpoint.CheckpointError`. Any other error stops the
        run with one line (``proposer NAME raised in restore: …``) before it writes anything."""
        if state is not None and checkpoint.is_legacy_pickle(state):
            self.from_legacy(history)
            return
        versions = (self.checkpoint_version, *self.migrates_versions)
        self.from_checkpoint(None if state is None else checkpoint.loads(state, self.name, versions), history)

    def to_checkpoint(self) -> Checkpoint:
        """The base's state: the draws of ``rng`` (what :meth:`uniform` samples from)."""
        return Checkpoint(fields={"rng": checkpoint.rng_state(self.rng)})

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        """Put back what :meth:`to_checkpoint` saved (``saved`` None: start fresh), then
        rebuild caches from ``history``."""
        if saved is not None:
            checkpoint.set_rng_state(self.rng, saved.fields["rng"], f"{self.name}'s generator")

    def from_legacy(self, history: History) -> None:
        """Resume from a legacy pickle without reading it: by default refused, since the
        state it held cannot be told from the archive; a proposer that can rebuild its
        state from ``history`` alone overrides this."""
        raise checkpoint.legacy_error(self.name, "its state cannot be rebuilt from the archive")

    # -- shared helpers ------------------------------------------------------
    def uniform(self, n: int) -> list[Proposal]:
        return [Proposal(x, meta={"source": "uniform"}) for x in self.rng.random((n, self.ctx.space.dim))]


def rows_so_far(history: History) -> int:
    """Evaluations in the archive, finished or not: an upper bound on the draws, asks and
    generations a proposer made, used to pick fresh streams when resuming a legacy pickle."""
    return len(history.finished()) + len(history.pending_x())


def _meant(unknown: list[str], known: tuple[str, ...] | list[str]) -> str:
    """The "did you mean" of unknown option names (:mod:`entropy_atlas.names`' rule): one
    name's ``; did you mean 'sigma'?``, several names' ``; did you mean 'iso_sigma' for
    iso_sigm, 'sigma' for sigmaa?`` (those with a close known name), else empty."""
    if len(unknown) == 1:
        return did_you_mean(unknown[0], known)
    meant = [(name, closest_name(name, known)) for name in unknown]
    pairs = [f"{close!r} for {name}" for name, close in meant if close is not None and close != name]
    return f"; did you mean {', '.join(pairs)}?" if pairs else ""
