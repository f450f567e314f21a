"""``atlas elites`` (its table) tells apart values of different types that read alike.

The choices ``"1"`` and ``1``, ``"false"`` and ``false`` had been shown alike (``1``, and
``false`` against ``False``), where ``--format csv``/``json`` and ``atlas export`` keep them
apart. A parameter's column whose values are of more than one kind (the export's rule,
:func:`archive.export.json_column`) now shows them as JSON writes them: strings quoted,
booleans ``true``/``false``; a column of one kind is shown as it always was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from search import cli as cli_module
from search import cli_tables
from search.plain_table import PLAIN_ROWS
from tests.test_cli_outputs import run_choice_campaign


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module.console, "_width", 100)


def as_json_writes(value: Any) -> str:
    """A value of a mixed column as the table shows it."""
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def shown(table: Any) -> list[str]:
    """The lines of ``table`` (a rich table or plain text) as the console prints them."""
    if isinstance(table, str):
        return table.splitlines()
    out = Console(width=cli_module.console.width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    out.print(table)
    return out.export_text().splitlines()


def rows_of(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"cell": i, "evaluation_id": i + 1, "objective": 1.0, "measures": {}, "params": p}
            for i, p in enumerate(params)]


def body(lines: list[str]) -> list[str]:
    """The lines below the header's rule."""
    rule = next(i for i, line in enumerate(lines) if line and set(line) == {"─"})
    return [line for line in lines[rule + 1:] if line.strip()]


def last_cells(lines: list[str]) -> list[str]:
    """Each row's last cell (cells are two spaces apart or more)."""
    return [line.rstrip().split("  ")[-1].strip() for line in body(lines)]


def test_the_table_tells_choices_of_mixed_types_apart_as_the_exports_do(tmp_path: Path, wide: None) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    run_choice_campaign(url)
    run = CliRunner().invoke(cli_module.app, ["elites", "cat", "--storage", url], catch_exceptions=False)
    exact = json.loads(CliRunner().invoke(cli_module.app, ["elites", "cat", "--storage", url, "--format", "json"],
                                          catch_exceptions=False).stdout)
    cells = last_cells(run.stdout.splitlines())
    assert cells == [as_json_writes(e["params"]["c"]) for e in exact]
    assert sorted(cells) == sorted(['"a"', '"1"', "1", "2.5", "false", '"false"'])


def test_a_mixed_column_is_quoted_in_every_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rich table, the plain one (past ``PLAIN_ROWS`` rows) and the one ``params``
    column of a narrow console show the same texts."""
    values = ["1", 1, True, "true", None, [1, "1", None]]
    params = [{"c": v, **{f"a_long_parameter_name_{j}": 0.5 for j in range(4)}} for v in values]
    names = sorted(params[0])
    expected = ['"1"', "1", "true", '"true"', "0.5", '[1, "1", null]']  # None: an empty cell
    monkeypatch.setattr(cli_module.console, "_width", 200)
    assert last_cells(shown(cli_tables.elites_table("t", rows_of(params), "score", [], names))) == expected
    plain = cli_tables.elites_table("t", rows_of(params * (PLAIN_ROWS // len(values) + 1)), "score", [], names)
    assert isinstance(plain, str) and last_cells(plain.splitlines())[:len(values)] == expected
    monkeypatch.setattr(cli_module.console, "_width", 60)
    narrow = "\n".join(shown(cli_tables.elites_table("t", rows_of(params), "score", [], names)))
    assert 'c="1"' in narrow and "c=1" in narrow and "c=true" in narrow and 'c="true"' in narrow


def test_a_column_of_one_kind_is_shown_as_before(wide: None) -> None:
    """Strings unquoted, booleans as Python writes them, numbers and vectors unchanged."""
    params = [{"s": "a b", "b": True, "n": 1, "x": 0.123456, "v": ["u", 0.5]},
              {"s": "1", "b": False, "n": 2.5, "x": None, "v": [1, 2, 3, 4, 5]}]
    lines = shown(cli_tables.elites_table("t", rows_of(params), "score", [], ["b", "n", "s", "v", "x"]))
    cells = [line.split(None, 3)[3] for line in body(lines)]
    assert [" ".join(c.split()) for c in cells] == ["True 1 a b [u, 0.5] 0.1235", "False 2.5 1 [1, 2, 3, 4, …]"]


def test_atlas_failures_quotes_a_mixed_parameter_as_the_elites_do(wide: None) -> None:
    failed = [{"id": i, "seq": i, "attempts": 1, "proposer": "p", "message": "boom", "error": "boom",
               "params": {"c": c, "s": "x"}} for i, c in enumerate(["1", 1])]
    text = "\n".join(shown(cli_tables.failures_table("failed", failed)))
    assert 'c="1", s=x' in text and "c=1, s=x" in text
