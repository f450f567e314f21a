"""Slow references for the RL controls, written from the official code's rules (not from
the code under test): float64, one token or one group at a time, loops where the rule is a
loop. Each names the function it restates.
"""

from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- losses


def ppo_dual_clip(logp: np.ndarray, old: np.ndarray, adv: np.ndarray, eps_low: float, eps_high: float,
                  c: float) -> float:
    """verl ``compute_policy_loss_vanilla`` (token-mean): per token
    l1 = −A r, l2 = −A clip(r, 1 − ε_low, 1 + ε_high), l = max(l1, l2); for A < 0,
    l = min(l, −A c)."""
    total = 0.0
    for lp, o, a in zip(logp, old, adv, strict=True):
        r = math.exp(lp - o)
        loss = max(-a * r, -a * min(max(r, 1 - eps_low), 1 + eps_high))
        if a < 0:
            loss = min(loss, -a * c)
        total += loss
    return total / len(logp)


def centred_covariance(logp: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """PRIME ``compute_policy_loss_clip_cov`` / ``_kl_cov``: per valid token,
    (A_i − mean A)(log π_θ(y_i) − mean log π_θ), the means over the batch's valid tokens."""
    return (adv - adv.mean()) * (logp - logp.mean())


def clip_cov_all_candidates(logp: np.ndarray, old: np.ndarray, adv: np.ndarray, eps_low: float, eps_high: float,
                            lb: float, ub: float) -> tuple[float, np.ndarray]:
    """PRIME ``compute_policy_loss_clip_cov`` when ``clip_num`` covers every candidate (so the
    random draw takes them all): l_i = max(−A r, −A clip(r, 1 − ε_low, 1 + ε_high)); a token
    not clipped by PPO (l2 ≤ l1) with lb < Cov_i < ub gets ``corr`` 0; the loss is the
    token-mean of l_i·corr_i over **all** valid tokens. Returns (loss, dropped mask)."""
    cov = centred_covariance(logp, adv)
    total = 0.0
    dropped = np.zeros(len(logp), dtype=bool)
    for i, (lp, o, a) in enumerate(zip(logp, old, adv, strict=True)):
        r = math.exp(lp - o)
        l1, l2 = -a * r, -a * min(max(r, 1 - eps_low), 1 + eps_high)
        dropped[i] = not (l2 > l1) and lb < cov[i] < ub
        total += 0.0 if dropped[i] else max(l1, l2)
    return total / len(logp), dropped


def kl_cov_loss(logp: np.ndarray, old: np.ndarray, adv: np.ndarray, ratio: float, coef: float) -> float:
    """verl ``compute_policy_loss_kl_cov`` (``kl_cov_ratio`` a fraction): −A r for every token,
    plus coef·|log π_θ − log π_old| for the max(1, int(N·ratio)) tokens of largest Cov_i; no
    ratio clipping; token-mean."""
    cov = centred_covariance(logp, adv)
    top = set(np.argsort(-cov, kind="stable")[:max(1, int(len(logp) * ratio))].tolist())
    total = 0.0
    for i, (lp, o, a) in enumerate(zip(logp, old, adv, strict=True)):
        total += -a * math.exp(lp - o) + (coef * abs(lp - o) if i in top else 0.0)
    return total / len(logp)


def k3_kl_mean(logp: np.ndarray, ref: np.ndarray) -> float:
    """GRPO's per-token KL estimate (DeepSeekMath eq. 4; TRL ``per_token_kl``), token-mean:
    π_ref/π_θ − log(π_ref/π_θ) − 1."""
    return float(np.mean([math.exp(r - lp) - (r - lp) - 1 for lp, r in zip(logp, ref, strict=True)]))


def top_entropy_selection(entropy: np.ndarray, ratio: float) -> np.ndarray:
    """``get_global_entropy_top_mask`` (Beyond-the-80-20-Rule-RLVR ``core_algos.py``): the
    ``max(1, int(N·ratio + 0.9999))`` tokens of largest entropy."""
    k = max(1, int(len(entropy) * ratio + 0.9999))
    chosen = np.zeros(len(entropy), dtype=bool)
    chosen[np.argsort(-entropy, kind="stable")[:k]] = True
    return chosen


def masked_token_mean(values: np.ndarray, mask: np.ndarray) -> float:
    """verl ``masked_mean`` (``agg_loss`` token-mean with ``response_mask * entropy_top_mask``)."""
    return float((values * mask).sum() / mask.sum())


# --------------------------------------------------------------------------- DAPO


def dapo_kept_groups(rewards: np.ndarray, group_size: int) -> list[int]:
    """``dapo_ray_trainer.py`` filter_groups: keep a prompt's group when np.std of its
    trajectories' ``acc`` is > 0 (or it has one trajectory)."""
    kept = []
    for g in range(len(rewards) // group_size):
        vals = rewards[g * group_size:(g + 1) * group_size]
        if np.std(vals) > 0 or len(vals) == 1:
            kept.append(g)
    return kept


def dapo_overlong_reward(length: int, max_resp_len: int, buffer_len: int, factor: float) -> float:
    """``DAPORewardManager``: expected = max_resp_len − buffer; exceed = length − expected;
    reward += min(−exceed / buffer · factor, 0)."""
    exceed = length - (max_resp_len - buffer_len)
    return min(-exceed / buffer_len * factor, 0.0)


# --------------------------------------------------------------------------- AEPO


def aepo_step_controls(entropy: float, entropy_base: float, temperature_high: float, temperature_low: float,
                       reinforce_sample_num: int, prompts: int, regenerated_adv: np.ndarray) -> dict:
    """One AEPO step of ``597358816/AEPO`` ``verl/trainer/ray_trainer.py`` (``fit``, branch
    ``alg == "AEPO"``): the temperature, the prompts regenerated (``len(batch) // 4``), the
    regenerated samples kept (advantage > 0.05, then set to 1) and how many replace the
    batch's first samples. (The official code crashes when no sample is kept; here: 0.)"""
    temperature = temperature_high if entropy <= entropy_base else temperature_low
    kept = [i for i, a in enumerate(regenerated_adv) if a > 0.05]
    if entropy <= entropy_base:
        sample_num = min(reinforce_sample_num, len(kept))
    else:
        sample_num = min(reinforce_sample_num, len(kept)) // 2
    return {"temperature": temperature, "prompts": prompts // 4, "kept": kept[:sample_num],
            "sample_num": sample_num}


def aepo_entropy_metric(update_logps: list[np.ndarray]) -> float:
    """The signal the next step reads, ``metrics["actor/entropy_loss"]``: each update
    micro-batch logs −masked_mean(log π_θ) (``dp_actor.update_policy``) and
    ``reduce_metrics`` averages those values."""
    return float(np.mean([-lp.mean() for lp in update_logps]))
