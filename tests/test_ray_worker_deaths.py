"""Ray's report of a dead worker: one ``warning:`` line on stderr, not Ray's paragraph on stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import quadratic_spec
from workers.executors.ray_logs import _DeathsAsWarnings, worker_death

REPO = Path(__file__).resolve().parents[1]

# Ray 2.60's raylet report, as its error listener hands it to the driver
REPORT = ("A worker died or was killed while executing a task by an unexpected system error. To troubleshoot the "
          "problem, check the logs for the dead worker. Lease ID: 0100 Worker ID: 7c19 Node ID: 4c72 Worker IP "
          "address: 192.0.2.2 Worker port: 44977 Worker PID: 11355 Worker exit type: SYSTEM_ERROR Worker exit "
          "detail: Worker unexpectedly exits with a connection error code 2. End of file. Some common causes "
          "include: (1) the process was killed by the OOM killer due to high memory usage, (2) ray stop --force "
          "was called, or (3) the worker crashed unexpectedly due to SIGSEGV or another unexpected error.")


def test_the_report_becomes_one_line_with_the_pid_and_why() -> None:
    assert worker_death(REPORT) == ("a Ray worker died (pid 11355, SYSTEM_ERROR: Worker unexpectedly exits with a "
                                    "connection error code 2. End of file.)")
    assert worker_death("(pid=12) a line the evaluator printed") is None
    assert worker_death("A worker died or was killed while executing a task") == "a Ray worker died"


def test_only_the_raylet_s_death_reports_are_taken_out() -> None:
    forwarded: list[tuple[dict[str, Any], tuple[Any, ...]]] = []
    warned: list[str] = []
    printer = _DeathsAsWarnings(lambda data, *args: forwarded.append((data, args)), warned.append)
    printer({"pid": "raylet", "is_err": False, "lines": [REPORT, "another raylet line"]}, False)
    printer({"pid": "raylet", "is_err": False, "lines": [REPORT]}, False)
    printer({"pid": 77, "is_err": False, "lines": [REPORT]}, False)  # a worker printing those words is its own
    assert len(warned) == 2 and warned[0].startswith("a Ray worker died (pid 11355")
    assert forwarded == [({"pid": "raylet", "is_err": False, "lines": ["another raylet line"]}, (False,)),
                         ({"pid": 77, "is_err": False, "lines": [REPORT]}, (False,))]


@pytest.mark.ray
def test_a_run_whose_workers_die_prints_one_warning_each_and_keeps_stdout_its_own(tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=12, search__batch_size=2, search__max_in_flight=2, search__fail_fast=0,
                          resources={"num_cpus": 1, "timeout_s": 60, "max_retries": 2})
    spec["evaluator"]["target"] = "tests.support.evaluators:crash_once"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "search.cli", "run", "c.yaml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "quad: 12 evaluations (0 failed)" in done.stdout  # each crasher ran again on a fresh worker
    assert "A worker died" not in done.stdout + done.stderr and "raylet" not in done.stdout
    deaths = [line for line in done.stderr.splitlines() if line.startswith("warning: a Ray worker died (pid ")]
    assert deaths and all("SYSTEM_ERROR" in line for line in deaths), done.stderr
