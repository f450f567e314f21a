"""Entropy-aware samplers: one configuration, one processor chain, one sampling step.

The truncation rules come from ``transformers.generation.logits_process`` wherever it
has them (temperature, top-k, top-p, min-p, typical, ε, η and the transformers Top-H);
this module adds only what it lacks:

- :class:`TopHPaperLogitsWarper`: Top-H as the official repository computes it
  (``ErfanBaghaei/Top-H-Decoding``), beside transformers' own ``TopHLogitsWarper``;
- :class:`MirostatLogitsWarper` (v1) and :class:`MirostatV2LogitsWarper` (v2), batched,
  with one μ per sequence;
- :class:`ArgmaxLogitsWarper`: temperature 0 as greedy decoding;
- the order of operations (``order: hf | llama.cpp``) and a sampling step that also
  measures what the issue asks (:class:`Sampler`, :class:`StepOutput`).

Every processor has transformers' ``LogitsProcessor`` signature ``(input_ids, scores) ->
scores`` and masks removed tokens with ``-inf``, so a chain from
:meth:`SamplerConfig.logits_processors` also plugs into ``model.generate(...,
logits_processor=chain, do_sample=True)``.

Units: entropies and truncation thresholds of transformers (typical, η) are in nats;
Mirostat's τ and surprises are in bits (llama.cpp's convention); Top-H's test is
base-free (both sides scale with the log base). EAD's threshold is in bits
(:mod:`workers.decoding.ead`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    LogitsProcessor,
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopHLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from entropy_atlas.names import did_you_mean

LN2 = math.log(2.0)

#: Samplers that truncate the distribution with a transformers warper (or the paper Top-H).
TRUNCATIONS = ("top_k", "top_p", "min_p", "typical", "epsilon", "eta", "top_h")
#: Every value of the ``sampler`` parameter.
SAMPLERS = ("none", *TRUNCATIONS, "mirostat", "mirostat_v2", "ead")
ORDERS = ("hf", "llama.cpp")
TOP_H_VARIANTS = ("paper", "hf")

#: transformers' ``_get_logits_processor`` order (5.23): temperature first, then these.
HF_ORDER = ("top_h", "top_k", "top_p", "min_p", "typical", "epsilon", "eta")
#: llama.cpp's default chain (top_k → typical → top_p → min_p → temperature); ε, η and
#: Top-H, which llama.cpp lacks, go after min-p, still before temperature.
LLAMA_CPP_ORDER = ("top_k", "typical", "top_p", "min_p", "epsilon", "eta", "top_h")


# --------------------------------------------------------------------------- entropy


def entropy_nats(scores: torch.Tensor) -> torch.Tensor:
    """H(softmax(scores)) = −Σ p log p over the last axis, in nats (0 log 0 = 0)."""
    logp = torch.log_softmax(scores.float(), dim=-1)
    return -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)


def entropy_bits(scores: torch.Tensor) -> torch.Tensor:
    """H(softmax(scores)) in bits (= nats / ln 2)."""
    return entropy_nats(scores) / LN2


# --------------------------------------------------------------------------- processors


def tempered(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """scores / T, where a row that would pass float32's range (+inf: a tiny T such as
    1e-40, which made softmax NaN and failed every row of the batch) is shifted by its
    largest score first: softmax((s − max s) / T) = softmax(s / T), and the shifted scores
    are ≤ 0, so the others go to −inf instead. Other rows are s / T exactly, bit for bit
    transformers' ``TemperatureLogitsWarper``."""
    out = scores / temperature
    over = torch.isposinf(out).any(dim=-1) & torch.isfinite(scores).any(dim=-1)
    if bool(over.any()):
        rows = scores[over]
        top = rows.masked_fill(~torch.isfinite(rows), -torch.inf).amax(dim=-1, keepdim=True)
        out[over] = (rows - top) / temperature
    return out


class StableTemperatureLogitsWarper(TemperatureLogitsWarper):
    """transformers' ``TemperatureLogitsWarper`` (scores / T) computed by :func:`tempered`:
    the same distribution, defined for every T > 0."""

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.Tensor) -> torch.Tensor:
        return tempered(scores, self.temperature)


class ArgmaxLogitsWarper(LogitsProcessor):
    """Temperature 0: keep only the largest score of each row (the first on ties), the
    limit of softmax(scores / T) as T → 0 and llama.cpp's rule for ``temp <= 0``."""

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(-1, scores.argmax(dim=-1, keepdim=True), True)
        return scores.masked_fill(~keep, -float("inf"))


class TopHPaperLogitsWarper(LogitsProcessor):
    """Top-H as the official repository computes it (``TopH_LogitsProcessor``).

    With p = softmax(scores / T) over the **whole** vocabulary (T = ``temperature``) and
    p₁ ≥ … ≥ p_N the top N = ``top_n`` probabilities (not renormalised)::

        τ = α · Σ_{j≤N} −p_j log p_j                  (the partial entropy of the top N)
        keep the largest prefix k with Σ_{j≤k} −p_j log p_j ≤ τ   (token 1 always)

    and mask every other token of the **unscaled** ``scores`` (as the official class
    returns them; the temperature is applied again by the chain's temperature step). The
    log base cancels out of the test. transformers' ``TopHLogitsWarper`` differs in
    renormalising the top N first (its τ and terms use q_j = p_j / Σ_{i≤N} p_i), so it
    keeps the same or slightly more tokens.

    Where it sits: in the ``hf`` order the scores arrive already divided by T, so the
    chain builds it with ``temperature=1``; in the ``llama.cpp`` order they arrive
    untempered and it gets the configuration's T. Either way the kept set is the official
    one, computed from softmax(logits / T) (tested against the official rule in
    ``tests/decoding/reference.py``).

    Two edge cases of the official code are defined here: a top-N probability that
    underflows to 0 is not kept (it adds no mass; the official code computes NaN there),
    and α = 1 keeps all N tokens (τ is taken as α times the last partial sum, so
    rounding cannot drop the last one; the official code may raise IndexError).
    """

    def __init__(self, top_h: float, top_n: int = 100, temperature: float = 1.0,
                 filter_value: float = -float("inf")) -> None:
        if not 0.0 < top_h <= 1.0:
            raise ValueError(f"top_h must be in (0, 1], got {top_h}")
        if top_n < 1:
            raise ValueError(f"top_n must be >= 1, got {top_n}")
        if not temperature > 0:
            raise ValueError(f"the Top-H temperature must be > 0, got {temperature}")
        self.top_h = float(top_h)
        self.top_n = int(top_n)
        self.temperature = float(temperature)
        self.filter_value = filter_value

    def keep_mask(self, scores: torch.Tensor) -> torch.Tensor:
        """The kept set (bool, like ``scores``) of softmax(scores / T) under the rule above."""
        scaled = scores.float() if self.temperature == 1.0 else tempered(scores.float(), self.temperature)
        n = min(self.top_n, scaled.shape[-1])
        top_idx = torch.topk(scaled, n, dim=-1, largest=True, sorted=True).indices
        logp = torch.log_softmax(scaled, dim=-1).gather(-1, top_idx)
        probs = logp.exp()
        terms = -(probs * logp.nan_to_num(neginf=0.0))
        cumulative = torch.cumsum(terms, dim=-1)
        tau = self.top_h * cumulative[..., -1:]
        selected = (cumulative <= tau) & (probs > 0)
        selected[..., 0] = True
        return torch.zeros_like(scaled, dtype=torch.bool).scatter_(-1, top_idx, selected)

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.Tensor) -> torch.Tensor:
        return scores.masked_fill(~self.keep_mask(scores), self.filter_value)


class _MirostatBase(LogitsProcessor):
    """Shared state of the two Mirostat variants: one μ per sequence (in bits).

    μ starts at 2τ. After each token x is drawn from the truncated, renormalised
    distribution q, the observed surprise S = −log₂ q(x) moves μ ← μ − η (S − τ)
    (:meth:`update`). Used with ``model.generate`` the update happens on the next call,
    from the last column of ``input_ids``; a call whose ``input_ids`` is not one token
    longer than the previous call's starts a new generation (μ back to 2τ).
    """

    def __init__(self, tau: float = 5.0, eta: float = 0.1) -> None:
        if not tau > 0:
            raise ValueError(f"mirostat_tau must be > 0 (bits), got {tau}")
        if not eta >= 0:
            raise ValueError(f"mirostat_eta must be >= 0, got {eta}")
        self.tau = float(tau)
        self.eta = float(eta)
        self.mu: torch.Tensor | None = None
        self._logq: torch.Tensor | None = None
        self._last_len: int | None = None

    def reset(self, batch_size: int | None = None, device: torch.device | str = "cpu") -> None:
        """Forget μ (back to 2τ for ``batch_size`` rows, or lazily on the next call)."""
        self.mu = None if batch_size is None else torch.full((batch_size,), 2.0 * self.tau,
                                                             dtype=torch.float64, device=device)
        self._logq = None
        self._last_len = None

    def _prepare(self, input_ids: torch.LongTensor | None, scores: torch.Tensor) -> torch.Tensor:
        if input_ids is not None:
            length = int(input_ids.shape[-1])
            if self._last_len is None or length != self._last_len + 1:
                self.reset()
            elif self._logq is not None:
                self.update(input_ids[:, -1])
            self._last_len = length
        if self.mu is None or self.mu.shape[0] != scores.shape[0]:
            self.mu = torch.full((scores.shape[0],), 2.0 * self.tau, dtype=torch.float64, device=scores.device)
        return self.mu

    def _finish(self, scores: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        out = scores.masked_fill(~keep, -float("inf"))
        self._logq = torch.log_softmax(out.float(), dim=-1)
        return out

    def update(self, tokens: torch.Tensor, active: torch.Tensor | None = None) -> torch.Tensor:
        """μ ← μ − η (S − τ) for the rows in ``active`` (all by default), where
        S = −log₂ q(token) under the distribution of the last call. Returns S (bits)."""
        if self._logq is None or self.mu is None:
            raise RuntimeError("Mirostat.update called before the processor was applied to scores")
        logq = self._logq.gather(-1, tokens.view(-1, 1).to(self._logq.device)).squeeze(-1)
        surprise = (-logq.double() / LN2).to(self.mu.device)
        new_mu = self.mu - self.eta * (surprise - self.tau)
        self.mu = new_mu if active is None else torch.where(active.to(self.mu.device), new_mu, self.mu)
        self._logq = None
        return surprise


class MirostatLogitsWarper(_MirostatBase):
    """Mirostat v1 (llama.cpp ``llama_sampler_mirostat_apply``), batched.

    On p = softmax(scores) sorted descending, fit the Zipf exponent on the top m::

        ŝ = Σ tᵢ bᵢ / Σ tᵢ²,  tᵢ = ln((i+2)/(i+1)),  bᵢ = ln(pᵢ / pᵢ₊₁),  i = 0 … m−2
        ε̂ = ŝ − 1,  k = ((ε̂ · 2^μ) / (1 − N^(−ε̂)))^(1/ŝ)

    with N the vocabulary size, then keep the top max(⌊k⌋, 1) tokens (exactly that
    many; capped at N). bᵢ is computed as the difference of log-probabilities, floored at
    −10⁴ so that two zero probabilities give bᵢ = 0 rather than NaN; at ε̂ = 0 the
    fraction takes its limit 2^μ / ln N.
    """

    def __init__(self, tau: float = 5.0, eta: float = 0.1, m: int = 100) -> None:
        super().__init__(tau, eta)
        if m < 2:
            raise ValueError(f"mirostat m must be >= 2, got {m}")
        self.m = int(m)

    def k(self, scores: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """The per-row k (as a float64 tensor, before flooring) for μ."""
        vocab = scores.shape[-1]
        m = min(self.m, vocab)
        top = torch.topk(scores.float(), m, dim=-1, sorted=True).values
        logp = (top - torch.logsumexp(scores.float(), dim=-1, keepdim=True)).double().clamp(min=-1e4)
        i = torch.arange(m - 1, dtype=torch.float64, device=scores.device)
        t = torch.log((i + 2.0) / (i + 1.0))
        b = logp[..., :-1] - logp[..., 1:]
        s_hat = (t * b).sum(-1) / (t * t).sum().clamp(min=1e-300)
        eps = s_hat - 1.0
        ln_n = math.log(vocab) if vocab > 1 else 1.0
        denom = -torch.expm1(-eps * ln_n)
        frac = torch.where(eps.abs() < 1e-12, torch.full_like(eps, 1.0 / ln_n), eps / denom)
        k = (frac * torch.pow(2.0, mu.to(frac.device))).pow(1.0 / s_hat)
        return torch.nan_to_num(k, nan=float(vocab), posinf=float(vocab))

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.Tensor) -> torch.Tensor:
        mu = self._prepare(input_ids, scores)
        vocab = scores.shape[-1]
        k = self.k(scores, mu).floor().clamp(1, vocab).long().to(scores.device)
        kmax = int(k.max())
        top_idx = torch.topk(scores, kmax, dim=-1, sorted=True).indices
        ranks = torch.arange(kmax, device=scores.device).expand_as(top_idx)
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, top_idx, ranks < k.unsqueeze(-1))
        return self._finish(scores, keep)


class MirostatV2LogitsWarper(_MirostatBase):
    """Mirostat v2 (llama.cpp ``llama_sampler_mirostat_v2_apply``), batched.

    Keep the tokens whose surprise −log₂ pᵢ is at most μ (p = softmax(scores)); when
    none is, keep the most probable one.
    """

    def __call__(self, input_ids: torch.LongTensor | None, scores: torch.Tensor) -> torch.Tensor:
        mu = self._prepare(input_ids, scores)
        surprise = -torch.log_softmax(scores.float(), dim=-1) / LN2
        keep = surprise <= mu.to(surprise.dtype).unsqueeze(-1)
        keep.scatter_(-1, scores.argmax(dim=-1, keepdim=True), True)
        return self._finish(scores, keep)


# --------------------------------------------------------------------------- configuration


#: the longest EAD window or run a configuration may ask for (steps of one generation)
MAX_EAD_STEPS = 1_000_000

#: Each numeric parameter's own rule, whatever the sampler: a test and what it says.
#: A configuration checks the rules of the parameters its sampler uses
#: (:meth:`SamplerConfig.__post_init__`); a campaign's ``defaults`` and the space's ranges
#: are checked against every rule (:func:`parameter_problem`), since any sampler the space
#: offers may come to use them.
PARAMETER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "temperature": (lambda v: v >= 0, "must be >= 0 (0 = greedy)"),
    "top_k": (lambda v: v >= 1, "must be >= 1"),
    "top_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "min_p": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "typical_p": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "epsilon_cutoff": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "eta_cutoff": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
    "top_h": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "mirostat_tau": (lambda v: v > 0, "must be > 0"),
    "mirostat_eta": (lambda v: v >= 0, "must be >= 0"),
    "mirostat_m": (lambda v: v >= 2, "must be >= 2"),
    "ead_threshold": (lambda v: not math.isnan(v), "must be a number (bits; ±inf allowed)"),
    "ead_window": (lambda v: 1 <= v <= MAX_EAD_STEPS, f"must be in [1, {MAX_EAD_STEPS}]"),
    "ead_min_run": (lambda v: 1 <= v <= MAX_EAD_STEPS, f"must be in [1, {MAX_EAD_STEPS}]"),
    "min_tokens_to_keep": (lambda v: v >= 1, "must be >= 1"),
}
#: the parameter each truncation rule reads
TRUNCATION_PARAMETER = {"typical": "typical_p", "epsilon": "epsilon_cutoff", "eta": "eta_cutoff"}
#: The samplers that read each sampler-specific parameter; every other sampler leaves it
#: unread (its value has no effect). ``temperature`` (read by all) is not here. A truncation's
#: parameter is read by ``ead`` too where ``ead_sampler`` is that truncation; ``mirostat_m``
#: by Mirostat v1 only (v2 has no m); ``order`` and ``min_tokens_to_keep`` by the truncations
#: (``none`` and Mirostat are temperature → rule in both orders). Held to what the chains do by
#: ``tests/decoding/test_decoding_samplers.py``.
PARAMETER_READERS: dict[str, tuple[str, ...]] = {
    **{TRUNCATION_PARAMETER.get(name, name): (name,) for name in TRUNCATIONS},
    "top_h_variant": ("top_h",),
    "mirostat_tau": ("mirostat", "mirostat_v2"),
    "mirostat_eta": ("mirostat", "mirostat_v2"),
    "mirostat_m": ("mirostat",),
    **{name: ("ead",) for name in ("ead_threshold", "ead_window", "ead_min_run", "ead_sampler")},
    "order": TRUNCATIONS,
    "min_tokens_to_keep": TRUNCATIONS,
}


def not_one_of(what: str, value: Any, names: Sequence[str]) -> str:
    """``WHAT must be one of NAMES; got VALUE``, with :func:`did_you_mean`'s ending."""
    return f"{what} must be one of {', '.join(names)}; got {value!r}{did_you_mean(value, names)}"


def parameter_problem(name: str, value: float) -> str | None:
    """``NAME must be …, got VALUE`` where ``value`` breaks parameter ``name``'s own rule
    (:data:`PARAMETER_RULES`); None where it holds, or ``name`` has no rule."""
    rule = PARAMETER_RULES.get(name)
    if rule is None or rule[0](value):
        return None
    return f"{name} {rule[1]}, got {value}"


def _number(name: str, value: Any, kind: type = float, allow_inf: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(float(value)) or (not allow_inf and math.isinf(float(value))):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if kind is int:
        return round(float(value))  # an integer given as a float (12.0, or 12.4 from a float range) -> 12
    return float(value)


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """One decoding configuration. Field names follow transformers' ``GenerationConfig``.

    ``sampler`` picks the rule; only that rule's own parameter is used (a campaign's
    conditional parameters), the others keep their defaults and are ignored. A tuple of
    truncation names (``("top_k", "top_p")``) applies several, in ``order``.

    ======================  ==========================================================
    ``none``                temperature only (ancestral sampling)
    ``top_k``               ``top_k`` ≥ 1 (default 50)
    ``top_p``               ``top_p`` in (0, 1] (default 0.9; 1 keeps everything)
    ``min_p``               ``min_p`` in [0, 1] (default 0.1)
    ``typical``             ``typical_p`` in (0, 1] (default 0.9; 1 keeps everything)
    ``epsilon``             ``epsilon_cutoff`` in [0, 1) (default 3e-4; 0 keeps everything)
    ``eta``                 ``eta_cutoff`` in [0, 1) (default 3e-4; 0 keeps everything)
    ``top_h``               ``top_h`` α in (0, 1] (default 0.4), ``top_h_variant`` paper (default) | hf
    ``mirostat``            ``mirostat_tau`` bits (default 5.0), ``mirostat_eta`` (0.1), ``mirostat_m`` (100)
    ``mirostat_v2``         ``mirostat_tau``, ``mirostat_eta``
    ``ead``                 ``ead_threshold`` bits (default 1.0), ``ead_window`` (5), ``ead_min_run``
                            (5), and ``ead_sampler``: the rule each step samples with
    ======================  ==========================================================

    ``temperature`` (default 1.0) applies to every rule; 0 means greedy. ``order``:
    ``hf`` divides by the temperature first and truncates the tempered distribution
    (transformers); ``llama.cpp`` truncates the untempered distribution and divides by
    the temperature last (llama.cpp's default chain). Mirostat always comes after
    temperature, as in llama.cpp, whichever the order.
    """

    sampler: str | tuple[str, ...] = "none"
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 0.9
    min_p: float = 0.1
    typical_p: float = 0.9
    epsilon_cutoff: float = 3e-4
    eta_cutoff: float = 3e-4
    top_h: float = 0.4
    top_h_variant: str = "paper"
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    mirostat_m: int = 100
    ead_threshold: float = 1.0
    ead_window: int = 5
    ead_min_run: int = 5
    ead_sampler: str = "none"
    order: str = "hf"
    min_tokens_to_keep: int = 1

    def __post_init__(self) -> None:
        names = self.truncations if self.sampler not in ("mirostat", "mirostat_v2", "ead") else ()
        if isinstance(self.sampler, str) and self.sampler not in SAMPLERS:
            raise ValueError(not_one_of("sampler", self.sampler, SAMPLERS))
        if not isinstance(self.sampler, str):
            bad = [s for s in self.sampler if s not in TRUNCATIONS]
            if bad or not self.sampler:
                raise ValueError(f"a list of samplers may hold only {', '.join(TRUNCATIONS)}; got {self.sampler!r}")
        if self.order not in ORDERS:
            raise ValueError(not_one_of("order", self.order, ORDERS))
        if self.top_h_variant not in TOP_H_VARIANTS:
            raise ValueError(not_one_of("top_h_variant", self.top_h_variant, TOP_H_VARIANTS))
        # ead_sampler whatever the sampler, as order and top_h_variant: a default serves any sampler the space offers
        if self.ead_sampler not in ("none", *TRUNCATIONS):
            raise ValueError(not_one_of("ead_sampler", self.ead_sampler, ("none", *TRUNCATIONS)))
        used = ["temperature", "min_tokens_to_keep"]
        if self.sampler == "ead":
            used += ["ead_window", "ead_min_run", "ead_threshold"]
            names = self.step_config().truncations
        used += [TRUNCATION_PARAMETER.get(name, name) for name in names]
        if self.sampler in ("mirostat", "mirostat_v2"):
            used += ["mirostat_tau", "mirostat_eta", "mirostat_m"]
        for name in used:
            if problem := parameter_problem(name, getattr(self, name)):
                raise ValueError(problem)

    # ------------------------------------------------------------------ construction

    FLOAT_FIELDS = ("temperature", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "top_h",
                    "mirostat_tau", "mirostat_eta", "ead_threshold")
    INT_FIELDS = ("top_k", "mirostat_m", "ead_window", "ead_min_run", "min_tokens_to_keep")
    STR_FIELDS = ("top_h_variant", "ead_sampler", "order")

    @classmethod
    def keys(cls) -> frozenset[str]:
        """Every parameter name :meth:`from_params` accepts."""
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_params(cls, params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> SamplerConfig:
        """Build from a campaign's ``params`` (over ``defaults``). ``None`` values mean
        "not set"; integers may come as floats (rounded); unknown names are an error."""
        merged = {**(defaults or {}), **{k: v for k, v in params.items() if v is not None}}
        unknown = sorted(set(merged) - cls.keys())
        if unknown:
            raise ValueError(f"unknown decoding parameter(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(cls.keys()))})")
        kwargs: dict[str, Any] = {}
        for name, value in merged.items():
            if name in cls.FLOAT_FIELDS:
                kwargs[name] = _number(name, value, allow_inf=name == "ead_threshold")
            elif name in cls.INT_FIELDS:
                kwargs[name] = _number(name, value, int)
            elif name in cls.STR_FIELDS:
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string, got {value!r}")
                kwargs[name] = value
            elif name == "sampler":
                if isinstance(value, str):
                    kwargs[name] = value
                elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
                    kwargs[name] = tuple(value)
                else:
                    raise ValueError(f"sampler must be a name or a list of names, got {value!r}")
        return cls(**kwargs)

    def replace(self, **changes: Any) -> SamplerConfig:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ the chain

    @property
    def truncations(self) -> tuple[str, ...]:
        """The truncation rules this configuration applies (``()`` for none, Mirostat, EAD)."""
        if isinstance(self.sampler, tuple):
            return self.sampler
        return (self.sampler,) if self.sampler in TRUNCATIONS else ()

    @property
    def is_ead(self) -> bool:
        return self.sampler == "ead"

    def step_config(self) -> SamplerConfig:
        """The per-step rule: for EAD, this configuration with ``sampler = ead_sampler``."""
        return self.replace(sampler=self.ead_sampler) if self.is_ead else self

    def _truncation(self, name: str) -> LogitsProcessor | None:
        keep = self.min_tokens_to_keep
        if name == "top_k":
            return TopKLogitsWarper(top_k=int(self.top_k), min_tokens_to_keep=keep)
        if name == "top_p":
            return None if self.top_p >= 1.0 else TopPLogitsWarper(top_p=self.top_p, min_tokens_to_keep=keep)
        if name == "min_p":
            return None if self.min_p <= 0.0 else MinPLogitsWarper(min_p=self.min_p, min_tokens_to_keep=keep)
        if name == "typical":
            return None if self.typical_p >= 1.0 else TypicalLogitsWarper(mass=self.typical_p,
                                                                           min_tokens_to_keep=keep)
        if name == "epsilon":
            return None if self.epsilon_cutoff <= 0.0 else EpsilonLogitsWarper(
                epsilon=self.epsilon_cutoff, min_tokens_to_keep=keep)
        if name == "eta":
            return None if self.eta_cutoff <= 0.0 else EtaLogitsWarper(epsilon=self.eta_cutoff,
                                                                       min_tokens_to_keep=keep)
        if name == "top_h":
            if self.top_h_variant == "paper":
                return TopHPaperLogitsWarper(top_h=self.top_h, temperature=self._top_h_temperature())
            return TopHLogitsWarper(top_h=self.top_h)
        raise ValueError(f"unknown truncation {name!r}")

    def _top_h_temperature(self) -> float:
        """The T the paper Top-H divides its scores by: 1 in the ``hf`` order (they arrive
        tempered), the configuration's T in ``llama.cpp`` (they arrive untempered). At
        T = 0 it is 1: greedy picks token 1, which Top-H always keeps."""
        if self.order == "hf" or self.temperature == 0.0:
            return 1.0
        return float(self.temperature)

    def _temperature(self) -> LogitsProcessor | None:
        if self.temperature == 0.0:
            return ArgmaxLogitsWarper()
        if self.temperature == 1.0:
            return None
        return StableTemperatureLogitsWarper(float(self.temperature))

    def logits_processors(self) -> LogitsProcessorList:
        """The processor chain of the per-step rule, in this configuration's order.

        ``hf``: Temperature → TopH → TopK → TopP → MinP → Typical → ε → η (those chosen).
        ``llama.cpp``: TopK → Typical → TopP → MinP → ε → η → TopH → Temperature.
        Mirostat: Temperature → Mirostat(v2), in both orders. A new list each call (the
        Mirostat processors hold per-sequence state). For EAD, the chain of
        ``ead_sampler`` (EAD itself is a generation strategy, see :mod:`workers.decoding.ead`).
        """
        cfg = self.step_config()
        temperature = cfg._temperature()
        chain: list[LogitsProcessor | None]
        if cfg.sampler == "mirostat":
            chain = [temperature, MirostatLogitsWarper(cfg.mirostat_tau, cfg.mirostat_eta, cfg.mirostat_m)]
        elif cfg.sampler == "mirostat_v2":
            chain = [temperature, MirostatV2LogitsWarper(cfg.mirostat_tau, cfg.mirostat_eta)]
        else:
            order = HF_ORDER if cfg.order == "hf" else LLAMA_CPP_ORDER
            truncs = [cfg._truncation(name) for name in order if name in cfg.truncations]
            chain = [temperature, *truncs] if cfg.order == "hf" else [*truncs, temperature]
        return LogitsProcessorList([p for p in chain if p is not None])

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain values."""
        out = dataclasses.asdict(self)
        if isinstance(self.sampler, tuple):
            out["sampler"] = list(self.sampler)
        return out


# --------------------------------------------------------------------------- one step


@dataclasses.dataclass
class StepOutput:
    """One sampling step for a batch of rows (all tensors of shape ``(batch,)``)."""

    tokens: torch.Tensor
    #: H(p) in nats of the model's distribution p = softmax(logits), before temperature.
    model_entropy: torch.Tensor
    #: H(p_T) in nats of softmax(logits / T), before truncation (0 for T = 0).
    tempered_entropy: torch.Tensor
    #: H(q) in nats of the distribution actually sampled from (after the whole chain).
    sampling_entropy: torch.Tensor
    #: |{i : q_i > 0}|, the kept-set size (a token whose q underflows to 0 is never drawn: not kept).
    kept: torch.Tensor
    #: log p(token) under the model at temperature 1 (nats).
    logprob: torch.Tensor


class Sampler:
    """A configuration's processor chain plus the draw and the measures of one step.

    >>> sampler = Sampler(SamplerConfig(sampler="min_p", min_p=0.05, temperature=0.8))
    >>> out = sampler(logits, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
    >>> out.tokens, out.sampling_entropy                                   # doctest: +SKIP

    Stateful for Mirostat (μ per row): call :meth:`reset` before a new batch of
    sequences. ``active`` marks rows still generating (Mirostat leaves the others' μ).
    """

    def __init__(self, config: SamplerConfig | Mapping[str, Any]) -> None:
        self.config = config if isinstance(config, SamplerConfig) else SamplerConfig.from_params(config)
        self.processors = self.config.logits_processors()
        self.mirostat = next((p for p in self.processors if isinstance(p, _MirostatBase)), None)

    def reset(self) -> None:
        """Start new sequences (Mirostat's μ back to 2τ)."""
        if self.mirostat is not None:
            self.mirostat.reset()

    @property
    def mu(self) -> torch.Tensor | None:
        """Mirostat's per-row μ (bits), or None."""
        return None if self.mirostat is None else self.mirostat.mu

    def warp(self, logits: torch.Tensor) -> torch.Tensor:
        """The processed scores (−inf where removed) of ``logits`` (batch, vocab)."""
        scores = logits.float()
        for processor in self.processors:
            scores = processor(None, scores)
        return scores

    def __call__(self, logits: torch.Tensor, generator: torch.Generator | None = None,
                 active: torch.Tensor | None = None, measure: bool = True) -> StepOutput:
        """Warp ``logits`` (batch, vocab), draw one token per row, update Mirostat's μ,
        and measure the step (skip the entropies with ``measure=False``)."""
        logits = logits.float()
        scores = self.warp(logits)
        q = torch.softmax(scores, dim=-1)
        tokens = torch.multinomial(q, 1, generator=generator).squeeze(-1)
        if self.mirostat is not None:
            self.mirostat.update(tokens, active)
        logp = torch.log_softmax(logits, dim=-1)
        token_logp = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        if measure:
            model_h = -(logp.exp() * logp.nan_to_num(neginf=0.0)).sum(-1)
            temperature = self.config.step_config().temperature
            if temperature == 1.0:
                tempered_h = model_h
            elif temperature == 0.0:
                tempered_h = torch.zeros_like(model_h)
            else:
                tempered_h = entropy_nats(tempered(logits, temperature))
            logq = torch.log_softmax(scores, dim=-1).nan_to_num(neginf=0.0)
            sampling_h = -(q * logq).sum(-1)
            kept = (q > 0).sum(-1)  # not isfinite(scores): at T → 0 every finite score but one underflows in q
        else:
            model_h = tempered_h = sampling_h = torch.full_like(token_logp, float("nan"))
            kept = torch.zeros_like(tokens)
        return StepOutput(tokens=tokens, model_entropy=model_h, tempered_entropy=tempered_h,
                          sampling_entropy=sampling_h, kept=kept, logprob=token_logp)
