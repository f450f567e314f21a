"""Open a storage for the dashboard: checked at start-up, and read-only from then on.

The dashboard never writes. Where the archive's :class:`~archive.store.Store` would
create a missing SQLite file or apply pending migrations, :func:`open_readonly` refuses
with a :class:`~archive.store.StorageError` that says what is wrong, before any server
starts. Once open, every connection is put in read-only mode (SQLite ``PRAGMA
query_only``, PostgreSQL ``default_transaction_read_only``), so a bug here could not
change an archive either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from archive.store import MIGRATIONS, StorageError, Store, make_engine


def shown_url(url: str) -> str:
    """``url`` with its password hidden, for messages and the page footer."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


def _scripts() -> ScriptDirectory:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for an unknown revision
        return False


def check_storage(url: str) -> None:
    """Raise :class:`StorageError` unless ``url`` holds an up-to-date archive we can reach.

    Nothing is created or migrated: a SQLite file that does not exist, a database with no
    archive in it, or one at an older schema revision are refused with the reason.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"not a storage URL: {url!r}") from None
    shown = shown_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database in (None, "", ":memory:"):
            raise StorageError(f"{shown} is an in-memory database: the dashboard needs a storage a campaign wrote to")
        if not Path(database).is_file():
            raise StorageError(f"cannot open storage {shown}: the file {database} does not exist")
    try:
        engine = make_engine(url)
    except (NoSuchModuleError, ImportError) as exc:
        raise StorageError(f"cannot open storage {shown}: {exc}") from None
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise StorageError(f"cannot reach storage {shown}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    scripts = _scripts()
    head = scripts.get_current_head()
    if current is None:
        raise StorageError(f"storage {shown} holds no Entropy Atlas archive (no schema in it); "
                           f"run a campaign into it first with `atlas run SPEC --storage URL`")
    if current != head and not _known(scripts, current):
        raise StorageError(f"the archive in {shown} was written by a newer Entropy Atlas (schema revision "
                           f"{current}, this version knows up to {head}); upgrade this installation")
    if current != head:
        raise StorageError(f"the archive in {shown} is at schema revision {current}, this version reads {head}; "
                           f"upgrade it once with `atlas status --storage URL` (the dashboard never writes)")


def _read_only(engine: Engine) -> None:
    """Make every new connection of ``engine`` refuse writes."""
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_query_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA query_only = ON")
            cur.close()
    elif engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _pg_read_only(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cur.close()
            dbapi_conn.commit()
    engine.dispose()  # connections opened before the listener are not reused


def open_readonly(url: str) -> Store:
    """A :class:`Store` over an existing, up-to-date archive whose connections cannot write."""
    check_storage(url)
    try:
        store = Store(url)  # the schema is at head: its migration step is a no-op
    except DBAPIError as exc:
        raise StorageError(f"cannot reach storage {shown_url(url)}: {_first_line(exc)}") from None
    _read_only(store.engine)
    return store
