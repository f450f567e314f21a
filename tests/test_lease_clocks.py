"""Lease times on the database's clock: on PostgreSQL a scheduler whose machine's clock is a
minute off neither writes a lease that others read as expired nor takes one that is live,
and a reader whose clock is off reads a live lease as live."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Float, cast, extract, func, select

from archive.errors import LeaseConflict
from archive.models import Campaign
from archive.records import lease_is_live
from archive.store import Store
from entropy_atlas.holders import lease_holder_id
from search.campaigns import open_campaign
from search.spec import parse_spec
from tests.conftest import quadratic_spec

SHIFT_S = 60.0  # the clock error: twice the TTL
TTL_S = 30.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClockOff]:
    """Sets this process's clock (``time.time``) off by a number of seconds."""
    yield ClockOff(monkeypatch)


class ClockOff:
    """``time.time`` of this process, ``by`` seconds off (0: right again)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self._real = time.time

    def off_by(self, by: float) -> None:
        real = self._real
        self._monkeypatch.setattr(time, "time", lambda: real() + by)


def _left_on_server(store: Store, campaign_id: int) -> float:
    """The time the campaign's lease has left on the database server's clock."""
    server_now = cast(extract("epoch", func.clock_timestamp()), Float)
    with store.read() as conn:
        return float(conn.execute(select(Campaign.lease_expires - server_now)
                                  .where(Campaign.id == campaign_id)).scalar_one())


def test_a_lease_taken_on_a_clock_behind_is_live_to_a_reader_with_a_right_one(
        postgres_url: str, clock: ClockOff) -> None:
    store, reader = Store(postgres_url), Store(postgres_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        holder = lease_holder_id()
        clock.off_by(-SHIFT_S)
        assert store.acquire_lease(campaign.id, holder, ttl_s=TTL_S) is None
        assert store.set_status(campaign.id, holder, "running")
        clock.off_by(0)
        record = reader.require_campaign("quad")
        assert record.lease_is_live() and record.live_status() == "running"
        with pytest.raises(LeaseConflict):
            reader.delete_campaign(campaign.id)
        assert TTL_S - 5 < _left_on_server(reader, campaign.id) <= TTL_S
    finally:
        store.close()
        reader.close()


def test_a_renewal_extends_the_lease_by_its_ttl_on_the_servers_clock(postgres_url: str, clock: ClockOff) -> None:
    store = Store(postgres_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        holder = lease_holder_id()
        clock.off_by(-SHIFT_S)
        assert store.acquire_lease(campaign.id, holder, ttl_s=5) is None
        assert store.renew_lease(campaign.id, holder, ttl_s=100)
        assert 95 < _left_on_server(store, campaign.id) <= 100
        store.release_lease(campaign.id, holder)
        assert store.require_campaign("quad").lease_expires is None
    finally:
        store.close()


def test_a_scheduler_whose_clock_is_ahead_does_not_take_a_live_lease(postgres_url: str, clock: ClockOff) -> None:
    store = Store(postgres_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        first, second = lease_holder_id(), lease_holder_id()
        assert store.acquire_lease(campaign.id, first, ttl_s=TTL_S) is None
        clock.off_by(SHIFT_S)
        assert store.acquire_lease(campaign.id, second, ttl_s=TTL_S) == first
        assert store.require_campaign("quad").lease_holder == first
        clock.off_by(0)
        assert store.acquire_lease(campaign.id, second, ttl_s=-1) == first
    finally:
        store.close()


def _read_here(store: Store, campaign_id: int) -> float:
    """The campaign's lease expiry as :func:`archive.leases.lease_expires_here` reads it."""
    from archive.leases import lease_expires_here

    with store.read() as conn:
        return float(conn.execute(select(lease_expires_here(store.dialect))
                                  .where(Campaign.id == campaign_id)).scalar_one())


def test_a_reader_whose_clock_is_off_reads_the_lease_on_the_servers_clock(
        postgres_url: str, clock: ClockOff) -> None:
    """The lease's expiry moved onto the reader's clock; a reader whose clock agrees with the
    server's reads the stored value, the same at every read (the dashboard's versions hash it)."""
    store = Store(postgres_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        holder = lease_holder_id()
        assert store.acquire_lease(campaign.id, holder, ttl_s=TTL_S) is None
        stored = store.require_campaign("quad").lease_expires
        assert _read_here(store, campaign.id) == _read_here(store, campaign.id) == stored
        for off in (SHIFT_S, -SHIFT_S):
            clock.off_by(off)
            expires = _read_here(store, campaign.id)
            assert expires == stored + off
            assert lease_is_live(holder, expires) and expires - time.time() > TTL_S - 5
    finally:
        store.close()


def test_the_stores_readers_see_a_live_lease_live_on_a_clock_ahead(postgres_url: str, clock: ClockOff) -> None:
    """``atlas status`` (the record), ``atlas delete`` (in its transaction) and the
    dashboard (:mod:`archive.queries`) on a machine a minute ahead of the server."""
    from archive import queries

    store = Store(postgres_url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        holder = lease_holder_id()
        assert store.acquire_lease(campaign.id, holder, ttl_s=TTL_S) is None
        assert store.set_status(campaign.id, holder, "running")
        clock.off_by(SHIFT_S)
        assert store.require_campaign("quad").live_status() == "running"
        row = queries.campaign_row(store, "quad")
        assert lease_is_live(row.lease_holder, row.lease_expires)
        with pytest.raises(LeaseConflict):
            store.delete_campaign(campaign.id)
    finally:
        store.close()
