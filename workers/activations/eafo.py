"""EAFO beyond CRReLU: the worst activation and the entropy correction of any base.

EAFO (Sun et al., arXiv 2405.12954) reads an activation through the entropy of what it
outputs. The paper's full derivation was not readable here (only its abstract and the
CRReLU code); what follows is derived from the rule the abstract states, and it
reproduces CRReLU exactly, which is the check that it is the paper's rule.

**Output entropy.** For a pre-activation ``X ~ p`` and a strictly increasing ``f``,
``Y = f(X)`` has differential entropy

.. math::

    H[f] = H(X) + \\mathbb{E}_p[\\log f'(X)].

**The worst activation with boundary conditions (WAFBC).** Among increasing ``f`` on
``[a, b]`` with ``f(a) = y_a`` and ``f(b) = y_b``, ``H[f]`` is largest (the output is least
informative: uniform) when ``f' ∝ p`` (Lagrange: maximise ``∫ p log f'`` subject to
``∫ f' = y_b − y_a``), that is the scaled CDF of the input,

.. math::

    w(x) = y_a + (y_b - y_a) \\frac{F(x) - F(a)}{F(b) - F(a)},

constant outside ``[a, b]``. :class:`WorstActivation` is ``w`` for Gaussian inputs with
ReLU's boundary values on ``[−B, B]`` (``y_a = 0``, ``y_b = B``).

**The correction (the functional Taylor step).** The first variation of ``H`` is
``δH[f; η] = ∫ p η'/f' = −∫ η (p/f')'``, so the functional gradient is
``κ_f = −(p / f')'``. One Taylor step ``f + ε κ_f`` moves ``f`` towards (ε > 0) or away
from (ε < 0) the worst activation. For ``p = N(0, σ²)``, scaled by ``√(2π) σ³`` so that
the ReLU case carries CRReLU's constant:

.. math::

    \\kappa_f(x) = e^{-x^2/(2\\sigma^2)} \\left(\\frac{x}{g(x)} + \\sigma^2 \\frac{g'(x)}{g(x)^2}\\right),
    \\qquad g = \\max(f', \\tau),

with ``τ ∈ (0, 1]`` a floor where ``f'`` vanishes or turns negative (ReLU's ``x < 0``
branch, GELU's and SiLU's dip). For ReLU at σ = 1, τ = 1: ``g = 1`` and
``κ(x) = x e^{−x²/2}``, so ``f + εκ`` **is CRReLU**. Other bases (GELU, SiLU, softplus,
tanh, ELU, identity) give the corrections the same rule derives from them; their
``f'`` and ``f''`` are written in closed form below.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from workers.activations.baselines import scalar_parameter
from workers.activations.crrelu import DEFAULT_EPS

Derivatives = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _normal_pdf(x: torch.Tensor) -> torch.Tensor:
    return _INV_SQRT_2PI * torch.exp(-0.5 * x * x)


def _relu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return F.relu(x), (x > 0).to(x.dtype), torch.zeros_like(x)


def _identity(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return x, torch.ones_like(x), torch.zeros_like(x)


def _gelu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # f = xΦ(x), f' = Φ(x) + xφ(x), f'' = φ(x)(2 − x²)
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    pdf = _normal_pdf(x)
    return x * cdf, cdf + x * pdf, pdf * (2.0 - x * x)


def _silu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # f = xs, f' = s(1 + x(1 − s)), f'' = s(1 − s)(2 + x(1 − 2s)), s = sigmoid(x)
    s = torch.sigmoid(x)
    ds = s * (1.0 - s)
    return x * s, s + x * ds, ds * (2.0 + x * (1.0 - 2.0 * s))


def _softplus(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    s = torch.sigmoid(x)
    return F.softplus(x), s, s * (1.0 - s)


def _tanh(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    t = torch.tanh(x)
    dt = 1.0 - t * t
    return t, dt, -2.0 * t * dt


def _elu(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # α = 1: f = x (x > 0), eˣ − 1 (x ≤ 0)
    ex = torch.exp(torch.clamp(x, max=0.0))
    positive = x > 0
    return (torch.where(positive, x, ex - 1.0), torch.where(positive, torch.ones_like(x), ex),
            torch.where(positive, torch.zeros_like(x), ex))


BASES: dict[str, Derivatives] = {
    "relu": _relu,
    "gelu": _gelu,
    "silu": _silu,
    "softplus": _softplus,
    "tanh": _tanh,
    "elu": _elu,
    "identity": _identity,
}
"""Each base as ``x ↦ (f(x), f'(x), f''(x))``."""


def base_and_derivatives(base: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(f(x), f'(x), f''(x))`` of the named base."""
    if base not in BASES:
        raise ValueError(f"unknown EAFO base {base!r}; one of {', '.join(BASES)}")
    return BASES[base](x)


def eafo_correction(base: str, x: torch.Tensor, sigma: float = 1.0, tau: float = 1.0) -> torch.Tensor:
    """``κ_f(x) = e^{−x²/2σ²} (x/g + σ² g'/g²)``, ``g = max(f', τ)``: the entropy gradient of ``f``.

    Computed as ``(e^{−x²/2σ²} / g) · (x + σ² g'/g)`` with ``e^{−x²/2σ²} / g = exp(−x²/2σ² − log g)``
    and ``log τ`` taken in double precision, so that no intermediate is τ² (which underflowed
    to 0 in float32 for τ ≲ 1e-19: g'/g² read 0/0 = NaN) nor 1/τ times a window that is 0
    (inf · 0). Where the floor holds, ``g' = 0`` and ``g'/g`` is exactly 0. Where the true
    value passes the dtype's range (only for a τ near that range's end) it saturates at
    ±max, so κ is always finite and ``f + 0·κ`` is exactly ``f``.
    """
    _, d1, d2 = base_and_derivatives(base, x)
    floored = d1 <= tau
    unfloored = torch.where(floored, torch.ones_like(d1), d1)  # log and division only where g = f' > τ
    log_g = torch.where(floored, torch.full_like(d1, math.log(tau)), torch.log(unfloored))
    dg_over_g = torch.where(floored, torch.zeros_like(d2), d2 / unfloored)
    largest = torch.finfo(x.dtype).max
    scale = torch.exp(torch.clamp(-0.5 * (x / sigma) ** 2 - log_g, max=math.log(largest)))  # e^{−x²/2σ²} / g
    return torch.clamp(scale * (x + sigma * sigma * dg_over_g), -largest, largest)


def _check_scale(name: str, value: float, low: float, high: float) -> float:
    value = float(value)
    if not (math.isfinite(value) and low < value <= high):
        raise ValueError(f"{name} must be in ({low:g}, {high:g}], got {value!r}")
    return value


class EAFOActivation(nn.Module):
    """``f(x) + ε κ_f(x)``: a base activation plus one EAFO correction step.

    Args:
        base: one of :data:`BASES`.
        eps: ε, the step along the entropy gradient (0.01 in CRReLU's code).
        sigma: σ of the Gaussian pre-activation density the correction assumes.
        tau: the floor on ``f'`` in ``(0, 1]``.
        learnable: train ε with the network (the paper's "dynamic" use) or keep it fixed.
    """

    def __init__(self, base: str = "relu", eps: float = DEFAULT_EPS, sigma: float = 1.0, tau: float = 1.0,
                 learnable: bool = True) -> None:
        super().__init__()
        if base not in BASES:
            raise ValueError(f"unknown EAFO base {base!r}; one of {', '.join(BASES)}")
        if not math.isfinite(float(eps)):
            raise ValueError(f"eafo_eps must be finite, got {eps!r}")
        self.base = base
        self.sigma = _check_scale("eafo_sigma", sigma, 0.0, 100.0)
        self.tau = _check_scale("eafo_tau", tau, 0.0, 1.0)
        scalar_parameter(self, "eps", eps, learnable)
        self.learnable = learnable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, _, _ = base_and_derivatives(self.base, x)
        return f + self.eps.to(x.dtype) * eafo_correction(self.base, x, self.sigma, self.tau)

    def extra_repr(self) -> str:
        return (f"base={self.base}, eps={float(self.eps.detach()):.4g}, sigma={self.sigma:g}, "
                f"tau={self.tau:g}, learnable={self.learnable}")


def worst_activation(x: torch.Tensor, bound: float = 3.0, sigma: float = 1.0) -> torch.Tensor:
    """WAFBC for ``N(0, σ²)`` inputs with ReLU's values at ``±B``: ``B (Φ(x/σ) − Φ(−B/σ)) / (Φ(B/σ) − Φ(−B/σ))``.

    Clamped to ``[0, B]`` outside ``[−B, B]``.
    """
    z = torch.clamp(x, -bound, bound) / (sigma * math.sqrt(2.0))
    edge = math.erf(bound / (sigma * math.sqrt(2.0)))
    return bound * (torch.erf(z) + edge) / (2.0 * edge)


class WorstActivation(nn.Module):
    """The worst activation with ReLU's boundary conditions on ``[−B, B]`` (a baseline to beat)."""

    def __init__(self, bound: float = 3.0, sigma: float = 1.0) -> None:
        super().__init__()
        self.bound = _check_scale("wafbc_bound", bound, 0.0, 100.0)
        self.sigma = _check_scale("eafo_sigma", sigma, 0.0, 100.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return worst_activation(x, self.bound, self.sigma)

    def extra_repr(self) -> str:
        return f"bound={self.bound:g}, sigma={self.sigma:g}"

