"""The proposer registry: the one place that knows the algorithm names.

An algorithm is built in, listed in ``BUILTIN`` as ``module:Class`` and imported on first
use; or registered by the script that runs it (:func:`register`, for this process only);
or a plug-in: an entry point of the group ``entropy_atlas.proposers`` whose name is the
algorithm and whose object is the proposer class. A built-in name wins over a plug-in of
the same name (and cannot be registered); a registered one too.

Whatever names it, the class must be a :class:`~search.proposers.base.Proposer` subclass
that implements ``ask`` and ``tell``: anything else is refused with one line
(:class:`ProposerNotAvailable`) before the campaign is written.

The campaign spec checks ``search.algorithm`` with :func:`algorithm_problem` (so a
plug-in's name is accepted as soon as its package is installed), and a run builds its
proposer with :func:`build_proposer`.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from entropy_atlas.errors import AtlasError
from search.proposers.base import (
    Observation,
    OptionError,
    Proposal,
    Proposer,
    ProposerContext,
    ProposerFailed,
    construction_failed,
)

GROUP = "entropy_atlas.proposers"

BUILTIN: dict[str, str] = {
    "random": "search.proposers.random_search:RandomProposer",
    "map-elites": "search.proposers.ribs_emitters:MapElitesProposer",
    "cma-me": "search.proposers.ribs_emitters:CmaMeProposer",
    "cma-mae": "search.proposers.ribs_emitters:CmaMaeProposer",
    "bo": "search.proposers.bo:BoProposer",
    "qd-bo": "search.proposers.qd_bo:QdBoProposer",
    "mo-bo": "search.proposers.mo_bo:MoBoProposer",
    "optuna-tpe": "search.proposers.optuna_samplers:TpeProposer",
    "optuna-cmaes": "search.proposers.optuna_samplers:CmaEsProposer",
    "optuna-gp": "search.proposers.optuna_samplers:GpProposer",
    "optuna-nsga2": "search.proposers.optuna_samplers:Nsga2Proposer",
    "portfolio": "search.proposers.portfolio:PortfolioProposer",
    "llm": "search.proposers.llm:LlmProposer",
    "llm-mutate": "search.proposers.llm:LlmMutateProposer",
}


#: The classes registered by :func:`register` in this process, by algorithm name.
_REGISTERED: dict[str, type[Proposer]] = {}


class ProposerNotAvailable(AtlasError, LookupError):
    """No proposer is registered under the algorithm's name, its plug-in cannot be loaded, or
    what it names is not a proposer class."""


def class_problem(cls: Any) -> str | None:
    """Why ``cls`` cannot be a proposer's class (not a :class:`Proposer` subclass, or one
    that leaves ``ask`` or ``tell`` unimplemented), as the end of a line; None if it can."""
    if not (isinstance(cls, type) and issubclass(cls, Proposer)):
        return (f"is not a Proposer subclass ({Proposer.__module__}.{Proposer.__qualname__}): derive it from that "
                f"class and implement ask and tell (docs/proposers.md)")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        return f"does not implement {missing} (an abstract method of Proposer)"
    return None


def _where(cls: Any) -> str:
    """``module:Class`` of ``cls`` (its repr where it is no class)."""
    if isinstance(cls, type):
        return f"{cls.__module__}:{cls.__qualname__}"
    return repr(cls)


def _checked(algorithm: str, where: str, cls: Any) -> type[Proposer]:
    """``cls``, the class ``algorithm`` names (at ``where``), where it can be a proposer's."""
    problem = class_problem(cls)
    if problem is not None:
        raise ProposerNotAvailable(f"search.algorithm: the proposer {algorithm!r} ({where}) {problem}")
    return cls


def register(name: str, cls: type[Proposer]) -> None:
    """Make ``search.algorithm: <name>`` build ``cls`` in this process: a script's way to run
    its own proposer without packaging it as a plug-in. Register it before the campaign is
    parsed, run or resumed (the spec checks the name), and again in every process that runs
    or resumes the campaign (``atlas resume`` from the command line does not know it).

    Refused with one line: a ``name`` that is not a non-empty string, or that is a built-in
    algorithm's (``ValueError``); a ``cls`` that is not a :class:`Proposer` subclass
    implementing ``ask`` and ``tell`` (``TypeError``). Registering a name again replaces its
    class; a registered name wins over a plug-in of the same name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register: the algorithm's name must be a non-empty string, got {name!r}")
    problem = class_problem(cls)
    if problem is not None:
        raise TypeError(f"register: the proposer {name!r} ({_where(cls)}) {problem}")
    if name in BUILTIN:
        raise ValueError(f"register: {name!r} is a built-in algorithm ({BUILTIN[name]}); register "
                         f"{_where(cls)} under another name")
    _REGISTERED[name] = cls


def _plugins() -> list[EntryPoint]:
    """The entry points of :data:`GROUP`, read afresh (a package installed since counts)."""
    return list(entry_points(group=GROUP))


def available() -> list[str]:
    """Every algorithm name, built-in, registered and plug-in, sorted."""
    return sorted(set(BUILTIN) | set(_REGISTERED) | {ep.name for ep in _plugins()})


def is_available(algorithm: str) -> bool:
    """Whether ``algorithm`` names a proposer (a built-in or registered name is known without a scan)."""
    return algorithm in BUILTIN or algorithm in _REGISTERED or any(ep.name == algorithm for ep in _plugins())


def algorithm_problem(algorithm: str) -> str | None:
    """Why ``search.algorithm: <algorithm>`` cannot run, listing what is available; None if it can."""
    if is_available(algorithm):
        return None
    return f"unknown algorithm {algorithm!r}; one of {', '.join(available())}"


def proposer_class(algorithm: str) -> type[Proposer]:
    """The class of ``algorithm``: the built-in one, else the registered one, else the
    plug-in's, loaded; :class:`ProposerNotAvailable` where there is none, it cannot be
    loaded, or it is no proposer's class (:func:`class_problem`)."""
    if algorithm in BUILTIN:
        module, _, attr = BUILTIN[algorithm].partition(":")
        return _checked(algorithm, BUILTIN[algorithm], getattr(importlib.import_module(module), attr))
    if algorithm in _REGISTERED:
        return _REGISTERED[algorithm]  # checked by register
    for ep in _plugins():
        if ep.name == algorithm:
            try:
                loaded = ep.load()
            except Exception as exc:  # a broken plug-in is the user's to fix, named
                raise ProposerNotAvailable(
                    f"search.algorithm: the proposer {algorithm!r} ({ep.value}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}") from None
            return _checked(algorithm, ep.value, loaded)
    raise ProposerNotAvailable(
        f"search.algorithm: {algorithm!r} has no proposer installed (available: {', '.join(available())})"
    )


def build_proposer(algorithm: str, ctx: ProposerContext) -> Proposer:
    """A new proposer of ``algorithm``, built from ``ctx``. Its options' refusal is an
    :class:`OptionError`; any other error its constructor raises (a plug-in's bug) is a
    :class:`ProposerFailed` naming the proposer and where it raised, in one line."""
    cls = proposer_class(algorithm)
    try:
        return cls(ctx)
    except AtlasError:  # its options refused (OptionError), or a member's own line (a portfolio's)
        raise
    except Exception as exc:
        raise construction_failed(algorithm, ctx.goal, exc) from exc


__all__ = ["BUILTIN", "GROUP", "Observation", "OptionError", "Proposal", "Proposer", "ProposerContext",
           "ProposerFailed", "ProposerNotAvailable", "algorithm_problem", "available", "build_proposer",
           "class_problem", "is_available", "proposer_class", "register"]
