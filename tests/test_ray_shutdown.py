"""The Ray executor's shutdown: a SIGTERM while Ray shuts down at the end of a run, and
workers still evaluating when the run ends (torn down within a bound, else killed).

Two Ray start-ups: ``atlas run`` in a process of its own (its private Ray, whose shutdown
is what the signal lands in), and the module's ``ray_cluster`` for the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import archive
from search import api
from tests.conftest import quadratic_spec
from workers.contract import EvalContext, Evaluator
from workers.executors.base import ExecutorConfig
from workers.executors.reaper import is_alive
from workers.runner import EvaluationTask

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[1]


class BusyTearsDown(Evaluator):
    """An evaluation where ``a`` > ``config["slow_above"]`` runs until it is stopped (it
    writes ``<dir>/started-<pid>`` first); ``teardown`` writes ``<dir>/teardown-<pid>``.
    With ``config["deaf"]`` the long evaluation swallows whatever is raised in it and
    never ends: only a kill stops it."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        self.dir = Path(config["dir"])
        self.slow_above = float(config.get("slow_above", -1.0))
        self.deaf = bool(config.get("deaf", False))

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        if params["a"] > self.slow_above:
            (self.dir / f"started-{os.getpid()}").touch()
            while True:
                try:
                    time.sleep(0.01)
                except BaseException:
                    if not self.deaf:
                        raise
        return {"objective": params["a"], "measures": {"ma": params["a"], "mb": params["b"]}}

    def teardown(self) -> None:
        (self.dir / f"teardown-{os.getpid()}").touch()


def _started(folder: Path, executor: Any = None, within: float = 120.0) -> int:
    """The pid of the worker that started a long evaluation (its marker), waited for while
    ``executor`` (where given) is polled: it pushes the work once its worker is set up."""
    deadline = time.monotonic() + within
    while not (found := sorted(folder.glob("started-*"))) and time.monotonic() < deadline:
        if executor is None:
            time.sleep(0.05)
        else:
            assert executor.poll(0.05) == []  # nothing ends
    assert found, "no worker started the long evaluation"
    return int(found[0].name.removeprefix("started-"))


# -- a SIGTERM in the run's last ray.shutdown -----------------------------------
SIGTERM_IN_RAY_SHUTDOWN = """
import json, os, signal, sys, time
from ray._private import node as ray_node
from search import cli
from workers.executors.reaper import descendants, is_alive

spec, storage = sys.argv[1:3]
seen = []  # the processes below this one as the signal came: (pid, start time)
kill_all = ray_node.Node.kill_all_processes

def sigterm_first(self, *args, **kwargs):  # ray.shutdown ends its processes once the driver's core worker is down
    if not seen:
        seen.extend(descendants(os.getpid()))
        os.kill(os.getpid(), signal.SIGTERM)
    return kill_all(self, *args, **kwargs)

ray_node.Node.kill_all_processes = sigterm_first
sys.argv = ["atlas", "run", spec, "--storage", storage, "--executor", "ray"]
code = cli._run_app()
deadline = time.monotonic() + 30
while any(is_alive(*p) for p in seen) and time.monotonic() < deadline:
    time.sleep(0.2)
print("RESULT " + json.dumps({"code": code, "signalled": bool(seen), "gone": not any(is_alive(*p) for p in seen)}),
      flush=True)
for pid, started in seen:  # not left to the next test, whatever happened
    if is_alive(pid, started):
        os.kill(pid, signal.SIGKILL)
"""


def test_a_sigterm_while_ray_shuts_down_at_the_end_of_a_run_is_the_commands_stop(tmp_path: Path) -> None:
    """A SIGTERM that came while the run's last ``ray.shutdown`` ended Ray's processes (the
    driver's core worker already shut down) killed `atlas run` (exit −15, no word): Ray's
    core worker, shut down, sets SIGTERM's action back to the default beneath Python's
    handler. Now the command's handler holds throughout the shutdown, the signal acts once
    Ray is down: `stopped after the campaign finished …`, exit 130, every evaluation of
    the finished campaign kept, none of Ray's processes left."""
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(
        search__budget=4, search__batch_size=2, search__max_in_flight=2,
        resources={"num_cpus": 1, "timeout_s": 30, "max_retries": 2})))
    db = tmp_path / "a.db"
    done = subprocess.run([sys.executable, "-c", SIGTERM_IN_RAY_SHUTDOWN, str(spec), f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines and json.loads(lines[-1].removeprefix("RESULT ")) == {"code": 130, "signalled": True, "gone": True}
    said = [line for line in done.stderr.splitlines() if line.startswith("stopped")]
    on = f"--storage sqlite:///{db}"  # the hints name the storage the run was given
    assert said == [f"stopped after the campaign finished; `atlas status quad {on}` and `atlas map quad {on} "
                    "--out FILE` show it"], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    with archive.open(f"sqlite:///{db}") as handle:
        campaign = handle.campaign("quad")
        rows = campaign.evaluations()
    assert len(rows) == 4 and all(r["status"] == "done" and r["attempts"] == 1 for r in rows)


# -- workers still evaluating when the run ends ----------------------------------
def _config(folder: Path, **config: Any) -> ExecutorConfig:
    return ExecutorConfig(kind="python", config={"dir": str(folder), **config},
                          target="tests.test_ray_shutdown:BusyTearsDown", measure_names=["ma", "mb"],
                          campaign="shutdown", num_cpus=1, timeout_s=600, max_in_flight=1)


def _shut_down(executor: Any, within: float = 120.0) -> None:
    """``executor.shutdown()`` on a thread, failing the test where it never returns."""
    failure: list[BaseException] = []

    def shut() -> None:
        try:
            executor.shutdown()
        except BaseException as exc:  # told to the test below
            failure.append(exc)

    thread = threading.Thread(target=shut, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), "the executor's shutdown did not return"
    assert not failure, failure


def _shut_down_busy(executor: Any, tmp_path: Path) -> int:
    """Start ``executor``, give it one evaluation and shut it down while that runs: the worker's pid."""
    executor.start()
    try:
        executor.submit([EvaluationTask(1, 0, {"a": 0.5, "b": 0.5}, seed=0)])
        pid = _started(tmp_path, executor)
    finally:
        _shut_down(executor)
    return pid


def _gone(pid: int, within_s: float = 30) -> bool:
    """Whether process ``pid`` has ended, waiting up to ``within_s``."""
    deadline = time.monotonic() + within_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not is_alive(pid)


@pytest.mark.usefixtures("ray_cluster")
def test_a_worker_busy_at_shutdown_tears_its_evaluator_down(tmp_path: Path) -> None:
    """A worker mid-evaluation at the end of a run was killed without its ``teardown``
    (only idle workers were asked). Now it is asked to stop: its evaluation is cut short
    and the evaluator torn down on it before the worker is killed."""
    from workers.executors.ray_executor import RayExecutor

    executor = RayExecutor(_config(tmp_path))
    pid = _shut_down_busy(executor, tmp_path)
    assert (tmp_path / f"teardown-{pid}").exists()
    assert _gone(pid)


@pytest.mark.usefixtures("ray_cluster")
def test_a_worker_that_does_not_stop_is_killed_after_the_grace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An evaluation that swallows what stops it never ends: the shutdown waits for it no
    longer than its bound (``TEARDOWN_S``), then kills the worker, torn down or not."""
    from workers.executors import ray_executor

    monkeypatch.setattr(ray_executor, "TEARDOWN_S", 1.0)
    executor = ray_executor.RayExecutor(_config(tmp_path, deaf=True))
    pid = _shut_down_busy(executor, tmp_path)
    assert _gone(pid)
    assert not (tmp_path / f"teardown-{pid}").exists()  # it never got that far


@pytest.mark.usefixtures("ray_cluster")
def test_an_evaluation_cut_short_by_an_interrupt_goes_back_uncharged_and_its_worker_tears_down(
        tmp_path: Path) -> None:
    """An interrupted run (a Ctrl-C, here its progress callback's) with a worker mid-evaluation:
    that evaluation goes back to ``pending`` with its attempt taken back, as every stop
    does, and the worker tears its evaluator down."""
    spec = quadratic_spec(search__budget=4, search__batch_size=1, search__max_in_flight=1, search__fail_fast=0,
                          resources={"num_cpus": 1, "timeout_s": 600, "max_retries": 2})
    spec["search"].update(algorithm="random", seed=0)
    spec["evaluator"] = {"kind": "python", "target": "tests.test_ray_shutdown:BusyTearsDown",
                         "config": {"dir": str(tmp_path), "slow_above": -1.0}}
    url = f"sqlite:///{tmp_path / 'a.db'}"

    def interrupted_once_started(_stats: Any) -> None:
        if any(tmp_path.glob("started-*")):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=url, executor="ray", progress=interrupted_once_started)
    pid = _started(tmp_path, within=0)
    assert (tmp_path / f"teardown-{pid}").exists()
    with archive.open(url) as handle:
        rows = handle.campaign("quad").evaluations()
    assert rows and all(r["status"] == "pending" and r["attempts"] == 0 for r in rows), rows
