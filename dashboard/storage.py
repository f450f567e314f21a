"""The dashboard's storage, followed while it runs: :class:`FollowedData`.

A SQLite storage is a path, and the file at that path can change under a running
dashboard: removed (``rm atlas.db``), or replaced by another (``mv new.db atlas.db``, a
backup restored). Pooled connections keep the file they opened, so without a check the
dashboard went on answering from a deleted file, or from the old and the new file in turn.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

from archive.engine import parse_storage_url, sqlite_file
from archive.errors import StorageError
from archive.store import Store
from dashboard.data import DashboardData


def file_identity(path: Path) -> tuple[int, int] | None:
    """The ``(device, inode)`` of the regular file at ``path``, or ``None`` when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _sqlite_path(store: Store) -> Path | None:
    """The absolute path of ``store``'s SQLite file (``None``: PostgreSQL, or in memory)."""
    path = sqlite_file(parse_storage_url(store.url))
    return None if path is None else path.resolve()


class FollowedData:
    """The read model (:class:`DashboardData`) over the storage as it is *now*; every
    attribute is that of the current model.

    Rules, for a SQLite storage (PostgreSQL is passed through unchecked), checked at each use
    (one ``stat`` of the file, about a microsecond):

    - the file is **gone**: every request is a ``503`` (:class:`StorageError`, one line), never
      rows of the deleted file that pooled connections still hold open; once a file is back at
      the path, it is served as a replaced one;
    - the file was **replaced** (another ``(device, inode)`` at the path): the storage is opened
      again on the new file, checked as at start-up (an archive at this schema revision), with
      caches of its own, and the old one is closed; no answer mixes the two files. A new file
      that cannot be served is a ``503`` with the reason, tried again at the next request.
    """

    def __init__(self, store: Store, owned: bool) -> None:
        self._data = DashboardData(store)
        self._owned = owned
        self._path = _sqlite_path(store)
        self._identity = None if self._path is None else file_identity(self._path)
        self._lock = threading.Lock()

    def current(self) -> DashboardData:
        """The read model over the file at the storage's path now (see the class's rules)."""
        if self._path is None:
            return self._data
        identity = file_identity(self._path)
        if identity != self._identity:
            self._follow(identity)
        return self._data

    def _follow(self, identity: tuple[int, int] | None) -> None:
        """Refuse a missing file; open a replaced one, once, however many requests find it."""
        if identity is None:
            raise StorageError(f"the storage file {self._path} was removed while the dashboard ran; it is served "
                               f"again once an archive is back at that path")
        with self._lock:
            if identity == self._identity:  # another request has opened it meanwhile
                return
            store = Store(self._data.store.url, readonly=True)  # a StorageError (a 503) if it cannot be served
            old, self._data, self._identity = self._data, DashboardData(store), file_identity(self._path)
            if self._owned:
                old.store.close()
            self._owned = True

    def close(self) -> None:
        """Close the storage, if opened here (a :class:`Store` given to the app is the caller's)."""
        if self._owned:
            self._data.store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.current(), name)
