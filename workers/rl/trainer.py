"""A compact GRPO trainer for causal LMs with the entropy controls of RLVR.

One RL step::

    prompts  ← the next ``prompts_per_step`` items of a seeded permutation of the pool
    rollout  ← G completions per prompt at temperature T; rewards r ∈ {0, 1} (verifiable)
    A        ← group-normalised advantages (workers.rl.advantages)
    log π_old, H_old ← one no-grad pass (tempered policy, workers.rl.rollout)
    [AEPO]   T' ← T_high if H_old < H* else T_low; positive samples drawn at T' replace the
             first n samples of the batch with advantage 1 (workers.rl.entropy_control)
    repeat ppo_epochs times, over num_minibatches random splits of the sequences:
        loss ← token-mean PPO/Clip-Cov/KL-Cov loss − c·H (workers.rl.losses)
        [adaptive] c follows H toward entropy_target
        AdamW step (gradient norm clipped)

The model stays in eval mode (no dropout), so that log π_old and the first log π_θ of a
batch agree exactly. Deterministic on CPU for a seed: every random choice (prompt order,
sampling, minibatch splits, Clip-Cov's draw) comes from generators seeded by it; run
under :func:`workers.activations.training.deterministic` for bit-for-bit repeats.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from typing import Any

import torch

from workers.decoding.models import LanguageModel
from workers.decoding.tasks import Item
from workers.rl.advantages import group_advantages
from workers.rl.config import GRPOConfig
from workers.rl.entropy_control import AdaptiveEntropyCoef, aepo_sample_count, aepo_temperature
from workers.rl.losses import policy_loss, token_covariance
from workers.rl.rollout import RewardFn, Rollout, TokenBatch, sample, token_batch, token_logprobs


@dataclasses.dataclass
class StepStats:
    """What one RL step measured (entropies in nats, token counts summed over its updates)."""

    step: int
    reward: float  # mean reward of the step's GRPO rollout
    entropy: float  # token-mean entropy of the tempered policy on the rollout, before the update
    covariance: float  # Cov(log π, A) over the rollout's tokens, before the update
    clipped: int  # tokens clipped by PPO's ratio bounds
    dropped: int  # Clip-Cov: tokens whose gradient was dropped
    penalised: int  # KL-Cov: tokens given the |Δ log π| penalty
    tokens: int  # response tokens of the batch
    pg_loss: float  # mean over updates
    approx_kl: float  # mean over updates of mean(log π_old − log π_θ)
    entropy_coef: float  # the coefficient after the step (fixed, or the adaptive one)
    aepo_temperature: float | None  # AEPO's regulated temperature this step
    aepo_samples: int  # REINFORCE samples that replaced GRPO samples
    response_length: float
    seconds: float


@dataclasses.dataclass
class PolicyEval:
    """Held-out accuracy and entropy of a policy."""

    accuracy: float  # mean reward of ``samples`` completions per prompt at ``temperature``
    entropy: float  # token-mean entropy (nats) of the policy at ``temperature`` on those completions
    greedy_accuracy: float
    response_length: float
    samples: int
    temperature: float
    seconds: float


def _seed_from(gen: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=gen))


class GRPOTrainer:
    """GRPO on ``items`` with reward ``reward(item, text)``; trains ``lm.model`` in place."""

    def __init__(self, lm: LanguageModel, items: Sequence[Item], reward: RewardFn, config: GRPOConfig,
                 max_new_tokens: int, seed: int = 0) -> None:
        if not items:
            raise ValueError("GRPO needs at least one training prompt")
        self.lm = lm
        self.items = list(items)
        self.reward = reward
        self.config = config
        self.max_new_tokens = max_new_tokens
        self.gen = torch.Generator().manual_seed(int(seed))
        self.optimizer = torch.optim.AdamW(lm.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.entropy_ctl = AdaptiveEntropyCoef(config.entropy_coef, config.entropy_target, config.entropy_coef_delta,
                                               config.entropy_coef_min, config.entropy_coef_max)
        self._order: list[int] = []
        self.step_index = 0
        self.history: list[StepStats] = []

    # ------------------------------------------------------------------ pieces

    def _next_prompts(self) -> list[Item]:
        """The next prompts of a seeded pass over the pool (reshuffled when exhausted)."""
        out: list[Item] = []
        n = min(self.config.prompts_per_step, len(self.items))
        while len(out) < n:
            if not self._order:
                self._order = torch.randperm(len(self.items), generator=self.gen).tolist()
            out.append(self.items[self._order.pop()])
        return out

    def _old_logprobs(self, rollout: Rollout) -> tuple[TokenBatch, torch.Tensor, torch.Tensor]:
        batch = token_batch(rollout.prompts, rollout.responses, self.lm.pad_id, self.lm.device)
        with torch.no_grad():
            logp, entropy = token_logprobs(self.lm, batch, self.config.temperature)
        return batch, logp, entropy

    def _aepo(self, prompts: list[Item], rollout: Rollout, adv: torch.Tensor, entropy: float
              ) -> tuple[Rollout, torch.Tensor, float, int]:
        """AEPO: positive samples drawn at the regulated temperature replace the batch's first ones."""
        cfg = self.config
        temp = aepo_temperature(entropy, cfg.aepo_entropy_target, cfg.aepo_temperature_high, cfg.aepo_temperature_low)
        m = max(1, round(cfg.aepo_prompt_fraction * len(prompts)))
        extra = sample(self.lm, prompts[:m], cfg.group_size, temp, self.max_new_tokens, _seed_from(self.gen),
                       self.reward)
        extra_adv = group_advantages(extra.rewards, cfg.group_size, cfg.norm_adv_by_std, cfg.adv_eps)
        keep = [i for i in range(len(extra)) if float(extra_adv[i]) > cfg.aepo_adv_threshold]
        n = aepo_sample_count(entropy, cfg.aepo_entropy_target, cfg.aepo_sample_num, len(keep))
        if n == 0:
            return rollout, adv, temp, 0
        chosen = keep[:n]
        merged = Rollout(
            items=[extra.items[i] for i in chosen] + rollout.items[n:],
            prompts=[extra.prompts[i] for i in chosen] + rollout.prompts[n:],
            responses=[extra.responses[i] for i in chosen] + rollout.responses[n:],
            texts=[extra.texts[i] for i in chosen] + rollout.texts[n:],
            rewards=torch.cat([extra.rewards[chosen], rollout.rewards[n:]]),
            temperature=rollout.temperature,
        )
        return merged, torch.cat([torch.ones(n, dtype=adv.dtype), adv[n:]]), temp, n

    # ------------------------------------------------------------------ the step

    def step(self) -> StepStats:
        """One RL step: rollout, advantages, ``ppo_epochs × num_minibatches`` updates."""
        cfg = self.config
        began = time.perf_counter()
        prompts = self._next_prompts()
        rollout = sample(self.lm, prompts, cfg.group_size, cfg.temperature, self.max_new_tokens,
                         _seed_from(self.gen), self.reward)
        adv = group_advantages(rollout.rewards, cfg.group_size, cfg.norm_adv_by_std, cfg.adv_eps)
        batch, old_logp, old_entropy = self._old_logprobs(rollout)
        entropy = float(old_entropy.mean())
        covariance = float(token_covariance(old_logp, batch.per_token(adv)).mean())
        reward = float(rollout.rewards.mean())
        aepo_temp, aepo_n = None, 0
        if cfg.aepo:
            rollout, adv, aepo_temp, aepo_n = self._aepo(prompts, rollout, adv, entropy)
            if aepo_n:
                batch, old_logp, _ = self._old_logprobs(rollout)
        old_by_row = self._split_by_row(batch, old_logp)
        totals = {"clipped": 0, "dropped": 0, "penalised": 0}
        pg_losses, kls = [], []
        rows = len(rollout)
        for _ in range(cfg.ppo_epochs):
            perm = torch.randperm(rows, generator=self.gen)
            for chunk in torch.tensor_split(perm, min(cfg.num_minibatches, rows)):
                chunk = chunk.sort().values  # row-major token order within the minibatch
                mb = batch.rows(chunk.to(batch.input_ids.device))
                logp, ent = token_logprobs(self.lm, mb, cfg.temperature)
                mb_entropy = float(ent.detach().mean())
                if cfg.adaptive_entropy:
                    coef = self.entropy_ctl.coef if self.entropy_ctl.applies(mb_entropy) else 0.0
                    self.entropy_ctl.update(mb_entropy)
                else:
                    coef = cfg.entropy_coef
                out = policy_loss(
                    logp, torch.cat([old_by_row[i] for i in chunk.tolist()]), mb.per_token(adv[chunk]),
                    loss_mode=cfg.loss_mode, eps_low=cfg.eps_low, eps_high=cfg.eps_high,
                    clip_cov_ratio=cfg.clip_cov_ratio, clip_cov_lb=cfg.clip_cov_lb, clip_cov_ub=cfg.clip_cov_ub,
                    kl_cov_ratio=cfg.kl_cov_ratio, kl_coef=cfg.kl_coef, entropy=ent if coef else None,
                    entropy_coef=coef, generator=self.gen)
                self.optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.lm.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                totals["clipped"] += out.clipped
                totals["dropped"] += out.dropped
                totals["penalised"] += out.penalised
                pg_losses.append(out.pg_loss)
                kls.append(out.approx_kl)
        stats = StepStats(
            step=self.step_index, reward=reward, entropy=entropy, covariance=covariance, tokens=batch.tokens,
            pg_loss=sum(pg_losses) / len(pg_losses), approx_kl=sum(kls) / len(kls),
            entropy_coef=self.entropy_ctl.coef if cfg.adaptive_entropy else cfg.entropy_coef,
            aepo_temperature=aepo_temp, aepo_samples=aepo_n,
            response_length=rollout.response_tokens / len(rollout), seconds=time.perf_counter() - began, **totals)
        self.step_index += 1
        self.history.append(stats)
        return stats

    @staticmethod
    def _split_by_row(batch: TokenBatch, flat: torch.Tensor) -> list[torch.Tensor]:
        counts = batch.target_mask.sum(-1).tolist()
        return list(torch.split(flat.detach(), counts))

    def train(self, steps: int | None = None) -> list[StepStats]:
        """Run ``steps`` (default: the config's) RL steps; return their stats."""
        return [self.step() for _ in range(self.config.steps if steps is None else steps)]


@torch.no_grad()
def evaluate_policy(lm: LanguageModel, items: Sequence[Item], reward: RewardFn, max_new_tokens: int,
                    samples: int = 4, temperature: float = 1.0, seed: int = 0, greedy: bool = True) -> PolicyEval:
    """Mean reward of ``samples`` completions per held-out item at ``temperature`` (> 0),
    the policy's token-mean entropy (nats, at that temperature) on them, and the greedy
    accuracy (one completion per item, temperature 0)."""
    from workers.decoding.generate import Request, generate
    from workers.decoding.samplers import SamplerConfig

    if temperature <= 0:
        raise ValueError(f"the evaluation temperature must be > 0 (greedy accuracy is reported anyway), "
                         f"got {temperature}")
    began = time.perf_counter()
    prompts = [list(item.prompt_ids) for item in items for _ in range(samples)]
    (gen,) = generate(lm, [Request(SamplerConfig(temperature=temperature), prompts, seed)], max_new_tokens)
    flags = [reward(items[k // samples], lm.decode(out)) for k, out in enumerate(gen.outputs)]
    n_tok = max(sum(gen.n_tokens), 1)
    greedy_acc = math.nan
    if greedy:
        (g,) = generate(lm, [Request(SamplerConfig(temperature=0.0), [list(i.prompt_ids) for i in items], seed)],
                        max_new_tokens, measure=False)
        greedy_acc = sum(reward(item, lm.decode(out)) for item, out in zip(items, g.outputs, strict=True)) / len(items)
    return PolicyEval(accuracy=sum(flags) / len(flags), entropy=sum(gen.tempered_entropy_sum) / n_tok,
                      greedy_accuracy=greedy_acc, response_length=sum(gen.n_tokens) / len(gen.n_tokens),
                      samples=samples, temperature=temperature, seconds=time.perf_counter() - began)


def curves(history: Sequence[StepStats]) -> dict[str, list[Any]]:
    """The per-step curves of a run, one list per field (for an evaluation's metrics)."""
    fields = [f.name for f in dataclasses.fields(StepStats) if f.name != "step"]
    return {name: [getattr(s, name) for s in history] for name in fields}
