"""The dashboard as a process (``atlas dashboard``, and ``python -m dashboard`` for
when the ``atlas`` command is not at hand): it serves on 127.0.0.1, stops on Ctrl+C, and a
storage it cannot use is an error message and exit code 2 before anything listens. Only the
processes started here are stopped, by pid."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


LAUNCHERS = {"atlas": ["-m", "search.cli", "dashboard"], "module": ["-m", "dashboard"]}


def start(launcher: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, *LAUNCHERS[launcher], *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen[str]) -> None:
    """End the process started here, by its pid: Ctrl+C, then terminate, then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@pytest.fixture(params=sorted(LAUNCHERS))
def served(request: pytest.FixtureRequest, dash_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = start(request.param, "--storage", dash_url, "--port", "0")
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "dashboard on" in line or not line:
                break
        match = re.search(r"dashboard on (http://127\.0\.0\.1:\d+/)", line)
        assert match, f"no address announced: {line!r} (exit {proc.poll()})"
        yield proc, match.group(1)
    finally:
        stop(proc)


def test_serves_on_loopback_and_stops_on_ctrl_c(served: tuple[subprocess.Popen[str], str]) -> None:
    proc, url = served
    with urllib.request.urlopen(url + "api/health", timeout=30) as response:
        health = json.load(response)
    assert health["ok"] and health["read_only"] and health["campaigns"] == 6
    with urllib.request.urlopen(url + "campaigns/quad", timeout=30) as response:
        assert response.status == 200 and b"elite-map" in response.read()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_unreachable_storage_is_an_error_before_serving(tmp_path: Path, launcher: str) -> None:
    proc = start(launcher, "--storage", f"sqlite:///{tmp_path / 'nothing-here.db'}", "--port", "0")
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1].startswith("error: cannot open storage sqlite:///")
    assert "does not exist" in err and "Traceback" not in err and "dashboard on" not in err
    assert not (tmp_path / "nothing-here.db").exists()
