"""What the command line writes, polished after a user's walkthrough: ``atlas elites``'
columns are every parameter of the space in the space's order, whatever ``--top`` shows;
a line of text is never hard-wrapped off a terminal; an empty campaign file, a bare path
given as ``--storage`` and an export that fails as it is written each say what is wrong
in the user's own terms."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.table import Table
from typer.testing import CliRunner

from archive.engine import URL_FORMS, parse_storage_url
from archive.errors import StorageError
from archive.outputs import replacing
from search import api, cli_tables
from search import cli as cli_module
from search.consoles import _Console
from search.spec import SpecError, load_spec
from tests.conftest import quadratic_spec

#: the space's order, on purpose not alphabetical; ``beta`` is conditional (``kind: b``)
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}, "y": {"type": "float", "low": 0.0, "high": 1.0},
         "n": {"type": "int", "low": 1, "high": 5}, "kind": {"type": "categorical", "choices": ["a", "b"]},
         "alpha": {"type": "float", "low": 0.0, "high": 1.0},
         "beta": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kind": "b"}}}
ORDER = list(SPACE)
#: three ``kind: a`` points (the best three, without ``beta``), then three ``kind: b`` ones
POINTS = [{"x": 0.1 + 0.2 * i, "y": 0.1, "n": 1, "kind": "a", "alpha": 0.5} for i in range(3)] + [
    {"x": 0.1 + 0.2 * i, "y": 0.9, "n": 2, "kind": "b", "alpha": 0.5, "beta": 0.5} for i in range(3)]


def kind_scored(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """``kind: a`` scores 10, ``kind: b`` 1; the measures are ``x`` and ``y``."""
    return {"objective": 10.0 if params["kind"] == "a" else 1.0, "measures": {"ma": params["x"], "mb": params["y"]}}


def atlas(*args: str, width: int = 80) -> Any:
    """``atlas ARGS`` in this process, off a terminal, stdout and stderr apart."""
    return CliRunner().invoke(cli_module.app, list(args), env={"COLUMNS": str(width)}, catch_exceptions=False)


@pytest.fixture
def conditional(tmp_path: Path) -> str:
    """Campaign ``cond`` over :data:`SPACE` (its six :data:`POINTS`, each an elite), in a SQLite file: its URL."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(name="cond", space=SPACE, search__budget=6, search__batch_size=6,
                          search__initial_points=POINTS,
                          evaluator={"kind": "python", "target": "tests.test_output_polish:kind_scored"})
    api.run(spec, storage=url, executor="inline")
    return url


def csv_header(url: str, top: int) -> list[str]:
    shown = atlas("elites", "cond", "--storage", url, "--format", "csv", "--top", str(top))
    assert shown.exit_code == 0, shown.stderr
    return next(csv.reader(io.StringIO(shown.stdout)))


def test_elites_csv_has_every_parameter_in_the_space_order_whatever_top(conditional: str) -> None:
    """``--top 3`` (no elite with ``beta``) and ``--top 6`` have the same columns, the
    space's order: before, ``alpha,kind,n,x,y`` and ``alpha,beta,kind,n,x,y``."""
    expected = ["cell", "evaluation_id", "objective", "ma", "mb", *ORDER, "seq", "proposer"]
    assert csv_header(conditional, 3) == expected
    assert csv_header(conditional, 6) == expected


def test_elites_table_has_the_space_order_whatever_top(conditional: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's parameter columns (wide enough for one column each) as the CSV's."""
    monkeypatch.setattr(cli_module.console, "_width", 200)
    shown = atlas("elites", "cond", "--storage", conditional, "--top", "3", width=200)
    assert shown.exit_code == 0, shown.stderr
    header = shown.stdout.splitlines()[1].split()
    assert header == ["cell", "eval", "score", "ma", "mb", *ORDER]


def test_the_shared_params_column_and_failures_follow_the_space_order() -> None:
    """Params stored in another order (``alpha`` first) read in the space's order, in the
    elite table's ``params`` column and in ``atlas failures``' table alike."""
    params = {"alpha": 0.5, "kind": "a", "x": 0.25, "y": 0.75}
    rows = [{"cell": 1, "evaluation_id": 7, "objective": 1.0, "measures": {}, "params": params}]
    names = cli_tables.param_columns(ORDER, rows)
    assert names == ORDER
    failed = [{"id": 7, "seq": 0, "attempts": 1, "proposer": "p", "message": "boom", "error": "boom",
               "params": params}]
    console = _Console(file=io.StringIO(), width=200)
    console.print(cli_tables.failures_table("failed", failed, ORDER))
    assert "x=0.25, y=0.75, kind=a, alpha=0.5" in console.file.getvalue()


def test_a_console_off_a_terminal_writes_a_line_of_text_whole() -> None:
    """At 40 columns, off a terminal: a 120-character line is one line (rich had broken it
    at 40); a table is still laid out to the console; a call that asks for wrapping gets it."""
    console = _Console(file=io.StringIO(), width=40)
    line = "word " * 23 + "/a/long/path/to/elite-map.png"
    console.print(line)
    table = Table("name", "text")
    table.add_row("a", "many words " * 10)
    console.print(table)
    console.print(line, soft_wrap=False)
    lines = console.file.getvalue().splitlines()
    assert lines[0] == line.rstrip()
    assert max(len(w) for w in lines[1:]) <= 40


def test_atlas_run_to_a_file_writes_its_summary_and_map_line_whole(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas run … > o.txt`` at 80 columns: the summary (over 80 characters) and
    ``elite map: PATH`` each on one line, as a script greps them."""
    monkeypatch.setattr(cli_module.console, "_width", 80)
    name = "a-campaign-with-a-name-long-enough-to-pass-eighty-columns"
    spec = quadratic_spec(name=name, search__budget=10)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    figure = tmp_path / ("a-folder-with-a-long-name-" * 3) / "map.png"
    figure.parent.mkdir()  # a --map folder must exist (tests/test_storage_folders.py)
    done = atlas("run", str(path), "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'a.db'}",
                 "--map", str(figure))
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    summary = next(line for line in lines if line.startswith(f"{name}: "))
    assert "QD-score" in summary and "best" in summary and len(summary) > 80
    assert f"elite map: {figure.resolve()}" in lines


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing but a comment\n"], ids=["empty", "blank", "comment"])
def test_an_empty_campaign_file_says_it_is_empty(tmp_path: Path, text: str) -> None:
    """Before: ``(file): expected a mapping at the top level, got NoneType``."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert "the file is empty" in str(caught.value) and "NoneType" not in str(caught.value)
    shown = atlas("run", str(path), "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    assert shown.exit_code == 2
    assert shown.stderr.startswith(f"error: {path}: (file): the file is empty"), shown.stderr
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize(("given", "hint"), [("/tmp/walk/x.db", "sqlite:////tmp/walk/x.db"),
                                             ("runs/x.db", "sqlite:///runs/x.db"),
                                             ("atlas.sqlite", "sqlite:///atlas.sqlite"),
                                             ("my runs/a b.db", "sqlite:///my%20runs/a%20b.db")])
def test_a_path_given_as_storage_is_answered_with_its_url(given: str, hint: str) -> None:
    """Before: ``not a storage URL: '/tmp/walk/x.db'; use sqlite:///FILE or …``, the user
    left to work out the four slashes."""
    with pytest.raises(StorageError, match="not a storage URL") as caught:
        parse_storage_url(given)
    assert f"use {hint} for that SQLite file" in str(caught.value)
    assert parse_storage_url(hint).database == str(Path(given))


def test_a_storage_that_is_no_path_keeps_the_url_forms(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        parse_storage_url("not a url at all")
    assert str(caught.value).endswith(f"use {URL_FORMS}")
    shown = atlas("status", "--storage", str(tmp_path / "x.db"))
    assert shown.exit_code == 2 and f"use sqlite:///{tmp_path / 'x.db'} for that SQLite file" in shown.stderr


def test_an_error_writing_an_output_names_the_path_not_the_temporary(tmp_path: Path) -> None:
    """A library that names the file only in its message (pyarrow: ``Failed to open local
    file '/proc/.x.1496e28f.partial.csv'``) reads as an error of the path asked for."""
    path = tmp_path / "out.csv"
    with pytest.raises(FileNotFoundError) as caught, replacing(path) as temporary:
        raise FileNotFoundError(2, f"Failed to open local file '{temporary}'. Detail: [errno 2] No such file")
    assert ".partial" not in str(caught.value) and caught.value.filename == str(path)
    assert caught.value.strerror == "No such file or directory"
    with pytest.raises(OSError, match=r"out\.csv: disk on fire") as other, replacing(path) as temporary:
        raise OSError(f"{temporary}: disk on fire")
    assert ".partial" not in str(other.value)
    with pytest.raises(ValueError, match="unrelated"), replacing(path):
        raise ValueError("unrelated")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_atlas_export_into_proc_names_the_path_given(tmp_path: Path, suffix: str) -> None:
    """``/proc`` passes the folder's checks but refuses every new file."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    api.run(quadratic_spec(search__budget=4, search__batch_size=4), storage=url, executor="inline")
    shown = atlas("export", "quad", "--storage", url, "--out", f"/proc/x{suffix}")
    assert shown.exit_code == 2
    assert shown.stderr == f"error: cannot write /proc/x{suffix}: No such file or directory\n"


def test_a_narrow_campaign_list_keeps_what_resume_would_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns with wide numbers, the list had dropped "in flight" (``400 pending``:
    what ``atlas resume`` runs) before the QD-score."""
    monkeypatch.setattr(cli_tables.console, "_width", 80)
    row = {"name": "decoding-sweep", "algorithm": "map-elites", "status": "stopped", "finished": 82000,
           "budget": 200000, "failed": 0, "pending": 400, "in_flight": 0, "coverage": 0.4321,
           "qd_score": 123456.789, "best": 0.987654}
    table = cli_tables.campaigns_table([row])
    headers = [str(c.header) for c in table.columns]
    assert "in flight" in headers and "QD-score" not in headers and "algorithm" not in headers
    assert table.caption == "not shown at 80 columns: algorithm, QD-score (see `atlas status NAME`)"  # not unsaid
    monkeypatch.setattr(cli_tables.console, "_width", 200)
    assert cli_tables.campaigns_table([row]).caption is None


def test_a_run_off_a_terminal_writes_a_progress_line_every_so_often(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A run logged to a file showed nothing until it ended: rich draws its live bar there
    once, at the end. It now writes a plain line every ATLAS_PROGRESS_EVERY_S seconds."""
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=30, search__batch_size=2, search__max_in_flight=2,
                                                  evaluator={"kind": "python",
                                                             "target": "tests.support.evaluators:slow_quadratic"})))
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.05")
    monkeypatch.setenv("ATLAS_PROGRESS_EVERY_S", "0.2")
    shown = atlas("run", str(spec), "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'a.db'}",
                  "--map", str(tmp_path / "m.png"))
    assert shown.exit_code == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.startswith("evaluating ")]
    assert len(lines) >= 3 and "━" not in shown.stdout, shown.stdout  # no bar drawn at the end, cut to 80 columns
    done = [int(line.split()[1].split("/")[0]) for line in lines]
    assert done == sorted(done) and all(0 < n < 30 for n in done[:-1]) and done[-1] == 30  # the last as it ended
    assert all(line.split()[1].endswith("/30") and "  QD " in line and "  failed 0  0:00:0" in line for line in lines)
    assert "quad: 30 evaluations (0 failed)" in shown.stdout

    monkeypatch.setenv("ATLAS_PROGRESS_EVERY_S", "soon")
    refused = atlas("run", str(spec), "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'b.db'}")
    assert refused.exit_code == 2 and "ATLAS_PROGRESS_EVERY_S='soon': must be a number of seconds > 0" in refused.stderr
    assert not (tmp_path / "b.db").exists()
