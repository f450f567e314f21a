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
"""

from __future__ import annotations

import dataclasses

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


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, adv: torch.Tensor, *, loss_mode: str = "vanilla",
                eps_low: float = 0.2, eps_high: float = 0.2, clip_cov_ratio: float = 2e-4,
                clip_cov_lb: float = 1.0, clip_cov_ub: float = 5.0, kl_cov_ratio: float = 2e-4,
                kl_coef: float = 1.0, entropy: torch.Tensor | None = None, entropy_coef: float = 0.0,
                generator: torch.Generator | None = None) -> LossOutput:
    """The token-mean GRPO loss of one minibatch under ``loss_mode`` (vanilla | clip_cov | kl_cov)."""
    n = logp.numel()
    if n == 0:
        raise ValueError("a minibatch needs at least one valid token")
    if not (old_logp.shape == adv.shape == logp.shape):
        raise ValueError(f"logp, old_logp and adv must have one shape, got {tuple(logp.shape)}, "
                         f"{tuple(old_logp.shape)}, {tuple(adv.shape)}")
    old_logp = old_logp.detach()
    adv = adv.detach().to(logp.dtype)
    ratio = torch.exp(logp - old_logp)
    cov = token_covariance(logp, adv)
    none = torch.zeros(n, dtype=torch.bool, device=logp.device)
    dropped, penalised, clipped = none, none, none
    if loss_mode == "vanilla":
        per_token, clipped = ppo_clip_losses(ratio, adv, eps_low, eps_high)
    elif loss_mode == "clip_cov":
        per_token, clipped = ppo_clip_losses(ratio, adv, eps_low, eps_high)
        dropped = clip_cov_select(cov, ~clipped, clip_cov_ratio, clip_cov_lb, clip_cov_ub, generator)
        per_token = per_token * (~dropped).to(per_token.dtype)
    elif loss_mode == "kl_cov":
        per_token = -adv * ratio
        penalised = kl_cov_select(cov, kl_cov_ratio)
        per_token = per_token + kl_coef * penalised.to(per_token.dtype) * (logp - old_logp).abs()
    else:
        raise ValueError(f"loss_mode must be vanilla, clip_cov or kl_cov, got {loss_mode!r}")
    pg = per_token.mean()
    loss = pg
    mean_entropy = 0.0
    if entropy is not None:
        h = entropy.mean()
        mean_entropy = float(h.detach())
        if entropy_coef:
            loss = loss - entropy_coef * h
    return LossOutput(loss=loss, pg_loss=float(pg.detach()), entropy=mean_entropy, covariance=float(cov.mean()),
                      clipped=int(clipped.sum()), dropped=int(dropped.sum()), penalised=int(penalised.sum()),
                      tokens=n, approx_kl=float((old_logp - logp.detach()).mean()))
