"""``atlas elites``'s table names the objective's and measures' columns with their units, as
the figures' axes do (``mean_entropy (nats)``, :func:`archive.units.with_unit`); a name
without a unit is its header alone. Before, the headers were the bare names. The machine-
readable forms keep the bare names (``--format json``'s keys, ``--format csv``'s header)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from rich.console import Console

from archive.units import unit_label, with_unit
from search import api, cli_tables
from search import cli as cli_module
from search.plain_table import PLAIN_ROWS
from tests.conftest import quadratic_spec
from tests.test_cli_outputs import atlas

UNITS = {"accuracy": "fraction", "mean_entropy": "nats"}  # distinct_2 has none


def rows(n: int = 2) -> list[dict[str, Any]]:
    return [{"cell": i, "evaluation_id": i + 1, "objective": 0.5, "params": {"t": 0.7},
             "measures": {"mean_entropy": 1.25, "distinct_2": 0.5}} for i in range(n)]


def header(table: Any, width: int) -> str:
    """The lines between a table's title and the rule under its header, as the console prints them."""
    if isinstance(table, str):
        lines = table.splitlines()
    else:
        out = Console(width=width, record=True, file=io.StringIO())
        out.print(table)
        lines = out.export_text().splitlines()
    rule = next(i for i, line in enumerate(lines) if line.strip() and set(line.strip()) <= {"─", " "})
    return "\n".join(lines[1:rule])


@pytest.mark.parametrize("n", [2, PLAIN_ROWS + 1])  # rich's table; plain text past PLAIN_ROWS rows
def test_the_elite_tables_headers_carry_the_units(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setattr(cli_module.console, "_width", 160)
    table = cli_tables.elites_table("t", rows(n), "accuracy", ["mean_entropy", "distinct_2"], ["t"], units=UNITS)
    head = header(table, 160)
    assert "accuracy (fraction)" in head and "mean_entropy (nats)" in head
    assert "distinct_2 " in head + " " and "distinct_2 (" not in head


def test_a_campaign_without_units_shows_the_bare_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module.console, "_width", 160)
    for units in (None, {}):
        head = header(cli_tables.elites_table("t", rows(), "accuracy", ["mean_entropy", "distinct_2"], ["t"],
                                              units=units), 160)
        assert head.split() == ["cell", "eval", "accuracy", "mean_entropy", "distinct_2", "t"]


def test_a_shared_names_column_carries_the_unit_of_its_measure() -> None:
    """A measure named as the objective is ``measures.NAME`` (:func:`column_labels`), with the measure's unit."""
    assert cli_tables.quantity_headers(["score", "score"], ["score", "measures.score"], {"score": "nats"}) == [
        "score (nats)", "measures.score (nats)"]
    assert cli_tables.quantity_headers(["m"], ["m"], {"m": "bits\x1b[31m"}) == ["m (bits\\x1b[31m)"]  # printable


def test_the_rule_is_the_figures_one() -> None:
    assert with_unit("mean_entropy", UNITS) == unit_label("mean_entropy", "nats") == "mean_entropy (nats)"
    assert with_unit("distinct_2", UNITS) == unit_label("distinct_2", "") == unit_label("distinct_2", None)


def test_json_keys_and_csv_headers_stay_the_bare_names(tmp_path: Any) -> None:
    """Machine-readable outputs name the objective and measures as the spec does, units or not."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(search__budget=10)
    spec["objective"]["unit"] = "fraction"
    spec["measures"][0]["unit"] = "nats"
    api.run(spec, storage=url, executor="inline")
    exact = json.loads(atlas("elites", "quad", "--storage", url, "--format", "json").stdout)
    assert list(exact[0]) == ["cell", "evaluation_id", "objective", "measures", "params", "seq", "proposer"]
    assert set(exact[0]["measures"]) == {"ma", "mb"}
    head = next(csv.reader(io.StringIO(atlas("elites", "quad", "--storage", url, "--format", "csv").stdout)))
    assert head == ["cell", "evaluation_id", "objective", "ma", "mb", "a", "b", "seq", "proposer"]


def test_atlas_elites_shows_the_units_in_its_header(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas elites`` (table) names the objective's and measures' columns with the campaign's units."""
    monkeypatch.setattr(cli_module.console, "_width", 160)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(search__budget=10)
    spec["objective"]["unit"] = "fraction"
    spec["measures"][0]["unit"] = "nats"
    api.run(spec, storage=url, executor="inline")
    out = atlas("elites", "quad", "--storage", url).stdout
    assert "score (fraction)" in out and "ma (nats)" in out and "mb (" not in out
