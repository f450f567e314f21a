"""A campaign survives its database going away mid-run: a real restart of a PostgreSQL
server the test started, and connections cut on the shared server. The scheduler waits,
reconnects and finishes; nothing lost, nothing recorded twice."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

import archive
from tests.conftest import POSTGRES_URL, quadratic_spec
from tests.support.background import run_in_background
from tests.support.evaluators import quadratic
from tests.support.postgres_server import PostgresServer, unavailable_reason
from tests.test_scheduler import check_archive
from workers.contract import EvalContext

SLOW_SPEC = {"evaluator": {"kind": "python", "target": "tests.support.evaluators:slow_quadratic"},
             "search__budget": 80, "search__batch_size": 4, "search__max_in_flight": 4}
#: The campaign of 80 stops at its 20th, 40th and 60th evaluation until the test has cut its
#: connections (:func:`paced_quadratic`): each cut lands while it runs, however loaded the machine.
PACED_SPEC = {**SLOW_SPEC, "evaluator": {"kind": "python", "target": "tests.test_db_faults:paced_quadratic"}}
PACE = (20, 40, 60)
#: How long either side waits for the other at a pause (a ceiling, never reached in a passing run).
PACE_WAIT_S = 120.0


def paced_quadratic(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """quadratic; its Nth call (N in :data:`PACE`) says so in $ATLAS_TEST_PACE_DIR (``paused-N``)
    and waits there until the test has written ``go-N``. The inline executor runs the
    evaluations one after another on the scheduler's thread, so the campaign is paused."""
    pace = Path(os.environ["ATLAS_TEST_PACE_DIR"])
    with open(pace / "calls", "a") as fh:
        fh.write("x\n")
    n = len((pace / "calls").read_text().splitlines())
    if n in PACE:
        (pace / f"paused-{n}").touch()
        ceiling = time.monotonic() + PACE_WAIT_S
        while not (pace / f"go-{n}").exists() and time.monotonic() < ceiling:
            time.sleep(0.01)
    return quadratic(params, ctx)


def disrupt_while_running(worker: threading.Thread, disrupt: Callable[[], bool], times: int) -> int:
    """Call ``disrupt`` (True when it hit the campaign) until it has hit ``times`` times or
    the campaign ended; returns how often it hit."""
    hits = 0
    time.sleep(1.0)
    while worker.is_alive() and hits < times:
        hits += disrupt()
        time.sleep(0.7)
    worker.join(timeout=300)
    return hits


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


def test_postgres_restarted_twice_mid_campaign(private_postgres: PostgresServer,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    url = private_postgres.url
    # 80 evaluations of 0.1 s, one at a time: the campaign outlasts both restarts even where a
    # restart is slow (at 0.02 s, a loaded machine's first restart outlasted what was left of it)
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.1")
    worker, result = run_in_background(quadratic_spec(**SLOW_SPEC), url)

    def restart() -> bool:
        private_postgres.restart()
        return True

    restarts = disrupt_while_running(worker, restart, times=2)
    assert restarts == 2, "the server must be restarted while the campaign runs"
    assert "error" not in result, result.get("error")
    assert result["stats"].finished == 80
    check_archive(url, "quad", 80)
    assert archive.open(url).campaign("quad").record.status == "finished"


def test_connections_cut_three_times_mid_campaign(postgres_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection of the run (its store's, the one it holds for start charges, the
    lease keeper's) is cut at its 20th, 40th and 60th evaluation, with 20 evaluations written
    after each. The cuts are paced by the campaign, not by the clock: cut on a timer, a
    loaded machine's campaign had finished between two cuts (``assert 1 >= 2``)."""
    app = f"atlas-fault-{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}&application_name={app}"
    monkeypatch.setenv("ATLAS_TEST_PACE_DIR", str(tmp_path))
    worker, result = run_in_background(quadratic_spec(**PACED_SPEC), url)
    admin = create_engine(POSTGRES_URL)

    def cut() -> int:
        with admin.begin() as conn:
            return conn.execute(text(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = :a"
            ), {"a": app}).scalar_one()

    cuts = []
    try:
        for n in PACE:
            ceiling = time.monotonic() + PACE_WAIT_S
            while not (tmp_path / f"paused-{n}").exists() and worker.is_alive() and time.monotonic() < ceiling:
                time.sleep(0.01)
            if not (tmp_path / f"paused-{n}").exists():
                break
            cuts.append(cut())
            (tmp_path / f"go-{n}").touch()
    finally:
        for n in PACE:  # a failed wait or cut must not leave the campaign paused
            (tmp_path / f"go-{n}").touch()
        admin.dispose()
        worker.join(timeout=300)
    assert not worker.is_alive()
    assert "error" not in result, result.get("error")
    assert len(cuts) == 3 and all(cuts), f"each pause must cut the run's connections (cut: {cuts})"
    assert "error" not in result, result.get("error")
    assert result["stats"].finished == 80
    check_archive(url, "quad", 80)
    assert archive.open(url).campaign("quad").record.status == "finished"


@pytest.mark.skipif(not POSTGRES_URL, reason="ATLAS_TEST_POSTGRES_URL is not set")
def test_wrong_credentials_fail_fast() -> None:
    from archive.store import StorageError, Store

    bad = POSTGRES_URL.replace("postgres@", "nobody_here@", 1)
    start = time.time()
    with pytest.raises(StorageError, match="cannot open storage"):
        Store(bad)
    assert time.time() - start < 10


def test_a_table_held_locked_ends_in_one_error_after_the_retries(postgres_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Another session holds ``campaigns`` locked: each statement waits at most the lock
    timeout, is retried as an unreachable database's, and the store stops with one error
    after ``retry_s``, where it had waited for as long as the lock was held."""
    from archive.store import StorageError, Store

    monkeypatch.setenv("ATLAS_DB_LOCK_TIMEOUT_S", "0.3")
    store = Store(postgres_url, retry_s=1.0)
    admin = create_engine(postgres_url)
    try:
        store.create_campaign("quad", {"search": {"budget": 10}}, "hash", {"kind": "grid"})
        with admin.begin() as conn:
            conn.execute(text("LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE"))
            start = time.monotonic()
            with pytest.raises(StorageError, match=r"lost the storage for 1 s: .*lock timeout"):
                store.campaign("quad")
            assert time.monotonic() - start < 10
        assert store.campaign("quad") is not None  # the lock gone, the store goes on
    finally:
        store.close()
        admin.dispose()
