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
- **Exploration entropy** (Iron Mind, ``figure_7_S10.compute_individual_run_cumulative_entropy``):
  per run of T = 20 consecutive evaluations of a proposer, the mean over unit-cube
  coordinates of ``−Σ_o p_o log₂ p_o / log₂ n``, ``p_o`` = (active evaluations that took
  option ``o``) / T; reported as the mean and spread over the proposer's runs
  (:func:`exploration_entropy`, :func:`exploration_runs`, :func:`exploration_of`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from archive.records import CampaignSettings


def qd_score(fitness_sum: float, elites: int, qd_offset: float = 0.0) -> float:
    """The QD-score of ``elites`` elites whose fitness sums to ``fitness_sum``:

        QD = Σ_e (f_e − qd_offset) = Σ_e f_e − qd_offset · |E|

    (``qd_offset`` is the zero of the score: an elite below it counts against the map)."""
    return float(fitness_sum) - float(qd_offset) * int(elites)


def fitness_sum(fitness: Sequence[float]) -> float:
    """``Σ fitness`` exactly rounded (``math.fsum``): SQL's ``SUM`` adds in order, and elites
    of 1e308 and −1e308 beside 123456789.1 summed to 0 on SQLite. A sum past the float
    range is ±inf; ``fsum`` refuses partial sums that overflow even where the sum does not,
    and then each fitness, an exact integer multiple of 2⁻¹⁰⁷⁴ (the smallest float), is
    summed as an integer and divided back, which rounds once."""
    try:
        return math.fsum(fitness)
    except OverflowError:
        units = sum(n * (2**1074 // d) for n, d in map(float.as_integer_ratio, fitness))
        try:
            return units / 2**1074  # int / int: correctly rounded
        except OverflowError:
            return math.inf if units > 0 else -math.inf


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
    # (16-bit keys are radix-sorted: a map of up to 65,536 cells sorts 10⁶ results in 10 ms, not 100)
    small = cells.min() >= 0 and cells.max() < 2 ** 16
    order = np.argsort(cells.astype(np.uint16) if small else cells, kind="stable")
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


RUN_LENGTH = 20  # Iron Mind's run length T (``n_tracks = 20`` runs of ``track_size = 20``)


@dataclasses.dataclass(frozen=True)
class Exploration:
    """A proposer's exploration entropy over its runs of ``run_length`` evaluations: the
    ``mean`` and sample standard deviation ``std`` (ddof = 1) of the per-run values
    (:func:`exploration_entropy`) over ``runs`` runs; ``mean`` is ``None`` without a complete
    run, ``std`` without two. ``runs_total`` is how many complete runs the proposer has
    (``None``: the same as ``runs``, every run was used; set, and more, when the value
    comes from the proposer's latest runs only, :func:`archive.exploration.campaign_exploration`)."""

    mean: float | None
    std: float | None
    runs: int
    run_length: int
    runs_total: int | None = None

    @property
    def sampled(self) -> bool:
        """Whether only some of the proposer's runs were used."""
        return self.runs_total is not None and self.runs_total > self.runs

    def to_json(self) -> dict[str, Any]:
        """``{mean, std, runs, run_length}`` (``runs``: the runs the mean is over), and
        ``runs_total`` when it was counted (:class:`Exploration` takes the dict back as keywords)."""
        out: dict[str, Any] = {"mean": self.mean, "std": self.std, "runs": self.runs, "run_length": self.run_length}
        if self.runs_total is not None:
            out["runs_total"] = self.runs_total
        return out

    def text(self) -> str:
        """As ``atlas status`` shows it: ``0.81 ± 0.05 (5 runs of 20)``, or for a sample
        ``0.81 ± 0.05 (latest 100 of 12,500 runs of 20)``."""
        if self.mean is None:
            return f"— (fewer than {self.run_length})"
        spread = f" ± {self.std:.2f}" if self.std is not None else ""
        if self.sampled:
            return f"{self.mean:.2f}{spread} (latest {self.runs:,} of {self.runs_total:,} runs of {self.run_length})"
        return f"{self.mean:.2f}{spread} ({self.runs} run{'s' if self.runs != 1 else ''} of {self.run_length})"


def active_coordinates(params: Sequence[Mapping[str, Any] | None], coordinate_params: Sequence[str],
                       dim: int | None = None) -> np.ndarray:
    """An (n × d) mask: coordinate ``j`` is active for evaluation ``i`` when its parameter
    ``coordinate_params[j]`` is in ``params[i]`` (:meth:`search.space.SearchSpace.decode`
    leaves inactive conditional parameters out). Without ``coordinate_params`` (settings
    written before them) every one of the ``dim`` coordinates is active."""
    if not coordinate_params:
        return np.ones((len(params), int(dim or 0)), dtype=bool)
    names = list(dict.fromkeys(coordinate_params))
    found = {name: np.fromiter((p is not None and name in p for p in params), dtype=bool, count=len(params))
             for name in names}
    return np.column_stack([found[name] for name in coordinate_params]).reshape(len(params), len(coordinate_params))


def run_entropies(x: np.ndarray, options: Sequence[int], active: np.ndarray | None = None,
                  run_length: int = RUN_LENGTH) -> np.ndarray:
    """Iron Mind's exploration entropy of each run of ``T = run_length`` consecutive points
    (rows of ``x`` in the unit cube; ``figure_7_S10.compute_individual_run_cumulative_entropy``),
    ``⌊N / T⌋`` runs, a shorter last one left out: for run ``r`` the mean over coordinates
    ``j`` of

        H_rj = −Σ_o p_o log₂ p_o / log₂ n_j,   p_o = c_rjo / T      (H_rj = 0 when n_j ≤ 1)

    where ``c_rjo`` counts the points of run ``r`` whose coordinate ``j`` is active
    (``active[i, j]``; all, without ``active``) and took option ``o = min(⌊x_j · n_j⌋, n_j − 1)``
    (``x_j`` clipped to [0, 1]). An inactive coordinate adds no count and ``T`` stays the
    run's length, as the official rule divides by the iterations of the run, not by those
    that set the parameter; a coordinate never active in a run has H = 0 there and still
    counts in the mean.

    ``options`` is :attr:`archive.records.CampaignSettings.coordinate_options`: a
    categorical parameter's choices, :data:`archive.records.EXPLORATION_BINS` equal bins for
    a number. 1 is even use of every option, 0 a single one.
    """
    d = len(options)
    x = np.asarray(x, dtype=float).reshape(-1, d) if d else np.zeros((len(x), 0))
    run_length = int(run_length)
    runs = len(x) // run_length if run_length > 0 else 0
    if runs == 0 or d == 0:
        return np.zeros(runs)
    x = x[:runs * run_length]
    mask = (np.ones(x.shape, dtype=bool) if active is None
            else np.asarray(active, dtype=bool).reshape(-1, d)[:runs * run_length])
    run = np.repeat(np.arange(runs), run_length)
    total = np.zeros(runs)
    for j, n in enumerate(options):
        if n <= 1:
            continue
        taken = np.minimum(np.floor(np.clip(x[:, j], 0.0, 1.0) * n), n - 1).astype(np.int64)
        on = mask[:, j]
        counts = np.bincount(run[on] * n + taken[on], minlength=runs * n).reshape(runs, n)
        p = counts / run_length
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(counts > 0, p * np.log2(np.where(counts > 0, p, 1.0)), 0.0)
        total -= plogp.sum(axis=1) / math.log2(n)
    return total / d


def exploration_entropy(x: np.ndarray, options: Sequence[int], active: np.ndarray | None = None) -> float:
    """:func:`run_entropies` of ``x`` as one run, ``T = len(x)``: Iron Mind's value for a run
    of that length (0 for no points)."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0 or not len(options):
        return 0.0
    return float(run_entropies(x, options, active, len(x))[0])


def exploration_runs(x: np.ndarray, options: Sequence[int], active: np.ndarray | None = None,
                     run_length: int = RUN_LENGTH) -> Exploration:
    """The exploration entropy of one proposer's points ``x`` (in ``seq`` order) over its runs:
    the ``k = ⌊N / T⌋`` consecutive blocks of ``T = run_length`` points, each scored by
    :func:`run_entropies` (``H_r``); then

        mean = (1/k) Σ_r H_r,   std = sqrt(Σ_r (H_r − mean)² / (k − 1)).

    The last ``N mod T`` points, a shorter run, are left out: every run the official figures
    score has the paper's length T = 20, and a run of ``m < T`` points cannot exceed
    ``log₂ m / log₂ n_j``, so it would pull the mean down by its length alone."""
    values = run_entropies(x, options, active, run_length)
    runs = len(values)
    if runs == 0:
        return Exploration(None, None, 0, int(run_length))
    std = float(np.std(values, ddof=1)) if runs > 1 else None
    return Exploration(float(np.mean(values)), std, runs, int(run_length))


def exploration_by_proposer(proposers: Sequence[str], x: np.ndarray, options: Sequence[int],
                            active: np.ndarray | None = None,
                            run_length: int = RUN_LENGTH) -> dict[str, Exploration]:
    """:func:`exploration_runs` of each proposer's points (``proposers[i]`` made ``x[i]``, the
    rows in ``seq`` order; ``active`` from :func:`active_coordinates`), the proposers in the
    order they first appear."""
    labels = np.asarray(proposers, dtype=object)
    x = np.asarray(x, dtype=float).reshape(len(labels), -1) if len(labels) else np.zeros((0, len(options)))
    mask = None if active is None else np.asarray(active, dtype=bool).reshape(x.shape)
    return {name: exploration_runs(x[labels == name], options, None if mask is None else mask[labels == name],
                                   run_length)
            for name in dict.fromkeys(proposers)}


def exploration_of(rows: Sequence[Mapping[str, Any]], settings: CampaignSettings,
                   run_length: int = RUN_LENGTH) -> dict[str, Exploration]:
    """Each proposer's :class:`Exploration` from evaluation rows in ``seq`` order (each with
    ``proposer``, ``x`` and ``params``), the options and owners of each coordinate from the
    campaign's ``settings``: what ``atlas status`` and the dashboard show. A row whose ``x``
    is not ``d`` finite numbers is skipped."""
    dim = len(settings.coordinate_options)
    x = np.full((len(rows), dim), np.nan)
    for i, r in enumerate(rows):
        point = r.get("x")
        if isinstance(point, list | tuple) and len(point) == dim:
            try:
                x[i] = np.asarray(point, dtype=float)
            except (TypeError, ValueError):
                continue
    return exploration_of_points([str(r["proposer"]) for r in rows], x, [r.get("params") for r in rows],
                                 settings, run_length)


def exploration_of_points(proposers: Sequence[str], x: np.ndarray, params: Sequence[Mapping[str, Any] | None],
                          settings: CampaignSettings, run_length: int = RUN_LENGTH) -> dict[str, Exploration]:
    """:func:`exploration_of` of columns: ``proposers[i]`` made the point ``x[i]`` (an n × d
    array, NaN rows skipped) with the params ``params[i]``, the rows in ``seq`` order."""
    options = list(settings.coordinate_options)
    dim = len(options)
    if not dim or not len(proposers):
        return {}
    x = np.asarray(x, dtype=float).reshape(len(proposers), dim)
    keep = np.isfinite(x).all(axis=1)
    active = active_coordinates(params, settings.coordinate_params, dim)
    if active.shape != x.shape:  # settings out of step with the points: every coordinate counts
        active = np.ones(x.shape, dtype=bool)
    labels = [p for p, k in zip(proposers, keep, strict=True) if k]
    return exploration_by_proposer(labels, x[keep], options, active[keep], run_length)


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
