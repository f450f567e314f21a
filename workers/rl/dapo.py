"""DAPO's batch controls (Yu et al. 2025, arXiv 2503.14476; verl ``recipe/dapo``): the
dynamic-sampling filter and the soft overlong penalty.

Dynamic sampling (``dapo_ray_trainer.py``, ``filter_groups`` with metric ``acc``): a group
whose G rewards are all equal (population std 0) has zero advantages and no gradient, so it
is dropped; the trainer samples more prompts until ``prompts_per_step`` groups are kept,
up to ``max_gen_batches`` generation batches, then keeps the first ``prompts_per_step``.

Overlong reward shaping (the ``DAPORewardManager``'s ``overlong_buffer``): with L_max the
generation limit, L_cache the buffer and |y| the response length in tokens (the stop token
included)::

    R_length(y) = 0                                     |y| ≤ L_max − L_cache
                = ((L_max − L_cache) − |y|) / L_cache   L_max − L_cache < |y| ≤ L_max
                  (times ``overlong_penalty_factor``)

added to the verifiable reward; |y| never exceeds L_max here (generation stops there), so the
paper's −1 branch for |y| > L_max cannot occur.
"""

from __future__ import annotations

import torch


def informative_groups(rewards: torch.Tensor, group_size: int) -> list[int]:
    """Indices of the groups (contiguous, ``group_size`` rows each) whose rewards are not all equal."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    groups = rewards.double().view(-1, group_size)
    spread = groups.max(dim=1).values - groups.min(dim=1).values
    return [g for g in range(groups.shape[0]) if float(spread[g]) > 0]


def overlong_penalty(lengths: torch.Tensor, max_len: int, buffer_len: int, factor: float = 1.0) -> torch.Tensor:
    """DAPO's soft overlong penalty (≤ 0) of responses of ``lengths`` tokens, float32."""
    if buffer_len <= 0:
        return torch.zeros(lengths.shape, dtype=torch.float32)
    if buffer_len > max_len:
        raise ValueError(f"overlong_buffer_len {buffer_len} exceeds the generation limit {max_len} tokens")
    exceed = lengths.double() - (max_len - buffer_len)
    return torch.clamp(-exceed / buffer_len * factor, max=0.0).float()
