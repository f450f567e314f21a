"""Evaluations on Ray workers at their edges: a worker that dies in its setup, a setup
that hangs or is slow, a worker that dies as a batch begins, a cluster too small; an
evaluator that raises a BaseException in ``__init__``, ``setup``, ``evaluate`` or
``teardown`` (:mod:`tests.test_executor_faults` has the same worker without Ray)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

import archive
from search import api
from search.scheduler import EvaluatorSetupFailed
from tests.conftest import quadratic_spec
from workers.contract import EvalContext, Evaluator
from workers.executors.base import ExecutorError

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_cluster")]


class DiesInSetup(Evaluator):
    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        os._exit(3)  # a segfault, or the OOM killer, while a model loads

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:  # pragma: no cover
        return {}


class SlowSetup(Evaluator):
    """Sets up in ``config["setup_s"]`` seconds; evaluations take 0.05 s, 3 s where ``a`` > 0.8."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        time.sleep(float(config["setup_s"]))

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        time.sleep(3.0 if params["a"] > 0.8 else 0.05)
        return {"objective": params["a"], "measures": {"ma": params["a"], "mb": params["b"]}}


def crashes_above(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Kills its worker at once where ``a`` > 0.8; else quick."""
    if params["a"] > 0.8:
        os._exit(9)
    return {"objective": params["a"], "measures": {"ma": params["a"], "mb": params["b"]}}


class MyBase(BaseException):
    """Neither an Exception nor one of Python's own."""


class BaseInSetup(Evaluator):
    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        raise MyBase("setup base")


class RaisesInInit(Evaluator):
    def __init__(self) -> None:
        raise ValueError("init fails")  # in the driver too, before: a Ray traceback, rc 1


def interrupts_above(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Raises KeyboardInterrupt itself where ``a`` > 0.7; else quick."""
    if params["a"] > 0.7:
        raise KeyboardInterrupt
    return {"objective": params["a"], "measures": {"ma": params["a"], "mb": params["b"]}}


class TearsDown(Evaluator):
    """``teardown`` leaves ``<config dir>/teardown-<pid>`` behind, then raises MyBase."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        self.dir = Path(config["dir"])

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return {"objective": params["a"], "measures": {"ma": params["a"], "mb": params["b"]}}

    def teardown(self) -> None:
        (self.dir / f"teardown-{os.getpid()}").touch()
        raise MyBase("teardown base")


def _spec(target: str, config: dict[str, Any] | None = None, **resources: Any) -> dict[str, Any]:
    spec = quadratic_spec(search__budget=12, search__batch_size=2, search__max_in_flight=2, search__fail_fast=0,
                          resources={"num_cpus": 1, "timeout_s": 30, "max_retries": 2, **resources})
    spec["evaluator"] = {"kind": "python", "target": f"tests.test_ray_edges:{target}", "config": config or {}}
    return spec


def _rows(url: str) -> list[dict[str, Any]]:
    with archive.open(url) as handle:
        return handle.campaign("quad").evaluations()


def test_a_worker_that_dies_in_its_setup_is_refused_before_writing(tmp_path: Path) -> None:
    """It looped on, replacing workers, with the campaign written and nothing failing."""
    db = tmp_path / "a.db"
    with pytest.raises(EvaluatorSetupFailed, match=r"the worker died while it set the evaluator up.*nothing was "
                                                   r"written"):
        api.run(_spec("DiesInSetup"), storage=f"sqlite:///{db}", executor="ray")
    from tests.test_edges import campaign_rows

    assert campaign_rows(db) == 0


def test_more_cpus_than_the_cluster_has_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError, match="ask for 3 of 'CPU' each but the Ray cluster has 2"):
        api.run(_spec("crashes_above", num_cpus=3), storage=f"sqlite:///{tmp_path / 'a.db'}", executor="ray")
    assert not (tmp_path / "a.db").exists()


def test_a_batch_time_starts_after_the_setup(sqlite_url: str) -> None:
    """A 3 s setup and a 1 s timeout: after the first timeout every evaluation timed out,
    each clock started at the push to a replacement worker still setting up."""
    spec = _spec("SlowSetup", {"setup_s": 3}, timeout_s=1)
    spec["search"].update(algorithm="random", seed=0, budget=16)
    api.run(spec, storage=sqlite_url, executor="ray")
    rows = _rows(sqlite_url)
    slow = [r for r in rows if r["params"]["a"] > 0.8]
    assert slow and all(r["status"] == "failed" and "timeout" in r["error"] for r in slow)
    assert all(not r["worker"].startswith("actor-") and r["worker"].rsplit(":", 1)[-1].isdigit() for r in slow)
    assert all(r["status"] == "done" for r in rows if r["params"]["a"] <= 0.8), [
        (r["params"]["a"], r["error"]) for r in rows if r["status"] != "done"]


def test_a_setup_that_never_ends_stops_the_run(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.executors import base, ray_executor

    monkeypatch.setattr(base, "SETUP_CHECK_S", 0.5)  # the run writes the campaign before the limit
    monkeypatch.setattr(ray_executor, "MIN_SETUP_LIMIT_S", 3.0)
    with pytest.raises(EvaluatorSetupFailed, match="setup on a worker did not end within 3 s"):
        api.run(_spec("SlowSetup", {"setup_s": 600}, timeout_s=1), storage=sqlite_url, executor="ray")
    assert all(r["status"] == "pending" and r["attempts"] == 0 for r in _rows(sqlite_url))


def test_a_worker_dying_as_a_batch_begins_is_charged_to_the_evaluation_that_killed_it(sqlite_url: str) -> None:
    """The worker starts its next batch as the last ends; one that dies at once took the
    last batch's outcomes with it, and that batch was blamed while the crasher went back
    uncharged: innocent evaluations ended "gave up", crashers ran past max_retries."""
    spec = _spec("crashes_above")
    spec["search"].update(algorithm="random", seed=0, budget=24, batch_size=1, max_in_flight=2)
    api.run(spec, storage=sqlite_url, executor="ray")
    rows = _rows(sqlite_url)
    crashers = [r for r in rows if r["params"]["a"] > 0.8]
    innocent = [r for r in rows if r["params"]["a"] <= 0.8]
    assert crashers and innocent
    assert all(r["status"] == "done" for r in innocent), [(r["params"]["a"], r["error"]) for r in innocent
                                                          if r["status"] != "done"]
    assert all(r["status"] == "failed" and r["attempts"] == 3 and "gave up after 3 attempts" in r["error"]
               for r in crashers), [(r["attempts"], r["error"]) for r in crashers]
    assert all(r["worker"] and r["worker"].rsplit(":", 1)[-1].isdigit() for r in crashers)  # host:pid of the dead


@pytest.mark.parametrize(("target", "error"), [("BaseInSetup", "MyBase: setup base"),
                                               ("RaisesInInit", "ValueError: init fails")])
def test_a_base_exception_in_setup_or_init_is_refused_before_writing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, error: str) -> None:
    """A BaseException in setup killed the worker's thread (its setup never answered: the
    campaign was written, the run failed 300 s later); __init__ ran in the driver."""
    from tests.test_edges import campaign_rows
    from workers.executors import ray_executor

    monkeypatch.setattr(ray_executor, "MIN_SETUP_LIMIT_S", 3.0)  # the old failure, soon
    db = tmp_path / "a.db"
    with pytest.raises(EvaluatorSetupFailed, match=f"evaluator setup failed: {error}; nothing was written"):
        api.run(_spec(target), storage=f"sqlite:///{db}", executor="ray")
    assert campaign_rows(db) == 0


def test_an_evaluator_interrupting_itself_fails_its_evaluation_and_the_worker_goes_on(sqlite_url: str) -> None:
    """A KeyboardInterrupt of the evaluator's own killed the worker's evaluation thread: every
    later batch on it waited out its timeout and was recorded as one."""
    spec = _spec("interrupts_above", timeout_s=5)
    spec["search"].update(algorithm="random", seed=0, budget=10)
    api.run(spec, storage=sqlite_url, executor="ray")
    rows = _rows(sqlite_url)
    interrupted = [r for r in rows if r["params"]["a"] > 0.7]
    assert interrupted and all(r["status"] == "failed" and r["error"].startswith("KeyboardInterrupt")
                               for r in interrupted), [r["error"] for r in interrupted]
    assert all(r["status"] == "done" for r in rows if r["params"]["a"] <= 0.7), [
        r["error"] for r in rows if r["status"] != "done"]


def test_workers_tear_their_evaluators_down_and_a_failure_is_a_warning(
        sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """teardown() was never called on Ray (the actors were only killed)."""
    spec = _spec("TearsDown", {"dir": str(tmp_path)})
    spec["search"]["budget"] = 4
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.executor"):
        stats = api.run(spec, storage=sqlite_url, executor="ray")
    assert stats.finished == 4
    workers = {int(r["worker"].rsplit(":", 1)[-1]) for r in _rows(sqlite_url)}
    torn_down = {int(p.name.removeprefix("teardown-")) for p in tmp_path.glob("teardown-*")}
    assert workers <= torn_down and os.getpid() not in torn_down  # every worker's, none in the driver
    warnings = [r.getMessage() for r in caplog.records if r.name == "entropy_atlas.executor"]  # not the spec's
    assert len(warnings) == len(torn_down) and all(
        w.startswith("the evaluator's teardown on ") and w.endswith("failed: MyBase: teardown base") for w in warnings)
