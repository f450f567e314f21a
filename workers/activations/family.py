"""A continuous family around ReLU: Gaussian-windowed polynomial corrections.

EAFO reads an activation as ReLU plus a correction derived from a Taylor expansion of
an entropy functional; CRReLU keeps the first term. This family keeps the first ``K``:

.. math::

    f_c(x) = \\mathrm{ReLU}(x) + e^{-x^2/2} \\sum_{k=1}^{K} c_k x^k

- ``c = (ε, 0, …, 0)`` is CRReLU with that ε; ``c = 0`` is ReLU.
- Every correction is windowed by the Gaussian, so ``f_c(x) → ReLU(x)`` as |x| grows,
  whatever c: the search moves only the shape near 0, where pre-activations live.
- ``f_c(0) = 0`` for every c (no ``k = 0`` term), like ReLU and CRReLU.
- The polynomial is evaluated by Horner's rule,
  ``x·(c₁ + x·(c₂ + … + x·c_K))``, one multiply-add per coefficient.

Derivative: ``f_c'(x) = 1[x > 0] + e^{-x²/2} Σ_k c_k (k x^{k-1} − x^{k+1})``.
"""

from __future__ import annotations

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
        if not all(torch.isfinite(torch.tensor(values))):
            raise ValueError(f"family coefficients must be finite, got {values}")
        tensor = torch.tensor(values, dtype=torch.get_default_dtype())
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
        c = self.coeffs.to(x.dtype)
        poly = c[-1]
        for k in range(self.order - 2, -1, -1):
            poly = c[k] + x * poly
        return F.relu(x) + x * poly * torch.exp(-0.5 * x * x)

    def extra_repr(self) -> str:
        shown = ", ".join(f"{float(v):.4g}" for v in self.coeffs.detach())
        return f"coeffs=({shown}), learnable={self.learnable}"
