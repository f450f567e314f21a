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
import pickle
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from archive.layout import CellLayout
from entropy_atlas.errors import AtlasError
from search.space import SearchSpace


@dataclasses.dataclass
class Proposal:
    """A candidate. ``params`` set means "evaluate exactly these" (else decode ``x``)."""

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

    def calls(self, proposer: str) -> list[dict[str, Any]]: ...


@dataclasses.dataclass
class ProposerContext:
    """Everything a proposer is built from."""

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


class OptionError(AtlasError, ValueError):
    """A proposer option that is unknown or out of range."""


class Proposer(abc.ABC):
    """Base class: subclasses implement ``ask`` and ``tell``; state is pickled."""

    name: str = "proposer"
    option_names: tuple[str, ...] = ()

    def __init__(self, ctx: ProposerContext) -> None:
        self.ctx = ctx
        unknown = set(ctx.options) - set(self.option_names)
        if unknown:
            raise OptionError(
                f"search.options: {', '.join(sorted(unknown))} not understood by {self.name} "
                f"(known: {', '.join(self.option_names) or 'none'})"
            )
        self.rng = np.random.default_rng(ctx.seed)

    def option(self, key: str, default: Any, check: Callable[[Any], bool] | None = None,
               rule: str = "") -> Any:
        value = self.ctx.options.get(key, default)
        if check is not None and not check(value):
            raise OptionError(f"search.options.{key}: {rule} (got {value!r})")
        return value

    @abc.abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Up to ``n`` candidates (fewer, even none, when waiting on results in flight)."""

    @abc.abstractmethod
    def tell(self, observations: list[Observation]) -> None:
        """Results of earlier proposals (and of initial points), in the order recorded."""

    def take_calls(self) -> list[dict[str, Any]]:
        """Calls to an outside model made since the last ask (written with its rows)."""
        return []

    def restore(self, state: bytes | None, history: History) -> None:
        """Load ``state()`` from a checkpoint, then rebuild caches from the archive."""
        if state is not None:
            self.__dict__.update(pickle.loads(state))

    def state(self) -> bytes:
        """What ``restore`` needs, minus caches that the archive can rebuild."""
        return pickle.dumps({k: v for k, v in self.__dict__.items() if k != "ctx"})

    # -- shared helpers ------------------------------------------------------
    def uniform(self, n: int) -> list[Proposal]:
        return [Proposal(x, meta={"source": "uniform"}) for x in self.rng.random((n, self.ctx.space.dim))]
