"""``search.reproducible`` on the Ray executor: outcomes handed back a whole batch a poll, in
submit order (:class:`workers.executors.ordered.OrderedBatches`), so the proposer is told
the same sequence whatever order the workers finish in (docs/campaigns.md, Reproducibility)."""

from __future__ import annotations

import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from search import api
from tests.conftest import quadratic_spec
from workers.contract import EvalContext, Evaluator
from workers.executors import ExecutorConfig, ExecutorError, make_executor
from workers.executors.base import Executor
from workers.executors.ordered import OrderedBatches
from workers.executors.ray_executor import RayExecutor
from workers.runner import EvaluationTask, Outcome

_JITTER = random.SystemRandom()  # not the evaluation's seed: the finish order differs run to run
SLOW_A = 0.987654  # the initial point whose evaluation holds its batch back (HoldsFirst)


def jittery(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """A quadratic that first sleeps 0–30 ms, drawn from the system's entropy."""
    time.sleep(_JITTER.uniform(0.0, 0.03))
    a, b = params["a"], params["b"]
    return {"objective": -((a - 0.3) ** 2) - (b - 0.7) ** 2, "measures": {"ma": a, "mb": b}}


class HoldsFirst(Evaluator):
    """A quadratic that leaves ``<dir>/done-<seed>-<uuid>`` for each evaluation it finishes;
    the point with ``a`` = :data:`SLOW_A` runs (``slow-started`` left first) until it is cut
    short, the first time only."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        self.dir = Path(config["dir"])

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        if params["a"] == SLOW_A and not (self.dir / "slow-started").exists():
            (self.dir / "slow-started").touch()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                time.sleep(0.01)
        (self.dir / f"done-{ctx.seed}-{uuid.uuid4().hex}").touch()
        return jittery(params, ctx)


def _rows(url: str, name: str) -> list[tuple[Any, ...]]:
    """Each row of campaign ``name`` by seq: its params, x, proposal, status, objective."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT e.seq, e.params, e.x, e.proposal, e.status, e.objective FROM evaluations e "
                            "JOIN campaigns c ON c.id = e.campaign_id WHERE c.name = ? ORDER BY e.seq",
                            (name,)).fetchall()


def _jittery_spec(name: str, reproducible: bool, budget: int = 48) -> dict[str, Any]:
    return quadratic_spec(name=name, evaluator={"kind": "python", "target": "tests.test_reproducible_ray:jittery"},
                          search__budget=budget, search__batch_size=4, search__max_in_flight=8,
                          search__reproducible=reproducible, resources={"num_cpus": 1, "timeout_s": 60})


# -- on Ray ---------------------------------------------------------------------
@pytest.mark.ray
def test_a_reproducible_ray_run_is_the_same_whatever_order_its_workers_finish(sqlite_url: str,
                                                                                ray_cluster: None) -> None:
    """Map-elites on two Ray workers, each evaluation 0–30 ms at random: the same 48 rows, seq
    by seq (params, x, proposal, objective), where Ray had refused ``reproducible: true``."""
    first = api.run(_jittery_spec("one", True), storage=sqlite_url, executor="ray")
    second = api.run(_jittery_spec("two", True), storage=sqlite_url, executor="ray")
    assert first.finished == second.finished == 48
    one, two = _rows(sqlite_url, "one"), _rows(sqlite_url, "two")
    assert len(one) == 48 and all(r[4] == "done" for r in one)
    assert one == two


@pytest.mark.ray
def test_a_stopped_reproducible_ray_run_writes_what_it_held_and_runs_nothing_twice(tmp_path: Path,
                                                                                   ray_cluster: None) -> None:
    """The first evaluation (seq 0) runs until the stop; the rest of its batch (the first
    turn's 5 rows, submitted together; seq 0, the initial point, is an ask of its own)
    finish meanwhile, or wait behind it on its worker, and what finished is held back,
    unreported. A Ctrl-C (the progress callback's) writes each of those as done and puts
    every other row back ``pending`` uncharged; the resume runs them and the rest of the
    budget, and no evaluation finishes twice."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = quadratic_spec(name="held", search__budget=16, search__batch_size=4, search__max_in_flight=8,
                          search__reproducible=True, search__initial_points=[{"a": SLOW_A, "b": 0.5}],
                          evaluator={"kind": "python", "target": "tests.test_reproducible_ray:HoldsFirst",
                                     "config": {"dir": str(marks)}},
                          resources={"num_cpus": 1, "timeout_s": 120, "max_retries": 2})
    last: dict[str, Any] = {"count": -1, "since": 0.0}

    def stop_once_the_rest_finished(_stats: Any) -> None:
        """A Ctrl-C once seq 0 runs and no other evaluation has finished for 1 s (the others
        have, or wait behind it; their outcomes have reached the driver)."""
        count = len(list(marks.glob("done-*")))
        if count != last["count"]:
            last.update(count=count, since=time.monotonic())
        elif (marks / "slow-started").exists() and count and time.monotonic() - last["since"] > 1.0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=url, executor="ray", progress=stop_once_the_rest_finished)
    with sqlite3.connect(tmp_path / "a.db") as conn:
        stopped = conn.execute("SELECT seq, status, attempts FROM evaluations ORDER BY seq").fetchall()
    done = [seq for seq, status, _ in stopped if status == "done"]
    assert len(stopped) == 5 and 0 not in done
    assert len(done) == len(list(marks.glob("done-*"))) >= 2  # every one that finished, none released before
    assert all(status == "pending" and attempts == 0 for seq, status, attempts in stopped if seq not in done)

    stats = api.resume("held", storage=url, executor="ray")
    assert stats.finished == 16 and stats.counts["failed"] == 0
    finished = [p.name.split("-")[1] for p in marks.glob("done-*")]
    assert len(finished) == 16 and len(set(finished)) == 16  # each evaluation finished once, seq 0's after the stop


# -- the refusal that was ------------------------------------------------------
def test_make_executor_wraps_ray_in_ordered_batches_for_a_reproducible_run() -> None:
    """``search.reproducible`` with ``--executor ray`` is no longer refused: the Ray executor
    comes wrapped; without it, bare."""
    config = ExecutorConfig(kind="python", config={}, target=None, measure_names=[], whole_batches=True)
    wrapped = make_executor("ray", config)
    assert isinstance(wrapped, OrderedBatches) and isinstance(wrapped.inner, RayExecutor)
    assert wrapped.reports_starts_late is True
    config.whole_batches = False
    assert isinstance(make_executor("ray", config), RayExecutor)


# -- the wrapper, on a scripted executor -------------------------------------------
class Scripted(Executor):
    """An executor whose polls hand back ``script``'s lists one a poll (then nothing)."""

    def __init__(self, script: list[list[Outcome]]) -> None:
        super().__init__(ExecutorConfig(kind="python", config={}, target=None, measure_names=[]))
        self.script = script
        self.submitted: list[list[int]] = []
        self.polls = 0
        self.finished: list[Outcome] = []

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return 2

    def submit(self, tasks: list[EvaluationTask]) -> None:
        self.submitted.append([t.evaluation_id for t in tasks])
        self._report_started([t.evaluation_id for t in tasks])

    def poll(self, timeout: float) -> list[Outcome]:
        self.polls += 1
        return self.script.pop(0) if self.script else []

    def take_finished(self) -> list[Outcome]:
        return self.finished

    def in_flight(self) -> int:
        return 0

    def shutdown(self) -> None:
        pass


def _done(eid: int) -> Outcome:
    return Outcome(eid, "done", objective=float(eid), measures={})


def _lost(eid: int) -> Outcome:
    return Outcome(eid, "lost", error="worker lost")


def _tasks(*ids: int, attempt: int = 1) -> list[EvaluationTask]:
    return [EvaluationTask(i, i, {}, seed=i, attempt=attempt) for i in ids]


def _ids(outcomes: list[Outcome]) -> list[tuple[int, str]]:
    return [(o.evaluation_id, o.status) for o in outcomes]


def test_outcomes_come_back_a_whole_batch_a_poll_in_submit_order() -> None:
    """Batches [1, 2, 3] and [4, 5] finish out of order, 3 lost once: the lost one comes back
    at once (and, submitted again, stays in its batch), the later batch waits for the
    older, each comes back whole in submit order, and a complete one held comes back
    without a wait on the inner executor."""
    inner = Scripted([[_done(5), _done(2)], [_lost(3)], [_done(4), _done(1)], [], [_done(3)]])
    ex = OrderedBatches(inner)
    started: list[int] = []
    ex.on_start = started.extend
    ex.submit(_tasks(1, 2, 3))
    ex.submit(_tasks(4, 5))
    assert started == [1, 2, 3, 4, 5]  # the inner executor's starts reach the scheduler
    assert _ids(ex.poll(0.5)) == [(3, "lost")]  # 5 and 2 held, then the loss at once
    assert ex.in_flight() == 2
    ex.submit(_tasks(3, attempt=2))  # the retry: no batch of its own
    assert inner.submitted[-1] == [3]
    assert ex.poll(0.5) == []  # 4 and 1 came: [4, 5] is whole but waits for [1, 2, 3]
    assert ex.in_flight() == 4
    assert _ids(ex.poll(0.5)) == [(1, "done"), (2, "done"), (3, "done")]
    polls = inner.polls
    assert _ids(ex.poll(0.5)) == [(4, "done"), (5, "done")]
    assert inner.polls == polls  # it was whole already
    assert ex.in_flight() == 0


def test_an_evaluation_given_up_leaves_its_batch() -> None:
    """A lost evaluation the scheduler does not submit again (its retries spent: it settles
    it ``failed``) no longer holds its batch back."""
    inner = Scripted([[_lost(6)], [_done(7)]])
    ex = OrderedBatches(inner)
    ex.submit(_tasks(6, 7))
    ex.submit(_tasks(8))
    assert _ids(ex.poll(0.5)) == [(6, "lost")]
    assert _ids(ex.poll(0.5)) == [(7, "done")]  # not submitted again: given up
    inner.script.append([_done(8)])
    assert _ids(ex.poll(0.5)) == [(8, "done")]


def test_a_stop_takes_every_outcome_held_and_a_setup_failure_brings_them_all() -> None:
    """:meth:`take_finished` gives back the inner executor's and every outcome held, batch by
    batch; what is still running stays in its batch. A failed setup comes back at once with
    everything held (the run stops after that turn)."""
    inner = Scripted([[_done(10), _done(9)]])
    ex = OrderedBatches(inner)
    ex.submit(_tasks(8, 9))
    ex.submit(_tasks(10))
    assert ex.poll(0.5) == []
    inner.finished = [_done(11)]
    assert _ids(ex.take_finished()) == [(11, "done"), (9, "done"), (10, "done")]
    assert ex.in_flight() == 0
    inner.script.append([_done(8)])
    assert _ids(ex.poll(0.5)) == [(8, "done")]

    inner = Scripted([[_done(2)], [Outcome(3, "failed", error="evaluator setup failed: x", setup_failed=True)]])
    ex = OrderedBatches(inner)
    ex.submit(_tasks(1, 2))
    ex.submit(_tasks(3))
    out = ex.poll(0.5)
    assert [(o.evaluation_id, o.setup_failed) for o in out] == [(3, True), (2, False)]



class ClusterGoesAway(Executor):
    """Ends every task at once but the first submitted, which never ends; its third poll
    raises :class:`ExecutorError`, as a Ray cluster lost does."""

    reports_starts_late = True

    def __init__(self) -> None:
        super().__init__(ExecutorConfig(kind="python", config={}, target=None, measure_names=["ma", "mb"]))
        self.queue: list[EvaluationTask] = []
        self.first: int | None = None
        self.polls = 0

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return 8

    def submit(self, tasks: list[EvaluationTask]) -> None:
        self.first = tasks[0].evaluation_id if self.first is None else self.first
        self.queue += tasks
        self._report_started([t.evaluation_id for t in tasks])

    def poll(self, timeout: float) -> list[Outcome]:
        self.polls += 1
        if self.polls >= 3:
            raise ExecutorError("the Ray cluster at 10.0.0.1:6379 stopped answering")
        ended = [t for t in self.queue if t.evaluation_id != self.first]
        self.queue = [t for t in self.queue if t.evaluation_id == self.first]
        return [Outcome(t.evaluation_id, "done", objective=t.params["a"],
                        measures={"ma": t.params["a"], "mb": t.params["b"]}) for t in ended]

    def in_flight(self) -> int:
        return len(self.queue)

    def shutdown(self) -> None:
        pass


def test_a_run_its_executor_stops_writes_the_outcomes_held_back(sqlite_url: str) -> None:
    """The cluster lost (:class:`ExecutorError`) while 7 of the first batch's 8 are held for
    the 8th: the 7 are written done; the 8th goes back ``pending`` charged, as what is in
    flight always does when the executor stops the run."""
    spec = quadratic_spec(search__budget=16, search__batch_size=4, search__max_in_flight=8,
                          search__reproducible=True)
    with pytest.raises(ExecutorError, match="stopped answering"):
        api.run(spec, storage=sqlite_url, executor=OrderedBatches(ClusterGoesAway()))
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        rows = conn.execute("SELECT seq, status, attempts FROM evaluations ORDER BY seq").fetchall()
    assert rows == [(0, "pending", 1)] + [(seq, "done", 1) for seq in range(1, 8)]
