"""The campaign's lease: one scheduler at a time, and every write of a run fenced by it.

- Taking the lease is one conditional ``UPDATE`` (a compare-and-set on the holder seen),
  so of any number of schedulers racing for a free lease exactly one wins.
- A lease is free when nobody holds it, when it has expired, when the taker holds it
  already, or when its holder's process is known to be gone.
- A run's writes check, inside their own transaction, that their scheduler still holds
  the lease (``FOR SHARE`` on PostgreSQL); the campaign's status and the release are one
  ``UPDATE … WHERE lease_holder = me``. A scheduler that lost its lease writes nothing.
- Every lease time is the database's clock (:func:`lease_clock`): on PostgreSQL the
  server's, taken in the statement that writes or compares it, so that the clocks of the
  machines its schedulers and readers run on do not matter (a scheduler 35 s behind, with
  a TTL of 30 s, wrote leases everyone else read as expired). A reader selects a lease's
  expiry as its own clock reads it (:func:`lease_expires_here`). On SQLite the clock is the
  local one: its file is used from one machine (SQLite's locking does not hold over a
  network file system; several machines on one file would need their clocks in step).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Float, bindparam, cast, extract, func, literal, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from archive import starts
from archive.errors import CampaignDeleted, LeaseConflict
from archive.models import Campaign
from archive.retry import reconnecting
from entropy_atlas.holders import holder_text

_HOLDER = select(Campaign.__table__.c.lease_holder).where(Campaign.__table__.c.id == bindparam("cid"))
_HOLDER_PG = _HOLDER.with_for_update(read=True)  # built once: every write of a run checks it
_EXPIRES = Campaign.__table__.c.lease_expires


def lease_clock(dialect: str) -> ColumnElement[float]:
    """The clock every lease time is written and compared on, as seconds since the epoch:
    on PostgreSQL the server's (``extract(epoch from clock_timestamp())``, read by the
    statement it is in), elsewhere this process's (``time.time()`` now)."""
    if dialect == "postgresql":
        return cast(extract("epoch", func.clock_timestamp()), Float)
    return literal(time.time(), Float)


def lease_expires_here(dialect: str) -> ColumnElement[float | None]:
    """``campaigns.lease_expires`` as this process's clock reads it, for a reader's
    ``select`` (labelled ``lease_expires``), so that :func:`archive.records.lease_is_live`
    compares like with like. On PostgreSQL the stored expiry (the server's clock) moved by
    the whole seconds this process's clock is off from the server's, both read by the
    statement: a reader whose clock agrees with the server's (within half a second) reads
    the stored value itself, the same at every read. Elsewhere the stored value."""
    if dialect != "postgresql":
        return _EXPIRES
    here = bindparam("lease_clock_here", type_=Float, callable_=lambda: time.time())
    return (_EXPIRES + func.round(here - lease_clock(dialect))).label("lease_expires")


def lease_columns_here(columns: Iterable[ColumnElement[Any]], dialect: str) -> list[ColumnElement[Any]]:
    """``columns`` with ``campaigns.lease_expires`` read by :func:`lease_expires_here`."""
    return [lease_expires_here(dialect) if c is _EXPIRES else c for c in columns]


class LeaseStore:
    """The lease operations of :class:`~archive.store.Store` (a mixin over its connections)."""

    url: str
    retry_s: float
    dialect: str
    read: Callable[[], AbstractContextManager[Connection]]
    write: Callable[[], AbstractContextManager[Connection]]

    @reconnecting
    def acquire_lease(self, campaign_id: int, holder: str, ttl_s: float,
                      holder_is_dead: Callable[[str], bool] = lambda _h: False) -> str | None:
        """Take the campaign's lease; returns ``None`` on success, else the live holder.

        A lease is free when nobody holds it, when it has expired, when ``holder`` holds
        it already, or when ``holder_is_dead`` says its holder's process is gone. The take
        is one conditional ``UPDATE`` (compare-and-set on the holder it saw), so of any
        number of schedulers racing for a free lease exactly one wins. Expiry is judged, and
        the new one written, on the database's clock (:func:`lease_clock`).
        """
        with self.read() as conn:
            seen = conn.execute(select(Campaign.lease_holder).where(Campaign.id == campaign_id)).scalar_one()
        table = Campaign.__table__
        clock = lease_clock(self.dialect)
        free = or_(table.c.lease_holder.is_(None), table.c.lease_holder == holder, table.c.lease_expires < clock)
        if seen is not None and seen != holder and holder_is_dead(seen):
            free = or_(free, table.c.lease_holder == seen)
        with self.write() as conn:
            won = conn.execute(
                update(table).where(table.c.id == campaign_id, free)
                .values(lease_holder=holder, lease_expires=clock + ttl_s, updated_at=time.time())
            ).rowcount == 1
            if won:
                return None
            current = conn.execute(select(table.c.lease_holder).where(table.c.id == campaign_id)).scalar_one()
        return str(current or seen or "another scheduler")

    @reconnecting
    def finish_run(self, campaign_id: int, holder: str, status: str) -> bool:
        """Write the campaign's ``status`` and release the lease in one statement, only
        while ``holder`` holds it (a scheduler whose lease was taken over writes nothing),
        and in the same transaction charge the starts it left in the start log
        (:func:`archive.starts.fold`). Returns whether it held the lease."""
        now = time.time()
        with self.write() as conn:
            res = conn.execute(
                update(Campaign).where(Campaign.id == campaign_id, Campaign.lease_holder == holder)
                .values(status=status, lease_holder=None, lease_expires=None, updated_at=now)
            )
            if res.rowcount == 1:  # the run's last logged starts are charged on their rows
                starts.fold(conn, campaign_id=campaign_id)
        return res.rowcount == 1

    @reconnecting
    def set_status(self, campaign_id: int, holder: str, status: str) -> bool:
        """Write the campaign's ``status`` while ``holder`` holds its lease."""
        with self.write() as conn:
            res = conn.execute(
                update(Campaign).where(Campaign.id == campaign_id, Campaign.lease_holder == holder)
                .values(status=status, updated_at=time.time())
            )
        return res.rowcount == 1

    def _check_holder(self, conn: Connection, campaign_id: int, holder: str | None) -> None:
        """Inside a write: raise :class:`LeaseConflict` unless ``holder`` holds the lease
        (``None``: an unfenced write, for tools and tests)."""
        if holder is None:
            return
        row = conn.execute(_HOLDER_PG if self.dialect == "postgresql" else _HOLDER, {"cid": campaign_id}).first()
        if row is None:
            raise CampaignDeleted("the campaign was deleted")
        current = row[0]
        if current != holder:
            held = holder_text(current) if current else "nobody"
            raise LeaseConflict(f"the campaign's lease is held by {held}, not this scheduler")

    @reconnecting
    def renew_lease(self, campaign_id: int, holder: str, ttl_s: float) -> bool:
        """Extend the lease to ``ttl_s`` from now on the database's clock (:func:`lease_clock`);
        ``False`` when ``holder`` no longer holds it."""
        with self.write() as conn:
            res = conn.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.lease_holder == holder)
                .values(lease_expires=lease_clock(self.dialect) + ttl_s, updated_at=time.time())
            )
        return res.rowcount == 1

    @reconnecting
    def release_lease(self, campaign_id: int, holder: str) -> None:
        """Give the lease up while ``holder`` holds it (holder and expiry cleared: no clock)."""
        with self.write() as conn:
            conn.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id, Campaign.lease_holder == holder)
                .values(lease_holder=None, lease_expires=None, updated_at=time.time())
            )
