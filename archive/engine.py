"""Opening a storage: the URL, the engine, the schema, and the read-only mode.

Rules:

- A storage URL is ``sqlite:///FILE`` or ``postgresql+psycopg://USER@HOST/DB``; anything
  else (a typo such as ``sqlit://``, ``mysql://``) is a :class:`StorageError` naming the
  two forms, raised before anything is created. Where the backend is a near miss
  (``postgres+psycopg://``, ``sqlit://``) it names the URL meant; where the URL's driver is
  not installed (``postgresql+psycopg2://``, or ``postgresql://``, whose default that is) it
  names the URL of the driver this install has (``postgresql+psycopg://``). These errors
  about the URL itself are :class:`~archive.errors.StorageURLError`.
- Opening **for writing** creates a missing SQLite file and applies the Alembic migrations
  up to head. Its folder must exist: a missing one is refused, named, before anything is
  made (:func:`new_file_problem`); it had been created, so that a typo in the path
  (``sqlite:////nonexist/dir/x.db``) made a new, empty archive where nobody would look.
  Where a SQLite path of three slashes (relative to the working folder) names nothing there
  but its absolute reading does (``sqlite:///tmp/x.db``: ``/tmp/x.db``), the error names the
  URL of four slashes (:func:`absolute_hint`). Opening for writing refuses a database that
  holds another application's tables (no ``alembic_version`` of ours), and one at a schema
  revision this version does not know (written by a newer Entropy Atlas).
- Every engine reads ``ATLAS_DB_LOCK_TIMEOUT_S``, SQLite's too (which does not use it): a
  malformed one is refused on every storage, before anything is made.
- Opening **read-only** (``status``, ``elites``, ``export``, ``map``, the dashboard)
  creates nothing and migrates nothing: a missing file, a database with no archive in it
  and an archive at an older or newer revision are each refused with the reason, and
  every connection is made unable to write (SQLite ``mode=ro`` and ``PRAGMA query_only``,
  PostgreSQL ``default_transaction_read_only``).
- An ``alembic_version`` at this version's head is not enough: another application's
  Alembic database may be at a revision of the same name (``0005``). Either way, at head
  the tables and columns this version reads must be there (:func:`check_tables`, one
  ``SELECT`` of no rows); where one is missing the database is refused as another
  application's, at once, before anything is written.
- A read-only opening of a SQLite file in WAL mode makes its ``-wal`` and ``-shm`` where none
  were (SQLite needs them to read), and cannot remove them on closing as the last writer does
  (that takes a checkpoint, a write): they had stayed after every read command. Its engine
  removes them once its last connection closes (:func:`remove_side_files`), as that writer
  would: only while no connection anywhere has the database open (a live run's stay its
  own), and only where the WAL is empty (a writer's pages not yet copied stay with it). The
  database file is never written. A connection dropped unclosed is closed as it goes, and
  those still pooled as the process exits are closed then (:func:`_close_at_exit`): the
  Python API's ``archive.open(url).campaign(name)``, never closed, had left both files after
  its script ended, and one dropped had kept every later reading of the process from tidying.
- A writer that closes (the end of ``atlas run``/``resume``/``delete``) copies the WAL into
  the database file and empties it (:func:`checkpoint_wal`), without waiting on anyone.
  SQLite does that itself only as the last connection anywhere closes: a run that ended
  while the dashboard or a read command held the file had left its last results in
  ``-wal`` beside a stale ``atlas.db`` (the campaign ``running``, hundreds of evaluations
  short) after every process exited, for a copy of the file alone to lose; and the reader,
  never writing, could not remove a WAL that held pages.
- SQLite runs in WAL mode with a busy timeout; write transactions begin with
  ``BEGIN IMMEDIATE`` (execution option ``atlas_write``), so a read never has to upgrade.
  PostgreSQL statements wait at most ``ATLAS_DB_LOCK_TIMEOUT_S`` (15 s) for a lock
  (``lock_timeout``, unless the URL's ``options`` set one): a table another session
  holds locked fails the statement, and the store retries it as it retries an unreachable
  database, for up to ``ATLAS_DB_RETRY_S``, then stops with one error, where it had
  waited silently for as long as the lock was held.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shlex
import sqlite3
import struct
import sys
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import QueuePool

from archive.errors import NoArchive, SchemaBehind, StorageError, StorageURLError
from entropy_atlas import settings
from entropy_atlas.names import closest_name
from entropy_atlas.settings import DEFAULT_STORAGE, default_storage  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # alembic takes a tenth of a second or more to import; read commands need it only off head
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
URL_FORMS = "sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"
BACKENDS = ("sqlite", "postgresql")
#: How long a statement waits for another connection's lock on a SQLite file.
BUSY_TIMEOUT_MS = 30_000


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def from_atlas_storage(url: str, message: str) -> str:
    """``message``, an error about storage URL ``url``, said to come from ``$ATLAS_STORAGE``
    (its password hidden): where no ``--storage`` is given, the variable is not in sight
    (``ATLAS_STORAGE=sqlit:///x: unsupported storage 'sqlit' …``)."""
    return f"ATLAS_STORAGE={shown_url(url)}: {message}"


def first_line(exc: BaseException) -> str:
    """The first line of a database error's message (the driver's own, when wrapped)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


#: the endings of a SQLite file's name that make a bare name (``atlas.db``) read as a file's path
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3", ".db3")


def _url_hint(url: str) -> str:
    """What to use instead of ``url``, which is not a URL: where it reads as a file's path
    (no ``://``, and a ``/`` in it, a SQLite file's ending or an existing file), that file's
    SQLite URL, ``sqlite:///`` + the path (``/tmp/x.db`` -> ``sqlite:////tmp/x.db``);
    else the forms a URL takes (:data:`URL_FORMS`)."""
    try:
        a_file = Path(url).is_file()
    except (OSError, ValueError):  # a name too long for the file system
        a_file = False
    if "://" not in url and ("/" in url or Path(url).suffix.lower() in SQLITE_SUFFIXES or a_file):
        return f"sqlite:///{quote(url, safe='/~')} for that SQLite file"
    return URL_FORMS


#: near misses of a backend's name, and the backend meant (other misspellings: :func:`_meant_backend`)
BACKEND_ALIASES = {"postgres": "postgresql", "postgre": "postgresql", "pgsql": "postgresql", "psql": "postgresql",
                   "pg": "postgresql", "sqlite3": "sqlite", "sqllite": "sqlite"}
#: the scheme of each backend with the driver this install uses, as a URL names it
DRIVER_URLS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _meant_backend(backend: str) -> str | None:
    """The backend of :data:`BACKENDS` that ``backend`` is a near miss of (``postgres``,
    ``sqlit``), or None (``mysql``)."""
    if backend in BACKEND_ALIASES:
        return BACKEND_ALIASES[backend]
    return closest_name(backend, BACKENDS, cutoff=0.75)


def with_driver(url: str, backend: str) -> str:
    """``url`` (its password hidden) with its scheme replaced by ``backend``'s with this
    install's driver (:data:`DRIVER_URLS`): ``postgres+psycopg2://u@h/db`` ->
    ``postgresql+psycopg://u@h/db``."""
    return f"{DRIVER_URLS[backend]}://{shown_url(url).partition('://')[2]}"


def parse_storage_url(url: str) -> URL:
    """The parsed URL; a :class:`StorageURLError` unless it is SQLite or PostgreSQL (naming
    the URL meant, where the backend is a near miss of one)."""
    if "\x00" in url:
        raise StorageURLError(f"not a storage URL: {url!r} holds a NUL character")
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  (a port that is not a number raises here, not at connect)
    except (ArgumentError, ValueError):
        raise StorageURLError(f"not a storage URL: {url!r}; use {_url_hint(url)}") from None
    if "\x00" in str(parsed.database or ""):  # %00, decoded
        raise StorageURLError(f"not a storage URL: {url!r} names a database with a NUL character")
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        meant = _meant_backend(backend)
        instead = f"did you mean {with_driver(url, meant)}?" if meant is not None else f"use {URL_FORMS}"
        raise StorageURLError(f"unsupported storage {backend!r} in {shown_url(url)}; {instead}")
    return parsed


def sqlite_file(parsed: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def make_engine(url: str, readonly: bool = False) -> Engine:
    """An engine for ``url`` (see the module's rules); nothing is connected yet."""
    parsed = parse_storage_url(url)
    lock_timeout_s = settings.db_lock_timeout_s()  # on every storage: a malformed one is refused on SQLite too
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, readonly)
        given = parsed.query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else given
        options = [given]
        if "lock_timeout" not in (given or ""):
            options.append(f"-c lock_timeout={round(lock_timeout_s * 1000)}")
        if readonly:
            options.append("-c default_transaction_read_only=on")
        connect_args: dict[str, Any] = {"connect_timeout": 5, "options": " ".join(filter(None, options))}
        parsed = parsed.difference_update_query(["options"])
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except (NoSuchModuleError, ImportError) as exc:
        raise driver_missing(url, parsed, exc) from None


def driver_missing(url: str, parsed: URL, exc: Exception) -> StorageURLError:
    """The error of storage ``url`` whose driver cannot be loaded (``postgresql+psycopg2://``,
    or ``postgresql://``, whose default driver that is): the URL with the driver this install
    has (where psycopg itself is missing, how to install it too)."""
    import importlib.util

    backend = parsed.get_backend_name()
    said = f"cannot open storage {shown_url(url)}: its driver {parsed.get_driver_name()} is not installed ({exc})"
    if backend == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return StorageURLError(f"{said}; install psycopg (pip install 'psycopg[binary]') and use "
                               f"{with_driver(url, backend)}")
    return StorageURLError(f"{said}; use {with_driver(url, backend)}, the driver this install has")


# -- the side files of a read-only opening --------------------------------------------------
#: SQLite's lock bytes in a database file (its unix VFS): PENDING, RESERVED and SHARED's 510. A
#: connection in WAL mode holds a read lock on SHARED's from its first read until it closes.
SQLITE_LOCKS = (0x40000000, 512)
SIDE_SUFFIXES = ("-wal", "-shm")
_FLOCK = "hhqqi4x"  # struct flock of 64-bit Linux: type, whence, start, length, pid (0 for an OFD lock)

# Reentrant: a connection dropped unclosed is counted out from its finalizer, which the
# garbage collector may run inside this lock's block, on the same thread (while another
# connection is counted in); a plain lock deadlocked there.
_open_lock = threading.RLock()
_open: Counter[Path] = Counter()  # database file -> connections made here open on it, in this process
_parked: list[int] = []  # descriptors never closed: closing one would drop this process's locks on its file


#: read-only SQLite engines of this process (their creator's pid: a forked child's are its parent's)
_readonly_engines: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


@atexit.register
def _close_at_exit() -> None:
    """Close the pooled connections of this process's read-only SQLite engines as it exits,
    so that the last one tidies the side files (:func:`remove_side_files`): an engine never
    disposed had its connections dropped by the interpreter without their ``close``. One in
    use at exit (checked out of its pool) is left as it is."""
    for engine, pid in list(_readonly_engines.items()):
        if pid == os.getpid():
            engine.dispose()


def side_files(path: Path) -> list[Path]:
    """The WAL and shared-memory files SQLite keeps beside ``path`` while it is open in WAL mode."""
    return [path.with_name(path.name + suffix) for suffix in SIDE_SUFFIXES]


def counted_connection(path: Path, tidy: bool) -> type[sqlite3.Connection]:
    """The :class:`sqlite3.Connection` class of an engine of ``path``: its connections are
    counted while open (:data:`_open`, all engines of this process). With ``tidy`` (a
    read-only engine), the last connection to ``path`` to close removes its side files
    (:func:`remove_side_files`)."""

    class Counted(sqlite3.Connection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            with _open_lock:
                _open[path] += 1
            self.counted = True
            try:
                super().__init__(*args, **kwargs)
            except BaseException:
                self.uncount()
                raise

        def close(self) -> None:
            super().close()
            self.uncount()

        def __del__(self) -> None:
            # Dropped unclosed (its engine never disposed): closed now, as the interpreter would
            # close it, but counted out too. Left counted, it kept every later reading of this
            # process from tidying, a closed one included.
            try:  # noqa: SIM105  (not contextlib.suppress: module globals may be gone as the interpreter shuts down)
                self.close()
            except Exception:  # never initialised, or the interpreter shutting down
                pass

        def uncount(self) -> None:
            if not self.__dict__.pop("counted", False):
                return
            with _open_lock:  # no connection of this process opens meanwhile
                _open[path] -= 1
                if _open[path] <= 0:
                    del _open[path]
                    if tidy:
                        remove_side_files(path)

    return Counted


def remove_side_files(path: Path) -> list[Path]:
    """Remove ``path``'s side files (:func:`side_files`) as SQLite's last connection to close
    removes them, which a read-only one cannot (it may not checkpoint): only under a write
    lock on :data:`SQLITE_LOCKS` (an open file description's: any other connection's lock
    refuses it, one of this process's too), so only while no connection anywhere has the
    database open in WAL mode, and none opens it meanwhile; and only where the WAL holds
    nothing (a writer's pages not yet copied stay for a writer to copy). The database is
    opened for writing only to take that lock, never written. Nothing is removed where this
    process holds a lock on it (closing any descriptor of a file drops all its process's
    locks on it), nor where the lock cannot be had (the file not writable, a system without
    such locks). The paths removed."""
    there = [p for p in side_files(path) if p.exists()]
    if not there or _locked_here(path):
        return []
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return []
    if not _lock(fd, write=True):
        if _locked_here(path):  # taken since the look above: this descriptor must stay open
            _parked.append(fd)
        else:
            os.close(fd)
        return []
    try:
        return [p for p in there if _unlinked(p)] if _wal_empty(path) else []
    finally:
        _lock(fd, write=False)
        os.close(fd)


def _lock(fd: int, write: bool) -> bool:
    """Take (``write``) or release an open file description's write lock on :data:`SQLITE_LOCKS`
    of ``fd``'s file, without waiting; False where it is refused or no such lock exists here."""
    if not sys.platform.startswith("linux") or sys.maxsize < 2**32:  # _FLOCK is 64-bit Linux's
        return False
    import fcntl

    kind = fcntl.F_WRLCK if write else fcntl.F_UNLCK
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack(_FLOCK, kind, os.SEEK_SET, *SQLITE_LOCKS, 0))
    except OSError:
        return False
    return True


def _locked_here(path: Path) -> bool:
    """Whether this process holds a lock on ``path``'s file (``/proc/locks``: its pid and
    inode; the device is left out, which overlay file systems show apart); True where that
    cannot be read."""
    try:
        inode = str(path.stat().st_ino)
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return True
    pid = str(os.getpid())
    for line in lines:
        fields = [f for f in line.split() if f != "->"]  # "->": a lock waited for
        if len(fields) > 5 and fields[4] == pid and fields[5].rsplit(":", 1)[-1] == inode:
            return True
    return False


def _wal_empty(path: Path) -> bool:
    """Whether ``path``'s WAL is missing or of no bytes."""
    try:
        return path.with_name(path.name + "-wal").stat().st_size == 0
    except FileNotFoundError:
        return True


def _unlinked(path: Path) -> bool:
    """Whether ``path`` was there, and is removed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def missing_file(url: str, path: Path) -> StorageError | None:
    """The error of reading SQLite file ``path`` of storage ``url`` where it is no regular
    file (``cannot open storage URL: the file PATH does not exist; …``); None where it is one.
    A read-only opening raises it, and so does a read of a handle whose file has vanished since."""
    if path.is_file():
        return None
    missing = "is not a regular file" if path.exists() else f"does not exist; {missing_hint(path)}"
    return StorageURLError(f"cannot open storage {url}: the file {path} {missing}")


def missing_hint(path: Path) -> str:
    """What to do where SQLite file ``path`` is not there to read: its URL of four slashes
    where it is relative and its absolute reading is a file (:func:`absolute_hint`), else
    :data:`~entropy_atlas.settings.NO_STORAGE_HINT`."""
    return absolute_hint(path) or settings.NO_STORAGE_HINT


def absolute_hint(path: Path, folder: bool = False) -> str | None:
    """Where ``path`` (not there) is relative and ``/`` + ``path`` is a file (``folder``: the
    folder a new file goes in), the URL of four slashes that names it: ``sqlite:///tmp/x.db``
    read ``tmp/x.db`` in the working folder, where ``/tmp/x.db`` was meant. Else None."""
    if path.is_absolute():
        return None
    absolute = Path("/") / path
    try:
        there = absolute.parent.is_dir() if folder else absolute.is_file()
        here = Path.cwd()
    except OSError:  # a name too long; a working folder removed
        return None
    if not there:
        return None
    return (f"three slashes make a path relative to the working folder ({here}); for {absolute} use four: "
            f"sqlite:///{quote(str(absolute), safe='/~')}")


def host_and_file_problem(parsed: URL) -> str:
    """SQLite URL ``parsed`` with a host and a file (``sqlite://tmp/x.db``: two slashes make
    ``tmp`` a host, which SQLite ignores, and would open ``x.db`` in the working folder): the
    refusal, with the URLs of the path meant, absolute and relative."""
    meant = f"{parsed.host}/{parsed.database}"
    return (f"{parsed} names a host ({parsed.host}), which SQLite ignores: it would open {parsed.database} in the "
            f"working folder; for the file {meant} write {parsed.drivername}:///{meant} (relative to the working "
            f"folder) or {parsed.drivername}:////{meant} (absolute)")


def two_slashes_hint(parsed: URL) -> str | None:
    """Where SQLite URL ``parsed`` names a host and no file (``sqlite://x.db``: two slashes
    make ``x.db`` a host, which SQLite ignores, and the database in-memory), the URLs of
    three and four slashes that name it as a file: ``sqlite:///x.db`` relative to the
    working folder, ``sqlite:////abs/x.db`` absolute. Else None."""
    if not parsed.host or sqlite_file(parsed) is not None:
        return None
    name = quote(parsed.host, safe="/~")
    try:
        here = f" ({Path.cwd()})"
    except OSError:  # the working folder removed
        here = ""
    return (f"two slashes read {parsed.host} as a host, not a file; use three for a file relative to the working "
            f"folder{here}, {parsed.drivername}:///{name}, or four for an absolute path, "
            f"{parsed.drivername}:////abs/{name}")


def new_file_problem(url: str, path: Path) -> StorageURLError | None:
    """Why SQLite file ``path`` of storage ``url`` cannot be opened for writing, found before
    anything is made: a path there that is no regular file, a file where one of its folders
    belongs, or its folder missing (never made: a typo in the path had created a new, empty
    archive where nobody would look; see :func:`absolute_hint`). None where ``path`` is a
    file, or may be created in its folder."""
    try:
        if path.exists():
            return None if path.is_file() else StorageURLError(f"cannot open storage {url}: {path} is not a "
                                                               f"regular file")
        if path.parent.is_dir():
            return None
        blocker = next((a for a in reversed(path.parents) if a.exists() and not a.is_dir()), None)
    except OSError as exc:  # a name too long for the file system, and the like
        return StorageURLError(f"cannot open storage {url}: {exc.strerror or exc}")
    if blocker is not None:
        return StorageURLError(f"cannot open storage {url}: {blocker} is a file, not a folder")
    hint = (absolute_hint(path, folder=True)
            or f"create it first (mkdir -p {shlex.quote(str(path.parent))}), or correct the path")
    return StorageURLError(f"cannot open storage {url}: the folder {path.parent} does not exist; {hint}")


def _sqlite_engine(parsed: URL, readonly: bool) -> Engine:
    if parsed.query:  # ?mode=ro was warned about by SQLAlchemy, then ignored: the file was written
        options = "&".join(f"{k}={v}" for k, v in parsed.query.items())
        raise StorageURLError(f"a SQLite storage takes no URL options (got {options}): read commands (status, "
                              f"elites, export, map, dashboard, …) open it read-only themselves")
    path = sqlite_file(parsed)
    if path is not None and parsed.host:
        raise StorageURLError(host_and_file_problem(parsed))
    if path is None:
        if (slashes := two_slashes_hint(parsed)) is not None:
            raise StorageURLError(f"{parsed} is an in-memory database: {slashes}")
        if readonly:
            raise StorageURLError(f"{parsed} is an in-memory database: nothing to read")
        raise StorageURLError(f"{parsed} is an in-memory database: what a run writes would go with it; name a "
                              f"file (sqlite:///atlas.db)")
    elif readonly:
        if (problem := missing_file(str(parsed), path)) is not None:
            raise problem
        # escaped: a "#" or "?" in a folder's name ended the path, and the rest (mode=ro with
        # it) was dropped: the file opened was another, created for writing where missing
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        counted = counted_connection(path.resolve(), tidy=True)
        # A pool of its own per thread's use: "sqlite://" would get a SingletonThreadPool, which
        # closes other threads' connections while the dashboard's threads still use them.
        engine = create_engine("sqlite://", poolclass=QueuePool,
                               creator=lambda: sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False,
                                                               factory=counted))
        _readonly_engines[engine] = os.getpid()
    else:
        if (problem := new_file_problem(str(parsed), path)) is not None:  # its folder is never made
            raise problem
        engine = create_engine(parsed.set(database=str(path.resolve())),  # ~ expanded; a later chdir changes nothing
                               connect_args={"timeout": 30, "check_same_thread": False,
                                             "factory": counted_connection(path.resolve(), tidy=False)})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()  # WAL is set once the file is known to be ours (use_wal)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        if readonly:
            cur.execute("PRAGMA query_only=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("atlas_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def use_wal(engine: Engine) -> None:
    """Put a SQLite file in WAL mode (persistent: every later connection reads it), once
    :func:`check_schema` has found it empty or ours; another application's file is refused
    before its journal mode changes. Nothing for PostgreSQL or an in-memory database."""
    if engine.dialect.name != "sqlite" or sqlite_file(engine.url) is None:
        return
    raw = engine.raw_connection()  # outside a transaction: the journal mode cannot change inside one
    try:
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:  # as SQLAlchemy raises it: the opening names it (a full disk had been a traceback)
        raise DBAPIError.instance("PRAGMA journal_mode=WAL", None, exc, sqlite3.Error) from exc
    finally:
        raw.close()


#: How many times a closing writer tries to empty the WAL (:func:`checkpoint_wal`), and the pause between tries.
CHECKPOINT_TRIES = 25
CHECKPOINT_PAUSE_S = 0.02


def checkpoint_wal(engine: Engine, tries: int = CHECKPOINT_TRIES) -> bool:
    """Copy a SQLite file's WAL into the database file and truncate it to nothing
    (``PRAGMA wal_checkpoint(TRUNCATE)``), as its writer closes; whether it is empty now.

    Each try waits on no one (busy timeout 0): another process's write or a reader's
    transaction under way makes it a partial checkpoint that holds no lock once it returns,
    and the next try comes :data:`CHECKPOINT_PAUSE_S` later, so a run sharing the file is
    never held up for longer than one checkpoint's copying. Where every try finds the file
    busy, another writer is at work (its own close empties the WAL) or a read outlasted the
    tries: the WAL stays, whole, for the next writer. Never raises (a full disk, a file gone:
    the WAL stays as it was); nothing for PostgreSQL or an in-memory database."""
    if engine.dialect.name != "sqlite" or sqlite_file(engine.url) is None:
        return False
    try:
        raw = engine.raw_connection()
    except DBAPIError:
        return False
    try:
        conn = raw.driver_connection
        conn.execute("PRAGMA busy_timeout=0")
        try:
            for attempt in range(tries):
                if attempt:
                    time.sleep(CHECKPOINT_PAUSE_S)
                busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy:
                    return True
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except sqlite3.Error:
        return False
    finally:
        raw.close()


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for a revision it does not know
        return False


def schema_revision(engine: Engine, url: str) -> tuple[str | None, list[str]]:
    """The archive's Alembic revision (None: no archive) and the tables the database has,
    read in one snapshot. Several revisions at once (a branched history: our migrations are
    one line) are another application's database, refused as such.

    On PostgreSQL both reads see one snapshot (``REPEATABLE READ``): each statement of a
    ``READ COMMITTED`` transaction sees its own, and a process reading as another committed
    the new database's schema found no revision, then that schema's tables, and refused
    them as another application's (1 of 3 processes opening one new database at once)."""
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            heads = MigrationContext.configure(conn).get_current_heads()
            tables = inspect(conn).get_table_names()
    except DBAPIError as exc:
        raise StorageError(_unreachable(url, exc)) from None
    if len(heads) > 1:
        raise StorageError(f"storage {shown_url(url)} holds another application's database (its schema is at "
                           f"{len(heads)} revisions at once: {', '.join(sorted(heads))}); give Entropy Atlas a "
                           f"database of its own")
    return (heads[0] if heads else None), tables


def _unreachable(url: str, exc: DBAPIError) -> str:
    text = first_line(exc)
    if "file is not a database" in text or "malformed" in text:
        return f"{shown_url(url)} is not an SQLite database an archive can live in ({text})"
    return f"cannot open storage {shown_url(url)}: {text}"


#: the advisory lock key of :func:`migrate` on PostgreSQL (a database-wide 64-bit key: "atlasmig")
MIGRATION_LOCK = int.from_bytes(b"atlasmig", "big") - 2**63


def check_schema(engine: Engine, url: str, readonly: bool) -> str | None:
    """The archive's schema revision (None: an empty database), or a :class:`StorageError`
    unless the schema is one this version may use.

    Written databases may be empty (they are migrated next) or at an older revision;
    read-only ones must be at head. A newer revision, or another application's tables
    without our revision table, is always refused.
    """
    if readonly:
        found = _stored_revision(engine, url)  # one unreachable database is one connect timeout
        if found is not None and found == script_head():
            check_tables(engine, url, found)
            return found
    current, tables = schema_revision(engine, url)
    shown = shown_url(url)
    scripts = _scripts()
    head = scripts.get_current_head()
    if current is None:
        foreign = StorageError(f"storage {shown} holds another application's tables "
                               f"({', '.join(sorted(tables)[:5])}); give Entropy Atlas a database of its own"
                               ) if tables else None
        if readonly:
            held = f" (it holds another application's tables: {', '.join(sorted(tables)[:5])})" if tables else ""
            raise NoArchive(f"storage {shown} holds no Entropy Atlas archive{held}; "
                            f"run a campaign into it first with `atlas run SPEC --storage URL`", foreign=foreign)
        if foreign is not None:
            raise foreign
        return None
    if current != head and not _known(scripts, current) and "campaigns" not in tables:
        raise StorageError(f"storage {shown} holds another application's database (its schema revision "
                           f"{current}; tables {', '.join(sorted(tables)[:5])}); give Entropy Atlas a database "
                           f"of its own")
    if current != head and not _known(scripts, current):
        raise StorageError(f"the archive in {shown} was written by a newer Entropy Atlas (schema revision "
                           f"{current}; this version knows up to {head}); upgrade entropy-atlas to read it")
    if readonly and current != head:
        raise SchemaBehind(f"the archive in {shown} is at schema revision {current}, this version reads {head}; "
                           f"upgrade it once with `atlas migrate --storage URL` (read commands never write)")
    if current == head:
        check_tables(engine, url, current)
    return current


#: what a database's error says when a table or column it was asked for is not there
#: (SQLite: ``no such table``/``no such column``; PostgreSQL: ``relation … does not exist``,
#: ``column … does not exist``)
_MISSING = ("no such table", "no such column", "does not exist")


def check_tables(engine: Engine, url: str, revision: str) -> None:
    """A :class:`StorageError` naming the database as another application's unless every
    table and column of :mod:`archive.models` (the schema at head) is there: one ``SELECT``
    of no rows from each, in one statement (a millisecond; no reflection). An error that
    is not a missing table or column (the database went away) is raised as it is."""
    from sqlalchemy import literal, select, union_all

    from archive.models import metadata

    probes = [select(literal(1)).select_from(select(*table.columns).limit(0).subquery())
              for table in metadata.sorted_tables]
    try:
        with engine.connect() as conn:
            conn.execute(union_all(*probes)).all()
    except DBAPIError as exc:
        missing = first_line(exc)
        if not any(marker in missing.lower() for marker in _MISSING):
            raise
        raise StorageError(f"storage {shown_url(url)} holds another application's database (its alembic_version "
                           f"says {revision}, but its tables are not an Entropy Atlas archive's: {missing}); give "
                           f"Entropy Atlas a database of its own") from None


_REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*=\s*(?:["']([\w.-]+)["']|None)\s*$""", re.M)


def script_head() -> str | None:
    """The head revision of the migration scripts, read from their ``revision`` and
    ``down_revision`` lines without importing Alembic; ``None`` unless that makes exactly
    one head (a merge's tuple of parents, say: :func:`check_schema` then asks Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {key: value for key, value in _REVISION_LINE.findall(path.read_text(encoding="utf-8"))}
        if not found.get("revision") or "down_revision" not in found:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine, url: str) -> str | None:
    """The one revision in the database's ``alembic_version`` table, or ``None`` when it
    cannot say (no such table, several rows, a failed read): the full check decides then.

    A database that cannot be connected to at all is a :class:`StorageError` at once, worded
    as :func:`schema_revision` words it: handing it to the full check had that connect again,
    and a server that accepts the connection but never answers cost two connect timeouts
    (10 s, not 5) before the same one-line error."""
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise StorageError(_unreachable(url, exc)) from None
    with conn:
        try:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except DBAPIError:
            return None
    return str(rows[0]) if len(rows) == 1 else None


def head_revision() -> str:
    """The schema revision this version writes (Alembic's head)."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())


def migrate(engine: Engine, current: str | None) -> None:
    """Apply Alembic migrations from ``current`` (what :func:`check_schema` found) up to
    head; a no-op when already there.

    On PostgreSQL under a transaction-level advisory lock (:data:`MIGRATION_LOCK`): two
    processes opening one new database at once (two jobs of a cluster starting) had both
    created its tables, and the second failed on a duplicate catalog key. The second now
    waits, and Alembic, reading the revision inside the lock, finds the first's schema at
    head and does nothing."""
    from alembic import command

    if current == head_revision():
        return
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # one at a time; a later one finds the earlier one's schema
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@contextlib.contextmanager
def scratch_schema(postgres_url: str, prefix: str) -> Iterator[str]:
    """A PostgreSQL URL whose ``search_path`` is a fresh schema ``PREFIX_<hex>``, dropped
    with everything in it on exit (tests and benchmarks share one server this way)."""
    import uuid

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
