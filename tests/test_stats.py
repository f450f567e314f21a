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
    RUN_LENGTH,
    Exploration,
    active_coordinates,
    coverage,
    elite_fitness,
    exploration_by_proposer,
    exploration_entropy,
    exploration_of,
    exploration_runs,
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


def official_run_entropy(run_selections: list[dict[str, int]], param_options: dict[str, list[int]]) -> float:
    """Iron Mind's ``figure_7_S10.compute_individual_run_cumulative_entropy``, rewritten from
    its rule: for each parameter count the options over the selections that set it, ``p_o =
    count / T`` with ``T`` the run's length, ``H = −Σ p log₂ p / log₂ n`` (denominator 1 for
    one option), the mean over every parameter."""
    if not run_selections:
        return 0.0
    total = len(run_selections)
    values = []
    for name, opts in param_options.items():
        counts = Counter(sel[name] for sel in run_selections if name in sel and sel[name] in opts)
        h = -sum(counts[o] / total * math.log2(counts[o] / total) for o in opts if counts[o])
        values.append(h / (math.log2(len(opts)) if len(opts) > 1 else 1))
    return sum(values) / len(values)


def loop_exploration(options: list[int], rows: list[dict[str, Any]],
                     run_length: int = RUN_LENGTH) -> dict[str, list[float]]:
    """Each proposer's per-run entropies, one row at a time: its rows in order cut into runs of
    ``run_length`` (a shorter last run dropped), each row a selection of the options its active
    coordinates took (coordinate ``d`` named ``c{d}``), scored by :func:`official_run_entropy`."""
    by_proposer: dict[str, list[dict[str, int]]] = defaultdict(list)
    for r in rows:
        by_proposer[r["proposer"]].append({f"c{d}": min(math.floor(min(max(x, 0.0), 1.0) * n), n - 1)
                                           for d, (x, n) in enumerate(zip(r["x"], options, strict=True))
                                           if r["active"][d]})
    param_options = {f"c{d}": list(range(n)) for d, n in enumerate(options)}
    return {proposer: [official_run_entropy(sels[i:i + run_length], param_options)
                       for i in range(0, len(sels) - run_length + 1, run_length)]
            for proposer, sels in by_proposer.items()}


def test_exploration_entropy_matches_the_official_rule_per_run() -> None:
    from search.spec import parse_spec

    options = list(CampaignSettings.from_spec(parse_spec(MIXED).model_dump(mode="json")).coordinate_options)
    assert options == [10, 10, 3, 10, 10, 10]
    rng = np.random.default_rng(3)
    x = rng.random((400, 6)) ** np.array([1, 3, 1, 1, 2, 1])  # skewed in b and v[1]
    x[0, 0] = 1.0  # the upper edge counts in the last option
    active = rng.random((400, 6)) < 0.7
    rows = [{"proposer": "p" if i % 3 else "q", "x": x[i].tolist(), "active": active[i].tolist()}
            for i in range(len(x))]
    expected = loop_exploration(options, rows)
    got = exploration_by_proposer([r["proposer"] for r in rows], x, options, active)
    assert list(got) == ["q", "p"]  # in the order they first appear
    for name, runs in expected.items():
        assert got[name].runs == len(runs) == sum(r["proposer"] == name for r in rows) // RUN_LENGTH
        assert got[name].mean == pytest.approx(np.mean(runs))
        assert got[name].std == pytest.approx(np.std(runs, ddof=1))
        assert got[name].run_length == RUN_LENGTH
    assert exploration_by_proposer([], np.zeros((0, 6)), options) == {}


def test_inactive_coordinates_add_no_count_by_hand() -> None:
    # coordinate 0, 2 options: 0, 0, 1, 1 -> H = 1. coordinate 1, 4 options, active only in the
    # last two points, both option 3 -> p_3 = 2/T = 1/2 (T = 4, the run's length), H = ½ / 2 = ¼.
    # Counting the inactive 0.5 placeholders (option 2) instead would give p = (½, ½), H = ½.
    x = np.array([[0.1, 0.5], [0.2, 0.5], [0.7, 0.8], [0.9, 1.0]])
    active = np.array([[True, False], [True, False], [True, True], [True, True]])
    assert exploration_entropy(x, [2, 4], active) == pytest.approx((1.0 + 0.25) / 2)
    assert exploration_entropy(x, [2, 4]) == pytest.approx((1.0 + 0.5) / 2)
    assert official_run_entropy([{"c0": 0}, {"c0": 0}, {"c0": 1, "c1": 3}, {"c0": 1, "c1": 3}],
                                {"c0": [0, 1], "c1": [0, 1, 2, 3]}) == pytest.approx(0.625)
    assert exploration_entropy(x, [2, 4], np.zeros((4, 2), bool)) == 0.0


COND = {
    "name": "cond", "evaluator": {"kind": "python", "target": "tests.support.evaluators:noop"},
    "space": {"kind": {"type": "categorical", "choices": ["a", "b", "c"]},
              "ta": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "a"}},
              "tb": {"type": "categorical", "choices": ["p", "q", "r", "s"], "when": {"kind": "b"}},
              "v": {"type": "float", "low": 0.0, "high": 1.0, "size": 2}},
    "measures": [{"name": "m", "low": 0.0, "high": 1.0, "bins": 4}],
    "search": {"algorithm": "random", "budget": 10},
}


def test_settings_name_each_coordinates_parameter() -> None:
    from search.spec import parse_spec

    settings = CampaignSettings.from_spec(parse_spec(COND).model_dump(mode="json"))
    assert settings.coordinate_options == (3, 10, 4, 10, 10)
    assert settings.coordinate_params == ("kind", "ta", "tb", "v", "v")
    assert CampaignSettings.from_json(settings.to_json()) == settings
    old = {k: v for k, v in settings.to_json().items() if k != "coordinate_params"}  # written before the field
    assert CampaignSettings.from_json(old).coordinate_params == ()
    assert active_coordinates([{"kind": "a", "ta": 0.2, "v": [0, 0]}], settings.coordinate_params).tolist() == [
        [True, True, False, True, True]]
    assert active_coordinates([{}, {}], (), 3).tolist() == [[True] * 3] * 2  # nothing known: all count


def test_identical_configurations_score_the_same_from_an_llm_and_from_bo() -> None:
    """BO keeps its raw coordinates, inactive ones included; an LLM's params are re-encoded,
    an inactive parameter at u = 0.5. Only the params say what was chosen."""
    from search.space import SearchSpace
    from search.spec import parse_spec

    spec = parse_spec(COND)
    settings = CampaignSettings.from_spec(spec.model_dump(mode="json"))
    space = SearchSpace(spec.space)
    u = np.random.default_rng(0).random((200, space.dim))
    params = [space.decode(row) for row in u]
    bo = [{"proposer": "bo", "x": row.tolist(), "params": p} for row, p in zip(u, params, strict=True)]
    llm = [{"proposer": "llm", "x": space.encode(p).tolist(), "params": p} for p in params]
    got = exploration_of(bo + llm, settings)
    assert got["bo"].runs == got["llm"].runs == 10
    assert got["bo"].mean == pytest.approx(got["llm"].mean)
    assert got["bo"].std == pytest.approx(got["llm"].std)
    x_bo, x_llm = np.array([r["x"] for r in bo]), np.array([r["x"] for r in llm])
    assert exploration_runs(x_bo, settings.coordinate_options).mean != pytest.approx(  # what counting them gave
        exploration_runs(x_llm, settings.coordinate_options).mean, abs=0.05)


def test_a_uniform_sampler_does_not_gain_entropy_with_more_evaluations() -> None:
    rng = np.random.default_rng(1)
    options = [10, 10, 4]
    few, many = exploration_runs(rng.random((40, 3)), options), exploration_runs(rng.random((400, 3)), options)
    assert (few.runs, many.runs) == (2, 20)
    assert abs(few.mean - many.mean) <= 2 * many.std
    pooled = exploration_entropy(rng.random((400, 3)), options)  # the whole campaign as one run
    assert pooled > 0.98 and many.mean < pooled - 5 * many.std / math.sqrt(many.runs)  # far off its error


def test_runs_are_consecutive_and_a_short_last_run_is_left_out() -> None:
    options = [4]
    spread = np.repeat([[0.1], [0.3], [0.6], [0.9]], 5, axis=0)  # a run of every option: H = 1
    single = np.full((20, 1), 0.1)  # a run of one option: H = 0
    x = np.concatenate([spread, single, spread[:7]])
    got = exploration_runs(x, options)
    assert (got.runs, got.mean, got.run_length) == (2, pytest.approx(0.5), 20)
    assert got.std == pytest.approx(math.sqrt(0.5))
    assert exploration_runs(x[:19], options) == Exploration(None, None, 0, 20)
    assert exploration_runs(x[:20], options) == Exploration(1.0, None, 1, 20)
    assert exploration_runs(x[:24], options, run_length=4).runs == 6


def test_the_status_text() -> None:
    assert Exploration(0.8123, 0.0456, 5, 20).text() == "0.81 ± 0.05 (5 runs of 20)"
    assert Exploration(0.8, None, 1, 20).text() == "0.80 (1 run of 20)"
    assert Exploration(None, None, 0, 20).text() == "— (fewer than 20)"
    assert Exploration(0.5, 0.1, 2, 20).to_json() == {"mean": 0.5, "std": 0.1, "runs": 2, "run_length": 20}
