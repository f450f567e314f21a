"""Language-model backends for the LLM proposers.

- ``openai``: any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server,
  Ollama, hosted APIs) through the official ``openai`` client. The key is read from the
  environment variable named by ``api_key_env`` and never stored. ``timeout_s`` is a
  total deadline for each attempt: connecting, sending, waiting and reading the whole
  reply. The attempt runs on an event loop of its own (:func:`run_with_deadline`) and is
  cancelled at the deadline, which closes its connection, so a server that trickles its
  reply a byte at a time holds it no longer than one that says nothing. 429s, 5xx and
  timeouts are retried with exponential backoff and jitter, up to ``max_retries`` times;
  but a call makes at most :data:`MAX_TIMED_OUT_ATTEMPTS` attempts that time out (a
  connect or a reply), so a server that accepts and never answers costs about two
  ``timeout_s``, not ``max_retries`` + 1 of them and their backoff (with ``timeout_s: 120,
  max_retries: 4`` one call had blocked over 10 minutes). Connecting has a deadline of its
  own, :func:`connect_timeout_s` (``timeout_s`` × 0.9, at most 30 s), so a host that drops
  the connection reads as a connect timeout, not as a slow reply. A call none of whose
  attempts got an answer (each one's connection refused, its host name not resolved, its
  connect timed out, or no complete reply by ``timeout_s``) raises :class:`Unreachable`:
  the server is not there, or says nothing, which the proposer treats apart from a server
  that answers with an error.
- A reply that is not a chat completion (a body that is not JSON, another shape, a
  ``message.content`` that is not a string or null) is an error of the request, not
  retried: the proposer records the call as failed and falls back. Its message says what
  the body is, in the user's terms (:func:`body_problem`: ``the body is not JSON
  (content-type text/html, starts '<html>…')``), not the client's exception.
- ``hf``: a local Hugging Face causal LM (a directory), held in a Ray actor so it loads
  once, on a GPU when ``num_gpus`` > 0. ``timeout_s`` is a deadline for each request
  too: the generation stops at it (``generate(max_time=…)``), and a reply that is not
  complete by then (the generation stopped, or the actor silent ``HF_GRACE_S`` past the
  deadline) fails the call like an HTTP timeout, not retried: the proposer falls back. A
  silent actor is killed, and a new one loads the model on the next request. Loading
  is not part of a request: it has ``HF_LOAD_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from entropy_atlas.validation import a_type

T = TypeVar("T")


@dataclasses.dataclass
class Completion:
    text: str | None
    usage: dict[str, int]
    latency_s: float
    attempts: int


class BackendError(RuntimeError):
    """The model could not be reached, or refused, after every retry."""


class Unreachable(BackendError):
    """No attempt of the call got an answer: each one's connection was refused, its host
    name did not resolve, its connect timed out, or no complete reply came by its deadline
    (a server that accepts and says nothing). ``reason`` says which (the last attempt's),
    in a few words; ``attempt_s`` is the longest attempt's time (no backoff)."""

    def __init__(self, message: str, reason: str, attempt_s: float) -> None:
        super().__init__(message)
        self.reason = reason
        self.attempt_s = attempt_s


MAX_TIMED_OUT_ATTEMPTS = 2
"""The most attempts of one call that may time out (a connect or a reply): a timeout is
retried once, as a slow server may answer the next time, but a second one ends the call,
whatever ``max_retries`` allows (that is for 429s and 5xx, which a server answers at once)."""

CONNECT_TIMEOUT_S = 30.0
"""The most a connect may take: a server that is there accepts within a second or two, so a
longer wait is a host that drops the connection (long ``timeout_s`` are for slow replies)."""


def connect_timeout_s(timeout_s: float) -> float:
    """The connect deadline of an attempt: 0.9 × ``timeout_s`` (so it fires before the
    attempt's own deadline and is told apart from a slow reply), at most :data:`CONNECT_TIMEOUT_S`."""
    return min(0.9 * timeout_s, CONNECT_TIMEOUT_S)


def unreachable_reason(exc: BaseException) -> str | None:
    """Why ``exc`` (an attempt's error) never reached the server, from its chain of causes
    (the HTTP client's ``ConnectError``/``ConnectTimeout``, whatever its module, and the
    socket's error under it): ``connection refused``, ``host name not resolved``,
    ``connect timed out`` or ``connection failed``; None when the server was reached (an
    HTTP status, a timeout while reading, a reply that is not a completion)."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain and len(chain) < 20:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    names = {type(e).__name__ for e in chain}
    if not names & {"ConnectError", "ConnectTimeout"}:
        return None
    if "ConnectTimeout" in names:
        return "connect timed out"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "host name not resolved"
    return "connection failed"


def no_reply(timeout_s: float) -> str:
    """What an attempt that got no complete reply by its deadline is said as, in the options' terms."""
    return f"no complete reply within timeout_s ({timeout_s:g} s)"


def timed_out_reason(exc: BaseException, timeout_s: float) -> str | None:
    """Why an attempt got no answer when it timed out (``exc`` the attempt's deadline, or the
    HTTP client's timeout): ``connect timed out`` (:func:`unreachable_reason`), else ``no
    complete reply within timeout_s (N s)``; None when ``exc`` is no timeout."""
    import openai

    if not isinstance(exc, AttemptTimeout | openai.APITimeoutError):
        return None
    return unreachable_reason(exc) or no_reply(timeout_s)


MAX_BODY_SHOWN = 60  # characters of a body that is not a chat completion quoted in its message


def body_problem(content_type: str | None, body: bytes) -> str | None:
    """What is wrong with a 200's body as a chat completion, in the user's terms, or None
    when it is one (a JSON object whose ``choices`` is a list, the first choice's
    ``message`` an object whose ``content`` is a string or null): ``the body is not JSON
    (content-type text/html, starts '<html>…')``, ``the body is JSON null, not an object``,
    ``the body is a JSON object without a "choices" list (its keys: a)``, ``the body is an
    error: MESSAGE``, ``message.content is a dict, not a string: …``."""
    kind = f"content-type {content_type}" if content_type else "no content-type"
    if not body.strip():
        return f"the body is empty ({kind})"
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return f"the body is not JSON ({kind}, starts {quoted_start(body)})"
    if not isinstance(value, dict):
        return f"the body is {json_kind(value)}, not an object: starts {quoted_start(body)}"
    choices = value.get("choices")
    if not isinstance(choices, list):
        error = value.get("error")
        if error is not None:
            said = error.get("message", error) if isinstance(error, dict) else error
            return f"the body is an error: {str(said)[:200]}"
        if "choices" in value:
            return f'the body\'s "choices" is {json_kind(choices)}, not a list'
        keys = ", ".join(sorted(str(k) for k in value)[:10]) or "none"
        return f'the body is a JSON object without a "choices" list (its keys: {keys})'
    message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
    if choices and not isinstance(message, dict):
        return f'the body\'s choices[0] has no "message" object: {json.dumps(choices[0])[:120]}'
    content = message.get("content") if isinstance(message, dict) else None
    if content is not None and not isinstance(content, str):
        return f"message.content is {a_type(content)}, not a string: {repr(content)[:120]}"
    return None


def json_kind(value: Any) -> str:
    """A decoded JSON value's kind as JSON names it: ``JSON null``, ``a JSON array``, …"""
    if value is None:
        return "JSON null"
    names = ((bool, "boolean"), (int | float, "number"), (str, "string"), (list, "array"), (dict, "object"))
    return "a JSON " + next(name for kind, name in names if isinstance(value, kind))


def quoted_start(body: bytes) -> str:
    """The body's first :data:`MAX_BODY_SHOWN` characters, whitespace runs as one space,
    quoted, with ``…`` where it goes on."""
    text = " ".join(body.decode("utf-8", "replace").split())
    return f"'{text[:MAX_BODY_SHOWN]}{'…' if len(text) > MAX_BODY_SHOWN else ''}'"


class NotACompletion(ValueError):
    """A 200 whose body is not a chat completion (:func:`body_problem` says why)."""


def read_completion(raw: Any) -> tuple[str | None, dict[str, int]]:
    """The reply text and token counts of a raw response (the client's ``with_raw_response``:
    its headers, body and ``parse()``); :class:`NotACompletion` when its body is none."""
    problem = body_problem(raw.headers.get("content-type"), raw.content)
    if problem is not None:
        raise NotACompletion(problem)
    response = raw.parse()
    return reply_text(response), reply_usage(response)


class OpenAIBackend:
    """Chat completions over HTTP: each attempt ends by ``timeout_s``; 429, 5xx and
    timeouts are retried (a timeout once: :data:`MAX_TIMED_OUT_ATTEMPTS`)."""

    def __init__(self, base_url: str | None, model: str, api_key_env: str | None, timeout_s: float,
                 max_retries: int, temperature: float, max_tokens: int, backoff_s: float = 1.0) -> None:
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        # the client's own timeout bounds each read; run_with_deadline bounds the attempt
        self.client_options: dict[str, Any] = {"base_url": base_url, "api_key": key or "not-needed",
                                               "timeout": timeout_s, "max_retries": 0}
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s

    async def _request(self, messages: list[dict[str, str]]) -> Any:
        """One request on a client of its own (closed with it, also when cancelled): the raw
        response (headers, body, ``parse()``), so a body that is no chat completion is told
        as it is (:func:`read_completion`)."""
        from openai import AsyncOpenAI, Timeout

        timeout = Timeout(self.timeout_s, connect=connect_timeout_s(self.timeout_s))
        async with AsyncOpenAI(**{**self.client_options, "timeout": timeout}) as client:
            return await client.chat.completions.with_raw_response.create(
                model=self.model, messages=messages,  # type: ignore[arg-type]
                temperature=self.temperature, max_tokens=self.max_tokens,
            )

    def _attempt(self, messages: list[dict[str, str]]) -> Any:
        """The response to one request; :class:`AttemptTimeout` when it is not complete by ``timeout_s``."""
        try:
            return run_with_deadline(lambda: self._request(messages), self.timeout_s)
        except TimeoutError:
            raise AttemptTimeout(no_reply(self.timeout_s)) from None

    def complete(self, messages: list[dict[str, str]], retries: int | None = None) -> Completion:
        """The reply to ``messages``, after up to ``retries`` (default ``max_retries``) retries,
        of which at most one after a timeout (:data:`MAX_TIMED_OUT_ATTEMPTS`);
        :class:`Unreachable` when no attempt got an answer (none reached the server, or each
        that did timed out), :class:`BackendError` for any other failure."""
        import openai

        retries = self.max_retries if retries is None else retries
        start = time.perf_counter()
        last: Exception | None = None
        unanswered: list[str | None] = []  # per failed attempt: why it got no answer, None where it got one
        attempt_s = 0.0
        timeouts = 0
        for attempt in range(1, retries + 2):
            began = time.perf_counter()
            try:
                text, usage = read_completion(self._attempt(messages))
                return Completion(text=text, usage=usage, latency_s=time.perf_counter() - start, attempts=attempt)
            except (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError,
                    openai.InternalServerError, AttemptTimeout) as exc:
                last = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise BackendError(f"the model endpoint refused the request: {exc.status_code} {exc}") from None
                last = exc
            except NotACompletion as exc:  # a 200 whose body is not a chat completion: not retried
                raise BackendError(f"the model endpoint's reply is not a chat completion: {exc}") from None
            except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
                raise BackendError(f"the model endpoint's reply is not a chat completion: "
                                   f"{type(exc).__name__}: {str(exc)[:200]}") from None
            unanswered.append(unreachable_reason(last) or timed_out_reason(last, self.timeout_s))
            attempt_s = max(attempt_s, time.perf_counter() - began)
            timeouts += isinstance(last, AttemptTimeout | openai.APITimeoutError)
            if attempt > retries or timeouts >= MAX_TIMED_OUT_ATTEMPTS:
                break
            time.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
        raise no_answer(last, unanswered, attempt_s)


def no_answer(last: Exception | None, unanswered: list[str | None], attempt_s: float) -> BackendError:
    """The error of a call whose every attempt failed (``last`` the last one's error,
    ``unanswered`` why each got no answer): :class:`Unreachable` when none got one (its
    reason the last attempt's), else :class:`BackendError`."""
    n = len(unanswered)
    said = f"{type(last).__name__}: {last}"
    if isinstance(last, AttemptTimeout) or (unanswered and str(unanswered[-1]).startswith("no complete reply")):
        said = str(unanswered[-1])  # the deadline, in the options' terms (the client's own says "Request timed out.")
    message = f"no answer after {n} attempt{'s' if n > 1 else ''}: {said}"
    if unanswered and all(unanswered):
        reason = str(unanswered[-1])
        return Unreachable(message if reason in message else f"{message} ({reason})", reason, attempt_s)
    return BackendError(message)


class AttemptTimeout(Exception):
    """An attempt that was not complete by its deadline (retried like a timeout, once)."""


def run_with_deadline(make: Callable[[], Awaitable[T]], seconds: float) -> T:
    """Await ``make()`` on an event loop of its own, cancelled after ``seconds`` (then
    :class:`TimeoutError`); the cancellation closes what it opened. Where this thread
    already runs a loop (a notebook), the loop runs in a thread of its own."""

    async def bounded() -> T:
        return await asyncio.wait_for(make(), seconds)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, bounded()).result()


def reply_text(response: Any) -> str | None:
    """The first choice's ``message.content``: a string, or None (no choice, no content).
    Anything else (an object, a number, a list) is not a chat completion: TypeError."""
    content = response.choices[0].message.content if response.choices else None
    if content is not None and not isinstance(content, str):
        raise TypeError(f"message.content is {a_type(content)}, not a string: {repr(content)[:120]}")
    return content


def reply_usage(response: Any) -> dict[str, int]:
    """Prompt and completion tokens as the reply counts them (0 where it gives no count)."""
    usage = getattr(response, "usage", None)
    return {name: count if is_count(count := getattr(usage, name, 0)) else 0
            for name in ("prompt_tokens", "completion_tokens")}


def is_count(value: Any) -> bool:
    """A non-negative integer, not a boolean."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


HF_GRACE_S = 5.0
"""How long past a request's deadline the actor's reply may still come (the token under
way, decoding, the transfer) before the call fails and the actor is killed."""
HF_LOAD_TIMEOUT_S = 600.0
"""How long a new actor may take to start and load its model directory (a few minutes
for a large model from a slow disk; a GPU that never frees up waits forever)."""


class _HFGenerator:
    """A local causal LM (in a Ray actor): chat template when it has one, else plain text."""

    def __init__(self, path: str, device: str, max_new_tokens: int, temperature: float) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not os.path.isdir(path):
            raise FileNotFoundError(f"no model directory at {path}")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    def ready(self) -> bool:
        """True once the model is loaded (the constructor has run)."""
        return True

    def complete(self, messages: list[dict[str, str]], max_time: float) -> tuple[str, dict[str, int], bool]:
        """The reply, its token counts, and whether it was cut: the generation still running
        ``max_time`` seconds after the call began."""
        import torch

        start = time.monotonic()
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=self.temperature > 0,
                                      temperature=max(self.temperature, 1e-5),
                                      max_time=max(max_time - (time.monotonic() - start), 0.0),
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        cut = time.monotonic() - start >= max_time
        new = out[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True), {
            "prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new.shape[0])}, cut


class HFBackend:
    """A local model directory served by one Ray actor (started on first use, and again
    after a request it did not answer by ``timeout_s``)."""

    generator: type = _HFGenerator  # the actor's class

    def __init__(self, path: str, num_gpus: float, max_new_tokens: int, temperature: float,
                 timeout_s: float) -> None:
        self.path = path
        self.num_gpus = num_gpus
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._actor: Any = None

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """The reply to ``messages``; :class:`BackendError` when the actor fails, or its reply
        is not complete by ``timeout_s`` (the generation stopped, or no reply ``HF_GRACE_S``
        later: the actor is then killed)."""
        actor = self._ready_actor()
        start = time.perf_counter()
        text, usage, cut = self._get(actor.complete.remote(messages, self.timeout_s), self.timeout_s + HF_GRACE_S,
                                     f"no reply within timeout_s ({self.timeout_s:g} s); its actor was killed")
        if cut:
            raise BackendError(f"local model {self.path}: {no_reply(self.timeout_s)}: "
                               f"the generation was stopped after {usage['completion_tokens']} tokens")
        return Completion(text=text, usage=usage, latency_s=time.perf_counter() - start, attempts=1)

    def _ready_actor(self) -> Any:
        """The actor, started (in a private local Ray when none is running) and its model
        loaded, within ``HF_LOAD_TIMEOUT_S``."""
        import ray

        if not ray.is_initialized():  # a private local Ray, never another cluster found on this host
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(address="local", include_dashboard=False, configure_logging=False)
        if self._actor is None:
            device = "cuda:0" if self.num_gpus > 0 else "cpu"
            self._actor = ray.remote(num_gpus=self.num_gpus)(self.generator).remote(
                self.path, device, self.max_new_tokens, self.temperature)
            self._get(self._actor.ready.remote(), HF_LOAD_TIMEOUT_S, f"not loaded within {HF_LOAD_TIMEOUT_S:g} s")
        return self._actor

    def _get(self, ref: Any, timeout: float, on_timeout: str) -> Any:
        """``ray.get(ref)`` within ``timeout`` s; past it the actor is killed, and on any
        failure it is dropped (the next request starts a new one): :class:`BackendError`."""
        import ray
        from ray.exceptions import GetTimeoutError

        try:
            return ray.get(ref, timeout=timeout)
        except GetTimeoutError:
            self._kill()
            raise BackendError(f"local model {self.path}: {on_timeout}") from None
        except Exception as exc:
            self._actor = None
            raise BackendError(f"local model {self.path}: {type(exc).__name__}: {exc}") from None

    def _kill(self) -> None:
        """Kill the actor (a request under way with it); the next request starts a new one."""
        import ray

        actor, self._actor = self._actor, None
        if actor is not None:
            ray.kill(actor)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_actor": None}
