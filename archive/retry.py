"""Retrying a store transaction while the database is unreachable, and only then.

A whole transaction is retried with backoff (0.2 s doubling to 5 s) for up to the store's
``retry_s`` (``ATLAS_DB_RETRY_S``, 120 s by default) while the database restarts, drops a
connection or keeps a SQLite file locked. Errors no retry can mend (:data:`PERMANENT`: a
read-only file, a refused user, a missing schema, table or column) are raised at once as
:class:`~archive.errors.StorageError`, and a full storage (:func:`is_full`: SQLite's
``database or disk is full``, PostgreSQL's ``disk_full``) as
:class:`~archive.errors.StorageFull`, naming the file or server and where to free space:
it had been retried as if the database were away, then reported as "lost the storage".
PostgreSQL's other shortages, ``out_of_memory`` (53200) and ``too_many_connections``
(53300), pass as the server frees memory or connections: they are retried.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DatabaseError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from archive.engine import first_line, parse_storage_url, shown_url, sqlite_file
from archive.errors import StorageError, StorageFull

log = logging.getLogger("entropy_atlas.store")

# Errors no retry can mend: the file or database refuses this user, not the network.
PERMANENT = ("readonly database", "read-only", "permission denied", "unable to open database file",
             "file is not a database", "malformed", "no such table", "no such column", "does not exist",
             "password authentication failed", "authentication failed")


def is_permanent(exc: DBAPIError) -> bool:
    """Whether retrying ``exc`` cannot help (a read-only file, a refused user, no schema)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(marker in text for marker in PERMANENT)


#: SQLite's primary result code for a full database (``SQLITE_FULL``: its disk, or ``max_page_count``).
SQLITE_FULL = 13
#: PostgreSQL's SQLSTATE ``disk_full``.
PG_DISK_FULL = "53100"
#: How a full disk reads where no code comes with the error (a PostgreSQL connection's ``FATAL``).
FULL = ("database or disk is full", "no space left on device")


def is_full(exc: BaseException) -> bool:
    """Whether ``exc`` (a DB-API error, or SQLAlchemy's around one) says the storage has no
    room left: SQLite's ``SQLITE_FULL`` (extended codes included), PostgreSQL's SQLSTATE
    53100, or a message that says so (:data:`FULL`)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
        return True
    if getattr(orig, "sqlstate", None) == PG_DISK_FULL:
        return True
    text = str(orig).lower()
    return any(marker in text for marker in FULL)


def full_error(url: str, exc: BaseException, then: str = "run again") -> StorageFull:
    """:class:`StorageFull` for ``exc`` on storage ``url``: the storage, the database's own
    words, and where to free space: a SQLite file's disk (with what it has free now, which
    tells a full disk from a file at SQLite's ``max_page_count``), or the PostgreSQL server's."""
    path = sqlite_file(parse_storage_url(url))
    if path is None:
        return StorageFull(f"storage {shown_url(url)} is full: {first_line(exc)} (the database server's disk)",
                           "on the database server", then)
    path = path.resolve()
    try:
        free = f"has {byte_size(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = "is full"
    return StorageFull(f"storage {shown_url(url)} is full: {first_line(exc)} (the disk holding {path} {free})",
                       "there", then)


def byte_size(n: int) -> str:
    """``n`` bytes as a person reads it: ``0 bytes``, ``512 bytes``, ``4.1 kB``, ``52.3 GB``."""
    if n < 1000:
        return f"{n} bytes"
    size = float(n)
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 999.95:
            return f"{size:.1f} {unit}"
    return f"{size / 1000:.1f} TB"


def unique_violation(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a unique key's violation (PostgreSQL's SQLSTATE 23505, SQLite's
    ``UNIQUE constraint failed``), not a NOT NULL, foreign key or check constraint's."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) is not None:
        return orig.sqlstate == "23505"
    return "unique constraint failed" in str(orig).lower()


def gave_up(url: str, retry_s: float, exc: BaseException, waited_s: float) -> StorageError:
    """The error once retries of ``exc`` ran out (``retry_s``; ``waited_s`` in all): "lost
    the storage", except a SQLite file whose write lock another process held throughout
    (``database is locked``), which was not lost: it names the file, how long it waited
    (each try waits SQLite's busy timeout, 30 s, on top of ``retry_s``), the likely holder
    (a paused or hung process: a run paused with Ctrl-Z or ``SIGSTOP`` inside its write
    keeps the lock, and every other writer of the file waits for it) and what to do."""
    path = sqlite_file(parse_storage_url(url))
    if path is not None and "database is locked" in str(getattr(exc, "orig", exc)).lower():
        return StorageError(f"storage {shown_url(url)} stayed locked for {waited_s:.1f} s: another process held its "
                            "write lock throughout (likely an atlas command paused with Ctrl-Z or SIGSTOP, or hung); "
                            "continue that process (`fg`, `kill -CONT PID`) or end it, then run again")
    return StorageError(f"lost the storage for {retry_s:g} s: {first_line(exc)}")


def reconnecting(method: Callable[..., Any]) -> Callable[..., Any]:
    """Retry a whole transaction while the database is unreachable (a restart, a dropped
    connection, a locked SQLite file), with backoff, for up to ``retry_s`` seconds.

    Each store method is one transaction, so running it again is safe; ``add_pending``
    recognises rows that an attempt committed before its connection dropped. Permanent
    errors (:data:`PERMANENT`: a read-only file, a refused user) are raised at once as
    :class:`StorageError`, a full storage (:func:`is_full`) as :class:`StorageFull`, never
    retried; the failed transaction is rolled back, what committed before stays.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.monotonic()
        deadline = began + self.retry_s
        delay = 0.2
        while True:
            try:
                return method(self, *args, **kwargs)
            except (OperationalError, InterfaceError, DatabaseError) as exc:
                if isinstance(exc, IntegrityError):
                    raise
                if is_full(exc):
                    raise full_error(self.url, exc) from None
                if is_permanent(exc) or not isinstance(exc, OperationalError | InterfaceError):
                    raise StorageError(f"storage {shown_url(self.url)}: {first_line(exc)}") from None
                if time.monotonic() + delay > deadline:
                    raise gave_up(self.url, self.retry_s, exc, time.monotonic() - began) from None
                log.warning("storage unavailable (%s); retrying in %.1f s", first_line(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    return wrapper
