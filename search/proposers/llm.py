"""``llm`` and ``llm-mutate``: a language model reads the archive and proposes candidates.

``llm`` (LLM-guided optimisation, as in Iron Mind): the prompt holds the search space
(names, types, bounds, conditions), the measures, the best elites as a compact table,
empty or weak cells as targets, and the campaign's goal; the model answers with
``batch_size`` configurations as JSON. ``llm-mutate`` (Evolution through Large Models):
the prompt holds one parent elite and a neighbouring empty cell, and the model answers
with modified children.

Each candidate is checked against the space: repairable ones are repaired (clipped,
cast, inactive parameters dropped), the rest discarded with the reason counted. A
candidate that names no parameter of the space (``{}``, ``{"error": …}``,
``{"candidates": 5}``) is discarded (``names no parameter of the space``), not repaired
into the centre of the space. Duplicates of past or pending evaluations are dropped. When
a reply yields fewer valid candidates than asked (garbage, an empty reply, an error after
every retry, the request cap reached), the fallback fills the batch under the proposer
name ``<name>-fallback``: Gaussian mutations of elites, then uniform samples of the space,
then the untried points of a finite space (one of integer and categorical parameters,
listed up to :data:`MAX_LISTED_POINTS` combinations), so every point of such a space is
reached. Once every point of a finite space is evaluated or pending, the model's valid
candidates are taken as repeats and the fallback proposes repeats (mutations of elites),
as ``random`` and ``map-elites`` do, so a campaign whose budget exceeds the space still
reaches it: it never stalls.

Every prompt and reply is written to the archive's ``proposer_calls`` with the rows it
produced (their ``proposal.call`` is its key). Prompts are a pure function of the
archive and the seed, so a resumed campaign finds its answered calls by key and does
not ask again. The checkpoint keeps the request and ask counts and the discard counts
(fields ``requests``, ``asks``, ``discarded``); a legacy pickle is not read: the request
count is that of the calls in the archive, the ask count the number of rows (so no
prompt seed is used twice) and the discard counts start again.

A fallback is reported on the logger ``entropy_atlas.llm`` at ``WARNING``, naming the
endpoint and the reason, once per kind of cause and proposer (``unreachable``: no attempt
of a call reached the server; ``error``: the endpoint did not answer or refused;
``request-cap``: ``max_requests`` reached; ``reply``: nothing usable in the reply;
``candidates``: fewer valid candidates than asked), so a campaign against a dead endpoint
says so once rather than on every batch.

A server that cannot be reached (every attempt of a call refused, its host name not
resolved, its connect timed out, or no complete reply by ``timeout_s``: a server that
accepts the connection and says nothing; :class:`~search.proposers.llm_backends.Unreachable`)
is not asked again at once: the asks in between are filled by the fallback without a
request, so the run goes on at full speed rather than spending each ask on retries
against nothing (a portfolio gave it half of each batch: 25 calls of five attempts,
about 15 s each, were 400 s of a 402 s run). It is tried again, one attempt, after
:data:`UNREACHABLE_FIRST_WAIT_S`, then at intervals that double up to
:data:`UNREACHABLE_MAX_WAIT_S`, and never sooner than :data:`UNREACHABLE_WAIT_FACTOR` ×
the last failed attempt's time (a host that drops packets costs a connect timeout each
time, a silent server ``timeout_s``). Before, a server that accepted and never answered was asked on every ask,
each call ``max_retries`` + 1 timeouts and their backoff: 0 of 24 evaluations in 200 s,
with no warning. Not stopped for good, because the usual cause is a server not started yet or
still loading its model: it is used within about twice its start-up time once it
listens. Its first answer (a reply or an error) ends the wait; a server that answers
with an error or garbage is asked on every ask as before (that is the server's answer,
not its absence). The wait is not checkpointed: a resumed or new run asks the server
again at once. Each try is recorded in ``proposer_calls`` as any failed call; the
skipped asks are not calls (no row), and are counted in the discard counts as ``server
unreachable``. It is said once per run (the kind ``unreachable`` above).

A key is never an option: an option that holds a secret (``api_key``, ``token``,
``password``, … as :func:`archive.redact.is_secret_key` decides) is refused when the
proposer is built, before anything is stored; ``api_key_env`` names the environment
variable that holds the key.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from archive.redact import is_secret_key, redact_url
from entropy_atlas.storable import storable_text
from search.params import CategoricalParam, IntParam
from search.proposers import checkpoint
from search.proposers.base import (
    History,
    Observation,
    OptionError,
    Proposal,
    Proposer,
    ProposerContext,
    rows_so_far,
)
from search.proposers.checkpoint import Checkpoint
from search.proposers.llm_backends import BackendError, Completion, HFBackend, OpenAIBackend, Unreachable
from search.proposers.llm_prompt import build_mutate_prompt, build_propose_prompt, parse_candidates
from search.space import SearchSpace

log = logging.getLogger("entropy_atlas.llm")


def params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"))


def refuse_inline_secrets(options: Mapping[str, Any]) -> None:
    """Raise :class:`OptionError` when an option holds a secret itself (``api_key: sk-…``):
    the options are part of the campaign spec, which the archive stores and shows."""
    inline = sorted(k for k in options if is_secret_key(k))
    if inline:
        raise OptionError(
            f"search.options.{inline[0]}: a key is not written in the campaign file (the spec is stored in the "
            f"archive); put it in an environment variable and name that variable instead: api_key_env: VAR")


MAX_REPLY_CHARS = 200_000  # of a reply read and stored (2,048 tokens, the default cap, are about 8,000)


def stored_reply(text: str | None) -> str | None:
    """A reply as it is read and stored, the same on a resume that reads it back: its first
    :data:`MAX_REPLY_CHARS` characters, a NUL or lone surrogate (which storage refuses)
    written as an escape."""
    return None if text is None else storable_text(text[:MAX_REPLY_CHARS])


MAX_LISTED_POINTS = 10_000  # a finite space up to this many combinations is listed for the fallback
NAMES_NO_PARAMETER = "names no parameter of the space"


def finite_points(space: SearchSpace) -> list[dict[str, Any]] | None:
    """Every point of a space of integer and categorical parameters (a conditional one left
    out where its condition does not hold), each once, in a fixed order; None for a space
    with a float parameter or more than :data:`MAX_LISTED_POINTS` combinations."""
    options: list[Sequence[Any]] = []
    for slot in space.slots:
        if isinstance(slot.param, CategoricalParam):
            options.append(list(slot.param.choices))
        elif isinstance(slot.param, IntParam):
            options.append(range(slot.param.low, slot.param.high + 1))
        else:
            return None
    if math.prod(len(o) for o in options) > MAX_LISTED_POINTS:
        return None
    points: dict[str, dict[str, Any]] = {}
    for combination in itertools.product(*options):
        values: dict[str, Any] = {}
        for slot, value in zip(space.slots, combination, strict=True):
            if space.is_active(slot.name, values):
                values[slot.name] = value
        points.setdefault(params_key(values), values)
    return list(points.values())


UNREACHABLE_FIRST_WAIT_S = 30.0  # before the first try again after a call that reached no server
UNREACHABLE_MAX_WAIT_S = 600.0  # the waits double up to this
UNREACHABLE_WAIT_FACTOR = 10.0  # a wait is at least this × the failed try's own time (≤ 10% of the run on it)

MAX_TEMPERATURE = 10.0  # sampling past a few is noise; OpenAI's own limit is 2
MAX_TOKENS = 1_000_000  # no model's context holds more


class LlmProposer(Proposer):
    name = "llm"
    asks_are_slow = True
    clock: Callable[[], float] = staticmethod(time.monotonic)  # when to try an unreachable server again
    option_names = ("backend", "base_url", "model", "api_key_env", "temperature", "max_tokens", "timeout_s",
                    "max_retries", "backoff_s", "max_requests", "elites_in_prompt", "targets_in_prompt",
                    "mutation_sigma", "num_gpus")

    def __init__(self, ctx: ProposerContext) -> None:
        refuse_inline_secrets(ctx.options)
        super().__init__(ctx)
        self.backend_kind = self.choice_option("backend", "openai", ("openai", "hf"))
        self.model = self.option("model", None)
        if not self.model or not isinstance(self.model, str):
            raise self.option_error("model", "required (the served model's name, or a local model directory "
                                             "with backend: hf)")
        self.max_requests = self.int_option("max_requests", 1000, minimum=0)
        self.elites_in_prompt = self.int_option("elites_in_prompt", 20)
        self.targets_in_prompt = self.int_option("targets_in_prompt", 10, minimum=0)
        self.sigma = self.number_option("mutation_sigma", 0.1, above=0)
        text = (lambda v: v is None or (isinstance(v, str) and v != ""), "must be a non-empty string")
        self.base_url = self.option("base_url", None, *text)
        self.api_key_env = self.option("api_key_env", None, *text)
        # bounded where no endpoint's model reads further: 1e308 and 10**15 were sent as given
        self.temperature = self.number_option("temperature", 0.7, minimum=0, maximum=MAX_TEMPERATURE)
        self.max_tokens = self.int_option("max_tokens", 1024 if self.backend_kind == "hf" else 2048,
                                          maximum=MAX_TOKENS)
        self.timeout_s = self.number_option("timeout_s", 60, above=0)
        self.max_retries = self.int_option("max_retries", 4, minimum=0)
        self.backoff_s = self.number_option("backoff_s", 1.0, minimum=0)
        self.num_gpus = self.number_option("num_gpus", 0, minimum=0)
        self.requests = 0
        self.asks = 0
        self.discarded: collections.Counter[str] = collections.Counter()
        self._reset_caches()
        self._backend: Any = None
        self._calls: list[dict[str, Any]] = []
        self._problem: tuple[str, str] | None = None
        self._warned: set[str] = set()
        self._retry_at: float | None = None  # while the server is unreachable: when to try it again
        self._wait_s = 0.0  # the wait before that try
        self._unreachable_reason = ""  # why the last try failed

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any], path: str = "search.options") -> list[str]:
        """The base's, and a key variable named by ``api_key_env`` that is not set where the
        endpoint is not on loopback (:func:`search.proposers.llm_key.key_warning`)."""
        from search.proposers.llm_key import key_warning

        missing = key_warning(options, path)
        return super().option_warnings(options, path) + ([missing] if missing else [])

    def _reset_caches(self) -> None:
        self.cache: dict[str, str] = {}
        self.seen: set[str] = set()
        self.elites: dict[int, Observation] = {}
        self.failures = 0

    # -- the model -------------------------------------------------------------
    def backend(self) -> Any:
        if self._backend is None:
            if self.backend_kind == "hf":
                self._backend = HFBackend(self.model, self.num_gpus, self.max_tokens, self.temperature,
                                           self.timeout_s)
            else:
                self._backend = OpenAIBackend(self.base_url, self.model, self.api_key_env, self.timeout_s,
                                              self.max_retries, self.temperature, self.max_tokens,
                                              backoff_s=self.backoff_s)
        return self._backend

    def _ask_model(self, messages: list[dict[str, str]]) -> tuple[str | None, str]:
        """The reply to ``messages`` (from the archive when already answered) and its key."""
        key = hashlib.sha256((str(self.model) + json.dumps(messages, sort_keys=True)).encode()).hexdigest()
        if key in self.cache:
            return self.cache[key], key
        request = {"model": self.model, "messages": messages, "backend": self.backend_kind}
        if self.requests >= self.max_requests:
            self.discarded["request cap reached"] += 1
            self._problem = ("request-cap", f"the request cap is reached (max_requests: {self.max_requests})")
            return None, key
        if self._retry_at is not None and self.clock() < self._retry_at:
            self.discarded["server unreachable"] += 1
            self._problem = ("unreachable", self._unreachable_reason)
            return None, key
        self.requests += 1
        try:  # an unreachable server is tried again with one attempt
            done: Completion = self.backend().complete(messages, **({} if self._retry_at is None else {"retries": 0}))
        except Unreachable as exc:
            self._unreachable(exc)
            self._calls.append(self._failed_call(key, request, str(exc)))
            return None, key
        except (BackendError, FileNotFoundError) as exc:
            self._reached()
            self._problem = ("error", str(exc))
            self._calls.append(self._failed_call(key, request, str(exc)))
            return None, key
        self._reached()
        text = stored_reply(done.text)
        self.cache[key] = text or ""
        self._calls.append({"proposer": self.name, "key": key, "request": request, "reply": text,
                            "status": "ok", "error": None, "usage": {**done.usage, "attempts": done.attempts},
                            "latency_s": done.latency_s, "outcome": None})
        return text, key

    def _failed_call(self, key: str, request: dict[str, Any], error: str) -> dict[str, Any]:
        """The ``proposer_calls`` row of a call that got no reply."""
        return {"proposer": self.name, "key": key, "request": request, "reply": None, "status": "error",
                "error": error, "usage": None, "latency_s": None, "outcome": None}

    def _unreachable(self, exc: Unreachable) -> None:
        """Wait before trying the server again: :data:`UNREACHABLE_FIRST_WAIT_S` after the
        first failed call, double the last wait after each failed try, at most
        :data:`UNREACHABLE_MAX_WAIT_S`, and at least :data:`UNREACHABLE_WAIT_FACTOR` × the
        failed attempt's time (a connect timeout)."""
        doubled = UNREACHABLE_FIRST_WAIT_S if self._retry_at is None else min(2 * self._wait_s, UNREACHABLE_MAX_WAIT_S)
        self._wait_s = max(doubled, UNREACHABLE_WAIT_FACTOR * exc.attempt_s)
        self._retry_at = self.clock() + self._wait_s
        self._unreachable_reason = exc.reason
        self._problem = ("unreachable", exc.reason)

    def _reached(self) -> None:
        """The server answered (a reply or an error): it is asked on every ask again."""
        if self._retry_at is not None:
            log.info("%s proposer: %s answers again; it is asked again", self.name, self.endpoint())
            self._retry_at = None

    # -- fallbacks ---------------------------------------------------------------
    def endpoint(self) -> str:
        """Where the model is asked: the base URL (a password in it masked), or the local model directory."""
        if self.backend_kind == "hf":
            return f"local model {self.model}"
        base_url = redact_url(str(self.ctx.options.get("base_url") or "the OpenAI client's default endpoint"))
        return f"{base_url} (model {self.model})"

    def _warn_fallback(self, kind: str, reason: str, missing: int, asked: int) -> None:
        """Log a fallback at WARNING on ``entropy_atlas.llm``: the first time for each ``kind``."""
        if kind in self._warned:
            return
        self._warned.add(kind)
        if kind == "unreachable":
            log.warning("the LLM server at %s cannot be reached (%s); the %s proposer's batches are filled by its "
                        "fallback (mutations of elites or new points of the space, proposer %s-fallback) until it "
                        "answers again: it is tried again after %.0f s, then at doubling intervals up to %.0f s",
                        self.endpoint(), reason, self.name, self.name, self._wait_s,
                        max(UNREACHABLE_MAX_WAIT_S, self._wait_s))
            return
        log.warning("%s proposer: %s: %s; %d of %d candidates of the batch come from the fallback (mutations "
                    "of elites or new points of the space, proposer %s-fallback). This is reported once per "
                    "kind of cause.",
                    self.name, self.endpoint(), redact_url(reason), missing, asked, self.name)

    def _fallback_cause(self, problem: str | None, outcome: dict[str, Any], asked: int) -> tuple[str, str]:
        """The kind and reason of a short batch, from the request's problem or the reply's outcome."""
        if self._problem is not None:
            return self._problem
        cut = f", as read: it was cut at {MAX_REPLY_CHARS:,} characters" if outcome.get("cut") else ""
        if not outcome["candidates"]:
            return "reply", f"no candidates in its reply ({problem or 'nothing parsed'}{cut})"
        discarded = ", ".join(f"{k}: {v}" for k, v in sorted(outcome["discarded"].items())) or "none"
        held = outcome["candidates"]
        return "candidates", (f"its reply held {held} candidate{'' if held == 1 else 's'}{cut}, for {asked} "
                              f"asked, {outcome['valid']} usable (discarded: {discarded})")

    # -- prompts ---------------------------------------------------------------
    def _raw_objective(self, fitness: float) -> float:
        return fitness if self.ctx.maximize else -fitness

    def _elite_rows(self) -> list[dict[str, Any]]:
        names = self.ctx.layout.measure_names
        best = sorted(self.elites.values(), key=lambda o: (-(o.fitness or 0.0), o.cell))[: self.elites_in_prompt]
        return [{"params": o.params, self.ctx.objective_name: round(self._raw_objective(o.fitness or 0.0), 6),
                 "measures": {m: round(float(v), 6) for m, v in zip(names, o.measures, strict=True)}}
                for o in best if o.measures is not None]

    def _cell_box(self, cell: int) -> dict[str, Any]:
        layout = self.ctx.layout
        if layout.kind == "grid":
            return {a.name: [round(lo, 6), round(hi, 6)]
                    for a, (lo, hi) in zip(layout.axes, layout.cell_bounds(cell), strict=True)}
        assert layout.centroids is not None
        return {a.name: round(float(v), 6) for a, v in zip(layout.axes, layout.centroids[cell], strict=True)}

    def _targets(self, rng: np.random.Generator) -> list[dict[str, Any]]:
        cells = self.ctx.layout.cells
        empty = [c for c in range(cells) if c not in self.elites]
        picks = [int(c) for c in rng.permutation(empty)[: self.targets_in_prompt]] if empty else []
        room = max(0, self.targets_in_prompt - len(picks))
        weak = sorted(self.elites.values(), key=lambda o: o.fitness or 0.0)[:room]
        out = [{"cell": c, "status": "empty", "measures": self._cell_box(c)} for c in picks]
        out += [{"cell": o.cell, "status": "weak", "measures": self._cell_box(int(o.cell)),
                 self.ctx.objective_name: round(self._raw_objective(o.fitness or 0.0), 6)}
                for o in weak if o.cell is not None]
        return out

    def messages(self, n: int, rng: np.random.Generator) -> list[dict[str, str]]:
        measures = [{"name": a.name, "low": a.low, "high": a.high} for a in self.ctx.layout.axes]
        return build_propose_prompt(
            goal=self.ctx.goal, evaluator=self.ctx.evaluator_kind, objective=self.ctx.objective_name,
            maximize=self.ctx.maximize, measures=measures, space=self.ctx.space.describe(),
            elites=self._elite_rows(), targets=self._targets(rng), n=n, failures=self.failures)

    # -- ask/tell ----------------------------------------------------------------
    def ask(self, n: int) -> list[Proposal]:
        self.asks += 1
        rng = np.random.default_rng([self.ctx.seed, self.asks])
        messages = self.messages(n, rng)
        self._problem = None
        reply, key = self._ask_model(messages)
        candidates, problem = parse_candidates(reply) if reply is not None else ([], "no reply")
        outcome: dict[str, Any] = {"candidates": len(candidates), "valid": 0, "discarded": {}, "problem": problem,
                                   "cut": reply is not None and len(reply) >= MAX_REPLY_CHARS}
        proposals = self._usable(candidates, n, key, outcome)
        outcome["valid"] = len(proposals)
        for call in self._calls:
            if call["key"] == key and call["outcome"] is None:
                call["outcome"] = outcome
        if len(proposals) < n:
            self._warn_fallback(*self._fallback_cause(problem, outcome, n), n - len(proposals), n)
            proposals += self._fallback(n - len(proposals), rng)
        return proposals

    def _usable(self, candidates: list[Any], n: int, key: str, outcome: dict[str, Any]) -> list[Proposal]:
        """Up to ``n`` proposals from the reply's candidates, in order; the rest discarded
        and counted in ``outcome``. A duplicate of an evaluated or pending point is
        discarded, unless every point of the (finite) space is taken: then it is a repeat."""
        proposals: list[Proposal] = []
        for candidate in candidates:
            if len(proposals) == n:
                break
            params, reason = self._checked(candidate)
            if reason is not None:
                self._discard(outcome, reason, "invalid")
                continue
            k = params_key(params)
            if k in self.seen and not self._exhausted():
                self._discard(outcome, "duplicate", "duplicate")
                continue
            if k in self.seen:
                outcome["repeats"] = outcome.get("repeats", 0) + 1
            self.seen.add(k)
            proposals.append(Proposal(self.ctx.space.encode(params), params=params, meta={"call": key},
                                      proposer=self.name))
        return proposals

    def _checked(self, candidate: Any) -> tuple[dict[str, Any], str | None]:
        """A candidate repaired against the space, or why it is discarded: it is not a
        mapping, it names no parameter of the space (``{}``, ``{"error": …}``: repair
        would make it the centre of the space), or a value cannot be repaired."""
        if isinstance(candidate, Mapping) and not any(name in candidate for name in self.ctx.space.params):
            return {}, NAMES_NO_PARAMETER
        params, problems = self.ctx.space.coerce(candidate, repair=True)
        return params, problems[0].split(":", 1)[-1].strip() if problems else None

    def _discard(self, outcome: dict[str, Any], reason: str, kind: str) -> None:
        """Count a discarded candidate: by ``reason`` in the call's outcome, by ``kind``
        (``invalid`` or ``duplicate``) in the proposer's checkpointed counts."""
        outcome["discarded"][reason] = outcome["discarded"].get(reason, 0) + 1
        self.discarded[kind] += 1

    def _fallback(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        """``n`` proposals, each the first of these that gives one: Gaussian mutations of
        random elites (uniform samples while there are none), then uniform samples (20·n
        draws each), then the untried points of a finite space in random order; when
        none is left untried (or a space too large to list gave nothing new), repeats."""
        space = self.ctx.space
        out: list[Proposal] = []
        for draw in (self._mutations, lambda k, g: g.random((k, space.dim))):
            out += self._new_points(draw(20 * (n - len(out)), rng), n - len(out))
        out += self._untried(n - len(out), rng)
        return out + [self._fallback_proposal(x, space.decode(x), "repeat")
                      for x in self._mutations(n - len(out), rng)]

    def _mutations(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` Gaussian mutations (σ ``mutation_sigma``) of random elites, clipped to
        the cube; uniform points while there are no elites."""
        parents = list(self.elites.values())
        if not parents:
            return rng.random((k, self.ctx.space.dim))
        xs = np.array([parents[i].x for i in rng.integers(len(parents), size=k)]).reshape(k, self.ctx.space.dim)
        return np.clip(xs + rng.normal(0, self.sigma, xs.shape), 0, 1)

    def _new_points(self, xs: np.ndarray, n: int) -> list[Proposal]:
        """The first ``n`` of the points ``xs`` whose params are neither evaluated nor pending."""
        out: list[Proposal] = []
        if n <= 0 or not len(xs):
            return out
        for x, params in zip(xs, self.ctx.space.decode_many(xs), strict=True):
            k = params_key(params)
            if len(out) < n and k not in self.seen:
                self.seen.add(k)
                out.append(self._fallback_proposal(x, params, "fallback"))
        return out

    def _untried(self, n: int, rng: np.random.Generator) -> list[Proposal]:
        """Up to ``n`` points of a finite space (:func:`finite_points`) not yet evaluated
        or pending, in random order."""
        untried = [p for p in self.space_points or [] if params_key(p) not in self.seen] if n > 0 else []
        picks = [untried[i] for i in rng.permutation(len(untried))[:n]]
        self.seen.update(params_key(p) for p in picks)
        return [self._fallback_proposal(self.ctx.space.encode(p), p, "untried") for p in picks]

    def _exhausted(self) -> bool:
        """Whether the space is finite and every point of it is evaluated or pending."""
        return self.space_points is not None and all(params_key(p) in self.seen for p in self.space_points)

    @functools.cached_property
    def space_points(self) -> list[dict[str, Any]] | None:
        """The space's points when it is finite and small enough to list (:func:`finite_points`)."""
        return finite_points(self.ctx.space)

    def _fallback_proposal(self, x: np.ndarray, params: dict[str, Any], source: str) -> Proposal:
        """A proposal of the fallback: proposer ``<name>-fallback``, ``source`` (``fallback``:
        a new point by mutation or uniform sample, ``untried``, ``repeat``) in its meta."""
        return Proposal(np.asarray(x, dtype=float), params=params, meta={"source": source},
                        proposer=f"{self.name}-fallback")

    def tell(self, observations: list[Observation]) -> None:
        for o in observations:
            self.seen.add(params_key(o.params))
            if o.fitness is None:
                self.failures += 1
            elif o.cell is not None and (o.cell not in self.elites or o.fitness > (self.elites[o.cell].fitness or 0)):
                self.elites[o.cell] = o

    def take_calls(self) -> list[dict[str, Any]]:
        calls, self._calls = self._calls, []
        return calls

    # -- checkpoints -------------------------------------------------------------
    def to_checkpoint(self) -> Checkpoint:
        """Requests made (against ``max_requests``), asks (the prompts' seeds), discards."""
        return Checkpoint(fields={"requests": self.requests, "asks": self.asks, "discarded": dict(self.discarded)})

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        if saved is not None:
            self.requests, self.asks = int(saved.fields["requests"]), int(saved.fields["asks"])
            self.discarded = collections.Counter({str(k): int(v) for k, v in saved.fields["discarded"].items()})
        self._rebuild(history)

    def from_legacy(self, history: History) -> None:
        """Requests: the calls in the archive; asks: the rows so far; discards: none."""
        self.requests, self.asks = len(history.calls(self.name)), rows_so_far(history)
        self.discarded = collections.Counter()
        self._rebuild(history)
        checkpoint.warn_legacy(self.name, f"{self.requests} requests from the archive's calls, prompts seeded "
                                          f"after {self.asks} rows")

    def _rebuild(self, history: History) -> None:
        """Elites, seen parameters and answered calls, from the archive."""
        self._reset_caches()
        self.tell(history.finished())
        for call in history.calls(self.name):
            if call["status"] == "ok":
                self.cache[call["key"]] = call["reply"] or ""
        pending = history.pending_x()
        for x in pending if len(pending) else []:
            self.seen.add(params_key(self.ctx.space.decode(np.asarray(x))))


class LlmMutateProposer(LlmProposer):
    """ELM-style: children of one parent elite, aimed at a neighbouring empty cell."""

    name = "llm-mutate"

    def _neighbour_target(self, parent: Observation, rng: np.random.Generator) -> int:
        layout = self.ctx.layout
        if layout.kind == "grid" and parent.cell is not None:
            idx = np.array(np.unravel_index(parent.cell, tuple(layout.dims)))
            options = []
            for axis in range(len(idx)):
                for step in (-1, 1):
                    j = idx.copy()
                    j[axis] += step
                    if 0 <= j[axis] < layout.dims[axis]:
                        cell = int(np.ravel_multi_index(tuple(j), tuple(layout.dims)))
                        if cell not in self.elites:
                            options.append(cell)
            if options:
                return int(options[rng.integers(len(options))])
        empty = [c for c in range(layout.cells) if c not in self.elites]
        return int(empty[rng.integers(len(empty))]) if empty else int(rng.integers(layout.cells))

    def messages(self, n: int, rng: np.random.Generator) -> list[dict[str, str]]:
        rows = sorted(self.elites.values(), key=lambda o: o.cell or 0)
        if not rows:
            return super().messages(n, rng)
        parent = rows[rng.integers(len(rows))]
        names = self.ctx.layout.measure_names
        target = self._neighbour_target(parent, rng)
        parent_row = {"params": parent.params,
                      self.ctx.objective_name: round(self._raw_objective(parent.fitness or 0.0), 6),
                      "measures": {m: round(float(v), 6) for m, v in zip(names, parent.measures, strict=True)}
                      if parent.measures is not None else {}}
        return build_mutate_prompt(
            goal=self.ctx.goal, evaluator=self.ctx.evaluator_kind, objective=self.ctx.objective_name,
            maximize=self.ctx.maximize, space=self.ctx.space.describe(), parent=parent_row,
            target={"cell": target, "measures": self._cell_box(target)}, n=n)


__all__ = ["LlmMutateProposer", "LlmProposer", "ProposerContext"]
