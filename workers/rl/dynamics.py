"""Entropy dynamics of a softmax policy (Cui et al. 2025, REFERENCE.md §5), exactly and
to first order, on one state (a bandit) with logits z over K actions.

π = softmax(z), H(π) = −Σ_a π_a log π_a. For a logit change Δz,

    H(softmax(z + Δz)) − H(softmax(z)) = −Cov_{a∼π}(log π_a, Δz_a) + O(‖Δz‖²)

since ∂H/∂z_b = −π_b (log π_b + H) and E_π[Δz] drops out of the covariance.

- natural policy gradient, Δz = η A:            ΔH ≈ −η Cov_π(log π, A)
- vanilla (exact) policy gradient on E_π[A],
  Δz = η π ⊙ (A − E_π A):                       ΔH ≈ −η Cov_π(log π, π ⊙ (A − E_π A))

Confident actions with a positive advantage lower the entropy; rare actions with a
positive advantage raise it.
"""

from __future__ import annotations

import torch


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(softmax(logits)) over the last axis, nats."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def policy_covariance(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Cov_{a∼π}(log π_a, values_a) with π = softmax(logits), over the last axis."""
    logp = torch.log_softmax(logits, dim=-1)
    p = logp.exp()
    mean_logp = (p * logp).sum(-1, keepdim=True)
    mean_v = (p * values).sum(-1, keepdim=True)
    return (p * (logp - mean_logp) * (values - mean_v)).sum(-1)


def first_order_entropy_change(logits: torch.Tensor, delta_logits: torch.Tensor) -> torch.Tensor:
    """The first-order prediction −Cov_π(log π, Δz) of H(z + Δz) − H(z)."""
    return -policy_covariance(logits, delta_logits)


def natural_pg_step(logits: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """Logits after one natural policy-gradient step of a tabular softmax: z + η A."""
    return logits + eta * advantages


def vanilla_pg_step(logits: torch.Tensor, advantages: torch.Tensor, eta: float) -> torch.Tensor:
    """Logits after one exact policy-gradient step on J = E_π[A]: z + η π ⊙ (A − E_π A)."""
    p = torch.softmax(logits, dim=-1)
    return logits + eta * p * (advantages - (p * advantages).sum(-1, keepdim=True))
