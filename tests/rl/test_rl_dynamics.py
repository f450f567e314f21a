"""Entropy dynamics of a softmax bandit: one policy-gradient step changes the entropy by
−η·Cov(log π, Δz/η) to first order (Cui et al. 2025)."""

from __future__ import annotations

import pytest
import torch

from workers.rl import token_covariance
from workers.rl.dynamics import (
    entropy,
    first_order_entropy_change,
    natural_pg_step,
    policy_covariance,
    vanilla_pg_step,
)


def bandit(seed: int, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, generator=g, dtype=torch.float64) * 1.5, torch.randn(k, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_natural_pg_step_changes_entropy_by_minus_eta_cov(seed: int) -> None:
    z, adv = bandit(seed)
    predicted_per_eta = -float(policy_covariance(z, adv))
    assert abs(predicted_per_eta) > 1e-3  # a non-trivial case
    errors = []
    for eta in (1e-2, 1e-3, 1e-4):
        actual = float(entropy(natural_pg_step(z, adv, eta)) - entropy(z))
        predicted = -eta * float(policy_covariance(z, adv))
        assert predicted == pytest.approx(eta * predicted_per_eta)
        if eta <= 1e-3:
            assert actual == pytest.approx(predicted, rel=0.03)
        errors.append(abs(actual - predicted))
    # the remainder is second order: ten times smaller a step, a hundred times smaller an error
    assert errors[1] < errors[0] / 50 and errors[2] < errors[1] / 50


def test_the_covariance_sign_decides_the_direction() -> None:
    z = torch.tensor([3.0, 1.0, 0.0, -1.0], dtype=torch.float64)  # action 0 is the confident one
    rewards_confident = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    rewards_rare = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    eta = 1e-2
    assert policy_covariance(z, rewards_confident) > 0
    assert entropy(natural_pg_step(z, rewards_confident, eta)) < entropy(z)  # exploitation: entropy falls
    assert policy_covariance(z, rewards_rare) < 0
    assert entropy(natural_pg_step(z, rewards_rare, eta)) > entropy(z)  # a rare good action: entropy rises


def test_vanilla_pg_step_is_the_autograd_gradient_and_obeys_the_general_formula() -> None:
    z, adv = bandit(5)
    eta = 1e-3
    logits = z.clone().requires_grad_(True)
    objective = (torch.softmax(logits, -1) * adv).sum()  # J = E_π[A]
    objective.backward()
    assert logits.grad is not None
    stepped = vanilla_pg_step(z, adv, eta)
    assert torch.allclose(stepped, z + eta * logits.grad, atol=1e-12)
    actual = float(entropy(stepped) - entropy(z))
    assert actual == pytest.approx(float(first_order_entropy_change(z, stepped - z)), rel=0.02)


def test_sampled_token_covariance_estimates_the_policy_covariance() -> None:
    z, adv = bandit(7, k=6)
    g = torch.Generator().manual_seed(0)
    actions = torch.multinomial(torch.softmax(z, -1), 200_000, replacement=True, generator=g)
    logp = torch.log_softmax(z, -1)[actions]
    sampled = float(token_covariance(logp, adv[actions]).mean())
    assert sampled == pytest.approx(float(policy_covariance(z, adv)), abs=0.01)
