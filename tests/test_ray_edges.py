"""Evaluations on Ray workers at their edges: a worker that dies in its setup, a setup
that hangs or is slow, a worker that dies as a batch begins, a cluster too small."""

from __future__ import annotations

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
