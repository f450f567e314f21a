"""The proposer registry: the one place that knows the algorithm names.

An algorithm is either built in, listed in ``BUILTIN`` as ``module:Class`` and imported on
first use, or a plug-in: an entry point of the group ``entropy_atlas.proposers`` whose
name is the algorithm and whose object is the proposer class. A built-in name wins over
a plug-in of the same name.

The campaign spec checks ``search.algorithm`` with :func:`algorithm_problem` (so a
plug-in's name is accepted as soon as its package is installed), and a run builds its
proposer with :func:`build_proposer`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

from entropy_atlas.errors import AtlasError
from search.proposers.base import Observation, OptionError, Proposal, Proposer, ProposerContext

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


class ProposerNotAvailable(AtlasError, LookupError):
    """No proposer is registered under the algorithm's name, or its plug-in cannot be loaded."""


def _plugins() -> list[EntryPoint]:
    """The entry points of :data:`GROUP`, read afresh (a package installed since counts)."""
    return list(entry_points(group=GROUP))


def available() -> list[str]:
    """Every algorithm name, built-in and plug-in, sorted."""
    return sorted(set(BUILTIN) | {ep.name for ep in _plugins()})


def is_available(algorithm: str) -> bool:
    """Whether ``algorithm`` names a proposer (a built-in name is known without a scan)."""
    return algorithm in BUILTIN or any(ep.name == algorithm for ep in _plugins())


def algorithm_problem(algorithm: str) -> str | None:
    """Why ``search.algorithm: <algorithm>`` cannot run, listing what is available; None if it can."""
    if is_available(algorithm):
        return None
    return f"unknown algorithm {algorithm!r}; one of {', '.join(available())}"


def proposer_class(algorithm: str) -> type[Proposer]:
    """The class of ``algorithm``: the built-in one, else the plug-in's, loaded."""
    if algorithm in BUILTIN:
        module, _, attr = BUILTIN[algorithm].partition(":")
        return getattr(importlib.import_module(module), attr)
    for ep in _plugins():
        if ep.name == algorithm:
            try:
                return ep.load()
            except Exception as exc:  # a broken plug-in is the user's to fix, named
                raise ProposerNotAvailable(
                    f"search.algorithm: the proposer {algorithm!r} ({ep.value}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}") from None
    raise ProposerNotAvailable(
        f"search.algorithm: {algorithm!r} has no proposer installed (available: {', '.join(available())})"
    )


def build_proposer(algorithm: str, ctx: ProposerContext) -> Proposer:
    """A new proposer of ``algorithm``, built from ``ctx``."""
    return proposer_class(algorithm)(ctx)


__all__ = ["BUILTIN", "GROUP", "Observation", "OptionError", "Proposal", "Proposer", "ProposerContext",
           "ProposerNotAvailable", "algorithm_problem", "available", "build_proposer", "is_available",
           "proposer_class"]
