"""The flat exports' columns follow the spec (:func:`archive.export.spec_order`): ``params.*``
in the space's order and ``measures.*`` in the measures', whatever the first row holds, then
keys the spec does not name in order of first appearance."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq

import archive
from archive.export import EVALUATION_FIELDS, ExportData, flat_table
from search import api
from tests.conftest import quadratic_spec


def _groups(columns: list[str], group: str) -> list[str]:
    return [c.removeprefix(f"{group}.") for c in columns if c.startswith(f"{group}.")]


def test_param_columns_follow_the_space_not_the_first_row(sqlite_url: str, tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=6, search__algorithm="random")
    spec["space"] = {"opt": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "momentum": {"type": "float", "low": 0.0, "high": 0.9, "when": {"opt": "sgd"}}, **spec["space"]}
    spec["search"]["initial_points"] = [{"b": 0.2, "a": 0.1, "opt": "adam"}]  # the first row: no momentum, b before a
    api.run(spec, storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        camp = handle.campaign("quad")
        first = camp.export(tmp_path / "e.json")
        with_csv = camp.export(tmp_path / "e.csv")
        with_parquet = camp.export(tmp_path / "e.parquet")
    assert list(json.loads(first.read_text())["evaluations"][0]["params"]) != ["opt", "momentum", "a", "b"]
    with with_csv.open(newline="") as f:
        header = next(csv.reader(f))
    assert _groups(header, "params") == ["opt", "momentum", "a", "b"]
    assert _groups(header, "measures") == ["ma", "mb"]
    assert _groups(pq.read_table(with_parquet).column_names, "params") == ["opt", "momentum", "a", "b"]


def _row(i: int, params: dict, measures: dict) -> list:
    values = {"id": i, "seq": i, "params": json.dumps(params), "status": "done", "objective": 1.0,
              "measures": json.dumps(measures), "metrics": json.dumps({"z": 1, "y": 2}), "cell": 0,
              "proposer": "random", "attempts": 1}
    return [values.get(f) for f in EVALUATION_FIELDS]


def test_measures_in_the_spec_s_order_and_unnamed_keys_after_in_first_appearance() -> None:
    spec = {"space": {"x": {}, "y": {}, "gone": {}}, "measures": [{"name": "m1"}, {"name": "m2"}]}
    rows = [_row(1, {"extra2": 0, "y": 1, "x": 2}, {"m2": 0.1, "m1": 0.2}),
            _row(2, {"x": 1, "extra1": 3, "y": 0}, {"m3": 1.0, "m1": 0.1, "m2": 0.3})]
    columns = flat_table(ExportData("c", spec, "finished", rows, [])).column_names
    assert _groups(columns, "params") == ["x", "y", "extra2", "extra1"]  # "gone": no row has it, no column
    assert _groups(columns, "measures") == ["m1", "m2", "m3"]
    assert _groups(columns, "metrics") == ["z", "y"]


def test_a_spec_without_a_space_keeps_first_appearance() -> None:
    rows = [_row(1, {"b": 0, "a": 1}, {"m": 0.1})]
    columns = flat_table(ExportData("c", {}, "finished", rows, [])).column_names
    assert _groups(columns, "params") == ["b", "a"]
