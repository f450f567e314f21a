"""A continuous family around ReLU: Gaussian-windowed polynomial corrections.

EAFO reads an activation as ReLU plus a correction derived from a Taylor expansion of
an entropy functional; CRReLU keeps the first term. This family keeps the first ``K``:

.. math::

    f_c(x) = \\mathrm{ReLU}(x) + e^{-x^2/2} \\sum_{k=1}^{K} c_k x^k

- ``c = (ε, 0, …, 0)`` is CRReLU with that ε; ``c = 0`` is ReLU.
- Every correction is windowed by the Gaussian, so ``f_c(x) → ReLU(x)`` as |x| grows,
  whatever c: the search moves only the shape near 0, where pre-activations live.
- ``f_c(0) = 0`` for every c (no ``k = 0`` term), like ReLU and CRReLU.
- The windowed polynomial is evaluated with the window spread over its factors, never as
  ``x^K`` times ``e^{-x²/2}`` (x⁸ overflowed float32 where the window underflowed, for
  |x| ≳ 6.5e4, and inf·0 read NaN). With ``r = e^{-x²/(2K)}`` and ``y = x·r``,

  .. math::

      e^{-x^2/2} \\sum_{k=1}^{K} c_k x^k = \\sum_{k=1}^{K} c_k\\, y^k\\, r^{K-k}
      = y\\,(c_1 r^{K-1} + y\\,(c_2 r^{K-2} + \\dots + y\\,c_K)),

  Horner's rule in ``y``: ``|y| = |x| e^{-x²/2K} ≤ √K e^{-1/2}`` and ``0 < r ≤ 1``, so no
  intermediate exceeds the coefficients times a constant (≤ 1.7⁸ for K = 8) and the
  correction is finite wherever the coefficients are; it goes to 0 smoothly as |x| grows.

Derivative: ``f_c'(x) = 1[x > 0] + e^{-x²/2} Σ_k c_k (k x^{k-1} − x^{k+1})``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

MAX_ORDER = 8


class GaussianPolyActivation(nn.Module):
    """``ReLU(x) + exp(−x²/2)·Σ_{k=1..K} c_k x^k``.

    Args:
        coeffs: ``(c_1, …, c_K)``, ``1 <= K <= 8``; finite numbers.
        learnable: whether the coefficients are trained with the network (then the given
            values are their initial values) or fixed buffers.
    """

    def __init__(self, coeffs: Sequence[float] = (0.01, 0.0, 0.0), learnable: bool = False) -> None:
        super().__init__()
        values = [float(c) for c in coeffs]
        if not 1 <= len(values) <= MAX_ORDER:
            raise ValueError(f"the family takes 1 to {MAX_ORDER} coefficients, got {len(values)}")
        tensor = torch.tensor(values, dtype=torch.get_default_dtype())
        if not all(math.isfinite(c) for c in values):
            raise ValueError(f"family coefficients must be finite, got {values}")
        if not bool(torch.isfinite(tensor).all()):  # finite, but not in the dtype: 1e39 in float32
            raise ValueError(f"family coefficients must be within {str(tensor.dtype).removeprefix('torch.')}'s range "
                             f"(|c| <= {torch.finfo(tensor.dtype).max:.4g}), got {values}")
        if learnable:
            self.coeffs = nn.Parameter(tensor)
        else:
            self.register_buffer("coeffs", tensor)
        self.learnable = learnable

    @property
    def order(self) -> int:
        """K, the highest power of x in the correction."""
        return int(self.coeffs.numel())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) + windowed_polynomial(x, self.coeffs.to(x.dtype))

    def extra_repr(self) -> str:
        shown = ", ".join(f"{float(v):.4g}" for v in self.coeffs.detach())
        return f"coeffs=({shown}), learnable={self.learnable}"


def windowed_polynomial(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """``e^{-x²/2} Σ_{k=1..K} c_k x^k`` as Horner's rule in ``y = x·e^{-x²/2K}`` with the
    coefficients scaled by powers of ``r = e^{-x²/2K}`` (see the module docstring): every
    factor is bounded, so the result is finite wherever the coefficients are."""
    order = coeffs.numel()
    r = torch.exp(-0.5 * x * x / order)
    y = x * r
    poly = coeffs[-1].expand_as(x)
    r_power = torch.ones_like(x)
    for k in range(order - 2, -1, -1):
        r_power = r_power * r
        poly = coeffs[k] * r_power + y * poly
    return y * poly
