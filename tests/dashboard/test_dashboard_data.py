"""The read model under the API: the trajectory replay, Pareto fronts, sampling, and the
incremental series, checked against plain loops; on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import archive
from archive.stats import exploration_entropy, replay
from dashboard.data import DashboardData, json_safe, pareto_front, sample_indices
from tests.dashboard.synthetic import add_results, synthetic_campaign


def naive_trajectory(cells: list[int], fitness: list[float], n_cells: int, offset: float) -> list[float]:
    best: dict[int, float] = {}
    out = []
    for c, f in zip(cells, fitness, strict=True):
        if c not in best or f > best[c]:
            best[c] = f
        out.append(sum(v - offset for v in best.values()))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_replay_matches_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_cells, offset = 12, 0.3 * seed
    best = np.full(n_cells, -np.inf)
    cells_all: list[int] = []
    fit_all: list[float] = []
    qd: list[float] = []
    total = 0.0
    for _ in range(4):  # in batches, carrying the state over, like a live campaign
        cells = rng.integers(0, n_cells, rng.integers(1, 40))
        fitness = np.round(rng.normal(size=len(cells)), 1)  # ties happen
        seen_before = set(cells_all)
        delta, filled = replay(best, cells, fitness, offset)
        qd += list(total + np.cumsum(delta))
        total += float(np.sum(delta))
        assert filled.sum() == len(set(cells.tolist()) - seen_before)
        cells_all += cells.tolist()
        fit_all += fitness.tolist()
    assert qd == pytest.approx(naive_trajectory(cells_all, fit_all, n_cells, offset))
    expected_best = {c: max(f for cc, f in zip(cells_all, fit_all, strict=True) if cc == c) for c in set(cells_all)}
    assert {c: best[c] for c in expected_best} == expected_best


@pytest.mark.parametrize("higher", [True, False])
def test_pareto_front_matches_brute_force(higher: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        m = np.round(rng.random(n), 1)  # coarse: ties and duplicates happen
        f = np.round(rng.random(n), 1)
        points = set(zip(m.tolist(), f.tolist(), strict=True))

        def dominated(p: tuple[float, float], pts: set[tuple[float, float]] = points) -> bool:
            return any((q[0] >= p[0] if higher else q[0] <= p[0]) and q[1] >= p[1] and q != p for q in pts)

        expected = {p for p in points if not dominated(p)}
        front = pareto_front(m, f, higher)
        assert {(m[i], f[i]) for i in front} == expected
        assert len(front) == len(expected)  # one index per point of the front
        assert np.all(np.diff(m[front]) >= 0)  # sorted by measure


def test_sample_indices() -> None:
    assert sample_indices(0, 10).tolist() == []
    assert sample_indices(5, 10).tolist() == [0, 1, 2, 3, 4]
    assert sample_indices(5, 1).tolist() == [4]  # "at most": one, not first and last
    assert sample_indices(5, 0).tolist() == []
    idx = sample_indices(100_000, 1000)
    assert idx[0] == 0 and idx[-1] == 99_999 and len(idx) <= 1000 and np.all(np.diff(idx) > 0)


def test_json_safe() -> None:
    assert json_safe({"a": [1.0, math.nan, {"b": math.inf}], "c": np.float64(2.5)}) == {"a": [1.0, None, {"b": None}],
                                                                                       "c": 2.5}


def test_series_grows_incrementally_and_matches_a_fresh_load(storage_url: str) -> None:
    store, record = synthetic_campaign(storage_url, "inc", 400, bins=(6, 6), status="running", fail_rate=0.1)
    data = DashboardData(store)
    info = data.info("inc")
    first = data.history(info)
    assert first["total"] == 400
    data.scatter(info)  # fronts of the first 400
    add_results(store, record, 250, seed=3, fail_rate=0.1, scale=0.6)
    grown = data.history(info, points=10_000)
    fresh_data = DashboardData(store)
    fresh = fresh_data.history(info, points=10_000)
    for name, fronts in data.scatter(info)["fronts"].items():  # fronts kept up to date = fronts from scratch
        for label, front in fronts.items():
            again = fresh_data.scatter(info)["fronts"][name][label]
            assert sorted(zip(front["measure"], front["objective"], strict=True)) == sorted(
                zip(again["measure"], again["objective"], strict=True))
    assert grown["qd_score"] == pytest.approx(fresh["qd_score"])  # summed in another order
    assert {k: v for k, v in grown.items() if k != "qd_score"} == {k: v for k, v in fresh.items() if k != "qd_score"}
    with archive.open(storage_url) as handle:
        s = handle.campaign("inc").stats()
    assert grown["total"] == s.finished == 650
    assert grown["qd_score"][-1] == pytest.approx(s.qd_score)
    assert grown["filled"][-1] == s.elites
    assert grown["failed"][-1] == s.counts["failed"]
    assert data.scatter(info)["total"] == s.counts["done"]
    store.close()


def test_minimised_objective_and_offset(storage_url: str) -> None:
    store, _ = synthetic_campaign(storage_url, "min", 300, bins=(5, 5), maximize=False)
    data = DashboardData(store)
    info = data.info("min")
    h = data.history(info)
    with archive.open(storage_url) as handle:
        s = handle.campaign("min").stats()
    assert h["best"][-1] == pytest.approx(s.best_objective)
    assert min(v for v in h["best"] if v is not None) == pytest.approx(s.best_objective)  # best only improves
    assert h["qd_score"][-1] == pytest.approx(s.qd_score)
    store.close()


def test_state_tells_a_live_scheduler_from_an_interrupted_one(sqlite_url: str) -> None:
    store, record = synthetic_campaign(sqlite_url, "lease", 10, bins=(3, 3), status="running")
    data = DashboardData(store)
    assert data.info("lease").state == "interrupted"  # running, but nobody holds the lease
    assert store.acquire_lease(record.id, "host:1:abc", ttl_s=60) is None
    assert data.info("lease").state == "running"
    store.update_campaign(record.id, lease_expires=time.time() - 1)
    assert data.info("lease").state == "interrupted"
    store.update_campaign(record.id, status="finished")
    assert data.info("lease").state == "finished"
    store.close()


def test_version_moves_with_every_result(sqlite_url: str) -> None:
    store, record = synthetic_campaign(sqlite_url, "ver", 20, bins=(3, 3), status="running")
    data = DashboardData(store)
    v1 = data.version(data.info("ver"))
    assert data.version(data.info("ver")) == v1
    add_results(store, record, 1, seed=5)
    assert data.version(data.info("ver")) != v1
    store.close()


def test_elites_since_a_cursor_leave_out_the_result_at_it(sqlite_url: str) -> None:
    """dashboard/data.py DashboardData.elites: with ``since``, only the elites "made by results
    recorded after that finished_seq" (``through`` is a poll's next cursor: the elite of the result
    at it is not sent again). The newest elite's finished_seq is read from the private elite cache."""
    store, _ = synthetic_campaign(sqlite_url, "live", 200, bins=(10, 10), status="running")
    try:
        data = DashboardData(store)
        info = data.info("live")
        data.elites(info)
        newest = max(data._elite_cache(info).rows.values(), key=lambda r: r.finished_seq)
        assert data.elites(info, since=newest.finished_seq)["cell"] == []
        assert newest.cell in data.elites(info, since=newest.finished_seq - 1)["cell"]
    finally:
        store.close()


def test_exploration_entropy_extremes() -> None:
    rng = np.random.default_rng(0)
    assert exploration_entropy(rng.random((20_000, 3)), [10, 10, 4]) == pytest.approx(1.0, abs=0.01)
    assert exploration_entropy(np.full((50, 2), 0.33), [10, 3]) == 0.0
    assert exploration_entropy(np.zeros((0, 2)), [10, 10]) == 0.0
    half = np.column_stack([rng.random(10_000) * 0.5, rng.random(10_000)])  # half the bins of the first
    assert exploration_entropy(half, [10, 1]) == pytest.approx(math.log2(5) / math.log2(10) / 2, abs=0.01)


def test_exploration_entropy_is_the_cli_measure(sqlite_url: str) -> None:
    """The same figure as ``atlas status NAME`` prints (``search.cli._exploration``); the rule
    itself is checked against a per-row loop in tests/test_stats.py."""
    from search.cli import _exploration

    store, _ = synthetic_campaign(sqlite_url, "explore", 600, bins=(5, 5), seed=6)
    data = DashboardData(store)
    with archive.open(sqlite_url) as handle:
        expected = _exploration(handle.campaign("explore"))
    got = data.exploration(data.info("explore"))
    assert set(got) == set(expected) == {"map-elites", "random"}
    for name, value in expected.items():
        assert got[name] == value and value.runs == got[name].runs > 1 and value.run_length == 20
        assert 0 < value.mean <= 1
    store.close()
