"""What an evaluator raises outside the ``Exception`` family, and where: a ``BaseException``
in ``__init__``, ``setup`` or ``teardown``, a ``KeyboardInterrupt`` of its own in a Ray
worker's evaluation thread, ``sys.exit`` at import, an unusable ``max_batch_size``.

The Ray worker (:class:`EvaluatorActor`) is exercised here as the plain class it is, in
this process, without Ray; ``tests/test_ray_edges.py`` runs the same faults on Ray.
"""

from __future__ import annotations

import logging
import os
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workers import registry
from workers.contract import EvalContext, Evaluator
from workers.executors.base import ExecutorConfig
from workers.executors.inline import InlineExecutor
from workers.executors.ray_actor import EvaluatorActor
from workers.runner import EvaluationTask

WAIT_S = 5.0  # how long a test waits for an actor's thread; a dead thread never answers


class MyBase(BaseException):
    """A BaseException that is neither Exception nor one of Python's own."""


def _ok(params: dict[str, Any]) -> dict[str, Any]:
    return {"objective": params["a"], "measures": {"ma": params["a"], "mb": 0.5}}


class Interrupts(Evaluator):
    """Raises KeyboardInterrupt (``a`` > 0.5) or GeneratorExit (``a`` < 0) itself; else fine."""

    max_batch_size = 2

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        if params["a"] > 0.5:
            raise KeyboardInterrupt("the evaluator's own")
        if params["a"] < 0:
            raise GeneratorExit()
        return _ok(params)


class InterruptsBatch(Evaluator):
    max_batch_size = 4

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> list[dict[str, Any]]:
        if any(p["a"] > 0.5 for p in params):
            raise KeyboardInterrupt
        return [_ok(p) for p in params]


class BaseInSetup(Evaluator):
    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        raise MyBase("setup base")


class GeneratorExitInSetup(Evaluator):
    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        raise GeneratorExit("closed")


class CtrlCInSetup(Evaluator):
    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        raise KeyboardInterrupt


class BaseInInit(Evaluator):
    def __init__(self) -> None:
        raise MyBase("init base")


class Tears:
    """Plain class form: ``teardown`` writes ``<dir>/teardown-<pid>`` and, with ``exit``
    in the config, then calls ``sys.exit(exit)``."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        self.config = config

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return _ok(params)

    def teardown(self) -> None:
        Path(self.config["dir"], f"teardown-{os.getpid()}").touch()
        if "exit" in self.config:
            raise SystemExit(self.config["exit"])
        if "base" in self.config:
            raise MyBase("teardown base")


def _config(target: str, config: dict[str, Any] | None = None) -> ExecutorConfig:
    return ExecutorConfig(kind="python", config=config or {}, target=f"tests.test_executor_faults:{target}",
                          measure_names=["ma", "mb"], campaign="faults")


def _tasks(*values: float, first: int = 0) -> list[EvaluationTask]:
    return [EvaluationTask(first + i, first + i, {"a": a}, seed=i) for i, a in enumerate(values)]


def _answer(actor: EvaluatorActor) -> str | None:
    """The actor's setup outcome (``ready``), failing the test where its thread never answers."""
    assert actor._set_up.wait(WAIT_S), "the actor's setup never ended: ready() would hang"
    return actor.ready()[1]


def _outcomes(actor: EvaluatorActor, count: int) -> list[Any]:
    """``count`` outcomes from the actor, waiting up to WAIT_S in all."""
    got: list[Any] = []
    for _ in range(int(WAIT_S / 0.25)):
        got += actor.results(0.25)
        if len(got) >= count:
            break
    return sorted(got, key=lambda o: o.evaluation_id)


# --------------------------------------------------------------------------- a Ray worker


def test_a_keyboard_interrupt_from_the_evaluator_fails_its_evaluation_and_the_worker_goes_on() -> None:
    """It killed the evaluation thread: every later batch waited out its timeout."""
    actor = EvaluatorActor(_config("Interrupts"))
    assert _answer(actor) is None
    actor.push([(0, _tasks(0.1, 0.9)), (1, _tasks(-1.0, 0.3, first=2))])
    first = _outcomes(actor, 4)
    assert [o.status for o in first] == ["done", "failed", "failed", "done"]
    assert first[1].error.startswith("KeyboardInterrupt: the evaluator's own (raised by the evaluator)")
    assert first[2].error.startswith("GeneratorExit")
    actor.push([(2, _tasks(0.2, first=4))])
    assert [o.status for o in _outcomes(actor, 1)] == ["done"]
    assert actor.close() is None


def test_a_batch_evaluator_interrupting_itself_fails_its_batch_only() -> None:
    actor = EvaluatorActor(_config("InterruptsBatch"))
    assert _answer(actor) is None
    actor.push([(0, _tasks(0.1, 0.9)), (1, _tasks(0.2, 0.3, first=2))])
    out = _outcomes(actor, 4)
    assert [o.status for o in out] == ["failed", "failed", "done", "done"]
    assert all(o.error.startswith("KeyboardInterrupt (raised by the evaluator)") for o in out[:2])
    actor.close()


@pytest.mark.parametrize(("target", "error"), [
    ("BaseInSetup", "evaluator setup failed: MyBase: setup base"),
    ("GeneratorExitInSetup", "evaluator setup failed: GeneratorExit: closed"),
    ("CtrlCInSetup", "evaluator setup failed: KeyboardInterrupt"),
    ("BaseInInit", "evaluator setup failed: MyBase: init base"),
])
def test_a_base_exception_in_setup_or_init_is_a_setup_failure_on_a_worker(target: str, error: str) -> None:
    """It killed the thread before ``ready`` could answer: the run waited 300 s."""
    actor = EvaluatorActor(_config(target))
    answer = _answer(actor)
    assert answer is not None and answer.startswith(error)  # runner's text: "KeyboardInterrupt: " for no message
    actor.push([(0, _tasks(0.1))])
    (out,) = _outcomes(actor, 1)
    assert out.setup_failed and out.error == answer
    assert actor.close() is None  # nothing to tear down


def test_a_worker_tears_its_evaluator_down_when_closed(tmp_path: Path) -> None:
    actor = EvaluatorActor(_config("Tears", {"dir": str(tmp_path)}))
    assert _answer(actor) is None
    assert actor.close() is None
    assert (tmp_path / f"teardown-{os.getpid()}").exists()
    assert not actor._thread.is_alive()


def test_a_worker_reports_a_teardown_that_exits(tmp_path: Path) -> None:
    actor = EvaluatorActor(_config("Tears", {"dir": str(tmp_path), "exit": 4}))
    assert _answer(actor) is None
    assert actor.close() == f"the evaluator's teardown on {actor.ready()[0]} called sys.exit(4); ignored"


# --------------------------------------------------------------------------- inline


@pytest.mark.parametrize(("target", "error"), [
    ("BaseInSetup", "evaluator setup failed: MyBase: setup base"),
    ("GeneratorExitInSetup", "evaluator setup failed: GeneratorExit: closed"),
    ("BaseInInit", "evaluator setup failed: MyBase: init base"),
])
def test_a_base_exception_in_setup_or_init_is_a_setup_failure_inline(target: str, error: str) -> None:
    """It escaped ``start`` as a traceback, rc 1."""
    executor = InlineExecutor(_config(target))
    assert executor.setup_problem() == error
    executor.submit(_tasks(0.1))
    (out,) = executor.poll(1.0)
    assert out.setup_failed and out.error == error
    executor.shutdown()


def test_a_ctrl_c_in_setup_stays_a_ctrl_c_inline() -> None:
    """In the scheduler's own process a KeyboardInterrupt may be the user's: it stops the run."""
    with pytest.raises(KeyboardInterrupt):
        InlineExecutor(_config("CtrlCInSetup")).start()


@pytest.mark.parametrize(("extra", "warning"), [
    ({"exit": 4}, "the evaluator's teardown called sys.exit(4); ignored"),
    ({"base": True}, "the evaluator's teardown failed: MyBase: teardown base"),
])
def test_a_failing_teardown_is_a_warning_inline(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                extra: dict[str, Any], warning: str) -> None:
    """``sys.exit(4)`` in teardown ended `atlas run` with 4, no summary, no map."""
    executor = InlineExecutor(_config("Tears", {"dir": str(tmp_path), **extra}))
    executor.submit(_tasks(0.1))
    assert [o.status for o in executor.poll(1.0)] == ["done"]
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.executor"):
        executor.shutdown()
    assert [r.getMessage() for r in caplog.records] == [warning]
    assert (tmp_path / f"teardown-{os.getpid()}").exists()


def test_inline_batches_by_the_checked_max_batch_size() -> None:
    executor = InlineExecutor(_config("Interrupts"))
    executor.start()
    assert executor.capacity() == 2


# --------------------------------------------------------------------------- the registry


def _write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"atlas_faults_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize(("value", "shown"), [
    ('"4"', "got '4' (a str)"), ("0", "got 0"), ("True", "got True (a bool)"), ("2.5", "got 2.5"),
    ("None", "got None (a NoneType)"),
])
def test_an_unusable_max_batch_size_is_refused_by_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           value: str, shown: str) -> None:
    """A string crashed the inline executor (TypeError traceback) and Ray took it as int('4')."""
    name = _write_module(tmp_path, monkeypatch, f"""
        class Sized:
            max_batch_size = {value}
            def evaluate(self, params, ctx):
                return {{}}
    """)
    assert registry.check("python", {}, f"{name}:Sized", {}) == [
        f"evaluator.target: Sized.max_batch_size must be an integer >= 1, {shown}"]


def test_a_usable_max_batch_size_passes_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _write_module(tmp_path, monkeypatch, """
        import numpy as np
        class Numpy:
            max_batch_size = np.int64(4)
            def evaluate_batch(self, params, ctx):
                return []
        class Plain:
            def evaluate(self, params, ctx):
                return {}
    """)
    assert registry.check("python", {}, f"{name}:Numpy", {}) == []
    assert registry.check("python", {}, f"{name}:Plain", {}) == []
    assert registry.batch_size(registry.evaluator_class("python", {}, f"{name}:Numpy")) == 4
    assert registry.batch_size(np) == 1  # nothing declared: the base's 1


@pytest.mark.parametrize(("source", "line"), [
    ("import sys\nsys.exit(5)\n", "called sys.exit(5)"),
    ("import argparse\nargparse.ArgumentParser().parse_args(['--nope'])\n", "called sys.exit(2)"),
    ("class B(BaseException): pass\nraise B('at import')\n", "raised B: at import"),
])
def test_a_module_that_exits_at_import_is_a_problem_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         source: str, line: str) -> None:
    """``sys.exit(5)`` at import (argparse at module level) ended `atlas run` with 5, no message;
    the line names where the module's own code did it."""
    name = _write_module(tmp_path, monkeypatch, source)
    assert registry.check("python", {}, f"{name}:evaluate", {}) == [
        f"evaluator.target: importing '{name}:evaluate' {line} ({tmp_path / name}.py, line 2)"]


HEAVY = """
    class Heavy:
        max_batch_size = 3
        def __init__(self):
            raise RuntimeError("loads a model")
        def evaluate(self, params, ctx):
            return {}
"""  # an evaluator class whose __init__ the driver must not run


def test_the_driver_gets_the_class_without_building_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ray driver built an instance (a model loaded in the scheduler; an __init__ that
    raised was a traceback there)."""
    name = _write_module(tmp_path, monkeypatch, HEAVY)
    cls = registry.evaluator_class("python", {}, f"{name}:Heavy")
    assert issubclass(cls, Evaluator) and registry.batch_size(cls) == 3
    assert registry.evaluator_class("python", {"batched": True}, "tests.support.evaluators:quadratic") is (
        registry.BatchedFunctionEvaluator)
    with pytest.raises(RuntimeError, match="loads a model"):
        registry.build("python", {}, f"{name}:Heavy")


def test_the_ray_driver_reads_the_batch_size_off_the_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.executors.ray_executor import RayExecutor

    name = _write_module(tmp_path, monkeypatch, HEAVY)
    config = ExecutorConfig(kind="python", config={}, target=f"{name}:Heavy", measure_names=["m"])
    assert RayExecutor(config)._batch_size() == 3
