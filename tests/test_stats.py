"""The archive's statistics (``archive.stats``), each against a brute-force reference: the
elite replacement and its replay against a per-row loop, the QD-score and coverage against
``Store.stats`` on a real SQLite campaign, the Pareto front against a pairwise loop and
BoTorch, the exploration entropy against a hand-computed case and Iron Mind's per-row loop."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pytest

from archive.records import CampaignSettings
from archive.stats import (
    coverage,
    elite_fitness,
    exploration_by_proposer,
    exploration_entropy,
    non_dominated,
    normalised_entropy,
    qd_score,
    replay,
)


# -- elite replacement and the QD-score trajectory ------------------------------------
def loop_replay(cells: list[int], fitness: list[float],
                offset: float) -> tuple[list[float], list[bool], dict[int, float]]:
    """Result by result: a cell's elite is replaced only by a strictly better fitness."""
    best: dict[int, float] = {}
    qd, filled = [], []
    for c, f in zip(cells, fitness, strict=True):
        filled.append(c not in best)
        if c not in best or f > best[c]:
            best[c] = f
        qd.append(sum(v - offset for v in best.values()))
    return qd, filled, best


@pytest.mark.parametrize("seed", range(6))
def test_replay_matches_a_per_row_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_cells, offset = 15, [0.0, 0.5, -1.0][seed % 3]
    best = np.full(n_cells, -np.inf)
    cells_all: list[int] = []
    fit_all: list[float] = []
    qd: list[float] = []
    filled_all: list[bool] = []
    total = 0.0
    for _ in range(5):  # in batches, carrying the state over, as a live campaign does
        cells = rng.integers(0, n_cells, rng.integers(1, 50))
        fitness = np.round(rng.normal(size=len(cells)), 1)  # ties happen
        delta, filled = replay(best, cells, fitness, offset)
        qd += list(total + np.cumsum(delta))
        total += float(np.sum(delta))
        filled_all += filled.tolist()
        cells_all += cells.tolist()
        fit_all += fitness.tolist()
    expected_qd, expected_filled, expected_best = loop_replay(cells_all, fit_all, offset)
    assert qd == pytest.approx(expected_qd)
    assert filled_all == expected_filled
    assert {c: best[c] for c in expected_best} == expected_best
    assert np.all(np.isneginf(np.delete(best, list(expected_best))))
    assert total == pytest.approx(qd_score(sum(expected_best.values()), len(expected_best), offset))


def test_replay_of_nothing() -> None:
    best = np.full(3, -np.inf)
    delta, filled = replay(best, np.zeros(0, np.int64), np.zeros(0), 0.0)
    assert delta.size == 0 and filled.size == 0 and np.all(np.isneginf(best))


def test_elite_fitness_is_the_best_per_cell() -> None:
    rng = np.random.default_rng(1)
    cells = rng.integers(0, 8, 200)
    fitness = rng.normal(size=200)
    got = elite_fitness(cells, fitness, 10)
    assert got.shape == (10,)
    for c in range(10):
        mine = fitness[cells == c]
        assert got[c] == (mine.max() if mine.size else -np.inf)
    assert elite_fitness(np.array([12]), np.array([1.0]), 10).shape == (13,)  # a cell past the layout


# -- QD-score and coverage, against the store's SQL ------------------------------------
def loop_stats(rows: list[dict[str, Any]], sign: float, offset: float, cells: int) -> tuple[float, float, int]:
    """QD-score, coverage and elites from the done rows, one at a time in the order recorded."""
    best: dict[int, float] = {}
    for r in sorted(rows, key=lambda r: r["finished_seq"]):
        if r["status"] == "done":
            f = sign * r["objective"]
            if r["cell"] not in best or f > best[r["cell"]]:
                best[r["cell"]] = f
    return sum(f - offset for f in best.values()), len(best) / cells, len(best)


@pytest.mark.parametrize("maximize", [True, False])
def test_qd_score_and_coverage_are_store_stats(sqlite_url: str, maximize: bool) -> None:
    from tests.dashboard.synthetic import synthetic_campaign

    store, record = synthetic_campaign(sqlite_url, "stats", 500, bins=(8, 8), maximize=maximize, fail_rate=0.1)
    try:
        rows = store.evaluations(record.id)
        for offset in (0.0, 37.5):
            s = store.stats(record.id, 64, offset)
            qd, cov, elites = loop_stats(rows, record.settings.sign, offset, 64)
            assert s.elites == elites and 0 < elites < 64
            assert s.qd_score == pytest.approx(qd)
            assert s.coverage == pytest.approx(cov)
            fit_sum = sum(e["fitness"] for e in store.elites(record.id))
            assert qd_score(fit_sum, s.elites, offset) == pytest.approx(s.qd_score)
            assert coverage(s.elites, s.cells) == s.coverage
    finally:
        store.close()


def test_qd_score_and_coverage_by_hand() -> None:
    assert qd_score(10.0, 4, 1.5) == 4.0  # (a - 1.5) + (b - 1.5) + … over 4 elites summing to 10
    assert qd_score(0.0, 0, 3.0) == 0.0
    assert coverage(3, 12) == 0.25
    assert coverage(0, 0) == 0.0


# -- the Pareto front --------------------------------------------------------------
def loop_front(points: np.ndarray) -> np.ndarray:
    """Pairwise: a row is on the front when no row is ≥ in every column and > in one (NaN: never)."""
    out = np.zeros(len(points), bool)
    for i, p in enumerate(points):
        if np.isnan(p).any():
            continue
        out[i] = not any(np.all(q >= p) and np.any(q > p) for q in points)
    return out


@pytest.mark.parametrize("k", [2, 3])
def test_non_dominated_matches_a_pairwise_loop_and_botorch(k: int) -> None:
    import torch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    rng = np.random.default_rng(k)
    for trial in range(40):
        n = int(rng.integers(1, 80))
        points = np.round(rng.random((n, k)), 1)  # coarse: ties and duplicates happen
        if trial % 4 == 1:
            points[rng.integers(n)] = np.nan
        if trial % 4 == 2:
            points[rng.integers(n), rng.integers(k)] = rng.choice([np.inf, -np.inf])
        got = non_dominated(points)
        assert got.tolist() == loop_front(points).tolist()
        finite = ~np.isnan(points).any(axis=1)
        reference = is_non_dominated(torch.as_tensor(points[finite]), deduplicate=False).numpy()
        assert got[finite].tolist() == reference.tolist()
    assert non_dominated(np.zeros((0, 2))).tolist() == []


def test_non_dominated_keeps_duplicates() -> None:
    points = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, 1.0], [0.5, 0.5], [2.0, 0.5]])
    assert non_dominated(points).tolist() == [True, True, True, False, False]


# -- exploration entropy ------------------------------------------------------------
def test_normalised_entropy_formula() -> None:
    assert normalised_entropy([5, 5], 2) == pytest.approx(1.0)
    assert normalised_entropy([10], 4) == 0.0
    assert normalised_entropy([1, 1, 1, 1], 8) == pytest.approx(2 / 3)
    assert normalised_entropy([0, 0], 2) == 0.0 and normalised_entropy([3], 1) == 0.0


def test_exploration_entropy_by_hand() -> None:
    # coordinate 0, 2 options: 0, 0, 1, 1 -> H = 1; coordinate 1, 4 options: 0, 0, 0, 3 (x = 1
    # is the last option) -> p = (3/4, 1/4), H = (3/4 log2 4/3 + 1/4 log2 4) / log2 4
    x = np.array([[0.1, 0.1], [0.2, 0.2], [0.7, 0.0], [0.9, 1.0]])
    h1 = (0.75 * math.log2(4 / 3) + 0.25 * 2) / 2
    assert exploration_entropy(x, [2, 4]) == pytest.approx((1.0 + h1) / 2)
    assert exploration_entropy(x, [1, 1]) == 0.0
    assert exploration_entropy(np.zeros((0, 2)), [2, 4]) == 0.0


def test_exploration_entropy_extremes() -> None:
    rng = np.random.default_rng(0)
    assert exploration_entropy(rng.random((20_000, 3)), [10, 10, 4]) == pytest.approx(1.0, abs=0.01)
    assert exploration_entropy(np.full((50, 2), 0.33), [10, 3]) == 0.0
    half = np.column_stack([rng.random(10_000) * 0.5, rng.random(10_000)])  # half the bins of the first
    assert exploration_entropy(half, [10, 1]) == pytest.approx(math.log2(5) / math.log2(10) / 2, abs=0.01)


MIXED = {
    "name": "mixed", "evaluator": {"kind": "python", "target": "tests.support.evaluators:noop"},
    "space": {"a": {"type": "float", "low": 0.0, "high": 1.0},
              "b": {"type": "float", "low": 0.0, "high": 1.0},
              "kind": {"type": "categorical", "choices": ["x", "y", "z"]},
              "v": {"type": "float", "low": -1.0, "high": 1.0, "size": 3}},
    "measures": [{"name": "ma", "low": 0.0, "high": 1.0, "bins": 4},
                 {"name": "mb", "low": 0.0, "high": 1.0, "bins": 4}],
    "search": {"algorithm": "random", "budget": 10},
}


def loop_exploration(options: list[int], rows: list[dict[str, Any]]) -> dict[str, float]:
    """Iron Mind's measure, one coordinate and one row at a time (as ``atlas status`` once had it)."""
    by_proposer: dict[str, list[list[float]]] = defaultdict(list)
    for r in rows:
        by_proposer[r["proposer"]].append(r["x"])
    out = {}
    for proposer, xs in by_proposer.items():
        values = []
        for d, n in enumerate(options):
            counts = Counter(min(math.floor(min(max(x[d], 0.0), 1.0) * n), n - 1) for x in xs)
            total = sum(counts.values())
            h = -sum(c / total * math.log2(c / total) for c in counts.values()) if n > 1 else 0.0
            values.append(h / math.log2(n) if n > 1 else 0.0)
        out[proposer] = sum(values) / len(values)
    return out


def test_exploration_entropy_matches_a_per_row_loop_with_the_settings_options() -> None:
    from search.spec import parse_spec

    options = list(CampaignSettings.from_spec(parse_spec(MIXED).model_dump(mode="json")).coordinate_options)
    assert options == [10, 10, 3, 10, 10, 10]
    rng = np.random.default_rng(3)
    x = rng.random((400, 6)) ** np.array([1, 3, 1, 1, 2, 1])  # skewed in b and v[1]
    x[0, 0] = 1.0  # the upper edge counts in the last option
    rows = [{"proposer": "p" if i % 3 else "q", "x": x[i].tolist()} for i in range(len(x))]
    expected = loop_exploration(options, rows)
    got = exploration_by_proposer([r["proposer"] for r in rows], x, options)
    assert list(got) == ["q", "p"]  # in the order they first appear
    for name, value in expected.items():
        assert got[name] == pytest.approx(value)
        mine = np.array([r["x"] for r in rows if r["proposer"] == name])
        assert exploration_entropy(mine, options) == pytest.approx(value)
    assert exploration_by_proposer([], np.zeros((0, 6)), options) == {}
