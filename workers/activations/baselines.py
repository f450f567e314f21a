"""The baselines a campaign compares against, as modules with their usual definitions.

=============  ===========================================================  ==============
name           definition                                                   parameters
=============  ===========================================================  ==============
``relu``       max(0, x)                                                    —
``leaky_relu`` x if x > 0 else a·x                                          a = 0.01
``prelu``      x if x > 0 else a·x, a learnable (one scalar per module)     a₀ = 0.25
``elu``        x if x > 0 else α(eˣ − 1)                                    α = 1
``gelu``       x·Φ(x) (exact erf form)                                      —
``silu``       x·σ(x)                                                       —
``swish``      x·σ(βx); β = 1 is SiLU; β → ∞ tends to ReLU                  β = 1
``mish``       x·tanh(softplus(x))                                          —
=============  ===========================================================  ==============

All but ``swish`` are PyTorch's own modules (``nn.ReLU``, ``nn.GELU``, …), so their
speed and numerics are the reference ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def scalar_parameter(module: nn.Module, name: str, value: float, learnable: bool) -> None:
    """Give ``module`` a scalar ``name``: an ``nn.Parameter`` when ``learnable``, else a buffer.
    A finite ``value`` beyond the default dtype's range (1e39 in float32) is refused, not stored as inf."""
    tensor = torch.tensor(float(value), dtype=torch.get_default_dtype())
    if math.isfinite(float(value)) and not bool(torch.isfinite(tensor)):
        dtype, largest = str(tensor.dtype).removeprefix("torch."), torch.finfo(tensor.dtype).max
        raise ValueError(f"{name} must be within {dtype}'s range (|x| <= {largest:.4g}), got {value!r}")
    if learnable:
        module.register_parameter(name, nn.Parameter(tensor))
    else:
        module.register_buffer(name, tensor)


class Swish(nn.Module):
    """``x·σ(βx)`` (Ramachandran et al. 2017), β fixed or learnable (one scalar)."""

    def __init__(self, beta: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        scalar_parameter(self, "beta", beta, learnable)
        self.learnable = learnable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta.to(x.dtype) * x)

    def extra_repr(self) -> str:
        return f"beta={float(self.beta.detach()):.4g}, learnable={self.learnable}"


def relu() -> nn.Module:
    """``max(0, x)``."""
    return nn.ReLU()


def leaky_relu(negative_slope: float = 0.01) -> nn.Module:
    """``x`` for x > 0, ``negative_slope·x`` otherwise."""
    return nn.LeakyReLU(negative_slope=float(negative_slope))


def prelu(init: float = 0.25) -> nn.Module:
    """Leaky ReLU whose slope is one learnable scalar, initialised to ``init``."""
    return nn.PReLU(num_parameters=1, init=float(init))


def elu(alpha: float = 1.0) -> nn.Module:
    """``x`` for x > 0, ``alpha·(exp(x) − 1)`` otherwise."""
    return nn.ELU(alpha=float(alpha))


def gelu(approximate: str = "none") -> nn.Module:
    """``x·Φ(x)``; ``approximate='tanh'`` for the tanh approximation."""
    return nn.GELU(approximate=approximate)


def silu() -> nn.Module:
    """``x·σ(x)``."""
    return nn.SiLU()


def mish() -> nn.Module:
    """``x·tanh(softplus(x))``."""
    return nn.Mish()
