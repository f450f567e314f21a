"""A storage URL that is wrong says where it came from and what was meant: one named by
``$ATLAS_STORAGE`` names the variable, an empty ``--storage`` is refused, a PostgreSQL
URL with a driver this install lacks (or a near-miss backend) names the URL to use, and a
SQLite path of three slashes that names nothing in the working folder, where its absolute
reading names a file, says to use four."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from archive.engine import parse_storage_url
from archive.errors import CampaignNotFound, StorageURLError
from archive.store import Store
from search import api
from search.cli import app
from tests.conftest import quadratic_spec


def atlas(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def error_lines(result: Any) -> list[str]:
    """The ``error:`` lines of a failed command (exit 2), asserting that it printed nothing else."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), lines
    return lines


# -- 1. where the URL came from ---------------------------------------------------------------
@pytest.mark.parametrize("args", [("status",), ("elites", "quad"), ("migrate",)])
def test_a_bad_atlas_storage_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                args: tuple[str, ...]) -> None:
    """Before: ``error: unsupported storage 'sqlit' in sqlit:///x; …``, the variable that
    held it nowhere in sight (no --storage was typed)."""
    monkeypatch.chdir(tmp_path)
    lines = error_lines(atlas(*args, env={"ATLAS_STORAGE": "sqlit:///x"}))
    assert lines == ["error: ATLAS_STORAGE=sqlit:///x: unsupported storage 'sqlit' in sqlit:///x; "
                     "did you mean sqlite:///x?"]
    assert list(tmp_path.iterdir()) == []


def test_a_bad_atlas_storage_is_named_by_a_run_with_its_password_hidden(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=4)))
    (line,) = error_lines(atlas("run", str(spec), "--executor", "inline",
                                env={"ATLAS_STORAGE": "mysql://root:hunter2@db/x"}))
    assert line.startswith("error: ATLAS_STORAGE=mysql://root:***@db/x: unsupported storage 'mysql'"), line
    assert "hunter2" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_missing_file_named_by_atlas_storage_names_the_variable(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (line,) = error_lines(atlas("status", env={"ATLAS_STORAGE": "sqlite:///typo.db"}))
    assert line.startswith("error: ATLAS_STORAGE=sqlite:///typo.db: cannot open storage sqlite:///typo.db: "
                           "the file typo.db does not exist"), line


def test_a_url_given_with_storage_is_not_said_to_come_from_the_variable(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (line,) = error_lines(atlas("status", "--storage", "sqlit:///y", env={"ATLAS_STORAGE": "sqlite:///x.db"}))
    assert line.startswith("error: unsupported storage 'sqlit' in sqlit:///y"), line


def test_the_api_names_a_bad_atlas_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_STORAGE", "sqlit:///x")
    with pytest.raises(StorageURLError, match=r"^ATLAS_STORAGE=sqlit:///x: unsupported storage 'sqlit'"):
        api.checked_storage(None)
    with pytest.raises(StorageURLError, match=r"^unsupported storage 'sqlit'"):  # given: not the variable's
        api.run(quadratic_spec(), storage="sqlit:///x", executor="inline")


def test_an_empty_storage_option_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``--storage ''`` meant the default without a word: ``no campaigns in this
    storage`` (or, with no file, ``the file atlas.db does not exist``), the storage unnamed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_STORAGE", raising=False)
    api.run(quadratic_spec(search__budget=4), storage="sqlite:///atlas.db", executor="inline")
    for args in (("status",), ("elites", "quad"), ("export", "quad", "--out", "x.json"), ("delete", "quad", "--yes")):
        lines = error_lines(atlas(*args, "--storage", ""))
        assert lines == ["error: --storage is empty: give a storage URL (sqlite:///FILE or postgresql+psycopg://"
                         "USER@HOST/DB), or leave --storage out for the default ($ATLAS_STORAGE, else "
                         "sqlite:///atlas.db)"], (args, lines)
    assert not (tmp_path / "x.json").exists()
    assert atlas("status", "quad").exit_code == 0  # not deleted


# -- 2. a driver or backend near miss ---------------------------------------------------------
@pytest.mark.parametrize(("url", "meant"), [
    ("postgres+psycopg://u@db.example/atlas", "postgresql+psycopg://u@db.example/atlas"),
    ("postgres://u:secret@db.example/atlas", "postgresql+psycopg://u:***@db.example/atlas"),
    ("pgsql://u@db.example/atlas", "postgresql+psycopg://u@db.example/atlas"),
    ("sqlit:///runs/a.db", "sqlite:///runs/a.db"),
    ("sqlite3:///a.db", "sqlite:///a.db"),
])
def test_a_near_miss_backend_names_the_url_meant(url: str, meant: str) -> None:
    """Before: ``unsupported storage 'postgres' in …; use sqlite:///FILE or …``, the one
    letter missing left to be found."""
    with pytest.raises(StorageURLError, match=r"^unsupported storage ") as caught:
        parse_storage_url(url)
    assert str(caught.value).endswith(f"; did you mean {meant}?")
    assert "secret" not in str(caught.value)


def test_an_unrelated_backend_keeps_the_url_forms() -> None:
    with pytest.raises(StorageURLError) as caught:
        parse_storage_url("mysql://root@127.0.0.1/db")
    assert "did you mean" not in str(caught.value)
    assert str(caught.value).endswith("use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB")


def test_a_driver_this_install_lacks_names_the_one_it_has() -> None:
    """Before: ``cannot open storage postgresql+psycopg2://…: No module named 'psycopg2'``."""
    pytest.importorskip("psycopg")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    for readonly in (True, False):
        with pytest.raises(StorageURLError) as caught:
            Store("postgresql+psycopg2://u:secret@127.0.0.1:1/atlas", readonly=readonly)
        assert str(caught.value) == (
            "cannot open storage postgresql+psycopg2://u:***@127.0.0.1:1/atlas: its driver psycopg2 is not installed "
            "(No module named 'psycopg2'); use postgresql+psycopg://u:***@127.0.0.1:1/atlas, the driver this "
            "install has")


# -- 2. three slashes: a relative path ----------------------------------------------------------
@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """An archive at an absolute path, and the working folder another, empty one; the URL of
    three slashes that names it relative to the working folder (``sqlite:///tmp/…/x.db``)."""
    db = tmp_path / "runs" / "x.db"
    db.parent.mkdir()
    api.run(quadratic_spec(search__budget=4), storage=f"sqlite:///{db}", executor="inline")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return db, f"sqlite:///{str(db).lstrip('/')}"


def test_three_slashes_for_an_absolute_file_say_to_use_four(elsewhere: tuple[Path, str]) -> None:
    """Before: ``the file tmp/…/x.db does not exist; run a campaign first …``: the campaign
    had run, into the file the user meant; the slash missing was not said."""
    db, url = elsewhere
    hint = (f"three slashes make a path relative to the working folder ({Path.cwd()}); for {db} use four: "
            f"sqlite:///{db}")
    for args in (("status",), ("status", "quad"), ("elites", "quad"), ("resume", "quad")):
        (line,) = error_lines(atlas(*args, "--storage", url))
        assert line.endswith(f"{str(db).lstrip('/')} does not exist; {hint}"), (args, line)
    with pytest.raises(CampaignNotFound, match="does not exist; three slashes"):
        api.resume("quad", storage=url, executor="inline")
    assert list(Path.cwd().iterdir()) == []


def test_three_slashes_for_an_absolute_folder_say_to_use_four_before_a_run(elsewhere: tuple[Path, str]) -> None:
    db, url = elsewhere
    spec = db.parent / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=4)))
    new = url.replace("x.db", "new.db")
    (line,) = error_lines(atlas("run", str(spec), "--executor", "inline", "--storage", new, "--map", "m.png"))
    assert line == (f"error: cannot open storage {new}: the folder {str(db.parent).lstrip('/')} does not exist; "
                    f"three slashes make a path relative to the working folder ({Path.cwd()}); for "
                    f"{db.parent / 'new.db'} use four: sqlite:///{db.parent / 'new.db'}")
    assert list(Path.cwd().iterdir()) == [] and not (db.parent / "new.db").exists()


def test_a_relative_file_missing_everywhere_keeps_the_plain_hint(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (line,) = error_lines(atlas("status", "--storage", "sqlite:///nowhere/x.db"))
    assert line.endswith("the file nowhere/x.db does not exist; run a campaign first (`atlas run SPEC` writes it), "
                         "or name the storage that holds it (--storage URL, or ATLAS_STORAGE)"), line
