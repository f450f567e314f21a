"""A Parquet export can be analysed alone: it carries the campaign's metadata, its integer
columns read as nullable integers in pandas, and a vector parameter is a list column (a
list-valued metric stays JSON text); the JSON export's elites carry ``seq`` and
``proposer`` as ``camp.elites()`` does."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

import archive
from archive.export import EVALUATION_FIELDS, METADATA_KEY, ExportData, flat_table, parquet_table
from search import api
from tests.conftest import quadratic_spec


def vector_probe(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """A vector ``x`` and an int ``n``; an integer metric; fails where ``n`` is 3."""
    x = [float(v) for v in params["x"]]
    if params["n"] == 3:
        raise ValueError("n = 3 fails")
    return {"objective": -sum(v * v for v in x), "measures": {"ma": x[0], "mb": x[1]},
            "metrics": {"count": len(x) + int(params["n"]), "curve": [v / 2 for v in x]}}


def vector_spec(**overrides: Any) -> dict[str, Any]:
    return quadratic_spec(
        search__budget=30, search__algorithm="random", search__fail_fast=0,
        resources={"timeout_s": 30, "max_retries": 0},
        evaluator={"kind": "python", "target": "tests.test_export_analysis:vector_probe"},
        space={"x": {"type": "float", "low": 0.0, "high": 1.0, "size": 3},
               "n": {"type": "int", "low": 1, "high": 4}},
        objective={"name": "loss", "direction": "minimize"},
        archive={"type": "grid", "qd_offset": -5.0}, **overrides)


@pytest.fixture
def vectors(sqlite_url: str) -> archive.CampaignHandle:
    api.run(vector_spec(), storage=sqlite_url, executor="inline")
    camp = archive.open(sqlite_url).campaign("quad")
    statuses = {e["status"] for e in camp.evaluations()}
    assert statuses == {"done", "failed"}, statuses
    return camp


def test_parquet_holds_the_campaign_s_metadata(vectors: archive.CampaignHandle, tmp_path: Path) -> None:
    """The schema metadata had been empty: no spec, objective direction, qd_offset or bins."""
    from archive.engine import script_head

    path = vectors.export(tmp_path / "run.parquet")
    meta = json.loads(pq.read_schema(path).metadata[METADATA_KEY])
    assert METADATA_KEY == b"entropy_atlas"
    assert meta["campaign"] == {"name": "quad", "status": "finished", "spec": vectors.spec}
    assert meta["objective"]["name"] == "loss" and meta["objective"]["direction"] == "minimize"
    assert [(m["name"], m["low"], m["high"], m["bins"]) for m in meta["measures"]] == [
        ("ma", 0.0, 1.0, 5), ("mb", 0.0, 1.0, 5)]
    assert meta["archive"]["qd_offset"] == -5.0
    assert meta["timestamps"]["unit"] == "seconds since the Unix epoch, UTC"
    assert meta["schema_revision"] == script_head()
    assert meta["layout"] == vectors.record.layout and meta["layout"]["kind"] == "grid"
    # the QD-score rebuilt from the file alone, by the rule it states
    table = pq.read_table(path).to_pylist()
    sign = 1.0 if meta["objective"]["direction"] == "maximize" else -1.0
    rebuilt = math.fsum(sign * r["objective"] - meta["archive"]["qd_offset"] for r in table if r["elite"])
    assert rebuilt == pytest.approx(vectors.stats().qd_score, rel=1e-12)


def test_a_cvt_export_carries_its_centroids(sqlite_url: str, tmp_path: Path) -> None:
    """A CVT map's cells follow centroids drawn once and stored; the Parquet file had not
    held them, so its ``cell`` column could not be placed on the map from the file alone."""
    spec = quadratic_spec(search__budget=12, archive={"type": "cvt", "cells": 6, "samples": 200})
    api.run(spec, storage=sqlite_url, executor="inline")
    camp = archive.open(sqlite_url).campaign("quad")
    meta = json.loads(pq.read_schema(camp.export(tmp_path / "cvt.parquet")).metadata[METADATA_KEY])
    centroids = meta["layout"]["centroids"]
    assert meta["layout"]["kind"] == "cvt" and len(centroids) == 6 and all(len(c) == 2 for c in centroids)
    assert centroids == camp.record.layout["centroids"]


def test_pandas_reads_integer_columns_as_nullable_integers(vectors: archive.CampaignHandle, tmp_path: Path) -> None:
    """``cell`` (null on a failed row) and an integer metric had come out as ``float64``."""
    frame = pd.read_parquet(vectors.export(tmp_path / "run.parquet"))
    assert str(frame["cell"].dtype) == "Int64" and str(frame["metrics.count"].dtype) == "Int64"
    assert str(frame["params.n"].dtype) == "Int64"
    assert str(frame["id"].dtype) == str(frame["seq"].dtype) == "int64" and str(frame["elite"].dtype) == "bool"
    failed = frame["status"] == "failed"
    assert frame.loc[failed, "cell"].isna().all() and frame.loc[~failed, "cell"].notna().all()
    assert frame.loc[failed, "metrics.count"].isna().all()
    stored = {e["id"]: e for e in vectors.evaluations()}
    for row in frame[~failed].to_dict("records"):
        want = stored[row["id"]]
        assert (row["cell"], row["metrics.count"], row["params.n"]) == (want["cell"], want["metrics"]["count"],
                                                                        want["params"]["n"])


def test_a_vector_parameter_is_a_parquet_list_column_and_csv_text(vectors: archive.CampaignHandle,
                                                                   tmp_path: Path) -> None:
    """``params.x`` had been JSON text in Parquet (``'[0.1,0.2,0.3]'``)."""
    table = pq.read_table(vectors.export(tmp_path / "run.parquet"))
    assert str(table.schema.field("params.x").type) == "list<element: double>"
    assert str(table.schema.field("metrics.curve").type) == "string"  # a metric: typed by no spec, JSON text
    stored = {e["id"]: e for e in vectors.evaluations()}
    for row in table.to_pylist():
        assert row["params.x"] == stored[row["id"]]["params"]["x"]
        curve = row["metrics.curve"]
        assert (curve and json.loads(curve)) == (stored[row["id"]]["metrics"] or {}).get("curve")
    with vectors.export(tmp_path / "run.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            assert json.loads(row["params.x"]) == stored[int(row["id"])]["params"]["x"]


def _row(i: int, params: dict[str, Any]) -> list[Any]:
    values = {"id": i, "seq": i, "params": json.dumps(params), "status": "done", "objective": 1.0,
              "measures": "{}", "metrics": "{}", "cell": 0, "proposer": "random", "attempts": 1}
    return [values.get(f) for f in EVALUATION_FIELDS]


@pytest.mark.parametrize(("values", "kind"), [
    ([[1, 2], [2.5], None], "list<item: double>"),
    ([[1, 2], [3]], "list<item: int64>"),
    ([["a"], ["b", "c"]], "list<item: string>"),
    ([[[1, 2]], [[3]]], "list<item: list<item: int64>>"),
    ([[1, "a"], [2]], "string"),          # mixed inside a list: JSON text
    ([[{"a": 1}], [2]], "string"),        # an object inside: JSON text
    ([[True, 1], [2]], "string"),
    ([[], []], "string"),                 # nothing to type the items
    ([[2 ** 64 - 1], [1]], "string"),     # past a signed 64-bit integer
    ([[1], "text"], "string"),            # a list on one row, a string on another
])
def test_only_plain_lists_become_list_columns(values: list[Any], kind: str) -> None:
    rows = [_row(i, {"v": v} if v is not None else {}) for i, v in enumerate(values)]
    data = ExportData("c", {}, "finished", rows, [])
    column = parquet_table(data).column("params.v")
    assert str(column.type) == kind
    if kind == "string":
        assert column.to_pylist() == [None if v is None else json.dumps(v, separators=(",", ":")) for v in values]
    else:
        assert column.to_pylist() == values
    assert str(flat_table(data).schema.field("params.v").type) == "string"  # CSV's table: JSON text


def test_the_json_export_s_elites_carry_seq_and_proposer(vectors: archive.CampaignHandle, tmp_path: Path) -> None:
    """The export's elites had only cell, evaluation id, objective, measures and params."""
    doc = json.loads(vectors.export(tmp_path / "run.json").read_text())
    by_id = {e["evaluation_id"]: e for e in vectors.elites()}
    assert doc["elites"]
    for elite in doc["elites"]:
        assert list(elite) == ["cell", "evaluation_id", "objective", "measures", "params", "seq", "proposer"]
        assert (elite["seq"], elite["proposer"]) == (by_id[elite["evaluation_id"]]["seq"],
                                                     by_id[elite["evaluation_id"]]["proposer"])
