"""Cell layouts: which cell of the elite map a measures vector falls in.

Grid: each measure's [low, high] is cut into ``bins`` equal intervals; values outside
are clipped into the edge cells; cells are numbered in row-major (C) order, exactly as
``ribs.archives.GridArchive.index_of``: bin ⌊(bins·(m − low) + ε) / (high − low)⌋ with
ε = 10⁻⁶, in that order of operations, so that a measure on an interior edge (0.6 of
[0, 3] in 5 bins) falls in the bin above it, as in the proposers' own pyribs archives.
Layouts stored before this rule (no ``grid_rule`` in their JSON) keep the one they were
written with, ⌊(m − low) / (high − low) · bins⌋, which put some such edges a bin lower:
a campaign's cells never change under it. CVT: the cell is the nearest centroid;
centroids come from k-means over uniform samples (``ribs``' CVT construction) once, and
are stored with the campaign so every resume uses the same cells.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # ribs takes seconds to import, scipy a third of one, NumPy a tenth (`atlas elites` needs
    # none of them): only what needs them imports them
    import numpy as np
    from ribs.archives import CVTArchive, GridArchive
    from scipy.spatial import cKDTree


RIBS_RULE = "ribs"  # ⌊(bins·(m − low) + ε) / (high − low)⌋, as GridArchive.index_of
LEGACY_RULE = "floor"  # ⌊(m − low) / (high − low) · bins⌋, the rule of layouts stored before "ribs"
GRID_RULES = (RIBS_RULE, LEGACY_RULE)
RIBS_EPSILON = 1e-6  # GridArchive's default epsilon
NEIGHBOUR_TABLE_MAX = 4_000_000  # neighbour-table entries kept (32 MB); larger layouts work them out per call


@dataclasses.dataclass(frozen=True)
class MeasureAxis:
    name: str
    low: float
    high: float
    bins: int


class CellLayout:
    """The cells of an elite map, with the ribs archive that indexes them."""

    def __init__(self, kind: str, axes: list[MeasureAxis], centroids: np.ndarray | None = None,
                 grid_rule: str = RIBS_RULE) -> None:
        if kind not in ("grid", "cvt"):
            raise ValueError(f"unknown archive type {kind!r}")
        if grid_rule not in GRID_RULES:
            raise ValueError(f"unknown grid rule {grid_rule!r}")
        self.grid_rule = grid_rule
        if kind == "cvt" and centroids is None:
            raise ValueError("a CVT layout needs centroids")
        self.kind = kind
        self.axes = axes
        self.centroids = None if centroids is None else _array(centroids)
        self._tree: cKDTree | None = None
        self._neighbour_table: np.ndarray | None = None

    @property
    def measure_names(self) -> list[str]:
        return [a.name for a in self.axes]

    @property
    def ranges(self) -> list[tuple[float, float]]:
        return [(a.low, a.high) for a in self.axes]

    @property
    def dims(self) -> list[int]:
        return [a.bins for a in self.axes]

    @property
    def cells(self) -> int:
        if self.kind == "grid":
            return int(math.prod(self.dims))
        assert self.centroids is not None
        return len(self.centroids)

    def make_archive(self, solution_dim: int, **kwargs: Any) -> GridArchive | CVTArchive:
        """A fresh ribs archive over these cells (``kwargs`` go to its constructor)."""
        from ribs.archives import CVTArchive

        if self.kind == "grid":
            return clipped_grid_archive()(solution_dim=solution_dim, dims=self.dims, ranges=self.ranges, **kwargs)
        return CVTArchive(solution_dim=solution_dim, centroids=self.centroids, ranges=self.ranges, **kwargs)

    def index_of(self, measures: np.ndarray) -> np.ndarray:
        """Cell indices of an (n, k) array of measures."""
        import numpy as np

        measures = np.atleast_2d(np.asarray(measures, dtype=float))
        if len(measures) == 0:
            return np.zeros(0, dtype=int)
        if self.kind == "grid":
            lows = np.array([a.low for a in self.axes])
            highs = np.array([a.high for a in self.axes])
            dims = np.array(self.dims)
            if self.grid_rule == RIBS_RULE:  # ribs' expression, term for term (see the module's rule)
                scaled = (dims * (measures - lows) + RIBS_EPSILON) / (highs - lows)
            else:
                scaled = (measures - lows) / (highs - lows) * dims
            # clipped as floats before the cast, so that a measure far outside (1e20) cannot overflow it
            idx = np.clip(np.floor(scaled), 0, dims - 1).astype(np.int64)
            return np.ravel_multi_index(tuple(idx.T), tuple(dims)).astype(int)
        return self._kd_tree().query(measures)[1].astype(int)

    def _kd_tree(self) -> cKDTree:
        if self._tree is None:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.centroids)
        return self._tree

    @property
    def neighbour_count(self) -> int:
        """How many neighbours :meth:`neighbours` gives a cell: 3^m − 1 for m ≤ 3 measures
        (the cells around it), else 2m (one each way along each axis); a CVT layout at most
        its other cells."""
        m = len(self.axes)
        k = 3**m - 1 if m <= 3 else 2 * m
        return k if self.kind == "grid" else min(k, self.cells - 1)

    def neighbours(self, cells: np.ndarray) -> np.ndarray:
        """The neighbours of each of ``cells``, an (n, :attr:`neighbour_count`) array of cell
        indices, −1 where a grid cell at the edge has none that way. Grid: the cells whose
        bins differ by at most one on every axis (for more than 3 measures, by one on one
        axis); CVT: the nearest centroids to the cell's own. Worked out once for every cell
        where that table holds at most :data:`NEIGHBOUR_TABLE_MAX` entries, else per call."""
        import numpy as np

        cells = np.asarray(cells, dtype=np.int64)
        if len(cells) == 0 or self.neighbour_count == 0:  # a CVT layout of one cell has none
            return np.zeros((len(cells), self.neighbour_count), dtype=np.int64)
        if self.cells * self.neighbour_count <= NEIGHBOUR_TABLE_MAX:
            if self._neighbour_table is None:
                self._neighbour_table = self._neighbours_of(np.arange(self.cells))
            return self._neighbour_table[cells]
        return self._neighbours_of(cells)

    def _neighbours_of(self, cells: np.ndarray) -> np.ndarray:
        import itertools

        import numpy as np

        if self.kind == "cvt":
            assert self.centroids is not None
            return self._kd_tree().query(self.centroids[cells], k=self.neighbour_count + 1)[1][:, 1:].astype(np.int64)
        dims = np.array(self.dims)
        m = len(dims)
        if m <= 3:
            steps = np.array([s for s in itertools.product((-1, 0, 1), repeat=m) if any(s)])
        else:
            steps = np.concatenate([np.eye(m, dtype=int), -np.eye(m, dtype=int)])
        bins = np.stack(np.unravel_index(cells, tuple(dims)), axis=1)[:, None, :] + steps[None]
        inside = ((bins >= 0) & (bins < dims)).all(axis=2)
        flat = np.ravel_multi_index(tuple(np.clip(bins, 0, dims - 1).transpose(2, 0, 1)), tuple(dims))
        return np.where(inside, flat, -1).astype(np.int64)

    def cell_bounds(self, cell: int) -> list[tuple[float, float]]:
        """The measure-space box of a grid cell."""
        import numpy as np

        idx = np.unravel_index(cell, tuple(self.dims))
        out = []
        for a, i in zip(self.axes, idx, strict=True):
            width = (a.high - a.low) / a.bins
            out.append((a.low + i * width, a.low + (i + 1) * width))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "axes": [dataclasses.asdict(a) for a in self.axes],
            "centroids": None if self.centroids is None else self.centroids.tolist(),
            "grid_rule": self.grid_rule,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellLayout:
        centroids = data.get("centroids")
        return cls(
            data["kind"],
            [MeasureAxis(**a) for a in data["axes"]],
            None if centroids is None else _array(centroids),
            grid_rule=data.get("grid_rule", LEGACY_RULE),  # stored before the rule was named: the old one
        )

    @classmethod
    def build(cls, kind: str, axes: list[MeasureAxis], cells: int | None = None,
              samples: int = 25_000, seed: int = 0) -> CellLayout:
        """A new layout; for CVT, k-means centroids drawn once from ``seed``."""
        if kind == "grid":
            return cls("grid", axes)
        if not cells:
            raise ValueError("a CVT layout needs a number of cells")
        import numpy as np
        from ribs.archives import k_means_centroids

        ranges = np.array([(a.low, a.high) for a in axes])
        rng = np.random.default_rng(seed)
        pts = rng.uniform(ranges[:, 0], ranges[:, 1], size=(max(samples, cells), len(axes)))
        centroids = k_means_centroids(centroids=cells, ranges=ranges, samples=pts, seed=seed)
        if isinstance(centroids, tuple):
            centroids = centroids[0]
        return cls("cvt", axes, _array(centroids))


def _array(values: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(values, dtype=float)


@functools.cache
def clipped_grid_archive() -> type[GridArchive]:
    """pyribs' ``GridArchive`` whose ``index_of`` clips the measures into its ranges first.

    Its own casts the scaled measures to int32 before clipping the indices, so a measure
    more than 2**31 cells outside the range (1e12 on [0, 1] in 10 bins) wraps round into
    some other cell, where :meth:`CellLayout.index_of` and the elite table put it in the
    edge cell. A measure clipped into [low, high] falls in that edge cell by ribs' rule
    too; one inside the range is not changed.
    """
    import numpy as np
    from ribs.archives import GridArchive

    class ClippedGridArchive(GridArchive):
        def index_of(self, measures: Any) -> Any:
            return super().index_of(np.clip(np.asarray(measures, dtype=float), self.lower_bounds, self.upper_bounds))

    return ClippedGridArchive
