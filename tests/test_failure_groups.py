"""Atlas's own reasons for failing an evaluation name the cause, then the value that varies
in one trailing ``(got …)``; ``atlas failures``, ``atlas status NAME`` and the dashboard group
failures by the cause, so one cause is one group whatever each evaluation's value was."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

import workers.runner
from archive import store as store_module
from archive.store import NewEvaluation, Result, Store, failure_group
from dashboard.data import DashboardData
from workers.contract import EvalContext, Evaluator
from workers.runner import EvaluationTask, run_tasks


@pytest.fixture
def store(storage_url: str) -> Iterator[Store]:
    s = Store(storage_url)
    yield s
    s.close()


def outcomes_of(results: list[Any], measures: tuple[str, ...] = ("m",)) -> list[str]:
    """The errors ``run_tasks`` gives an evaluator returning ``results`` in turn."""
    returned = iter(results)

    class One(Evaluator):
        def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> Any:
            return next(returned)

    tasks = [EvaluationTask(i, i, {}, seed=i) for i in range(len(results))]
    out = run_tasks(One(), tasks, list(measures), EvalContext())
    assert all(o.status == "failed" for o in out), out
    return [o.error for o in out]


def test_an_objective_returned_under_its_label_says_which_keys_the_result_has() -> None:
    (error,) = outcomes_of([{"score": 0.5, "measures": {"m": 0.1}, "metrics": {}}])
    assert error == ("the result has no 'objective' key: return it as {'objective': …}; the spec's "
                     "objective.name only labels it (got keys: ['score', 'measures', 'metrics'])")
    (empty,) = outcomes_of([{}])
    assert empty.endswith("only labels it (got an empty dict)")


@pytest.mark.parametrize(("value", "said"), [
    ("-0.177", "got a str: '-0.177'"), (None, "got None"), (math.nan, "got a float: nan"),
    (True, "got a bool: True"), (10**400, "got an int: 1000"), ([1.0], "got a list: [1.0]"),
], ids=["str", "none", "nan", "bool", "huge-int", "list"])
def test_an_objective_that_is_not_a_number_says_its_type_and_value(value: Any, said: str) -> None:
    (error,) = outcomes_of([{"objective": value, "measures": {"m": 0.1}}])
    assert error.startswith(f"objective is not a finite number ({said}")
    assert failure_group(error) == "objective is not a finite number"


def test_each_reason_keeps_its_value_out_of_the_cause_it_is_grouped_by() -> None:
    """Two evaluations failing the same way with different values: one group, each error
    still showing its own value."""
    pairs = {
        "the evaluator must return a dict with objective and measures": [0.5, [1, 2]],
        "objective is not a finite number": [{"objective": "-0.1"}, {"objective": "-0.2"}],
        "the result has no 'objective' key: return it as {'objective': …}; the spec's objective.name only labels it":
            [{"score": 1.0}, {"loss": 1.0, "measures": {}}],
        "measures must be a dict of name to number": [{"objective": 1.0, "measures": [0.1]},
                                                      {"objective": 1.0, "measures": "m=0.2"}],
        "measure 'm' is missing": [{"objective": 1.0, "measures": {"x": 1.0}}, {"objective": 1.0, "measures": {}}],
        "measure 'm' is not a finite number": [{"objective": 1.0, "measures": {"m": math.inf}},
                                               {"objective": 1.0, "measures": {"m": "0.3"}}],
        "metrics must be a dict": [{"objective": 1.0, "measures": {"m": 0.1}, "metrics": [1]},
                                   {"objective": 1.0, "measures": {"m": 0.1}, "metrics": "a"}],
    }
    for cause, results in pairs.items():
        first, second = outcomes_of(results)
        assert first != second, cause
        assert failure_group(first) == failure_group(second) == cause
        assert first.startswith(cause + " (got ") and second.startswith(cause + " (got ")


def test_a_batch_of_the_wrong_length_groups_by_cause() -> None:
    class Short(Evaluator):
        max_batch_size = 8

        def __init__(self, n: int) -> None:
            self.n = n

        def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> Any:
            return [{"objective": 1.0, "measures": {"m": 0.1}}] * self.n if self.n >= 0 else {"objective": 1.0}

    errors = [run_tasks(Short(n), [EvaluationTask(i, i, {}, seed=i) for i in range(4)], ["m"], EvalContext())[0].error
              for n in (3, 5, -1)]
    assert errors[0].startswith("TypeError: evaluate_batch must return a list (or any iterable) of one result per "
                                "params (got 3 results for 4 params)")
    assert "(got 5 results for 4 params)" in errors[1] and "(got a dict: {'objective': 1.0})" in errors[2]
    assert len({failure_group(e) for e in errors}) == 1


def test_the_runner_and_the_store_mark_the_detail_alike() -> None:
    assert workers.runner.DETAIL_MARK == store_module.DETAIL_MARK == " (got "


ERRORS = [
    "objective is not a finite number (got a str: '-0.177')",
    "objective is not a finite number (got a str: '-0.9113')",
    "objective is not a finite number (got None)",
    "RuntimeError: flaky failure with lr=0.01\nTraceback …\n  raise RuntimeError(…)",
    "RuntimeError: flaky failure with lr=0.1\nTraceback …",
    "ValueError: shape (got 3, expected 4)\nTraceback …",
    "ValueError: shape (got 5, expected 4)",
    None, "", "\nstarts with a newline", " (got x) at the start", "ünïcødé (got ß)\n", "no detail here",
]


def test_failure_summary_groups_by_the_cause_as_python_does(store: Store) -> None:
    """SQL (SQLite and PostgreSQL) and :func:`failure_group` agree on every error; user
    messages differing in a number stay apart (``lr=0.01`` and ``lr=0.1`` need not be one cause)."""
    cid = store.create_campaign("c", {"search": {"budget": 20}}, "hash", {"kind": "grid"}).id
    ids = store.add_pending(cid, [NewEvaluation(i, {"i": i}, [0.5], "test") for i in range(len(ERRORS))])
    store.record_results(cid, [Result(i, "failed", error=e) for i, e in zip(ids, ERRORS, strict=True)], 1.0)
    expected: dict[str, int] = {}
    for e in ERRORS:
        expected[failure_group(e)] = expected.get(failure_group(e), 0) + 1
    got = store.failure_summary(cid, limit=50)
    assert dict(got) == expected
    assert got[:2] == [("", 4), ("objective is not a finite number", 3)]
    assert expected["ValueError: shape"] == 2 and expected[""] == 4 and expected["ünïcødé"] == 1
    assert expected["RuntimeError: flaky failure with lr=0.01"] == expected["RuntimeError: flaky failure with lr=0.1"]


def test_the_dashboard_groups_failures_as_atlas_failures_does(store: Store) -> None:
    cid = store.create_campaign("c", {"search": {"budget": 20}}, "hash", {"kind": "grid"}).id
    ids = store.add_pending(cid, [NewEvaluation(i, {"i": i}, [0.5], "test") for i in range(len(ERRORS))])
    store.record_results(cid, [Result(i, "failed", error=e) for i, e in zip(ids, ERRORS, strict=True)], 1.0)
    data = DashboardData(store)
    body = data.failures(data.info("c"), limit=50)
    groups = {g["error"]: g for g in body["groups"]}
    summary = dict(store.failure_summary(cid, limit=50))
    assert {g: n["count"] for g, n in groups.items()} == {k or "(no error message)": n for k, n in summary.items()}
    objective = groups["objective is not a finite number"]
    assert objective["count"] == 3 and objective["example"] in ERRORS  # one of them, in full
    assert {e["error"] for e in body["evaluations"]} >= {"objective is not a finite number (got None)"}
