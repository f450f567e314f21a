"""A compact GRPO trainer for causal LMs with the entropy controls of RLVR.

One RL step::

    rollout  ← G completions per prompt of the next ``prompts_per_step`` prompts (a seeded
             permutation of the pool) at temperature T; verifiable rewards r ∈ {0, 1}
    [DAPO]   dynamic sampling: drop groups whose rewards are all equal, sample more prompts
             until ``prompts_per_step`` groups are kept (≤ ``max_gen_batches`` batches);
             overlong shaping: r += soft penalty over the last L_cache tokens (workers.rl.dapo)
    A        ← group-normalised advantages (workers.rl.advantages)
    log π_old, H_old [, log π_ref] ← one no-grad pass (tempered policy, workers.rl.rollout)
    [AEPO]   T' ← T_high if H ≤ H* else T_low, H the previous step's sampled entropy (or this
             rollout's exact one); positive samples drawn at T' replace the first n samples
             of the batch with advantage 1 (workers.rl.entropy_control)
    repeat ppo_epochs times, over num_minibatches random splits of the sequences:
        loss ← token-mean PPO (dual-clip) / Clip-Cov / KL-Cov loss [on the top-entropy
               tokens] − c·H [+ β·KL_k3(π_θ ‖ π_ref)] (workers.rl.losses)
        [adaptive] c follows H toward entropy_target
        AdamW step (gradient norm clipped)
    [check]  the loss finite before each AdamW step, every weight finite after it, and the
             updated policy's logits finite after the step's updates; else the run stops with
             ``FloatingPointError: training diverged at step K: <what> is not finite`` (K
             1-based), where a huge coefficient or learning rate had surfaced as the next
             rollout's "probability tensor contains either inf, nan or element < 0"

The model stays in eval mode (no dropout), so that log π_old and the first log π_θ of a
batch agree exactly. Deterministic on CPU for a seed: every random choice (prompt order,
sampling, minibatch splits, Clip-Cov's draw) comes from generators seeded by it; run
under :func:`workers.activations.training.deterministic` for bit-for-bit repeats.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import torch

from workers.decoding.models import LanguageModel
from workers.decoding.tasks import Item
from workers.rl.advantages import group_advantages
from workers.rl.config import GRPOConfig
from workers.rl.dapo import informative_groups, overlong_penalty
from workers.rl.entropy_control import AdaptiveEntropyCoef, aepo_prompt_count, aepo_sample_count, aepo_temperature
from workers.rl.losses import LossOutput, policy_loss, token_covariance
from workers.rl.rollout import (
    RewardFn,
    Rollout,
    TokenBatch,
    concat,
    logits_are_finite,
    sample,
    token_batch,
    token_logprobs,
)


@dataclasses.dataclass
class StepStats:
    """What one RL step measured (entropies in nats, token counts summed over its updates)."""

    step: int
    reward: float  # mean verifiable reward of every completion the step's GRPO rollouts drew
    entropy: float  # token-mean entropy of the tempered policy on the rollout, before the update
    covariance: float  # Cov(log π, A) over the rollout's tokens, before the update
    clipped: int  # tokens clipped by PPO's ratio bounds
    dropped: int  # Clip-Cov: tokens whose gradient was dropped
    penalised: int  # KL-Cov: tokens given the |Δ log π| penalty
    dual_clipped: int  # dual-clip: negative-advantage tokens whose loss was bounded by −A·c
    tokens: int  # response tokens of the batch
    pg_tokens: int  # tokens in the policy-gradient means (all, or the top-entropy ones)
    pg_loss: float  # mean over updates
    approx_kl: float  # mean over updates of mean(log π_old − log π_θ)
    ref_kl: float  # mean over updates of the k3 KL(π_θ ‖ π_ref) (0 without ref_kl_coef)
    entropy_coef: float  # the coefficient after the step (fixed, or the adaptive one)
    aepo_entropy: float | None  # the entropy AEPO's rule saw this step (sampled or exact)
    aepo_temperature: float | None  # AEPO's regulated temperature this step
    aepo_samples: int  # REINFORCE samples that replaced GRPO samples
    gen_batches: int  # generation batches drawn (more than 1 only with dynamic sampling)
    kept_groups: int  # groups in the update batch
    overlong_penalty: float  # mean DAPO overlong penalty over the batch (0 when off)
    response_length: float
    seconds: float


@dataclasses.dataclass
class PolicyEval:
    """Held-out accuracy and entropy of a policy."""

    accuracy: float  # mean reward of ``samples`` completions per prompt at ``temperature``
    entropy: float  # token-mean entropy (nats) of the policy at ``temperature`` on those completions
    greedy_accuracy: float
    response_length: float
    #: mean over prompts of (distinct completions − 1) / (samples − 1): 0 when every sample
    #: of a prompt is the same text, 1 when all differ (0 with one sample)
    answer_diversity: float
    samples: int
    temperature: float
    seconds: float


@dataclasses.dataclass
class Checkpoint:
    """One point of a run's entropy-performance trajectory (Cui et al.'s per-run law).

    ``train_entropy`` is step ``step``'s training entropy: the token-mean entropy (nats) of
    the tempered rollout policy on that step's training rollout, measured just before its
    update (``StepStats.entropy``, verl's ``actor/entropy`` of the step). ``val_accuracy``
    is the validation accuracy after that step's update (verl validates every
    ``test_freq`` steps after the update), from the ``validate`` callable of
    :meth:`GRPOTrainer.train`; ``seconds`` is what that validation cost."""

    step: int  # 1-based: the checkpoint follows this many updates
    train_entropy: float
    val_accuracy: float
    seconds: float


def checkpoint_steps(steps: int, count: int) -> list[int]:
    """``count`` checkpoint steps spread evenly over ``steps`` RL steps:
    k_i = ⌈i·steps / count⌉ for i = 1..count, deduplicated (so fewer than ``count`` when
    ``count`` > ``steps``); the last is always ``steps``. Empty when either is 0."""
    if steps <= 0 or count <= 0:
        return []
    return sorted({-(-i * steps // count) for i in range(1, count + 1)})


@dataclasses.dataclass
class _Batch:
    """A step's update batch: the rollout, its advantages, and its no-grad pass."""

    rollout: Rollout
    adv: torch.Tensor
    tokens: TokenBatch
    old_logp: torch.Tensor
    entropy: torch.Tensor
    ref_logp: torch.Tensor | None


def _seed_from(gen: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=gen))


def first_nonfinite_parameter(model: torch.nn.Module) -> str | None:
    """The name of the first parameter holding a NaN or ±inf (None: all are finite)."""
    named = [(name, p) for name, p in model.named_parameters()]
    if not named:
        return None
    finite = torch.stack([torch.isfinite(p.detach()).all() for _, p in named])
    if bool(finite.all()):
        return None
    return named[int(torch.nonzero(~finite)[0])][0]


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` that never trains (GRPO's reference policy)."""
    ref = copy.deepcopy(model)
    ref.eval()
    ref.requires_grad_(False)
    return ref


class GRPOTrainer:
    """GRPO on ``items`` with reward ``reward(item, text)``; trains ``lm.model`` in place."""

    def __init__(self, lm: LanguageModel, items: Sequence[Item], reward: RewardFn, config: GRPOConfig,
                 max_new_tokens: int, seed: int = 0) -> None:
        if not items:
            raise ValueError("GRPO needs at least one training prompt")
        if config.overlong_buffer_len > max_new_tokens:
            raise ValueError(f"overlong_buffer_len {config.overlong_buffer_len} exceeds max_new_tokens "
                             f"{max_new_tokens} (the buffer is the last L_cache tokens before the limit)")
        self.lm = lm
        self.items = list(items)
        self.reward = reward
        self.config = config
        self.max_new_tokens = max_new_tokens
        self.gen = torch.Generator().manual_seed(int(seed))
        self.optimizer = torch.optim.AdamW(lm.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.entropy_ctl = AdaptiveEntropyCoef(config.entropy_coef, config.entropy_target, config.entropy_coef_delta,
                                               config.entropy_coef_min, config.entropy_coef_max)
        self.ref_model = _frozen_copy(lm.model) if config.ref_kl_coef > 0 else None
        #: AEPO's official signal, the last step's −mean log π over its update batch (0 before step 1)
        self.sampled_entropy = 0.0
        self._order: list[int] = []
        self.step_index = 0
        self.history: list[StepStats] = []
        self.checkpoints: list[Checkpoint] = []

    # ------------------------------------------------------------------ rollouts

    def _next_prompts(self) -> list[Item]:
        """The next prompts of a seeded pass over the pool (reshuffled when exhausted)."""
        out: list[Item] = []
        n = min(self.config.prompts_per_step, len(self.items))
        while len(out) < n:
            if not self._order:
                self._order = torch.randperm(len(self.items), generator=self.gen).tolist()
            out.append(self.items[self._order.pop()])
        return out

    def _sample(self, prompts: Sequence[Item], temperature: float) -> Rollout:
        return sample(self.lm, prompts, self.config.group_size, temperature, self.max_new_tokens,
                      _seed_from(self.gen), self.reward)

    def _shaped(self, rollout: Rollout) -> torch.Tensor:
        """The rewards the advantages use: the verifiable reward plus DAPO's overlong penalty."""
        cfg = self.config
        return rollout.rewards + overlong_penalty(rollout.lengths(), self.max_new_tokens, cfg.overlong_buffer_len,
                                                  cfg.overlong_penalty_factor)

    def _advantages(self, rollout: Rollout) -> torch.Tensor:
        cfg = self.config
        return group_advantages(self._shaped(rollout), cfg.group_size, cfg.norm_adv_by_std, cfg.adv_eps)

    def _collect(self) -> tuple[Rollout, float, int]:
        """The step's GRPO rollout, the mean verifiable reward of everything drawn, and how
        many generation batches that took. With dynamic sampling, only groups whose rewards
        differ are kept, batches are drawn until ``prompts_per_step`` groups are (the first
        ones kept) or ``max_gen_batches`` is reached; if none is kept, the last batch is used
        (its advantages are 0: only the entropy bonus and the KL term act)."""
        cfg = self.config
        target = min(cfg.prompts_per_step, len(self.items))
        kept: list[Rollout] = []
        drawn: list[torch.Tensor] = []
        groups = 0
        while True:
            rollout = self._sample(self._next_prompts(), cfg.temperature)
            drawn.append(rollout.rewards)
            if not cfg.dynamic_sampling:
                return rollout, float(rollout.rewards.mean()), 1
            informative = informative_groups(rollout.rewards, cfg.group_size)
            if informative:
                kept.append(rollout.groups(informative, cfg.group_size))
                groups += len(informative)
            if groups >= target or len(drawn) >= cfg.max_gen_batches:
                break
        reward = float(torch.cat(drawn).mean())
        if not kept:
            return rollout, reward, len(drawn)
        return concat(kept).select(range(min(groups, target) * cfg.group_size)), reward, len(drawn)

    def _no_grad_pass(self, rollout: Rollout, adv: torch.Tensor) -> _Batch:
        """log π_old and H_old (and log π_ref with a reference policy) of the rollout."""
        tokens = token_batch(rollout.prompts, rollout.responses, self.lm.pad_id, self.lm.device)
        with torch.no_grad():
            logp, entropy = token_logprobs(self.lm, tokens, self.config.temperature)
            ref = (token_logprobs(self.lm, tokens, self.config.temperature, self.ref_model)[0]
                   if self.ref_model is not None else None)
        return _Batch(rollout, adv, tokens, logp, entropy, ref)

    def _aepo(self, rollout: Rollout, adv: torch.Tensor, signal: float) -> tuple[Rollout, torch.Tensor, float, int]:
        """AEPO: positive samples drawn at the regulated temperature replace the batch's first ones."""
        cfg = self.config
        temp = aepo_temperature(signal, cfg.aepo_entropy_target, cfg.aepo_temperature_high, cfg.aepo_temperature_low)
        prompts = rollout.items[::cfg.group_size]
        extra = self._sample(prompts[:aepo_prompt_count(len(prompts), cfg.aepo_prompt_fraction)], temp)
        extra_adv = self._advantages(extra)
        keep = [i for i in range(len(extra)) if float(extra_adv[i]) > cfg.aepo_adv_threshold]
        n = min(aepo_sample_count(signal, cfg.aepo_entropy_target, cfg.aepo_sample_num, len(keep)), len(rollout))
        if n == 0:
            return rollout, adv, temp, 0
        merged = concat([extra.select(keep[:n]), rollout.select(range(n, len(rollout)))])
        return merged, torch.cat([torch.ones(n, dtype=adv.dtype), adv[n:]]), temp, n

    # ------------------------------------------------------------------ updates

    def _entropy_coef(self, minibatch_entropy: float) -> float:
        """This update's bonus coefficient (the adaptive rule moves it once per update)."""
        if not self.config.adaptive_entropy:
            return self.config.entropy_coef
        coef = self.entropy_ctl.coef if self.entropy_ctl.applies(minibatch_entropy) else 0.0
        self.entropy_ctl.update(minibatch_entropy)
        return coef

    def _minibatch_loss(self, batch: _Batch, chunk: torch.Tensor, old_by_row: list[torch.Tensor],
                        ref_by_row: list[torch.Tensor] | None) -> tuple[LossOutput, float]:
        """The loss of one minibatch (rows ``chunk``) and its −mean log π_θ (AEPO's signal)."""
        cfg = self.config
        mb = batch.tokens.rows(chunk.to(batch.tokens.input_ids.device))
        logp, ent = token_logprobs(self.lm, mb, cfg.temperature)
        coef = self._entropy_coef(float(ent.detach().mean()))
        rows = chunk.tolist()
        eps_low, eps_high = cfg.clip_bounds()
        out = policy_loss(
            logp, torch.cat([old_by_row[i] for i in rows]), mb.per_token(batch.adv[chunk]),
            loss_mode=cfg.loss_mode, eps_low=eps_low, eps_high=eps_high,
            dual_clip_c=cfg.clip_ratio_c if cfg.dual_clip else None,
            clip_cov_ratio=cfg.clip_cov_ratio, clip_cov_lb=cfg.clip_cov_lb, clip_cov_ub=cfg.clip_cov_ub,
            kl_cov_ratio=cfg.kl_cov_ratio, kl_coef=cfg.kl_coef,
            entropy=ent if coef or cfg.top_entropy_quantile < 1.0 else None, entropy_coef=coef,
            ref_logp=torch.cat([ref_by_row[i] for i in rows]) if ref_by_row is not None else None,
            ref_kl_coef=cfg.ref_kl_coef, top_entropy_quantile=cfg.top_entropy_quantile, generator=self.gen)
        return out, float(-logp.detach().mean())

    def _update(self, batch: _Batch) -> dict[str, Any]:
        """``ppo_epochs × num_minibatches`` AdamW steps on the batch; what they did."""
        cfg = self.config
        old_by_row = self._split_by_row(batch.tokens, batch.old_logp)
        ref_by_row = self._split_by_row(batch.tokens, batch.ref_logp) if batch.ref_logp is not None else None
        totals = {"clipped": 0, "dropped": 0, "penalised": 0, "dual_clipped": 0, "pg_tokens": 0}
        pg, kl, ref_kl, surprise = [], [], [], []
        rows = len(batch.rollout)
        for _ in range(cfg.ppo_epochs):
            perm = torch.randperm(rows, generator=self.gen)
            for chunk in torch.tensor_split(perm, min(cfg.num_minibatches, rows)):
                out, mb_surprise = self._minibatch_loss(batch, chunk.sort().values, old_by_row, ref_by_row)
                self._check_loss(out.loss)
                self.optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.lm.model.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                self._check_parameters()
                for key in totals:
                    totals[key] += getattr(out, key)
                pg.append(out.pg_loss)
                kl.append(out.approx_kl)
                ref_kl.append(out.ref_kl)
                surprise.append(mb_surprise)

        def mean(xs: list[float]) -> float:
            return sum(xs) / len(xs)

        return {**totals, "pg_loss": mean(pg), "approx_kl": mean(kl), "ref_kl": mean(ref_kl),
                "surprise": mean(surprise)}

    def _diverged(self, what: str) -> FloatingPointError:
        """The error that ends a run whose ``what`` stopped being finite (this step, 1-based)."""
        return FloatingPointError(f"training diverged at step {self.step_index + 1}: {what} is not finite")

    def _check_loss(self, loss: torch.Tensor) -> None:
        """Refuse to step on a loss that is NaN or ±inf: its gradient would make every weight NaN."""
        if not bool(torch.isfinite(loss.detach())):
            raise self._diverged(f"the loss ({float(loss.detach())})")

    def _check_parameters(self) -> None:
        """After an optimizer step, every weight must be finite (one device sync for all of them)."""
        name = first_nonfinite_parameter(self.lm.model)
        if name is not None:
            raise self._diverged(f"parameter {name!r}")

    def _check_policy(self, batch: _Batch) -> None:
        """After a step's updates, the policy's logits on the first sequence of each group must
        be finite: weights can stay finite yet overflow the forward pass (lr = 1e10), which
        the next rollout's sampler (or the held-out evaluation) met as an invalid probability
        tensor."""
        first = torch.arange(0, len(batch.rollout), self.config.group_size, device=batch.tokens.input_ids.device)
        if not logits_are_finite(self.lm, batch.tokens.rows(first)):
            raise self._diverged("a logit of the updated policy")

    # ------------------------------------------------------------------ the step

    def step(self) -> StepStats:
        """One RL step: rollout(s), advantages, [AEPO], ``ppo_epochs × num_minibatches`` updates."""
        cfg = self.config
        began = time.perf_counter()
        rollout, reward, gen_batches = self._collect()
        batch = self._no_grad_pass(rollout, self._advantages(rollout))
        entropy = float(batch.entropy.mean())
        covariance = float(token_covariance(batch.old_logp, batch.tokens.per_token(batch.adv)).mean())
        overlong = float((self._shaped(rollout) - rollout.rewards).mean())
        signal, aepo_temp, aepo_n = None, None, 0
        if cfg.aepo:
            signal = self.sampled_entropy if cfg.aepo_entropy == "sampled" else entropy
            merged, adv, aepo_temp, aepo_n = self._aepo(rollout, batch.adv, signal)
            if aepo_n:
                batch = self._no_grad_pass(merged, adv)
        done = self._update(batch)
        self._check_policy(batch)
        self.sampled_entropy = done.pop("surprise")
        stats = StepStats(
            step=self.step_index, reward=reward, entropy=entropy, covariance=covariance, tokens=batch.tokens.tokens,
            entropy_coef=self.entropy_ctl.coef if cfg.adaptive_entropy else cfg.entropy_coef,
            aepo_entropy=signal, aepo_temperature=aepo_temp, aepo_samples=aepo_n, gen_batches=gen_batches,
            kept_groups=len(rollout) // cfg.group_size, overlong_penalty=overlong,
            response_length=batch.rollout.response_tokens / len(batch.rollout), seconds=time.perf_counter() - began,
            **done)
        self.step_index += 1
        self.history.append(stats)
        return stats

    @staticmethod
    def _split_by_row(batch: TokenBatch, flat: torch.Tensor) -> list[torch.Tensor]:
        counts = batch.target_mask.sum(-1).tolist()
        return list(torch.split(flat.detach(), counts))

    def train(self, steps: int | None = None, validate: Callable[[], float] | None = None,
              at: Collection[int] = ()) -> list[StepStats]:
        """Run ``steps`` (default: the config's) RL steps; return their stats.

        With ``validate`` (the validation accuracy of the current policy), after every step
        whose 1-based index is in ``at`` append a :class:`Checkpoint` (that step's training
        entropy, ``validate()``) to :attr:`checkpoints`. ``validate`` must not draw from the
        trainer's generator: it does not, so checkpoints leave the run unchanged."""
        out = []
        for _ in range(self.config.steps if steps is None else steps):
            stats = self.step()
            out.append(stats)
            if validate is not None and self.step_index in at:
                began = time.perf_counter()
                accuracy = float(validate())
                self.checkpoints.append(Checkpoint(self.step_index, stats.entropy, accuracy,
                                                   time.perf_counter() - began))
        return out


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
    texts = [lm.decode(out) for out in gen.outputs]
    flags = [reward(items[k // samples], text) for k, text in enumerate(texts)]
    n_tok = max(sum(gen.n_tokens), 1)
    greedy_acc = math.nan
    if greedy:
        (g,) = generate(lm, [Request(SamplerConfig(temperature=0.0), [list(i.prompt_ids) for i in items], seed)],
                        max_new_tokens, measure=False)
        greedy_acc = sum(reward(item, lm.decode(out)) for item, out in zip(items, g.outputs, strict=True)) / len(items)
    return PolicyEval(accuracy=sum(flags) / len(flags), entropy=sum(gen.tempered_entropy_sum) / n_tok,
                      greedy_accuracy=greedy_acc, response_length=sum(gen.n_tokens) / len(gen.n_tokens),
                      answer_diversity=answer_diversity(texts, samples), samples=samples, temperature=temperature,
                      seconds=time.perf_counter() - began)


def answer_diversity(texts: Sequence[str], samples: int) -> float:
    """Mean over consecutive groups of ``samples`` texts of (distinct − 1) / (samples − 1):
    the outcome-level spread of a policy's answers to one prompt (0 with one sample)."""
    if samples < 2 or not texts:
        return 0.0
    groups = [texts[i:i + samples] for i in range(0, len(texts), samples)]
    return sum((len(set(g)) - 1) / (samples - 1) for g in groups) / len(groups)


def curves(history: Sequence[StepStats]) -> dict[str, list[Any]]:
    """The per-step curves of a run, one list per field (for an evaluation's metrics)."""
    fields = [f.name for f in dataclasses.fields(StepStats) if f.name != "step"]
    return {name: [getattr(s, name) for s in history] for name in fields}


def trajectory(checkpoints: Sequence[Checkpoint]) -> dict[str, list[Any]]:
    """A run's checkpoints as columns (``step``, ``train_entropy``, ``val_accuracy``,
    ``seconds``), the form an evaluation's ``metrics["trajectory"]`` stores and
    :func:`archive.law.fit_run_law` reads."""
    fields = [f.name for f in dataclasses.fields(Checkpoint)]
    return {name: [getattr(c, name) for c in checkpoints] for name in fields}
