"""Entropy controllers that act between optimizer steps: the adaptive entropy
coefficient and AEPO-style temperature regulation. Entropies are in nats.

Adaptive coefficient (Skywork-OR1; TRL ``use_adaptive_entropy``)::

    c ← clip(c + δ, c_min, c_max)   if H < H_target
    c ← clip(c − δ, c_min, c_max)   otherwise

once per optimizer step, with H the token-mean entropy of the minibatch about to be
updated; the bonus −c·H enters that step's loss only when H ≤ H_target.

AEPO (Wang et al., arXiv 2510.08141, as its ``verl/trainer/ray_trainer.py`` does it;
REFERENCE.md §6)::

    T = T_high if H ≤ H_target else T_low

then ⌊fraction · P⌋ (at least 1) of the step's P prompts are sampled again (G each) at T;
of those samples, the ones whose group-normalised advantage exceeds a threshold (0.05) get
advantage 1 and replace the first ``n`` samples of the GRPO batch,
``n = min(sample_num, available)`` when H ≤ H_target and ⌊that / 2⌋ above it. That adds
E_{o∼π^T}[∇ log π(o|q) · R(q, o)] (REINFORCE on positive samples drawn at T) to the GRPO
gradient: hotter samples raise the entropy, colder ones lower it.

The signal H (``aepo_entropy``):

- ``sampled`` (the official trainer): the previous step's ``actor/entropy_loss``, i.e. the
  mean over that step's minibatch updates of −mean_i log π_θ(y_i), the sampled tokens'
  surprise under the policy being updated, over the whole update batch (the regenerated
  samples included). It starts at 0, so step 1 runs at T_high.
- ``exact``: the exact token-mean entropy of the tempered policy on this step's GRPO
  rollout, before the update (this project's earlier rule).
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass
class AdaptiveEntropyCoef:
    """The entropy coefficient, moved by ``delta`` toward keeping H at ``target``."""

    coef: float
    target: float
    delta: float = 0.005
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        self.coef = min(max(self.coef, self.low), self.high)

    def applies(self, entropy: float) -> bool:
        """Whether the bonus enters the loss at this entropy (only at or below target)."""
        return entropy <= self.target

    def update(self, entropy: float) -> float:
        """Move the coefficient after seeing ``entropy``; return the new value."""
        step = self.delta if entropy < self.target else -self.delta
        self.coef = min(max(self.coef + step, self.low), self.high)
        return self.coef


def aepo_temperature(entropy: float, target: float, t_high: float, t_low: float) -> float:
    """The regulated sampling temperature: hot at or below the target entropy, cold above it."""
    return t_high if entropy <= target else t_low


def aepo_prompt_count(prompts: int, fraction: float) -> int:
    """How many of the step's prompts are sampled again: ⌊fraction · prompts⌋ (the official
    ``len(batch) // 4`` at fraction 1/4), at least 1."""
    return max(1, math.floor(fraction * prompts + 1e-9))


def aepo_sample_count(entropy: float, target: float, sample_num: int, available: int) -> int:
    """How many REINFORCE samples replace GRPO samples this step: min(sample_num, available)
    at or below the target, half of it (floored) above."""
    n = min(sample_num, available)
    return n if entropy <= target else n // 2
