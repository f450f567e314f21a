"""Group-normalised advantages (GRPO, Shao et al. 2024).

For a prompt q with G completions o_1 … o_G and scalar rewards r_1 … r_G, every token of
o_j gets the same advantage

    A_j = (r_j − mean(r)) / (std(r) + ε)        (``norm_adv_by_std=True``, GRPO)
    A_j =  r_j − mean(r)                         (``norm_adv_by_std=False``, Dr. GRPO)

with the unbiased standard deviation over the group (as verl's ``compute_grpo_outcome_advantage``).
A group whose rewards are all equal carries no signal: its advantages are exactly 0, in both
modes and whatever ε. (Its mean can be off by a rounding error, e.g. three rewards of 0.1, and
with ε = 0 that error divided by a std of the same size read ±0.82; an exact 0 / 0 read NaN.)
"""

from __future__ import annotations

import torch


def group_advantages(rewards: torch.Tensor, group_size: int, norm_by_std: bool = True,
                     eps: float = 1e-6) -> torch.Tensor:
    """Advantages of ``rewards`` (shape ``(num_prompts * group_size,)``, groups contiguous); a group
    whose rewards are all equal (or whose std + ε is 0) gets exactly 0."""
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be flat with a multiple of group_size={group_size} entries, "
                         f"got shape {tuple(rewards.shape)}")
    if group_size < 2:
        raise ValueError("group_size must be >= 2")
    groups = rewards.double().view(-1, group_size)
    centred = groups - groups.mean(dim=1, keepdim=True)
    scale = groups.std(dim=1, keepdim=True) + eps if norm_by_std else torch.ones_like(centred[:, :1])
    flat = (groups == groups[:, :1]).all(dim=1, keepdim=True) | (scale == 0)
    adv = torch.where(flat, 0.0, centred / torch.where(flat, 1.0, scale))
    return adv.view(-1).to(rewards.dtype if rewards.is_floating_point() else torch.float32)
