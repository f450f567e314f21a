"""Numbers at float32's edges: refused with the file where they cannot be held, finite where
they can, and a divergence named as one.

Before: ``crrelu_eps: 1e39`` and ``swish_beta: 9.2e38`` became inf silently and failed as
"training diverged"; ``family_c1: 1e39`` read "must be finite, got [1e+39, …]"; the family
with ``family_c8: 1`` was NaN for |x| ≳ 6.5e4; one optimizer step at lr 1e30 failed as
"measure 'predictive_entropy' is not a finite number: nan", and lr 1e38 as torch's
"value cannot be converted to type float without overflow".
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch.nn import functional as F

from workers.activations import CRReLU, GaussianPolyActivation, make_activation
from workers.activations.baselines import Swish
from workers.activations.factory import FLOAT32_MAX, NUMBER_KEYS
from workers.activations.training import ADAMW_MAX_LR, TrainConfig
from workers.contract import EvalContext
from workers.evaluators.activation import ActivationEvaluator
from workers.evaluators.configs import ADAMW_MAX_LR as CONFIG_ADAMW_MAX_LR
from workers.evaluators.configs import ActivationConfig, config_problems
from workers.registry import check
from workers.rl.config import ADAMW_MAX_LR as RL_ADAMW_MAX_LR
from workers.runner import EvaluationTask, run_tasks

RANGE = f"must be within float32's range (|x| <= {FLOAT32_MAX:.4g})"
LR = f"must be <= {ADAMW_MAX_LR:.4g} (AdamW's first step is 10·lr, which float32 must hold)"


@pytest.mark.parametrize(("params", "key"), [
    ({"activation": "crrelu", "crrelu_eps": 1e39}, "crrelu_eps"),
    ({"activation": "swish", "swish_beta": 9.2e38}, "swish_beta"),
    ({"activation": "family", "family_c1": 1e39}, "family_c1"),
    ({"activation": "family", "family_c8": -1e39}, "family_c8"),
    ({"activation": "eafo", "eafo_eps": -1e39}, "eafo_eps"),
    ({"activation": "elu", "elu_alpha": 1e39}, "elu_alpha"),
    ({"activation": "leaky_relu", "leaky_relu_slope": 1e39}, "leaky_relu_slope"),
    ({"activation": "prelu", "prelu_init": -1e39}, "prelu_init"),
])
def test_a_number_beyond_float32_is_refused_saying_so(params: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError) as caught:
        make_activation(params)
    assert str(caught.value) == f"{key} {RANGE}, got {params[key]!r}"


def test_the_largest_float32_numbers_are_taken() -> None:
    assert make_activation({"activation": "crrelu", "crrelu_eps": 3.4e38}).eps.item() == pytest.approx(3.4e38)
    assert make_activation({"activation": "swish", "swish_beta": -3.4e38}).beta.item() == pytest.approx(-3.4e38)


def test_the_modules_refuse_what_their_dtype_cannot_hold() -> None:
    with pytest.raises(ValueError, match=r"eps must be within float32's range"):
        CRReLU(1e39)
    with pytest.raises(ValueError, match=r"beta must be within float32's range"):
        Swish(9.2e38)
    with pytest.raises(ValueError, match=r"family coefficients must be within float32's range .*got \[1e\+39\]"):
        GaussianPolyActivation([1e39])
    with pytest.raises(ValueError, match="family coefficients must be finite"):
        GaussianPolyActivation([math.inf])


def test_a_space_beyond_float32_is_refused_with_the_file() -> None:
    space = {"activation": {"type": "categorical", "choices": ["crrelu", "family"]},
             "crrelu_eps": {"type": "float", "low": 0.0, "high": 1e39},
             "family_c2": {"type": "categorical", "choices": [0.0, -9.2e38]},
             "swish_beta": {"type": "float", "low": 0.5, "high": 3.4e38},
             "lr": {"type": "float", "low": 1e-3, "high": 1e38, "log": True}}
    assert check("activation", {}, None, space) == [
        f"space.crrelu_eps.high: {RANGE}, got 1e+39",
        f"space.family_c2.choices.1: {RANGE}, got -9.2e+38",
        f"space.lr.high: {LR}, got 1e+38"]
    assert {"crrelu_eps", "swish_beta", "family_c1", "family_c8", "eafo_tau"} <= NUMBER_KEYS


def test_an_lr_adamw_cannot_take_is_refused() -> None:
    assert ADAMW_MAX_LR == CONFIG_ADAMW_MAX_LR == RL_ADAMW_MAX_LR
    assert torch.finfo(torch.float32).max >= ADAMW_MAX_LR / (1 - 0.9)
    assert config_problems(ActivationConfig, {"lr": 1e38}) == [f"evaluator.config.lr: {LR}"]
    assert config_problems(ActivationConfig, {"lr": ADAMW_MAX_LR}) == []
    with pytest.raises(ValueError) as caught:
        TrainConfig(lr=1e38)
    assert str(caught.value) == f"lr {LR}, got 1e+38"
    p = torch.nn.Parameter(torch.ones(2))
    p.grad = torch.ones(2)
    torch.optim.AdamW([p], lr=ADAMW_MAX_LR).step()  # the bound itself is taken
    assert torch.isfinite(p).all()


@pytest.mark.parametrize("x", [6.6e4, -6.6e4, 1e5, 1e30, -3.4e38])
def test_the_family_tends_to_relu_whatever_the_coefficients(x: float) -> None:
    module = make_activation({"activation": "family", "family_c8": 1})
    x32 = torch.tensor([x])
    assert torch.equal(module(x32), F.relu(x32))


def test_the_family_is_finite_with_its_gradient_everywhere() -> None:
    module = GaussianPolyActivation([0.3, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], learnable=True)
    x = torch.cat([torch.linspace(-1e5, 1e5, 20001), torch.tensor([3e38, -3e38])]).requires_grad_(True)
    out = module(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all() and torch.isfinite(module.coeffs.grad).all()


def test_a_huge_coefficient_gives_its_true_finite_value() -> None:
    """c₈ = 1e30 at x = 14: c₈ x⁸ e^{-x²/2} = 1e30 · 1.48e9 · 3.0e-43 ≈ 0.44, where x⁸·c₈
    alone overflows float32."""
    coeffs = [0.0] * 7 + [1e30]
    x = torch.tensor([14.0, -14.0, 4.0])
    expected = F.relu(x.double()) + 1e30 * x.double() ** 8 * torch.exp(-x.double() ** 2 / 2)
    torch.testing.assert_close(GaussianPolyActivation(coeffs)(x).double(), expected, rtol=1e-5, atol=0)


def test_a_divergence_in_the_last_step_is_named_training_diverged() -> None:
    """One epoch, one batch: the only optimizer step is the last, after the only loss."""
    evaluator = ActivationEvaluator()
    evaluator.setup({"hidden": [32]}, EvalContext())
    tasks = [EvaluationTask(i, i, {"activation": "relu", "epochs": 1, "batch_size": 4096, "lr": lr}, seed=0)
             for i, lr in enumerate([1e30, 1e34, 3e37, 1e38])]
    outcomes = run_tasks(evaluator, tasks, ["predictive_entropy", "post_activation_entropy"], EvalContext())
    assert [o.status for o in outcomes] == ["failed"] * 4
    for outcome in outcomes[:3]:
        assert outcome.error.startswith("FloatingPointError: training diverged: "), outcome.error
    assert outcomes[3].error.startswith(f"ValueError: lr {LR}, got 1e+38"), outcomes[3].error
