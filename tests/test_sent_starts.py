"""Starts sent without waiting (archive/charger.py, PostgreSQL): ``log_starts`` returns
before the server has the start, and nothing reads or writes past it: every later read or
write of the store waits for it, a dropped connection runs it again, a refused one raises
at the next call. A start held on the server (another transaction's uncommitted log row for
the same evaluation) makes each wait visible."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from archive.charger import SLEEP_AFTER_OVERRUN
from archive.store import Store
from tests.support.start_log import campaign_with_rows, done, log_size

WAIT_S = 10.0  # a call that should return does so within this; one that should block, blocks


@pytest.fixture
def store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    yield s
    s.close()


@contextmanager
def held_on_the_server(store: Store, cid: int, eid: int) -> Iterator[Any]:
    """Another transaction's uncommitted log row for ``eid``: a start sent for it waits on
    the server until this ends (rolled back); nothing else the store does waits on it."""
    with store.engine.connect() as conn:
        conn.exec_driver_sql("INSERT INTO evaluation_starts (evaluation_id, campaign_id, started_at) "
                             f"VALUES ({int(eid)}, {int(cid)}, 0)")
        try:
            yield conn
        finally:
            conn.rollback()


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def test_a_sent_start_returns_before_the_server_has_it_and_a_read_waits_for_it(store: Store) -> None:
    cid, (a, _) = campaign_with_rows(store, 2)
    with held_on_the_server(store, cid, a):
        sender, when = in_thread(lambda: store.log_starts(cid, [a], worker="w"))
        sender.join(WAIT_S)
        assert not sender.is_alive()  # sent, not waited for
        reader, rows = in_thread(lambda: store.evaluations(cid))
        reader.join(0.5)
        assert reader.is_alive()  # the read waits for the start it would otherwise miss
    reader.join(WAIT_S)
    got = {r["id"]: r for r in rows[0]}
    assert (got[a]["status"], got[a]["attempts"], got[a]["started_at"], got[a]["worker"]) == \
        ("running", 1, when[0], "w")
    assert store._charger._sleep_at_once == SLEEP_AFTER_OVERRUN  # a slow reply: the next waits do not poll


def test_a_write_follows_the_start_sent_before_it(store: Store) -> None:
    cid, (a, _) = campaign_with_rows(store, 2)
    with held_on_the_server(store, cid, a):
        when = store.log_starts(cid, [a])
        writer, _ = in_thread(lambda: store.step(cid, started={a: when}, results=[done(a)], logged=[a]))
        writer.join(0.5)
        assert writer.is_alive()  # had it run now, the start would land after the turn that unlogs it
    writer.join(WAIT_S)
    assert not writer.is_alive()
    assert log_size(store) == 0
    row = store.evaluation(cid, a)
    assert (row["status"], row["attempts"]) == ("done", 1)


def test_a_sent_start_whose_connection_drops_is_run_again(store: Store) -> None:
    cid, (a, b) = campaign_with_rows(store, 2)
    with held_on_the_server(store, cid, a) as other:
        store.log_starts(cid, [a])
        pid = store._charger.connection.info.backend_pid
        other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")  # the start dies with it
    rows = {r["id"]: r for r in store.evaluations(cid)}
    assert (rows[a]["status"], rows[a]["attempts"]) == ("running", 1) and log_size(store) == 1
    assert (rows[b]["status"], rows[b]["attempts"]) == ("pending", 0)
    store.log_starts(cid, [b])  # on the fresh connection
    assert store.evaluation(cid, b)["attempts"] == 1


def test_a_start_whose_send_fails_is_charged_on_a_fresh_connection(store: Store) -> None:
    """archive/charger.py: a statement that cannot be sent is run "now, as a plain charge on a
    fresh connection", so that a start is never lost. Here the send itself fails: the charger's
    memo of prepared statements (private) is cleared, so its PREPARE of a name the held connection
    already has is refused."""
    cid, (a, b) = campaign_with_rows(store, 2)
    store.log_starts(cid, [a])
    assert store.evaluation(cid, a)["attempts"] == 1  # settled, its statement prepared
    held = store._charger.connection
    store._charger._prepared.clear()
    store.log_starts(cid, [b])
    assert store.evaluation(cid, b)["attempts"] == 1
    assert store._charger.connection is not held


def test_a_sent_start_the_server_refuses_raises_at_the_next_call_and_the_store_goes_on(store: Store) -> None:
    cid, (a, _) = campaign_with_rows(store, 2)
    store.log_starts(cid, [10**9])  # no such evaluation: the log's foreign key refuses it, later
    with pytest.raises(IntegrityError, match="evaluation_starts"):
        store.evaluations(cid)
    assert log_size(store) == 0
    store.log_starts(cid, [a])
    assert store.evaluation(cid, a)["attempts"] == 1


CHILD = """
import os, sys
from archive.store import Store
store = Store(sys.argv[1])
store.log_starts(int(sys.argv[2]), [int(sys.argv[3])])
os._exit(9)  # dead before anything waited for the start
"""


def test_a_sent_start_outlives_the_process_that_sent_it(store: Store, postgres_url: str) -> None:
    cid, (a, _) = campaign_with_rows(store, 2)
    with held_on_the_server(store, cid, a):  # unacknowledged when the process dies, whatever the timing
        died = subprocess.run([sys.executable, "-c", CHILD, postgres_url, str(cid), str(a)], timeout=60)
        assert died.returncode == 9
    deadline = time.monotonic() + WAIT_S
    while log_size(store) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the server commits it once the other transaction is gone
    assert log_size(store) == 1
    row = store.evaluation(cid, a)
    assert (row["status"], row["attempts"]) == ("running", 1)
