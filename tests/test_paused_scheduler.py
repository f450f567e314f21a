"""A scheduler paused past its lease (``SIGSTOP``, Ctrl-Z in a terminal, a VM frozen) while
another took the campaign over: once it goes on, it starts no evaluation and charges
nothing on the new holder's rows; it stops with one line. The pause here is a real
``SIGSTOP`` of a child process (every thread frozen, the lease keeper's too), landing
between the turn's fenced write and the poll that starts the evaluations it dispatched.
A run paused inside a SQLite write keeps the file's lock: the writers waiting on it say so."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive.errors import StorageError
from archive.store import Store
from search.campaigns import open_campaign
from search.spec import parse_spec
from tests.conftest import quadratic_spec

ROOT = Path(__file__).resolve().parents[1]
TTL_S = 1.0
# The child: an inline run whose executor stops its own process right after its third
# submit (the turn written, its evaluations queued, none started).
CHILD = """
import json, os, signal, sys
from search import api
from search.scheduler import LeaseLost
from search.spec import parse_spec
from workers.executors.inline import InlineExecutor

spec = parse_spec(json.loads(sys.argv[2]))

class PausedAfterThirdSubmit(InlineExecutor):
    submits = 0

    def submit(self, tasks):
        super().submit(tasks)
        PausedAfterThirdSubmit.submits += 1
        if PausedAfterThirdSubmit.submits == 3:
            os.kill(os.getpid(), signal.SIGSTOP)

try:
    api.run(spec, storage=sys.argv[1], executor=PausedAfterThirdSubmit(api.executor_config(spec)))
except LeaseLost as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rpartition(")")[2].split()[0] == "T"


def _rows(store: Store, cid: int) -> dict[int, tuple[str, int, str | None]]:
    return {r["id"]: (r["status"], r["attempts"], r.get("worker")) for r in store.evaluations(cid)}


def test_a_scheduler_paused_past_its_lease_starts_nothing_once_taken_over(storage_url: str, tmp_path: Path) -> None:
    log = tmp_path / "evaluations.log"
    spec = quadratic_spec(search__algorithm="random", search__budget=40, search__batch_size=2, search__max_in_flight=2,
                          evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATLAS_LEASE_TTL": str(TTL_S), "ATLAS_TEST_SLEEP": "0.01",
           "ATLAS_TEST_LOG": str(log)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, storage_url, json.dumps(spec)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _stopped(child.pid):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.02)
        time.sleep(TTL_S + 0.3)  # the paused run's lease lapses
        store = Store(storage_url)
        try:
            cid = store.require_campaign("quad").id
            assert store.acquire_lease(cid, "elsewhere:1:beef", ttl_s=60) is None  # another `atlas resume`
            before, ran = _rows(store, cid), len(log.read_text().splitlines())
            assert any(status == "pending" for status, _, _ in before.values())
            os.kill(child.pid, signal.SIGCONT)
            _, err = child.communicate(timeout=60)
            started = len(log.read_text().splitlines()) - ran
            assert started == 0, f"the paused run started {started} evaluations once taken over"
            assert _rows(store, cid) == before, "the paused run charged the new holder's rows"
            assert child.returncode == 2, err
            assert "another scheduler took over" in err and "Traceback" not in err, err
            assert len(err.strip().splitlines()) == 1, err
            assert store.require_campaign("quad").lease_holder == "elsewhere:1:beef"
        finally:
            store.close()
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
            child.wait()


def test_a_sqlite_file_locked_past_the_retries_names_the_lock_and_what_to_do(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A run paused (Ctrl-Z) inside its write keeps the file's write lock: another writer
    (``atlas resume``, ``delete``, a run of another campaign) retries, then says the file
    stayed locked by another process, and what to do; the storage was not "lost"."""
    from archive import engine

    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 50)  # each try waits 50 ms, not 30 s
    path = tmp_path / "atlas.db"
    store = Store(f"sqlite:///{path}", retry_s=0.5)
    paused = sqlite3.connect(path, isolation_level=None)
    try:
        cid = open_campaign(store, parse_spec(quadratic_spec())).id
        paused.execute("BEGIN IMMEDIATE")  # the paused process's write, never ended
        with pytest.raises(StorageError) as raised:
            store.acquire_lease(cid, "elsewhere:1:beef", ttl_s=30)
        message = str(raised.value)
        assert "lost the storage" not in message
        assert re.search(rf"storage sqlite:///{re.escape(str(path))} stayed locked for \d+\.\d s: another process "
                         r"held its write lock", message), message
        assert "`fg`" in message and "\n" not in message
    finally:
        paused.close()
        store.close()
