"""One run of a campaign: its spec, search space, cell layout and record, built once.

A run is assembled in two steps so that nothing is written before it can be refused
(see :mod:`search.api`):

1. :class:`RunSetup`: the checked spec, its :class:`~search.space.SearchSpace` and its
   :class:`~archive.layout.CellLayout` (the stored one when the campaign continues),
   worked out before the campaign row is written (:func:`setup_run`). The proposer is built from it
   (:meth:`RunSetup.proposer_context`).
2. :class:`CampaignRun`: the same objects plus the campaign's record, once its row is
   committed (:meth:`RunSetup.committed`). The scheduler runs it.

The proposer and the scheduler share these objects: neither builds a space or a layout
of its own, and the settings both use (``batch_size``, ``seed``, the objective's
direction, ``qd_offset``) are read from the spec here only.
"""

from __future__ import annotations

import dataclasses

from archive.layout import CellLayout
from archive.records import CampaignRecord
from search.proposers.base import ProposerContext
from search.space import SearchSpace
from search.spec import CampaignSpec

__all__ = ["CampaignRun", "RunSetup", "setup_run"]


@dataclasses.dataclass(frozen=True)
class RunSetup:
    """What a run is built from, before anything is written: spec, space and layout."""

    spec: CampaignSpec
    space: SearchSpace
    layout: CellLayout

    @property
    def batch_size(self) -> int:
        """Candidates asked at a time (``search.batch_size``)."""
        return self.spec.search.batch_size

    @property
    def seed(self) -> int:
        """The campaign's seed (``search.seed``)."""
        return self.spec.search.seed

    @property
    def maximize(self) -> bool:
        """Whether the objective is maximised (``objective.direction``)."""
        return self.spec.objective.direction == "maximize"

    @property
    def sign(self) -> float:
        """+1 when maximising, -1 when minimising: fitness = sign * objective."""
        return 1.0 if self.maximize else -1.0

    @property
    def qd_offset(self) -> float:
        """The zero of the QD-score (``archive.qd_offset``)."""
        return self.spec.archive.qd_offset

    def proposer_context(self) -> ProposerContext:
        """What the proposer is built from: this setup's space and layout, and its settings."""
        spec = self.spec
        return ProposerContext(
            space=self.space, layout=self.layout, options=dict(spec.search.options),
            batch_size=self.batch_size, seed=self.seed,
            objective_name=spec.objective.name, maximize=self.maximize,
            qd_offset=self.qd_offset, evaluator_kind=spec.evaluator.kind,
            evaluator_config=dict(spec.evaluator.config), goal=spec.name,
        )

    def committed(self, record: CampaignRecord) -> CampaignRun:
        """The run of this setup once its campaign row is written as ``record``."""
        return CampaignRun(self.spec, self.space, self.layout, record)


@dataclasses.dataclass(frozen=True)
class CampaignRun(RunSetup):
    """A setup whose campaign row is committed: what the scheduler runs.

    ``record`` is the campaign's row; it is the campaign the spec names.
    """

    record: CampaignRecord

    def __post_init__(self) -> None:
        if self.record.name != self.spec.name:
            raise ValueError(f"the record of campaign {self.record.name!r} is not spec {self.spec.name!r}'s")


def setup_run(spec: CampaignSpec, layout: CellLayout) -> RunSetup:
    """The setup of ``spec`` on ``layout``; the run's one search space is built here."""
    return RunSetup(spec, SearchSpace(spec.space), layout)
