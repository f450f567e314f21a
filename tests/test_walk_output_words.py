"""What a newcomer's walk found in what the command line prints: a SQLite URL of two slashes
refused without saying the three- and four-slash forms, errors that did not name the option
(``bo.xlsx: …`` for ``--out bo.xlsx``) or named a missing campaign file twice
(``x.yaml: (file): no such file: x.yaml``), the run's summary broken inside ``QD-score
-62.5599`` on a narrow terminal, the elites' numeric parameters left-aligned, and ``atlas
law``'s default and per-run tables boxed where every other table is borderless."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from archive.engine import make_engine
from archive.errors import StorageURLError
from search import api, cli_tables
from search import cli as cli_module
from search.consoles import _Console
from search.plain_table import PLAIN_ROWS
from tests.conftest import quadratic_spec


def atlas(*args: str, width: int = 100) -> Any:
    """``atlas ARGS`` in this process at ``width`` columns; stdout and stderr apart."""
    return CliRunner().invoke(cli_module.app, list(args), env={"COLUMNS": str(width)}, terminal_width=width,
                              catch_exceptions=False)


@pytest.fixture(scope="module")
def quad(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A storage with ``quad`` (finished, 20 evaluations) and ``walk-bo`` (5)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('words') / 'words.db'}"
    api.run(quadratic_spec(search__budget=20), storage=url, executor="inline")
    api.run(quadratic_spec(name="walk-bo", search__budget=5), storage=url, executor="inline")
    return url


# -- 1. sqlite://x.db
@pytest.mark.parametrize("readonly", [True, False])
def test_a_sqlite_url_of_two_slashes_names_the_three_and_four_slash_forms(
        readonly: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It had said ``sqlite://x.db is an in-memory database: nothing to read`` alone."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageURLError) as refused:
        make_engine("sqlite://x.db", readonly=readonly)
    assert str(refused.value) == (
        f"sqlite://x.db is an in-memory database: two slashes read x.db as a host, not a file; use three for a "
        f"file relative to the working folder ({Path.cwd()}), sqlite:///x.db, or four for an absolute path, "
        f"sqlite:////abs/x.db")
    assert not (tmp_path / "x.db").exists()
    with pytest.raises(StorageURLError, match=r"^sqlite:// is an in-memory database: nothing to read$"):
        make_engine("sqlite://", readonly=True)  # no host: as it was


def test_atlas_status_of_a_two_slash_url_is_one_line_with_the_fix(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    done = atlas("status", "--storage", "sqlite://x.db")
    assert done.exit_code == 2
    assert done.stderr.count("\n") == 1 and "use three" in done.stderr
    assert "sqlite:///x.db" in done.stderr and "sqlite:////abs/x.db" in done.stderr


@pytest.mark.parametrize("readonly", [True, False])
def test_a_sqlite_url_with_a_host_and_a_file_is_refused_not_opened_here(
        readonly: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``sqlite://tmp/x.db`` had opened (and a run created) ``x.db`` in the working folder:
    SQLite ignores the host ``tmp``."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StorageURLError) as refused:
        make_engine("sqlite://tmp/x.db", readonly=readonly)
    assert str(refused.value) == (
        "sqlite://tmp/x.db names a host (tmp), which SQLite ignores: it would open x.db in the working folder; "
        "for the file tmp/x.db write sqlite:///tmp/x.db (relative to the working folder) or sqlite:////tmp/x.db "
        "(absolute)")
    assert list(tmp_path.iterdir()) == []


# -- 2. errors that name the option, and a missing file once
def test_an_output_of_the_wrong_suffix_names_its_option(quad: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas export NAME --out bo.xlsx`` had said ``bo.xlsx: the file must end in …``."""
    monkeypatch.chdir(tmp_path)
    export = atlas("export", "quad", "--out", "bo.xlsx", "--storage", quad)
    assert (export.exit_code, export.stderr.strip()) == (
        2, "error: --out bo.xlsx: the file must end in .json, .csv, .parquet")
    drawn = atlas("map", "quad", "--out", "m.xlsx", "--storage", quad)
    assert drawn.stderr.strip() == "error: --out m.xlsx: the file must end in .png, .svg, .pdf"
    assert atlas("map", "quad", "--out", str(tmp_path), "--storage", quad).stderr.strip() == \
        f"error: --out {tmp_path} is a directory; name a file"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(quadratic_spec(name="other", search__budget=5)))
    run = atlas("run", "c.yaml", "--map", "m.xlsx", "--storage", quad, "--executor", "inline")
    assert (run.exit_code, run.stderr.strip()) == (2, "error: --map m.xlsx: the file must end in .png, .svg, .pdf")


def test_check_output_without_an_option_names_the_path_alone(tmp_path: Path) -> None:
    from archive.outputs import FIGURE_SUFFIXES, check_output
    from entropy_atlas.errors import OutputPathError

    with pytest.raises(OutputPathError, match=r"^m\.xlsx: the file must end in \.png, \.svg, \.pdf$"):
        check_output(Path("m.xlsx"), FIGURE_SUFFIXES)


def test_a_missing_campaign_file_is_named_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas run nonexist.yaml`` had said ``nonexist.yaml: (file): no such file: nonexist.yaml``;
    the other problems of a file keep their ``(file)``."""
    monkeypatch.chdir(tmp_path)
    missing = atlas("run", "nonexist.yaml", "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    assert (missing.exit_code, missing.stderr.strip()) == (2, "error: nonexist.yaml: no such file")
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    empty = atlas("run", "empty.yaml", "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    assert empty.stderr.startswith("error: empty.yaml: (file): the file is empty")


# -- 3. the run's summary line on a narrow terminal
def test_the_summary_breaks_only_after_a_comma_on_a_narrow_terminal(quad: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """rich had broken it at any space: ``… cells filled (13.0%), QD-score`` over ``-62.5599, best …``."""
    from archive.records import Stats

    shown = io.StringIO()
    narrow = _Console(file=shown, width=60, force_terminal=True, color_system=None)
    monkeypatch.setattr(cli_module, "console", narrow)
    stats = Stats({"done": 30, "failed": 0}, 30, 30, 13, 100, 0.13, -62.5599, -0.0004648, 7)
    cli_module._summary("walk-bo", stats, quad, tmp_path / "m.png")
    lines = shown.getvalue().split("elite map:")[0].splitlines()
    assert lines == ["walk-bo: 30 evaluations (0 failed),", "13/100 cells filled (13.0%), QD-score -62.5599,",
                     "best -0.0004648"]


def test_the_summary_parts_go_on_lines_at_commas() -> None:
    parts = ["n: 30 evaluations (0 failed)", "13/100 cells filled (13.0%)", "QD-score -62.5599", "best 3"]
    assert cli_module._lines_at_commas(parts, None) == [", ".join(parts)]
    assert cli_module._lines_at_commas(parts, 60) == ["n: 30 evaluations (0 failed), 13/100 cells filled (13.0%),",
                                                      "QD-score -62.5599, best 3"]
    assert cli_module._lines_at_commas(["x" * 70, "best 3"], 60) == ["x" * 70 + ",", "best 3"]


# -- 4. the elites' numeric parameters; atlas law's tables
def rows_of(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"cell": i, "evaluation_id": i + 1, "objective": 1.0, "measures": {}, "params": p}
            for i, p in enumerate(params)]


def shown_lines(table: Any) -> list[str]:
    if isinstance(table, str):
        return table.splitlines()
    from rich.console import Console

    out = Console(width=cli_module.console.width, record=True, file=io.StringIO())
    out.print(table)
    return out.export_text().splitlines()


def body(lines: list[str]) -> list[str]:
    rule = next(i for i, line in enumerate(lines) if line and set(line) == {"─"})
    return [line.rstrip() for line in lines[rule + 1:] if line.strip()]


@pytest.mark.parametrize("many", [False, True])
def test_a_parameter_column_of_numbers_is_right_aligned(many: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every parameter's column had been left-aligned; strings and booleans stay so. ``many``:
    the plain table of more than ``PLAIN_ROWS`` rows, the same."""
    monkeypatch.setattr(cli_module.console, "_width", 100)
    params = [{"opt": "sgd", "flag": True, "lr": 0.001046}, {"opt": "adam", "flag": False, "lr": 12},
              {"opt": "sgd", "flag": True}]  # lr: none in one row
    rows = rows_of(params * (PLAIN_ROWS // 3 + 1 if many else 1))
    lines = body(shown_lines(cli_tables.elites_table("t", rows, "score", [], ["opt", "flag", "lr"])))
    numbered = [line for line in lines if not line.endswith(("True", "False"))]
    assert numbered and len({len(line) for line in numbered}) == 1  # lr's values end in one column
    texts = body(shown_lines(cli_tables.elites_table("t", rows, "score", [], ["lr", "opt", "flag"])))
    assert {line.rstrip().endswith(("True", "False")) for line in texts} == {True}
    assert len({len(line) for line in texts}) == 2  # "True" and "False" start in one column: left-aligned


def test_atlas_law_tables_are_borderless_as_every_other(tmp_path: Path) -> None:
    """The default (per-run) and cross-configuration tables had drawn heavy boxes."""
    from tests.rl.test_law_per_run import law_spec

    url = f"sqlite:///{tmp_path / 'law.db'}"
    api.run(law_spec("runs", 8), storage=url, executor="inline")
    for mode in ("per-run", "pooled", "cross-configuration"):
        done = atlas("law", "runs", "--storage", url, "--mode", mode, width=200)
        assert done.exit_code == 0, done.stderr
        assert not set("┏┃━│┌└╇┡") & set(done.stdout), done.stdout
        assert any(line and set(line.strip()) == {"─"} for line in done.stdout.splitlines())  # the header's rule
