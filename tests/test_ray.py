"""The Ray executor for real: actors that set up once, timeouts, and dead workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import archive
from search import api
from tests.conftest import quadratic_spec

pytestmark = pytest.mark.ray


def run_on_ray(spec: dict, url: str) -> tuple[Any, list[dict], dict]:
    """Run the campaign on the local Ray; its stats, its rows and its first row (seq 0)."""
    stats = api.run(spec, storage=url, executor="ray")
    rows = archive.open(url).campaign("quad").evaluations()
    return stats, rows, next(r for r in rows if r["seq"] == 0)


def test_class_evaluator_sets_up_once_per_actor(sqlite_url: str, tmp_path: Path, ray_cluster: None) -> None:
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:CountingEvaluator",
                   "config": {"marker_dir": str(tmp_path)}},
        search__budget=40, search__max_in_flight=4,
    )
    stats = api.run(spec, storage=sqlite_url, executor="ray")
    assert stats.finished == 40 and stats.counts["failed"] == 0
    rows = archive.open(sqlite_url).campaign("quad").evaluations()
    pids = {r["metrics"]["pid"] for r in rows}
    setups = list(tmp_path.glob("setup-*"))
    assert 1 <= len(pids) <= 2  # two CPUs: at most two actors
    assert len(setups) == len(pids)  # one setup per actor, not per evaluation
    assert all(r["metrics"]["setups"] == 1 for r in rows)


def test_timeout_kills_the_call_and_the_campaign_goes_on(sqlite_url: str, ray_cluster: None) -> None:
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:sleepy"},
        search__algorithm="random", search__budget=16, search__batch_size=2, search__max_in_flight=2,
        search__initial_points=[{"a": 0.95, "b": 0.1}], resources={"timeout_s": 2, "num_cpus": 1},
    )
    stats, rows, hung = run_on_ray(spec, sqlite_url)
    assert hung["status"] == "failed" and hung["error"] == "timeout: ran past 2 s"  # as inline
    assert stats.finished == 16
    assert sum(r["status"] == "done" for r in rows) >= 12


def test_a_dead_worker_is_replaced_and_its_evaluation_retried(sqlite_url: str, ray_cluster: None) -> None:
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:crash_once"},
        search__algorithm="random", search__budget=12, search__batch_size=2, search__max_in_flight=2,
        search__initial_points=[{"a": 0.8, "b": 0.5}], resources={"timeout_s": 60, "max_retries": 2},
    )
    stats = api.run(spec, storage=sqlite_url, executor="ray")
    rows = archive.open(sqlite_url).campaign("quad").evaluations()
    crashed = [r for r in rows if r["params"]["a"] > 0.5]
    assert crashed and all(r["status"] == "done" and r["attempts"] >= 2 for r in crashed)
    assert stats.finished == 12 and stats.counts["failed"] == 0


def test_worker_lost_every_time_gives_up_after_max_retries(sqlite_url: str, ray_cluster: None) -> None:
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:crash_once"},
        search__algorithm="random", search__budget=1, search__batch_size=1, search__max_in_flight=1,
        search__fail_fast=0,  # a run whose only evaluation fails stops as failed otherwise: the retries are tested
        search__initial_points=[{"a": 0.8, "b": 0.5}], resources={"timeout_s": 60, "max_retries": 0},
    )
    stats = api.run(spec, storage=sqlite_url, executor="ray")
    (row,) = archive.open(sqlite_url).campaign("quad").evaluations()
    assert row["status"] == "failed" and "worker lost" in row["error"] and "gave up after 1 attempt)" in row["error"]
    assert stats.counts["failed"] == 1


def test_an_evaluation_that_exhausts_memory_fails_and_the_worker_serves_on(sqlite_url: str,
                                                                            ray_cluster: None) -> None:
    """With ``memory_mb`` the worker may grow by that much past its size after setup: a 3 GiB
    allocation fails that evaluation with MemoryError, and the same worker goes on."""
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:memory_hog"},
        search__algorithm="random", search__budget=10, search__batch_size=1, search__max_in_flight=1,
        search__initial_points=[{"a": 0.95, "b": 0.5}], resources={"memory_mb": 256, "max_retries": 0},
    )
    stats, rows, hog = run_on_ray(spec, sqlite_url)
    assert hog["status"] == "failed" and "MemoryError" in hog["error"] and hog["attempts"] == 1
    rest = [r for r in rows if r["seq"] > 0 and r["params"]["a"] <= 0.9]
    assert rest and all(r["status"] == "done" for r in rest)
    assert len({r["metrics"]["pid"] for r in rest}) == 1  # one worker throughout, never replaced
    assert stats.finished == 10


def test_a_worker_that_leaks_past_its_memory_is_replaced_and_nothing_fails(sqlite_url: str,
                                                                             ray_cluster: None) -> None:
    """Each evaluation keeps 40 MiB and a worker may grow by 100: the third on a worker runs
    out of memory because of what the first two left. That worker is spent: its
    MemoryError is retried on a fresh worker, where it passes."""
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:memory_leak"},
        search__algorithm="random", search__budget=7, search__batch_size=1, search__max_in_flight=1,
        resources={"memory_mb": 100, "max_retries": 1},
    )
    stats, rows, _ = run_on_ray(spec, sqlite_url)
    assert stats.finished == 7 and stats.counts["failed"] == 0
    assert all(r["status"] == "done" for r in rows)
    pids = [r["metrics"]["pid"] for r in sorted(rows, key=lambda r: r["finished_seq"])]
    assert len(set(pids)) >= 3  # at most two evaluations a worker, then a fresh one
    assert max(pids.count(pid) for pid in set(pids)) <= 2
    # the third on a worker ran out of memory and ran again on a fresh one; or the worker, its
    # threads' stacks counted too, was spent after its second (then nothing ran twice)
    assert all(r["attempts"] <= 2 for r in rows)


def test_a_custom_resource_the_cluster_lacks_is_a_clear_error(sqlite_url: str, ray_cluster: None) -> None:
    spec = quadratic_spec(search__budget=4, resources={"custom": {"a100": 1}})
    with pytest.raises(RuntimeError, match="'a100'"):
        api.run(spec, storage=sqlite_url, executor="ray")
