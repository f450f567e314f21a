"""Language-model backends for the LLM proposers.

- ``openai``: any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp's server,
  Ollama, hosted APIs) through the official ``openai`` client. The key is read from the
  environment variable named by ``api_key_env`` and never stored. Each request has a
  timeout; 429s, 5xx and timeouts are retried with exponential backoff and jitter.
- ``hf``: a local Hugging Face causal LM (a directory), held in a Ray actor so it loads
  once, on a GPU when ``num_gpus`` > 0.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from typing import Any


@dataclasses.dataclass
class Completion:
    text: str | None
    usage: dict[str, int]
    latency_s: float
    attempts: int


class BackendError(RuntimeError):
    """The model could not be reached, or refused, after every retry."""


class OpenAIBackend:
    """Chat completions over HTTP with retries on 429, 5xx and timeouts."""

    def __init__(self, base_url: str | None, model: str, api_key_env: str | None, timeout_s: float,
                 max_retries: int, temperature: float, max_tokens: int, backoff_s: float = 1.0) -> None:
        from openai import OpenAI

        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.client = OpenAI(base_url=base_url, api_key=key or "not-needed", timeout=timeout_s, max_retries=0)
        self.model = model
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.backoff_s = backoff_s

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        import openai

        start = time.perf_counter()
        last: Exception | None = None
        for attempt in range(1, self.max_retries + 2):
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages,  # type: ignore[arg-type]
                    temperature=self.temperature, max_tokens=self.max_tokens,
                )
                usage = response.usage
                return Completion(
                    text=response.choices[0].message.content if response.choices else None,
                    usage={"prompt_tokens": getattr(usage, "prompt_tokens", 0) or 0,
                           "completion_tokens": getattr(usage, "completion_tokens", 0) or 0},
                    latency_s=time.perf_counter() - start, attempts=attempt,
                )
            except (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError,
                    openai.InternalServerError) as exc:
                last = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise BackendError(f"the model endpoint refused the request: {exc.status_code} {exc}") from None
                last = exc
            except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
                # a 200 whose body is not a chat completion (not JSON, another shape): not retried
                raise BackendError(f"the model endpoint's reply is not a chat completion: "
                                   f"{type(exc).__name__}: {str(exc)[:200]}") from None
            if attempt <= self.max_retries:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
        raise BackendError(f"no answer after {self.max_retries + 1} attempts: {type(last).__name__}: {last}")


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

    def complete(self, messages: list[dict[str, str]]) -> tuple[str, dict[str, int]]:
        import torch

        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n"
        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=self.temperature > 0,
                                      temperature=max(self.temperature, 1e-5),
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        new = out[0, inputs["input_ids"].shape[1]:]
        return self.tokenizer.decode(new, skip_special_tokens=True), {
            "prompt_tokens": int(inputs["input_ids"].shape[1]), "completion_tokens": int(new.shape[0])}


class HFBackend:
    """A local model directory served by one Ray actor (started on first use)."""

    def __init__(self, path: str, num_gpus: float, max_new_tokens: int, temperature: float) -> None:
        self.path = path
        self.num_gpus = num_gpus
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self._actor: Any = None

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        import ray

        if not ray.is_initialized():  # a private local Ray, never another cluster found on this host
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(address="local", include_dashboard=False, configure_logging=False)
        if self._actor is None:
            device = "cuda:0" if self.num_gpus > 0 else "cpu"
            self._actor = ray.remote(num_gpus=self.num_gpus)(_HFGenerator).remote(
                self.path, device, self.max_new_tokens, self.temperature)
        start = time.perf_counter()
        try:
            text, usage = ray.get(self._actor.complete.remote(messages))
        except Exception as exc:
            self._actor = None
            raise BackendError(f"local model {self.path}: {type(exc).__name__}: {exc}") from None
        return Completion(text=text, usage=usage, latency_s=time.perf_counter() - start, attempts=1)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_actor": None}
