"""The store: every campaign, evaluation, elite and checkpoint, in SQL.

Rules it keeps, whatever calls it:

- an evaluation row exists (``pending``) before its work is dispatched;
- a result is recorded once: a second result for a finished evaluation is ignored;
- recording a result and replacing its cell's elite happen in one transaction, and an
  elite is replaced only by a strictly better fitness (``fitness = objective`` when
  maximising, ``-objective`` when minimising);
- statistics come from SQL aggregates, never from loading every row.

SQLite runs in WAL mode with a busy timeout and takes its write lock at the start of
each write transaction (``BEGIN IMMEDIATE``), so a read never has to upgrade to a write.
Opening and migrating live in :mod:`archive.engine`, the lease in :mod:`archive.leases`,
retrying in :mod:`archive.retry`, the records it returns in :mod:`archive.records`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from archive import bulk, starts
from archive import calls as call_rows
from archive.charger import Charger
from archive.engine import (
    MIGRATIONS,
    check_schema,
    checkpoint_wal,
    first_line,
    make_engine,
    migrate,
    parse_storage_url,
    shown_url,
    sqlite_file,
    use_wal,
)
from archive.errors import CampaignNameTaken, CampaignNotFound, LeaseConflict, StorageError
from archive.jsontext import loads_many
from archive.leases import LeaseStore, lease_columns_here, lease_expires_here
from archive.models import STATUSES, Campaign, Checkpoint, Elite, Evaluation, ProposerCall
from archive.records import (
    CampaignRecord,
    CampaignSettings,
    NewEvaluation,
    Result,
    Stats,
    scheduler_is_live,
)
from archive.retry import full_error, is_full, reconnecting, unique_violation
from entropy_atlas import settings
from entropy_atlas.holders import holder_text
from entropy_atlas.interrupts import held_interrupts
from entropy_atlas.names import close_names
from entropy_atlas.storable import INT64, text_problem

#: An elite's fields from its evaluation (:meth:`Store.elites`), the JSON ones decoded.
ELITE_FIELDS = ("measures", "params", "x", "seq", "proposer")
ELITE_JSON = ("measures", "params", "x")

#: Where the varying part of a failure's first line starts: atlas's own reasons end in one
#: ``(got …)`` (``workers.runner.DETAIL_MARK``, the same text), and an exception's message
#: that reads so is grouped the same way (:func:`failure_group`).
DETAIL_MARK = " (got "

#: The checkpoints row beside a proposer's that lists the finished evaluations its state
#: was not told (:meth:`Store.load_untold`), under a name no proposer of the campaign has.
UNTOLD_ROW = "(untold)"

#: A proposer's checkpoint as a write takes it: ``(proposer, state)``, or ``(proposer, state,
#: untold)`` with the ids of the finished evaluations that state was not told (empty: none).
CheckpointWrite = tuple[str, bytes] | tuple[str, bytes, Sequence[int]]


def untold_key(proposer: str) -> str:
    """The name of the row that holds what ``proposer``'s checkpoint was not told: :data:`UNTOLD_ROW`,
    or, for a proposer of that very name, another (a campaign has one proposer)."""
    return UNTOLD_ROW if proposer != UNTOLD_ROW else f"{UNTOLD_ROW}'"


def failure_group(error: str | None) -> str:
    """What a failure is grouped and counted by: its error's first line (everything before
    the first newline, ``''`` for none) up to its first :data:`DETAIL_MARK`, so that
    ``objective is not a finite number (got a str: '0.5')`` and ``(got None)`` are one cause.
    :meth:`Store.failure_summary` computes the same in SQL; the dashboard groups by this."""
    first = (error or "").split("\n", 1)[0]
    return first.split(DETAIL_MARK, 1)[0]


__all__ = ["MIGRATIONS", "CampaignRecord", "LeaseConflict", "NewEvaluation", "Result", "Stats", "StorageError",
           "Store", "make_engine", "migrate"]



def sql_limit(name: str, value: int | None) -> int | None:
    """A row limit as SQL takes it: ``None`` for all, a negative one refused (SQLite's
    ``LIMIT -1`` means all, PostgreSQL's is an error), one past 64 bits taken as all."""
    if value is None:
        return None
    if value < 0:
        raise ValueError(f"{name}: must be >= 0 (got {value})")
    return min(int(value), INT64[1])


SCHEMA_WAIT_S = 30.0  # how long an opening waits for another process's migration of the same SQLite file


class Store(LeaseStore):
    """All reads and writes of the archive for one storage URL."""

    def __init__(self, url: str, retry_s: float | None = None, readonly: bool = False) -> None:
        """Open ``url`` for writing (created and migrated as needed) or ``readonly``
        (nothing created or migrated; see :mod:`archive.engine`). A transaction is retried
        for up to ``retry_s`` while the database is unreachable (default ``ATLAS_DB_RETRY_S``)."""
        self.url = url
        self.readonly = readonly
        self.retry_s = settings.db_retry_s() if retry_s is None else retry_s
        self.engine = make_engine(url, readonly=readonly)
        file = sqlite_file(parse_storage_url(url))
        self.file = None if file is None else file.resolve()  # a SQLite file's path, as opened (None: PostgreSQL)
        self.closed = False  # set by close(): a handle refuses to read a closed store (it would reopen the pool)
        self._write_engine = self.engine.execution_options(atlas_write=True)
        self._charger = Charger(self.engine)  # the connection held for start charges
        self._snapshot = threading.local()  # the connection of a snapshot() open on this thread
        self._prepare_statements()
        try:
            self.found_revision = self._open_schema()  # the schema's revision when opened (None: no schema yet)
        except DBAPIError as exc:
            self.engine.dispose()
            if is_full(exc):  # the schema's transaction is rolled back: nothing was written
                raise full_error(url, exc) from None
            raise StorageError(f"cannot open storage {shown_url(url)}: {first_line(exc)}") from None
        except BaseException:
            self.engine.dispose()
            raise

    def _open_schema(self) -> str | None:
        """Check the schema (and, for writing, migrate it); the revision found. Two
        processes opening one new SQLite file at once (two ``atlas run`` into a fresh
        ``atlas.db``) both find it empty and both migrate: the second's write is refused
        at once as "database is locked" (a read transaction cannot wait to become a write),
        so it looks again, for up to :data:`SCHEMA_WAIT_S`, and finds the first's schema."""
        deadline = time.monotonic() + SCHEMA_WAIT_S
        while True:
            try:
                current = check_schema(self.engine, self.url, readonly=self.readonly)
                if not self.readonly:
                    use_wal(self.engine)
                    migrate(self.engine, current)
                return current
            except DBAPIError as exc:
                locked = self.dialect == "sqlite" and "database is locked" in str(exc.orig)
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction (SQLite: BEGIN IMMEDIATE), after the last start sent
        (:meth:`log_starts`) is acknowledged, so that it follows that start. A Ctrl-C or
        SIGTERM waits for the transaction to end (:func:`held_interrupts`): one interrupted
        half-way had left SQLite's write lock with a connection nothing would close."""
        with held_interrupts():
            self._charger.settle()
            with self._write_engine.begin() as conn:
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection to read on, after the last start sent (:meth:`log_starts`) is
        acknowledged, so that it shows that start; inside :meth:`snapshot`, the snapshot's."""
        held = getattr(self._snapshot, "conn", None)
        if held is not None:
            yield held
            return
        self._charger.settle()
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read of this thread inside it sees one moment of the database: one read
        transaction (PostgreSQL: ``REPEATABLE READ``, whose snapshot is taken at its first
        statement; SQLite: a WAL read transaction, likewise). An export reads the rows and
        then the elites: without it, an elite written between the two could name a row the
        export shows still running."""
        if getattr(self._snapshot, "conn", None) is not None:
            yield
            return
        self._charger.settle()
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                self._snapshot.conn = conn
                try:
                    yield
                finally:
                    self._snapshot.conn = None

    def close(self, empty_wal: bool = True) -> None:
        """Close the store's connections, a Ctrl-C or SIGTERM held until they are closed (one
        inside a connection's close had SQLAlchemy print ``Exception closing connection``
        with a traceback, and left a SQLite file's side files behind). A writable SQLite
        store empties its WAL into the database file first (:func:`checkpoint_wal`), so the
        file holds everything written even while a reader keeps it open; ``empty_wal=False``
        leaves that to the store a run closes last (a lease keeper's closes before it)."""
        with held_interrupts():
            self.closed = True
            self._charger.close()
            if empty_wal and not self.readonly:
                checkpoint_wal(self.engine)
            self.engine.dispose()

    # -- campaigns -----------------------------------------------------------
    @reconnecting
    def create_campaign(self, name: str, spec: dict[str, Any], spec_hash: str, layout: dict[str, Any],
                        default_units: Mapping[str, str] | None = None) -> CampaignRecord:
        """Write a new campaign row with its :class:`CampaignSettings`, taken from ``spec``
        (the validated spec's JSON form) and the evaluator's ``default_units``
        (:meth:`CampaignSettings.from_spec`)."""
        now = time.time()
        try:
            with self.write() as conn:
                conn.execute(
                    Campaign.__table__.insert().values(
                        name=name, spec=spec, spec_hash=spec_hash, status="created", layout=layout,
                        settings=CampaignSettings.from_spec(spec, default_units).to_json(),
                        created_at=now, updated_at=now,
                    )
                )
        except IntegrityError:  # the name is the only unique key a new row can collide on
            raise CampaignNameTaken(f"campaign {name!r} was created by another run meanwhile") from None
        campaign = self.campaign(name)
        assert campaign is not None
        return campaign

    @reconnecting
    def campaign(self, name: str) -> CampaignRecord | None:
        if text_problem(name):  # a NUL or a lone surrogate: no campaign's name, and no database takes it
            return None
        with self.read() as conn:
            query = select(*lease_columns_here(Campaign.__table__.c, self.dialect)).where(Campaign.name == name)
            row = conn.execute(query).mappings().first()
        return _to_campaign(row)

    def require_campaign(self, name: str) -> CampaignRecord:
        """The campaign called ``name``; :class:`CampaignNotFound` suggesting the close names
        and listing some of the known ones (:func:`known_campaigns_text`)."""
        record = self.campaign(name)
        if record is None:
            known = known_campaigns_text(name, [c.name for c in self.campaigns()])
            raise CampaignNotFound(f"no campaign named {name!r} in {shown_url(self.url)}{known}")
        return record

    @reconnecting
    def campaigns(self) -> list[CampaignRecord]:
        with self.read() as conn:
            query = select(*lease_columns_here(Campaign.__table__.c, self.dialect)).order_by(Campaign.id)
            rows = conn.execute(query).mappings().all()
        return [c for r in rows if (c := _to_campaign(r)) is not None]

    @reconnecting
    def update_campaign(self, campaign_id: int, *, default_units: Mapping[str, str] | None = None,
                        **values: Any) -> None:
        """Update the campaign's row; a new ``spec`` brings its settings with it (with the
        evaluator's ``default_units``, as :meth:`create_campaign`)."""
        values["updated_at"] = time.time()
        if "spec" in values:
            values["settings"] = CampaignSettings.from_spec(values["spec"], default_units).to_json()
        with self.write() as conn:
            conn.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values))

    # -- evaluations: writes -------------------------------------------------
    def add_pending(self, campaign_id: int, rows: Sequence[NewEvaluation],
                    checkpoint: tuple[str, bytes] | None = None,
                    calls: Sequence[dict[str, Any]] = (), holder: str | None = None) -> list[int]:
        """Write new ``pending`` rows, the proposer checkpoint and the proposer calls that
        produced them, in one transaction (:meth:`step`). Returns the rows' ids.

        With ``holder``, the write happens only while that scheduler holds the lease, and a
        sequence number another scheduler already wrote is a :class:`LeaseConflict`."""
        if not rows and not calls:
            return []
        return self.step(campaign_id, rows=rows, calls=calls, checkpoint=checkpoint, holder=holder)

    def _insert_pending(self, conn: Connection, campaign_id: int, rows: Sequence[NewEvaluation],
                        calls: Sequence[dict[str, Any]], ids: Sequence[int] | None = None) -> list[int]:
        """Inside a write: the proposer calls and the ``pending`` rows (under ``ids`` where
        given: :meth:`reserve_ids`); the rows' ids (those an earlier attempt of the same
        write committed, when it did)."""
        now = time.time()
        calls = self._unwritten_calls(conn, campaign_id, calls, now)
        if calls:
            conn.execute(ProposerCall.__table__.insert(), [{"campaign_id": campaign_id, **c} for c in calls])
        if not rows:
            return []
        if self._rows_exist(conn, campaign_id, rows):
            return self._ids_of(conn, campaign_id, rows)  # an earlier attempt committed them
        return bulk.insert_pending(conn, campaign_id, rows, now, ids)

    @staticmethod
    def _unwritten_calls(conn: Connection, campaign_id: int, calls: Sequence[dict[str, Any]],
                         now: float) -> list[dict[str, Any]]:
        """The ``calls`` not yet in the archive. Each call is stamped with its ``created_at``
        on the first attempt of its write; a retried write (its first commit's
        acknowledgement lost) finds the calls it committed by key and that stamp."""
        if not calls:
            return []
        for call in calls:
            call.setdefault("created_at", now)
        t = ProposerCall.__table__.c
        written = set(conn.execute(
            select(t.key, t.created_at).where(t.campaign_id == campaign_id, t.key.in_({c["key"] for c in calls}))
        ).tuples())
        return [c for c in calls if (c["key"], c["created_at"]) not in written]

    def _rows_exist(self, conn: Connection, campaign_id: int, rows: Sequence[NewEvaluation]) -> bool:
        return conn.execute(self._seq_taken, {"cid": campaign_id, "seq": rows[0].seq}).first() is not None

    @staticmethod
    def _ids_of(conn: Connection, campaign_id: int, rows: Sequence[NewEvaluation]) -> list[int]:
        """The ids of ``rows`` that an earlier attempt of this very write committed; rows
        under the same sequence numbers with other params were written by someone else
        (:class:`LeaseConflict`)."""
        seqs = [r.seq for r in rows]
        found = {seq: (eid, params) for seq, eid, params in conn.execute(
            select(Evaluation.seq, Evaluation.id, Evaluation.params)
            .where(Evaluation.campaign_id == campaign_id, Evaluation.seq.in_(seqs))
        ).all()}
        if len(found) != len(seqs) or any(found[r.seq][1] != r.params for r in rows):
            raise LeaseConflict(f"evaluation sequence numbers {seqs[0]}… were written by another scheduler "
                                f"(rows there with other params)")
        return [found[q][0] for q in seqs]

    @reconnecting
    def reserve_ids(self, n: int) -> list[int]:
        """``n`` evaluation ids taken from the table's sequence (PostgreSQL), for rows that
        :meth:`step` writes later (``ids``): a scheduler that writes behind its loop hands
        out new rows before they are written. An id taken and never written is a gap, as
        after a rolled-back insert."""
        if self.dialect != "postgresql":
            raise NotImplementedError("ids are reserved on PostgreSQL only (SQLite has no sequence)")
        with self._write_engine.connect() as conn:
            found = conn.exec_driver_sql(bulk.RESERVE_IDS_PG, {"n": int(n)}).scalar_one()
            conn.commit()
        return [int(i) for i in found or ()]

    def mark_running(self, ids: Sequence[int], worker: str | None = None) -> None:
        """Count a start on the rows: status ``running``, ``attempts`` + 1, committed before
        it returns, as one prepared statement for all ``ids`` on the held charge connection
        (:class:`archive.charger.Charger`). The inline executor charges the starts of evaluations of 1 ms or
        more so, and logs the shorter ones' (:meth:`log_starts`)."""
        if ids:
            self._charge_starts(ids, time.time(), worker)

    @reconnecting
    def _charge_starts(self, ids: Sequence[int], now: float, worker: str | None) -> None:
        """:meth:`mark_running`'s write, retried with the start's one time: a retry after a
        commit whose acknowledgement was lost finds the rows charged at ``now`` and leaves
        them (:data:`archive.bulk.RUNNING_SQL`)."""
        if self.dialect == "sqlite":
            self._charger.charge(bulk.RUNNING_SQL, [(now, worker, int(i)) for i in ids])
        else:
            self._charger.charge(bulk.RUNNING_PG, bulk.running_params_pg(dict.fromkeys(ids, now), worker))

    @reconnecting
    def log_starts(self, campaign_id: int, ids: Sequence[int], worker: str | None = None) -> float:
        """Count a start for each of ``ids`` in the start log (:mod:`archive.starts`), safe
        from this process dying once it returns; returns the start's time. Readers show the
        evaluations ``running`` with an attempt more at once; the scheduler's next
        :meth:`step` (``logged``) charges them on their rows.

        The inline executor calls this before each evaluation under 1 ms that it runs: one
        page of a small table to the WAL instead of a row's entries in two status indexes
        (:meth:`mark_running`), on the connection the store holds for charges. SQLite
        commits it before returning. PostgreSQL sends it and returns, its round trip
        running while the evaluation does; at most one is unacknowledged, and every later
        read or write of this store waits for it first (:class:`archive.charger.Charger`
        says why a sent start survives the process). A start logged again for the same
        evaluation keeps the later time."""
        now = time.time()
        if not ids:
            return now
        if self.dialect == "sqlite":
            self._charger.charge(starts.LOG_SQL, [(int(i), int(campaign_id), now, worker) for i in ids])
        else:
            self._charger.send(starts.LOG_PG, (str(int(campaign_id)), repr(now), worker, bulk.int_array(ids)))
        return now

    @reconnecting
    def fold_starts(self, campaign_id: int, holder: str | None = None) -> None:
        """Charge the campaign's logged starts on their rows and empty its log
        (:func:`archive.starts.fold`), while ``holder`` holds its lease: what a new scheduler
        does first, so that a dead one's last starts count before it reads the open rows."""
        with self.write() as conn:
            self._check_holder(conn, campaign_id, holder)
            starts.fold(conn, campaign_id=campaign_id)

    @reconnecting
    def requeue(self, ids: Sequence[int], uncharge: bool = False, *, campaign_id: int | None = None,
                holder: str | None = None) -> None:
        """Put unfinished evaluations back to ``pending`` (their worker was lost); with
        ``uncharge``, take back the attempt their start counted (they never ran, the
        evaluator could not be set up; or a clean stop cut them short: either way they
        crashed nothing). With ``holder``, only while that scheduler holds the lease of
        ``campaign_id`` (:class:`LeaseConflict` else): a scheduler stopped after another
        took its campaign over must not put the new holder's running rows back."""
        if not ids:
            return
        values: dict[str, Any] = {"status": "pending"}
        # a charged start is a running row: one back to pending was uncharged already (a
        # retry of this write whose first commit's acknowledgement was lost)
        taken = ("running",) if uncharge else ("pending", "running")
        if uncharge:
            values["attempts"] = func.max(Evaluation.attempts - 1, 0) if self.dialect == "sqlite" \
                else func.greatest(Evaluation.attempts - 1, 0)
        with self.write() as conn:
            if holder is not None:
                if campaign_id is None:
                    raise ValueError("a requeue fenced by a holder names its campaign")
                self._check_holder(conn, campaign_id, holder)
            starts.fold(conn, ids=list(ids))
            conn.execute(
                update(Evaluation).where(Evaluation.id.in_(list(ids)), Evaluation.status.in_(taken)).values(**values)
            )

    @reconnecting
    def record_results(self, campaign_id: int, results: Sequence[Result], sign: float,
                       checkpoint: CheckpointWrite | None = None, holder: str | None = None) -> list[bool]:
        """Record results and update elites in one transaction.

        Returns, for each result, whether it was recorded (``False``: the evaluation
        had a result already, or does not exist). ``sign`` is +1 when maximising and
        -1 when minimising.
        """
        if not results:
            return []
        _check_results(results)
        with self.write() as conn:
            self._check_holder(conn, campaign_id, holder)
            recorded = self._record_in(conn, campaign_id, results, sign)
            if checkpoint is not None:
                self._save_checkpoint(conn, campaign_id, *checkpoint)
        return recorded

    @reconnecting
    def step(self, campaign_id: int, *, started: Mapping[int, float] | None = None, results: Sequence[Result] = (),
             sign: float = 1.0, rows: Sequence[NewEvaluation] = (), calls: Sequence[dict[str, Any]] = (),
             checkpoint: CheckpointWrite | None = None, holder: str | None = None,
             ids: Sequence[int] | None = None, logged: Sequence[int] = ()) -> list[int]:
        """One turn of the scheduler's loop in one transaction: charge the ``started``
        evaluations (id → when it started) an attempt (as :meth:`mark_running`) and record ``results``
        with their elites (as :meth:`record_results`), after writing the new ``pending`` ``rows``
        and the proposer's ``calls`` (as :meth:`add_pending`); then its ``checkpoint`` (with what
        it was not told, where the checkpoint says: :data:`CheckpointWrite`). Returns the new
        rows' ids (``ids``, where the rows take ids reserved for them: :meth:`reserve_ids`).
        The ``logged`` ids (of ``started``) had their starts in the start log
        (:meth:`log_starts`): their log rows go, as their charges are written.
        All of it is written, or (a crash, a lost lease) none of it."""
        if not (started or results or rows or calls or checkpoint is not None):
            return []
        _check_results(results)
        try:
            with self.write() as conn:
                self._check_holder(conn, campaign_id, holder)
                # the new rows first: a write of several turns (search.step_writer) may hold results for them
                ids = self._insert_pending(conn, campaign_id, rows, calls, ids)
                # a start whose result came in the same turn is charged by the result's own UPDATE
                started = dict(started or {})
                with_result = {r.evaluation_id: started.pop(r.evaluation_id) for r in results
                               if r.evaluation_id in started}
                bulk.charge(conn, started)
                if results:
                    self._record_in(conn, campaign_id, results, sign, with_result)
                starts.unlog(conn, logged)
                if checkpoint is not None:
                    self._save_checkpoint(conn, campaign_id, *checkpoint)
        except IntegrityError as exc:
            if not unique_violation(exc):  # a row the schema refuses: not another scheduler's doing
                raise StorageError(f"cannot write the turn: {first_line(exc)}") from None
            raise LeaseConflict(f"evaluation sequence numbers {rows[0].seq if rows else '?'}… were written by "
                                f"another scheduler ({first_line(exc)})") from None
        return ids

    def _record_in(self, conn: Connection, campaign_id: int, results: Sequence[Result], sign: float,
                   started: Mapping[int, float] | None = None) -> list[bool]:
        """Inside a write: record ``results`` once each (charging the start of those in
        ``started``, id → when) and upsert their cells' elites; whether each was recorded."""
        now = time.time()
        ids = [r.evaluation_id for r in results]
        open_ids = bulk.open_ids(conn, campaign_id, ids)
        last = conn.execute(self._last_finished, {"cid": campaign_id}).scalar_one()
        rows, best_in_cell, recorded, seen = [], {}, [], set()
        for r in results:
            ok = r.evaluation_id in open_ids and r.evaluation_id not in seen
            recorded.append(ok)
            if not ok:
                continue
            seen.add(r.evaluation_id)
            last += 1
            done = r.status == "done"
            rows.append({
                "eid": r.evaluation_id, "status": r.status,
                "objective": r.objective if done else None, "measures": r.measures,
                "metrics": r.metrics, "cell": r.cell if done else None, "error": r.error,
                "worker": r.worker, "finished_at": now, "finished_seq": last,
            })
            if done:
                assert r.objective is not None and r.cell is not None
                fitness = sign * r.objective
                held = best_in_cell.get(r.cell)
                if held is None or fitness > held["fitness"]:
                    best_in_cell[r.cell] = {
                        "campaign_id": campaign_id, "cell": r.cell, "evaluation_id": r.evaluation_id,
                        "objective": r.objective, "fitness": fitness,
                    }
        bulk.record(conn, rows, started)
        bulk.upsert_elites(conn, campaign_id, list(best_in_cell.values()))
        return recorded

    def _prepare_statements(self) -> None:
        table = Evaluation.__table__
        self._seq_taken = select(table.c.id).where(table.c.campaign_id == bindparam("cid"),
                                                   table.c.seq == bindparam("seq")).limit(1)
        self._last_finished = (
            select(func.coalesce(func.max(table.c.finished_seq), 0)).where(table.c.campaign_id == bindparam("cid"))
        )
        if self.dialect == "postgresql":  # each dialect's package only where it is the storage's
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        checkpoints = Checkpoint.__table__
        ins = insert(checkpoints)
        self._checkpoint_stmt = ins.on_conflict_do_update(
            index_elements=[checkpoints.c.campaign_id, checkpoints.c.proposer],
            set_={"state": ins.excluded.state, "created_at": ins.excluded.created_at},
        )

    # -- checkpoints ---------------------------------------------------------
    def _save_checkpoint(self, conn: Connection, campaign_id: int, proposer: str, state: bytes,
                         untold: Sequence[int] | None = None) -> None:
        """Upsert ``proposer``'s ``state``; where ``untold`` is given, the ids of the finished
        evaluations that state was not told, in the row beside it (:func:`untold_key`), or,
        where there are none, no such row."""
        now = time.time()
        conn.execute(self._checkpoint_stmt, {"campaign_id": campaign_id, "proposer": proposer, "state": state,
                                             "created_at": now})
        if untold is None:
            return
        key = untold_key(proposer)
        if untold:
            conn.execute(self._checkpoint_stmt, {"campaign_id": campaign_id, "proposer": key, "created_at": now,
                                                 "state": json.dumps([int(i) for i in untold]).encode()})
        else:
            conn.execute(delete(Checkpoint.__table__).where(Checkpoint.campaign_id == campaign_id,
                                                            Checkpoint.proposer == key))

    @reconnecting
    def load_checkpoint(self, campaign_id: int, proposer: str) -> bytes | None:
        with self.read() as conn:
            return conn.execute(
                select(Checkpoint.state)
                .where(Checkpoint.campaign_id == campaign_id, Checkpoint.proposer == proposer)
            ).scalar_one_or_none()

    def load_untold(self, campaign_id: int, proposer: str) -> list[int]:
        """The ids of the finished evaluations ``proposer``'s checkpoint was not told, in the
        order it is to be told them (none where the row is absent: every result was told)."""
        raw = self.load_checkpoint(campaign_id, untold_key(proposer))
        return [] if raw is None else [int(i) for i in json.loads(raw)]

    @reconnecting
    def calls(self, campaign_id: int, proposer: str | None = None) -> list[dict[str, Any]]:
        """Proposer calls in the order they were made."""
        query = select(ProposerCall.__table__).where(ProposerCall.campaign_id == campaign_id)
        if proposer is not None:
            query = query.where(ProposerCall.proposer == proposer)
        with self.read() as conn:
            return [dict(r) for r in conn.execute(query.order_by(ProposerCall.id)).mappings().all()]

    @reconnecting
    def call_summary(self, campaign_id: int) -> list[dict[str, Any]]:
        """Per proposer, what its calls came to: calls, answered, failed, tokens, the latest
        error, the median latency (:func:`archive.calls.summary`: aggregated in SQL)."""
        with self.read() as conn:
            return call_rows.summary(conn, self.dialect, campaign_id)

    # -- evaluations: reads --------------------------------------------------
    @reconnecting
    def count_created(self, campaign_id: int) -> int:
        with self.read() as conn:
            return conn.execute(
                select(func.count()).select_from(Evaluation).where(Evaluation.campaign_id == campaign_id)
            ).scalar_one()

    @reconnecting
    def next_seq(self, campaign_id: int) -> int:
        with self.read() as conn:
            return conn.execute(
                select(func.coalesce(func.max(Evaluation.seq) + 1, 0))
                .where(Evaluation.campaign_id == campaign_id)
            ).scalar_one()

    @reconnecting
    def unfinished(self, campaign_id: int) -> list[dict[str, Any]]:
        """Evaluations written but not finished (``pending`` or ``running``), by seq."""
        with self.read() as conn:
            rows = conn.execute(
                select(Evaluation.__table__)
                .where(Evaluation.campaign_id == campaign_id,
                       Evaluation.status.in_(("pending", "running")))
                .order_by(Evaluation.seq)
            ).mappings().all()
            logged = starts.open_logged(conn, campaign_id)
        out = [_evaluation_dict(r) for r in rows]
        starts.overlay_rows(out, logged)
        return out

    @reconnecting
    def evaluations(self, campaign_id: int, status: str | None = None,
                    order_by: str = "seq") -> list[dict[str, Any]]:
        """Evaluation rows as dicts (``order_by``: ``seq`` or ``finished_seq``)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)} (got {status!r})")
        query = select(Evaluation.__table__).where(Evaluation.campaign_id == campaign_id)
        if status is not None:
            query = query.where(starts.status_is(status))
        query = query.order_by(getattr(Evaluation, order_by), Evaluation.seq)
        with self.read() as conn:
            rows = conn.execute(query).mappings().all()
            logged = starts.open_logged(conn, campaign_id, status)
        out = [_evaluation_dict(r) for r in rows]
        starts.overlay_rows(out, logged)
        return out

    @reconnecting
    def evaluation_texts(self, campaign_id: int, columns: Sequence[str],
                         json_columns: Sequence[str]) -> list[tuple[Any, ...]]:
        """Evaluation rows as tuples of ``columns`` in sequence order, the ``json_columns``
        as the JSON text the database holds (cast to text, so nothing is decoded): exports
        stream them out or parse them with a fast parser instead of one ``json.loads`` per
        value through the ORM type. The rows come from the DBAPI cursor as it returns them,
        past SQLAlchemy's result processing (a third of the fetch at 10⁵ rows); psycopg's in
        binary format (floats arrive as their IEEE bits, not as text to parse)."""
        table = Evaluation.__table__
        selected = [cast(table.c[c], Text) if c in json_columns else table.c[c] for c in columns]
        query = select(*selected).where(table.c.campaign_id == int(campaign_id)).order_by(table.c.seq)
        sql = str(query.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True}))
        with self.read() as conn:
            cursor = conn.connection.cursor(**({"binary": True} if conn.dialect.driver == "psycopg" else {}))
            try:
                cursor.execute(sql)
                rows = cursor.fetchall()
            except conn.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy would raise it, for @reconnecting
                raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error) from None
            finally:
                cursor.close()
            logged = starts.open_logged(conn, campaign_id) if "id" in columns else []
        return starts.overlay_tuples(rows, columns, logged)

    @reconnecting
    def elite_cells(self, campaign_id: int) -> list[tuple[int, int, float]]:
        """``(cell, evaluation_id, objective)`` of every elite, best fitness first."""
        with self.read() as conn:
            return [tuple(r) for r in conn.execute(
                select(Elite.cell, Elite.evaluation_id, Elite.objective)
                .where(Elite.campaign_id == campaign_id)
                .order_by(Elite.fitness.desc(), Elite.cell)
            ).all()]

    @reconnecting
    def evaluation(self, campaign_id: int, evaluation_id: int) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(
                select(Evaluation.__table__).where(Evaluation.campaign_id == campaign_id,
                                                   Evaluation.id == evaluation_id)
            ).mappings().first()
            logged = starts.open_logged(conn, campaign_id) if row is not None else []
        if row is None:
            return None
        out = _evaluation_dict(row)
        starts.overlay_rows([out], logged)
        return out

    @reconnecting
    def elites(self, campaign_id: int, top: int | None = None,
               fields: Sequence[str] = ELITE_FIELDS) -> list[dict[str, Any]]:
        """Elites joined with their evaluation, best fitness first: each a dict of ``cell``,
        ``evaluation_id``, ``objective``, ``fitness`` and the evaluation's ``fields`` (of
        :data:`ELITE_FIELDS`, all unless fewer are asked for: ``atlas map`` reads
        ``measures`` alone, a third of the text). The JSON columns come as text and are
        decoded in one call (:func:`archive.jsontext.loads_many`: a third of the time for the
        10⁴ elites of a 100 × 100 map)."""
        unknown = set(fields) - set(ELITE_FIELDS)
        if unknown:
            raise ValueError(f"not a field of an elite: {', '.join(sorted(unknown))}")
        top = sql_limit("top", top)
        names = [f for f in ELITE_FIELDS if f in fields]
        texts = [f for f in names if f in ELITE_JSON]
        plain = [f for f in names if f not in ELITE_JSON]
        query = (
            select(Elite.cell, Elite.evaluation_id, Elite.objective, Elite.fitness,
                   *[cast(getattr(Evaluation, f), Text) for f in texts], *[getattr(Evaluation, f) for f in plain])
            .join(Evaluation, Evaluation.id == Elite.evaluation_id)
            .where(Elite.campaign_id == campaign_id)
            .order_by(Elite.fitness.desc(), Elite.cell)
        )
        if top is not None:
            query = query.limit(top)
        with self.read() as conn:
            rows = conn.execute(query).all()
        k = len(texts)
        decoded = loads_many([t for r in rows for t in r[4:4 + k]])
        return [{"cell": r[0], "evaluation_id": r[1], "objective": r[2], "fitness": r[3],
                 **{f: decoded[k * i + j] for j, f in enumerate(texts)},
                 **{f: r[4 + k + j] for j, f in enumerate(plain)}} for i, r in enumerate(rows)]

    @reconnecting
    def stats(self, campaign_id: int, cells: int, qd_offset: float = 0.0,
              by_proposer: dict[str, dict[str, int]] | None = None) -> Stats:
        """Counts by status in SQL, the best elite, and the elites' count and fitness sum, from
        which :func:`archive.stats.coverage` and :func:`archive.stats.qd_score` make the rest.
        With ``by_proposer`` (:meth:`proposer_counts`, read already) the counts are its sums:
        one scan of the campaign's rows fewer (10⁶ index entries); ``{}`` reads none (the
        map's title needs none). The fitness sum is exactly rounded
        (:func:`archive.stats.fitness_sum` over the elites' fitnesses: as many as the cells
        filled, never the evaluations)."""
        from archive.stats import coverage, fitness_sum, qd_score

        with self.read() as conn:
            if by_proposer is None:
                counts = dict(conn.execute(
                    select(Evaluation.status, func.count())
                    .where(Evaluation.campaign_id == campaign_id)
                    .group_by(Evaluation.status)
                ).all())
                starts.shift_counts(counts, starts.open_logged(conn, campaign_id))
            else:
                counts = {}
                for by_status in by_proposer.values():
                    for status, n in by_status.items():
                        counts[status] = counts.get(status, 0) + int(n)
            fitness = [float(f) for f in conn.execute(
                select(Elite.fitness).where(Elite.campaign_id == campaign_id)).scalars()]
            best = conn.execute(
                select(Elite.objective, Elite.evaluation_id)
                .where(Elite.campaign_id == campaign_id)
                .order_by(Elite.fitness.desc()).limit(1)
            ).first()
        fit_sum = fitness_sum(fitness)
        counts = {s: int(counts.get(s, 0)) for s in ("pending", "running", "done", "failed")}
        return Stats(
            counts=counts,
            created=sum(counts.values()),
            finished=counts["done"] + counts["failed"],
            elites=len(fitness),
            cells=cells,
            coverage=coverage(len(fitness), cells),
            qd_score=qd_score(fit_sum, len(fitness), qd_offset),
            best_objective=None if best is None else float(best[0]),
            best_evaluation_id=None if best is None else int(best[1]),
        )

    @reconnecting
    def proposer_counts(self, campaign_id: int) -> dict[str, dict[str, int]]:
        """For each proposer, how many of its evaluations are in each status."""
        with self.read() as conn:
            rows = conn.execute(
                select(Evaluation.proposer, Evaluation.status, func.count())
                .where(Evaluation.campaign_id == campaign_id)
                .group_by(Evaluation.proposer, Evaluation.status)
            ).all()
            logged = starts.open_logged(conn, campaign_id)
        return starts.counts_by_proposer(rows, logged)

    # -- failures and deletion -------------------------------------------------
    def _failure_group(self) -> Any:
        """SQL for :func:`failure_group` of ``evaluations.error``: the text before the first
        newline (``''`` when there is none), then before the first :data:`DETAIL_MARK`.
        SQLite spells the search ``instr``, PostgreSQL ``strpos``; appending the newline (the
        mark) makes a text without one end where it ends."""
        find = func.strpos if self.dialect == "postgresql" else func.instr

        def before(text: Any, mark: str) -> Any:
            return func.substr(text, 1, find(text + mark, mark) - 1, type_=Text)

        return before(before(func.coalesce(Evaluation.error, ""), "\n"), DETAIL_MARK)

    @reconnecting
    def failure_summary(self, campaign_id: int, limit: int = 5) -> list[tuple[str, int]]:
        """The ``limit`` most common messages of the campaign's ``failed`` evaluations as
        ``(message, count)``, most common first (ties: by message). A message is the first
        line of the error (the exception's type and text; a traceback follows it) up to a
        ``(got …)`` that says the value (:func:`failure_group`), grouped and counted in SQL."""
        lines = (select(self._failure_group().label("message"))
                 .where(Evaluation.campaign_id == campaign_id, Evaluation.status == "failed")
                 .subquery())
        n = func.count().label("n")
        query = select(lines.c.message, n).group_by(lines.c.message).order_by(n.desc(), lines.c.message)
        with self.read() as conn:
            rows = conn.execute(query.limit(sql_limit("limit", limit))).all()
        return [(str(message), int(count)) for message, count in rows]

    @reconnecting
    def failed_evaluations(self, campaign_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """The campaign's ``failed`` evaluations, the latest (highest ``seq``) first, at
        most ``limit`` of them."""
        query = (select(Evaluation.__table__)
                 .where(Evaluation.campaign_id == campaign_id, Evaluation.status == "failed")
                 .order_by(Evaluation.seq.desc()))
        limit = sql_limit("limit", limit)
        if limit is not None:
            query = query.limit(limit)
        with self.read() as conn:
            return [_evaluation_dict(r) for r in conn.execute(query).mappings().all()]

    @reconnecting
    def delete_campaign(self, campaign_id: int, force: bool = False) -> dict[str, int]:
        """Delete a campaign and every row that belongs to it, in one transaction; returns
        how many rows went from each table (``elites``, ``proposer_calls``, ``checkpoints``,
        ``evaluations``, ``campaigns``).

        While a scheduler holds a live lease (``lease_holder`` set, ``lease_expires`` in the
        future, and the holder not a process of this host that is gone:
        :func:`~archive.records.scheduler_is_live`) this is a :class:`LeaseConflict` and
        nothing is deleted, unless ``force``.
        The lease is read inside the write transaction (PostgreSQL: the row locked; SQLite:
        the write lock taken at ``BEGIN``), so no scheduler can take it in between. Rows go
        children first (elites refer to evaluations), so foreign keys hold at every step."""
        children = (Elite.__table__, ProposerCall.__table__, Checkpoint.__table__, Evaluation.__table__)
        campaigns = Campaign.__table__
        with self.write() as conn:
            query = select(campaigns.c.name, campaigns.c.lease_holder, lease_expires_here(self.dialect)).where(
                campaigns.c.id == campaign_id)
            if self.dialect == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise CampaignNotFound(f"no campaign with id {campaign_id} in {shown_url(self.url)}")
            if not force and scheduler_is_live(row.lease_holder, row.lease_expires):  # a killed one: at once
                left = row.lease_expires - time.time()
                raise LeaseConflict(f"campaign {row.name!r} is being run by {holder_text(row.lease_holder)} "
                                    f"(its lease runs {left:.0f} s more)")
            counts = {t.name: conn.execute(t.delete().where(t.c.campaign_id == campaign_id)).rowcount
                      for t in children}
            counts["campaigns"] = conn.execute(campaigns.delete().where(campaigns.c.id == campaign_id)).rowcount
        return counts


def _check_results(results: Sequence[Result]) -> None:
    for r in results:
        if r.status == "done" and (r.objective is None or not math.isfinite(r.objective) or r.cell is None):
            raise ValueError(f"evaluation {r.evaluation_id}: a done result needs a finite objective and a cell")


CAMPAIGNS_LISTED = 10  # a "no campaign named" error lists this many names at most (:func:`known_campaigns_text`)
CLOSE_CAMPAIGNS = 3  # ... of which at most this many are suggested (``did you mean``)


def known_campaigns_text(name: str, names: Sequence[str]) -> str:
    """What a "no campaign named ``name``" error adds, from the storage's campaign ``names``
    (oldest first): ``: did you mean A?`` (or ``A or B?``) where up to :data:`CLOSE_CAMPAIGNS`
    names are close to it (:func:`entropy_atlas.names.close_names`, closest first), then the
    campaigns in brackets: every one, oldest first, where there are at most
    :data:`CAMPAIGNS_LISTED`; else that many, the close ones first and then the newest, and
    how many more (``atlas status`` lists them all). ``(campaigns: none)`` for none. A
    storage of hundreds of campaigns made the error one line of every name."""
    close = close_names(name, names, CLOSE_CAMPAIGNS)
    meant = f": did you mean {' or '.join(close)}?" if close else ""
    if len(names) <= CAMPAIGNS_LISTED:
        return f"{meant} (campaigns: {', '.join(names) or 'none'})"
    shown = list(dict.fromkeys([*close, *reversed(names)]))[:CAMPAIGNS_LISTED]
    return (f"{meant} (campaigns: {', '.join(shown)} … and {len(names) - len(shown)} more: "
            f"`atlas status` lists them)")


def _to_campaign(row: Any) -> CampaignRecord | None:
    if row is None:
        return None
    values = {f.name: row[f.name] for f in dataclasses.fields(CampaignRecord)}
    values["settings"] = CampaignSettings.from_json(values["settings"])
    return CampaignRecord(**values)


def _evaluation_dict(row: Any) -> dict[str, Any]:
    return dict(row)
