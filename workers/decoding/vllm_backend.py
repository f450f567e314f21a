"""The vLLM backend: the same ``sampler`` names, run by an in-process ``vllm.LLM``.

Three parts, of which only the last needs vLLM installed:

1. **The mapping** (:func:`sampling_params_kwargs`, :func:`check_supported`). vLLM has
   temperature, top-k, top-p and min-p natively (``SamplingParams``); a configuration
   that only uses those, in an order vLLM's sampler also applies them in, maps onto them
   directly (:func:`is_native`). vLLM applies temperature first, then min-p, then top-k,
   then top-p, each on the distribution left by the previous step. That equals the HF
   chain (temperature → top-k → top-p → min-p) for one rule, and for top-k with top-p or
   min-p (min-p is relative to the maximum, which top-k keeps); it differs for top-p with
   min-p, and in the ``llama.cpp`` order (truncation before temperature) for top-p and
   min-p, so those go through the logits processor instead. ``min_tokens_to_keep > 1``
   also does (vLLM's native rules keep one token). Every other truncation rule (typical,
   ε, η, Top-H; :data:`PROCESSOR_RULES`) runs as a vLLM logits processor.

2. **The logits processor** (:func:`keep_mask`, :func:`apply_rules`, :class:`RowRules`).
   It reuses :class:`~workers.decoding.samplers.SamplerConfig`'s own processor chain
   (no second copy of any rule): the kept set of a row is
   ``isfinite(chain(logits))``, and the row's logits are returned with every other token
   at −inf. vLLM runs a processor that is not argmax-invariant on the raw logits, before
   its temperature; it then divides by T, which leaves the kept set alone, and samples
   from softmax(masked(logits) / T). The HF path samples from softmax(chain(logits)),
   which is the same distribution in both orders: ``hf`` computes the mask on logits / T
   (the chain's first step), ``llama.cpp`` on the raw logits. :class:`RowRules` keeps one
   configuration per row of vLLM's persistent batch (requests added, removed, moved) and
   is wrapped by :mod:`workers.decoding.vllm_logitsprocs` for vLLM itself.

   Refused (:data:`REFUSED`): Mirostat v1/v2, whose μ is per-sequence state updated from
   each drawn token's surprise under the previous step's truncated distribution, which a
   batch-level processor would have to carry across vLLM's batch reorderings and never
   sees the draw of; and EAD, which switches between two models step by step with a KV
   cache each, where one ``LLM`` serves one model. They are refused with a one-line error
   naming the rule, never run differently.

3. **Entropy from logprobs** (:func:`entropy_bounds`). vLLM returns, per generated token,
   the log-probabilities of the top k tokens (``logprobs=k``) plus the sampled one, or the
   whole vocabulary with ``logprobs=-1``. The engine runs with ``logprobs_mode =
   "processed_logprobs"``: these are log q, q the distribution the token was sampled from
   (after temperature and truncation), so the measure is the HF backend's
   ``sampling_entropy``. With the top k known, H(q) is bracketed (see
   :func:`entropy_bounds`); it is **exact** when k covers the vocabulary, or covers the
   kept set (the remaining mass is then 0), and **bounded** otherwise. The model's own
   entropy (T = 1, before truncation) and the tempered one are not measured by this
   backend (one engine returns one kind of logprobs): they come back as NaN.

4. **The engine** (:class:`VLLMEngine`): ``vllm`` is imported on first use; without it,
   :class:`VLLMNotInstalled` says so in one line.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from workers.decoding.samplers import TRUNCATIONS, Sampler, SamplerConfig

#: Rules vLLM's ``SamplingParams`` has (temperature applies to all of them).
NATIVE_RULES = ("top_k", "top_p", "min_p")
#: Rules vLLM lacks, run by this backend as a vLLM logits processor (our own code).
PROCESSOR_RULES = tuple(r for r in TRUNCATIONS if r not in NATIVE_RULES)
#: Rules this backend refuses, and why (one line each).
_MIROSTAT_STATE = ("keeps a per-sequence mu updated from each drawn token, which a vLLM logits processor "
                   "neither sees nor can carry across batch reorderings")
REFUSED: dict[str, str] = {
    "mirostat": f"Mirostat {_MIROSTAT_STATE}",
    "mirostat_v2": f"Mirostat v2 {_MIROSTAT_STATE}",
    "ead": "EAD switches between two models step by step (a KV cache each), and one vLLM engine serves one model",
}
#: The ``SamplingParams.extra_args`` key that carries a configuration to the processor.
EXTRA_ARG = "entropy_atlas_sampler"
#: The class vLLM loads as a custom logits processor (``LLM(logits_processors=[...])``).
PROCESSOR_FQCN = "workers.decoding.vllm_logitsprocs:AtlasRulesLogitsProcessor"
#: How many top log-probabilities the engine asks per token by default (vLLM's own cap is 20).
DEFAULT_LOGPROBS = 20


class VLLMNotInstalled(RuntimeError):
    """vLLM cannot be imported on this machine."""


class VLLMUnsupported(ValueError):
    """A configuration this backend cannot run the way the HF backend does."""


# --------------------------------------------------------------------------- availability


def vllm_available() -> bool:
    """Whether ``import vllm`` can find the package (nothing is imported)."""
    return importlib.util.find_spec("vllm") is not None


def missing_reason() -> str:
    """The one-line reason the vLLM backend cannot run here ('' when it can)."""
    if vllm_available():
        return ""
    return ("vllm is not installed (backend: vllm needs the vllm package: a CUDA wheel, or vLLM's CPU build "
            "from source); use backend: hf")


def require_vllm() -> Any:
    """``import vllm``, or :class:`VLLMNotInstalled` with :func:`missing_reason`."""
    if not vllm_available():
        raise VLLMNotInstalled(missing_reason())
    # vLLM >= 0.32 runs Model Runner V2 by default, whose logits-processor interface
    # differs; the processor here implements vllm.v1.sample.logits_processor's.
    os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    import vllm

    return vllm


# --------------------------------------------------------------------------- the mapping


def check_supported(config: SamplerConfig) -> None:
    """Raise :class:`VLLMUnsupported` (one line naming the rule) for a refused configuration."""
    if isinstance(config.sampler, str) and config.sampler in REFUSED:
        raise VLLMUnsupported(f"sampler {config.sampler} is not available with backend vllm: "
                              f"{REFUSED[config.sampler]}; use backend: hf")


def is_native(config: SamplerConfig) -> bool:
    """Whether vLLM's own temperature/top-k/top-p/min-p give this configuration's
    distribution (see the module docstring for the orders); else the processor runs."""
    rules = set(config.truncations)
    if config.min_tokens_to_keep > 1 and rules:
        return False
    if not rules <= set(NATIVE_RULES):
        return False
    if config.order == "llama.cpp" and config.temperature not in (0.0, 1.0):
        return rules <= {"top_k"}  # top-p and min-p of the untempered distribution differ
    return not {"top_p", "min_p"} <= rules


def sampling_params_kwargs(config: SamplerConfig, max_tokens: int, seed: int | None = None,
                           stop_token_ids: Sequence[int] = (), logprobs: int | None = DEFAULT_LOGPROBS
                           ) -> dict[str, Any]:
    """The keyword arguments of ``vllm.SamplingParams`` for ``config``.

    Native configurations set ``temperature``, ``top_k`` (0: off), ``top_p`` (1: off) and
    ``min_p`` (0: off) from the rules they use; the others leave those off and carry the
    configuration in ``extra_args[EXTRA_ARG]`` for the logits processor. Temperature 0 is
    vLLM's greedy. ``stop_token_ids`` are the model's end tokens; ``logprobs`` is k
    (``-1``: the whole vocabulary; ``None``: none). Refused rules raise
    :class:`VLLMUnsupported`.
    """
    check_supported(config)
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    kwargs: dict[str, Any] = {"temperature": float(config.temperature), "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                              "max_tokens": int(max_tokens), "seed": None if seed is None else int(seed),
                              "stop_token_ids": [int(t) for t in stop_token_ids], "logprobs": logprobs,
                              "detokenize": False, "skip_special_tokens": False}
    if is_native(config):
        rules = config.truncations
        if "top_k" in rules:
            kwargs["top_k"] = int(config.top_k)
        if "top_p" in rules:
            kwargs["top_p"] = float(config.top_p)
        if "min_p" in rules:
            kwargs["min_p"] = float(config.min_p)
    else:
        kwargs["extra_args"] = {EXTRA_ARG: config.to_dict()}
    return kwargs


def config_of(extra_args: Mapping[str, Any] | None) -> SamplerConfig | None:
    """The configuration a request carries for the processor, or None (native request)."""
    if not extra_args or EXTRA_ARG not in extra_args:
        return None
    config = SamplerConfig.from_params(extra_args[EXTRA_ARG])
    check_supported(config)
    return config


# --------------------------------------------------------------------------- the processor


def keep_mask(config: SamplerConfig, logits: torch.Tensor) -> torch.Tensor:
    """The tokens ``config`` keeps for ``logits`` (rows, vocab): where its HF processor
    chain (temperature included, in its order) leaves a finite score."""
    return torch.isfinite(Sampler(config).warp(logits))


def apply_rules(config: SamplerConfig, logits: torch.Tensor) -> torch.Tensor:
    """``logits`` with every token ``config`` does not keep at −inf (the rest unchanged:
    vLLM applies the temperature afterwards)."""
    return logits.masked_fill(~keep_mask(config, logits), -math.inf)


class RowRules:
    """One configuration per row of vLLM's persistent batch, applied to those rows.

    :meth:`update` takes a batch update's ``removed`` (indices), ``added``
    (``(index, params, ...)`` tuples: ``params.extra_args`` may carry a configuration) and
    ``moved`` (``(a, b, direction)``: a to b, or a swap when the direction's name is
    ``SWAP``), in that order, as vLLM's interface prescribes. :meth:`apply` masks each configured row.
    """

    def __init__(self) -> None:
        self.rows: dict[int, SamplerConfig] = {}

    def update(self, removed: Iterable[int] = (), added: Iterable[Sequence[Any]] = (),
               moved: Iterable[Sequence[Any]] = ()) -> None:
        """Follow the batch: rows removed, added (replacing any there), moved or swapped."""
        for index in removed:
            self.rows.pop(int(index), None)
        for entry in added:
            index, params = int(entry[0]), entry[1]
            config = config_of(getattr(params, "extra_args", None)) if params is not None else None
            if config is None:
                self.rows.pop(index, None)
            else:
                self.rows[index] = config
        for a, b, direction in moved:
            first, second = self.rows.pop(int(a), None), self.rows.pop(int(b), None)
            if first is not None:
                self.rows[int(b)] = first
            if getattr(direction, "name", direction) == "SWAP" and second is not None:
                self.rows[int(a)] = second

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Mask the configured rows of ``logits`` (batch, vocab) in place; the others unchanged.

        Rows sharing one configuration are masked together, one chain call per configuration.
        """
        groups: dict[SamplerConfig, list[int]] = {}
        for index, config in self.rows.items():
            if index < logits.shape[0]:
                groups.setdefault(config, []).append(index)
        for config, indices in groups.items():
            rows = torch.tensor(indices, device=logits.device)
            logits[rows] = apply_rules(config, logits[rows].float()).to(logits.dtype)
        return logits


# --------------------------------------------------------------------------- entropy


@dataclasses.dataclass(frozen=True)
class EntropyBounds:
    """Bounds (nats) on H(q) from the top-k log-probabilities of q (tensors over rows).

    ``exact`` marks rows where the known tokens hold all the mass (up to ``mass_tol``) or
    there is no other token: lower and upper then meet, up to float rounding.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    known: torch.Tensor  # Σ_{i∈S} −q_i ln q_i over the known tokens
    tail_mass: torch.Tensor  # R = 1 − Σ_{i∈S} q_i (clamped to [0, 1])
    exact: torch.Tensor


def _xlogx(x: torch.Tensor) -> torch.Tensor:
    """x ln x with 0 ln 0 = 0."""
    return torch.where(x > 0, x * torch.log(x.clamp(min=1e-300)), torch.zeros_like(x))


def entropy_bounds(top_logprobs: torch.Tensor, vocab_size: int, mass_tol: float = 1e-6) -> EntropyBounds:
    """Bracket H(q) = −Σ q ln q given the k largest log q of each row.

    With S the k known tokens, R = 1 − Σ_S q_i the mass of the n = V − k others and
    m = min_S q_i (every other token has q_j ≤ m, since S is the top k):

    - known part: H_S = −Σ_S q_i ln q_i (exact);
    - **lower bound**: H_S plus the least entropy a mass R can have in tokens of at most
      m each: ⌊R/m⌋ tokens at m and the rest r = R − ⌊R/m⌋·m in one,
      −⌊R/m⌋ m ln m − r ln r (entropy is concave, so its minimum over that polytope is at
      a vertex); without the cap (m unknown) it is −R ln R, the tail as one outcome;
    - **upper bound**: H_S − R ln(R / n), the tail spread evenly over the n others.

    Both equal H_S when R = 0 (k covers the support of q: a truncated q with at most k
    kept tokens is measured exactly) or n = 0 (k covers the vocabulary). ``-inf``
    entries (tokens a truncation removed) count as q = 0, and one among the top k means
    every kept token is known (R = 0 whatever the rounding of vLLM's float32 values).
    Rows: ``top_logprobs`` is (..., k). ``exact`` also marks rows whose tail mass is within
    ``mass_tol`` of 0 (float32 rounding); their bounds still use that mass, so they bracket.
    """
    logq = top_logprobs.double()
    k = logq.shape[-1]
    if k > vocab_size:
        raise ValueError(f"{k} log-probabilities for a vocabulary of {vocab_size}")
    q = logq.exp()
    known = -(q * logq.nan_to_num(neginf=0.0)).sum(-1)
    tail = (1.0 - q.sum(-1)).clamp(0.0, 1.0)
    covered = torch.isneginf(logq).any(-1)  # a removed token among the top k: the support is all known
    tail = torch.where(covered, torch.zeros_like(tail), tail)
    n = vocab_size - k
    positive = torch.where(q > 0, q, torch.full_like(q, math.inf))
    m = positive.min(-1).values.clamp(max=1.0)
    full = torch.floor(tail / m).clamp(min=0.0)
    rest = (tail - full * m).clamp(min=0.0)
    lower_tail = -full * _xlogx(m) - _xlogx(rest)
    lower_tail = torch.where(torch.isfinite(m), lower_tail, -_xlogx(tail))
    upper_tail = -_xlogx(tail) + tail * math.log(n) if n > 0 else torch.zeros_like(tail)
    no_tail = (tail == 0) | (n == 0)
    lower = torch.where(no_tail, known, known + lower_tail.clamp(min=0.0))
    upper = torch.where(no_tail, known, known + upper_tail)
    return EntropyBounds(lower=lower, upper=torch.maximum(upper, lower), known=known, tail_mass=tail,
                         exact=no_tail | (tail <= mass_tol))


def top_logprobs_of(position: Mapping[int, Any], k: int) -> list[float]:
    """The k largest log-probabilities of one position of vLLM's output
    (``{token_id: Logprob}``, holding the top k and maybe the sampled token besides):
    the entries of rank ≤ k when ranks are given, else the k largest values."""
    values = []
    for entry in position.values():
        value = float(getattr(entry, "logprob", entry))
        rank = getattr(entry, "rank", None)
        values.append((rank if rank is not None else 0, value))
    ranked = [v for r, v in values if r is not None and 1 <= r <= k]
    if len(ranked) >= k:
        return sorted(ranked, reverse=True)[:k]
    return sorted((v for _, v in values), reverse=True)[:k]


# --------------------------------------------------------------------------- the engine


def row_seed(seed: int, row: int) -> int:
    """The per-sequence seed of row ``row`` of a request seeded ``seed`` (vLLM seeds requests)."""
    return (int(seed) * 1_000_003 + row) % (2**63 - 1)


class VLLMEngine:
    """An in-process ``vllm.LLM`` over one model, decoding :class:`Request`\\ s.

    ``logprobs`` is the k of :func:`entropy_bounds` (``-1``: the whole vocabulary, exact).
    The engine is built with ``logprobs_mode="processed_logprobs"``, this module's logits
    processor and no tokenizer (requests are token ids, outputs are not detokenized);
    ``engine_kwargs`` go to ``vllm.LLM`` as they are (``attention_backend``,
    ``enforce_eager``, ``skip_tokenizer_init=False`` …). A k above the vocabulary is the
    whole vocabulary. Raises :class:`VLLMNotInstalled` where vLLM is missing.

    ``seeded`` (the default) seeds each sequence (:func:`row_seed`), so a request's draws do
    not depend on what it is batched with; vLLM then draws each seeded request's noise
    separately, one call per request and step (vLLM 0.24). ``seeded=False`` draws from the
    engine's own generator instead, reproducible only for the same batch in the same engine
    state: for measuring what the per-request draws cost (``bench/vllm_vs_hf.py
    --unseeded``), not for campaigns.
    """

    def __init__(self, model_path: str, dtype: str = "auto", seed: int = 0, logprobs: int = DEFAULT_LOGPROBS,
                 gpu_memory_utilization: float = 0.5, max_model_len: int | None = None, seeded: bool = True,
                 **engine_kwargs: Any) -> None:
        vllm = require_vllm()
        self.seeded = bool(seeded)
        k = int(logprobs)
        engine_kwargs.setdefault("skip_tokenizer_init", True)
        self.llm = vllm.LLM(model=str(model_path), dtype=dtype, seed=int(seed),
                            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                            logprobs_mode="processed_logprobs", max_logprobs=-1 if k < 0 else max(k, DEFAULT_LOGPROBS),
                            logits_processors=[PROCESSOR_FQCN], **engine_kwargs)
        self._sampling_params = vllm.SamplingParams
        # FlatLogprobs (vLLM >= 0.11.1): a few lists per sequence instead of a dict of objects per token
        self._flat = "flat_logprobs" in getattr(vllm.SamplingParams, "__struct_fields__", ())
        self.vocab_size = int(self.llm.llm_engine.model_config.get_vocab_size())
        self.logprobs = -1 if k < 0 else min(k, self.vocab_size)

    def close(self) -> None:
        """Stop the engine's core (its process and GPU memory); idempotent."""
        llm, self.llm = getattr(self, "llm", None), None
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def generate(self, requests: Sequence[Any], max_new_tokens: int, stop_ids: Sequence[int]) -> list[Any]:
        """Decode every request's prompts (token ids) and return one
        :class:`~workers.decoding.generate.Generation` per request (sampling entropy from
        :func:`entropy_bounds`' lower bound; model and tempered entropy NaN)."""
        from workers.decoding.generate import Generation

        prompts: list[dict[str, list[int]]] = []
        params: list[Any] = []
        for request in requests:
            for row, prompt in enumerate(request.prompts):
                seed = row_seed(request.seed, row) if self.seeded else None
                kwargs = sampling_params_kwargs(request.config, max_new_tokens, seed, stop_ids, self.logprobs)
                if self._flat:
                    kwargs["flat_logprobs"] = True
                prompts.append({"prompt_token_ids": list(prompt)})
                params.append(self._sampling_params(**kwargs))
        began = time.perf_counter()
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - began
        rows = [decode_output(out.outputs[0], set(stop_ids), self.vocab_size, self.logprobs) for out in outputs]
        batch_tokens = sum(r["n_tokens"] for r in rows)
        results, start = [], 0
        for request in requests:
            mine = rows[start : start + len(request.prompts)]
            start += len(request.prompts)
            greedy = request.config.step_config().temperature == 0.0
            nan = [math.nan] * len(mine)
            results.append(Generation(
                outputs=[r["output"] for r in mine], stopped=[r["stopped"] for r in mine],
                stop_tokens=[r["stop_token"] for r in mine], n_tokens=[r["n_tokens"] for r in mine],
                model_entropy_sum=nan, tempered_entropy_sum=nan,
                sampling_entropy_sum=[0.0 if greedy else r["h_lower"] for r in mine],
                kept_sum=[float(r["n_tokens"]) if greedy else r["kept"] for r in mine],
                logprob_sum=nan, large_tokens=[r["n_tokens"] for r in mine],
                from_large=[[True] * r["n_tokens"] for r in mine], switches=[0] * len(mine),
                work_large=[0] * len(mine), work_small=[0] * len(mine), mirostat_mu=None,
                seconds=seconds, batch_tokens=batch_tokens,
                sampling_entropy_upper_sum=[0.0 if greedy else r["h_upper"] for r in mine],
                entropy_exact_tokens=[r["n_tokens"] if greedy else r["exact"] for r in mine]))
        return results


def top_logprob_rows(logprobs: Any, k: int) -> list[torch.Tensor]:
    """The k largest log-probabilities of every position of one vLLM completion, as
    (positions, k) float64 tensors, one per distinct k (positions without any dropped).

    vLLM's ``FlatLogprobs`` (``SamplingParams.flat_logprobs``) stores each position as
    the sampled token then the top k in rank order: when every position is laid out so,
    the top k are read as one strided slice. Otherwise (``list[dict]``, or a position
    laid out differently) each position goes through :func:`top_logprobs_of`.
    """
    starts = getattr(logprobs, "start_indices", None)
    if starts is not None and len(starts):
        first = np.asarray(starts, dtype=np.int64)
        width = np.asarray(logprobs.end_indices, dtype=np.int64) - first
        if (width == k + 1).all():
            index = first[:, None] + 1 + np.arange(k)
            ranks = np.asarray(logprobs.ranks, dtype=object)[index]
            if (ranks == np.arange(1, k + 1)).all():
                return [torch.from_numpy(np.asarray(logprobs.logprobs, dtype=np.float64)[index])]
    groups: dict[int, list[list[float]]] = {}
    for position in logprobs or []:
        top = top_logprobs_of(position, k) if position else []
        if top:
            groups.setdefault(len(top), []).append(top)
    return [torch.tensor(rows, dtype=torch.float64) for rows in groups.values()]


def decode_output(completion: Any, stop_ids: set[int], vocab_size: int, k: int) -> dict[str, Any]:
    """One vLLM ``CompletionOutput`` as this project counts it: the generated ids without
    the stop token, whether and with what it stopped, the token count (stop included) and
    the entropy bounds summed over its tokens (from its per-token log-probabilities; the
    kept-set size only where every token's bounds are exact, else NaN)."""
    ids = [int(t) for t in completion.token_ids]
    stop_reason = getattr(completion, "stop_reason", None)
    stopped = completion.finish_reason == "stop"
    stop_token: int | None = None
    output = ids
    if stopped and ids and ids[-1] in stop_ids:
        stop_token, output = ids[-1], ids[:-1]
    elif stopped and isinstance(stop_reason, int):
        stop_token = stop_reason
    h_lower = h_upper = kept = 0.0
    exact = 0
    for rows in top_logprob_rows(completion.logprobs, vocab_size if k < 0 else k):
        bounds = entropy_bounds(rows, vocab_size)
        h_lower += float(bounds.lower.sum())
        h_upper += float(bounds.upper.sum())
        exact += int(bounds.exact.sum())
        kept += float(torch.isfinite(rows).sum()) if bool(bounds.exact.all()) else math.nan
    n_tokens = len(ids) + (1 if stop_token is not None and (not ids or ids[-1] != stop_token) else 0)
    return {"output": output, "stopped": stopped, "stop_token": stop_token, "n_tokens": n_tokens,
            "h_lower": h_lower, "h_upper": h_upper, "exact": exact, "kept": kept}
