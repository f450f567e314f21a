"""A storage or an output on a full disk: one line that says what is full and what to do,
nothing a user stored lost, and the campaign resumable once there is room.

A full SQLite disk is SQLite's own: ``PRAGMA max_page_count`` on every connection makes the
file full at that many pages, and SQLite then raises ``database or disk is full``
(SQLITE_FULL) as it does on a full disk (tried by hand on a 400 kB tmpfs: the same lines).
A full disk under an output file is Python's ``open`` (and pyarrow's writer) failing with
ENOSPC after part of the bytes; PostgreSQL's ``disk_full`` (SQLSTATE 53100) is a psycopg
error made here: a real server's disk is not filled.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import pickle
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

import archive
from archive import engine as engine_module
from archive.errors import StorageError
from archive.retry import reconnecting
from archive.store import Store
from search import api
from tests.conftest import quadratic_spec
from tests.test_edges import assert_one_line_errors, invoke, write
from tests.test_scheduler import check_archive


@pytest.fixture
def page_cap() -> Iterator[dict[str, int | None]]:
    """``cap["pages"]``: the most pages a SQLite file may reach on each connection opened
    from then on (None: no cap), as a disk of that size would let it."""
    cap: dict[str, int | None] = {"pages": None}

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        if cap["pages"] is not None and isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.execute(f"PRAGMA max_page_count = {cap['pages']}")

    event.listen(Engine, "connect", on_connect)
    yield cap
    event.remove(Engine, "connect", on_connect)


def sqlite_rows(db: Path) -> tuple[dict[str, int], str | None]:
    """Evaluations by status, and the campaign's lease holder."""
    with sqlite3.connect(db) as conn:
        counts = dict(conn.execute("SELECT status, count(*) FROM evaluations GROUP BY status").fetchall())
        holder = conn.execute("SELECT lease_holder FROM campaigns").fetchone()[0]
    return counts, holder


# -- the storage ---------------------------------------------------------------------------
def test_a_full_disk_mid_run_stops_at_once_in_one_line_and_the_campaign_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page_cap: dict[str, int | None]) -> None:
    """``atlas run`` on a SQLite file that fills up: not retried as a storage away (it had
    been, for ``ATLAS_DB_RETRY_S``, then "lost the storage"), one ``error:`` line naming the
    file and what to do, exit 2; what was written before is kept, the lease released, and
    ``atlas resume`` finishes exactly the budget once there is room."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATLAS_DB_RETRY_S", "2")
    db = (tmp_path / "atlas.db").resolve()
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=300, search__batch_size=20,
                                                     search__max_in_flight=40))
    page_cap["pages"] = 30
    result = invoke("run", str(spec), "--executor", "inline")
    [line] = assert_one_line_errors(result)
    assert "retrying" not in result.stderr
    assert line.startswith(f"error: storage sqlite:///atlas.db is full: database or disk is full (the disk "
                           f"holding {db} has "), line
    assert line.endswith("campaign 'quad' stopped, every evaluation written before kept: free space there, "
                         "then `atlas resume quad --executor inline`"), line  # as this run was started
    counts, holder = sqlite_rows(db)
    assert 0 < counts["done"] < 300 and holder is None, (counts, holder)

    page_cap["pages"] = None  # space freed
    result = invoke("resume", "quad", "--executor", "inline")
    assert result.exit_code == 0, result.output
    camp = check_archive(f"sqlite:///{db}", "quad", 300)
    assert camp.record.status == "finished"
    assert sum(r["status"] == "done" for r in camp.evaluations()) == 300


def test_a_lease_whose_release_cannot_be_written_is_said_to_lapse(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch, page_cap: dict[str, int | None]) -> None:
    """On a disk that is really full the release of the lease (a write) fails too: the run
    still stops with the one line, which says the lease lapses, and raises nothing else."""

    def full(self: Store, *args: Any, **kwargs: Any) -> bool:
        raise OperationalError("UPDATE campaigns", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(Store, "finish_run", reconnecting(full))
    monkeypatch.setenv("ATLAS_DB_RETRY_S", "2")
    page_cap["pages"] = 30
    with pytest.raises(StorageError) as raised:
        api.run(quadratic_spec(search__budget=300), storage=sqlite_url, executor="inline")
    message = str(raised.value)
    assert "is full: database or disk is full" in message
    assert ("campaign 'quad' stopped, every evaluation written before kept (its lease could not be released for "
            "want of space and lapses within 30 s): free space there, then `api.resume('quad', …)`") in message


def test_a_full_disk_as_the_schema_is_made_is_one_line_and_writes_nothing(
        tmp_path: Path, page_cap: dict[str, int | None]) -> None:
    db = tmp_path / "atlas.db"
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=10))
    page_cap["pages"] = 3
    result = invoke("run", str(spec), "--executor", "inline", "--storage", f"sqlite:///{db}",
                    "--map", str(tmp_path / "m.png"))
    [line] = assert_one_line_errors(result)
    assert "is full: database or disk is full (the disk holding" in line
    assert line.endswith("free space there, then run again"), line
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0  # the schema rolled back

    page_cap["pages"] = None
    assert invoke("run", str(spec), "--executor", "inline", "--storage", f"sqlite:///{db}",
                  "--map", str(tmp_path / "m.png")).exit_code == 0


def test_a_full_disk_as_the_file_turns_to_wal_is_a_storage_error(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``PRAGMA journal_mode=WAL`` on a new file of a full disk (tried on a full tmpfs):
    its raw driver error had escaped the opening as a traceback."""
    real = engine_module.counted_connection

    def full_on_wal(path: Path, tidy: bool) -> type[sqlite3.Connection]:
        class Full(real(path, tidy)):  # type: ignore[misc]
            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                if sql.startswith("PRAGMA journal_mode=WAL"):
                    raise sqlite3.OperationalError("database or disk is full")
                return super().execute(sql, *args)

        return Full

    monkeypatch.setattr(engine_module, "counted_connection", full_on_wal)
    with pytest.raises(StorageError, match=r"is full: database or disk is full .*: free space there, then run again"):
        Store(f"sqlite:///{tmp_path / 'atlas.db'}")


def test_postgresql_disk_full_is_not_retried_and_its_other_shortages_are(tmp_path: Path) -> None:
    """SQLSTATE 53100 (``disk_full``) is raised at once, naming the server's disk; 53200
    (``out_of_memory``) and 53300 (``too_many_connections``) pass as the server frees memory
    or connections, so they are retried as an unreachable server is. SQLite's full file
    names its disk. The error pickles (a forked reader sends it back so)."""

    class Storage:
        def __init__(self, url: str, error: Exception, retry_s: float) -> None:
            self.url, self.error, self.retry_s, self.calls = url, error, retry_s, 0

        @reconnecting
        def write(self) -> None:
            self.calls += 1
            raise OperationalError("UPDATE campaigns", {}, self.error)

    pg = "postgresql+psycopg://atlas:secret@db.example/atlas"
    full = Storage(pg, psycopg.errors.DiskFull('could not extend file "base/16384/16385": No space left on device'),
                   retry_s=1.0)
    with pytest.raises(StorageError) as raised:
        full.write()
    assert full.calls == 1
    assert str(raised.value) == (
        'storage postgresql+psycopg://atlas:***@db.example/atlas is full: could not extend file "base/16384/16385": '
        "No space left on device (the database server's disk): free space on the database server, then run again")
    assert str(pickle.loads(pickle.dumps(raised.value))) == str(raised.value)

    for error in (psycopg.errors.OutOfMemory("out of memory"),
                  psycopg.errors.TooManyConnections("sorry, too many clients already")):
        short = Storage(pg, error, retry_s=0.3)
        with pytest.raises(StorageError, match=f"lost the storage for 0.3 s: {error}"):
            short.write()
        assert short.calls == 2  # retried once (0.2 s) before the 0.3 s were up

    db = tmp_path / "atlas.db"
    sqlite_full = Storage(f"sqlite:///{db}", sqlite3.OperationalError("database or disk is full"), retry_s=1.0)
    with pytest.raises(StorageError, match=rf"^storage sqlite:///{db} is full: database or disk is full \(the disk "
                                           rf"holding {db.resolve()} has [0-9.]+ (bytes|kB|MB|GB|TB) free\): free "
                                           rf"space there, then run again$"):
        sqlite_full.write()
    assert sqlite_full.calls == 1


def test_postgresql_disk_full_mid_run_stops_in_one_line_and_resumes(postgres_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's disk full under a run's turn (its ``step`` refused with 53100): the run
    stops at once naming the server's disk, and resumes to exactly the budget."""
    step = Store.step
    turns = {"n": 0}

    def filling(self: Store, *args: Any, **kwargs: Any) -> list[int]:
        turns["n"] += 1
        if turns["n"] == 3:
            raise OperationalError("INSERT INTO evaluations", {},
                                   psycopg.errors.DiskFull("could not extend file: No space left on device"))
        return step.__wrapped__(self, *args, **kwargs)

    monkeypatch.setattr(Store, "step", reconnecting(filling))
    spec = quadratic_spec(search__budget=60)
    with pytest.raises(StorageError, match=r"is full: .*\(the database server's disk\); campaign 'quad' stopped, "
                                           r"every evaluation written before kept: free space on the database "
                                           r"server, then `api\.resume\('quad', …\)`$"):
        api.run(spec, storage=postgres_url, executor="inline")
    camp = archive.open(postgres_url).campaign("quad")
    assert camp.record.status == "stopped" and camp.record.lease_holder is None
    monkeypatch.setattr(Store, "step", step)
    api.resume("quad", storage=postgres_url, executor="inline")
    check_archive(postgres_url, "quad", 60)


# -- outputs -------------------------------------------------------------------------------
class FullDisk:
    """Python's ``open`` for writing under ``folder`` as a disk with ``room`` bytes left:
    a write past them writes what fits, then fails with ENOSPC."""

    def __init__(self, folder: Path, room: int) -> None:
        self.folder, self.room, self.real = folder.resolve(), room, builtins.open

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = self.real(file, mode, *args, **kwargs)
        writes = any(c in mode for c in "wax+")
        if writes and isinstance(file, str | os.PathLike) and Path(file).resolve().is_relative_to(self.folder):
            return Filling(handle, self)
        return handle


class Filling:
    """A file on a :class:`FullDisk` (no ``fileno``: writers write through ``write``)."""

    def __init__(self, handle: Any, disk: FullDisk) -> None:
        self.handle, self.disk = handle, disk

    def write(self, data: Any) -> int:
        size = len(data) if isinstance(data, str) else memoryview(data).nbytes
        if size > self.disk.room:
            self.handle.write(data[: self.disk.room])
            self.handle.flush()
            self.disk.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.disk.room -= size
        return self.handle.write(data)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)

    def __enter__(self) -> Filling:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder whose disk has 1,000 bytes left, for Python's writers and pyarrow's CSV writer."""
    folder = tmp_path / "full"
    folder.mkdir()
    disk = FullDisk(folder, 1000)
    monkeypatch.setattr(builtins, "open", disk.open)
    monkeypatch.setattr(io, "open", disk.open)
    from pyarrow import csv

    def write_csv(table: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        with disk.open(path, "wb") as handle:
            handle.write(b"evaluation_id,seq\n" * 100)

    monkeypatch.setattr(csv, "write_csv", write_csv)
    return folder


def test_the_runs_own_map_on_a_full_disk_is_a_warning_and_leaves_no_file(tmp_path: Path,
                                                                        full_disk: Path) -> None:
    """The run is complete and stored: a map it cannot write is one ``warning:`` line, exit
    0 (it had been an ``error:``, exit 2, after the whole run), and no partial file."""
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=30))
    result = invoke("run", str(spec), "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'atlas.db'}",
                    "--map", str(full_disk / "m.png"))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line == (f"warning: cannot write {full_disk / 'm.png'}: No space left on device; the run is complete and "
                    f"stored: `atlas map quad --storage sqlite:///{tmp_path / 'atlas.db'} --out FILE` draws its "
                    "map"), line
    assert list(full_disk.iterdir()) == []


@pytest.mark.parametrize("command, suffix", [("export", ".json"), ("export", ".csv"), ("map", ".png"),
                                             ("map", ".pdf"), ("front", ".svg")])
def test_an_output_on_a_full_disk_is_one_error_and_the_earlier_file_stays(
        tmp_path: Path, full_disk: Path, command: str, suffix: str) -> None:
    """An export or a figure that fills the disk: one ``error:`` line, exit 2 (a PDF's had
    been a traceback from matplotlib's clean-up), an earlier file of that name as it was
    (it had been cut short), and nothing else left in the folder."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    out = full_disk / f"out{suffix}"
    out.write_bytes(b"the earlier file")
    result = invoke(command, "quad", "--out", str(out), "--storage", url)
    assert assert_one_line_errors(result) == [f"error: cannot write {out}: No space left on device"]
    assert out.read_bytes() == b"the earlier file"
    assert [p.name for p in full_disk.iterdir()] == [out.name]


def test_a_storage_lost_past_its_retries_stops_the_run_with_the_way_on(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage gone for ATLAS_DB_RETRY_S mid-run had ended it with `lost the storage for
    8 s: …` alone, though the campaign resumes; the release of the lease, retried as long
    again, then failed too and its error took the place of the first."""
    db = tmp_path / "atlas.db"
    monkeypatch.chdir(tmp_path)
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=60, search__batch_size=4,
                                                      search__max_in_flight=4))
    step, turns = Store.step, {"n": 0}

    def lost_after_three_turns(self: Store, *args: Any, **kwargs: Any) -> Any:
        turns["n"] += 1
        if turns["n"] > 3:
            raise StorageError("lost the storage for 8 s: connection failed: the server is gone")
        return step(self, *args, **kwargs)

    def release_lost(self: Store, *args: Any, **kwargs: Any) -> None:
        raise StorageError("lost the storage for 8 s: connection failed: still gone")

    monkeypatch.setattr(Store, "step", lost_after_three_turns)
    monkeypatch.setattr(Store, "finish_run", release_lost)
    [line] = assert_one_line_errors(invoke("run", str(spec), "--executor", "inline"))
    assert line == ("error: lost the storage for 8 s: connection failed: the server is gone; campaign 'quad' "
                    "stopped, every evaluation written before kept: `atlas resume quad --executor inline` "
                    "continues it once the storage answers (its lease lapses within 30 s)")
    counts, holder = sqlite_rows(db)
    assert counts["done"] > 0 and holder is not None  # what the three turns wrote; the lease left to lapse
