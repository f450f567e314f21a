"""Statistics of an archive, each rule once: every reader (the CLI, the figures, the
dashboard, the proposers) computes them here.

- **Fitness**: ``fitness = sign · objective``, ``sign`` = +1 when maximising, −1 when
  minimising (:attr:`archive.records.CampaignSettings.sign`), so more is always better.
- **Elite replacement**: a cell's elite is replaced only by a result of strictly better
  fitness, so a cell's elite fitness is the maximum over the results that landed in it
  (:func:`elite_fitness`); replayed result by result in :func:`replay`.
- **QD-score**: ``Σ_e (f_e − qd_offset)`` over the elites ``e`` (:func:`qd_score`).
- **Coverage**: ``elites / cells`` (:func:`coverage`).
- **Pareto front**: of points to maximise column-wise, those no other point dominates
  (at least as good in every column, better in one); BoTorch's ``is_non_dominated``
  (:func:`non_dominated`).
- **Exploration entropy** (Iron Mind): the mean over unit-cube coordinates of the
  normalised entropy of the options the points took (:func:`exploration_entropy`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def qd_score(fitness_sum: float, elites: int, qd_offset: float = 0.0) -> float:
    """The QD-score of ``elites`` elites whose fitness sums to ``fitness_sum``:

        QD = Σ_e (f_e − qd_offset) = Σ_e f_e − qd_offset · |E|

    (``qd_offset`` is the zero of the score: an elite below it counts against the map)."""
    return float(fitness_sum) - float(qd_offset) * int(elites)


def coverage(elites: int, cells: int) -> float:
    """The share of the map's cells that hold an elite, ``elites / cells`` (0 without cells)."""
    return int(elites) / int(cells) if cells else 0.0


def elite_fitness(cells: np.ndarray, fitness: np.ndarray, n_cells: int) -> np.ndarray:
    """Each cell's elite fitness after the results ``(cells[i], fitness[i])``: an elite is
    replaced only by a strictly better fitness, so it is the cell's maximum, and ``-inf``
    for a cell no result reached. Cells at or past ``n_cells`` extend the array."""
    cells = np.asarray(cells, dtype=np.int64)
    size = max(int(n_cells), int(cells.max()) + 1 if cells.size else 0)
    best = np.full(size, -np.inf)
    np.maximum.at(best, cells, np.asarray(fitness, dtype=float))
    return best


def replay(best: np.ndarray, cells: np.ndarray, fitness: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Apply results, in the order recorded, to ``best`` (each cell's elite fitness, ``-inf``
    for an empty cell; updated in place to :func:`elite_fitness` of old and new).

    Returns, for each result, the change of the QD-score it caused and whether it filled an
    empty cell. A result changes its cell only with a strictly better fitness: filling an
    empty cell adds ``fitness − offset``, improving an elite adds the improvement, anything
    else adds 0; so the running sum of the changes is the QD-score after each result,

        QD(t) = Σ over the cells filled by the first t results of (f*_c(t) − offset),

    and its end equals :func:`qd_score` of the elites left.
    """
    if len(cells) == 0:
        return np.zeros(0), np.zeros(0, dtype=bool)
    cells = np.asarray(cells, dtype=np.int64)
    fitness = np.asarray(fitness, dtype=float)
    # by cell, in the order recorded within each: the running best is a cumulative maximum per
    # group, taken over ranks offset by group so that no group's maximum runs into the next
    order = np.argsort(cells, kind="stable")
    grouped = cells[order]
    first = np.concatenate(([True], grouped[1:] != grouped[:-1]))
    group = np.cumsum(first) - 1
    values, rank = np.unique(fitness[order], return_inverse=True)
    top = np.maximum.accumulate(group * len(values) + rank.reshape(-1)) - group * len(values)
    prior = best[grouped]  # the cell's elite before these results
    running = np.maximum(values[top], prior)
    before = np.where(first, prior, np.concatenate(([np.nan], running[:-1])))
    filled = ~np.isfinite(before)
    delta = running - np.where(filled, offset, before)
    best[:] = np.maximum(best, elite_fitness(cells, fitness, len(best)))
    out_delta, out_filled = np.empty(len(cells)), np.empty(len(cells), dtype=bool)
    out_delta[order], out_filled[order] = delta, filled
    return out_delta, out_filled


def normalised_entropy(counts: np.ndarray | Sequence[int], options: int) -> float:
    """The entropy of how often each of ``options`` options was taken (``counts``, one per
    option taken; zeros allowed), normalised to [0, 1]:

        H = −Σ_o p_o log₂ p_o / log₂ n,   p_o = counts_o / Σ counts      (0 when n ≤ 1 or no counts)
    """
    counts = np.asarray(counts, dtype=float)
    total = counts.sum()
    if options <= 1 or total <= 0:
        return 0.0
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum() / math.log2(options))


def exploration_entropy(x: np.ndarray, options: Sequence[int]) -> float:
    """Iron Mind's exploration entropy of the points ``x`` (rows in the unit cube): the mean
    over coordinates ``j`` of the :func:`normalised_entropy` of which of its ``n_j`` options
    each point took, option ``min(⌊x_j · n_j⌋, n_j − 1)`` (``x_j`` clipped to [0, 1]).

    ``options`` is :attr:`archive.records.CampaignSettings.coordinate_options`: a
    categorical parameter's choices, :data:`archive.records.EXPLORATION_BINS` equal bins for
    a number. 1 is even use of every option, 0 a single one; 0 for no points.
    """
    x = np.asarray(x, dtype=float)
    if len(x) == 0 or not len(options):
        return 0.0
    values = []
    for d, n in enumerate(options):
        if n <= 1:
            values.append(0.0)
            continue
        taken = np.minimum(np.floor(np.clip(x[:, d], 0.0, 1.0) * n), n - 1).astype(np.int64)
        values.append(normalised_entropy(np.bincount(taken, minlength=n), n))
    return float(np.mean(values))


def exploration_by_proposer(proposers: Sequence[str], x: np.ndarray, options: Sequence[int]) -> dict[str, float]:
    """:func:`exploration_entropy` of each proposer's points (``proposers[i]`` made
    ``x[i]``), the proposers in the order they first appear."""
    labels = np.asarray(proposers, dtype=object)
    x = np.asarray(x, dtype=float).reshape(len(labels), -1) if len(labels) else np.zeros((0, len(options)))
    return {name: exploration_entropy(x[labels == name], options) for name in dict.fromkeys(proposers)}


def non_dominated(points: np.ndarray) -> np.ndarray:
    """A boolean mask of the rows of ``points`` (n × k, every column to maximise) on the
    Pareto front; duplicates of a front point are all kept, and a row with a NaN is never
    on it. Two columns are swept in O(n log n) (the same rule; BoTorch compares every pair,
    seconds at 10⁵ points); more go to BoTorch's ``is_non_dominated``."""
    points = np.asarray(points, dtype=float)
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    if points.ndim == 2 and points.shape[1] == 2:
        return _non_dominated_2d(points)
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    return is_non_dominated(torch.as_tensor(points, dtype=torch.float64), deduplicate=False).numpy()


def _non_dominated_2d(points: np.ndarray) -> np.ndarray:
    """:func:`non_dominated` of two columns ``(a, b)``: sorted by ``a`` best first, a point is
    dominated when a point of strictly greater ``a`` has ``b`` at least as good, or one of
    equal ``a`` has a strictly greater ``b``."""
    out = np.zeros(len(points), dtype=bool)
    ok = np.flatnonzero(~np.isnan(points).any(axis=1))
    if ok.size == 0:
        return out
    a, b = points[ok, 0], points[ok, 1]
    order = np.lexsort((-b, -a))
    a, b = a[order], b[order]
    starts = np.flatnonzero(np.concatenate(([True], a[1:] != a[:-1])))  # groups of equal a, best first
    group = np.cumsum(np.concatenate(([True], a[1:] != a[:-1]))) - 1
    group_best = b[starts]  # sorted by b within a group: its first is its best
    before = np.concatenate(([-np.inf], np.maximum.accumulate(group_best)[:-1]))  # best b of greater a
    has_before = group > 0
    keep = (b == group_best[group]) & ~(has_before & (before[group] >= b))
    out[ok[order[keep]]] = True
    return out
