"""Storage URLs and files at their edges: each refused with one line before anything is
written, and another application's file left exactly as it was."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from archive.engine import default_storage, parse_storage_url
from archive.errors import StorageError
from archive.store import Store
from search import api
from tests.conftest import quadratic_spec


def test_another_applications_file_is_refused_untouched(tmp_path: Path) -> None:
    """Refused before its journal mode is switched to WAL (which rewrote its header and
    left ``-wal``/``-shm`` files beside it)."""
    path = tmp_path / "theirs.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE foo (a)")
    before = path.read_bytes()
    with pytest.raises(StorageError, match=r"holds another application's tables \(foo\)"):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]


def test_another_applications_alembic_database_is_named_as_such(tmp_path: Path) -> None:
    path = tmp_path / "theirs.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.execute("INSERT INTO alembic_version VALUES ('abc123')")
        conn.execute("CREATE TABLE orders (id INTEGER)")
    for readonly in (False, True):
        with pytest.raises(StorageError, match=r"holds another application's database .*revision abc123"):
            Store(f"sqlite:///{path}", readonly=readonly)


def test_a_new_archive_is_in_wal_mode(tmp_path: Path) -> None:
    Store(f"sqlite:///{tmp_path / 'a.db'}").close()
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_in_memory_storage_is_refused_for_a_run(tmp_path: Path) -> None:
    """It ran the whole campaign, then could not read it back for its summary."""
    with pytest.raises(StorageError, match="in-memory database: what a run writes would go with it"):
        api.run(quadratic_spec(search__budget=4), storage="sqlite://", executor="inline")


@pytest.mark.parametrize("url", ["sqlite:///%00.db", "sqlite:///a\x00.db",
                                 "postgresql+psycopg://postgres@[::1:5432/x",
                                 "postgresql+psycopg://postgres@localhost:port/x"])
def test_malformed_urls_are_one_line(url: str) -> None:
    with pytest.raises(StorageError, match="not a storage URL"):
        parse_storage_url(url)


def test_a_tilde_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()  # a storage's folder is never made (tests/test_storage_folders.py)
    api.run(quadratic_spec(search__budget=4), storage="sqlite:///~/runs/a.db", executor="inline")
    assert (tmp_path / "runs" / "a.db").is_file()
    assert not (tmp_path / "~").exists()
    store = Store("sqlite:///~/runs/a.db", readonly=True)
    try:
        assert store.require_campaign("quad").name == "quad"
    finally:
        store.close()


def test_a_storage_that_is_not_a_regular_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="/dev/null is not a regular file"):
        Store("sqlite:////dev/null", readonly=True)
    (tmp_path / "folder.db").mkdir()
    with pytest.raises(StorageError, match=r"folder\.db is not a regular file"):
        Store(f"sqlite:///{tmp_path / 'folder.db'}")


@pytest.mark.parametrize("under", ["notes.txt/atlas.db", "notes.txt/runs/atlas.db"])
def test_a_storage_path_through_a_file_is_one_line(tmp_path: Path, under: str) -> None:
    """``sqlite:///notes.txt/atlas.db``, ``notes.txt`` a file: ``FileExistsError`` (or
    ``NotADirectoryError``) from making the folder, as a traceback from ``atlas run``."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StorageError, match=f"^cannot open storage sqlite:///{tmp_path / under}: "
                                           f"{tmp_path / 'notes.txt'} is a file, not a folder$"):
        Store(f"sqlite:///{tmp_path / under}")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_empty_atlas_storage_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_STORAGE", "")
    assert default_storage() == "sqlite:///atlas.db"
    monkeypatch.setenv("ATLAS_STORAGE", "sqlite:///x.db")
    assert default_storage() == "sqlite:///x.db"


OPEN_AT = """
import sys, time
from archive.store import Store
deadline = float(sys.argv[2])
while time.time() < deadline:
    pass
Store(sys.argv[1] if "://" in sys.argv[1] else f"sqlite:///{sys.argv[1]}").close()
"""


def test_a_schema_another_process_commits_between_the_two_reads_is_not_another_applications(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The revision and the tables were read in two snapshots: another process's new schema,
    committed between them, was no revision and then its tables, refused as "another
    application's tables" (a flaky failure of the three-process test below). One snapshot."""
    from sqlalchemy.engine.reflection import Inspector

    tables = Inspector.get_table_names
    others: list[str] = []

    def another_commits_first(self: Inspector, *args: object, **kwargs: object) -> list[str]:
        if not others:  # once: the other process opens (creates) the schema and commits now
            others.append(postgres_url)
            Store(postgres_url).close()
        return tables(self, *args, **kwargs)

    monkeypatch.setattr(Inspector, "get_table_names", another_commits_first)
    Store(postgres_url).close()
    assert others
    store = Store(postgres_url, readonly=True)
    try:
        assert store.found_revision is not None
    finally:
        store.close()


def test_processes_opening_one_new_file_at_once_all_open_it(tmp_path: Path) -> None:
    """Two ``atlas run`` into a fresh ``atlas.db`` at once: one of each pair failed with
    "database is locked" about half the time (both migrated; the second's read could not
    become a write). Three processes, released at one instant, three times."""
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[1]
    for attempt in range(3):
        path = tmp_path / f"fresh-{attempt}.db"
        at = str(time.time() + 3.0)
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(path), at], cwd=root,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
    store = Store(f"sqlite:///{tmp_path / 'fresh-0.db'}", readonly=True)
    store.close()


def test_processes_opening_one_new_postgresql_schema_at_once_all_open_it(postgres_url: str) -> None:
    """Two jobs of a cluster starting on one new database: one of each pair failed with
    ``duplicate key value violates unique constraint "pg_type_typname_nsp_index"`` (both
    created the tables) in 3 of 4 rounds. Three processes, released at one instant, twice
    (the schema dropped and made again between)."""
    import subprocess
    import sys
    import time

    from sqlalchemy import create_engine, text

    root = Path(__file__).resolve().parents[1]
    schema = postgres_url.rsplit("%3D", 1)[1]
    for _ in range(2):
        at = str(time.time() + 3.0)
        procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, postgres_url, at], cwd=root,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        errors = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], errors
        Store(postgres_url, readonly=True).close()
        admin = create_engine(postgres_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()


def _behind(url: str, revision: str) -> None:
    """The archive at ``url`` taken down to ``revision``, as an older Entropy Atlas left it."""
    from sqlalchemy import create_engine

    from tests.support.migrations import migrate_to

    engine = create_engine(url)
    migrate_to(engine, revision, down=True)
    engine.dispose()


def test_resume_and_delete_bring_an_older_archive_up_as_run_does(tmp_path: Path) -> None:
    """Both write: their first, read-only look had refused with "read commands never write"."""
    from typer.testing import CliRunner

    from search.cli import app

    url = f"sqlite:///{tmp_path / 'old.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    api.run(quadratic_spec(name="other", search__budget=4), storage=url, executor="inline")
    _behind(url, "0003")
    with pytest.raises(StorageError, match="schema revision 0003"):
        Store(url, readonly=True)
    resumed = CliRunner().invoke(app, ["resume", "quad", "--budget", "9", "--executor", "inline", "--storage", url,
                                       "--map", str(tmp_path / "m.png")])
    assert resumed.exit_code == 0, resumed.output
    store = Store(url, readonly=True)  # at head again
    assert store.stats(store.require_campaign("quad").id, 0).finished == 9
    store.close()
    _behind(url, "0004")
    deleted = CliRunner().invoke(app, ["delete", "other", "--yes", "--storage", url])
    assert deleted.exit_code == 0, deleted.output
    store = Store(url, readonly=True)
    assert store.campaign("other") is None and store.campaign("quad") is not None
    store.close()


def test_an_archive_at_two_revisions_at_once_is_another_applications(tmp_path: Path) -> None:
    """A branched ``alembic_version`` (two rows) had given Alembic's ``CommandError`` as a traceback."""
    path = tmp_path / "two.db"
    Store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO alembic_version VALUES ('0004')")
    for readonly in (True, False):
        with pytest.raises(StorageError, match=r"another application's database \(its schema is at 2 revisions at "
                                               r"once: 0004, 0005\)"):
            Store(f"sqlite:///{path}", readonly=readonly)


def foreign_alembic_file(path: Path, campaigns: bool) -> bytes:
    """Another application's SQLite file whose ``alembic_version`` is at this version's head
    revision (``0005``), with (``campaigns``) a ``campaigns`` table of its own: its bytes."""
    from archive.engine import script_head

    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES (?)", (script_head(),))
        if campaigns:
            conn.execute("CREATE TABLE campaigns (id INT, title TEXT)")
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("campaigns", [True, False], ids=["its-campaigns", "no-campaigns"])
def test_another_alembic_database_at_our_head_revision_is_refused_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, campaigns: bool) -> None:
    """``alembic_version`` at ``0005`` alone had let read commands in: ``atlas status`` then
    retried ``no such column: campaigns.name`` for 120 s and said "lost the storage" (or,
    with no campaigns table, ``no such table: campaigns``). Now one ``error:`` line naming
    another application's database, exit 2, at once, for reads and runs, the file as it was."""
    import time

    from typer.testing import CliRunner

    from search.cli import _ProgressView, app

    monkeypatch.setenv("ATLAS_DB_RETRY_S", "3")  # the old code's retries, bounded
    path = tmp_path / "alem2.db"
    before = foreign_alembic_file(path, campaigns)
    url = f"sqlite:///{path}"
    spec = tmp_path / "quad.yaml"
    spec.write_text(json.dumps(quadratic_spec(search__budget=4)))
    for args in (["status"], ["status", "quad"], ["elites", "quad"],
                 ["export", "quad", "--out", str(tmp_path / "x.csv")], ["run", str(spec), "--executor", "inline"]):
        started = time.monotonic()
        done = CliRunner().invoke(app, [*args, "--storage", url])
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert time.monotonic() - started < 2.5, args
        assert done.exit_code == 2 and done.stdout in ("", _ProgressView.STARTING + "\n"), (args, done.output)
        assert [line for line in lines if not line.startswith("warning:")] == [lines[-1]], args
        assert lines[-1].startswith("error: ") and "another application's database" in lines[-1], args
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alem2.db", "quad.yaml"]


def test_another_alembic_schema_at_our_head_revision_is_refused_on_postgresql(postgres_url: str) -> None:
    """PostgreSQL refused it at once before, but as ``column campaigns.name does not exist``."""
    from sqlalchemy import create_engine, inspect, text

    from archive.engine import script_head

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": script_head()})
        conn.execute(text("CREATE TABLE campaigns (id INT, title TEXT)"))
    for readonly in (True, False):
        with pytest.raises(StorageError, match=r"holds another application's database .*campaigns.*does not exist"):
            Store(postgres_url, readonly=readonly)
    with engine.connect() as conn:
        assert sorted(inspect(conn).get_table_names()) == ["alembic_version", "campaigns"]
    engine.dispose()


def test_a_missing_column_is_permanent() -> None:
    """``no such column`` (SQLite) cannot be mended by waiting: it had been retried for 120 s."""
    from sqlalchemy.exc import OperationalError

    from archive.retry import is_permanent

    assert is_permanent(OperationalError("SELECT", {}, sqlite3.OperationalError("no such column: campaigns.name")))
    assert not is_permanent(OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked")))
