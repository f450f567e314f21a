"""Turns written behind the scheduler's loop (search.step_writer): reserved ids, merged
turns equal to the turns written one by one, failures raised in the loop, and a whole run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import archive
from archive.errors import LeaseConflict
from archive.store import NewEvaluation, Result, Store
from search import api
from search import scheduler as scheduler_module
from search.step_writer import StepWriter, merged
from tests.conftest import quadratic_spec
from workers.executors.simulated import SimulatedExecutor


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Store]:
    s = Store(postgres_url)
    yield s
    s.close()


def new_campaign(store: Store, name: str) -> int:
    return store.create_campaign(name, {"search": {"budget": 10}}, "hash", {"kind": "grid"}).id


def rows(seqs: range) -> list[NewEvaluation]:
    return [NewEvaluation(seq=q, params={"a": q / 10}, x=[q / 10], proposer="p") for q in seqs]


def test_reserved_ids_are_new_and_rows_take_them(pg_store: Store) -> None:
    cid = new_campaign(pg_store, "c")
    first = pg_store.step(cid, rows=rows(range(0, 2)))
    reserved = pg_store.reserve_ids(3)
    assert len(set(reserved)) == 3 and min(reserved) > max(first)
    assert pg_store.step(cid, rows=rows(range(2, 5)), ids=reserved) == reserved
    later = pg_store.step(cid, rows=rows(range(5, 6)))  # the sequence moved past the reserved ids
    assert later[0] > max(reserved)
    by_seq = {r["seq"]: r["id"] for r in pg_store.evaluations(cid)}
    assert [by_seq[q] for q in range(2, 5)] == reserved and by_seq[5] == later[0]


def test_sqlite_reserves_no_ids(tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    with pytest.raises(NotImplementedError, match="PostgreSQL only"):
        store.reserve_ids(2)
    store.close()


def three_turns(ids: list[list[int]]) -> list[dict[str, Any]]:
    """Turns that depend on each other: the second and third record results for rows
    written by the turns before them (ids[k]: the ids of turn k's rows), charge starts
    whose results come a turn later, replace an elite and keep the first of equal ones."""
    a, b = ids[0], ids[1]
    t = 1000.0
    return [
        {"rows": rows(range(0, 3)), "ids": a, "checkpoint": ("p", b"state-1"),
         "calls": [{"proposer": "p", "key": "k1", "request": {}, "status": "ok"}]},
        {"started": {a[0]: t, a[1]: t + 1, a[2]: t + 2}, "rows": rows(range(3, 5)), "ids": b,
         "results": [Result(a[0], "done", objective=1.0, measures={"m": 0.1}, cell=0),
                     Result(a[1], "failed", error="boom")],
         "checkpoint": ("p", b"state-2")},
        {"started": {b[0]: t + 3, b[1]: t + 4},
         "results": [Result(b[0], "done", objective=2.0, measures={"m": 0.2}, cell=0),  # replaces a[0]
                     Result(a[2], "done", objective=5.0, measures={"m": 0.3}, cell=1),
                     Result(b[1], "done", objective=5.0, measures={"m": 0.4}, cell=1),  # a tie: a[2] stays
                     Result(a[0], "done", objective=9.0, measures={"m": 0.5}, cell=2)],  # a second result
         "checkpoint": ("p", b"state-3")},
    ]


def written(store: Store, cid: int) -> tuple[list[tuple[Any, ...]], list[tuple[int, int]], bytes | None]:
    """What a campaign holds, by sequence number (ids differ between campaigns)."""
    evals = store.evaluations(cid)
    seq_of = {r["id"]: r["seq"] for r in evals}
    table = [(r["seq"], r["status"], r["attempts"], r["objective"], r["cell"], r["error"], r["started_at"],
              r["finished_seq"]) for r in evals]
    elites = sorted((cell, seq_of[eid]) for cell, eid, _ in store.elite_cells(cid))
    return table, elites, store.load_checkpoint(cid, "p")


def test_merged_turns_write_what_the_turns_write_one_by_one(pg_store: Store) -> None:
    one, many = new_campaign(pg_store, "one-by-one"), new_campaign(pg_store, "merged")
    for cid in (one, many):
        pg_store.step(cid, rows=rows(range(100, 101)))  # a finished_seq to count on from
    ids_one = [pg_store.reserve_ids(3), pg_store.reserve_ids(2)]
    for turn in three_turns(ids_one):
        pg_store.step(one, **turn)
    ids_many = [pg_store.reserve_ids(3), pg_store.reserve_ids(2)]
    common = {"campaign_id": many, "sign": 1.0, "holder": None}
    pg_store.step(**merged([{**common, **turn} for turn in three_turns(ids_many)]))
    by_turns, by_one_write = written(pg_store, one), written(pg_store, many)
    assert by_turns == by_one_write
    table, elites, checkpoint = by_turns
    assert elites == [(0, 3), (1, 2)] and checkpoint == b"state-3"
    assert [r[2] for r in table if r[0] < 100] == [1, 1, 1, 1, 1]  # each start charged once
    assert [c["key"] for c in pg_store.calls(many)] == [c["key"] for c in pg_store.calls(one)] == ["k1"]


def test_a_failed_write_is_raised_in_the_loop_and_nothing_after_it_is_written(pg_store: Store) -> None:
    cid = new_campaign(pg_store, "c")
    writer = StepWriter(pg_store)
    try:
        writer.submit(cid, rows=rows(range(0, 1)), ids=writer.reserve(1), holder="not-the-holder")
        with pytest.raises(LeaseConflict, match="not this scheduler"):
            writer.flush()
        with pytest.raises(LeaseConflict):
            writer.submit(cid, rows=rows(range(1, 2)), ids=writer.reserve(1))
    finally:
        writer.close()
    assert pg_store.evaluations(cid) == []


def test_a_merged_write_is_one_transaction(pg_store: Store) -> None:
    """A turn whose write fails takes the turns merged with it down too: none is half written."""
    cid = new_campaign(pg_store, "c")
    ids = pg_store.reserve_ids(2)
    good = {"campaign_id": cid, "sign": 1.0, "holder": None, "rows": rows(range(0, 1)), "ids": ids[:1]}
    clash = {"campaign_id": cid, "sign": 1.0, "holder": None, "rows": rows(range(0, 1)), "ids": ids[1:]}
    with pytest.raises(LeaseConflict, match="another scheduler"):  # the same seq twice
        pg_store.step(**merged([good, clash]))
    assert pg_store.evaluations(cid) == []


class CountingWriter(StepWriter):
    submitted = 0

    def submit(self, campaign_id: int, **step: Any) -> None:
        type(self).submitted += 1
        super().submit(campaign_id, **step)


def test_a_run_on_postgresql_writes_behind_its_loop(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole loop with its writes behind it (PostgreSQL, starts reported late): every
    evaluation done once, finished in one unbroken order, the elites the best of each cell."""
    monkeypatch.setattr(scheduler_module, "StepWriter", CountingWriter)
    budget = 200
    spec = api.as_spec(quadratic_spec(search__budget=budget, search__batch_size=8, search__max_in_flight=32))
    executor = SimulatedExecutor(api.executor_config(spec), 16, latency_s=0.002)
    stats = api.run(spec, storage=postgres_url, executor=executor)
    assert CountingWriter.submitted >= budget // 32  # every turn went through the writer
    assert stats.finished == budget and stats.counts["done"] == budget
    with archive.open(postgres_url) as handle:
        camp = handle.campaign("quad")
        evals = camp.evaluations()
        assert len(evals) == budget and all(r["attempts"] == 1 and r["status"] == "done" for r in evals)
        assert sorted(r["finished_seq"] for r in evals) == list(range(1, budget + 1))
        best: dict[int, float] = {}
        for r in evals:
            best[r["cell"]] = max(best.get(r["cell"], float("-inf")), r["objective"])
        assert {e["cell"]: e["objective"] for e in camp.elites()} == best


def test_a_run_reserves_only_the_ids_it_may_use(pg_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids are 32-bit: the stock is refilled with what the run may still write, no more."""
    asked: list[int] = []
    reserve_ids = pg_store.reserve_ids
    monkeypatch.setattr(pg_store, "reserve_ids", lambda n: asked.append(n) or reserve_ids(n))
    writer = StepWriter(pg_store)
    try:
        first = writer.reserve(2, ahead=3)
        rest = writer.reserve(3, ahead=0)
        assert asked == [5] and len(set(first + rest)) == 5
        writer.reserve(1, ahead=10**9)
        assert asked == [5, 1 + 65536]
    finally:
        writer.close()


class Usurped(SimulatedExecutor):
    """A simulated pool during whose poll ``at`` another scheduler takes the campaign's lease."""

    def __init__(self, *args: Any, url: str, at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url, self.at, self.polls, self.rows_then = url, at, 0, -1

    def poll(self, timeout: float) -> list[Any]:
        self.polls += 1
        if self.polls == self.at:
            store = Store(self.url)
            try:
                cid = store.require_campaign("quad").id
                store.update_campaign(cid, lease_holder="elsewhere:1:deadbeef", lease_expires=4e9, status="running")
                self.rows_then = len(store.evaluations(cid))
            finally:
                store.close()
        return super().poll(timeout)


def test_a_lease_taken_mid_run_stops_the_writer_and_nothing_is_written_after(postgres_url: str) -> None:
    """The writer's holder check catches the lease moving (the heartbeat is 10 s away): the
    run stops with ``LeaseLost``, no turn queued or merged past that moment is written, and
    the new holder's ``running`` stays."""
    spec = api.as_spec(quadratic_spec(search__budget=2000, search__batch_size=8, search__max_in_flight=32))
    executor = Usurped(api.executor_config(spec), 16, latency_s=0.002, url=postgres_url, at=5)
    with pytest.raises(scheduler_module.LeaseLost, match="another scheduler took over"):
        api.run(spec, storage=postgres_url, executor=executor)
    store = Store(postgres_url)
    try:
        record = store.require_campaign("quad")
        assert record.lease_holder == "elsewhere:1:deadbeef" and record.status == "running"
        assert executor.rows_then > 0 and len(store.evaluations(record.id)) == executor.rows_then
    finally:
        store.close()
