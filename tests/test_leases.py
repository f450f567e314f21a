"""Leases: one scheduler per campaign, even when many race for it at the same instant, and
a scheduler that lost its lease writes nothing more (rows, results or status)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from archive.errors import LeaseConflict
from archive.records import NewEvaluation
from archive.store import Store
from search.campaigns import open_campaign
from search.scheduler import LeaseLost, Scheduler, lease_holder_id
from search.spec import parse_spec
from tests.conftest import quadratic_spec

RACES = 50
RACERS = 6


def test_exactly_one_of_many_racing_schedulers_gets_the_lease(storage_url: str) -> None:
    """50 races of 6 schedulers, each with its own connection, released at one barrier."""
    setup = Store(storage_url)
    campaign = open_campaign(setup, parse_spec(quadratic_spec()))
    stores = [Store(storage_url) for _ in range(RACERS)]
    try:
        with ThreadPoolExecutor(RACERS) as pool:
            for race in range(RACES):
                barrier = threading.Barrier(RACERS)
                holders = [f"racer-{race}-{i}" for i in range(RACERS)]

                def take(i: int, barrier: threading.Barrier = barrier, holders: list[str] = holders) -> bool:
                    barrier.wait()
                    return stores[i].acquire_lease(campaign.id, holders[i], ttl_s=60) is None

                wins = list(pool.map(take, range(RACERS)))
                assert sum(wins) == 1, f"race {race}: {sum(wins)} winners"
                winner = holders[wins.index(True)]
                assert setup.require_campaign("quad").lease_holder == winner
                setup.release_lease(campaign.id, winner)
    finally:
        for s in stores:
            s.close()
        setup.close()


def test_a_scheduler_that_lost_its_lease_writes_nothing(storage_url: str) -> None:
    store = Store(storage_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        old, new = lease_holder_id(), lease_holder_id()
        assert store.acquire_lease(campaign.id, old, ttl_s=-1) is None  # expires at once
        assert store.acquire_lease(campaign.id, new, ttl_s=60) is None
        assert store.set_status(campaign.id, new, "running")
        row = NewEvaluation(seq=0, params={"a": 0.1, "b": 0.2}, x=[0.1, 0.2], proposer="test")
        with pytest.raises(LeaseConflict):
            store.add_pending(campaign.id, [row], holder=old)
        assert not store.set_status(campaign.id, old, "stopped")
        assert not store.finish_run(campaign.id, old, "stopped")
        record = store.require_campaign("quad")
        assert record.status == "running" and record.lease_holder == new
        assert store.count_created(campaign.id) == 0
        store.add_pending(campaign.id, [row], holder=new)
        with pytest.raises(LeaseConflict, match="written by another scheduler"):
            store.add_pending(campaign.id, [NewEvaluation(seq=0, params={"a": 0.5, "b": 0.5}, x=[0.5, 0.5],
                                                          proposer="test")], holder=new)
    finally:
        store.close()


def test_a_scheduler_whose_lease_is_taken_stops_with_lease_lost(sqlite_url: str) -> None:
    """Another scheduler takes the lease mid-run: the first stops, and the status it would
    have written (``stopped``) does not overwrite the new holder's ``running``."""
    from search import api
    from workers.executors import make_executor

    spec = parse_spec(quadratic_spec(search__budget=200, search__batch_size=5, search__max_in_flight=5))
    store = Store(sqlite_url)
    try:
        campaign = open_campaign(store, spec)
        prepared = api.prepare(store, spec, "inline", None)
        usurper = "elsewhere:1:deadbeef"
        calls = {"n": 0}

        def progress(_stats: object) -> None:
            calls["n"] += 1
            if calls["n"] == 2:
                Store(sqlite_url).update_campaign(campaign.id, lease_holder=usurper, lease_expires=4e9,
                                                  status="running")

        scheduler = Scheduler(store, prepared.setup.committed(campaign), prepared.proposer,
                              make_executor("inline", api.executor_config(spec)), progress=progress, lease_ttl_s=0.01)
        scheduler._report = lambda: scheduler.progress(scheduler.stats())  # type: ignore[method-assign]
        with pytest.raises(LeaseLost):
            scheduler.run()
        record = store.require_campaign("quad")
        assert record.lease_holder == usurper and record.status == "running"
    finally:
        store.close()
