"""Archive rules, on SQLite and on PostgreSQL: rows before dispatch, one result per
evaluation, strictly better elites in the same transaction, SQL statistics, leases."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import OperationalError

from archive.layout import CellLayout, MeasureAxis
from archive.store import NewEvaluation, Result, StorageError, Store


@pytest.fixture
def store(storage_url: str) -> Store:
    s = Store(storage_url)
    yield s
    s.close()


def new_campaign(store: Store, name: str = "c") -> int:
    return store.create_campaign(name, {"search": {"budget": 10}}, "hash", {"kind": "grid"}).id


def pending(store: Store, cid: int, n: int, start: int = 0) -> list[int]:
    rows = [NewEvaluation(start + i, {"i": start + i}, [0.5], "test") for i in range(n)]
    return store.add_pending(cid, rows)


def test_migrations_create_the_schema(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"campaigns", "evaluations", "elites", "checkpoints", "alembic_version"} <= tables
    Store(store.url).close()  # a second open finds the schema at head


def test_rows_are_pending_before_dispatch_and_count_attempts(store: Store) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 3)
    assert [r["status"] for r in store.unfinished(cid)] == ["pending"] * 3
    store.mark_running(ids[:2])
    store.requeue(ids[:1])
    rows = {r["id"]: r for r in store.unfinished(cid)}
    assert rows[ids[0]]["status"] == "pending" and rows[ids[0]]["attempts"] == 1
    assert rows[ids[1]]["status"] == "running"
    assert rows[ids[2]]["attempts"] == 0


def test_a_second_result_is_ignored(store: Store) -> None:
    cid = new_campaign(store)
    (eid,) = pending(store, cid, 1)
    first = Result(eid, "done", 1.0, {"m": 0.1}, {}, cell=3)
    assert store.record_results(cid, [first], 1.0) == [True]
    assert store.record_results(cid, [Result(eid, "done", 9.0, {"m": 0.1}, {}, cell=3)], 1.0) == [False]
    row = store.evaluation(cid, eid)
    assert row is not None and row["objective"] == 1.0 and row["finished_seq"] == 1
    assert store.elites(cid)[0]["objective"] == 1.0


def test_elite_replaced_only_by_strictly_better(store: Store) -> None:
    cid = new_campaign(store)
    a, b, c, d = pending(store, cid, 4)
    store.record_results(cid, [Result(a, "done", 1.0, {}, {}, cell=0)], 1.0)
    store.record_results(cid, [Result(b, "done", 1.0, {}, {}, cell=0)], 1.0)  # equal: stays a
    assert store.elites(cid)[0]["evaluation_id"] == a
    # within one batch, the best of the batch wins; a failure never becomes an elite
    store.record_results(cid, [Result(c, "done", 2.0, {}, {}, cell=0), Result(d, "failed", error="x")], 1.0)
    elites = store.elites(cid)
    assert len(elites) == 1 and elites[0]["evaluation_id"] == c


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_equal_results_in_one_batch_leave_the_first_as_elite(store: Store, sign: float) -> None:
    """REFERENCE.md §7 (MAP-Elites): an elite is replaced only if f' > f, strictly. Two equal
    results for one cell in one ``record_results`` call: the first recorded is the elite, as
    if they had come in two calls (maximising or minimising)."""
    cid = new_campaign(store)
    a, b = pending(store, cid, 2)
    store.record_results(cid, [Result(a, "done", 1.0, {}, {}, cell=0), Result(b, "done", 1.0, {}, {}, cell=0)], sign)
    elites = store.elites(cid)
    assert len(elites) == 1 and elites[0]["evaluation_id"] == a


def test_minimising_keeps_the_lowest(store: Store) -> None:
    cid = new_campaign(store)
    a, b = pending(store, cid, 2)
    store.record_results(cid, [Result(a, "done", 5.0, {}, {}, cell=1)], -1.0)
    store.record_results(cid, [Result(b, "done", 3.0, {}, {}, cell=1)], -1.0)
    assert store.elites(cid)[0]["objective"] == 3.0
    assert store.stats(cid, cells=4).best_objective == 3.0


def test_stats_come_from_sql(store: Store) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 6)
    store.mark_running(ids)
    store.record_results(cid, [
        Result(ids[0], "done", 2.0, {}, {}, cell=0),
        Result(ids[1], "done", 3.0, {}, {}, cell=1),
        Result(ids[2], "done", 1.0, {}, {}, cell=1),
        Result(ids[3], "failed", error="boom"),
    ], 1.0)
    s = store.stats(cid, cells=10, qd_offset=-1.0)
    assert s.counts == {"pending": 0, "running": 2, "done": 3, "failed": 1}
    assert s.elites == 2 and s.coverage == pytest.approx(0.2)
    assert s.qd_score == pytest.approx((2 + 1) + (3 + 1))
    assert s.best_objective == 3.0 and s.best_evaluation_id == ids[1]
    assert store.proposer_counts(cid) == {"test": {"pending": 0, "running": 2, "done": 3, "failed": 1}}


def test_checkpoint_is_written_with_the_rows(store: Store) -> None:
    cid = new_campaign(store)
    store.add_pending(cid, [NewEvaluation(0, {}, [0.1], "p")], checkpoint=("p", b"one"))
    store.add_pending(cid, [NewEvaluation(1, {}, [0.1], "p")], checkpoint=("p", b"two"))
    assert store.load_checkpoint(cid, "p") == b"two"
    assert store.load_checkpoint(cid, "other") is None


def test_leases(store: Store) -> None:
    cid = new_campaign(store)
    assert store.acquire_lease(cid, "h:1:a", ttl_s=30) is None
    assert store.acquire_lease(cid, "h:2:b", ttl_s=30) == "h:1:a"  # held and alive
    assert store.acquire_lease(cid, "h:2:b", 30, holder_is_dead=lambda h: h == "h:1:a") is None
    assert store.renew_lease(cid, "h:1:a", 30) is False  # it was taken over
    store.release_lease(cid, "h:2:b")
    assert store.acquire_lease(cid, "h:3:c", ttl_s=0.05) is None
    time.sleep(0.1)
    assert store.acquire_lease(cid, "h:4:d", ttl_s=30) is None  # expired


def test_unreachable_storage_is_a_clear_error() -> None:
    start = time.time()
    with pytest.raises(StorageError, match="cannot open storage"):
        Store("postgresql+psycopg://nobody:wrong@127.0.0.1:1/none")
    assert time.time() - start < 10
    with pytest.raises(StorageError, match="not a storage URL"):
        Store("not a url")


def test_grid_cells_match_ribs() -> None:
    axes = [MeasureAxis("a", -1, 1, 7), MeasureAxis("b", 0, 5, 4)]
    layout = CellLayout.build("grid", axes)
    archive = layout.make_archive(solution_dim=1)
    pts = np.random.default_rng(0).uniform([-1.5, -1], [1.5, 6], size=(500, 2))
    assert np.array_equal(layout.index_of(pts), archive.index_of(pts))
    assert layout.cells == 28


def test_cvt_centroids_survive_json() -> None:
    axes = [MeasureAxis("a", 0, 1, 1), MeasureAxis("b", 0, 1, 1)]
    layout = CellLayout.build("cvt", axes, cells=16, samples=2000, seed=1)
    again = CellLayout.from_json(layout.to_json())
    pts = np.random.default_rng(1).random((200, 2))
    assert np.array_equal(layout.index_of(pts), again.index_of(pts))
    assert again.cells == 16


def test_a_turn_written_set_at_a_time_reads_back_exactly(store: Store) -> None:
    cid = new_campaign(store)
    rows = [NewEvaluation(i, {"name": f"é{i}", "nested": {"k": [i, 0.5]}}, [0.25 * i, 1e-300], "me",
                          {"emitter": i % 2, "note": None, "acq": np.float64(0.5) if i else float("nan")})
            for i in range(5)]
    ids = store.step(cid, rows=rows)
    assert len(set(ids)) == 5
    assert [store.evaluation(cid, e)["params"] for e in ids] == [r.params for r in rows]  # type: ignore[index]
    store.step(cid, started={ids[0]: 10.0, ids[1]: 11.0, ids[2]: 12.0, ids[3]: 13.0})
    results = [
        Result(ids[0], "done", 1.0, {"m": 0.1}, {"tokens": ["a", "ü"]}, cell=7, worker="w:1"),
        Result(ids[1], "done", 3.0, {"m": 0.1}, {}, cell=7),  # the same cell, better: the elite
        Result(ids[2], "failed", None, None, None, error="boom\nline 2"),
        Result(ids[3], "done", 2.0, {"m": 0.9}, {}, cell=9),
        Result(10_000_000, "done", 9.0, {"m": 0.1}, {}, cell=7),  # no such evaluation: not recorded
    ]
    store.step(cid, results=results, sign=1.0)
    got = {e: store.evaluation(cid, e) for e in ids}
    assert got[ids[0]]["metrics"] == {"tokens": ["a", "ü"]} and got[ids[0]]["worker"] == "w:1"
    assert got[ids[0]]["started_at"] == 10.0 and got[ids[0]]["attempts"] == 1
    assert got[ids[2]]["status"] == "failed" and got[ids[2]]["measures"] is None
    assert got[ids[2]]["error"] == "boom\nline 2" and got[ids[2]]["cell"] is None
    assert sorted(got[e]["finished_seq"] for e in ids[:4]) == [1, 2, 3, 4]
    assert got[ids[4]]["status"] == "pending" and got[ids[4]]["attempts"] == 0
    assert got[ids[4]]["x"] == [1.0, 1e-300] and got[ids[4]]["proposal"] == {"emitter": 0, "note": None, "acq": 0.5}
    assert got[ids[0]]["proposal"]["acq"] is None  # a non-finite number is JSON's null (PostgreSQL refuses NaN)
    assert {e["cell"]: e["objective"] for e in store.elites(cid)} == {7: 3.0, 9: 2.0}
    store.step(cid, results=[Result(ids[4], "done", 2.5, {"m": 0.1}, {}, cell=7)], sign=1.0)
    assert {e["cell"]: e["objective"] for e in store.elites(cid)} == {7: 3.0, 9: 2.0}  # not strictly better


def test_awkward_text_and_extreme_numbers_survive_the_set_at_a_time_writes(store: Store) -> None:
    cid = new_campaign(store)
    awkward = 'quote " backslash \\ brace {} comma , tab \t newline \n percent %s ünï ☃'
    short = 'q"b\\{},%s ü☃'  # proposer and worker names are at most 64 characters
    tiny, huge = 5e-324, 1.7976931348623157e308
    rows = [NewEvaluation(0, {awkward: awkward, "n": None}, [tiny, huge, -0.0], short, {awkward: [1, 2]})]
    (eid,) = store.step(cid, rows=rows)
    store.step(cid, started={eid: 1.25}, results=[
        Result(eid, "done", -huge, {"m": tiny}, {awkward: awkward}, cell=3, error=None, worker=short)], sign=-1.0)
    got = store.evaluation(cid, eid)
    assert got["params"] == {awkward: awkward, "n": None} and got["proposer"] == short
    assert got["x"] == [tiny, huge, 0.0] and got["proposal"] == {awkward: [1, 2]}
    assert got["objective"] == -huge and got["measures"] == {"m": tiny}
    assert got["metrics"] == {awkward: awkward} and got["worker"] == short
    assert (got["attempts"], got["started_at"], got["status"]) == (1, 1.25, "done")
    assert [(e["cell"], e["objective"]) for e in store.elites(cid)] == [(3, -huge)]


def test_a_start_and_its_result_in_one_turn_are_one_write_with_the_same_outcome(store: Store) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 4)
    store.step(cid, started={ids[3]: 5.0})  # charged in an earlier turn: keeps its start
    store.step(cid, started={ids[0]: 20.0, ids[1]: 21.0, ids[2]: 22.0},
               results=[Result(ids[0], "done", 1.0, {"m": 0.1}, {}, cell=1),
                        Result(ids[0], "done", 5.0, {"m": 0.1}, {}, cell=1),  # a second result: ignored
                        Result(ids[3], "failed", None, None, None, error="x")], sign=1.0)
    got = {e: store.evaluation(cid, e) for e in ids}
    assert (got[ids[0]]["status"], got[ids[0]]["attempts"], got[ids[0]]["started_at"]) == ("done", 1, 20.0)
    assert got[ids[0]]["objective"] == 1.0
    assert (got[ids[1]]["status"], got[ids[1]]["attempts"], got[ids[1]]["started_at"]) == ("running", 1, 21.0)
    assert (got[ids[3]]["status"], got[ids[3]]["attempts"], got[ids[3]]["started_at"]) == ("failed", 1, 5.0)
    # a start that comes with the result of a finished evaluation charges nothing
    store.step(cid, started={ids[0]: 30.0}, results=[Result(ids[0], "done", 9.0, {"m": 0.1}, {}, cell=1)], sign=1.0)
    again = store.evaluation(cid, ids[0])
    assert (again["attempts"], again["started_at"], again["objective"]) == (1, 20.0, 1.0)


def test_a_start_charge_survives_its_connection_dropping(store: Store) -> None:
    if store.dialect == "sqlite":
        pytest.skip("a SQLite file has no connection to drop; its lock waits are the busy timeout's")
    cid = new_campaign(store)
    ids = pending(store, cid, 3)
    store.mark_running(ids[:1])
    store._charger.connection.close()  # the held connection is gone (a restart, a dropped socket)
    store.mark_running(ids[1:2])  # retried on a fresh connection
    rows = {r["id"]: r for r in store.unfinished(cid)}
    assert [rows[e]["attempts"] for e in ids] == [1, 1, 0]
    assert [rows[e]["status"] for e in ids] == ["running", "running", "pending"]


def lose_acks(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, times: int = 1) -> list[int]:
    """Make ``owner.name`` commit and then raise as a dropped connection does when the
    commit's acknowledgement is lost, ``times`` times; how often it did."""
    real, lost = getattr(owner, name), []

    @contextmanager
    def committed_then_lost(*args: object, **kwargs: object) -> Iterator[object]:
        with real(*args, **kwargs) as conn:
            yield conn
        if len(lost) < times:
            lost.append(1)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    def charged_then_lost(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)
        if len(lost) < times:
            lost.append(1)
            raise OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(owner, name, committed_then_lost if name == "write" else charged_then_lost)
    return lost


def test_a_start_whose_commit_was_not_acknowledged_is_charged_once(store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 3)
    lost = lose_acks(monkeypatch, store._charger, "charge")
    store.mark_running(ids[:2])
    assert lost == [1]
    assert [r["attempts"] for r in store.unfinished(cid)] == [1, 1, 0]


def test_a_turn_whose_commit_was_not_acknowledged_is_written_once(store: Store,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 2)
    calls = [{"proposer": "llm", "key": "k1", "request": {"q": 1}, "reply": "[]", "status": "ok"}]
    lost = lose_acks(monkeypatch, store, "write")
    store.step(cid, started={ids[0]: time.time(), ids[1]: time.time()},
               results=[Result(ids[1], "done", 1.0, {"m": 0.1}, {}, cell=3)],
               rows=[NewEvaluation(2, {"i": 2}, [0.5], "llm")], calls=calls)
    assert lost == [1]
    rows = {r["seq"]: r for r in store.evaluations(cid)}
    assert [rows[s]["attempts"] for s in (0, 1, 2)] == [1, 1, 0]
    assert rows[1]["status"] == "done" and rows[1]["finished_seq"] == 1
    assert [c["key"] for c in store.calls(cid)] == ["k1"]


def test_a_requeue_whose_commit_was_not_acknowledged_takes_back_one_attempt(store: Store,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 2)
    store.mark_running(ids)
    store.mark_running(ids[:1])
    lost = lose_acks(monkeypatch, store, "write")
    store.requeue(ids, uncharge=True)
    assert lost == [1]
    assert [(r["status"], r["attempts"]) for r in store.unfinished(cid)] == [("pending", 1), ("pending", 0)]


def test_a_turn_the_schema_refuses_is_a_storage_error_not_another_scheduler(store: Store) -> None:
    """A call without its ``status`` (NOT NULL): the write is refused as the schema's, not
    reported as "another scheduler" (a unique key's clash, :class:`LeaseConflict`)."""
    from archive.errors import LeaseConflict

    cid = new_campaign(store)
    call = {"proposer": "p", "key": "k", "request": {}}
    with pytest.raises(StorageError, match="cannot write the turn") as err:
        store.step(cid, rows=[NewEvaluation(0, {"i": 0}, [0.5], "p")], calls=[call])
    assert not isinstance(err.value, LeaseConflict)
    assert store.evaluations(cid) == []
    store.step(cid, rows=[NewEvaluation(0, {"i": 0}, [0.5], "p")])
    with pytest.raises(LeaseConflict, match="another scheduler"):  # the same seq, other params: a clash
        store.step(cid, rows=[NewEvaluation(0, {"i": 1}, [0.5], "p")])
