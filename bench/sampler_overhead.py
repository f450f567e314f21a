"""Sampler overhead per decoding step, side by side with transformers' ``generate`` sampling path.

One step turns a ``batch × vocab`` float32 logit matrix (default 64 × 50,257, GPT-2's
vocabulary) into one token per row:

- **transformers**: the ``LogitsProcessorList`` that ``GenerationMixin._get_logits_processor``
  builds for the same ``GenerationConfig(do_sample=True, …)``, applied to an fp32 copy of
  the logits as ``generate`` does, then ``softmax`` and ``multinomial`` — exactly the
  per-token work of ``generate``'s sampling loop, without the model.
- **ours**: :class:`workers.decoding.Sampler` on the same logits, twice: ``measure=False``
  (the chain, the draw, Mirostat's μ update and the token's log-probability) and
  ``measure=True`` (also the model, tempered and sampling entropies and the kept-set size,
  what the ``decoding`` evaluator records every step).

Mirostat v1/v2 and EAD have no transformers processor; their rows are compared with the
transformers path of plain temperature sampling (marked "temp only"). EAD's row is its
switching overhead: a measured step (EAD needs the model entropy) plus
:meth:`EADController.observe`; the second model's forward pass is model cost, not sampler
overhead, and is not included.

Logits are Zipf-shaped (p_i ∝ rank^−1.1, shuffled per row) plus Gaussian noise, so the
truncations keep realistic set sizes. Each row is the median of ``--repeats`` timed steps
after ``--warmup`` untimed ones; ours and transformers' steps alternate, so load from other
jobs hits both alike.

With CUDA (``--device cuda``, the default when a GPU is present), the steps are timed on
the GPU (synchronised) and a batched generation follows: a randomly initialised GPT-2
with vocabulary 50,257 (no download), ``--gen-batch`` prompts of ``--gen-prompt`` tokens,
``--gen-tokens`` new tokens, bf16, with our ``generate`` and with transformers'
``model.generate`` on the same GenerationConfig; tokens/s and the GPU's name are printed.
``--generation`` runs that part on the CPU too (slowly; fp32).

    python bench/sampler_overhead.py [--batch 64] [--vocab 50257] [--repeats 15] [--warmup 3]
                                     [--threads 1] [--device cpu|cuda] [--generation]
                                     [--gen-batch 64] [--gen-tokens 64] [--gen-layers 12]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import torch
from transformers import GenerationConfig

from workers.decoding import EADController, Request, Sampler, SamplerConfig, generate
from workers.decoding.models import LanguageModel
from workers.decoding.samplers import LN2


@dataclasses.dataclass
class Case:
    """One table row: our configuration and the GenerationConfig of the transformers peer."""

    label: str
    ours: dict[str, Any]
    hf: dict[str, Any]
    peer_note: str = ""
    ead: bool = False


T = 0.8


def cases() -> list[Case]:
    """Every sampler at a typical setting, temperature 0.8 (added to both sides), ``order: hf``."""
    temp_only: dict[str, Any] = {}
    return [
        Case("none (temperature 0.8)", {"sampler": "none"}, temp_only),
        Case("top_k = 50", {"sampler": "top_k", "top_k": 50}, {"top_k": 50}),
        Case("top_p = 0.9", {"sampler": "top_p", "top_p": 0.9}, {"top_p": 0.9}),
        Case("min_p = 0.05", {"sampler": "min_p", "min_p": 0.05}, {"min_p": 0.05}),
        Case("typical_p = 0.9", {"sampler": "typical", "typical_p": 0.9}, {"typical_p": 0.9}),
        Case("epsilon_cutoff = 3e-4", {"sampler": "epsilon", "epsilon_cutoff": 3e-4}, {"epsilon_cutoff": 3e-4}),
        Case("eta_cutoff = 3e-4", {"sampler": "eta", "eta_cutoff": 3e-4}, {"eta_cutoff": 3e-4}),
        Case("top_h = 0.4 (variant hf)", {"sampler": "top_h", "top_h": 0.4, "top_h_variant": "hf"}, {"top_h": 0.4}),
        Case("top_h = 0.4 (variant paper)", {"sampler": "top_h", "top_h": 0.4, "top_h_variant": "paper"},
             {"top_h": 0.4}, "transformers' TopH"),
        Case("mirostat (τ 5, η 0.1, m 100)", {"sampler": "mirostat"}, temp_only, "temp only"),
        Case("mirostat_v2 (τ 5, η 0.1)", {"sampler": "mirostat_v2"}, temp_only, "temp only"),
        Case("ead switching (w 5, d_min 5)", {"sampler": "ead"}, temp_only, "temp only", ead=True),
    ]


def make_logits(batch: int, vocab: int, device: str, seed: int = 0) -> torch.Tensor:
    """Zipf-shaped logits (exponent 1.1, a random permutation per row) plus N(0, 0.3²) noise."""
    gen = torch.Generator().manual_seed(seed)
    base = -1.1 * torch.log(torch.arange(1, vocab + 1, dtype=torch.float32))
    order = torch.argsort(torch.rand(batch, vocab, generator=gen), dim=-1)
    logits = base[order] + 0.3 * torch.randn(batch, vocab, generator=gen)
    return logits.to(device)


def transformers_chain(model: Any, **kwargs: Any) -> Any:
    """The LogitsProcessorList ``model.generate(do_sample=True, **kwargs)`` would build
    (transformers' default ``top_k = 50`` is switched off unless asked for)."""
    config = GenerationConfig(do_sample=True, **{"top_k": None, **kwargs})
    return model._get_logits_processor(generation_config=config, input_ids_seq_length=1, encoder_input_ids=None,
                                       prefix_allowed_tokens_fn=None, logits_processor=None,
                                       device=str(model.device), model_kwargs={})


def sync(device: str) -> None:
    """Wait for the GPU (no-op on CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> float:
    """Seconds of one call of ``fn``."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def bench_case(case: Case, model: Any, logits: torch.Tensor, input_ids: torch.Tensor, repeats: int, warmup: int,
               device: str) -> tuple[float, float, float]:
    """Median seconds per step: (ours measure=False, ours measure=True, transformers)."""
    config = SamplerConfig.from_params({**case.ours, "temperature": T})
    fast, full = Sampler(config), Sampler(config)
    chain = transformers_chain(model, temperature=T, **case.hf)
    hf_gen = torch.Generator(device=device).manual_seed(0)
    gens = [torch.Generator(device=device).manual_seed(s) for s in (1, 2)]
    controller = EADController(logits.shape[0], 1.0, 5, 5, device=device) if case.ead else None

    def theirs() -> torch.Tensor:
        scores = chain(input_ids, logits.to(copy=True, dtype=torch.float32))
        probs = torch.softmax(scores, dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=hf_gen).squeeze(1)

    def ours_fast() -> torch.Tensor:
        out = fast(logits, generator=gens[0], measure=controller is not None)
        if controller is not None:
            controller.observe(out.model_entropy / LN2)
        return out.tokens

    def ours_full() -> torch.Tensor:
        out = full(logits, generator=gens[1], measure=True)
        if controller is not None:
            controller.observe(out.model_entropy / LN2)
        return out.tokens

    for _ in range(warmup):
        theirs()
        ours_fast()
        ours_full()
    t_fast, t_full, t_hf = [], [], []
    for _ in range(repeats):
        t_hf.append(timed(theirs, device))
        t_fast.append(timed(ours_fast, device))
        t_full.append(timed(ours_full, device))
    return statistics.median(t_fast), statistics.median(t_full), statistics.median(t_hf)


# --------------------------------------------------------------------------- generation


def random_gpt2(vocab: int, layers: int, device: str) -> LanguageModel:
    """A randomly initialised GPT-2 (width 768, 12 heads, ``layers`` layers) wrapped as a
    :class:`LanguageModel` without a tokenizer; no end-of-sequence token, so every row
    generates the same number of tokens."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab, n_positions=1024, n_embd=768, n_layer=layers, n_head=12,
                        eos_token_id=None, bos_token_id=None, pad_token_id=0)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = GPT2LMHeadModel(config).to(device=device, dtype=dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return LanguageModel(spec="random-gpt2", path=Path("."), model=model, tokenizer=None, device=torch.device(device),
                         dtype=dtype, stop_ids=(), pad_id=0, max_positions=1024)


def bench_generation(args: argparse.Namespace, device: str) -> list[tuple[str, float, float]]:
    """(label, tokens/s ours, tokens/s transformers) of a batched generation."""
    lm = random_gpt2(args.vocab, args.gen_layers, device)
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(1, args.vocab, (args.gen_batch, args.gen_prompt), generator=gen)
    rows = prompts.tolist()
    ids, mask = prompts.to(device), torch.ones_like(prompts).to(device)
    results = []
    for label, ours, hf in [("top_p = 0.9, T 0.8", {"sampler": "top_p", "top_p": 0.9}, {"top_p": 0.9}),
                            ("min_p = 0.05, T 0.8", {"sampler": "min_p", "min_p": 0.05}, {"min_p": 0.05})]:
        config = SamplerConfig.from_params({**ours, "temperature": T})

        def run_ours(cfg: SamplerConfig = config) -> None:
            generate(lm, [Request(cfg, rows, 0)], args.gen_tokens)

        def run_hf(kwargs: dict[str, Any] = hf) -> None:
            with torch.inference_mode():
                lm.model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=T, top_k=None,
                                  max_new_tokens=args.gen_tokens, min_new_tokens=args.gen_tokens,
                                  pad_token_id=0, **kwargs)

        run_ours()  # warm-up (CUDA kernels, allocator)
        run_hf()
        t_ours, t_hf = [], []
        for _ in range(args.gen_repeats):
            t_ours.append(timed(run_ours, device))
            t_hf.append(timed(run_hf, device))
        n = args.gen_batch * args.gen_tokens
        results.append((label, n / statistics.median(t_ours), n / statistics.median(t_hf)))
        print(f"generation {label:22s} ours {results[-1][1]:10.0f} tok/s   transformers {results[-1][2]:10.0f} tok/s",
              flush=True)
    return results


def machine(device: str) -> str:
    """The device in words: the GPU's name, or the CPU model and thread count."""
    if device.startswith("cuda"):
        return f"GPU {torch.cuda.get_device_name(torch.device(device))} (CUDA {torch.version.cuda})"
    return f"CPU {_common.cpu_name()}, {os.cpu_count()} cores visible, {torch.get_num_threads()} intra-op thread(s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads on CPU (0: leave as is)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--generation", action="store_true", help="also time a batched generation on the CPU")
    parser.add_argument("--gen-batch", type=int, default=64)
    parser.add_argument("--gen-prompt", type=int, default=16)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--gen-layers", type=int, default=12)
    parser.add_argument("--gen-repeats", type=int, default=3)
    args = parser.parse_args()

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: CUDA is not available here")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from workers.decoding.models import load_model

    model = load_model("builtin:arith-tiny", device).model  # any GenerationMixin builds the same list
    logits = make_logits(args.batch, args.vocab, device)
    input_ids = torch.zeros((args.batch, 8), dtype=torch.long, device=device)
    print(f"{machine(device)}; torch {torch.__version__}; batch {args.batch} × vocab {args.vocab}; "
          f"median of {args.repeats} steps after {args.warmup} warm-up", flush=True)

    rows = []
    for case in cases():
        fast, full, hf = bench_case(case, model, logits, input_ids, args.repeats, args.warmup, device)
        rows.append((case, fast, full, hf))
        print(f"{case.label:32s} ours {fast * 1e3:8.2f} ms  ours+measures {full * 1e3:8.2f} ms  "
              f"transformers {hf * 1e3:8.2f} ms  ratio {fast / hf:5.2f}", flush=True)

    lines = ["| sampler | ours (chain + draw) | ours + measures | transformers `generate` path | "
             "ours / transformers | ours + measures / transformers |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for case, fast, full, hf in rows:
        note = f" ({case.peer_note})" if case.peer_note else ""
        lines.append(f"| {case.label} | {fast * 1e3:.2f} ms | {full * 1e3:.2f} ms | {hf * 1e3:.2f} ms{note} | "
                     f"{fast / hf:.2f} | {full / hf:.2f} |")
    print()
    print("\n".join(lines))

    if device.startswith("cuda") or args.generation:
        print(f"\nbatched generation on {machine(device)}: random GPT-2, {args.gen_layers} layers × 768, vocab "
              f"{args.vocab}, batch {args.gen_batch}, prompt {args.gen_prompt}, {args.gen_tokens} new tokens, "
              f"median of {args.gen_repeats}", flush=True)
        gen_rows = bench_generation(args, device)
        print("\n| configuration | ours `generate` | transformers `model.generate` | ours / transformers |")
        print("| --- | ---: | ---: | ---: |")
        for label, ours, hf in gen_rows:
            print(f"| {label} | {ours:,.0f} tok/s | {hf:,.0f} tok/s | {ours / hf:.2f} |")
    else:
        print("\n(no CUDA device: the batched-generation tokens/s on a GPU was not measured; "
              "pass --generation to run it on the CPU)")


if __name__ == "__main__":
    main()
