"""Model backends: a causal language model and its tokenizer, loaded once.

``load_model(spec, device)`` takes

- ``builtin:arith-tiny`` / ``builtin:arith-nano``: the project's own arithmetic models
  (:mod:`workers.decoding.arith`), checked in or trained on first use;
- a local directory holding a Hugging Face causal LM (``config.json``, weights,
  tokenizer files). Nothing is ever downloaded: loading uses ``local_files_only``.

Weights are bf16 on CUDA and fp32 on CPU (``dtype`` overrides). :meth:`LanguageModel.step`
runs one forward pass with a KV cache and returns the last position's logits in fp32.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from workers.decoding import arith

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


class ModelNotFoundError(FileNotFoundError):
    """The model directory does not exist or is not a Hugging Face model directory."""


@dataclasses.dataclass
class LanguageModel:
    """A loaded causal LM, its tokenizer and what generation needs to know about them."""

    spec: str
    path: Path
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    stop_ids: tuple[int, ...]
    pad_id: int
    max_positions: int | None

    @property
    def is_builtin_arith(self) -> bool:
        """Whether this is one of the built-in arithmetic models."""
        return arith.is_builtin(self.spec)

    @property
    def num_parameters(self) -> int:
        """All parameters (embeddings included), the unit of EAD's compute accounting."""
        return sum(p.numel() for p in self.model.parameters())

    @property
    def vocab_size(self) -> int:
        """The width of the logits."""
        return int(self.model.get_output_embeddings().weight.shape[0])

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` (special tokens dropped)."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def covers(self, text: str) -> bool:
        """Whether the tokenizer encodes ``text`` without unknown tokens and decodes it back."""
        ids = self.encode(text)
        unk = getattr(self.tokenizer, "unk_token_id", None)
        if unk is not None and unk in ids:
            return False
        return self.decode(ids).strip() == text.strip()

    @torch.inference_mode()
    def step(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
             cache: Any = None) -> tuple[torch.Tensor, Any]:
        """One forward pass over ``input_ids`` (batch, new) after ``cache``.

        ``attention_mask`` covers the cached and the new positions (batch, past + new);
        returns the logits of the last new position (batch, vocab) in fp32 and the cache.
        The cache goes in and comes out under the name the installed transformers uses
        (``cache`` in transformers 5.24, ``past_key_values`` in earlier ones; see :func:`cache_argument`).
        """
        name = cache_argument(self.model)
        out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
                         position_ids=position_ids.to(self.device), use_cache=True, logits_to_keep=1,
                         **{name: cache})
        new_cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
        return out.logits[:, -1, :].float(), new_cache

    @torch.inference_mode()
    def token_logprobs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """log p(x_t | x_<t) for t ≥ 1 of each row (batch, length − 1), fp32, no cache."""
        position_ids = position_ids_from_mask(attention_mask)
        out = self.model(input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device),
                         position_ids=position_ids.to(self.device), use_cache=False)
        logp = torch.log_softmax(out.logits[:, :-1, :].float(), dim=-1)
        return logp.gather(-1, input_ids[:, 1:].to(self.device).unsqueeze(-1)).squeeze(-1).cpu()


def cache_argument(model: Any) -> str:
    """The keyword ``model.forward`` takes its KV cache by: ``cache`` where its signature
    names it (transformers 5.24 does, and deprecates ``past_key_values``), else
    ``past_key_values``. Remembered on the model."""
    name = getattr(model, "_atlas_cache_argument", None)
    if name is None:
        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            params = {}
        name = "cache" if "cache" in params else "past_key_values"
        with contextlib.suppress(AttributeError, TypeError):
            object.__setattr__(model, "_atlas_cache_argument", name)
    return str(name)


def position_ids_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over the attended tokens only (left padding gets position 1),
    as transformers' ``generate`` does."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``cpu``, ``cuda``, ``cuda:N`` (checked to exist), or None for CUDA when present."""
    if device is None:
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was asked for but CUDA is not available on this worker")
    return dev


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA, fp32 elsewhere."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def model_dir(spec: str, seed: int = 0) -> Path:
    """The local directory a model spec names (training a missing built-in first).

    Raises :class:`ModelNotFoundError` naming the path when it is not a model directory.
    """
    if arith.is_builtin(spec):
        return arith.builtin_dir(spec, seed=seed)
    if (problem := model_problem(spec)) is not None:
        raise ModelNotFoundError(problem)
    return Path(spec).expanduser()


def model_problem(spec: str) -> str | None:
    """Why ``spec`` names no model here, as :func:`model_dir` would refuse it: a ``builtin:``
    name that is not one (listing those there are), a local directory that does not exist
    or holds no ``config.json``; None where it names one. Nothing is loaded or trained:
    a campaign's check asks it before anything is written."""
    if arith.is_builtin(spec):
        return arith.builtin_problem(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        return (f"model directory {str(path)!r} does not exist (model: a local Hugging Face causal LM directory, "
                f"or one of {', '.join(arith.BUILTIN_PREFIX + n for n in arith.BUILTIN_MODELS)}; nothing is "
                "downloaded)")
    if not path.is_dir() or not (path / "config.json").is_file():
        return f"{str(path)!r} is not a Hugging Face model directory (no config.json in it)"
    return None


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Without transformers' "Loading weights" bar: a setup is one step of the run's own
    display (the spinner of ``atlas run``), and a refused setup's error stands alone."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_model(spec: str, device: str | torch.device | None = "cpu", dtype: str | torch.dtype | None = None,
               seed: int = 0) -> LanguageModel:
    """Load ``spec`` (``builtin:…`` or a local directory) onto ``device`` in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_dir(spec, seed=seed)
    dev = resolve_device(device)
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        dtype = DTYPES[dtype]
    torch_dtype = dtype or default_dtype(dev)
    try:
        with _quiet_loading():
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load a causal LM from {str(path)!r}: {exc}") from exc
    model.to(dev)
    model.eval()
    stop: list[int] = []
    for source in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        for token in source if isinstance(source, list | tuple) else [source]:
            if token is not None and int(token) not in stop:
                stop.append(int(token))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop[0] if stop else 0)
    config = model.config
    max_positions = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    return LanguageModel(spec=spec, path=path, model=model, tokenizer=tokenizer, device=dev, dtype=torch_dtype,
                         stop_ids=tuple(stop), pad_id=int(pad), max_positions=max_positions)


def check_compatible(small: LanguageModel, large: LanguageModel) -> None:
    """EAD's two models must share the vocabulary: same logit width and token ids."""
    if small.vocab_size != large.vocab_size:
        raise ValueError(f"EAD needs models with one vocabulary: {small.spec} has {small.vocab_size} logits, "
                         f"{large.spec} has {large.vocab_size}")
    if small.tokenizer.get_vocab() != large.tokenizer.get_vocab():
        raise ValueError(f"EAD needs models with one tokenizer: {small.spec} and {large.spec} map tokens differently")
