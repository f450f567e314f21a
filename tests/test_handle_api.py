"""The Python API's handles (`archive/handle.py`) against a user's mistakes: every argument of
the wrong type is a `TypeError` naming it (a law's `measure` and `mode`, `status`, an
output's `path`, …), a closed handle reads nothing, and a SQLite file removed under an open
handle is the one-line `StorageError` that `archive.open` gives for a missing file."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

import archive
from archive.errors import StorageError
from archive.law import LawFitError
from tests.conftest import finished_quadratic


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small finished campaign ``q`` in a SQLite file, written once for the module."""
    return finished_quadratic(tmp_path_factory.mktemp("handle"), budget=6, batch=3)


@pytest.fixture
def db(made: Path, tmp_path: Path) -> Path:
    """A copy of the module's archive, this test's own to close or remove."""
    return Path(shutil.copy(made, tmp_path / "atlas.db"))


@pytest.fixture
def camp(db: Path) -> Iterator[archive.CampaignHandle]:
    with archive.open(f"sqlite:///{db}") as handle:
        yield handle.campaign("q")


# -- 1. a wrong type is a TypeError naming the argument -------------------------------------

WRONG_TYPES: dict[str, tuple[Callable[[Any, Path], Any], str]] = {
    "law measure=3": (lambda c, _: c.law(measure=3), r"^measure: must be a measure's name \(a str\) or None, got 3"),
    "law measure=[...]": (lambda c, _: c.law(measure=["final_entropy"]), r"^measure: .* got \['final_entropy'\]"),
    "law mode=3": (lambda c, _: c.law(mode=3), r"^mode: must be one of per-run, pooled, cross-configuration"),
    "law by=3": (lambda c, _: c.law(by=3), r"^by: must be a parameter's name"),
    "evaluations status=3": (lambda c, _: c.evaluations(status=3), r"^status: must be one of pending, .* got 3"),
    "map path=3": (lambda c, _: c.map(3), r"^path: must be a file's path \(a str or pathlib.Path\), got 3 \(an int\)"),
    "map data=3": (lambda c, t: c.map(t / "m.png", data=3), r"^data: must be map_data\(\)'s MapData"),
    "export path=3": (lambda c, _: c.export(3), r"^path: must be a file's path"),
    "export path=b'x.json'": (lambda c, _: c.export(b"x.json"), r"^path: must be a file's path"),
    "front path=3": (lambda c, _: c.front(3), r"^path: must be a file's path"),
    "checkpoint proposer=3": (lambda c, _: c.checkpoint(3), r"^proposer: must be a proposer's name"),
    "stats by_proposer=3": (lambda c, _: c.stats(by_proposer=3), r"^by_proposer: must be"),
    "lease_is_live now='x'": (lambda c, _: c.lease_is_live(now="x"), r"^now: must be a Unix time"),
    "delete force='no'": (lambda c, _: c.delete(force="no"), r"^force: must be True or False, got 'no' \(a str\)"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_a_wrong_type_is_a_type_error_naming_the_argument(camp: archive.CampaignHandle, tmp_path: Path,
                                                         case: str) -> None:
    """Before: ``'int' object has no attribute 'strip'`` (measure), ``LawFitError unknown law
    mode 3``, a ``ValueError`` for ``status=3``, ``expected str, bytes or os.PathLike object,
    not int`` naming no argument, a ``checkpoint(3)`` of None, a ``force="no"`` read as true."""
    call, message = WRONG_TYPES[case]
    with pytest.raises(TypeError, match=message):
        call(camp, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} <= {"atlas.db", "atlas.db-wal", "atlas.db-shm"}, "nothing written"


def test_a_wrong_string_keeps_its_own_error(camp: archive.CampaignHandle, tmp_path: Path) -> None:
    """A str naming nothing known is still the reader's: a ``ValueError`` for a status, a
    :class:`LawFitError` for a law's mode; a right one (a str path, a Path) still reads."""
    with pytest.raises(ValueError, match=r"^status: must be one of pending, running, done, failed \(got 'x'\)"):
        camp.evaluations(status="x")
    with pytest.raises(LawFitError, match="sideways"):  # law.py words it
        camp.law(mode="sideways")
    assert len(camp.evaluations(status="done")) == 6
    assert camp.export(str(tmp_path / "out.json")).is_file()
    assert camp.lease_is_live(now=0) in (True, False)


# -- 2. a closed handle, a removed file -----------------------------------------------------

def _reads(handle: archive.ArchiveHandle, camp: archive.CampaignHandle, out: Path) -> dict[str, Callable[[], Any]]:
    """Every read of a handle and of its campaign's, by name."""
    return {"stats": camp.stats, "elites": camp.elites, "evaluations": camp.evaluations,
            "proposer_counts": camp.proposer_counts, "model_calls": camp.model_calls, "checkpoint": camp.checkpoint,
            "map_data": camp.map_data, "outside_axes": camp.outside_axes, "law": camp.law,
            "failure_summary": camp.failure_summary, "failed_evaluations": camp.failed_evaluations,
            "refresh": camp.refresh, "export": lambda: camp.export(out / "out.json"),
            "map": lambda: camp.map(out / "map.png"), "front": lambda: camp.front(out / "front.png"),
            "delete": camp.delete, "campaigns": handle.campaigns, "campaign": lambda: handle.campaign("q")}


def test_a_closed_handle_reads_nothing(db: Path, tmp_path: Path) -> None:
    """Before: every read went on (``dispose`` had reopened the pool), and once the file was
    removed, ``OperationalError (sqlite3.OperationalError) unable to open database file
    (Background on this error at: …)``."""
    out = tmp_path / "out"
    out.mkdir()
    handle = archive.open(f"sqlite:///{db}")
    camp = handle.campaign("q")
    assert camp.stats().finished == 6
    handle.close()
    handle.close()  # twice: nothing more
    for name, read in _reads(handle, camp, out).items():
        with pytest.raises(StorageError, match=r"^the archive handle of sqlite:///.*atlas\.db is closed; open it "
                                               r"again with archive\.open\(URL\)$"):
            read()
        assert not list(out.iterdir()), name
    db.unlink()
    with pytest.raises(StorageError, match="is closed"):
        camp.stats()


def test_a_file_removed_under_an_open_handle_is_one_line(db: Path, tmp_path: Path) -> None:
    """Before: the pooled connection served the removed file's rows, as if it were there."""
    out = tmp_path / "out"
    out.mkdir()
    with archive.open(f"sqlite:///{db}") as handle:
        camp = handle.campaign("q")
        assert len(camp.elites()) > 0
        db.unlink()
        for name, read in _reads(handle, camp, out).items():
            with pytest.raises(StorageError, match=rf"^cannot open storage sqlite:///.*: the file {db} does not "
                                                   r"exist; run a campaign first") as caught:
                read()
            assert "\n" not in str(caught.value), name
            assert not list(out.iterdir()), name
    with pytest.raises(StorageError, match=rf"the file {db} does not exist"):  # as archive.open says it
        archive.open(f"sqlite:///{db}")


def test_a_database_error_under_a_read_is_one_line(camp: archive.CampaignHandle,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection the database refuses as a read begins: before, SQLAlchemy's
    ``OperationalError`` with its ``(Background on this error at: https://sqlalche.me/…)``."""
    def refused(*_: Any, **__: Any) -> Any:
        raise OperationalError("BEGIN", {}, Exception("unable to open database file"))

    monkeypatch.setattr(camp.store.engine, "connect", refused)
    with pytest.raises(StorageError, match=r"^storage sqlite:///.*: unable to open database file$"):
        camp.stats()
