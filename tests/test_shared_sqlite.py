"""One SQLite archive shared by a run and its readers: what a run leaves in the file once it ends."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import archive
from archive.engine import checkpoint_wal, make_engine
from search import api
from tests.conftest import quadratic_spec


def read_alone(db: Path, tmp_path: Path) -> tuple[str, int]:
    """The campaign's status and finished count in a copy of ``db`` made without its side
    files (what `cp atlas.db elsewhere/` takes)."""
    copy = tmp_path / "copy" / "atlas.db"
    copy.parent.mkdir()
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(f"file:{copy}?mode=ro&immutable=1", uri=True)
    try:
        status = conn.execute("SELECT status FROM campaigns WHERE name = 'quad'").fetchone()[0]
        finished = conn.execute("SELECT count(*) FROM evaluations WHERE status IN ('done', 'failed')").fetchone()[0]
    finally:
        conn.close()
    return status, finished


def test_a_run_that_ends_while_a_reader_holds_the_file_leaves_it_whole(tmp_path: Path) -> None:
    """The dashboard (here a read-only handle) holds the file while a run ends: the run's
    last results are in the database file itself, and once the reader closes no -wal or
    -shm is left. Before, they stayed in -wal: a copy of the file alone read 20 evaluations,
    not 120 (an `atlas run` read `running`, hundreds short), and the side files stayed after
    every process had exited."""
    db = tmp_path / "atlas.db"
    url = f"sqlite:///{db}"
    api.run(quadratic_spec(search__budget=20), storage=url, executor="inline")  # the file, for the reader to open
    reader = archive.open(url)
    try:
        assert reader.campaign("quad").stats().finished == 20  # a connection of its own, held open
        api.run(quadratic_spec(search__budget=120), storage=url, executor="inline")
        wal = db.with_name("atlas.db-wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert read_alone(db, tmp_path) == ("finished", 120)
        assert reader.campaign("quad").stats().finished == 120
    finally:
        reader.close()
    assert not list(tmp_path.glob("atlas.db-*"))


def test_emptying_the_wal_waits_on_no_reader_and_keeps_no_lock(tmp_path: Path) -> None:
    """A reader's transaction under way: the closing writer's checkpoint gives up (the WAL
    stays whole, the reader's snapshot intact) and leaves the file free to write at once;
    once the reader is done, it empties the WAL."""
    db = tmp_path / "atlas.db"
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x INTEGER)")
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    writer.execute("INSERT INTO t VALUES (1)")
    engine = make_engine(f"sqlite:///{db}")
    try:
        assert not checkpoint_wal(engine, tries=2)
        assert db.with_name("atlas.db-wal").stat().st_size > 0
        writer.execute("PRAGMA busy_timeout=0")
        writer.execute("BEGIN IMMEDIATE")  # no lock left behind: this would raise "database is locked"
        writer.execute("INSERT INTO t VALUES (2)")
        writer.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
        reader.execute("COMMIT")
        assert checkpoint_wal(engine)
        assert db.with_name("atlas.db-wal").stat().st_size == 0
    finally:
        engine.dispose()
        reader.close()
        writer.close()


def test_a_script_that_reads_and_never_closes_leaves_no_side_files(tmp_path: Path) -> None:
    """README's ``archive.open(url).campaign(name)``, never closed, in a script that then
    ends (one such handle dropped before): its connections are closed as it exits, and the
    last removes the -wal and -shm its reading made. Before, both stayed."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    assert not list(tmp_path.glob("atlas.db-*"))
    script = ("import gc, sys, archive\n"
              "for _ in range(2):\n"  # the first handle dropped and collected, the second alive at exit
              "    camp = archive.open(sys.argv[1]).campaign('quad')\n"
              "    gc.collect()\n"
              "print(camp.stats().finished)\n")
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "10", "")
    assert not list(tmp_path.glob("atlas.db-*"))


def test_a_dropped_handle_does_not_keep_a_later_reading_from_tidying(tmp_path: Path) -> None:
    """A handle dropped without closing, then one closed: the closed one's reading removes
    the side files. Before, the dropped one's connection stayed counted as open in this
    process, and no later reading here removed them."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    assert archive.open(url).campaign("quad").stats().finished == 10
    gc.collect()
    with archive.open(url) as reader:
        assert reader.campaign("quad").stats().finished == 10
    assert not list(tmp_path.glob("atlas.db-*"))
