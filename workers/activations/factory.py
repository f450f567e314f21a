"""Build activation modules from a campaign's search parameters.

A network needs a fresh module per layer (CRReLU's ε, PReLU's slope and the family's
coefficients are one scalar set *per module*), so :func:`activation_factory` returns a
zero-argument callable that makes a new module each time it is called.

Parameters (all optional but ``activation``; a key that does not apply to the chosen
activation is ignored, so a space without ``when`` conditions still works):

=====================  ========================================================  ==========
key                    meaning                                                   default
=====================  ========================================================  ==========
``activation``         ``relu``, ``leaky_relu``, ``prelu``, ``elu``, ``gelu``,   ``relu``
                       ``silu``, ``swish``, ``mish``, ``crrelu``, ``eafo``,
                       ``wafbc``, ``family``, ``symbolic``
``crrelu_eps``         CRReLU's initial ε                                        0.01
``family_c1`` …        the family's c_k (k = 1 … 8; K = max(3, highest given))   c₁ = 0.01,
``family_c8``                                                                    others 0
``eafo_base``          EAFO's base: ``relu``, ``gelu``, ``silu``, ``softplus``,   ``relu``
                       ``tanh``, ``elu``, ``identity``
``eafo_eps``           EAFO's initial ε (the step along the entropy gradient)     0.01
``eafo_sigma``         σ of the Gaussian density EAFO and WAFBC assume            1.0
``eafo_tau``           EAFO's floor on f' in (0, 1]                              1.0
``wafbc_bound``        B: WAFBC takes ReLU's values at ±B                        3.0
``expression``         the symbolic activation's expression in x                 (required)
``learnable``          train ε / the c_k / β / the PReLU slope                   see below
``leaky_relu_slope``   LeakyReLU's negative slope                                0.01
``prelu_init``         PReLU's initial slope                                     0.25
``elu_alpha``          ELU's α                                                   1.0
``swish_beta``         Swish's β                                                 1.0
``gelu_approximate``   ``none`` or ``tanh``                                      ``none``
=====================  ========================================================  ==========

``learnable`` defaults to the usual choice of each: true for ``crrelu`` (as in the
paper), ``eafo`` and ``prelu``; false for ``family`` and ``swish`` (so that a search over their
values evaluates exactly those values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from workers.activations import baselines
from workers.activations.crrelu import DEFAULT_EPS, CRReLU
from workers.activations.eafo import BASES, EAFOActivation, WorstActivation
from workers.activations.family import MAX_ORDER, GaussianPolyActivation
from workers.activations.symbolic import parse_activation, validate_expression

ACTIVATIONS: tuple[str, ...] = (
    "relu",
    "leaky_relu",
    "prelu",
    "elu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "crrelu",
    "eafo",
    "wafbc",
    "family",
    "symbolic",
)
FAMILY_KEYS: tuple[str, ...] = tuple(f"family_c{k}" for k in range(1, MAX_ORDER + 1))
ACTIVATION_KEYS: frozenset[str] = frozenset(
    {
        "activation",
        "crrelu_eps",
        "eafo_base",
        "eafo_eps",
        "eafo_sigma",
        "eafo_tau",
        "wafbc_bound",
        "expression",
        "learnable",
        "leaky_relu_slope",
        "prelu_init",
        "elu_alpha",
        "swish_beta",
        "gelu_approximate",
        *FAMILY_KEYS,
    }
)
_DEFAULT_LEARNABLE = {"crrelu": True, "eafo": True, "prelu": True, "family": False, "swish": False}
#: The numeric parameters: each becomes a float32 scalar of its module (or a value of its rule).
NUMBER_KEYS: frozenset[str] = frozenset(
    {"crrelu_eps", "eafo_eps", "eafo_sigma", "eafo_tau", "wafbc_bound", "leaky_relu_slope", "prelu_init",
     "elu_alpha", "swish_beta", *FAMILY_KEYS}
)
#: float32's largest finite value: a larger magnitude, finite as a Python float, is inf in the network.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ValueError(f"{key} must be a boolean, got {value!r}")


def _as_float(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool):
        raise ValueError(f"{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{key} must be finite, got {value!r}")
    problem = float32_problem(out)
    if problem:
        raise ValueError(f"{key} {problem}")
    return out


def float32_problem(value: float) -> str | None:
    """Why a finite number cannot be a float32 parameter (None: it can): |x| > 3.4028e38
    rounds to ±inf there, and the run failed as "training diverged" (or a family
    coefficient as "must be finite", naming the finite number it was given)."""
    if abs(value) > FLOAT32_MAX:
        return f"must be within float32's range (|x| <= {FLOAT32_MAX:.4g}), got {value!r}"
    return None


def family_coefficients(params: Mapping[str, Any]) -> list[float]:
    """``[c_1, …, c_K]`` from ``family_c1`` … (K = max(3, the highest index given))."""
    given = [k for k in range(1, MAX_ORDER + 1) if f"family_c{k}" in params]
    order = max([3, *given])
    return [_as_float(params, f"family_c{k}", DEFAULT_EPS if k == 1 else 0.0) for k in range(1, order + 1)]


def activation_factory(params: Mapping[str, Any]) -> Callable[[], nn.Module]:
    """A callable making a fresh activation module per call, from search parameters.

    Everything is checked here, before any network is built: an unknown activation, a
    non-numeric value or a refused expression raises :class:`ValueError`.
    """
    name = str(params.get("activation", "relu")).lower()
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; one of {', '.join(ACTIVATIONS)}")
    learnable = _as_bool(params["learnable"], "learnable") if "learnable" in params else None
    if learnable is None:
        learnable = _DEFAULT_LEARNABLE.get(name, False)

    if name == "relu":
        return baselines.relu
    if name == "leaky_relu":
        slope = _as_float(params, "leaky_relu_slope", 0.01)
        return lambda: baselines.leaky_relu(slope)
    if name == "prelu":
        init = _as_float(params, "prelu_init", 0.25)

        def make_prelu() -> nn.Module:
            module = baselines.prelu(init)
            module.weight.requires_grad_(learnable)
            return module

        return make_prelu
    if name == "elu":
        alpha = _as_float(params, "elu_alpha", 1.0)
        return lambda: baselines.elu(alpha)
    if name == "gelu":
        approximate = str(params.get("gelu_approximate", "none"))
        if approximate not in ("none", "tanh"):
            raise ValueError(f"gelu_approximate must be 'none' or 'tanh', got {approximate!r}")
        return lambda: baselines.gelu(approximate)
    if name == "silu":
        return baselines.silu
    if name == "swish":
        beta = _as_float(params, "swish_beta", 1.0)
        return lambda: baselines.Swish(beta, learnable=learnable)
    if name == "mish":
        return baselines.mish
    if name == "crrelu":
        eps = _as_float(params, "crrelu_eps", DEFAULT_EPS)
        return lambda: CRReLU(eps, learnable=learnable)
    if name == "eafo":
        base = str(params.get("eafo_base", "relu")).lower()
        if base not in BASES:
            raise ValueError(f"unknown eafo_base {base!r}; one of {', '.join(BASES)}")
        eps = _as_float(params, "eafo_eps", DEFAULT_EPS)
        sigma = _as_float(params, "eafo_sigma", 1.0)
        tau = _as_float(params, "eafo_tau", 1.0)
        EAFOActivation(base, eps, sigma, tau, learnable)  # refuses a bad σ or τ here, before training
        return lambda: EAFOActivation(base, eps, sigma, tau, learnable=learnable)
    if name == "wafbc":
        bound = _as_float(params, "wafbc_bound", 3.0)
        sigma = _as_float(params, "eafo_sigma", 1.0)
        WorstActivation(bound, sigma)
        return lambda: WorstActivation(bound, sigma)
    if name == "family":
        coeffs = family_coefficients(params)
        return lambda: GaussianPolyActivation(coeffs, learnable=learnable)
    # symbolic
    if "expression" not in params:
        raise ValueError("activation 'symbolic' needs an 'expression' in x")
    expression = params["expression"]
    validate_expression(expression)
    return lambda: parse_activation(expression)


def make_activation(params: Mapping[str, Any]) -> nn.Module:
    """One activation module from search parameters (see :func:`activation_factory`)."""
    return activation_factory(params)()
