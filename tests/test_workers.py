"""Workers: the registry, the contract's rules in the runner, and the benchmark domains."""

from __future__ import annotations

import math
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from workers import registry
from workers.contract import EvalContext, Evaluator
from workers.evaluators.benchmark import BenchmarkEvaluator, arm, linear_projection
from workers.runner import EvaluationTask, json_safe, run_tasks


def test_entry_points_register_the_builtin_evaluators() -> None:
    assert {"benchmark", "python"} <= set(registry.available())
    assert isinstance(registry.build("benchmark"), BenchmarkEvaluator)
    with pytest.raises(registry.EvaluatorNotFound, match="no evaluator named 'nope'"):
        registry.build("nope")
    with pytest.raises(registry.EvaluatorNotFound, match="cannot import"):
        registry.build("python", target="no_such_module_xyz:f")
    with pytest.raises(registry.EvaluatorNotFound, match="has no attribute"):
        registry.build("python", target="tests.support.evaluators:missing")


def test_a_target_in_the_working_directory_says_to_put_it_on_the_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`atlas` (a console script) does not import from the working directory: a user's
    my_pkg/evals.py beside the campaign file was "No module named 'my_pkg'" and no more."""
    pkg = f"walk_pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "evals.py").write_text("def evaluate(params, ctx):\n    return {'objective': 1.0}\n")
    (tmp_path / f"{pkg}_dep.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p and Path(p).resolve() != tmp_path.resolve()])
    hint = (f"({pkg} is in the working directory, which is not on Python's import path: "
            "run with PYTHONPATH=. or install it)")
    assert registry.check("python", {}, f"{pkg}.evals:evaluate", {}) == [
        f"evaluator.target: cannot import '{pkg}.evals' for target '{pkg}.evals:evaluate': "
        f"No module named '{pkg}' {hint}"]
    # a missing dependency of a module that does import from here, or a module that is
    # nowhere, gets no such hint
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(registry.EvaluatorNotFound) as info:
        registry.import_target(f"{pkg}_dep:evaluate")
    assert str(info.value).endswith("No module named 'no_such_dependency_xyz'")
    with pytest.raises(registry.EvaluatorNotFound) as info:
        registry.import_target("no_such_module_xyz:f")
    assert str(info.value).endswith("No module named 'no_such_module_xyz'")
    assert callable(registry.import_target(f"{pkg}.evals:evaluate"))


def test_runner_enforces_the_contract() -> None:
    class Weird(Evaluator):
        def evaluate(self, params: dict, ctx: EvalContext) -> dict:
            kind = params["kind"]
            if kind == "list":
                return [1]  # type: ignore[return-value]
            if kind == "inf":
                return {"objective": 1.0, "measures": {"m": math.inf}}
            if kind == "bool":
                return {"objective": True, "measures": {"m": 1.0}}
            return {"objective": np.float32(2.5), "measures": {"m": np.int64(3)},
                    "metrics": {"arr": np.arange(3), "nan": math.nan, "obj": object()}}

    tasks = [EvaluationTask(i, i, {"kind": k}, seed=i) for i, k in enumerate(["list", "inf", "bool", "ok"])]
    out = run_tasks(Weird(), tasks, ["m"], EvalContext())
    assert [o.status for o in out] == ["failed", "failed", "failed", "done"]
    assert out[0].error == "the evaluator must return a dict with objective and measures (got a list: [1])"
    assert out[1].error == "measure 'm' is not a finite number (got a float: inf)"
    ok = out[3]
    assert ok.objective == 2.5 and ok.measures == {"m": 3.0}
    assert ok.metrics["arr"] == [0, 1, 2] and ok.metrics["nan"] is None and ok.metrics["obj"].startswith("<object")
    assert json_safe({"k": (np.float64(1.5), None)}) == {"k": [1.5, None]}


def test_batched_evaluator_gets_one_seed_per_item() -> None:
    class Batch(Evaluator):
        max_batch_size = 8

        def evaluate_batch(self, params: list[dict], ctx: EvalContext) -> list[dict]:
            return [{"objective": float(s), "measures": {"m": 0.0}} for s in ctx.seeds]

    tasks = [EvaluationTask(i, i, {}, seed=100 + i) for i in range(3)]
    assert [o.objective for o in run_tasks(Batch(), tasks, ["m"], EvalContext())] == [100.0, 101.0, 102.0]


def test_sphere_and_rastrigin_as_pyribs_defines_them() -> None:
    dim = 6
    best = np.full((1, dim), 0.4 * 5.12)
    worst = np.full((1, dim), -5.12)
    for fn in ("sphere", "rastrigin"):
        obj, _ = linear_projection(np.vstack([best, worst]), fn)
        assert obj[0] == pytest.approx(100.0) and obj[1] == pytest.approx(0.0)
    # measures: x_i beyond ±5.12 are folded to 5.12 / x_i, then summed per half
    x = np.array([[1.0, 10.24, -2.0, 3.0, 0.5, -10.24]])
    _, meas = linear_projection(x, "sphere")
    assert meas[0] == pytest.approx([1.0 + 0.5 - 2.0, 3.0 + 0.5 - 0.5])


def test_arm_end_effector_and_objective() -> None:
    obj, meas = arm(np.array([[0.0, 0.0, 0.0], [np.pi / 2, 0.0, 0.0]]))
    assert meas[0] == pytest.approx([3.0, 0.0]) and obj[0] == 0.0
    assert meas[1] == pytest.approx([0.0, 3.0], abs=1e-12) and obj[1] < 0


def test_benchmark_evaluator_reads_vectors_or_coordinates() -> None:
    ev = BenchmarkEvaluator()
    ev.setup({"function": "sphere", "dim": 2}, EvalContext())
    a, b = ev.evaluate_batch([{"x": [2.048, 2.048]}, {"x0": 2.048, "x1": 2.048}], EvalContext())
    assert a == b and a["objective"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="sphere, rastrigin or arm"):
        ev.setup({"function": "ackley"}, EvalContext())


def test_a_setup_failure_reads_well_whatever_the_exception() -> None:
    """An exception with no message had read ``GeneratorExit: ``; one whose ``__str__``
    raises had raised again, out of the refusal."""
    from workers.runner import setup_failure_text

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no str")

    assert setup_failure_text(GeneratorExit()) == "evaluator setup failed: GeneratorExit"
    assert setup_failure_text(ValueError("bad")) == "evaluator setup failed: ValueError: bad"
    assert setup_failure_text(Unprintable()).startswith("evaluator setup failed: Unprintable: <its message could not")
    assert len(setup_failure_text(ValueError("x" * 10**6))) < 2200
