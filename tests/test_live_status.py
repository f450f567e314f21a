"""One rule for a campaign's status as readers show it (:func:`archive.records.live_status`):
``atlas status``, its ``--json``, an export and the dashboard's ``state`` say ``interrupted``
for a run whose scheduler died without a word (``kill -9``: its process gone; a lapsed lease)
and ``stopped`` for an orderly stop; ``atlas resume`` takes either."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from archive.store import Store
from dashboard import create_app
from search import api
from search.cli import app
from tests.conftest import quadratic_spec

runner = CliRunner()


def _gone_pid() -> int:
    """The pid of a process of this host that has ended."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def test_the_rule_words() -> None:
    from archive.records import live_status

    future, past = time.time() + 600, time.time() - 1
    me = f"{socket.gethostname()}:{os.getpid()}:deadbeef"
    assert live_status("running", me, future) == "running"
    assert live_status("running", f"{socket.gethostname()}:{_gone_pid()}:deadbeef", future) == "interrupted"
    assert live_status("running", me, past) == "interrupted"  # a lease that lapsed
    assert live_status("running", None, None) == "interrupted"
    for stored in ("stopped", "failed", "finished", "created"):
        assert live_status(stored, None, None) == stored
        assert live_status(stored, me, future) == stored


def _status(url: str) -> dict:
    done = runner.invoke(app, ["status", "quad", "--storage", url, "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    return doc[0] if isinstance(doc, list) else doc  # one campaign: an object (a list of one before)


def test_a_killed_run_reads_interrupted_in_the_cli_and_the_dashboard_alike(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=4), storage=sqlite_url, executor="inline")
    store = Store(sqlite_url)
    try:
        cid = store.require_campaign("quad").id
        store.update_campaign(cid, status="running", lease_holder=f"{socket.gethostname()}:{_gone_pid()}:deadbeef",
                              lease_expires=time.time() + 600)  # what kill -9 leaves
    finally:
        store.close()
    with TestClient(create_app(sqlite_url)) as client:
        summary = client.get("/api/campaigns/quad").json()
        listed = next(c for c in client.get("/api/campaigns").json()["campaigns"] if c["name"] == "quad")
    assert _status(sqlite_url)["status"] == "interrupted"
    assert summary["state"] == listed["state"] == "interrupted"
    assert summary["status"] == listed["status"] == "running"  # the row as stored
    resumed = runner.invoke(app, ["resume", "quad", "--storage", sqlite_url, "--executor", "inline",
                                  "--budget", "6"], catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    row = _status(sqlite_url)
    assert (row["status"], row["finished"]) == ("finished", 6)


def test_an_orderly_stop_reads_stopped_in_the_cli_and_the_dashboard_alike(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=4), storage=sqlite_url, executor="inline")
    store = Store(sqlite_url)
    try:
        store.update_campaign(store.require_campaign("quad").id, status="stopped")
    finally:
        store.close()
    with TestClient(create_app(sqlite_url)) as client:
        summary = client.get("/api/campaigns/quad").json()
    assert _status(sqlite_url)["status"] == summary["state"] == summary["status"] == "stopped"
