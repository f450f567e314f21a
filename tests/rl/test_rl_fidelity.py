"""The RL controls against references written from the official code (tests/rl/reference.py):
AEPO's trainer rules and entropy signal, Clip-Cov's default clip bounds, dual-clip, GRPO's
k3 KL to the reference policy, the 80/20 top-entropy tokens, and DAPO's dynamic sampling and
overlong reward shaping."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest
import torch

import workers.rl.trainer as trainer_module
from tests.rl import reference as ref
from workers.decoding.models import LanguageModel, load_model
from workers.decoding.tasks import ArithmeticTask
from workers.rl import GRPOConfig, GRPOTrainer, policy_loss
from workers.rl.dapo import informative_groups, overlong_penalty
from workers.rl.entropy_control import aepo_prompt_count, aepo_sample_count, aepo_temperature
from workers.rl.losses import LossOutput, top_entropy_mask
from workers.rl.rollout import TokenBatch


def tokens(n: int, seed: int, spread: float = 0.7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(log π_θ with grad, log π_old, A): ratios spread widely, so every clip rule acts."""
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(n, generator=g, dtype=torch.float64) * 4
    logp = (old + spread * torch.randn(n, generator=g, dtype=torch.float64)).requires_grad_(True)
    adv = torch.randn(n, generator=g, dtype=torch.float64)
    return logp, old, adv


def np_(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy()


# --------------------------------------------------------------------------- losses


@pytest.mark.parametrize("seed", range(6))
def test_dual_clip_equals_verl_vanilla(seed: int) -> None:
    logp, old, adv = tokens(400, seed, spread=1.2)
    out = policy_loss(logp, old, adv, eps_low=0.2, eps_high=0.28, dual_clip_c=3.0)
    expected = ref.ppo_dual_clip(np_(logp), np_(old), np_(adv), 0.2, 0.28, 3.0)
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    ratio = torch.exp(logp.detach() - old)
    bounded = (adv < 0) & (ratio > 3.0)  # −A·clip(r) < −A·r there, and −A·r > −A·c
    assert out.dual_clipped == int(bounded.sum()) > 0
    (grad,) = torch.autograd.grad(out.loss, logp)
    assert bool((grad[bounded] == 0).all())  # the bound is a constant: no gradient
    without = policy_loss(logp, old, adv, eps_low=0.2, eps_high=0.28)
    assert float(without.loss.detach()) > float(out.loss.detach())  # the bound only lowers the loss


@pytest.mark.parametrize("seed", range(4))
def test_k3_kl_to_the_reference_equals_grpo(seed: int) -> None:
    logp, old, adv = tokens(300, seed)
    g = torch.Generator().manual_seed(100 + seed)
    ref_logp = logp.detach() + 0.5 * torch.randn(300, generator=g, dtype=torch.float64)
    beta = 0.04  # DeepSeekMath's β
    base = policy_loss(logp, old, adv)
    out = policy_loss(logp, old, adv, ref_logp=ref_logp, ref_kl_coef=beta)
    kl = ref.k3_kl_mean(np_(logp), np_(ref_logp))
    assert out.ref_kl == pytest.approx(kl, rel=1e-12) and kl > 0
    assert float(out.loss.detach()) == pytest.approx(float(base.loss.detach()) + beta * kl, rel=1e-12)
    # d/d log π of β·mean(k3) is β (1 − π_ref/π_θ) / N
    extra = torch.autograd.grad(out.loss, logp)[0] - torch.autograd.grad(base.loss, logp)[0]
    expected = beta * (1 - torch.exp(ref_logp - logp.detach())) / 300
    torch.testing.assert_close(extra, expected, rtol=1e-10, atol=1e-14)
    assert policy_loss(logp, old, adv, ref_logp=ref_logp, ref_kl_coef=0.0).ref_kl == 0.0  # off by default


@pytest.mark.parametrize("seed", range(4))
def test_clip_cov_and_kl_cov_loss_values_equal_the_official_rule(seed: int) -> None:
    """The whole loss, not only which tokens: Clip-Cov's covariance centred over the batch's
    tokens, its dropped tokens still counted in the token mean (``corr`` = 0, denominator N),
    and KL-Cov's −A r + β|Δ log π| on the top-Cov tokens, each equal to the float64 rule of
    the official code (ratio 1 makes Clip-Cov's uniform draw take every candidate)."""
    logp, old, adv = tokens(500, 40 + seed, spread=0.3)
    adv = adv * 3  # Cov spans the (1, 5) window
    loss, dropped = ref.clip_cov_all_candidates(np_(logp), np_(old), np_(adv), 0.2, 0.28, 1.0, 5.0)
    out = policy_loss(logp, old, adv, loss_mode="clip_cov", eps_low=0.2, eps_high=0.28, clip_cov_ratio=1.0,
                      clip_cov_lb=1.0, clip_cov_ub=5.0, generator=torch.Generator().manual_seed(seed))
    assert out.clipped > 0 and out.dropped == int(dropped.sum()) > 0
    assert float(out.loss.detach()) == pytest.approx(loss, rel=1e-12, abs=1e-15)
    assert out.covariance == pytest.approx(float(ref.centred_covariance(np_(logp), np_(adv)).mean()), rel=1e-12)
    beta, ratio = 1.0, 0.02
    out = policy_loss(logp, old, adv, loss_mode="kl_cov", kl_cov_ratio=ratio, kl_coef=beta)
    assert out.penalised == int(500 * ratio)
    assert float(out.loss.detach()) == pytest.approx(ref.kl_cov_loss(np_(logp), np_(old), np_(adv), ratio, beta),
                                                     rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(("n", "ratio"), [(50, 0.2), (51, 0.2), (7, 0.2), (200, 0.05), (64, 0.5)])
def test_top_entropy_tokens_equal_the_official_mask(n: int, ratio: float) -> None:
    logp, old, adv = tokens(n, n)
    entropy = torch.rand(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64) * 3
    chosen = ref.top_entropy_selection(np_(entropy), ratio)
    assert top_entropy_mask(entropy, ratio).numpy().tolist() == chosen.tolist()
    out = policy_loss(logp, old, adv, eps_low=0.2, eps_high=0.28, entropy=entropy, top_entropy_quantile=ratio)
    r = np.exp(np_(logp) - np_(old))
    a = np_(adv)
    per_token = np.maximum(-a * r, -a * np.clip(r, 0.8, 1.28))
    assert float(out.loss.detach()) == pytest.approx(ref.masked_token_mean(per_token, chosen), rel=1e-12)
    assert out.pg_tokens == int(chosen.sum()) == max(1, math.ceil(n * ratio - 1e-9))
    (grad,) = torch.autograd.grad(out.loss, logp)
    assert bool((grad[torch.from_numpy(~chosen)] == 0).all())  # no gradient from the low-entropy tokens
    full = policy_loss(logp, old, adv, entropy=entropy)  # the default, ρ = 1: every token
    assert full.pg_tokens == n


def test_top_entropy_tokens_keep_the_bonus_over_all_tokens() -> None:
    logp, old, adv = tokens(40, 1)
    entropy = torch.rand(40, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    out = policy_loss(logp, old, adv, entropy=entropy, entropy_coef=0.1, top_entropy_quantile=0.2)
    (g,) = torch.autograd.grad(out.loss, entropy)
    torch.testing.assert_close(g, torch.full_like(g, -0.1 / 40))
    with pytest.raises(ValueError, match="needs the tokens' entropy"):
        policy_loss(logp, old, adv, top_entropy_quantile=0.2)


def test_clip_cov_and_kl_cov_default_to_the_official_scripts_bounds() -> None:
    """PRIME's ``*_clip_cov.sh`` set clip_ratio_low = clip_ratio_high = 1: no PPO clip to speak of."""
    assert GRPOConfig().clip_bounds() == (0.2, 0.2)
    assert GRPOConfig(loss_mode="clip_cov").clip_bounds() == (1.0, 1.0)
    assert GRPOConfig(loss_mode="kl_cov").clip_bounds() == (1.0, 1.0)
    assert GRPOConfig(loss_mode="clip_cov", eps_high=0.28).clip_bounds() == (1.0, 0.28)
    assert GRPOConfig(eps_low=1.0).clip_bounds() == (1.0, 0.2)  # ε_low = 1 is allowed
    with pytest.raises(ValueError, match="eps_low must be in"):
        GRPOConfig(eps_low=1.01)
    # with bounds [0, 2], a ratio of 1.9 (A > 0) or 0.05 (A < 0) is not clipped
    logp = torch.log(torch.tensor([1.9, 0.05], dtype=torch.float64)).requires_grad_(True)
    out = policy_loss(logp, torch.zeros(2, dtype=torch.float64), torch.tensor([1.0, -1.0], dtype=torch.float64),
                      loss_mode="clip_cov", eps_low=1.0, eps_high=1.0, clip_cov_lb=100.0, clip_cov_ub=200.0)
    assert out.clipped == 0


def test_the_trainer_passes_the_resolved_bounds_and_dual_clip(nano: LanguageModel,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    real = trainer_module.policy_loss

    def spy(*args: Any, **kwargs: Any) -> LossOutput:
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "policy_loss", spy)
    task = ArithmeticTask(nano, 16)
    for config, bounds, dual in [(GRPOConfig(loss_mode="clip_cov"), (1.0, 1.0), None),
                                 (GRPOConfig(dual_clip=True), (0.2, 0.2), 3.0)]:
        seen.clear()
        small = dataclasses.replace(config, steps=1, prompts_per_step=2, group_size=2)
        GRPOTrainer(nano, task.items, task.correct, small, max_new_tokens=4).train()
        assert seen and all((k["eps_low"], k["eps_high"]) == bounds and k["dual_clip_c"] == dual for k in seen)


# --------------------------------------------------------------------------- DAPO


@pytest.mark.parametrize("seed", range(5))
def test_dynamic_sampling_filter_equals_dapo(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rewards = (rng.random(64) < rng.choice([0.05, 0.5, 0.95], 64).repeat(1)).astype(np.float32)
    rewards[:8] = 1.0  # one all-correct group at least
    assert informative_groups(torch.from_numpy(rewards), 8) == ref.dapo_kept_groups(rewards, 8)


@pytest.mark.parametrize(("max_len", "buffer", "factor"), [(20, 4, 1.0), (4, 2, 1.0), (4, 4, 0.5), (30, 1, 2.0)])
def test_overlong_penalty_equals_dapo(max_len: int, buffer: int, factor: float) -> None:
    lengths = torch.arange(1, max_len + 1)
    ours = overlong_penalty(lengths, max_len, buffer, factor)
    expected = [ref.dapo_overlong_reward(int(n), max_len, buffer, factor) for n in lengths]
    torch.testing.assert_close(ours, torch.tensor(expected, dtype=torch.float32))
    assert float(ours[-1]) == pytest.approx(-factor)  # at the limit: the whole penalty
    assert bool((ours[: max_len - buffer] == 0).all())  # up to L_max − L_cache: none
    assert overlong_penalty(lengths, max_len, 0).abs().sum() == 0  # off by default


def test_overlong_buffer_longer_than_the_limit_is_refused(nano: LanguageModel) -> None:
    task = ArithmeticTask(nano, 8)
    with pytest.raises(ValueError, match="overlong_buffer_len 5 exceeds max_new_tokens 4"):
        GRPOTrainer(nano, task.items, task.correct, GRPOConfig(overlong_buffer_len=5), max_new_tokens=4)


def record_batches(trainer: GRPOTrainer, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The update batch of each step (what ``_update`` receives)."""
    batches: list[Any] = []
    real = trainer._update

    def spy(batch: Any) -> dict[str, Any]:
        batches.append(batch)
        return real(batch)

    monkeypatch.setattr(trainer, "_update", spy)
    return batches


def test_dynamic_sampling_keeps_only_informative_groups_and_refills(nano: LanguageModel,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    task = ArithmeticTask(nano, 64)
    cfg = GRPOConfig(steps=4, prompts_per_step=6, group_size=4, dynamic_sampling=True, max_gen_batches=10)
    trainer = GRPOTrainer(nano, task.items, task.correct, cfg, max_new_tokens=4, seed=3)
    batches = record_batches(trainer, monkeypatch)
    history = trainer.train()
    for stats, batch in zip(history, batches, strict=True):
        rewards = batch.rollout.rewards.numpy()
        assert stats.kept_groups == 6 == len(rewards) // 4
        assert ref.dapo_kept_groups(rewards, 4) == list(range(6))  # every kept group carries a signal
    assert any(s.gen_batches > 1 for s in history)  # some steps had to sample more prompts
    plain = GRPOTrainer(nano, task.items, task.correct, GRPOConfig(steps=4, prompts_per_step=6, group_size=4),
                        max_new_tokens=4, seed=3).train()
    assert all(s.gen_batches == 1 and s.kept_groups == 6 for s in plain)


def test_dynamic_sampling_without_any_signal_stops_at_max_gen_batches(nano: LanguageModel) -> None:
    task = ArithmeticTask(nano, 32)
    cfg = GRPOConfig(steps=1, prompts_per_step=4, group_size=4, dynamic_sampling=True, max_gen_batches=3)
    (stats,) = GRPOTrainer(nano, task.items, lambda item, text: 0.0, cfg, max_new_tokens=4).train()
    assert stats.gen_batches == 3 and stats.kept_groups == 4 and stats.pg_loss == 0.0


def test_overlong_shaping_enters_the_advantages(nano: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    task = ArithmeticTask(nano, 32)
    cfg = GRPOConfig(steps=1, prompts_per_step=4, group_size=4, overlong_buffer_len=2)
    trainer = GRPOTrainer(nano, task.items, lambda item, text: 1.0, cfg, max_new_tokens=4)
    batches = record_batches(trainer, monkeypatch)
    (stats,) = trainer.train()
    rollout = batches[0].rollout
    penalty = [ref.dapo_overlong_reward(len(r), 4, 2, 1.0) for r in rollout.responses]
    shaped = torch.tensor([1.0 + p for p in penalty])
    assert stats.overlong_penalty == pytest.approx(float(np.mean(penalty)))
    groups = shaped.view(-1, 4)
    expected = ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-6)).view(-1)
    torch.testing.assert_close(batches[0].adv, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- AEPO


@pytest.mark.parametrize("entropy", [0.0, 0.3, 0.5, 0.7])
@pytest.mark.parametrize("prompts", [4, 8, 12, 512])
def test_aepo_rules_equal_the_official_step(entropy: float, prompts: int) -> None:
    rng = np.random.default_rng(prompts)
    adv = rng.normal(0, 1, prompts // 4 * 8)
    official = ref.aepo_step_controls(entropy, 0.5, 1.2, 0.8, 60, prompts, adv)
    assert aepo_temperature(entropy, 0.5, 1.2, 0.8) == official["temperature"]
    assert aepo_prompt_count(prompts, 0.25) == official["prompts"]
    available = int((adv > 0.05).sum())
    assert aepo_sample_count(entropy, 0.5, 60, available) == official["sample_num"]


def test_aepo_defaults_are_the_official_ones() -> None:
    cfg = GRPOConfig()
    assert (cfg.aepo_entropy, cfg.aepo_sample_num, cfg.aepo_entropy_target) == ("sampled", 60, 0.5)
    assert (cfg.aepo_temperature_high, cfg.aepo_temperature_low, cfg.aepo_prompt_fraction) == (1.2, 0.8, 0.25)
    assert aepo_temperature(0.5, 0.5, 1.2, 0.8) == 1.2  # at the target: hot, as `entropy <= entropy_base`
    assert aepo_prompt_count(2, 0.25) == 1 and aepo_prompt_count(6, 0.25) == 1  # ⌊P/4⌋, at least one
    with pytest.raises(ValueError, match="aepo_entropy must be one of"):
        GRPOConfig(aepo_entropy="mean")


def test_aepo_temperatures_the_wrong_way_round_are_refused() -> None:
    """T_high below T_low would cool a collapsing policy and heat an exploring one."""
    from workers.evaluators.configs import EntropyRLConfig, config_problems

    with pytest.raises(ValueError, match="aepo_temperature_high must be >= aepo_temperature_low"):
        GRPOConfig(aepo=True, aepo_temperature_high=0.7, aepo_temperature_low=1.3)
    assert config_problems(EntropyRLConfig, {"aepo_temperature_high": 0.7}) == [
        "evaluator.config.aepo_temperature_high: must be >= aepo_temperature_low (0.8): "
        "the hot temperature raises a low entropy"]
    GRPOConfig(aepo=True, aepo_temperature_high=1.0, aepo_temperature_low=1.0)  # no regulation: allowed


def test_aepo_signal_is_the_last_steps_update_surprise(nano: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 1 sees 0 (T_high); step k sees the mean over step k−1's minibatch updates of
    −mean log π_θ over the update batch, the regenerated samples included."""
    updates: list[np.ndarray] = []
    real = trainer_module.token_logprobs

    def spy(lm: LanguageModel, batch: TokenBatch, temperature: float,
            model: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out = real(lm, batch, temperature, model)
        if torch.is_grad_enabled():
            updates.append(out[0].detach().double().numpy())
        return out

    monkeypatch.setattr(trainer_module, "token_logprobs", spy)
    task = ArithmeticTask(nano, 64)
    cfg = GRPOConfig(steps=4, prompts_per_step=8, group_size=4, num_minibatches=2, aepo=True,
                     aepo_entropy_target=0.6, lr=1e-3)
    trainer = GRPOTrainer(nano, task.items, task.correct, cfg, max_new_tokens=4, seed=1)
    signals, per_step = [], []
    for _ in range(cfg.steps):
        updates.clear()
        stats = trainer.step()
        signals.append(stats)
        per_step.append(list(updates))
        assert sum(len(u) for u in updates) == stats.tokens  # every token of the update batch, once
    assert signals[0].aepo_entropy == 0.0 and signals[0].aepo_temperature == 1.2
    for k in range(1, cfg.steps):
        expected = ref.aepo_entropy_metric(per_step[k - 1])
        assert signals[k].aepo_entropy == pytest.approx(expected, rel=1e-6)  # float32 means vs float64
        assert signals[k].aepo_temperature == (1.2 if expected <= 0.6 else 0.8)
    assert any(s.aepo_samples > 0 for s in signals)


@pytest.fixture
def nano() -> LanguageModel:
    """A fresh arith-nano (the trainers change its weights)."""
    return load_model("builtin:arith-nano", dtype="float32")


def test_the_trainer_uses_top_entropy_tokens_and_the_reference_kl(nano: LanguageModel) -> None:
    task = ArithmeticTask(nano, 32)
    cfg = GRPOConfig(steps=2, prompts_per_step=4, group_size=4, num_minibatches=1, top_entropy_quantile=0.2,
                     ref_kl_coef=0.1, lr=1e-3)
    trainer = GRPOTrainer(nano, task.items, task.correct, cfg, max_new_tokens=4)
    history = trainer.train()
    for stats in history:  # one minibatch per step: ⌈0.2 N⌉ of its N tokens
        assert stats.pg_tokens == max(1, int(stats.tokens * 0.2 + 0.9999))
    assert trainer.ref_model is not None and not any(p.requires_grad for p in trainer.ref_model.parameters())
    assert history[0].ref_kl == pytest.approx(0.0, abs=1e-7)  # the first update is at the reference itself
    assert history[1].ref_kl > 0
    assert GRPOTrainer(nano, task.items, task.correct, GRPOConfig(), max_new_tokens=4).ref_model is None


def test_the_config_model_mirrors_the_new_fields() -> None:
    from workers.evaluators.configs import EntropyRLConfig, config_problems
    from workers.evaluators.entropy_rl import EntropyRLEvaluator

    assert config_problems(EntropyRLConfig, {"eps_low": 1.0, "loss_mode": "clip_cov", "dual_clip": True,
                                             "top_entropy_quantile": 0.2, "dynamic_sampling": True,
                                             "overlong_buffer_len": 2, "ref_kl_coef": 0.04}) == []
    assert config_problems(EntropyRLConfig, {"eps_low": 1.5, "aepo_entropy": "mean", "top_entropy_quantile": 0.0,
                                             "clip_ratio_c": 1.0}) == [
        "evaluator.config.eps_low: must be <= 1.0",
        "evaluator.config.clip_ratio_c: must be > 1.0",
        "evaluator.config.top_entropy_quantile: must be > 0.0",
        "evaluator.config.aepo_entropy: must be 'sampled' or 'exact' (got 'mean')"]
    space = {"aepo_entropy": {"type": "categorical", "choices": ["sampled", "mean"]}}
    assert EntropyRLEvaluator.check_space({}, space) == [
        "space.aepo_entropy.choices: 'mean' is not an AEPO entropy signal (known: sampled, exact)"]
