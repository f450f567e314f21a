"""Read commands leave a SQLite archive's folder as they found it, and never write its file.

A read-only connection to a database in WAL mode makes SQLite's ``-wal`` and ``-shm`` where
none were, and cannot remove them on closing (that takes a checkpoint, a write): every
``atlas status``, ``elites``, ``export``, ``map``, … (and ``atlas run``'s own summary) had
left them beside the file. A reading now removes them when it closes, as SQLite's last
writer does, but only while nothing else holds the database (a live run's, in another
process or this one, stay its own, and so do its locks) and only while the WAL is empty (a
writer's pages not yet copied stay). :mod:`archive.engine`, ``remove_side_files``."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import archive
from archive.store import Store
from search import api
from search import cli as cli_module
from tests.conftest import quadratic_spec

SIDE = ("atlas.db-wal", "atlas.db-shm")
READS = [("status",), ("status", "q"), ("elites", "q"), ("elites", "q", "--format", "csv"), ("failures", "q"),
         ("law", "q"), ("export", "q", "--out", "{out}/q.json"), ("front", "q", "--out", "{out}/front.png"),
         ("map", "q", "--out", "{out}/map.png")]

#: a reader in another process: it reads (and so holds the database), says so, and closes
#: at the end of its input
READER = """
import sys
import archive
with archive.open(sys.argv[1]) as handle:
    print(len(handle.campaigns()), flush=True)
    sys.stdin.read()
"""

#: a writer in another process: it reads (and so holds the database) and says how many
#: campaigns; on each line of its input it adds 1 to every campaign's updated_at, then says
#: the largest; at the end of its input it closes
WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA busy_timeout=30000")
print(conn.execute("SELECT count(*) FROM campaigns").fetchone()[0], flush=True)
for _ in sys.stdin:
    conn.execute("UPDATE campaigns SET updated_at = updated_at + 1")
    print(conn.execute("SELECT max(updated_at) FROM campaigns").fetchone()[0], flush=True)
conn.close()
"""


@pytest.fixture(scope="module")
def archive_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished campaign ``q`` in ``atlas.db``."""
    path = tmp_path_factory.mktemp("archive") / "atlas.db"
    api.run(quadratic_spec(name="q", search__budget=20), storage=f"sqlite:///{path}", executor="inline")
    return path


@pytest.fixture
def db(archive_db: Path) -> Path:
    """:func:`archive_db`, alone in its folder: side files an earlier test left are removed
    as SQLite removes them, by a writable connection's close."""
    with closing(sqlite3.connect(archive_db)) as conn:
        conn.execute("SELECT count(*) FROM campaigns").fetchone()
    assert sorted(os.listdir(archive_db.parent)) == ["atlas.db"]
    return archive_db


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def seen(path: Path) -> tuple[list[str], str, int]:
    """The folder's names, the database's bytes (a digest) and its modification time."""
    return sorted(os.listdir(path.parent)), hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def atlas(*args: str) -> None:
    result = CliRunner().invoke(cli_module.app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def locks_here(path: Path) -> int:
    """How many locks this process holds on ``path`` (``/proc/locks``)."""
    inode, pid = str(path.stat().st_ino), str(os.getpid())
    fields = [[f for f in line.split() if f != "->"] for line in Path("/proc/locks").read_text().splitlines()]
    return sum(1 for f in fields if len(f) > 5 and f[4] == pid and f[5].rsplit(":", 1)[-1] == inode)


@contextmanager
def writer(path: Path) -> Iterator[subprocess.Popen[str]]:
    """:data:`WRITER` on ``path``, holding it once this yields."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "1"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def write_once(proc: subprocess.Popen[str]) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    return float(proc.stdout.readline())


def stored_updated_at(path: Path) -> float:
    """Campaign ``q``'s updated_at, read as the read commands read (a plain read-only
    ``sqlite3`` connection would leave the side files it makes)."""
    with archive.open(url(path)) as handle:
        return handle.campaign("q").record.updated_at


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:2]) + (" csv" if "csv" in a else "") for a in READS])
def test_a_read_command_leaves_the_folder_and_the_file_as_they_were(db: Path, tmp_path: Path,
                                                                    args: tuple[str, ...]) -> None:
    before = seen(db)
    atlas(*[a.format(out=tmp_path) for a in args], "--storage", url(db))
    assert seen(db) == before


def test_the_dashboard_leaves_the_folder_and_the_file_as_they_were(db: Path) -> None:
    from dashboard import create_app

    before = seen(db)
    with TestClient(create_app(url(db))) as client:
        assert client.get("/api/campaigns").status_code == 200
        assert all((db.parent / name).exists() for name in SIDE)  # what SQLite needs while it reads
    assert seen(db) == before


def test_atlas_run_leaves_no_side_files_after_its_summary(tmp_path: Path) -> None:
    """The run's close removed them, then its summary's read-only opening made them anew."""
    spec = tmp_path / "q.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(name="q", search__budget=10)))
    atlas("run", str(spec), "--storage", url(tmp_path / "atlas.db"), "--executor", "inline",
          "--map", str(tmp_path / "map.png"))
    assert sorted(os.listdir(tmp_path)) == ["atlas.db", "map.png", "q.yaml"]


def test_a_live_writer_in_another_process_keeps_its_side_files_and_its_writes(db: Path) -> None:
    with writer(db) as proc:
        before = seen(db)
        assert all(name in before[0] for name in SIDE)
        atlas("status", "q", "--storage", url(db))
        with archive.open(url(db)) as handle:
            handle.campaign("q").elites()
        assert seen(db) == before  # its files stay, and nothing was written
        written = write_once(proc)  # into the WAL it still has, not one removed under it
        proc.stdin.close()
        assert proc.wait() == 0
    assert stored_updated_at(db) == written
    assert sorted(os.listdir(db.parent)) == ["atlas.db"]  # the writer's close removed them


def test_a_writer_in_this_process_keeps_its_side_files_and_its_locks(db: Path) -> None:
    """Closing any descriptor of a file drops all of its process's locks on it: the reading
    must not even open the file while a connection of this process holds it (here one that
    came after the reading's own, so that the side files are the reading's to remove)."""
    with archive.open(url(db)) as handle:
        handle.campaign("q").stats()
        store = Store(url(db))
        store.campaign("q")  # it holds the database from its first read on
        held = locks_here(db)
    try:
        assert locks_here(db) == held > 0
        assert all((db.parent / name).exists() for name in SIDE)
    finally:
        store.close()
    assert sorted(os.listdir(db.parent)) == ["atlas.db"]


def test_a_raw_connection_of_this_process_keeps_its_lock(db: Path) -> None:
    """A connection not made by the archive (a user's own ``sqlite3``) is seen in
    ``/proc/locks``: the reading neither removes the side files nor drops its lock."""
    with closing(sqlite3.connect(db)) as raw:
        with archive.open(url(db)) as handle:
            handle.campaign("q").stats()
            raw.execute("SELECT count(*) FROM campaigns").fetchone()
            held = locks_here(db)
        assert locks_here(db) == held > 0
        assert all((db.parent / name).exists() for name in SIDE)
    assert sorted(os.listdir(db.parent)) == ["atlas.db"]


def test_the_last_of_two_overlapping_readings_removes_the_first_ones_side_files(db: Path) -> None:
    """The reading that made them (another process) closed while this one held the database,
    so could not remove them; this one, closing last, does."""
    proc = subprocess.Popen([sys.executable, "-c", READER, url(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).parents[1])
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "1"
        before = seen(db)
        with archive.open(url(db)) as handle:
            handle.campaign("q").stats()
            proc.communicate("", timeout=60)
            assert proc.returncode == 0
            assert seen(db) == before  # the other reading could not remove them while this one read
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sorted(os.listdir(db.parent)) == ["atlas.db"] and seen(db)[1:] == before[1:]


def test_side_files_an_earlier_reading_left_are_removed(db: Path) -> None:
    """As an earlier version left them, or a plain read-only ``sqlite3`` connection does."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.execute("SELECT count(*) FROM campaigns").fetchone()
    before = seen(db)
    assert all(name in before[0] for name in SIDE)
    atlas("status", "--storage", url(db))
    assert seen(db) == (["atlas.db"], *before[1:])


def test_a_wal_holding_a_writers_pages_stays_and_the_file_is_not_written(db: Path) -> None:
    """A writer that wrote and closed while the reading held the database could not copy its
    pages into the file: they are in the WAL alone, which stays (with them) for a writer."""
    before = seen(db)
    with archive.open(url(db)) as handle:
        handle.campaign("q").stats()
        with writer(db) as proc:
            written = write_once(proc)
            proc.stdin.close()
            assert proc.wait() == 0
    _, digest, mtime = seen(db)
    assert (digest, mtime) == before[1:] and (db.parent / SIDE[0]).stat().st_size > 0
    assert stored_updated_at(db) == written
    with closing(sqlite3.connect(db)) as conn:  # a writer's close copies them and removes the files
        conn.execute("SELECT count(*) FROM campaigns").fetchone()
    assert sorted(os.listdir(db.parent)) == ["atlas.db"]


@pytest.mark.parametrize("folder", ["a#b", "a?b", "a%41b", "a b"])
def test_a_folder_named_with_uri_characters_is_read_and_nothing_else_made(db: Path, tmp_path: Path,
                                                                            folder: str) -> None:
    """The read-only opening is a ``file:`` URI: ``#`` or ``?`` in a folder's name ended its
    path, so ``/x/a#b/atlas.db`` opened ``/x/a`` (``mode=ro`` dropped with the rest), which
    it created, empty, for writing, and then called the archive missing."""
    (tmp_path / folder).mkdir()
    copy = tmp_path / folder / "atlas.db"
    copy.write_bytes(db.read_bytes())
    before = seen(copy), sorted(os.listdir(tmp_path))
    with archive.open(copy) as handle:  # a Path: the URL form would read %41 as "A"
        assert [c.name for c in handle.campaigns()] == ["q"]
    assert (seen(copy), sorted(os.listdir(tmp_path))) == before


def test_a_connection_dropped_while_another_is_counted_in_does_not_deadlock(tmp_path: Path) -> None:
    """A connection dropped unclosed is counted out by its finalizer, which the garbage
    collector may run inside the block where another connection is counted in, on the same
    thread (seen: a test suite hung in ``Counted.__init__``). Run there, the finalizer ends;
    with a plain lock it waited on itself for ever."""
    import threading

    from archive import engine

    path = tmp_path / "a.db"
    dropped = sqlite3.connect(path, factory=engine.counted_connection(path, tidy=False), check_same_thread=False)

    def finalized_under_the_lock() -> None:
        with engine._open_lock:  # as in Counted.__init__, when the collector runs the finalizer
            dropped.__del__()

    thread = threading.Thread(target=finalized_under_the_lock, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "the finalizer deadlocked on the counting lock"
    assert path not in engine._open
