"""Ray start-up: a private local Ray whatever else this host runs, and nothing of it left
behind when the scheduler is killed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import quadratic_spec
from workers.executors.reaper import descendants, is_alive

pytestmark = pytest.mark.ray
BOOTSTRAP = Path("/tmp/ray/ray_current_cluster")


def write_spec(tmp_path: Path, **overrides: object) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(**overrides)))
    return path


def test_a_stale_cluster_file_is_ignored(tmp_path: Path) -> None:
    """``/tmp/ray/ray_current_cluster`` naming a dead cluster made `atlas run` hang."""
    if BOOTSTRAP.exists():
        pytest.skip("a Ray cluster file of someone else's is on this host; not touching it")
    BOOTSTRAP.parent.mkdir(parents=True, exist_ok=True)
    BOOTSTRAP.write_text("127.0.0.1:1\n")
    try:
        done = subprocess.run([sys.executable, "-m", "search.cli", "run", str(write_spec(tmp_path, search__budget=10)),
                               "--storage", f"sqlite:///{tmp_path / 'a.db'}"], capture_output=True, text=True,
                              timeout=240, cwd=tmp_path)
    finally:
        if BOOTSTRAP.read_text() == "127.0.0.1:1\n":
            BOOTSTRAP.unlink()
    assert done.returncode == 0, done.stderr
    assert "10 evaluations (0 failed)" in done.stdout


def test_kill_9_of_the_scheduler_leaves_no_ray_process_of_its_own(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    spec = write_spec(tmp_path, search__budget=400, search__batch_size=2, search__max_in_flight=2)
    data = yaml.safe_load(spec.read_text())
    data["evaluator"]["target"] = "tests.support.evaluators:slow_quadratic"
    spec.write_text(yaml.safe_dump(data))
    proc = subprocess.Popen([sys.executable, "-m", "search.cli", "run", str(spec), "--storage", f"sqlite:///{db}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                            env={**os.environ, "ATLAS_TEST_SLEEP": "0.2"})
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if db.exists():
                with sqlite3.connect(db) as conn:
                    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                    if "evaluations" in tables and conn.execute(
                            "SELECT count(*) FROM evaluations WHERE status = 'done'").fetchone()[0] >= 2:
                        break
            time.sleep(0.5)
        else:
            pytest.fail("the campaign never got going")
        time.sleep(2)  # the reaper has been started by now
        ours = descendants(proc.pid)
        assert len(ours) >= 3, "Ray's head processes run below the scheduler"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(is_alive(pid, started) for pid, started in ours):
        time.sleep(0.5)
    left = [pid for pid, started in ours if is_alive(pid, started)]
    for pid in left:  # do not leave them to the next test, whatever happened
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} of {len(ours)} processes outlived the scheduler"


REFUSED_THEN_RUN = """
import json, os, signal, sys, time
import ray
from search import api
from tests.conftest import quadratic_spec
from workers.executors.base import ExecutorError
from workers.executors.reaper import descendants, is_alive

def ours_gone(within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        alive = [p for p, started in descendants(os.getpid()) if is_alive(p, started)]
        if not alive:
            return True
        time.sleep(0.2)
    return False

url, out = sys.argv[1], {}
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # not callable: it was left as Ray's own
spec = quadratic_spec(search__budget=4, search__batch_size=2, search__max_in_flight=2)
spec["resources"]["num_cpus"] = 1000
try:
    api.run(spec, storage=url, executor="ray")
except ExecutorError as exc:
    out["refused"] = str(exc)
out["initialized_after_refusal"] = ray.is_initialized()
out["sigterm_ignored"] = signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
out["processes_gone_after_refusal"] = ours_gone(30)
signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a plain script's
out["finished"] = api.run(quadratic_spec(search__budget=4, search__batch_size=2, search__max_in_flight=2),
                          storage=url, executor="ray").finished
out["initialized_after_run"] = ray.is_initialized()
out["sigterm_default"] = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
out["processes_gone_after_run"] = ours_gone(30)
print("RESULT " + json.dumps(out))
"""


def test_a_refused_start_leaves_no_ray_and_each_run_puts_sigterm_back(tmp_path: Path) -> None:
    """A private Ray refused at start (5 CPUs an evaluation on a smaller machine) stayed up
    in the caller's process, and the next run reused it without shutting it down; the
    SIGTERM handler before ``ray.init`` was put back only when callable (not ``SIG_IGN``,
    not ``SIG_DFL``). Run in a process of its own: this one's Ray stays untouched."""
    done = subprocess.run([sys.executable, "-c", REFUSED_THEN_RUN, f"sqlite:///{tmp_path / 'a.db'}"],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert "ask for 1000 of 'CPU' each" in out["refused"]
    assert out == {**out, "initialized_after_refusal": False, "sigterm_ignored": True,
                   "processes_gone_after_refusal": True, "finished": 4, "initialized_after_run": False,
                   "sigterm_default": True, "processes_gone_after_run": True}
