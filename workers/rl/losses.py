"""The token-level policy losses of GRPO and the covariance-based entropy controls.

Every function takes flat tensors over the N valid response tokens of one minibatch
(padding already removed): ``logp`` = log π_θ(y_i) (with gradient), ``old_logp`` =
log π_old(y_i) (the policy that sampled the batch), ``adv`` = A_i (the advantage of the
token's sequence). The loss is the **token mean** over those N tokens (verl
``loss_agg_mode: token-mean``).

PPO with clip-higher (DAPO)::

    r_i   = exp(log π_θ(y_i) − log π_old(y_i))
    L_i   = max(−A_i r_i, −A_i clip(r_i, 1 − ε_low, 1 + ε_high))

A token is *clipped* when the second term is the larger (its gradient is zero).

Dual-clip (Ye et al. 2020; verl ``compute_policy_loss_vanilla``, ``clip_ratio_c`` c = 3)::

    L_i ← min(L_i, −A_i c)   for A_i < 0

so a bad token whose ratio has grown far above 1 contributes at most −A_i·c (zero gradient).

Centred token covariance (Cui et al. 2025, §5 of REFERENCE.md)::

    Cov_i = (A_i − mean(A)) · (log π_θ(y_i) − mean(log π_θ))        (no gradient)

Its mean over tokens is the batch covariance Cov(log π, A), the term that drives the
entropy change: for a natural policy gradient ΔH ≈ −η Cov(log π, A).

Clip-Cov: among the tokens not clipped by PPO with ω_low < Cov_i < ω_high, pick
``max(int(r · N), 1)`` uniformly at random (all of them if there are fewer) and multiply
their loss by 0: they give no gradient.

KL-Cov: the unclipped loss −A_i r_i for every token, plus β · |log π_θ(y_i) − log π_old(y_i)|
for the ``k = max(1, int(ratio · N))`` tokens with the largest Cov_i (no ratio clipping at
all, as in verl's ``compute_policy_loss_kl_cov``).

Entropy bonus: ``loss −= c · mean_i H_i`` where H_i is the entropy (nats) of the
(tempered) next-token distribution at token i.

KL to the reference policy (GRPO, Shao et al. 2024, eq. 4; the k3 estimator)::

    loss += β · mean_i [ exp(log π_ref(y_i) − log π_θ(y_i)) − (log π_ref(y_i) − log π_θ(y_i)) − 1 ]

(≥ 0, unbiased for KL(π_θ ‖ π_ref) under samples of π_θ; no clamp, as GRPO and TRL write it).

Top-entropy tokens ("Beyond the 80/20 Rule", Wang et al. 2025; their verl
``get_global_entropy_top_mask``): with ρ = ``top_entropy_quantile`` < 1 only the
k = max(1, ⌈ρN⌉) tokens of highest entropy H_i enter the policy-gradient part, whose token
mean is then over those k tokens; the entropy bonus and the KL term stay over all N.
"""

from __future__ import annotations

import dataclasses
import math

import torch


@dataclasses.dataclass
class LossOutput:
    """One minibatch's loss (with gradient) and what it did, token by token."""

    loss: torch.Tensor
    pg_loss: float  # token mean of the policy-gradient part
    entropy: float  # token mean of H_i, nats
    covariance: float  # mean_i Cov_i = Cov(log π, A) over the tokens
    clipped: int  # tokens clipped by PPO's ratio bounds
    dropped: int  # Clip-Cov: tokens whose gradient was dropped
    penalised: int  # KL-Cov: tokens given the |Δ log π| penalty
    tokens: int
    approx_kl: float  # mean(log π_old − log π_θ)
    dual_clipped: int = 0  # tokens whose loss dual-clip bounded by −A·c
    ref_kl: float = 0.0  # token mean of the k3 estimate of KL(π_θ ‖ π_ref) (0 without a reference)
    pg_tokens: int = 0  # tokens in the policy-gradient mean (N, or ⌈ρN⌉ with top-entropy tokens)


def token_covariance(logp: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """Cov_i = (A_i − mean A)(log π_i − mean log π), detached."""
    logp = logp.detach()
    return (adv - adv.mean()) * (logp - logp.mean())


def ppo_clip_losses(ratio: torch.Tensor, adv: torch.Tensor, eps_low: float, eps_high: float
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token clipped surrogate losses and the mask of tokens where the clip is active."""
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def dual_clip_losses(losses: torch.Tensor, adv: torch.Tensor, clip_ratio_c: float
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dual-clip: for A_i < 0 the loss is min(L_i, −A_i·c); also the mask of tokens it bounded."""
    bound = -adv * clip_ratio_c
    bounded = (adv < 0) & (losses > bound)
    return torch.where(adv < 0, torch.minimum(losses, bound), losses), bounded


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ ‖ π_ref): exp(d) − d − 1 with d = log π_ref − log π_θ."""
    d = ref_logp.detach() - logp
    return torch.exp(d) - d - 1.0


def top_entropy_mask(entropy: torch.Tensor, quantile: float) -> torch.Tensor:
    """Mask of the k = max(1, ⌈ρN⌉) highest-entropy tokens (ρ = ``quantile``; all when ρ = 1).
    ⌈·⌉ is the official ``int(N·ρ + 0.9999)``."""
    n = entropy.numel()
    if quantile >= 1.0:
        return torch.ones(n, dtype=torch.bool, device=entropy.device)
    k = min(max(1, math.floor(n * quantile + 0.9999)), n)
    mask = torch.zeros(n, dtype=torch.bool, device=entropy.device)
    mask[torch.topk(entropy.detach(), k).indices] = True
    return mask


def clip_cov_select(cov: torch.Tensor, eligible: torch.Tensor, ratio: float, lb: float, ub: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask of the tokens Clip-Cov drops: ``max(int(ratio · N), 1)`` drawn uniformly
    among the ``eligible`` tokens with ``lb < cov < ub`` (all of them when fewer)."""
    n_drop = max(int(ratio * cov.numel()), 1)
    candidates = torch.nonzero(eligible & (cov > lb) & (cov < ub)).flatten()
    mask = torch.zeros_like(cov, dtype=torch.bool)
    if candidates.numel():
        gen_device = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(candidates.numel(), generator=generator, device=gen_device).to(cov.device)
        mask[candidates[order[:n_drop]]] = True
    return mask


def kl_cov_select(cov: torch.Tensor, ratio: float) -> torch.Tensor:
    """Mask of the ``max(1, int(ratio · N))`` tokens with the largest covariance."""
    k = min(max(1, int(ratio * cov.numel())), cov.numel())
    mask = torch.zeros_like(cov, dtype=torch.bool)
    mask[torch.topk(cov, k).indices] = True
    return mask


def _per_token_pg(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, cov: torch.Tensor,
                  loss_mode: str, eps_low: float, eps_high: float, dual_clip_c: float | None,
                  clip_cov_ratio: float, clip_cov_lb: float, clip_cov_ub: float, kl_cov_ratio: float,
                  kl_coef: float, generator: torch.Generator | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The per-token policy-gradient losses of ``loss_mode`` and the masks of what it did."""
    ratio = torch.exp(logp - old_logp)
    none = torch.zeros(logp.numel(), dtype=torch.bool, device=logp.device)
    masks = {"clipped": none, "dropped": none, "penalised": none, "dual_clipped": none}
    if loss_mode == "vanilla":
        per_token, masks["clipped"] = ppo_clip_losses(ratio, adv, eps_low, eps_high)
        if dual_clip_c is not None:
            per_token, masks["dual_clipped"] = dual_clip_losses(per_token, adv, dual_clip_c)
    elif loss_mode == "clip_cov":
        per_token, masks["clipped"] = ppo_clip_losses(ratio, adv, eps_low, eps_high)
        masks["dropped"] = clip_cov_select(cov, ~masks["clipped"], clip_cov_ratio, clip_cov_lb, clip_cov_ub, generator)
        per_token = per_token * (~masks["dropped"]).to(per_token.dtype)
    elif loss_mode == "kl_cov":
        masks["penalised"] = kl_cov_select(cov, kl_cov_ratio)
        per_token = -adv * ratio + kl_coef * masks["penalised"].to(logp.dtype) * (logp - old_logp).abs()
    else:
        raise ValueError(f"loss_mode must be vanilla, clip_cov or kl_cov, got {loss_mode!r}")
    return per_token, masks


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *, loss_mode: str = "vanilla",
                eps_low: float = 0.2, eps_high: float = 0.2, dual_clip_c: float | None = None,
                clip_cov_ratio: float = 2e-4, clip_cov_lb: float = 1.0, clip_cov_ub: float = 5.0,
                kl_cov_ratio: float = 2e-4, kl_coef: float = 1.0, entropy: torch.Tensor | None = None,
                entropy_coef: float = 0.0, ref_logp: torch.Tensor | None = None, ref_kl_coef: float = 0.0,
                top_entropy_quantile: float = 1.0, generator: torch.Generator | None = None) -> LossOutput:
    """The token-mean GRPO loss of one minibatch under ``loss_mode`` (vanilla | clip_cov | kl_cov).

    ``dual_clip_c`` (vanilla only) turns on dual-clip; ``ref_logp`` with ``ref_kl_coef`` > 0
    adds β·k3-KL; ``top_entropy_quantile`` < 1 (needs ``entropy``) restricts the
    policy-gradient mean to the highest-entropy tokens. The entropy bonus applies when
    ``entropy`` is given and ``entropy_coef`` ≠ 0.
    """
    n = logp.numel()
    if n == 0:
        raise ValueError("a minibatch needs at least one valid token")
    if not (old_logp.shape == adv.shape == logp.shape):
        raise ValueError(f"logp, old_logp and adv must have one shape, got {tuple(logp.shape)}, "
                         f"{tuple(old_logp.shape)}, {tuple(adv.shape)}")
    if top_entropy_quantile < 1.0 and entropy is None:
        raise ValueError("top_entropy_quantile < 1 needs the tokens' entropy")
    old_logp = old_logp.detach()
    adv = adv.detach().to(logp.dtype)
    cov = token_covariance(logp, adv)
    per_token, masks = _per_token_pg(logp, old_logp, adv, cov, loss_mode, eps_low, eps_high, dual_clip_c,
                                     clip_cov_ratio, clip_cov_lb, clip_cov_ub, kl_cov_ratio, kl_coef, generator)
    keep = top_entropy_mask(entropy, top_entropy_quantile) if entropy is not None else torch.ones_like(masks["clipped"])
    pg = (per_token * keep.to(per_token.dtype)).sum() / keep.sum()
    loss = pg
    mean_entropy = 0.0
    if entropy is not None:
        h = entropy.mean()
        mean_entropy = float(h.detach())
        if entropy_coef:
            loss = loss - entropy_coef * h
    ref_kl = 0.0
    if ref_logp is not None and ref_kl_coef:
        kl = k3_kl(logp, ref_logp).mean()
        ref_kl = float(kl.detach())
        loss = loss + ref_kl_coef * kl
    return LossOutput(loss=loss, pg_loss=float(pg.detach()), entropy=mean_entropy, covariance=float(cov.mean()),
                      clipped=int(masks["clipped"].sum()), dropped=int(masks["dropped"].sum()),
                      penalised=int(masks["penalised"].sum()), tokens=n,
                      approx_kl=float((old_logp - logp.detach()).mean()),
                      dual_clipped=int(masks["dual_clipped"].sum()), ref_kl=ref_kl, pg_tokens=int(keep.sum()))
