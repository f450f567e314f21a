"""Retrying a store transaction while the database is unreachable, and only then.

A whole transaction is retried with backoff (0.2 s doubling to 5 s) for up to the store's
``retry_s`` (``ATLAS_DB_RETRY_S``, 120 s by default) while the database restarts, drops a
connection or keeps a SQLite file locked. Errors no retry can mend (:data:`PERMANENT`: a
read-only file, a refused user, a missing schema, table or column) are raised at once as
:class:`~archive.errors.StorageError`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import DatabaseError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from archive.engine import first_line, shown_url
from archive.errors import StorageError

log = logging.getLogger("entropy_atlas.store")

# Errors no retry can mend: the file or database refuses this user, not the network.
PERMANENT = ("readonly database", "read-only", "permission denied", "unable to open database file",
             "file is not a database", "malformed", "no such table", "no such column", "does not exist",
             "password authentication failed", "authentication failed")


def is_permanent(exc: DBAPIError) -> bool:
    """Whether retrying ``exc`` cannot help (a read-only file, a refused user, no schema)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return any(marker in text for marker in PERMANENT)


def unique_violation(exc: IntegrityError) -> bool:
    """Whether ``exc`` is a unique key's violation (PostgreSQL's SQLSTATE 23505, SQLite's
    ``UNIQUE constraint failed``), not a NOT NULL, foreign key or check constraint's."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) is not None:
        return orig.sqlstate == "23505"
    return "unique constraint failed" in str(orig).lower()


def reconnecting(method: Callable[..., Any]) -> Callable[..., Any]:
    """Retry a whole transaction while the database is unreachable (a restart, a dropped
    connection, a locked SQLite file), with backoff, for up to ``retry_s`` seconds.

    Each store method is one transaction, so running it again is safe; ``add_pending``
    recognises rows that an attempt committed before its connection dropped. Permanent
    errors (:data:`PERMANENT`: a read-only file, a refused user) are raised at once as
    :class:`StorageError`, never retried.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.retry_s
        delay = 0.2
        while True:
            try:
                return method(self, *args, **kwargs)
            except (OperationalError, InterfaceError, DatabaseError) as exc:
                if isinstance(exc, IntegrityError):
                    raise
                if is_permanent(exc) or not isinstance(exc, OperationalError | InterfaceError):
                    raise StorageError(f"storage {shown_url(self.url)}: {first_line(exc)}") from None
                if time.monotonic() + delay > deadline:
                    raise StorageError(f"lost the storage for {self.retry_s:g} s: {first_line(exc)}") from None
                log.warning("storage unavailable (%s); retrying in %.1f s", first_line(exc), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    return wrapper
