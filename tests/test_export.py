"""Exports hold exactly what the store holds: JSON, CSV and Parquet, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

import archive
from search import api
from tests.conftest import quadratic_spec

SCALARS = ("id", "seq", "status", "objective", "cell", "proposer", "attempts", "error", "worker",
           "created_at", "started_at", "finished_at")


def _strict(value: str) -> Any:
    raise ValueError(f"not valid JSON: {value}")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None, as every export writes them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _flat(evaluation: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """The flat row an export must write for one stored evaluation (nested values as JSON)."""
    row = {f: evaluation[f] for f in SCALARS}
    for name in columns:
        group, _, key = name.partition(".")
        if key:
            value = (evaluation[group] or {}).get(key)
            row[name] = _finite(value)
    return row


@pytest.fixture(params=["sqlite", "postgresql"])
def probed(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[archive.CampaignHandle, list[dict[str, Any]]]:
    """A finished campaign over a categorical and a conditional param, with failures, and
    the evaluations as the store decodes them."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    spec = quadratic_spec(search__budget=40, resources={"timeout_s": 30, "max_retries": 0})
    spec["evaluator"] = {"kind": "python", "target": "tests.support.evaluators:export_probe"}
    spec["space"] = {"a": {"type": "float", "low": 0.0, "high": 1.0},
                     "mode": {"type": "categorical", "choices": ["wide", "narrow"]},
                     "b": {"type": "float", "low": 0.0, "high": 1.0, "when": {"mode": ["wide"]}}}
    api.run(spec, storage=url, executor="inline")
    camp = archive.open(url).campaign("quad")
    if request.param == "sqlite":  # Python's json wrote NaN itself (PostgreSQL's json refuses it)
        with camp.store.write() as conn:
            conn.execute(text("""update evaluations set metrics = '{"curve": [NaN, 1e-320], "x": Infinity}'
                                 where seq = 1"""))
    evaluations = camp.evaluations()
    assert {e["status"] for e in evaluations} == {"done", "failed"}
    assert {e["params"]["mode"] for e in evaluations} == {"wide", "narrow"}
    return camp, evaluations


def test_json_export_holds_the_stored_values(probed: tuple[Any, list[dict[str, Any]]], tmp_path: Path) -> None:
    camp, evaluations = probed
    doc = json.loads(camp.export(tmp_path / "run.json").read_text(), parse_constant=_strict)
    assert doc["campaign"] == {"name": "quad", "spec": camp.spec, "status": "finished"}
    assert len(doc["evaluations"]) == len(evaluations)
    for got, stored in zip(doc["evaluations"], evaluations, strict=True):
        assert got == {f: _finite(stored[f]) for f in got}
        assert list(got) == ["id", "seq", "params", "status", "objective", "measures", "metrics", "cell",
                             "proposer", "attempts", "error", "worker", "created_at", "started_at", "finished_at"]
        if stored["status"] == "failed":
            assert got["objective"] is None and "out of range" in got["error"]
    by_id = {e["id"]: e for e in evaluations}
    assert [(e["cell"], e["evaluation_id"], e["objective"]) for e in doc["elites"]] == [
        (e["cell"], e["evaluation_id"], e["objective"]) for e in camp.elites()]
    for elite in doc["elites"]:
        assert elite["params"] == by_id[elite["evaluation_id"]]["params"]
        assert elite["measures"] == by_id[elite["evaluation_id"]]["measures"]


def test_flat_exports_hold_the_stored_values(probed: tuple[Any, list[dict[str, Any]]], tmp_path: Path) -> None:
    camp, evaluations = probed
    table = pq.read_table(camp.export(tmp_path / "run.parquet"))
    columns = table.column_names
    assert columns[:len(SCALARS)] == list(SCALARS)
    assert {"params.a", "params.mode", "params.b", "measures.ma", "measures.mb", "metrics.mode",
            "metrics.curve", "metrics.diverged", "metrics.eval_seconds"} <= set(columns)
    expected = [_flat(e, columns) for e in evaluations]
    rows = table.to_pylist()
    for got, want in zip(rows, expected, strict=True):
        for name in ("metrics.curve", "metrics.x"):  # nested values: JSON text of the stored value
            if isinstance(got.get(name), str):
                got[name] = json.loads(got[name])
        assert got == want
    assert any(r["params.b"] is None for r in rows) and any(r["objective"] is None for r in rows)
    assert table.schema.field("params.mode").type == "string"

    with camp.export(tmp_path / "run.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == columns
        for got, want in zip(reader, table.to_pylist(), strict=True):
            for name, value in want.items():
                if value is None:
                    assert got[name] == ""
                elif isinstance(value, float):
                    assert float(got[name]) == value
                else:
                    assert got[name] == str(value), name
