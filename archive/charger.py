"""The charge connection: starts counted before their evaluations run, on a connection the
store holds for that alone (no pool checkout, no pre-ping).

Two ways to count a start:

- :meth:`Charger.charge` commits before it returns: on SQLite once per row of its
  parameters in one ``BEGIN IMMEDIATE`` transaction, on PostgreSQL as one statement that is
  its own transaction (autocommit: one round trip, where a transaction and its ``COMMIT``
  were three).
- :meth:`Charger.send` (PostgreSQL) sends one statement, prepared once per connection, and
  returns without waiting for the server: its round trip runs while the evaluation does.
  **At most one sent statement is unacknowledged**: the next send, any charge, and every
  read or write of the store first wait for it (:meth:`Charger.settle`), so the store's own
  later writes (the turn that deletes the start from the log) always follow it.

Why a sent start is as safe as a committed one against what it guards against, the
scheduler (or its evaluator) dying: the statement is in the kernel's hands once ``send``
returns, and the kernel delivers it after the process is gone; the server then runs and
commits it. The one thing that would make the kernel drop it is a reset, which it sends
only when a dying process leaves replies unread. Since every earlier reply was read before
this statement went, the only reply a dying process can leave unread is this statement's
own, which the server sends after committing it.

A sent statement that fails, or whose connection drops, is run again at the next
:meth:`Charger.settle` as a plain charge on a fresh connection (the statements sent are
idempotent upserts), which raises its error as SQLAlchemy would: so a start is never lost
to a dropped connection, and an error names itself one call late at worst.

On PostgreSQL the commit does not wait for the server's WAL flush (``synchronous_commit =
off`` on this connection only): a charge is guarded against the scheduler or its evaluator
dying, which it survives (the server has it); only a crash of the database server itself
within its WAL writer delay could lose it, leaving the evaluation one attempt short.
"""

from __future__ import annotations

import contextlib
import selectors
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

#: Parameters of :meth:`Charger.charge`: SQLite's rows (one statement each) or PostgreSQL's
#: named parameters (one statement).
ChargeParams = list[tuple[Any, ...]] | dict[str, Any]

#: How long a wait for a sent statement's reply polls the socket before it sleeps in
#: the kernel. A local server replies in about 100 µs, and a process put to sleep and woken
#: by the reply lost most of that again: the inline loop on PostgreSQL ran 4,000
#: evaluations/s sleeping at once, 6,500/s polling first.
SPIN_S = 0.0003
#: After a reply that took longer than that (a loaded machine, a remote server), this many
#: waits sleep at once, so that polling does not take CPU the server could use.
SLEEP_AFTER_OVERRUN = 32


class Charger:
    """The connection that counts starts, for one engine; thread-safe."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Any = None  # SQLAlchemy's pool connection, never handed back (dropped: invalidated)
        self._lock = threading.Lock()
        self._prepared: dict[str, bytes] = {}  # statement → its name on the held connection
        self._sent: tuple[str, tuple[str | None, ...]] | None = None  # unacknowledged, to settle
        self._sleep_at_once = 0  # waits left to sleep without polling (SLEEP_AFTER_OVERRUN)

    @property
    def connection(self) -> Any:
        """The DB-API connection held now (``None`` before the first charge)."""
        return None if self._conn is None else self._conn.driver_connection

    def charge(self, sql: str, params: ChargeParams) -> None:
        """Run ``sql`` committed before it returns (after settling what was sent). A DB-API
        error drops the connection (the store's retry opens another) and is raised as
        SQLAlchemy would."""
        with self._lock:
            self._settle()
            self._run(sql, params)

    def send(self, sql: str, params: Sequence[str | None]) -> None:
        """PostgreSQL: send ``sql`` (``$n`` placeholders, each parameter as text) to run in
        autocommit, without waiting for it; the previous one sent is settled first."""
        dbapi = self.engine.dialect.loaded_dbapi
        with self._lock:
            self._settle()
            self._sent = (sql, tuple(params))
            try:
                pgconn = self._open().driver_connection.pgconn
                name = self._prepared.get(sql)
                if name is None:
                    name = f"atlas_charge_{len(self._prepared)}".encode()
                    if pgconn.prepare(name, sql.encode()).status != _command_ok():
                        raise dbapi.OperationalError(pgconn.get_error_message())
                    self._prepared[sql] = name
                pgconn.send_query_prepared(name, [None if p is None else p.encode() for p in params])
                while pgconn.flush():  # the connection is non-blocking: wait until the kernel has it all
                    _wait_for(pgconn.socket, selectors.EVENT_WRITE)
            except dbapi.Error:  # perhaps unsent: run it now, as a plain charge on a fresh connection
                self._drop()
                self._settle()

    def settle(self) -> None:
        """Wait for the statement sent last, if any, to be acknowledged; run it again as a
        plain charge where it failed or its connection dropped."""
        if self._sent is None:  # the common case, without the lock
            return
        with self._lock:
            self._settle()

    def close(self) -> None:
        """Settle (best effort) and drop the connection."""
        with self._lock:
            with contextlib.suppress(Exception):  # closing: a start still unsettled goes with the run
                self._settle()
            self._sent = None
            self._drop()

    def _settle(self) -> None:
        if self._sent is None:
            return
        if self._conn is not None and self._acknowledged():
            self._sent = None
            return
        self._drop()
        sql, params = self._sent
        try:
            self._run(sql, params)
        except (OperationalError, InterfaceError):
            raise  # still to settle: the store's retry (archive.retry) comes back here
        except DBAPIError:
            self._sent = None
            raise
        self._sent = None

    def _acknowledged(self) -> bool:
        """Read every reply of the sent statement; whether it committed."""
        pgconn = self._conn.driver_connection.pgconn
        ok = True
        try:
            pgconn.consume_input()
            if self._sleep_at_once:
                self._sleep_at_once -= 1
            else:
                spin_until = time.perf_counter() + SPIN_S
                while pgconn.is_busy() and time.perf_counter() < spin_until:
                    pgconn.consume_input()
                if pgconn.is_busy():  # a slow server: polling would only take its CPU for a while
                    self._sleep_at_once = SLEEP_AFTER_OVERRUN
            while pgconn.is_busy():  # sleep until the socket is readable
                _wait_for(pgconn.socket, selectors.EVENT_READ)
                pgconn.consume_input()
            while (result := pgconn.get_result()) is not None:
                ok = ok and result.status == _command_ok()
        except self.engine.dialect.loaded_dbapi.Error:
            return False
        return ok

    def _run(self, sql: str, params: ChargeParams | tuple[str | None, ...]) -> None:
        dbapi = self.engine.dialect.loaded_dbapi
        try:
            _commit_on(self._open().driver_connection, sql, params)
        except dbapi.Error as exc:  # the retry opens another connection
            self._drop()
            raise DBAPIError.instance(sql, params, exc, dbapi.Error) from exc

    def _open(self) -> Any:
        """The held connection, opened where there is none: SQLite's opens each charge with
        ``BEGIN IMMEDIATE`` (the driver's own transaction handling, which the pool's
        connections have off), PostgreSQL's runs with ``synchronous_commit = off`` for its
        session, in autocommit."""
        if self._conn is not None:
            return self._conn
        conn = self.engine.raw_connection()
        driver = conn.driver_connection
        if self.engine.dialect.name == "sqlite":
            driver.isolation_level = "IMMEDIATE"
        else:
            with driver.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO OFF")
            driver.commit()
            driver.autocommit = True
        self._conn = conn
        return conn

    def _drop(self) -> None:
        """Discard the held connection (invalidated: it never goes back to the pool)."""
        conn, self._conn = self._conn, None
        self._prepared.clear()
        if conn is not None:
            with contextlib.suppress(Exception):  # it may be broken already: that is why it goes
                conn.invalidate()
                conn.close()


def _commit_on(driver: Any, sql: str, params: ChargeParams | tuple[str | None, ...]) -> None:
    """One charge on the DB-API connection ``driver``, committed: SQLite's rows one by one in
    a transaction, PostgreSQL's named parameters, or a sent statement's ``$n`` text ones."""
    if isinstance(params, tuple):  # a sent statement's: PostgreSQL only
        from psycopg import RawCursor

        cursor: Any = RawCursor(driver)
    else:
        cursor = driver.cursor()
    with contextlib.closing(cursor):
        try:
            if isinstance(params, tuple | dict):
                cursor.execute(sql, params)
            elif len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
            if getattr(driver, "autocommit", False) is not True:
                driver.commit()
        except BaseException:
            driver.rollback()
            raise


def _wait_for(fd: int, event: int) -> None:
    """Sleep until ``fd`` is ready for ``event`` (any descriptor number, where ``select``
    refuses those past 1023)."""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, event)
        selector.select()


def _command_ok() -> Any:
    from psycopg import pq

    return pq.ExecStatus.COMMAND_OK
