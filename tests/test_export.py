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
from archive.store import Store
from search import api
from tests.conftest import quadratic_spec

SCALARS = ("id", "seq", "status", "objective", "cell", "elite", "proposer", "attempts", "error", "worker",
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


def _flat_value(value: Any) -> Any:
    """``value`` as a flat export holds it: a NaN as None, an infinity kept (a double column
    holds it), and within a nested value (JSON text) both as None."""
    if isinstance(value, float) and math.isinf(value):
        return value
    return _finite(value)


def _flat(evaluation: dict[str, Any], columns: list[str], elite_ids: set[int]) -> dict[str, Any]:
    """The flat row an export must write for one stored evaluation (nested values as JSON)."""
    row = {f: evaluation[f] for f in SCALARS if f != "elite"}
    row["elite"] = evaluation["id"] in elite_ids
    for name in columns:
        group, _, key = name.partition(".")
        if key:
            value = (evaluation[group] or {}).get(key)
            row[name] = _flat_value(value)
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
    if request.param == "sqlite":  # Python's json wrote NaN itself (PostgreSQL's json refuses it)
        store = Store(url)
        with store.write() as conn:
            conn.execute(text("""update evaluations set metrics = '{"curve": [NaN, 1e-320], "x": Infinity}'
                                 where seq = 1"""))
        store.close()
    camp = archive.open(url).campaign("quad")
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
    elite_ids = {e["evaluation_id"] for e in camp.elites()}
    expected = [_flat(e, columns, elite_ids) for e in evaluations]
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
                elif isinstance(value, bool):
                    assert got[name] == str(value).lower(), name
                elif isinstance(value, float):
                    assert float(got[name]) == value
                else:
                    assert got[name] == str(value), name


def test_flat_exports_mark_each_cells_elite(probed: tuple[Any, list[dict[str, Any]]], tmp_path: Path) -> None:
    camp, _ = probed
    elites = {e["evaluation_id"]: e["cell"] for e in camp.elites()}
    assert elites
    table = pq.read_table(camp.export(tmp_path / "run.parquet"))
    assert table.column_names.index("elite") == table.column_names.index("cell") + 1
    assert str(table.schema.field("elite").type) == "bool"
    flagged = {r["id"]: r["cell"] for r in table.to_pylist() if r["elite"]}
    assert flagged == elites  # exactly the elites, one per cell
    assert not any(r["elite"] for r in table.to_pylist() if r["status"] == "failed")
    with camp.export(tmp_path / "run.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["elite"] for r in rows} == {"true", "false"}
    assert {int(r["id"]): int(r["cell"]) for r in rows if r["elite"] == "true"} == elites


def precise(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """Values whose text loses something when rounded: thirds, a subnormal, a huge float."""
    x = [float(v) for v in params["x"]]
    return {"objective": sum(x) / 3, "measures": {"ma": x[0], "mb": x[-1]},
            "metrics": {"third": x[1] / 3, "tiny": 5e-324 * (1 + (x[2] > 0.5)), "huge": 1.2345678901234567e300 * x[3],
                        "curve": [v / 7 for v in x]}}


def test_csv_keeps_full_precision_and_whole_vectors(storage_url: str, tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=12, evaluator={"kind": "python", "target": "tests.test_export:precise"},
                          space={"x": {"type": "float", "low": 0.0, "high": 1.0, "size": 12}})
    api.run(spec, storage=storage_url, executor="inline")
    camp = archive.open(storage_url).campaign("quad")
    stored = camp.evaluations()
    with camp.export(tmp_path / "run.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(stored) == 12
    for got, want in zip(rows, stored, strict=True):
        x = json.loads(got["params.x"])
        assert x == want["params"]["x"] and len(x) == 12  # the whole vector, every digit
        assert float(got["objective"]) == want["objective"]
        for name in ("third", "tiny", "huge"):
            assert float(got[f"metrics.{name}"]) == want["metrics"][name]
        assert json.loads(got["metrics.curve"]) == want["metrics"]["curve"]
        assert float(got["measures.ma"]) == want["measures"]["ma"]


def store_spec(url: str, name: str, spec: dict[str, Any]) -> None:
    """Replace the stored spec of campaign ``name`` (as an archive of an older version, whose
    checks let more through, may hold it)."""
    from sqlalchemy import update

    from archive.models import Campaign

    store = Store(url)
    with store.write() as conn:
        conn.execute(update(Campaign.__table__).where(Campaign.__table__.c.name == name).values(spec=spec))
    store.close()


def test_exports_write_the_spec_without_its_secrets(storage_url: str, tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=6)
    api.run(spec, storage=storage_url, executor="inline")
    spec["evaluator"]["config"] = {"api_token": "tok-SECRET-1", "dsn": "postgresql://atlas:pw-SECRET-2@db/atlas",
                                   "api_key_env": "MY_KEY_VAR", "max_tokens": 64}
    store_spec(storage_url, "quad", spec)
    camp = archive.open(storage_url).campaign("quad")
    assert camp.spec["evaluator"]["config"]["api_token"] == "tok-SECRET-1"  # the archive keeps what it was given
    out = camp.export(tmp_path / "run.json")
    config = json.loads(out.read_text())["campaign"]["spec"]["evaluator"]["config"]
    assert config == {"api_token": "***", "dsn": "postgresql://atlas:***@db/atlas", "api_key_env": "MY_KEY_VAR",
                      "max_tokens": 64}
    for name in ("run.json", "run.csv", "run.parquet"):
        assert b"SECRET" not in camp.export(tmp_path / name).read_bytes()


def test_an_unknown_export_suffix_is_a_user_error_and_writes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    from entropy_atlas.errors import AtlasError

    api.run(quadratic_spec(search__budget=4), storage=sqlite_url, executor="inline")
    camp = archive.open(sqlite_url).campaign("quad")
    with pytest.raises(AtlasError, match=r"use \.json, \.csv or \.parquet"):
        camp.export(tmp_path / "new-dir" / "run.xlsx")
    assert not (tmp_path / "new-dir").exists()


def test_a_snapshot_reads_one_moment_of_the_database(storage_url: str) -> None:
    """Inside ``Store.snapshot`` every read sees the database as at its first: what an
    export reads (rows, then elites) cannot mix two moments of a running campaign."""
    from archive.records import NewEvaluation
    from archive.store import Store
    from search.campaigns import open_campaign
    from search.spec import parse_spec
    from tests.conftest import quadratic_spec

    writer = Store(storage_url)
    reader = Store(storage_url, readonly=True)
    try:
        cid = open_campaign(writer, parse_spec(quadratic_spec())).id

        def add(seq: int) -> None:
            writer.add_pending(cid, [NewEvaluation(seq=seq, params={"a": 0.1, "b": 0.2}, x=[0.1, 0.2],
                                                   proposer="test")])

        add(0)
        with reader.snapshot():
            before = len(reader.evaluations(cid))
            add(1)
            assert len(reader.evaluations(cid)) == before == 1
            assert len(reader.evaluation_texts(cid, ["id"], [])) == 1
        assert len(reader.evaluations(cid)) == 2
    finally:
        reader.close()
        writer.close()


def always_fails(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    raise ValueError("no result here")


def test_parquet_columns_keep_their_types_with_no_value_to_infer_them_from(sqlite_url: str, tmp_path: Path) -> None:
    """A column of nulls only (no objective where every evaluation failed, no error where
    none did) keeps its field's type; inferred from nulls it had been typed ``null``."""
    api.run(quadratic_spec(search__budget=4), storage=sqlite_url, executor="inline")
    clean = pq.read_schema(archive.open(sqlite_url).campaign("quad").export(tmp_path / "clean.parquet"))
    assert str(clean.field("error").type) == "string"
    assert str(clean.field("objective").type) == "double"
    failing = quadratic_spec(name="failing", search__budget=4, search__fail_fast=0,
                             evaluator={"kind": "python", "target": "tests.test_export:always_fails"})
    api.run(failing, storage=sqlite_url, executor="inline")
    schema = pq.read_schema(archive.open(sqlite_url).campaign("failing").export(tmp_path / "failing.parquet"))
    assert {name: str(schema.field(name).type) for name in ("objective", "cell", "error", "attempts")} == {
        "objective": "double", "cell": "int64", "error": "string", "attempts": "int64"}


def nested_or_not(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """Metrics of two kinds by row: an object or a number, a list or a string."""
    a, b = float(params["a"]), float(params["b"])
    low = a < 0.5
    return {"objective": a, "measures": {"ma": a, "mb": b},
            "metrics": {"k": {"a": 1} if low else 5, "v": [1, 2] if low else "text", "s": "plain"}}


def test_a_mixed_column_holds_each_values_json_text_once(storage_url: str, tmp_path: Path) -> None:
    """A metric ``{"a": 1}`` on one row and ``5`` on another had come out as
    ``"{\\"a\\":1}"`` (JSON text of JSON text), and ``[1, 2]`` beside ``"text"`` as
    ``[1,2]`` and ``text``, which no reader can tell apart. Every cell of a mixed column is
    now its value's JSON text, encoded once; a column of one kind is as before."""
    spec = quadratic_spec(search__budget=2, search__batch_size=2,
                          search__initial_points=[{"a": 0.1, "b": 0.1}, {"a": 0.9, "b": 0.9}],
                          evaluator={"kind": "python", "target": "tests.test_export:nested_or_not"})
    api.run(spec, storage=storage_url, executor="inline")
    camp = archive.open(storage_url).campaign("quad")
    stored = {e["id"]: e["metrics"] for e in camp.evaluations()}
    assert {json.dumps(m["k"]) for m in stored.values()} == {'{"a": 1}', "5"}
    with camp.export(tmp_path / "run.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = pq.read_table(camp.export(tmp_path / "run.parquet"))
    assert str(table.schema.field("metrics.k").type) == str(table.schema.field("metrics.v").type) == "string"
    for got in (rows, table.to_pylist()):
        assert len(got) == 2
        for row in got:
            want = stored[int(row["id"])]
            assert json.loads(row["metrics.k"]) == want["k"] and json.loads(row["metrics.v"]) == want["v"]
            assert row["metrics.s"] == "plain"  # one kind: the string itself
    assert sorted(r["metrics.v"] for r in rows) == ['"text"', "[1,2]"]


def no_number(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """Metrics that never hold a number: always null, always NaN (stored as null)."""
    a, b = float(params["a"]), float(params["b"])
    return {"objective": a, "measures": {"ma": a, "mb": b}, "metrics": {"none": None, "nan": math.nan}}


def test_a_metric_with_no_number_is_a_double_column_and_keeps_its_infinities(storage_url: str,
                                                                              tmp_path: Path) -> None:
    """A metric always NaN, infinite or null had a ``null``-typed Parquet column (only the
    fixed fields were typed), and an infinity written by Python's json came out as null.
    Such a column is ``double`` now, and an infinity stays one (NaN is null, as in JSON)."""
    api.run(quadratic_spec(search__budget=4, evaluator={"kind": "python", "target": "tests.test_export:no_number"}),
            storage=storage_url, executor="inline")
    infinite = storage_url.startswith("sqlite")
    if infinite:  # Python's json wrote them itself (PostgreSQL's json refuses them)
        store = Store(storage_url)
        with store.write() as conn:
            conn.execute(text("""update evaluations set metrics = '{"none": null, "nan": NaN, "inf": Infinity,
                                 "neg": -Infinity}'"""))
        store.close()
    camp = archive.open(storage_url).campaign("quad")
    table = pq.read_table(camp.export(tmp_path / "run.parquet"))
    names = ["metrics.none", "metrics.nan", *(["metrics.inf", "metrics.neg"] if infinite else [])]
    assert {name: str(table.schema.field(name).type) for name in names} == dict.fromkeys(names, "double")
    rows = table.to_pylist()
    assert all(r["metrics.none"] is None and r["metrics.nan"] is None for r in rows)
    if infinite:
        assert [(r["metrics.inf"], r["metrics.neg"]) for r in rows] == [(math.inf, -math.inf)] * 4
        with camp.export(tmp_path / "run.csv").open(newline="") as fh:
            assert {(float(r["metrics.inf"]), float(r["metrics.neg"])) for r in csv.DictReader(fh)} == {
                (math.inf, -math.inf)}
