"""Entropy-aware decoding: samplers, model backends, batched generation, tasks.

Usable on its own, outside any campaign::

    import torch
    from workers.decoding import Sampler, SamplerConfig, load_model, complete

    # one sampling step on logits you already have
    sampler = Sampler(SamplerConfig(sampler="top_h", top_h=0.4, temperature=0.8))
    step = sampler(logits, generator=torch.Generator().manual_seed(0))
    step.tokens, step.model_entropy, step.sampling_entropy, step.kept

    # the chain as transformers processors, for model.generate(do_sample=True, ...)
    chain = SamplerConfig(sampler="min_p", min_p=0.05, order="llama.cpp").logits_processors()

    # text in, text out, with a local model or the built-in one
    lm = load_model("builtin:arith-tiny")
    complete(lm, ["12+34="], SamplerConfig(temperature=0.0))  # -> ["64"] (reversed digits)

See ``docs/decoding.md`` for the rules, the order option, the Top-H variants and units.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.decoding.ead import EADController, compute_saved
from workers.decoding.generate import Generation, Request, generate, score
from workers.decoding.measures import corpus_distinct_n, distinct_n, repetition_rate
from workers.decoding.models import LanguageModel, ModelNotFoundError, load_model
from workers.decoding.samplers import (
    ORDERS,
    SAMPLERS,
    TOP_H_VARIANTS,
    ArgmaxLogitsWarper,
    MirostatLogitsWarper,
    MirostatV2LogitsWarper,
    Sampler,
    SamplerConfig,
    StepOutput,
    TopHPaperLogitsWarper,
    entropy_bits,
    entropy_nats,
)


def complete(lm: LanguageModel, prompts: Sequence[str], config: SamplerConfig | None = None,
             max_new_tokens: int | None = None, seed: int = 0,
             small_model: LanguageModel | None = None) -> list[str]:
    """Decode each prompt once with ``config`` (default: temperature-1 sampling) and
    return the generated texts (stop token removed). ``max_new_tokens`` None is 32, or
    fewer where the model's positions (and the small model's) leave less room after the
    longest prompt: ``builtin:arith-tiny`` has 32 positions, so a default once refused
    every prompt there."""
    encoded = [lm.encode(p) for p in prompts]
    if max_new_tokens is None:
        limits = [m.max_positions for m in (lm, small_model) if m is not None and m.max_positions]
        longest = max((len(p) for p in encoded), default=0)
        max_new_tokens = min([32] + [max(limit - longest, 1) for limit in limits])
    request = Request(config or SamplerConfig(), encoded, seed)
    (gen,) = generate(lm, [request], max_new_tokens, small_model=small_model)
    return [lm.decode(o) for o in gen.outputs]


__all__ = [
    "ORDERS",
    "SAMPLERS",
    "TOP_H_VARIANTS",
    "ArgmaxLogitsWarper",
    "EADController",
    "Generation",
    "LanguageModel",
    "MirostatLogitsWarper",
    "MirostatV2LogitsWarper",
    "ModelNotFoundError",
    "Request",
    "Sampler",
    "SamplerConfig",
    "StepOutput",
    "TopHPaperLogitsWarper",
    "complete",
    "compute_saved",
    "corpus_distinct_n",
    "distinct_n",
    "entropy_bits",
    "entropy_nats",
    "generate",
    "load_model",
    "repetition_rate",
    "score",
]
