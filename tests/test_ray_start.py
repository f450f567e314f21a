"""Ray start-up: a private local Ray whatever else this host runs, and nothing of it left
behind when the scheduler is killed."""

from __future__ import annotations

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
