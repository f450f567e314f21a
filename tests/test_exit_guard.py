"""``os._exit`` called by an evaluator inside the scheduler's process (:mod:`workers.exit_guard`),
and the check of an evaluator's kind and target (:func:`workers.registry.check`): function
targets that cannot be called as ``fn(params, ctx)``, a target written as the kind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from archive.store import Store
from tests.conftest import quadratic_spec
from workers import registry
from workers.exit_guard import ProcessExit, exit_refused

ATLAS = str(Path(sys.executable).with_name("atlas"))
SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}


def _campaign(tmp_path: Path, module: str, source: str, **search: object) -> Path:
    """A campaign file over x in [0, 1] whose evaluator is ``module:f``, written with ``source``."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    spec = quadratic_spec(name=module, evaluator={"kind": "python", "target": f"{module}:f"}, space=SPACE)
    spec["search"] = {"algorithm": "random", "budget": 12, "batch_size": 4, "max_in_flight": 4, "seed": 0,
                      **search}
    path = tmp_path / f"{module}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _run(tmp_path: Path, campaign: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "COLUMNS": "200"}
    return subprocess.run([ATLAS, "run", str(campaign), "--storage", f"sqlite:///{tmp_path / 'x.db'}",
                           "--executor", "inline", "--map", str(tmp_path / "map.png")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_target_that_calls_os_exit_as_it_imports_is_refused_in_one_line(tmp_path: Path) -> None:
    """It had ended ``atlas run`` at once, exit 0, without a word."""
    campaign = _campaign(tmp_path, "exits_on_import", """
        import os
        os._exit(0)

        def f(params, ctx):
            return {"objective": 1.0, "measures": {"ma": 0.5, "mb": 0.5}}
    """)
    done = _run(tmp_path, campaign)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {campaign}: evaluator.target: importing 'exits_on_import:f' raised ProcessExit: "
                      "called os._exit(0), which would have ended the scheduler's process (exits_on_import.py, line 3)"]
    assert not (tmp_path / "x.db").exists()


def test_an_inline_evaluation_that_calls_os_exit_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    """It had ended the run in its first batch, exit 3 (the evaluator's code), no summary."""
    campaign = _campaign(tmp_path, "exits_above_half", """
        import os

        def f(params, ctx):
            if params["x"] > 0.5:
                os._exit(3)
            return {"objective": params["x"], "measures": {"ma": params["x"], "mb": 0.5}}
    """, fail_fast=0)
    done = _run(tmp_path, campaign)
    assert done.returncode == 0, done.stderr
    assert "exits_above_half: 12 evaluations" in done.stdout
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        camp = store.campaign("exits_above_half")
        assert camp is not None and camp.status == "finished"
        rows = store.evaluations(camp.id)
    finally:
        store.close()
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and all(r["params"]["x"] > 0.5 for r in failed)
    assert {r["error"].splitlines()[0] for r in failed} == {
        "ProcessExit: called os._exit(3), which would have ended the scheduler's process"}
    assert all(r["params"]["x"] <= 0.5 for r in rows if r["status"] == "done")


def test_inside_the_block_os_exit_raises_and_outside_it_exits() -> None:
    with exit_refused(), pytest.raises(ProcessExit) as raised:
        os._exit(4)
    assert raised.value.code == 4
    # a reference taken inside the block exits for real once it has ended
    script = "import os\nfrom workers.exit_guard import exit_refused\nwith exit_refused():\n    e = os._exit\ne(5)\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1], timeout=60)
    assert done.returncode == 5


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX")
def test_a_child_forked_inside_the_block_exits_with_its_code() -> None:
    """``multiprocessing``'s forked children end with ``os._exit``: the guard is the parent's."""
    with exit_refused():
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7


def _checker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str) -> Callable[[str], list[str]]:
    """``registry.check`` of ``module:NAME`` for a ``python`` target, the module written with ``source``."""
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return lambda name: registry.check("python", {}, f"{module}:{name}", SPACE)


def test_a_function_target_that_cannot_take_params_and_ctx_is_refused(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every evaluation had failed with ``TypeError: f() takes 1 positional argument but 2 were given``."""
    check = _checker(tmp_path, monkeypatch, "one_arg", "def f(params):\n    return {}\n"
                     "def g(params, ctx=None):\n    return {}\ndef h(*args):\n    return {}\n"
                     "def k(params, ctx, extra):\n    return {}\n")
    assert check("f") == [
        "evaluator.target: 'one_arg:f' takes (params), but an evaluator function is called as fn(params, ctx): "
        "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"]
    assert check("g") == check("h") == []
    assert check("k")[0].startswith("evaluator.target: 'one_arg:k' takes (params, ctx, extra), but")


def test_an_evaluator_class_whose_evaluate_cannot_take_params_and_ctx_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check = _checker(tmp_path, monkeypatch, "one_arg_class", "from workers.contract import Evaluator\n"
                     "class Short(Evaluator):\n    def evaluate(self, params):\n        return {}\n"
                     "class ShortBatch:\n    def evaluate_batch(self, batch):\n        return []\n"
                     "class Fine(Evaluator):\n    def evaluate(self, params, ctx):\n        return {}\n"
                     "class OnlyBatch(Evaluator):\n    def evaluate_batch(self, batch, ctx):\n        return []\n")
    assert check("Short") == [
        "evaluator.target: Short.evaluate takes (self, params), but it is called as evaluate(self, params, ctx): "
        "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"]
    assert check("ShortBatch")[0].startswith(
        "evaluator.target: ShortBatch.evaluate_batch takes (self, batch), but it is called as "
        "evaluate_batch(self, list_of_params, ctx)")
    assert check("Fine") == check("OnlyBatch") == []


def test_a_target_written_as_the_kind_is_told_where_it_goes() -> None:
    """It had read only ``no evaluator named 'mypkg.evals:BatchEval' (registered: …)``."""
    problems = registry.check("mypkg.evals:BatchEval", {}, None, SPACE)
    assert len(problems) == 1 and problems[0].startswith("evaluator.kind: no evaluator named 'mypkg.evals:BatchEval'")
    assert problems[0].endswith("; 'mypkg.evals:BatchEval' reads as a target: write `kind: python` and "
                                "`target: mypkg.evals:BatchEval`")
    assert "reads as a target" not in registry.check("benchmrk", {}, None, SPACE)[0]
