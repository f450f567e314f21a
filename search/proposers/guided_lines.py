"""Iso+line variation guided by the cells around each parent: the adaptive map-elites' arms.

pyribs' IsoLineEmitter draws both elites uniformly:
x' = x_i + σ_iso N(0, I) + σ_line N(0, 1)(x_j − x_i). Two subclasses keep that step and
choose the elites from the archive's cells and their neighbours
(:meth:`archive.layout.CellLayout.neighbours`: the cells around a grid cell, the nearest
centroids of a CVT cell):

- :class:`FrontierLineEmitter` (a *filling* arm) draws x_i with probability ∝ 1 + e_i,
  e_i the number of empty cells among its cell's neighbours, x_j uniformly: a parent at
  the edge of what is found, or beside a hole, is drawn more often, and over a full map
  the draw is uniform.
- :class:`BetterNeighbourLineEmitter` (a *refining* arm) draws x_i uniformly and x_j
  uniformly among the elites of its neighbouring cells that score higher, and steps
  toward it: x' = x_i + σ_iso N(0, I) + |N(0, σ_line²)| (x_j − x_i). Where an objective
  varies smoothly over the map, a cell's best lies on its side toward the better
  neighbour, and the elites of two neighbouring cells lie near the curve of each cell's
  best, so a short step from x_i toward x_j improves x_i more often than a step along a
  random pair. An elite with no better neighbour (a local best of the map) takes pyribs'
  step with a uniform x_j.

Measured (docs/benchmarks.md, "Guided arms"): the small-budget table against pyribs went
from 22 to 24 of 24 cells at ≥ 1.0 on seeds 0–4 (mean ratio 1.192 → 1.246).

Every draw comes from the emitter's own generator (``_rng``, checkpointed as pyribs'
IsoLineEmitter's) and the archive's elites in their stored order (restored exactly on
resume), so a resumed campaign draws what an uninterrupted one would. Children are
clipped to the bounds, as pyribs clips.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ribs.emitters import IsoLineEmitter

if TYPE_CHECKING:
    from archive.layout import CellLayout

FRONTIER_WEIGHT = 1.0  # a filling arm's parent weight: 1 + this × its cell's empty neighbours


class ArchiveCells:
    """The archive's elites as the guided arms read them: solutions and objectives in the
    archive's order, each one's neighbouring cells as elite rows (−1: empty or none), and
    the filling arms' parent weights 1 + :data:`FRONTIER_WEIGHT` × (empty neighbouring
    cells), cumulated. Computed once after :meth:`expire` and
    shared by every arm of a proposer, which expires it before each ask (an ask adds
    nothing to the archive): one pass over the elites per ask, not one per arm."""

    def __init__(self, archive: Any, layout: CellLayout) -> None:
        self.archive, self.layout = archive, layout
        self._current: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def expire(self) -> None:
        self._current = None

    def current(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(solutions, objectives, neighbour rows, cumulative parent weights), one row per elite."""
        if self._current is None:
            data = self.archive.data(["index", "objective", "solution"])
            index = np.asarray(data["index"])
            nbrs = self.layout.neighbours(index)
            row_of = np.full(self.layout.cells + 1, -1, dtype=np.int64)  # cell → elite row; last slot: no neighbour
            row_of[index] = np.arange(len(index))
            rows = row_of[nbrs]
            empty = ((nbrs >= 0) & (rows < 0)).sum(axis=1)
            cumulative = np.cumsum(1.0 + FRONTIER_WEIGHT * empty)
            self._current = (np.asarray(data["solution"]), np.asarray(data["objective"], dtype=float), rows,
                             cumulative)
        return self._current


class _CellGuidedLine(IsoLineEmitter):
    """An IsoLineEmitter that reads the archive through :class:`ArchiveCells`: a proposer's
    shared one, or (``cells`` None) its own, read afresh at every ask."""

    def __init__(self, archive: Any, *, layout: CellLayout, cells: ArchiveCells | None = None,
                 **kwargs: Any) -> None:
        super().__init__(archive, **kwargs)
        self._shared = cells is not None
        self.cells = cells if cells is not None else ArchiveCells(archive, layout)

    def _elites(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not self._shared:
            self.cells.expire()
        return self.cells.current()

    def _line(self, xi: np.ndarray, xj: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """x_i + σ_iso N(0, I) + scale (x_j − x_i), clipped to the bounds."""
        iso = self._rng.normal(scale=self.iso_sigma, size=xi.shape)
        return np.clip(xi + iso + scale[:, None] * (xj - xi), self.lower_bounds, self.upper_bounds)


class FrontierLineEmitter(_CellGuidedLine):
    """Iso+line with x_i drawn ∝ 1 + :data:`FRONTIER_WEIGHT` × (empty neighbouring cells)."""

    def ask(self) -> np.ndarray:
        if self.archive.empty:
            return super().ask()
        solution, _, _, cumulative = self._elites()
        n = len(cumulative)
        i = np.minimum(np.searchsorted(cumulative, self._rng.random(self.batch_size) * cumulative[-1], side="right"),
                       n - 1)
        j = self._rng.integers(n, size=self.batch_size)
        scale = self._rng.normal(scale=self.line_sigma, size=self.batch_size)
        return self._line(solution[i], solution[j], scale)


class BetterNeighbourLineEmitter(_CellGuidedLine):
    """Iso+line from a uniform x_i toward the elite x_j of a better neighbouring cell,
    x' = x_i + σ_iso N(0, I) + |N(0, σ_line²)| (x_j − x_i); pyribs' step where none is better."""

    def ask(self) -> np.ndarray:
        if self.archive.empty:
            return super().ask()
        solution, objective, neighbour_rows, _ = self._elites()
        n = len(objective)
        i = self._rng.integers(n, size=self.batch_size)
        rows = neighbour_rows[i]  # (batch, neighbours): the neighbours' elite rows, −1 where empty or none
        better = (rows >= 0) & (objective[np.maximum(rows, 0)] > objective[i][:, None])
        key = np.where(better, self._rng.random(rows.shape), -1.0)  # a uniform choice among the better ones
        guided = better.any(axis=1)  # none in a layout of one cell, whose rows have no neighbours at all
        toward = rows[np.arange(self.batch_size), key.argmax(axis=1)] if rows.shape[1] else np.zeros_like(i)
        j = np.where(guided, toward, self._rng.integers(n, size=self.batch_size))
        scale = self._rng.normal(scale=self.line_sigma, size=self.batch_size)
        scale = np.where(guided, np.abs(scale), scale)
        return self._line(solution[i], solution[j], scale)
