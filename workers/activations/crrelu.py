"""CRReLU, the Correction Regularized ReLU of EAFO (Sun et al., arXiv 2405.12954).

.. math::

    \\mathrm{CRReLU}(x) = \\mathrm{ReLU}(x) + \\varepsilon \\, x \\, e^{-x^2/2}

``ε`` is one learnable scalar per module, initialised to 0.01 as in the reference code
(where it is called ``lr``). ``x·exp(−x²/2) = √(2π)·x·φ(x)`` with φ the standard normal
density, so the correction acts near 0 and vanishes for |x| ≳ 4: CRReLU keeps ReLU's
identity for large positive inputs and its zero for large negative ones.

Derivative (what autograd computes):

.. math::

    \\frac{d}{dx}\\mathrm{CRReLU}(x) = \\mathbb{1}[x > 0] + \\varepsilon (1 - x^2) e^{-x^2/2},
    \\qquad
    \\frac{\\partial}{\\partial \\varepsilon}\\mathrm{CRReLU}(x) = x e^{-x^2/2}.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from workers.activations.baselines import scalar_parameter

DEFAULT_EPS = 0.01


def crrelu(x: torch.Tensor, eps: torch.Tensor | float) -> torch.Tensor:
    """The functional form: ``relu(x) + eps * x * exp(-x**2 / 2)``."""
    return F.relu(x) + eps * x * torch.exp(-0.5 * x * x)


class CRReLU(nn.Module):
    """``ReLU(x) + ε·x·exp(−x²/2)`` with one scalar ``ε`` per module.

    Args:
        eps: the initial value of ε (0.01 in the paper's code).
        learnable: whether ε is an ``nn.Parameter`` trained with the network (the
            paper's choice) or a fixed buffer.
    """

    def __init__(self, eps: float = DEFAULT_EPS, learnable: bool = True) -> None:
        super().__init__()
        scalar_parameter(self, "eps", eps, learnable)
        self.learnable = learnable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return crrelu(x, self.eps.to(x.dtype))

    def extra_repr(self) -> str:
        return f"eps={float(self.eps.detach()):.4g}, learnable={self.learnable}"
