"""The start log (archive/starts.py), on SQLite and on PostgreSQL: a logged start reads as
the charge it stands for everywhere, is charged on its row exactly once by the next write
that takes it, and survives the scheduler that logged it."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from archive import queries
from archive.errors import LeaseConflict
from archive.models import Evaluation
from archive.store import Store
from search import api
from tests.conftest import quadratic_spec
from tests.support.start_log import campaign_with_rows, done, log_size


@pytest.fixture
def store(storage_url: str) -> Store:
    s = Store(storage_url)
    yield s
    s.close()


def raw(store: Store, eid: int) -> tuple[str, int]:
    """The row itself, as the table holds it: (status, attempts)."""
    with store.read() as conn:
        row = conn.execute(select(Evaluation.status, Evaluation.attempts).where(Evaluation.id == eid)).one()
    return row[0], row[1]


def test_a_logged_start_reads_as_its_charge_in_every_reader(store: Store) -> None:
    cid, (a, b, c) = campaign_with_rows(store)
    when = store.log_starts(cid, [a, b], worker="w1")
    assert raw(store, a) == ("pending", 0) and log_size(store) == 2  # the log holds it, not the row

    rows = {r["id"]: r for r in store.evaluations(cid)}
    for eid in (a, b):
        assert (rows[eid]["status"], rows[eid]["attempts"], rows[eid]["started_at"], rows[eid]["worker"]) == \
            ("running", 1, when, "w1")
    assert (rows[c]["status"], rows[c]["attempts"]) == ("pending", 0)
    assert [r["id"] for r in store.evaluations(cid, status="running")] == [a, b]
    assert [r["id"] for r in store.evaluations(cid, status="pending")] == [c]
    assert [(r["id"], r["status"], r["attempts"]) for r in store.unfinished(cid)] == \
        [(a, "running", 1), (b, "running", 1), (c, "pending", 0)]
    one = store.evaluation(cid, a)
    assert one is not None and (one["status"], one["attempts"]) == ("running", 1)

    stats = store.stats(cid, cells=25)
    assert (stats.counts["pending"], stats.counts["running"], stats.created) == (1, 2, 3)
    assert store.proposer_counts(cid) == {"test": {"pending": 1, "running": 2, "done": 0, "failed": 0}}
    marks = queries.watermarks(store, cid)
    assert (marks.pending, marks.running) == (1, 2)
    assert sorted(queries.unfinished_by_proposer(store, cid)) == [("test", "pending", 1), ("test", "running", 2)]
    total, page = queries.evaluation_page(store, cid, status="running")
    assert total == 2 and [(r["id"], r["attempts"]) for r in page] == [(a, 1), (b, 1)]
    assert queries.evaluation_page(store, cid, status="pending")[0] == 1
    columns = ("id", "status", "attempts", "started_at")
    texts = store.evaluation_texts(cid, columns, ())
    assert [tuple(t) for t in texts] == [(a, "running", 1, when), (b, "running", 1, when), (c, "pending", 0, None)]


def test_a_logged_start_of_a_row_already_running_moves_no_count(store: Store) -> None:
    """archive/starts.py's rule: a logged start reads as the charge it stands for, so only the
    start of a ``pending`` row moves a count (pending − 1, running + 1); one of a row already
    ``running`` from an earlier start is still one running row (:func:`archive.starts.shift_counts`)."""
    cid, (a, b, _) = campaign_with_rows(store)
    store.mark_running([a])  # an earlier start
    store.log_starts(cid, [a, b])
    stats = store.stats(cid, cells=25)
    assert (stats.counts["pending"], stats.counts["running"]) == (1, 2)
    assert store.proposer_counts(cid) == {"test": {"pending": 1, "running": 2, "done": 0, "failed": 0}}
    marks = queries.watermarks(store, cid)
    assert (marks.pending, marks.running) == (1, 2)
    assert [r["id"] for r in store.evaluations(cid, status="running")] == [a, b]


def test_the_next_step_charges_each_logged_start_once_and_empties_the_log(store: Store) -> None:
    cid, (a, b, c) = campaign_with_rows(store)
    when = store.log_starts(cid, [a, b])
    store.step(cid, started={a: when, b: when}, results=[done(a)], logged=[a, b])
    assert log_size(store) == 0
    assert raw(store, a) == ("done", 1) and raw(store, b) == ("running", 1) and raw(store, c) == ("pending", 0)
    rows = {r["id"]: r for r in store.evaluations(cid)}
    assert (rows[a]["attempts"], rows[a]["started_at"]) == (1, when)
    assert (rows[b]["status"], rows[b]["attempts"]) == ("running", 1)  # once, not once in the row and once logged


def test_a_new_scheduler_folds_a_dead_ones_starts_under_its_lease(store: Store) -> None:
    cid, (a, b, _) = campaign_with_rows(store)
    store.mark_running([a])
    store.requeue([a])  # an earlier start: pending again with one attempt
    when = store.log_starts(cid, [a, b])
    assert store.acquire_lease(cid, "new", 60) is None
    with pytest.raises(LeaseConflict):
        store.fold_starts(cid, holder="old")
    assert log_size(store) == 2  # a scheduler without the lease folds nothing
    store.fold_starts(cid, holder="new")
    assert log_size(store) == 0
    assert raw(store, a) == ("running", 2) and raw(store, b) == ("running", 1)
    assert store.evaluation(cid, b)["started_at"] == when
    store.fold_starts(cid, holder="new")  # nothing left: nothing more is charged
    assert raw(store, a) == ("running", 2)


def test_a_requeue_folds_first_so_an_uncharge_takes_back_exactly_the_logged_start(store: Store) -> None:
    cid, (a, b, _) = campaign_with_rows(store)
    store.mark_running([a])
    store.requeue([a])
    store.log_starts(cid, [a, b])
    store.requeue([a, b], uncharge=True)  # they never ran: as if never started
    assert raw(store, a) == ("pending", 1) and raw(store, b) == ("pending", 0) and log_size(store) == 0
    store.log_starts(cid, [b])
    store.requeue([b])  # its worker was lost: the start stays counted
    assert raw(store, b) == ("pending", 1) and log_size(store) == 0


def test_a_start_logged_twice_is_one_start_at_the_later_time(store: Store) -> None:
    cid, (a, _, _) = campaign_with_rows(store)
    store.log_starts(cid, [a], worker="old")
    later = store.log_starts(cid, [a], worker="new")
    row = store.evaluation(cid, a)
    assert (row["attempts"], row["started_at"], row["worker"]) == (1, later, "new") and log_size(store) == 1


def test_the_end_of_a_run_charges_what_it_left_in_the_log(store: Store) -> None:
    cid, (a, _, _) = campaign_with_rows(store)
    assert store.acquire_lease(cid, "me", 60) is None
    store.log_starts(cid, [a])
    assert store.finish_run(cid, "someone else", "stopped") is False and log_size(store) == 1
    assert store.finish_run(cid, "me", "stopped") is True
    assert raw(store, a) == ("running", 1) and log_size(store) == 0


def test_a_scheduler_killed_inside_an_evaluation_is_resumed_with_each_start_counted_once(
        storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = quadratic_spec(search__budget=20, search__batch_size=10, search__max_in_flight=10)
    spec["evaluator"]["target"] = "tests.support.evaluators:dies_once"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("ATLAS_TEST_DIED", str(tmp_path / "died"))
    monkeypatch.setenv("ATLAS_TEST_DIE_AT", "13")  # in the second batch: the first one's took under 1 ms
    killed = subprocess.run([sys.executable, "-m", "search.cli", "run", str(path), "--storage", storage_url,
                             "--executor", "inline"], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = Store(storage_url)
    try:
        cid = store.require_campaign("quad").id
        assert log_size(store) == 3  # the second batch's three starts, logged, none yet charged on a row
        first = store.evaluations(cid)
        assert sorted((r["status"], r["attempts"]) for r in first) == \
            [("done", 1)] * 10 + [("pending", 0)] * 7 + [("running", 1)] * 3
        started = {r["id"] for r in first if r["status"] == "running"}
        assert all(raw(store, eid) == ("pending", 0) for eid in started)
    finally:
        store.close()

    stats = api.resume("quad", storage=storage_url, executor="inline")
    assert stats.finished == 20
    store = Store(storage_url)
    try:
        rows = store.evaluations(cid)
        assert log_size(store) == 0
        assert all(r["status"] == "done" for r in rows)
        assert {r["id"]: r["attempts"] for r in rows if r["id"] in started} == dict.fromkeys(started, 2)
        assert all(r["attempts"] == 1 for r in rows if r["id"] not in started)
    finally:
        store.close()


@pytest.mark.parametrize(("target", "logged_from"), [("quadratic", 10), ("slow_quadratic", None)])
def test_only_the_starts_of_evaluations_under_a_millisecond_are_logged(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, target: str, logged_from: int | None) -> None:
    """The first batch (no time measured yet) and evaluations of 1 ms or more are charged
    on their rows; the rest of a run of fast evaluations is logged."""
    ways: list[str] = []  # how each start was charged, in order
    for name in ("log_starts", "mark_running"):
        original: Callable[..., Any] = getattr(Store, name)

        def spy(self: Store, *args: Any, _name: str = name, _original: Callable[..., Any] = original,
                **kw: Any) -> Any:
            ids = args[1] if _name == "log_starts" else args[0]
            ways.extend([_name] * len(ids))
            return _original(self, *args, **kw)

        monkeypatch.setattr(Store, name, spy)
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.002")
    spec = quadratic_spec(search__budget=30, search__batch_size=10, search__max_in_flight=10)
    spec["evaluator"]["target"] = f"tests.support.evaluators:{target}"
    assert api.run(spec, storage=sqlite_url, executor="inline").finished == 30
    assert len(ways) == 30
    expected = ["mark_running"] * 30 if logged_from is None else \
        ["mark_running"] * logged_from + ["log_starts"] * (30 - logged_from)
    assert ways == expected
    store = Store(sqlite_url)
    try:
        assert log_size(store) == 0
        assert all(r["attempts"] == 1 for r in store.evaluations(store.require_campaign("quad").id))
    finally:
        store.close()


def test_migration_0005_adds_the_log_and_its_downgrade_charges_what_it_holds(storage_url: str) -> None:
    """An archive at 0004 gets ``evaluation_starts`` when opened for writing; going back to
    0004 charges the logged starts on their rows before the table goes."""
    from sqlalchemy import inspect

    from archive.engine import make_engine
    from tests.support.migrations import migrate_to

    engine = make_engine(storage_url)
    migrate_to(engine, "0004")
    with engine.connect() as conn:
        assert "evaluation_starts" not in inspect(conn).get_table_names()
    store = Store(storage_url)  # migrates to head
    try:
        cid, (a, b, _) = campaign_with_rows(store)
        when = store.log_starts(cid, [a])
        store.mark_running([b])
    finally:
        store.close()
    migrate_to(engine, "0004", down=True)
    with engine.connect() as conn:
        assert "evaluation_starts" not in inspect(conn).get_table_names()
        rows = dict(conn.execute(select(Evaluation.id, Evaluation.attempts)).all())
        started = conn.execute(select(Evaluation.started_at).where(Evaluation.id == a)).scalar_one()
    engine.dispose()
    assert rows[a] == 1 and rows[b] == 1 and started == when


def test_deleting_a_campaign_deletes_its_logged_starts(store: Store) -> None:
    cid, (a, _, _) = campaign_with_rows(store)
    store.log_starts(cid, [a])
    assert store.delete_campaign(cid, force=True)["evaluations"] == 3
    assert log_size(store) == 0
