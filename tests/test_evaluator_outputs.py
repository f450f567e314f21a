"""What an evaluator returns or raises fails its evaluation at most, never the run.

Each evaluator below returns or raises something the storage could not keep as it is (an
integer beyond 64 bits, a NUL, a lone surrogate), something ``float`` overflows on, or a
``BaseException`` that is not ``Exception``; the run must record every evaluation (done,
or failed with a message that names the cause) and finish, on SQLite and PostgreSQL. A
class target need not subclass ``Evaluator``, and its teardown's failure is a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import archive
from entropy_atlas.errors import AtlasError
from entropy_atlas.storable import storable_text
from search import api
from tests.conftest import quadratic_spec
from workers.contract import EvalContext
from workers.runner import json_safe

MEASURES = {"ma": 0.5, "mb": 0.5}


class Custom(BaseException):
    """Not an Exception: escapes an evaluator's own ``except Exception``."""


def big_metric(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": MEASURES, "metrics": {"n": 2**64, "huge": 10**5000, 2**70: "key"}}


def overflowing_objective(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 10**400, "measures": MEASURES}


def text_objective(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": "0.5", "measures": MEASURES}


def surrogate_error(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise ValueError("bad \udcff byte")


def nul_error(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise ValueError("bad\x00byte")


def nul_metric(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": MEASURES, "metrics": {"text": "a\x00b", "k\x00": 1, "s": "\ud800"}}


def base_exception(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise Custom("a BaseException")


def huge_message(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise RuntimeError("x" * 100_000)


def list_metrics(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": MEASURES, "metrics": [1, 2, 3]}


def error_beside_objective(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": MEASURES, "error": "fell back to the default model"}


def array_measures(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    import numpy as np

    return {"objective": 1.0, "measures": np.array([0.5, 0.5])}


def array_metrics(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    import numpy as np

    return {"objective": 1.0, "measures": MEASURES, "metrics": np.array([1, 2])}


def mixed_measure_keys(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": {1: 0.5, "mb": 0.5}}


def tuple_measure_key(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": {**MEASURES, ("x", 1): 0.3}}


def deep_metrics(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    return {"objective": 1.0, "measures": MEASURES, "metrics": {"deep": nested}}


class _NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def unreadable_objective(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": _NoRepr(), "measures": MEASURES, "metrics": {"odd": _NoRepr()}}


class _NoStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str")


def unprintable_exception(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise _NoStr()


def generator_exit(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise GeneratorExit("closed")


def huge_measure(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": {"ma": list(range(2_000_000)), "mb": 0.5}}


def nul_repr_exit(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise SystemExit("a\x00b" + "y" * 1_000_000)


def wanders_off(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    import os
    import tempfile

    os.chdir(tempfile.gettempdir())
    return {"objective": 1.0, "measures": MEASURES}


# (evaluator, status of every evaluation, what its error says, if failed)
CASES: dict[str, tuple[str, str | None]] = {
    "array_measures": ("failed", "measures must be a dict of name to number (got an ndarray: array("),
    "array_metrics": ("failed", "metrics must be a dict (got an ndarray: array("),
    "mixed_measure_keys": ("failed", "measure 'ma' is missing (got measures: ['1', 'mb'])"),
    "tuple_measure_key": ("done", None),
    "deep_metrics": ("done", None),
    "unreadable_objective": ("failed", "objective is not a finite number (got a _NoRepr: <_NoRepr instance at"),
    "unprintable_exception": ("failed", "_NoStr: <its message could not be read"),
    "generator_exit": ("failed", "GeneratorExit: closed"),
    "huge_measure": ("failed", "measure 'ma' is not a finite number (got a list: [0, 1, 2, 3,"),
    "nul_repr_exit": ("failed", "SystemExit: the evaluator called sys.exit('a\\x00byyyy"),
    "wanders_off": ("done", None),
    "big_metric": ("done", None),
    "overflowing_objective": ("failed", "objective is not a finite number (got an int: "),
    "text_objective": ("failed", "objective is not a finite number (got a str: '0.5')"),
    "surrogate_error": ("failed", "ValueError: bad \\udcff byte"),
    "nul_error": ("failed", "ValueError: bad\\x00byte"),
    "nul_metric": ("done", None),
    "base_exception": ("failed", "Custom: a BaseException"),
    "huge_message": ("failed", "(98000 more characters)"),
    "list_metrics": ("failed", "metrics must be a dict (got a list: [1, 2, 3])"),
    "error_beside_objective": ("done", None),
}


def _run(url: str, target: str, budget: int = 4, **overrides: Any) -> list[dict[str, Any]]:
    spec = quadratic_spec(name=target.replace("_", "-").lower(), search__budget=budget, search__batch_size=2,
                          search__max_in_flight=2, search__fail_fast=0, **overrides)
    spec["evaluator"]["target"] = f"tests.test_evaluator_outputs:{target}"
    stats = api.run(spec, storage=url, executor="inline")
    assert stats.finished == budget
    with archive.open(url) as handle:
        return list(handle.campaign(spec["name"]).evaluations())


@pytest.mark.parametrize("target", sorted(CASES))
def test_every_evaluation_is_recorded_and_the_run_finishes(storage_url: str, target: str) -> None:
    status, error = CASES[target]
    rows = _run(storage_url, target)
    assert [r["status"] for r in rows] == [status] * 4
    if error is not None:
        assert all(error in r["error"] for r in rows), rows[0]["error"]


def test_error_texts_are_bounded(sqlite_url: str) -> None:
    """A value shown in an error is cut (a 2,000,000-item measure had stored 16.9 MB a row,
    and ``atlas status`` ran for minutes); so is a ``sys.exit`` code."""
    for target in ("huge_measure", "nul_repr_exit"):
        assert max(len(r["error"]) for r in _run(sqlite_url, target)) < 3000


def test_an_evaluation_that_changes_directory_leaves_the_run_where_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the storage a relative path: the run ended with `cannot open storage
    sqlite:///atlas.db: the file atlas.db does not exist` where the evaluator had gone."""
    monkeypatch.chdir(tmp_path)
    rows = _run("sqlite:///atlas.db", "wanders_off")
    assert [r["status"] for r in rows] == ["done"] * 4
    assert Path.cwd() == tmp_path and (tmp_path / "atlas.db").is_file()
    with archive.open("sqlite:///atlas.db") as handle:
        assert handle.campaign("wanders-off").stats().finished == 4


def test_unstorable_metrics_are_kept_as_near_as_storage_allows(sqlite_url: str) -> None:
    metrics = _run(sqlite_url, "big_metric")[0]["metrics"]
    assert metrics["n"] == float(2**64)  # past 64 bits: a float
    assert metrics["huge"] == "<an integer of 16610 bits>"  # past a float and Python's digit limit
    assert metrics[str(2**70)] == "key"
    text = _run(sqlite_url, "nul_metric")[0]["metrics"]
    assert (text["text"], text["k\\x00"], text["s"]) == ("a\\x00b", 1, "\\ud800")


def test_an_error_beside_an_objective_is_kept_in_the_metrics(sqlite_url: str) -> None:
    row = _run(sqlite_url, "error_beside_objective")[0]
    assert row["status"] == "done" and row["metrics"]["error"] == "fell back to the default model"


def test_readers_take_metrics_that_are_not_an_object(sqlite_url: str, tmp_path: Path) -> None:
    """Rows an earlier version stored with metrics ``[1, 2, 3]``: the CSV and Parquet
    exports show them as ``metrics.value`` and ``law`` reads no metric from them."""
    import json

    import pyarrow.parquet as pq
    from sqlalchemy import update

    from archive.models import Evaluation

    _run(sqlite_url, "PlainClass")
    with archive.open(sqlite_url, readonly=False) as handle:
        with handle.store.write() as conn:
            conn.execute(update(Evaluation).values(metrics=[1, 2, 3]))
        camp = handle.campaign("plainclass")
        camp.export(tmp_path / "e.csv")
        table = pq.read_table(camp.export(tmp_path / "e.parquet"))
        assert table.column("metrics.value").to_pylist() == [json.dumps([1, 2, 3]).replace(" ", "")] * 4
        with pytest.raises(AtlasError, match="no measure or metric named 'nope'"):  # not AttributeError
            camp.law("nope", "cross-configuration")


def test_storable_text_escapes_only_what_storage_refuses() -> None:
    assert storable_text("plain é ✓") == "plain é ✓"
    assert storable_text("a\x00b\udcff") == "a\\x00b\\udcff"
    assert json_safe({"a": [2**63 - 1, -(2**63), 2**63]}) == {"a": [2**63 - 1, -(2**63), float(2**63)]}


class PlainClass:
    """README's class form without subclassing Evaluator: no teardown, no max_batch_size."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        self.offset = 1.0

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> list[dict[str, Any]]:
        return [{"objective": self.offset - p["a"], "measures": {"ma": p["a"], "mb": p["b"]}} for p in params]


class OnlyEvaluate:
    """No setup, no teardown: evaluate alone."""

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return {"objective": params["a"], "measures": {"ma": params["a"], "mb": params["b"]}}


class FailingTeardown(OnlyEvaluate):
    torn_down = 0

    def teardown(self) -> None:
        FailingTeardown.torn_down += 1
        raise RuntimeError("teardown boom")


@pytest.mark.parametrize("target", ["PlainClass", "OnlyEvaluate"])
def test_a_class_target_need_not_subclass_evaluator(sqlite_url: str, target: str) -> None:
    rows = _run(sqlite_url, target, budget=6)
    assert [r["status"] for r in rows] == ["done"] * 6


def test_a_failing_teardown_is_a_warning_and_the_run_stays_finished(
        sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.executor"):
        rows = _run(sqlite_url, "FailingTeardown")
    assert [r["status"] for r in rows] == ["done"] * 4
    assert FailingTeardown.torn_down == 1
    assert "teardown failed: RuntimeError: teardown boom" in caplog.text
    with archive.open(sqlite_url) as handle:
        assert handle.campaign("failingteardown").record.status == "finished"


def test_a_ray_worker_records_an_unstorable_outcome(tmp_path: Path) -> None:
    """Where the worker once died on an overflowing objective and every evaluation then
    timed out, each now fails with its own reason (the Ray actor runs the same code)."""
    pytest.importorskip("ray")
    from workers.executors.base import ExecutorConfig
    from workers.executors.ray_actor import EvaluatorActor
    from workers.runner import EvaluationTask

    config = ExecutorConfig(kind="python", config={}, target="tests.test_evaluator_outputs:overflowing_objective",
                            measure_names=["ma", "mb"], campaign="c")
    actor = EvaluatorActor(config)
    tasks = [EvaluationTask(i, i, {"a": 0.1, "b": 0.2}, seed=i) for i in range(3)]
    outcomes = actor.results(5.0, [(0, tasks)])
    assert [o.status for o in outcomes] == ["failed"] * 3
    assert "objective is not a finite number (got an int: " in outcomes[0].error


def near_max_objective(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.7e308, "measures": {"ma": float(params["a"]), "mb": float(params["b"])}}


def test_status_json_is_json_when_the_qd_score_passes_the_float_range(sqlite_url: str) -> None:
    """Elites of 1.7e308 sum past the largest float: ``"qd_score": Infinity`` is not JSON."""
    import json

    from typer.testing import CliRunner

    from search.cli import app

    _run(sqlite_url, "near_max_objective", budget=8)
    result = CliRunner().invoke(app, ["status", "near-max-objective", "--json", "--storage", sqlite_url])
    assert result.exit_code == 0, result.output

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    row = json.loads(result.stdout, parse_constant=refuse)
    assert row["qd_score"] is None and row["elites"] >= 2
