"""The evaluator contract's less travelled parts: the seed ``setup`` gets, what an
``evaluate_batch`` may return, and the signatures checked before a run.

- ``setup(config, ctx)`` got ``ctx.seed == 0`` (and ``ctx.seeds == []``) whatever
  ``search.seed`` was, so a model initialised there never varied with it; now its seed is
  :func:`workers.contract.setup_seed` of the campaign's seed and the worker's place.
- A class's ``evaluate_batch`` returning a generator or an ndarray failed every evaluation
  (the batched function's was read with ``list``); now both forms take any iterable.
- A ``setup`` without ``ctx`` failed the run at its first worker; now it is refused with the
  file, as an ``evaluate`` without it is (a ``teardown`` that needs an argument too).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from search import api
from search.seeds import evaluation_seeds
from search.spec import SpecError
from tests.conftest import quadratic_spec
from workers import registry
from workers.contract import EvalContext, Evaluator, setup_seed
from workers.executors.base import ExecutorConfig
from workers.executors.inline import InlineExecutor
from workers.executors.ray_actor import EvaluatorActor
from workers.registry import BatchedFunctionEvaluator
from workers.runner import EvaluationTask, run_tasks

WAIT_S = 5.0


def _result(params: dict[str, Any]) -> dict[str, Any]:
    return {"objective": float(params["a"]), "measures": {"ma": float(params["a"]), "mb": 0.5}}


class SeedRecorder(Evaluator):
    """Keeps the ``ctx.seed`` and ``ctx.seeds`` each of its setups got."""

    seen: ClassVar[list[tuple[int, list[int]]]] = []

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        SeedRecorder.seen.append((ctx.seed, list(ctx.seeds)))

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return _result(params)


def _config(seed: int, target: str = "SeedRecorder") -> ExecutorConfig:
    return ExecutorConfig(kind="python", config={}, target=f"tests.test_evaluator_contract_checks:{target}",
                          measure_names=["ma", "mb"], campaign="seeds", seed=seed)


def _inline_setup_seed(seed: int) -> tuple[int, list[int]]:
    SeedRecorder.seen.clear()
    executor = InlineExecutor(_config(seed))
    executor.start()
    executor.shutdown()
    assert len(SeedRecorder.seen) == 1
    return SeedRecorder.seen[0]


# -- 1. setup's seed follows search.seed (and the worker's place) -------------------------
def test_setup_seed_is_numpys_spawned_child_and_none_of_the_evaluations_seeds() -> None:
    for seed, worker in [(0, 0), (3, 0), (3, 1), (2**40, 7)]:
        child = np.random.SeedSequence(seed).spawn(worker + 1)[worker]
        assert setup_seed(seed, worker) == int(child.generate_state(1)[0] & 0x7FFFFFFF)
    assert setup_seed(3) == setup_seed(3, 0) and 0 <= setup_seed(3) < 2**31
    assert setup_seed(3) not in evaluation_seeds(3, list(range(1000)))


def test_the_inline_setup_gets_the_campaign_s_seed_reproducibly() -> None:
    seed, seeds = _inline_setup_seed(3)
    assert seed == setup_seed(3) and seeds == [seed]
    assert _inline_setup_seed(3) == (seed, seeds)
    assert _inline_setup_seed(4)[0] == setup_seed(4) != seed


def test_the_evaluations_keep_their_own_seeds_after_the_setup_s() -> None:
    executor = InlineExecutor(_config(3))
    executor.start()
    try:
        assert executor._ctx.seed == setup_seed(3)
        tasks = [EvaluationTask(i, i, {"a": 0.5}, seed=s) for i, s in enumerate(evaluation_seeds(3, [0, 1]))]
        seen: list[int] = []
        evaluator = executor._evaluator
        evaluator.evaluate = lambda params, ctx: seen.append(ctx.seed) or _result(params)  # type: ignore[union-attr]
        run_tasks(evaluator, tasks, ["ma", "mb"], executor._ctx)  # type: ignore[arg-type]
        assert seen == [t.seed for t in tasks]
    finally:
        executor.shutdown()


def _actor_setup_seed(seed: int, worker: int) -> tuple[int, list[int]]:
    SeedRecorder.seen.clear()
    actor = EvaluatorActor(_config(seed), worker)
    assert actor._set_up.wait(WAIT_S) and actor.ready()[1] is None
    actor.close()
    return SeedRecorder.seen[0]


def test_ray_workers_get_seeds_by_their_place_in_the_pool() -> None:
    first, second = _actor_setup_seed(3, 0), _actor_setup_seed(3, 1)
    assert first == (setup_seed(3, 0), [setup_seed(3, 0)]) and second == (setup_seed(3, 1), [setup_seed(3, 1)])
    assert first[0] != second[0]
    assert _actor_setup_seed(3, 1) == second and _actor_setup_seed(5, 1)[0] != second[0]


def test_the_ray_pool_builds_each_actor_with_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    from workers.executors.ray_executor import RayExecutor

    made: list[tuple[Any, ...]] = []

    class Handle:
        def __init__(self, *args: Any) -> None:
            made.append(args)
            self.ready = type("Ready", (), {"remote": staticmethod(lambda: object())})()

    class Remote:
        def remote(self, *args: Any) -> Handle:
            return Handle(*args)

    executor = RayExecutor(_config(3))
    monkeypatch.setattr("workers.executors.ray_executor.ray.remote", lambda cls: type(
        "Options", (), {"options": lambda self, **kw: Remote()})())
    monkeypatch.setattr(executor, "_pool_size", lambda: 3)
    executor._start_pool()
    assert [args[1] for args in made] == [0, 1, 2] and all(args[0].seed == 3 for args in made)


# -- 2. evaluate_batch may return any iterable of results ---------------------------------
class GenBatch(Evaluator):
    max_batch_size = 4

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> Any:
        return (_result(p) for p in params)


class ArrBatch(Evaluator):
    max_batch_size = 4

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> Any:
        return np.array([_result(p) for p in params])


class Returns(Evaluator):
    max_batch_size = 4

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> Any:
        return self.value(params) if callable(self.value) else self.value


def _batch(evaluator: Evaluator, n: int = 4) -> list[Any]:
    return run_tasks(evaluator, [EvaluationTask(i, i, {"a": i / 10}, seed=i) for i in range(n)], ["ma", "mb"],
                     EvalContext())


@pytest.mark.parametrize("evaluator", [GenBatch(), ArrBatch(), Returns(lambda ps: tuple(_result(p) for p in ps)),
                                       Returns(lambda ps: map(_result, ps)),
                                       BatchedFunctionEvaluator(lambda ps, ctx: (_result(p) for p in ps))],
                         ids=["generator", "ndarray", "tuple", "map", "batched-function-generator"])
def test_any_iterable_of_results_is_taken(evaluator: Evaluator) -> None:
    outcomes = _batch(evaluator)
    assert [o.status for o in outcomes] == ["done"] * 4
    assert [o.objective for o in outcomes] == [0.0, 0.1, 0.2, 0.3]


RULE = "TypeError: evaluate_batch must return a list (or any iterable) of one result per params"


@pytest.mark.parametrize(("value", "detail"), [
    (None, "(got None)"), (5, "(got an int: 5)"), ({"objective": 1.0}, "(got a dict: {'objective': 1.0})"),
    ("abcd", "(got a str: 'abcd')"), (lambda ps: (_result(p) for p in ps[:3]), "(got 3 results for 4 params)"),
    (lambda ps: [_result(p) for p in ps] * 2, "(got 8 results for 4 params)"),
    (lambda ps: itertools.repeat(_result(ps[0])), "(got more than 4 results for 4 params)")],
    ids=["none", "int", "dict", "str", "short-generator", "long-list", "endless"])
def test_what_is_not_one_result_per_params_fails_the_batch_saying_so(value: Any, detail: str) -> None:
    batched = BatchedFunctionEvaluator(lambda ps, ctx: value(ps) if callable(value) else value)
    for evaluator in (Returns(value), batched):
        outcomes = _batch(evaluator)
        assert all(o.status == "failed" and o.error.startswith(f"{RULE} {detail}") for o in outcomes), outcomes[0].error


def test_a_generator_that_raises_fails_the_batch_with_its_own_error() -> None:
    def broken(ps: list[dict[str, Any]]) -> Any:
        yield _result(ps[0])
        raise ValueError("model fell over")

    outcomes = _batch(Returns(broken))
    assert all(o.status == "failed" and o.error.startswith("ValueError: model fell over") for o in outcomes)


def test_an_ndarray_is_named_with_its_article() -> None:
    outcomes = _batch(Returns(lambda ps: np.zeros(3)))
    assert outcomes[0].error.startswith(f"{RULE} (got 3 results for 4 params)")
    assert _batch(Returns(np.float64(1.0)))[0].error.startswith(f"{RULE} (got a float64: ")
    assert "(got an ndarray: " in run_tasks(
        Returns(lambda ps: [np.zeros(2) for _ in ps]), [EvaluationTask(0, 0, {"a": 0.1}, seed=0)], ["ma"],
        EvalContext())[0].error


# -- 3. setup and teardown are checked before the run, as evaluate is ----------------------
SOURCE = """
from workers.contract import Evaluator
def _r(params):
    return {"objective": params["a"], "measures": {"ma": params["a"], "mb": 0.5}}
class SetupNoCtx:
    def setup(self, config): pass
    def evaluate(self, params, ctx): return _r(params)
class SetupNothing(Evaluator):
    def setup(self): pass
    def evaluate(self, params, ctx): return _r(params)
class SetupCtxOptional:
    def setup(self, config, ctx=None): pass
    def evaluate(self, params, ctx): return _r(params)
class SetupVarargs:
    def setup(self, *args): pass
    def evaluate(self, params, ctx): return _r(params)
class TeardownNeedsOne:
    def evaluate(self, params, ctx): return _r(params)
    def teardown(self, force): pass
class TeardownOptional:
    def evaluate(self, params, ctx): return _r(params)
    def teardown(self, force=False): pass
class StaticSetup:
    @staticmethod
    def setup(config, ctx): pass
    def evaluate(self, params, ctx): return _r(params)
"""


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    (tmp_path / "contract_classes.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return lambda name: registry.check("python", {}, f"contract_classes:{name}", {"a": {"type": "float"}})


def test_a_setup_without_ctx_is_refused_before_the_run(check: Any) -> None:
    assert check("SetupNoCtx") == [
        "evaluator.target: SetupNoCtx.setup takes (self, config), but it is called as setup(self, config, ctx): "
        "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"]
    assert check("SetupNothing")[0].startswith("evaluator.target: SetupNothing.setup takes (self), but it is called "
                                               "as setup(self, config, ctx)")


def test_a_teardown_that_needs_an_argument_is_refused_before_the_run(check: Any) -> None:
    assert check("TeardownNeedsOne") == [
        "evaluator.target: TeardownNeedsOne.teardown takes (self, force), but it is called as teardown(self): "
        "it gets no argument: give its other parameters defaults"]


@pytest.mark.parametrize("name", ["SetupCtxOptional", "SetupVarargs", "TeardownOptional", "StaticSetup"])
def test_signatures_that_can_be_called_so_are_taken(check: Any, name: str) -> None:
    assert check(name) == []


def test_a_registered_kind_s_class_is_checked_alike(monkeypatch: pytest.MonkeyPatch, check: Any) -> None:
    import contract_classes  # type: ignore[import-not-found]

    monkeypatch.setattr(registry, "resolve", lambda kind: contract_classes.SetupNoCtx)
    assert registry.check("my_eval", {}, None, {}) == [
        "evaluator.kind: SetupNoCtx.setup takes (self, config), but it is called as setup(self, config, ctx): "
        "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"]


def test_a_run_of_a_setup_without_ctx_writes_nothing(check: Any, sqlite_url: str) -> None:
    spec = quadratic_spec(evaluator={"kind": "python", "target": "contract_classes:SetupNoCtx"},
                          search__algorithm="random", search__budget=4)
    with pytest.raises(SpecError, match=r"evaluator\.target: SetupNoCtx\.setup takes \(self, config\)"):
        api.run(spec, storage=sqlite_url, executor="inline")
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # not even the storage


def test_a_run_s_setup_seed_follows_search_seed(tmp_path: Path) -> None:
    """End to end: ``api.run`` hands ``search.seed`` to the executor (``executor_config``)."""
    seen = []
    for seed in (3, 3, 4):
        SeedRecorder.seen.clear()
        target = "tests.test_evaluator_contract_checks:SeedRecorder"
        spec = quadratic_spec(evaluator={"kind": "python", "target": target},
                              search__algorithm="random", search__budget=2, search__seed=seed)
        api.run(spec, storage=f"sqlite:///{tmp_path}/s{len(seen)}.db", executor="inline")
        seen.append(SeedRecorder.seen[0][0])
    assert seen == [setup_seed(3), setup_seed(3), setup_seed(4)]
