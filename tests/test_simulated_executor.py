"""The simulated worker pool: its rules on a simulated clock, and the real scheduler driving it."""

from __future__ import annotations

import pytest

import archive
from search import api
from tests.conftest import quadratic_spec
from workers.executors.base import ExecutorConfig
from workers.executors.simulated import SimulatedClock, SimulatedExecutor
from workers.runner import EvaluationTask

CONFIG = ExecutorConfig(kind="python", config={}, target="tests.support.evaluators:quadratic",
                        measure_names=["ma", "mb"], timeout_s=30)


def tasks(n: int, start: int = 0) -> list[EvaluationTask]:
    return [EvaluationTask(i, i, {"a": 0.5, "b": 0.5}, seed=i) for i in range(start, start + n)]


def pool(workers: int, latency_s: float, **kwargs: object) -> tuple[SimulatedExecutor, SimulatedClock, list[int]]:
    clock = SimulatedClock()
    ex = SimulatedExecutor(CONFIG, workers, latency_s, clock=clock, **kwargs)  # type: ignore[arg-type]
    started: list[int] = []
    ex.on_start = started.extend
    ex.start()
    return ex, clock, started


def test_workers_fill_breadth_first_and_start_queued_work_without_the_driver() -> None:
    ex, clock, started = pool(workers=2, latency_s=1.0, depth=2)
    ex.submit(tasks(5))
    assert started == [0, 1]  # one each first; 2 and 3 queued behind them, 4 waits for room
    assert ex.in_flight() == 5
    out = ex.poll(10.0)
    assert clock.now() == 1.0 and sorted(o.evaluation_id for o in out) == [0, 1]
    assert all(o.status == "done" for o in out)
    assert started == [0, 1, 2, 3] and ex.handoffs == 2  # started the instant their predecessors finished
    out = ex.poll(0.5)  # nothing finishes within 0.5 s: the clock moves to the deadline
    assert out == [] and clock.now() == 1.5
    assert sorted(o.evaluation_id for o in ex.poll(10.0)) == [2, 3] and clock.now() == 2.0
    assert sorted(o.evaluation_id for o in ex.poll(10.0)) == [4] and clock.now() == 3.0


def test_a_latency_past_the_timeout_fails_at_the_timeout() -> None:
    clock = SimulatedClock()
    config = ExecutorConfig(**{**CONFIG.__dict__, "timeout_s": 0.5})
    ex = SimulatedExecutor(config, workers=1, latency_s=2.0, clock=clock)
    ex.submit(tasks(1))
    (out,) = ex.poll(10.0)
    assert out.status == "failed" and out.error.startswith("timeout") and clock.now() == 0.5


@pytest.mark.parametrize("distribution", ["exponential", "uniform"])
def test_random_latencies_have_the_configured_mean(distribution: str) -> None:
    ex, clock, _ = pool(workers=1, latency_s=0.2, depth=1, distribution=distribution, seed=1)
    ex.submit(tasks(2000))
    while ex.in_flight():
        ex.poll(100.0)
    assert clock.now() / 2000 == pytest.approx(0.2, rel=0.1)


@pytest.mark.parametrize("workers", [1, 4, 16])
def test_the_scheduler_gets_the_pools_throughput_on_a_simulated_clock(sqlite_url: str, workers: int) -> None:
    """N workers of latency L, fed by the real scheduler and store: budget / N turns of L
    each, back to back: exactly N / L evaluations per simulated second."""
    budget = 12 * workers
    spec = api.as_spec(quadratic_spec(search__budget=budget, search__batch_size=workers,
                                      search__max_in_flight=2 * workers))
    clock = SimulatedClock()
    ex = SimulatedExecutor(api.executor_config(spec), workers, latency_s=0.25, clock=clock)
    stats = api.run(spec, storage=sqlite_url, executor=ex)
    assert stats.finished == budget and stats.counts["done"] == budget
    assert budget / clock.now() == pytest.approx(workers / 0.25)
    rows = archive.open(sqlite_url).campaign("quad").evaluations()
    assert all(r["attempts"] == 1 for r in rows)
