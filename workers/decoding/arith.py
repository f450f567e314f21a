"""The built-in arithmetic language models (``builtin:arith-tiny``, ``builtin:arith-nano``).

A real ``transformers`` GPT-2 (``GPT2LMHeadModel``) trained by this module on generated
two-digit additions, nanoGPT style: the data, the model and the loop fit on one page.

Format (one character per token, 14 symbols)::

    prompt  "07+85="            both operands zero-padded to ``digits`` digits
    answer  "29"  <eos>         the sum 92 with its digits reversed (least significant first)

Writing the answer least-significant digit first lets the model produce each digit right
after the two digits (and the carry) it depends on: with the answer written normally a
model of this size reaches about 22 % greedy accuracy in the same time, reversed it
reaches well over 90 % (see the project's field notes). The loss is taken on the answer
digits and the end-of-sequence token only; the operands are uniform noise to the model.

Problems are split once and for all: a fixed 10 % of the 10,000 two-digit problems
(:func:`heldout_problems`) is never trained on, and the ``arithmetic`` task evaluates on
it, so accuracy measures generalisation, not memory.

Sizes::

    tiny   3 layers, width 128, 4 heads   ~0.6 M parameters (the model of campaigns)
    nano   1 layer,  width 32,  2 heads   ~0.02 M parameters (EAD's small model)
    tiny-rl  tiny trained for 250 steps instead of 700: moderately accurate, the
             starting policy of the ``entropy_rl`` evaluator (RL has room to improve it)

Training is deterministic for a seed (fixed thread count, deterministic algorithms): the
same seed on the same machine gives the same weights bit for bit. The checkpoints made
by ``python -m workers.decoding.train_arith`` are checked in under ``workers/data/``; when
a requested checkpoint is missing (another seed, or a source tree without the data) it is
trained on first use and cached under ``$ENTROPY_ATLAS_CACHE`` (default
``~/.cache/entropy-atlas``), behind a file lock so that concurrent workers train it once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

DIGITS = "0123456789"
SYMBOLS = (*DIGITS, "+", "=")
EOS_TOKEN = "<eos>"
UNK_TOKEN = "<unk>"
EOS_ID = len(SYMBOLS)  # 12
UNK_ID = EOS_ID + 1  # 13
VOCAB_SIZE = UNK_ID + 1  # 14
PLUS_ID = SYMBOLS.index("+")
EQUALS_ID = SYMBOLS.index("=")

BUILTIN_PREFIX = "builtin:"
PACKAGED_DATA = Path(__file__).resolve().parents[1] / "data"
HELDOUT_FRACTION = 0.1
HELDOUT_SEED = 20_251_122  # fixed forever: changing it changes which problems are held out


@dataclasses.dataclass(frozen=True)
class ArithSize:
    """Architecture and optimisation of one built-in size."""

    n_layer: int
    n_embd: int
    n_head: int
    steps: int
    batch_size: int = 128
    lr: float = 3e-3
    warmup: int = 100
    weight_decay: float = 0.01


SIZES: dict[str, ArithSize] = {
    "tiny": ArithSize(n_layer=3, n_embd=128, n_head=4, steps=700),
    "nano": ArithSize(n_layer=1, n_embd=32, n_head=2, steps=400),
    # tiny stopped early: ~85 % greedy but ~40 % sampled accuracy, room for RL (workers/rl)
    "tiny-rl": ArithSize(n_layer=3, n_embd=128, n_head=4, steps=250),
}
BUILTIN_MODELS = {f"arith-{size}": size for size in SIZES}


# --------------------------------------------------------------------------- data


def encode(text: str) -> list[int]:
    """Token ids of ``text`` (digits, ``+``, ``=``; anything else is ``<unk>``)."""
    return [SYMBOLS.index(c) if c in SYMBOLS else UNK_ID for c in text]


def decode(ids: Sequence[int]) -> str:
    """The text of ``ids``, stopping at the first ``<eos>``; ``<unk>`` shows as ``?``."""
    out = []
    for i in ids:
        if i == EOS_ID:
            break
        out.append(SYMBOLS[i] if 0 <= i < len(SYMBOLS) else "?")
    return "".join(out)


def prompt_text(a: int, b: int, digits: int = 2) -> str:
    """``"aa+bb="`` with both operands zero-padded to ``digits`` digits."""
    return f"{a:0{digits}d}+{b:0{digits}d}="


def answer_text(a: int, b: int, reverse: bool = True) -> str:
    """The sum's decimal digits, least significant first when ``reverse``."""
    s = str(a + b)
    return s[::-1] if reverse else s


def all_problems(digits: int = 2) -> np.ndarray:
    """Every (a, b) with ``digits``-digit operands, shape (10**(2 digits), 2), in order."""
    n = 10**digits
    a, b = np.divmod(np.arange(n * n), n)
    return np.stack([a, b], axis=1)


def heldout_problems(digits: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The fixed (train, held-out) split of :func:`all_problems`: 10 % held out."""
    problems = all_problems(digits)
    perm = np.random.default_rng(HELDOUT_SEED).permutation(len(problems))
    n_held = round(HELDOUT_FRACTION * len(problems))
    held = np.sort(perm[:n_held])
    train = np.sort(perm[n_held:])
    return problems[train], problems[held]


def sequences(problems: np.ndarray, digits: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Training tensors: ``input_ids`` (prompt, reversed answer, ``<eos>``, padded with
    ``<eos>``) and ``labels`` (the answer and its first ``<eos>``; -100 elsewhere)."""
    prompt_len = 2 * digits + 2
    max_len = prompt_len + digits + 2  # the longest answer has digits+1 characters, then <eos>
    ids = torch.full((len(problems), max_len), EOS_ID, dtype=torch.long)
    labels = torch.full((len(problems), max_len), -100, dtype=torch.long)
    for row, (a, b) in enumerate(problems.tolist()):
        seq = [*encode(prompt_text(a, b, digits) + answer_text(a, b)), EOS_ID]
        ids[row, : len(seq)] = torch.tensor(seq)
        labels[row, prompt_len : len(seq)] = torch.tensor(seq[prompt_len:])
    return ids, labels


# --------------------------------------------------------------------------- model


def build_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` over the 14 symbols (one character, one token), so
    that a checkpoint directory is an ordinary Hugging Face model directory."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(SYMBOLS)}
    vocab[EOS_TOKEN] = EOS_ID
    vocab[UNK_TOKEN] = UNK_ID
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN,
                                   unk_token=UNK_TOKEN, model_max_length=32)


def build_model(size: str, seed: int) -> Any:
    """A freshly initialised ``GPT2LMHeadModel`` of ``size`` (seeded)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    spec = SIZES[size]
    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=32, n_embd=spec.n_embd, n_layer=spec.n_layer,
        n_head=spec.n_head, n_inner=4 * spec.n_embd, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, bos_token_id=EOS_ID, eos_token_id=EOS_ID, pad_token_id=EOS_ID,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


@contextlib.contextmanager
def deterministic_cpu(num_threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic algorithms for the duration."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


@torch.no_grad()
def greedy_accuracy(model: Any, problems: np.ndarray, digits: int = 2, batch_size: int = 1024) -> float:
    """Exact-match accuracy of greedy decoding: the generated text up to ``<eos>`` must
    equal the reversed sum, followed by ``<eos>`` within ``digits + 2`` tokens."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    for start in range(0, len(problems), batch_size):
        chunk = problems[start : start + batch_size]
        ids = torch.tensor([encode(prompt_text(a, b, digits)) for a, b in chunk.tolist()], device=device)
        out = ids
        for _ in range(digits + 2):
            logits = model(input_ids=out).logits[:, -1, :]
            out = torch.cat([out, logits.argmax(-1, keepdim=True)], dim=1)
        gen = out[:, ids.shape[1] :].tolist()
        for (a, b), g in zip(chunk.tolist(), gen, strict=True):
            correct += EOS_ID in g and decode(g) == answer_text(a, b)
    return correct / max(len(problems), 1)


@dataclasses.dataclass
class TrainReport:
    """What a training run measured."""

    size: str
    seed: int
    steps: int
    seconds: float
    final_loss: float
    heldout_accuracy: float
    train_accuracy: float
    parameters: int
    num_threads: int


def train(size: str = "tiny", seed: int = 0, steps: int | None = None, num_threads: int = 2,
          log_every: int = 0) -> tuple[Any, TrainReport]:
    """Train a built-in model; return it (eval mode, CPU) and its report.

    AdamW (β = (0.9, 0.95), weight decay on matrices only), linear warm-up then cosine
    decay to 0, batches of problems drawn uniformly (with replacement, seeded) from the
    training split, cross-entropy on the answer tokens and the first ``<eos>``.
    """
    if size not in SIZES:
        raise ValueError(f"unknown arith model size {size!r} (known: {', '.join(SIZES)})")
    spec = SIZES[size]
    steps = spec.steps if steps is None else steps
    train_set, held_set = heldout_problems()
    ids, labels = sequences(train_set)
    with deterministic_cpu(num_threads):
        model = build_model(size, seed)
        model.train()
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wpe" not in n]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or "wpe" in n]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95))

        def lr_at(step: int) -> float:
            if step < spec.warmup:
                return spec.lr * (step + 1) / spec.warmup
            progress = (step - spec.warmup) / max(steps - spec.warmup, 1)
            return spec.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        loss_value = float("nan")
        for step in range(steps):
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            rows = torch.randint(len(ids), (spec.batch_size,), generator=gen)
            loss = model(input_ids=ids[rows], labels=labels[rows]).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            loss_value = float(loss.detach())
            if log_every and (step % log_every == 0 or step == steps - 1):
                acc = greedy_accuracy(model, held_set[:200])
                model.train()
                print(f"step {step:5d}  loss {loss_value:.4f}  lr {lr_at(step):.2e}  held-out acc (200) "
                      f"{acc:.3f}  {time.perf_counter() - start:6.1f} s", flush=True)
        seconds = time.perf_counter() - start
        model.eval()
        held_acc = greedy_accuracy(model, held_set)
        sub = train_set[np.random.default_rng(seed).choice(len(train_set), 1000, replace=False)]
        train_acc = greedy_accuracy(model, sub)
    report = TrainReport(size=size, seed=seed, steps=steps, seconds=seconds, final_loss=loss_value,
                         heldout_accuracy=held_acc, train_accuracy=train_acc,
                         parameters=sum(p.numel() for p in model.parameters()), num_threads=num_threads)
    return model, report


def save(model: Any, report: TrainReport, out_dir: str | Path) -> Path:
    """Write a Hugging Face model directory (weights, config, tokenizer, ``train_info.json``)
    atomically: into a sibling temporary directory, then renamed into place."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        build_tokenizer().save_pretrained(tmp)
        (tmp / "train_info.json").write_text(json.dumps(dataclasses.asdict(report), indent=2) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; checkpoints are shared data
        for f in tmp.iterdir():
            f.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


# --------------------------------------------------------------------------- resolution


def cache_root() -> Path:
    """Where checkpoints trained on first use are cached."""
    env = os.environ.get("ENTROPY_ATLAS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "entropy-atlas"


def _complete(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file() and (
        path / "tokenizer.json").is_file()


def is_builtin(spec: str) -> bool:
    """Whether a model spec names a built-in model (``builtin:…``)."""
    return spec.startswith(BUILTIN_PREFIX)


def builtin_problem(spec: str) -> str | None:
    """Why ``spec`` (``builtin:NAME``, or ``NAME``) names no built-in model, in the words
    every evaluator uses (:func:`workers.builtin_models.builtin_model_problem`: the ones
    there are, and the one probably meant); None where it names one. Nothing is trained or read."""
    from workers.builtin_models import builtin_model_problem

    return builtin_model_problem(spec if is_builtin(spec) else BUILTIN_PREFIX + spec)


def builtin_dir(spec: str, seed: int = 0, train_if_missing: bool = True) -> Path:
    """The checkpoint directory of ``builtin:arith-tiny`` / ``builtin:arith-nano``.

    Seed 0 is checked in under ``workers/data/<name>/``. Any other seed, or a missing
    checked-in copy, comes from the cache, trained there on first use.
    """
    name = spec[len(BUILTIN_PREFIX) :] if is_builtin(spec) else spec
    if (problem := builtin_problem(spec)) is not None:
        raise ValueError(problem)
    packaged = PACKAGED_DATA / name
    if seed == 0 and _complete(packaged):
        return packaged
    cached = cache_root() / "models" / f"{name}-seed{seed}"
    if _complete(cached):
        return cached
    if not train_if_missing:
        raise FileNotFoundError(f"no checkpoint for {spec} (seed {seed}) at {packaged} or {cached}")
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.parent / f".{cached.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be training it: wait, then reuse
        if not _complete(cached):
            model, report = train(BUILTIN_MODELS[name], seed=seed, num_threads=min(2, os.cpu_count() or 1))
            save(model, report, cached)
    return cached
