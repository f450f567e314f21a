"""The loss pieces: clip-higher, Clip-Cov, KL-Cov, advantages and the entropy controllers."""

from __future__ import annotations

import pytest
import torch

from workers.rl import (
    AdaptiveEntropyCoef,
    GRPOConfig,
    aepo_sample_count,
    aepo_temperature,
    clip_cov_select,
    group_advantages,
    kl_cov_select,
    policy_loss,
    token_covariance,
)


def tokens(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log π_θ with grad, log π_old, A) for n tokens, π_θ a little off π_old."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, generator=g, dtype=torch.float64) * 4
    logp = (old + 0.02 * torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_(True)
    adv = torch.randn(n, generator=g, dtype=torch.float64) * 2
    return logp, old, adv


def grad_of(out_loss: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(out_loss, logp)
    return grad


def test_clip_higher_clips_asymmetrically() -> None:
    ratios = torch.tensor([0.7, 0.79, 0.85, 1.0, 1.25, 1.3, 1.5], dtype=torch.float64)
    logp = ratios.log().requires_grad_(True)
    old = torch.zeros_like(ratios)
    for sign in (1.0, -1.0):
        adv = torch.full_like(ratios, sign)
        out = policy_loss(logp, old, adv, eps_low=0.2, eps_high=0.28)
        grad = grad_of(out.loss, logp)
        live = grad != 0
        if sign > 0:  # a good token is clipped only above 1 + eps_high = 1.28
            assert live.tolist() == [True, True, True, True, True, False, False]
        else:  # a bad token is clipped only below 1 - eps_low = 0.8
            assert live.tolist() == [False, False, True, True, True, True, True]
        assert out.clipped == int((~live).sum())
    # symmetric clipping (0.2 / 0.2) would have clipped the good token at ratio 1.25
    out = policy_loss(logp, old, torch.ones_like(ratios), eps_low=0.2, eps_high=0.2)
    assert grad_of(out.loss, logp)[4] == 0


def test_clip_cov_drops_exactly_max_int_r_n_1_tokens_within_the_bounds() -> None:
    n = 2000
    logp, old, adv = tokens(n)
    cov = token_covariance(logp, adv)
    inside = (cov > 1.0) & (cov < 5.0)
    assert int(inside.sum()) > 100
    for r in (0.013, 0.02, 1e-5):
        expected = max(int(r * n), 1)
        out = policy_loss(logp, old, adv, loss_mode="clip_cov", clip_cov_ratio=r, clip_cov_lb=1.0, clip_cov_ub=5.0,
                          generator=torch.Generator().manual_seed(1))
        dropped = grad_of(out.loss, logp) == 0
        assert out.clipped == 0  # π_θ is within the PPO bounds of π_old here
        assert out.dropped == expected == int(dropped.sum())
        assert bool(inside[dropped].all())  # only tokens within (ω_low, ω_high)
    # tokens clipped by PPO are never chosen: push half of the in-bounds tokens out of the ratio bounds
    moved = logp.detach().clone()
    idx = torch.nonzero(inside).flatten()[::2]
    moved[idx] = old[idx] + torch.where(adv[idx] > 0, 0.5, -0.5)  # ratio e^±0.5: clipped for its advantage's sign
    moved.requires_grad_(True)
    out = policy_loss(moved, old, adv, loss_mode="clip_cov", clip_cov_ratio=0.05, generator=torch.Generator())
    zero = grad_of(out.loss, moved) == 0
    assert out.clipped >= len(idx) and out.dropped == max(int(0.05 * n), 1)
    assert int(zero.sum()) == out.clipped + out.dropped  # the dropped tokens are not among the clipped ones


def test_clip_cov_count_floors_r_times_n() -> None:
    """REFERENCE.md §5 (verl): ``clip_num = max(int(r · N), 1)``, a floor: r·N = 2.9 drops 2
    (not 3), 2.5 drops 2, 1.9 drops 1 and 0.4 still drops 1; N is every token, here 10 in bounds."""
    cov = torch.linspace(1.5, 4.5, 10, dtype=torch.float64)
    eligible = torch.ones(10, dtype=torch.bool)
    for ratio, expected in ((0.29, 2), (0.25, 2), (0.19, 1), (0.04, 1)):
        mask = clip_cov_select(cov, eligible, ratio=ratio, lb=1.0, ub=5.0, generator=torch.Generator().manual_seed(0))
        assert int(mask.sum()) == expected, ratio
    # through the loss, on 2000 tokens: r·N = 27.6 drops 27
    logp, old, adv = tokens(2000)
    out = policy_loss(logp, old, adv, loss_mode="clip_cov", clip_cov_ratio=0.0138, clip_cov_lb=1.0, clip_cov_ub=5.0,
                      generator=torch.Generator().manual_seed(1))
    assert out.dropped == 27 == int((grad_of(out.loss, logp) == 0).sum())


def test_clip_cov_takes_all_candidates_when_fewer_and_draws_them_uniformly() -> None:
    cov = torch.tensor([0.5, 2.0, 3.0, 6.0, 4.0, -1.0])
    eligible = torch.ones(6, dtype=torch.bool)
    mask = clip_cov_select(cov, eligible, ratio=1.0, lb=1.0, ub=5.0, generator=torch.Generator().manual_seed(0))
    assert mask.tolist() == [False, True, True, False, True, False]  # 6 asked for, the 3 candidates given
    eligible[2] = False
    mask = clip_cov_select(cov, eligible, ratio=1.0, lb=1.0, ub=5.0)
    assert mask.tolist() == [False, True, False, False, True, False]
    # one draw among 3 candidates, many times: each about a third of the time
    cov = torch.tensor([2.0, 2.5, 3.0] + [0.0] * 97)
    counts = torch.zeros(100)
    g = torch.Generator().manual_seed(0)
    for _ in range(3000):
        counts += clip_cov_select(cov, torch.ones(100, dtype=torch.bool), 0.01, 1.0, 5.0, g).float()
    assert counts.sum() == 3000 and counts[3:].sum() == 0
    assert ((counts[:3] - 1000).abs() < 120).all()


def test_kl_cov_penalises_the_top_tokens_by_covariance() -> None:
    n = 1000
    logp, old, adv = tokens(n, seed=3)
    cov = token_covariance(logp, adv)
    ratio, beta = 0.01, 2.0
    k = max(1, int(ratio * n))
    top = torch.zeros(n, dtype=torch.bool)
    top[torch.argsort(cov, descending=True)[:k]] = True
    assert kl_cov_select(cov, ratio).tolist() == top.tolist()
    assert int(kl_cov_select(cov, 1e-6).sum()) == 1  # at least one token

    out = policy_loss(logp, old, adv, loss_mode="kl_cov", kl_cov_ratio=ratio, kl_coef=beta)
    assert out.penalised == k and out.clipped == 0  # KL-Cov does not clip the ratio
    grad = grad_of(out.loss, logp)
    # plain token: d/dlogp (−A r)/N = −A r / N; penalised: + β sign(Δ) / N
    r = torch.exp(logp.detach() - old)
    plain = -adv * r / n
    extra = grad - plain
    assert torch.allclose(extra[~top], torch.zeros_like(extra[~top]), atol=1e-12)
    assert torch.allclose(extra[top], beta * torch.sign(logp.detach() - old)[top] / n, atol=1e-12)
    # the vanilla loss of the same tokens carries no such term
    vanilla = grad_of(policy_loss(logp, old, adv, eps_low=1.0, eps_high=1e9).loss, logp)
    assert torch.allclose(vanilla, plain, atol=1e-12)


def test_entropy_bonus_enters_with_its_coefficient() -> None:
    logp, old, adv = tokens(50)
    ent = torch.rand(50, dtype=torch.float64, requires_grad=True)
    out = policy_loss(logp, old, adv, entropy=ent, entropy_coef=0.3)
    assert float(out.loss.detach()) == pytest.approx(out.pg_loss - 0.3 * float(ent.detach().mean()))
    (g,) = torch.autograd.grad(out.loss, ent)
    assert torch.allclose(g, torch.full_like(g, -0.3 / 50))


def test_group_advantages() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    adv = group_advantages(rewards, 4)
    first = adv[:4]
    assert float(first.sum()) == pytest.approx(0.0, abs=1e-6)
    # unbiased std of [1,0,0,0] is 0.5; rel 1e-7 (float32) tells std + eps from std - eps (rel 4e-6)
    assert float(first[0]) == pytest.approx(0.75 / (0.5 + 1e-6), rel=1e-7)
    assert adv[4:].tolist() == [0.0, 0.0, 0.0, 0.0]  # no signal in an all-correct group
    assert group_advantages(rewards, 4, norm_by_std=False)[:4].tolist() == [0.75, -0.25, -0.25, -0.25]
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_advantages(rewards[:7], 4)


@pytest.mark.parametrize("norm_by_std", [True, False])
def test_an_all_equal_group_has_zero_advantages_whatever_adv_eps(norm_by_std: bool) -> None:
    """adv_eps = 0 with GRPO's std: an all-equal group is 0 / 0 (it read NaN), and one whose
    mean is off by a rounding error (three rewards of 0.1, shaped rewards) read ±0.82."""
    rewards = torch.tensor([0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    adv = group_advantages(rewards, 4, norm_by_std, 0.0)
    assert adv[:4].tolist() == [0.0, 0.0, 0.0, 0.0]
    # the informative group is untouched, bit for bit: (r − mean) / std (or r − mean)
    spread = (rewards[4:].double() - 0.5) / (rewards[4:].double().std() if norm_by_std else 1.0)
    assert adv[4:].tolist() == spread.float().tolist()
    shaped = torch.tensor([0.1, 0.1, 0.1, 1.0, 0.1, 0.1], dtype=torch.float64)
    assert group_advantages(shaped, 3, norm_by_std, 0.0)[:3].tolist() == [0.0, 0.0, 0.0]
    assert group_advantages(shaped, 3, norm_by_std, 1e-6)[:3].tolist() == [0.0, 0.0, 0.0]
    assert torch.isfinite(group_advantages(shaped, 3, norm_by_std, 0.0)).all()


def test_advantages_of_informative_groups_are_unchanged() -> None:
    """Only all-equal groups are special-cased: the others are (r − mean) / (std + ε) exactly."""
    g = torch.Generator().manual_seed(3)
    rewards = torch.rand(64, generator=g, dtype=torch.float64)
    for eps in (0.0, 1e-6, 0.5):
        groups = rewards.view(-1, 8)
        expected = (groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + eps)
        assert torch.equal(group_advantages(rewards, 8, True, eps), expected.view(-1))


def test_adaptive_coefficient_and_aepo_rules() -> None:
    ctl = AdaptiveEntropyCoef(coef=0.0, target=0.5, delta=0.1, low=0.0, high=0.25)
    assert ctl.update(0.3) == pytest.approx(0.1) and ctl.applies(0.3)
    assert ctl.update(0.3) == pytest.approx(0.2)
    assert ctl.update(0.3) == pytest.approx(0.25)  # bounded above
    assert ctl.update(0.9) == pytest.approx(0.15) and not ctl.applies(0.9)
    assert aepo_temperature(0.3, 0.5, 1.2, 0.8) == 1.2
    assert aepo_temperature(0.7, 0.5, 1.2, 0.8) == 0.8
    assert aepo_sample_count(0.3, 0.5, 8, 20) == 8
    assert aepo_sample_count(0.3, 0.5, 8, 5) == 5
    assert aepo_sample_count(0.7, 0.5, 8, 20) == 4


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="kl_cov_ratio must be a fraction"):
        GRPOConfig(kl_cov_ratio=2.0)
    with pytest.raises(ValueError, match="loss_mode must be one of"):
        GRPOConfig.from_params({"loss_mode": "kl"})
    with pytest.raises(ValueError, match="unknown GRPO parameter"):
        GRPOConfig.from_params({"entropy_bonus": 0.1})
    cfg = GRPOConfig.from_params({"steps": 3.0, "aepo": True}, {"lr": "0.001"})
    assert cfg.steps == 3 and cfg.aepo is True and cfg.lr == 0.001
