"""A folder that does not exist is never made for a path the user typed: a new SQLite
storage's (``atlas run --storage sqlite:////nonexist/dir/x.db`` had made ``/nonexist/dir``
and run there: a typo in the path wrote a new, empty archive where nobody would look) and an
output's (``atlas export --out /nonexistent/x.json``, ``--map``), each refused in one line
naming the folder, before anything is written. Entropy Atlas's own ``atlas-maps/…`` is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import archive
from archive.errors import StorageURLError
from archive.store import Store
from entropy_atlas.errors import OutputPathError
from search import api
from search.cli import app
from tests.conftest import quadratic_spec


def atlas(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(search__budget=4)))
    return path


def test_a_run_into_a_missing_folder_is_refused_and_makes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist" / "dir"
    result = atlas("run", str(spec_file(tmp_path)), "--executor", "inline", "--storage",
                   f"sqlite:///{missing / 'x.db'}", "--map", str(tmp_path / "m.png"))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: cannot open storage sqlite:///{missing / 'x.db'}: the folder {missing} does not exist; "
        f"create it first (mkdir -p {missing}), or correct the path"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_the_api_and_the_store_refuse_a_missing_folder_before_the_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'x.db'}"
    with pytest.raises(StorageURLError, match=f"the folder {tmp_path / 'no'} does not exist"):
        Store(url)
    warned: list[str] = []  # the spec's warnings come once the checks that need no workers pass
    with pytest.raises(StorageURLError, match="does not exist"):
        api.run(quadratic_spec(search__budget=4), storage=url, executor="inline", on_warning=warned.append)
    assert warned == []  # refused with those checks: before the workers start
    api.run(quadratic_spec(search__budget=4), storage=f"sqlite:///{tmp_path / 'x.db'}", executor="inline",
            on_warning=warned.append)
    assert warned  # (this spec has one: 25 cells, a budget of 4)
    assert not (tmp_path / "no").exists()


def test_a_storage_in_an_existing_folder_is_created(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    stats = api.run(quadratic_spec(search__budget=4), storage=f"sqlite:///{tmp_path / 'runs' / 'x.db'}",
                    executor="inline")
    assert stats.finished == 4 and (tmp_path / "runs" / "x.db").is_file()


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    return url


@pytest.mark.parametrize("command", [("export", "quad"), ("map", "quad"), ("front", "quad")])
def test_an_output_into_a_missing_folder_is_refused(tmp_path: Path, url: str, command: tuple[str, ...]) -> None:
    """Before: ``wrote /nonexistent/x.json``, the folders made."""
    missing = tmp_path / "nonexistent" / "sub"
    out = missing / ("x.json" if command[0] == "export" else "x.png")
    result = atlas(*command, "--out", str(out), "--storage", url)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: cannot write {out}: the folder {missing} does not exist; create it first (mkdir -p {missing}), "
        f"or correct the path"]
    assert not (tmp_path / "nonexistent").exists()


def test_a_handle_refuses_an_output_into_a_missing_folder(tmp_path: Path, url: str) -> None:
    with archive.open(url) as handle, pytest.raises(OutputPathError, match="does not exist; create it first"):
        handle.campaign("quad").export(tmp_path / "no" / "x.json")
    assert not (tmp_path / "no").exists()


def test_a_run_map_into_a_missing_folder_is_refused_before_the_run(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    result = atlas("run", str(spec_file(tmp_path)), "--executor", "inline", "--storage", f"sqlite:///{db}",
                   "--map", str(tmp_path / "maps" / "m.png"))
    assert result.exit_code == 2 and "the folder" in result.stderr and "does not exist" in result.stderr
    assert not db.exists() and not (tmp_path / "maps").exists()


def test_the_default_map_folder_is_still_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_STORAGE", raising=False)
    result = atlas("run", str(spec_file(tmp_path)), "--executor", "inline")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "atlas-maps" / "quad.png").is_file()
    other = atlas("run", str(spec_file(tmp_path)), "--executor", "inline", "--storage", "sqlite:///other.db")
    assert other.exit_code == 0, other.output
    assert len(list((tmp_path / "atlas-maps").glob("*/quad.png"))) == 1
