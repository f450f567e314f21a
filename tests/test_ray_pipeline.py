"""The Ray executor's per-actor queues: a worker has its next evaluation before its current
one ends, and runs it without the driver; what each look brings back is charged right."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from workers.executors.base import ExecutorConfig
from workers.executors.ray_executor import RayExecutor
from workers.runner import EvaluationTask, Outcome

pytestmark = pytest.mark.ray


def executor(tmp_path: Path) -> tuple[RayExecutor, list[int]]:
    config = ExecutorConfig(kind="python", config={"marker_dir": str(tmp_path)},
                            target="tests.support.evaluators:Marking", measure_names=["ma", "mb"],
                            num_cpus=1, max_in_flight=4, timeout_s=120)
    ex = RayExecutor(config)
    started: list[int] = []
    ex.on_start = started.extend
    ex.start()
    return ex, started


def wait_for(predicate: object, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_a_worker_gets_its_next_evaluation_before_its_current_one_ends(tmp_path: Path, ray_cluster: None) -> None:
    ex, started = executor(tmp_path)
    try:
        wait_for(lambda: all(ex._is_ready(i) for i in range(len(ex._slots))))
        assert len(ex._slots) == 2
        ex.submit([EvaluationTask(i, i, {"a": 0.1 * i, "b": 0.5}, seed=100 + i) for i in range(4)])
        assert [len(s.held) for s in ex._slots] == [2, 2]  # breadth-first: one each, then a second each
        assert sorted(started) == [0, 1]  # the heads started; the queued two have not been seen to
        # No poll from here on: the workers run their queued evaluations on their own.
        wait_for(lambda: len(list(tmp_path.iterdir())) == 4)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["100", "101", "102", "103"]
        outcomes: list[Outcome] = []
        wait_for(lambda: bool(outcomes.extend(ex.poll(1.0))) or len(outcomes) == 4)
        assert sorted(o.evaluation_id for o in outcomes) == [0, 1, 2, 3]
        assert all(o.status == "done" for o in outcomes)
        assert sorted(started) == [0, 1, 2, 3]  # each start reported once, the queued ones as they came back
        assert ex.in_flight() == 0
    finally:
        ex.shutdown()
