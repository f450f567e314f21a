"""Open a storage for the dashboard: checked at start-up, and read-only from then on.

The dashboard never writes: it opens the archive as every read command does
(:class:`~archive.store.Store` with ``readonly=True``, see :mod:`archive.engine`), which
refuses a missing file, a database with no archive and one at another schema revision
with a :class:`~archive.errors.StorageError` before any server starts, and makes every
connection unable to write.
"""

from __future__ import annotations

from archive.engine import _scripts, first_line, shown_url
from archive.store import Store

__all__ = ["_scripts", "check_storage", "first_line", "open_readonly", "shown_url"]


def open_readonly(url: str) -> Store:
    """A :class:`Store` over an existing, up-to-date archive whose connections cannot write."""
    return Store(url, readonly=True)


def check_storage(url: str) -> None:
    """Raise :class:`~archive.errors.StorageError` unless ``url`` holds an up-to-date
    archive this process can read."""
    open_readonly(url).close()
