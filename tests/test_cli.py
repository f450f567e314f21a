"""The command line, end to end in subprocesses: run on local Ray, inspect, export, map,
refuse bad files, and survive kill -9 with `atlas resume`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import quadratic_spec

ATLAS = [sys.executable, "-m", "search.cli"]


def atlas(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*ATLAS, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def write_spec(path: Path, **overrides: object) -> Path:
    path.write_text(yaml.safe_dump(quadratic_spec(**overrides)))
    return path


@pytest.mark.ray
def test_run_on_local_ray_then_inspect(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "c.yaml", search__budget=40)
    done = atlas("run", str(spec), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "quad: 40 evaluations (0 failed)" in done.stdout
    assert (tmp_path / "atlas-maps" / "quad.png").stat().st_size > 10_000
    assert (tmp_path / "atlas.db").exists()  # the embedded default storage

    status = atlas("status", "quad", "--json", cwd=tmp_path)
    row = json.loads(status.stdout)
    assert row["finished"] == 40 and row["status"] == "finished" and row["proposers"]["map-elites"]["done"] == 40

    elites = json.loads(atlas("elites", "quad", "--format", "json", "--top", "3", cwd=tmp_path).stdout)
    assert len(elites) == 3 and elites[0]["objective"] >= elites[1]["objective"] >= elites[2]["objective"]
    csv_out = atlas("elites", "quad", "--format", "csv", cwd=tmp_path).stdout.splitlines()
    assert csv_out[0].startswith("cell,evaluation_id,objective,ma,mb,a,b")

    for suffix in ("json", "csv", "parquet"):
        out = tmp_path / f"run.{suffix}"
        assert atlas("export", "quad", "--out", str(out), cwd=tmp_path).returncode == 0
    doc = json.loads((tmp_path / "run.json").read_text())
    assert set(doc) == {"campaign", "evaluations", "elites"}
    assert doc["campaign"]["status"] == "finished" and len(doc["evaluations"]) == 40
    first = doc["evaluations"][0]
    assert {"id", "seq", "params", "status", "objective", "measures", "metrics", "cell", "proposer",
            "attempts", "error"} <= set(first)
    assert list(doc["elites"][0]) == ["cell", "evaluation_id", "objective", "measures", "params", "seq", "proposer"]
    flat = pd.read_parquet(tmp_path / "run.parquet")
    assert {"params.a", "measures.ma", "metrics.seed"} <= set(flat.columns) and len(flat) == 40
    assert len(pd.read_csv(tmp_path / "run.csv")) == 40

    assert atlas("map", "quad", "--out", str(tmp_path / "m.png"), cwd=tmp_path).returncode == 0
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_file_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "bad.yaml", search__budget=0)
    done = atlas("run", str(spec), "--executor", "inline", cwd=tmp_path)
    assert done.returncode == 2
    assert "search.budget: must be > 0" in done.stderr
    assert not (tmp_path / "atlas.db").exists()


def test_unknown_campaign_and_storage_errors(tmp_path: Path) -> None:
    done = atlas("status", "nope", "--storage", f"sqlite:///{tmp_path}/a.db", cwd=tmp_path)
    assert done.returncode == 2 and "no campaign named 'nope'" in done.stderr
    done = atlas("status", "--storage", "postgresql+psycopg://x:y@127.0.0.1:1/none", cwd=tmp_path)
    assert done.returncode == 2 and "cannot open storage" in done.stderr


def test_kill_9_then_resume_finishes_exactly_the_budget(tmp_path: Path) -> None:
    budget = 120
    spec = write_spec(tmp_path / "k.yaml", name="killme", search__budget=budget, search__batch_size=4,
                      search__max_in_flight=8,
                      evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"})
    log = tmp_path / "finished.log"
    env = {"ATLAS_TEST_LOG": str(log), "ATLAS_TEST_SLEEP": "0.03"}
    db = tmp_path / "atlas.db"
    proc = subprocess.Popen([*ATLAS, "run", str(spec), "--executor", "inline"], cwd=tmp_path,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        n = conn.execute("select count(*) from evaluations where status='done'").fetchone()[0]
                    except sqlite3.OperationalError:
                        n = 0
                if n >= 30:
                    break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with sqlite3.connect(db) as conn:
        before = conn.execute("select count(*) from evaluations where status in ('done','failed')").fetchone()[0]
        lease = conn.execute("select lease_holder from campaigns where name='killme'").fetchone()[0]
    assert 30 <= before < budget, "the kill must land mid-campaign"
    assert lease is not None  # the dead scheduler still holds its lease...

    done = atlas("resume", "killme", "--executor", "inline", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr  # ...which a dead local process cannot keep

    with sqlite3.connect(db) as conn:
        rows = conn.execute("select seq, status, cell, objective from evaluations").fetchall()
        elites = dict(conn.execute("select cell, objective from elites").fetchall())
    assert len(rows) == budget and sorted(r[0] for r in rows) == list(range(budget))
    assert all(r[1] in ("done", "failed") for r in rows)
    best: dict[int, float] = {}
    for _, status, cell, objective in rows:
        if status == "done" and (cell not in best or objective > best[cell]):
            best[cell] = objective
    assert elites == best
    # Evaluations re-run are at most those in flight at the kill (results not yet recorded).
    finished_runs = log.read_text().splitlines()
    assert budget <= len(finished_runs) <= budget + 8


def test_a_thread_the_evaluator_left_running_does_not_keep_the_command_alive(tmp_path: Path) -> None:
    """An inline evaluator that started a thread (not a daemon): the run printed its summary,
    then the interpreter waited on the thread for ever."""
    spec = write_spec(tmp_path / "t.yaml", search__budget=2, search__batch_size=1, search__max_in_flight=1,
                      evaluator={"kind": "python", "target": "tests.support.evaluators:leaves_a_thread"})
    root = Path(__file__).resolve().parents[1]
    done = atlas("run", str(spec), "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'a.db'}",
                 cwd=tmp_path, env={"PYTHONPATH": str(root)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "quad: 2 evaluations" in done.stdout
    assert "warning: 2 threads that Entropy Atlas did not start still running (leaky-worker, leaky-worker)" in " ".join(
        done.stderr.split())
