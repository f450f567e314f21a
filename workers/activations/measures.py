"""Entropy measures of a trained network, all in nats.

- :func:`histogram_entropy`: the Shannon entropy of a histogram of values,
  ``H = −Σ_b p_b log p_b`` over ``bins`` equal-width bins spanning the ``[q, 1−q]``
  quantile range of the values (values outside are counted in the edge bins, so one
  outlier does not squash the rest into a single bin). ``0 <= H <= log(bins)``; a
  constant signal gives 0, a uniform spread gives ``log(bins)``. A ReLU layer's exact
  zeros all fall in the first bin, so sparsity lowers it.
- :func:`predictive_entropy`: the mean over examples of ``H(softmax(logits))``;
  ``0 <= H <= log(classes)``.
- :func:`attention_entropy`: the mean over examples, heads and query positions of the
  entropy of each attention row ``a_i``: ``−Σ_j a_ij log a_ij``; ``0 <= H <= log(tokens)``.
"""

from __future__ import annotations

import math

import torch

MAX_QUANTILE_INPUT = 1 << 24  # torch.quantile's limit on the input size


def histogram_entropy(values: torch.Tensor, bins: int = 64, quantile: float = 0.001) -> float:
    """Entropy (nats) of the histogram of ``values`` (see the module docstring)."""
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    if not 0.0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), got {quantile}")
    flat = values.detach().reshape(-1).to("cpu", torch.float64)
    if flat.numel() == 0:
        raise ValueError("histogram_entropy of an empty tensor")
    if not torch.isfinite(flat).all():
        raise ValueError("histogram_entropy: values are not all finite")
    sample = flat if flat.numel() <= MAX_QUANTILE_INPUT else flat[:: math.ceil(flat.numel() / MAX_QUANTILE_INPUT)]
    lo, hi = torch.quantile(sample, torch.tensor([quantile, 1.0 - quantile], dtype=torch.float64)).tolist()
    if not hi > lo:
        return 0.0
    counts = torch.histc(flat.clamp(lo, hi), bins=bins, min=lo, max=hi)
    p = counts / counts.sum()
    return float(torch.special.entr(p).sum())


def predictive_entropy(logits: torch.Tensor) -> float:
    """Mean entropy (nats) of the predictive distributions ``softmax(logits)`` over rows."""
    logp = torch.log_softmax(logits.detach().double(), dim=-1)
    return float(-(logp.exp() * logp).sum(dim=-1).mean())


def attention_entropy(attention: torch.Tensor) -> float:
    """Mean entropy (nats) of the rows of attention weights ``(..., queries, keys)``."""
    return float(torch.special.entr(attention.detach().double()).sum(dim=-1).mean())
