"""What passed the campaign check and then failed every entropy_rl evaluation is refused
with the file, in the ``space.NAME…: reason`` lines of the other range and choice checks.

Before: ``aepo: {choices: ["no", "yes"]}`` was written and every evaluation failed with
``ValueError: aepo has an invalid value 'no' (expected bool)``; a float range for ``steps``
failed each evaluation that drew a fraction; ``lr: {choices: [0, …]}`` passed; and
``model: builtin:arith-tny-rl`` was found only at evaluator setup, after the start-up, as
``evaluator setup failed: ValueError: unknown built-in model …``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.registry import check

BUILT_IN = "builtin:arith-tiny, builtin:arith-nano, builtin:arith-tiny-rl"


def problems(space: dict[str, dict[str, Any]], config: dict[str, Any] | None = None) -> list[str]:
    return check("entropy_rl", config or {}, None, space)


def test_string_choices_of_a_boolean_parameter_are_refused_with_the_file() -> None:
    assert problems({"aepo": {"type": "categorical", "choices": ["no", "yes"]}}) == [
        "space.aepo.choices: 'no' is refused by the entropy_rl evaluator (aepo has an invalid value 'no' "
        "(expected bool))",
        "space.aepo.choices: 'yes' is refused by the entropy_rl evaluator (aepo has an invalid value 'yes' "
        "(expected bool))"]
    for choices in ([False, True], [0, 1]):
        assert problems({"aepo": {"type": "categorical", "choices": choices}}) == []


def test_non_numeric_choices_of_numeric_parameters_are_refused() -> None:
    space = {"eps_high": {"type": "categorical", "choices": [None, 0.28, "wide"]},
             "dual_clip": {"type": "categorical", "choices": [None, True]},
             "lr": {"type": "categorical", "choices": [0, 3e-4, "fast"]}}
    assert problems(space) == [
        "space.lr.choices: 0 is refused by the entropy_rl evaluator (lr must be in (0, 3.4e+37] (AdamW's first step "
        "is 10·lr, which float32 must hold), got 0.0)",
        "space.eps_high.choices: 'wide' is refused by the entropy_rl evaluator (eps_high has an invalid value 'wide' "
        "(expected float | None))",
        "space.dual_clip.choices: None is refused by the entropy_rl evaluator (dual_clip has an invalid value None "
        "(expected bool))",
        "space.lr.choices: 'fast' is refused by the entropy_rl evaluator (lr has an invalid value 'fast' "
        "(expected float))"]
    assert problems({"eps_high": {"type": "categorical", "choices": [None, 0.28]}}) == []  # null: the mode's own


def test_a_float_range_for_an_integer_or_boolean_parameter_is_refused() -> None:
    assert problems({"steps": {"type": "float", "low": 1.0, "high": 9.0},
                     "aepo": {"type": "float", "low": 0.0, "high": 1.0}}) == [
        "space.steps: steps takes an integer, and a float range draws values between whole numbers, which the "
        "entropy_rl evaluator refuses (use type: int)",
        "space.aepo: aepo takes a boolean, and a float range draws values other than 0 and 1, which the entropy_rl "
        "evaluator refuses (use type: categorical, choices: [false, true])"]
    assert problems({"steps": {"type": "int", "low": 1, "high": 9},
                     "aepo": {"type": "int", "low": 0, "high": 1}}) == []


def test_a_misspelt_builtin_model_is_refused_with_the_file_naming_the_one_meant() -> None:
    assert problems({}, {"model": "builtin:arith-tny-rl"}) == [
        f"evaluator.config.model: unknown built-in model 'arith-tny-rl' (built-in: {BUILT_IN}; did you mean "
        "builtin:arith-tiny-rl?)"]
    assert problems({}, {"model": "builtin:gpt2"}) == [
        f"evaluator.config.model: unknown built-in model 'gpt2' (built-in: {BUILT_IN})"]
    for name in ("builtin:arith-tiny-rl", "builtin:arith-nano", "builtin:arith-tiny"):
        assert problems({}, {"model": name}) == []


@pytest.mark.parametrize(("case", "expected"), [
    ("aepo", "space.aepo.choices: 'no' is refused by the entropy_rl evaluator (aepo has an invalid value 'no'"),
    ("model", "evaluator.config.model: unknown built-in model 'arith-tny-rl' (built-in: "),
])
def test_atlas_run_refuses_them_before_writing_anything(tmp_path: Path, case: str, expected: str) -> None:
    spec: dict[str, Any] = {
        "name": "rl-values",
        "evaluator": {"kind": "entropy_rl", "config": {"steps": 1, "num_prompts": 8, "num_eval_prompts": 8}},
        "space": {"lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 3.0, "bins": 2},
                     {"name": "answer_diversity", "low": 0.0, "high": 1.0, "bins": 2}],
        "search": {"algorithm": "random", "budget": 2, "batch_size": 1},
    }
    if case == "aepo":
        spec["space"]["aepo"] = {"type": "categorical", "choices": ["no", "yes"]}
    else:
        spec["evaluator"]["config"]["model"] = "builtin:arith-tny-rl"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    done = subprocess.run([sys.executable, "-m", "search.cli", "run", "c.yaml", "--executor", "inline"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled", "ATLAS_STORAGE": "sqlite:///atlas.db"})
    assert done.returncode == 2, done.stderr
    assert f"error: c.yaml: {expected}" in done.stderr
    assert "Traceback" not in done.stderr and "setup failed" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
