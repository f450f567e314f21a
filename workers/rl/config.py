"""The hyperparameters of one GRPO run, with the convention each one follows.

Units and conventions (see ``docs/entropy_rl.md`` and REFERENCE.md §§5-6):

- every entropy (``entropy_target``, ``aepo_entropy_target``, the logged curves) is the
  mean per-token Shannon entropy in **nats** of the distribution the loss optimises, the
  policy's logits divided by the rollout ``temperature`` (verl's and TRL's convention);
- ``temperature`` may be any T > 0, however small: no lower bound, because the loss's
  log-probabilities are computed stably (:func:`workers.rl.rollout.tempered_logits` shifts a
  row by its largest logit where z / T would overflow, as the sampler does), so a T of 1e-40
  is greedy decoding with zero entropy, where z / T had overflowed to NaN and failed the run;
- ``clip_cov_ratio`` and ``kl_cov_ratio`` are **fractions** of the batch's valid
  tokens (upstream verl's ``clip_cov_ratio`` / ``kl_cov_ratio``), not percentages: the
  PRIME repository's ``k_percent = 0.2`` is ``kl_cov_ratio = 0.002`` here;
- ``eps_low`` / ``eps_high`` are the PPO ratio bounds ``1 − eps_low ≤ r ≤ 1 + eps_high``
  (DAPO's clip-higher sets ``eps_high`` above ``eps_low``, e.g. 0.2 / 0.28). Left ``None``
  they take the official scripts' values for the loss mode (:data:`DEFAULT_CLIP`): 0.2 / 0.2
  for ``vanilla``, 1 / 1 for ``clip_cov`` and ``kl_cov`` (PRIME's ``*_clip_cov.sh``: the
  ratio bounds [0, 2] leave the covariance rule alone in charge; KL-Cov never clips);
- ``dual_clip`` bounds the loss of a negative-advantage token by −A·c (verl's
  ``clip_ratio_c`` = 3), in the ``vanilla`` mode as verl does;
- ``ref_kl_coef`` is GRPO's β on the k3 estimate of KL(π_θ ‖ π_ref) to the starting policy;
- ``top_entropy_quantile`` ρ is the fraction of highest-entropy tokens the policy gradient
  uses ("Beyond the 80/20 Rule"; 1 = all tokens, the paper's choice is 0.2);
- ``dynamic_sampling`` (DAPO) drops groups whose rewards are all equal and samples more
  prompts, up to ``max_gen_batches`` generation batches per step;
  ``overlong_buffer_len`` L_cache > 0 turns on DAPO's soft overlong penalty;
- ``kl_coef`` is KL-Cov's β (verl ``ppo_kl_coef``), ``clip_cov_lb`` / ``clip_cov_ub`` are
  Clip-Cov's ω_low / ω_high on the centred token covariance (same units as A · log π).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

LOSS_MODES = ("vanilla", "clip_cov", "kl_cov")
#: The largest learning rate AdamW can take in float32 (``workers.activations.training.ADAMW_MAX_LR``,
#: repeated so this module stays torch-free): its first step is lr / (1 − β₁) = 10·lr.
ADAMW_MAX_LR = 3.4e37
#: Where AEPO's entropy signal comes from (see :mod:`workers.rl.entropy_control`).
AEPO_ENTROPY = ("sampled", "exact")
#: (eps_low, eps_high) when left None: the official scripts' per loss mode (REFERENCE.md §5).
DEFAULT_CLIP: dict[str, tuple[float, float]] = {"vanilla": (0.2, 0.2), "clip_cov": (1.0, 1.0), "kl_cov": (1.0, 1.0)}


@dataclasses.dataclass
class GRPOConfig:
    """One GRPO run. Field names are the evaluator's parameter names."""

    # --- the loop
    steps: int = 20  # RL steps: one rollout batch and its updates each (0: no training)
    prompts_per_step: int = 8  # prompts drawn per step (without replacement within an epoch of the pool)
    group_size: int = 8  # G completions per prompt
    lr: float = 5e-5  # AdamW learning rate (constant)
    weight_decay: float = 0.0
    ppo_epochs: int = 1  # passes over each rollout batch
    num_minibatches: int = 2  # optimizer steps per pass (sequences split at random)
    max_grad_norm: float | None = 1.0
    max_new_tokens: int | None = None  # None: the task's default, capped by the model's positions
    temperature: float = 1.0  # rollout temperature; the loss uses logits / temperature
    # --- advantages
    norm_adv_by_std: bool = True  # GRPO: (r − mean) / (std + eps); False: Dr. GRPO's r − mean
    adv_eps: float = 1e-6
    # --- PPO clipping (clip-higher, dual-clip); None: DEFAULT_CLIP of the loss mode
    eps_low: float | None = None
    eps_high: float | None = None
    dual_clip: bool = False  # vanilla: a negative-advantage token's loss is at most −A·clip_ratio_c
    clip_ratio_c: float = 3.0  # verl's default
    # --- GRPO's KL to the reference (starting) policy, k3 estimator
    ref_kl_coef: float = 0.0  # β (0: off, no reference model is kept)
    # --- which tokens and groups the gradient uses
    top_entropy_quantile: float = 1.0  # ρ: policy gradient on the top ⌈ρN⌉ entropy tokens (1: all)
    dynamic_sampling: bool = False  # DAPO: drop all-equal-reward groups and sample more prompts
    max_gen_batches: int = 10  # generation batches per step at most (the PRIME/DAPO scripts' 10)
    overlong_buffer_len: int = 0  # DAPO's L_cache in tokens (0: no overlong penalty)
    overlong_penalty_factor: float = 1.0
    # --- covariance-based controls (Cui et al. 2025)
    loss_mode: str = "vanilla"  # vanilla | clip_cov | kl_cov
    clip_cov_ratio: float = 2e-4  # fraction of valid tokens whose gradient is dropped
    clip_cov_lb: float = 1.0  # ω_low
    clip_cov_ub: float = 5.0  # ω_high
    kl_cov_ratio: float = 2e-4  # fraction of valid tokens given the |log π − log π_old| penalty
    kl_coef: float = 1.0  # β
    # --- entropy bonus, fixed or adaptive (Skywork-OR1 / TRL ``use_adaptive_entropy``)
    entropy_coef: float = 0.0  # loss −= coef · token-mean entropy (the adaptive rule's start value)
    adaptive_entropy: bool = False
    entropy_target: float = 0.2  # nats
    entropy_coef_delta: float = 0.005  # change of the coefficient per optimizer step
    entropy_coef_min: float = 0.0
    entropy_coef_max: float = 1.0
    # --- AEPO-style temperature regulation (Wang et al., arXiv 2510.08141)
    aepo: bool = False
    aepo_entropy_target: float = 0.5  # nats (the paper's entropy_base)
    aepo_temperature_high: float = 1.2
    aepo_temperature_low: float = 0.8
    aepo_entropy: str = "sampled"  # sampled: last step's −mean log π (official) | exact: this rollout's H
    aepo_sample_num: int = 60  # at most this many REINFORCE samples replace GRPO samples (reinforce_sample_num)
    aepo_prompt_fraction: float = 0.25  # ⌊fraction · prompts⌋ (≥ 1) regenerated at the regulated temperature
    aepo_adv_threshold: float = 0.05  # regenerated samples kept when their advantage exceeds this

    def __post_init__(self) -> None:
        for name in ("steps", "prompts_per_step", "group_size", "ppo_epochs", "num_minibatches"):
            value = getattr(self, name)
            least = 0 if name == "steps" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (advantages are relative to the group), got {self.group_size}")
        if self.loss_mode not in LOSS_MODES:
            raise ValueError(f"loss_mode must be one of {', '.join(LOSS_MODES)}, got {self.loss_mode!r}")
        if self.aepo_entropy not in AEPO_ENTROPY:
            raise ValueError(f"aepo_entropy must be one of {', '.join(AEPO_ENTROPY)}, got {self.aepo_entropy!r}")
        for name in ("max_gen_batches",):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.overlong_buffer_len, int) or self.overlong_buffer_len < 0:
            raise ValueError(f"overlong_buffer_len must be an integer >= 0 (tokens), got {self.overlong_buffer_len!r}")
        checks: list[tuple[str, bool, str]] = [
            ("lr", 0 < self.lr <= ADAMW_MAX_LR, f"in (0, {ADAMW_MAX_LR:.4g}] (AdamW's first step is 10·lr, "
                                                 "which float32 must hold)"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("temperature", self.temperature > 0, "> 0"),
            ("adv_eps", self.adv_eps >= 0, ">= 0"),
            ("clip_ratio_c", self.clip_ratio_c > 1, "> 1"),
            ("ref_kl_coef", self.ref_kl_coef >= 0, ">= 0"),
            ("top_entropy_quantile", 0 < self.top_entropy_quantile <= 1, "a fraction in (0, 1]"),
            ("overlong_penalty_factor", self.overlong_penalty_factor >= 0, ">= 0"),
            ("clip_cov_ratio", 0 <= self.clip_cov_ratio <= 1, "a fraction in [0, 1]"),
            ("clip_cov_ub", self.clip_cov_ub > self.clip_cov_lb, "> clip_cov_lb"),
            ("kl_cov_ratio", 0 <= self.kl_cov_ratio <= 1, "a fraction in [0, 1]"),
            ("kl_coef", self.kl_coef >= 0, ">= 0"),
            ("entropy_target", self.entropy_target >= 0, ">= 0 (nats)"),
            ("entropy_coef_delta", self.entropy_coef_delta >= 0, ">= 0"),
            ("entropy_coef_max", self.entropy_coef_max >= self.entropy_coef_min, ">= entropy_coef_min"),
            ("aepo_entropy_target", self.aepo_entropy_target >= 0, ">= 0 (nats)"),
            ("aepo_temperature_high", self.aepo_temperature_high > 0, "> 0"),
            ("aepo_temperature_low", self.aepo_temperature_low > 0, "> 0"),
            ("aepo_temperature_high", self.aepo_temperature_high >= self.aepo_temperature_low,
             ">= aepo_temperature_low (the hot temperature raises a low entropy)"),
            ("aepo_sample_num", self.aepo_sample_num >= 0, ">= 0"),
            ("aepo_prompt_fraction", 0 < self.aepo_prompt_fraction <= 1, "in (0, 1]"),
        ]
        if self.eps_low is not None:
            checks.append(("eps_low", 0 <= self.eps_low <= 1, "in [0, 1] or null"))
        if self.eps_high is not None:
            checks.append(("eps_high", self.eps_high >= 0, ">= 0 or null"))
        if self.max_grad_norm is not None:
            checks.append(("max_grad_norm", self.max_grad_norm > 0, "> 0 or null"))
        if self.max_new_tokens is not None:
            checks.append(("max_new_tokens", self.max_new_tokens >= 1, ">= 1 or null"))
        for name, ok, rule in checks:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
            if not ok:
                raise ValueError(f"{name} must be {rule}, got {value!r}")

    def clip_bounds(self) -> tuple[float, float]:
        """(ε_low, ε_high): the fields, or :data:`DEFAULT_CLIP` of the loss mode where None."""
        low, high = DEFAULT_CLIP[self.loss_mode]
        return (low if self.eps_low is None else self.eps_low, high if self.eps_high is None else self.eps_high)

    def resolved(self) -> GRPOConfig:
        """This config with ``eps_low`` / ``eps_high`` the bounds the loss uses
        (:meth:`clip_bounds`), never None: what a run records, so a stored config says which
        ratio bounds held (``clip_cov``'s 1 / 1, not ``None``) and reruns the same run."""
        low, high = self.clip_bounds()
        return dataclasses.replace(self, eps_low=low, eps_high=high)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> GRPOConfig:
        """A config from plain values (``defaults`` first, then ``params``), numbers cast
        to the fields' types; an unknown name or a bad value is a ValueError."""
        merged = {**(defaults or {}), **params}
        unknown = sorted(set(merged) - cls.field_names())
        if unknown:
            raise ValueError(f"unknown GRPO parameter(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(cls.field_names()))})")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        out: dict[str, Any] = {}
        for key, value in merged.items():
            kind = str(types[key])
            try:
                if value is None and "None" in kind:
                    out[key] = None
                elif kind.startswith("bool"):
                    if not isinstance(value, bool | int) or value not in (0, 1, True, False):
                        raise ValueError
                    out[key] = bool(value)
                elif kind.startswith("int"):
                    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                        raise ValueError
                    out[key] = int(value)
                elif kind.startswith("float"):
                    if isinstance(value, bool):
                        raise ValueError
                    out[key] = float(value)
                else:
                    out[key] = str(value)
            except (TypeError, ValueError):
                raise ValueError(f"{key} has an invalid value {value!r} (expected {kind})") from None
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
