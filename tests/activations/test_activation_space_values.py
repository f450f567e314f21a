"""What passed the campaign check and then failed every activation evaluation that drew it
is refused with the file, in the ``space.NAME…: reason`` lines of the other checks.

Before: ``eafo_tau: {low: -0.5, …}`` was written and every EAFO evaluation below 0 failed
with ``eafo_tau must be in (0, 1], got -0.4``; ``symbolic`` among the activations with no
``expression`` in the space failed each one that drew it with ``activation 'symbolic' needs
an 'expression' in x``; ``gelu_approximate: exact``, ``learnable: maybe``, ``epochs`` as a
float range and ``weight_decay`` below 0 were taken the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.activations import make_activation
from workers.registry import check

ACTIVATIONS = {"type": "categorical", "choices": ["relu", "eafo", "wafbc", "gelu", "symbolic"]}
EXPRESSION = {"type": "categorical", "choices": ["x*sigmoid(x)"], "when": {"activation": "symbolic"}}


def problems(space: dict[str, dict[str, Any]], config: dict[str, Any] | None = None) -> list[str]:
    return check("activation", config or {}, None, space)


def test_an_eafo_range_outside_its_rule_is_refused_with_the_file() -> None:
    space = {"activation": {"type": "categorical", "choices": ["eafo", "wafbc"]},
             "eafo_tau": {"type": "float", "low": -0.5, "high": 1.0, "when": {"activation": "eafo"}},
             "eafo_sigma": {"type": "float", "low": 0.5, "high": 200.0},
             "wafbc_bound": {"type": "categorical", "choices": [3.0, 0.0]}}
    assert problems(space) == [
        "space.eafo_tau: the range [-0.5, 1.0] reaches values the activation evaluator refuses (eafo_tau must be in "
        "(0, 1], got -0.5)",
        "space.eafo_sigma: the range [0.5, 200.0] reaches values the activation evaluator refuses (eafo_sigma must "
        "be in (0, 100], got 200.0)",
        "space.wafbc_bound.choices: 0.0 is refused by the activation evaluator (wafbc_bound must be in (0, 100], "
        "got 0.0)"]
    with pytest.raises(ValueError, match=r"eafo_tau must be in \(0, 1\], got -0.4"):  # what each evaluation said
        make_activation({"activation": "eafo", "eafo_tau": -0.4})
    assert problems({"eafo_tau": {"type": "float", "low": 0.1, "high": 1.0}}) == []


def test_symbolic_without_an_expression_to_read_is_refused_with_the_file() -> None:
    assert problems({"activation": ACTIVATIONS}) == [
        "space.activation.choices: 'symbolic' needs an 'expression' parameter in the space, its expressions in x "
        "(expression: {type: categorical, choices: ['x*sigmoid(x)'], when: {activation: symbolic}}); every "
        "evaluation drawing it would fail"]
    elsewhere = {**EXPRESSION, "when": {"activation": "gelu"}}
    assert problems({"activation": ACTIVATIONS, "expression": elsewhere}) == [
        "space.expression.when: leaves expression inactive when activation is 'symbolic' (it is active for 'gelu' "
        "only), and every evaluation drawing 'symbolic' would fail for want of it"]
    numbers = {"type": "float", "low": 0.0, "high": 1.0}
    assert problems({"activation": ACTIVATIONS, "expression": numbers}) == [
        "space.expression.type: must be categorical, its choices expressions in x (a float parameter draws numbers, "
        "which are not expressions)"]
    assert problems({"activation": ACTIVATIONS, "expression": EXPRESSION}) == []
    assert problems({"activation": ACTIVATIONS, "expression": {**EXPRESSION, "when": None}}) == []
    assert problems({"activation": {"type": "categorical", "choices": ["relu", "gelu"]}}) == []


def test_other_choices_and_ranges_outside_their_rules_are_refused() -> None:
    space = {"gelu_approximate": {"type": "categorical", "choices": ["none", "exact"]},
             "learnable": {"type": "categorical", "choices": ["maybe", True]},
             "crrelu_eps": {"type": "categorical", "choices": [0.01, "small"]},
             "weight_decay": {"type": "float", "low": -1e-4, "high": 1e-3},
             "batch_size": {"type": "int", "low": 0, "high": 64},
             "epochs": {"type": "float", "low": 1.0, "high": 20.0}}
    assert problems(space) == [
        "space.weight_decay: the range [-0.0001, 0.001] reaches values the activation evaluator refuses (weight_decay "
        "must be >= 0, got -0.0001)",
        "space.batch_size: the range [0, 64] reaches values the activation evaluator refuses (batch_size must be "
        ">= 1, got 0)",
        "space.gelu_approximate.choices: 'exact' is refused by the activation evaluator (gelu_approximate must be "
        "'none' or 'tanh', got 'exact')",
        "space.learnable.choices: 'maybe' is refused by the activation evaluator (learnable must be a boolean, "
        "got 'maybe')",
        "space.crrelu_eps.choices: 'small' is refused by the activation evaluator (crrelu_eps must be a number, "
        "got 'small')",
        "space.epochs: epochs takes an integer, and a float range draws values between whole numbers, which the "
        "activation evaluator refuses (use type: int)"]


def test_a_number_beyond_float32_is_said_once() -> None:
    """float32's bound has its own line (test_activation_ranges); the rule check does not repeat it."""
    assert problems({"crrelu_eps": {"type": "float", "low": 0.0, "high": 1e39}}) == [
        "space.crrelu_eps.high: must be within float32's range (|x| <= 3.403e+38), got 1e+39"]


@pytest.mark.parametrize(("case", "expected"), [
    ("eafo_tau", "space.eafo_tau: the range [-0.5, 1.0] reaches values the activation evaluator refuses"),
    ("symbolic", "space.activation.choices: 'symbolic' needs an 'expression' parameter in the space"),
])
def test_atlas_run_refuses_them_before_writing_anything(tmp_path: Path, case: str, expected: str) -> None:
    spec: dict[str, Any] = {
        "name": "act-values",
        "evaluator": {"kind": "activation", "config": {"hidden": [8], "epochs": 1}},
        "space": {"activation": {"type": "categorical", "choices": ["relu", "eafo"]}},
        "measures": [{"name": "post_activation_entropy", "low": 0.0, "high": 4.2, "bins": 2},
                     {"name": "predictive_entropy", "low": 0.0, "high": 2.4, "bins": 2}],
        "search": {"algorithm": "random", "budget": 2, "batch_size": 1},
    }
    if case == "eafo_tau":
        spec["space"]["eafo_tau"] = {"type": "float", "low": -0.5, "high": 1.0, "when": {"activation": "eafo"}}
    else:
        spec["space"]["activation"]["choices"].append("symbolic")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    done = subprocess.run([sys.executable, "-m", "search.cli", "run", "c.yaml", "--executor", "inline"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled", "ATLAS_STORAGE": "sqlite:///atlas.db"})
    assert done.returncode == 2, done.stderr
    assert f"error: c.yaml: {expected}" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
