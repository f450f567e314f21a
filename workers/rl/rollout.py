"""Rollouts: G sampled completions per prompt, their verifiable rewards, and the
per-token log-probabilities and entropies the loss needs.

Sampling reuses :func:`workers.decoding.generate.generate` (batched, KV cache, seeded,
plain ancestral sampling at temperature T). A completion's *response tokens* are the
generated tokens plus the stop token when it stopped: the stop token is an action too.

Log-probabilities are of the **tempered** policy, as in verl and TRL: at response token
y_t after context x_<t,

    log π_θ(y_t | x_<t) = log softmax(z_θ(x_<t) / T)[y_t],   H_t = −Σ_v π_v log π_v   (nats)

with T the rollout temperature, so that the first update of a batch is exactly on-policy
(ratio 1). Both are defined for every T > 0: where z / T would overflow, the row is shifted
by its largest logit first (:func:`tempered_logits`), and 0 · log 0 counts as 0 in H.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch

from workers.decoding.generate import Request, generate, left_pad
from workers.decoding.models import LanguageModel, position_ids_from_mask
from workers.decoding.samplers import SamplerConfig
from workers.decoding.tasks import Item

RewardFn = Callable[[Item, str], float]


@dataclasses.dataclass
class Rollout:
    """Sequences sampled from the policy, grouped by prompt (groups contiguous)."""

    items: list[Item]  # one per sequence
    prompts: list[list[int]]
    responses: list[list[int]]  # generated tokens, the stop token included when the row stopped
    texts: list[str]  # decoded responses (stop token dropped)
    rewards: torch.Tensor  # (sequences,), float32
    temperature: float

    def __len__(self) -> int:
        return len(self.responses)

    @property
    def response_tokens(self) -> int:
        return sum(len(r) for r in self.responses)

    def lengths(self) -> torch.Tensor:
        """Each response's length in tokens (the stop token included)."""
        return torch.tensor([len(r) for r in self.responses], dtype=torch.long)

    def select(self, rows: Sequence[int]) -> Rollout:
        """The rollout of ``rows`` (in that order)."""
        rows = list(rows)
        return Rollout([self.items[i] for i in rows], [self.prompts[i] for i in rows],
                       [self.responses[i] for i in rows], [self.texts[i] for i in rows],
                       self.rewards[torch.tensor(rows, dtype=torch.long)], self.temperature)

    def groups(self, groups: Sequence[int], group_size: int) -> Rollout:
        """The rollout of whole groups (contiguous, ``group_size`` rows each)."""
        return self.select([g * group_size + j for g in groups for j in range(group_size)])


def concat(rollouts: Sequence[Rollout]) -> Rollout:
    """The rollouts one after the other (the first one's temperature)."""
    if not rollouts:
        raise ValueError("nothing to concatenate")
    return Rollout([x for r in rollouts for x in r.items], [x for r in rollouts for x in r.prompts],
                   [x for r in rollouts for x in r.responses], [x for r in rollouts for x in r.texts],
                   torch.cat([r.rewards for r in rollouts]), rollouts[0].temperature)


def sample(lm: LanguageModel, items: Sequence[Item], group_size: int, temperature: float, max_new_tokens: int,
           seed: int, reward: RewardFn) -> Rollout:
    """``group_size`` completions of each item at ``temperature``, scored by ``reward``."""
    seq_items = [item for item in items for _ in range(group_size)]
    prompts = [list(item.prompt_ids) for item in seq_items]
    (gen,) = generate(lm, [Request(SamplerConfig(temperature=temperature), prompts, seed)], max_new_tokens,
                      measure=False)
    responses = [[*out, stop] if stop is not None else list(out)
                 for out, stop in zip(gen.outputs, gen.stop_tokens, strict=True)]
    texts = [lm.decode(out) for out in gen.outputs]
    rewards = torch.tensor([float(reward(item, text)) for item, text in zip(seq_items, texts, strict=True)],
                           dtype=torch.float32)
    return Rollout(seq_items, prompts, responses, texts, rewards, temperature)


@dataclasses.dataclass
class TokenBatch:
    """Prompt + response rows, left-padded, and where the response tokens are.

    ``target_mask[b, t]`` is True when ``input_ids[b, t + 1]`` is a response token, i.e.
    the logits at position t predict an action.
    """

    input_ids: torch.Tensor  # (rows, width)
    attention_mask: torch.Tensor
    target_mask: torch.Tensor  # (rows, width - 1), bool

    @property
    def tokens(self) -> int:
        return int(self.target_mask.sum())

    def rows(self, index: torch.Tensor) -> TokenBatch:
        return TokenBatch(self.input_ids[index], self.attention_mask[index], self.target_mask[index])

    def per_token(self, per_row: torch.Tensor) -> torch.Tensor:
        """A per-row value repeated over the row's response tokens, flat (tokens,)."""
        expanded = per_row.to(self.target_mask.device).unsqueeze(1).expand_as(self.target_mask)
        return expanded[self.target_mask]


def token_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int,
                device: torch.device | str = "cpu") -> TokenBatch:
    """The left-padded batch of ``prompt + response`` rows."""
    if any(len(r) == 0 for r in responses):
        raise ValueError("every response needs at least one token")
    full = [list(p) + list(r) for p, r in zip(prompts, responses, strict=True)]
    ids, mask = left_pad(full, pad_id, device)
    width = ids.shape[1]
    target = torch.zeros((len(full), width - 1), dtype=torch.bool, device=ids.device)
    for row, r in enumerate(responses):
        target[row, width - 1 - len(r):] = True
    return TokenBatch(ids, mask, target)


def token_logprobs(lm: LanguageModel, batch: TokenBatch, temperature: float, model: torch.nn.Module | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π_θ(y_i), H_i) over the batch's response tokens, flat, row-major; fp32, with
    gradient when grad mode is on. Only the response positions go through the softmax.
    ``model`` (default ``lm.model``) is the network to score with, e.g. a frozen reference."""
    logits = tempered_logits(response_logits(lm, batch, model), temperature)  # (tokens, vocab)
    targets = batch.input_ids[:, 1:][batch.target_mask]
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logp, entropy_of(logp_all)


def response_logits(lm: LanguageModel, batch: TokenBatch, model: torch.nn.Module | None = None) -> torch.Tensor:
    """The untempered fp32 logits that predict the batch's response tokens, (tokens, vocab)."""
    position_ids = position_ids_from_mask(batch.attention_mask)
    out = (model or lm.model)(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=position_ids,
                              use_cache=False)
    return out.logits[:, :-1, :][batch.target_mask].float()


def tempered_logits(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """z / T, computed stably for every T > 0: a row whose largest z / T is not finite (T =
    1e-40 turned the logits into ±inf, softmax(inf − inf) into NaN and the loss with it) is
    (z − max z) / T instead, the same softmax (it is shift-invariant) with every entry ≤ 0:
    the largest is 0 and the others go to −inf at worst. Other rows are z / T bit for bit."""
    scaled = logits / temperature
    top = logits.detach().amax(dim=-1, keepdim=True)
    over = ~torch.isfinite(scaled.detach().amax(dim=-1, keepdim=True)) & torch.isfinite(top)
    if not bool(over.any()):
        return scaled
    return torch.where(over, (logits - top) / temperature, scaled)


def entropy_of(logp_all: torch.Tensor) -> torch.Tensor:
    """H = −Σ_v π_v log π_v over the last axis, with 0 · log 0 = 0: a token of probability 0
    (log π = −inf, as a near-zero temperature gives) adds nothing, where 0 · (−inf) read NaN."""
    safe = torch.where(torch.isneginf(logp_all), torch.zeros_like(logp_all), logp_all)
    return -(safe.exp() * safe).sum(-1)


@torch.no_grad()
def logits_are_finite(lm: LanguageModel, batch: TokenBatch) -> bool:
    """Whether the policy's logits at the batch's response positions are all finite (a policy
    whose weights are finite but too large can still overflow in its forward pass)."""
    return bool(torch.isfinite(response_logits(lm, batch)).all())
