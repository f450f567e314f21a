"""Proposers by algorithm name.

Built-in ones are listed in ``BUILTIN`` as ``module:Class`` and imported on first use;
other packages add theirs through the entry-point group ``entropy_atlas.proposers``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

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
    """The algorithm is known to the spec but has no proposer installed."""


def proposer_class(algorithm: str) -> type[Proposer]:
    if algorithm in BUILTIN:
        module, _, attr = BUILTIN[algorithm].partition(":")
        return getattr(importlib.import_module(module), attr)
    for ep in entry_points(group=GROUP):
        if ep.name == algorithm:
            return ep.load()
    raise ProposerNotAvailable(
        f"search.algorithm: {algorithm!r} has no proposer installed (available: {', '.join(available())})"
    )


def available() -> list[str]:
    return sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=GROUP)})


def build_proposer(algorithm: str, ctx: ProposerContext) -> Proposer:
    return proposer_class(algorithm)(ctx)


__all__ = ["Observation", "OptionError", "Proposal", "Proposer", "ProposerContext",
           "ProposerNotAvailable", "available", "build_proposer", "proposer_class"]
