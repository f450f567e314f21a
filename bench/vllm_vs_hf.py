"""Tokens/s of the vLLM backend against HF generation on the same model and configuration.

Both sides decode the same prompts (``--prompts`` additions of the arithmetic task,
``--samples`` samples each, so one batch of prompts × samples sequences) for up to
``--tokens`` new tokens with the same :class:`~workers.decoding.SamplerConfig`:

- **hf**: this project's batched :func:`workers.decoding.generate` (KV cache, our sampler
  chain, entropies measured every step) and, beside it, transformers' own
  ``model.generate(do_sample=True, logits_processor=chain)`` on the same batch;
- **vllm**: :class:`workers.decoding.vllm_backend.VLLMEngine` (an in-process ``vllm.LLM``,
  native parameters or our rules as its logits processor, top-k logprobs for the entropy
  bounds).

Each side runs once untimed (CUDA graphs, caches), then ``--repeats`` times; the median
tokens/s are printed with the ratio vLLM / HF. Generated tokens are counted per sequence
up to and including its stop token.

Needs CUDA and vLLM (a GPU machine with the ``vllm`` wheel); without either it says which
is missing and exits 2. The default model is ``builtin:arith-tiny`` (tiny: the numbers then
show per-step overhead, not model speed); pass ``--model`` a local HF directory for a real
model, or ``--model random-gpt2`` for a GPT-2-small-shaped model (124 M parameters, 50,257
tokens, randomly initialised here with a word-level tokenizer: nothing is downloaded) whose
``--prompt-len`` random prompt tokens are followed by ``--tokens`` new ones (default 128);
``random-gpt2-medium`` and ``random-gpt2-large`` are GPT-2 medium's and large's shapes (355 M
and 774 M), where each step's GPU work is larger against the engine's per-request CPU work.
``--engine NAME=VALUE`` passes more ``vllm.LLM`` arguments (``attention_backend=TRITON_ATTN``,
``enforce_eager=true``); ``--unseeded`` lets vLLM draw from its engine's generator instead of
one seed per sequence (what the per-sequence seeds cost); ``--json PATH`` also writes the figures.

    python bench/vllm_vs_hf.py --sampler top_p --temperature 1.0
    python bench/vllm_vs_hf.py --model random-gpt2 --sampler typical --param typical_p=0.9 --prompts 64

The next lease's check, which tells apart the two candidate causes of vLLM's gap
(docs/benchmarks.md): the same model seeded and unseeded, then a larger one::

    for a in "" --unseeded; do python bench/vllm_vs_hf.py --model random-gpt2 --param top_p=0.9 \
        --engine attention_backend=TRITON_ATTN $a; done
    python bench/vllm_vs_hf.py --model random-gpt2-large --param top_p=0.9 --engine attention_backend=TRITON_ATTN
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repository on sys.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:arith-tiny")
    parser.add_argument("--sampler", default="top_p")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another decoding parameter (e.g. top_p=0.8), repeatable")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=None, help="max new tokens (default: the task's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--logprobs", type=int, default=20, help="vLLM top-k logprobs (-1: all)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--prompt-len", type=int, default=16, help="random-gpt2*: prompt tokens")
    parser.add_argument("--engine", action="append", default=[], metavar="NAME=VALUE",
                        help="another vllm.LLM argument (VALUE read as JSON where it parses), repeatable")
    parser.add_argument("--unseeded", action="store_true",
                        help="vLLM draws from its engine's generator, not one seed per sequence (what the seeds cost)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    from workers.decoding import vllm_backend

    missing = [] if torch.cuda.is_available() else ["CUDA (no GPU visible to torch)"]
    if not vllm_backend.vllm_available():
        missing.append(vllm_backend.missing_reason())
    if missing:
        print("vllm_vs_hf: cannot run here: " + "; ".join(missing), file=sys.stderr)
        return 2

    from workers.decoding.generate import Request, generate, left_pad
    from workers.decoding.models import load_model, model_dir
    from workers.decoding.samplers import SamplerConfig
    from workers.decoding.tasks import build_task

    params: dict[str, object] = {"sampler": args.sampler, "temperature": args.temperature}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name] = float(value) if value.replace(".", "", 1).replace("-", "", 1).isdigit() else value
    config = SamplerConfig.from_params(params)
    vllm_backend.check_supported(config)

    engine_kwargs = {name: _json_or_text(value) for name, _, value in (e.partition("=") for e in args.engine)}
    scratch = tempfile.TemporaryDirectory()
    synthetic = args.model in RANDOM_SIZES
    model = random_gpt2(Path(scratch.name), RANDOM_SIZES[args.model]) if synthetic else args.model
    lm = load_model(str(model), "cuda", args.dtype)
    if synthetic:
        draw = torch.Generator().manual_seed(0)
        vocab = int(lm.model.config.vocab_size)
        prompts = [torch.randint(0, vocab - 1, (args.prompt_len,), generator=draw).tolist()
                   for _ in range(args.prompts) for _ in range(args.samples)]
        tokens = args.tokens or 128
    else:
        task = build_task("arithmetic" if lm.is_builtin_arith else "continuation", lm, args.prompts, 0, {})
        prompts = [item.prompt_ids for item in task.items for _ in range(args.samples)]
        tokens = args.tokens or task.default_max_new_tokens
    longest = max(len(p) for p in prompts)
    if lm.max_positions:
        tokens = min(tokens, lm.max_positions - longest)

    def ours() -> int:
        (gen,) = generate(lm, [Request(config, prompts, 0)], tokens)
        return sum(gen.n_tokens)

    def transformers_generate() -> int:
        ids, mask = left_pad(prompts, lm.pad_id, lm.device)
        out = lm.model.generate(input_ids=ids, attention_mask=mask, do_sample=config.temperature > 0,
                                logits_processor=config.logits_processors(), max_new_tokens=tokens,
                                top_k=None, top_p=None, temperature=None, pad_token_id=lm.pad_id,
                                eos_token_id=list(lm.stop_ids))
        new = out[:, ids.shape[1]:]
        done = torch.isin(new, torch.tensor(list(lm.stop_ids), device=new.device))
        first = torch.where(done.any(-1), done.float().argmax(-1) + 1, torch.full_like(done[:, 0], new.shape[1],
                                                                                       dtype=torch.long))
        return int(first.sum())

    began = time.perf_counter()
    engine = vllm_backend.VLLMEngine(str(model_dir(str(model))), dtype=args.dtype, logprobs=args.logprobs,
                                     seeded=not args.unseeded, **engine_kwargs)
    engine_start = time.perf_counter() - began

    def vllm() -> int:
        (gen,) = engine.generate([Request(config, prompts, 0)], tokens, lm.stop_ids)
        return sum(gen.n_tokens)

    def rate(fn: object) -> float:
        fn()  # type: ignore[operator]
        rates = []
        for _ in range(args.repeats):
            torch.cuda.synchronize()
            began = time.perf_counter()
            count = fn()  # type: ignore[operator]
            torch.cuda.synchronize()
            rates.append(count / (time.perf_counter() - began))
        return statistics.median(rates)

    results = {"hf (ours, entropies measured)": rate(ours), "hf (transformers generate)": rate(transformers_generate),
               "vllm": rate(vllm)}
    engine.close()
    path = "native" if vllm_backend.is_native(config) else "logits processor"
    print(f"model {args.model} on {torch.cuda.get_device_name(0)}, {len(prompts)} sequences, up to {tokens} "
          f"new tokens, config {config.to_dict()['sampler']} T={config.temperature}, {path} on vLLM "
          f"(engine start {engine_start:.1f} s, arguments {engine_kwargs or 'default'}"
          f"{', unseeded' if args.unseeded else ''})")
    for name, value in results.items():
        print(f"  {name:32s} {value:12.0f} tokens/s")
    ratios = {"vllm / hf (ours)": results["vllm"] / results["hf (ours, entropies measured)"],
              "vllm / transformers": results["vllm"] / results["hf (transformers generate)"]}
    for name, value in ratios.items():
        print(f"  ratio {name:26s} {value:12.2f}")
    if args.json:
        record = {"model": args.model, "device": torch.cuda.get_device_name(0), "sequences": len(prompts),
                  "max_new_tokens": tokens, "config": config.to_dict(), "vllm_path": path,
                  "engine": engine_kwargs, "seeded": not args.unseeded, "engine_start_s": engine_start,
                  "tokens_per_s": results, "ratios": ratios}
        with args.json.open("a") as out:
            out.write(json.dumps(record) + "\n")
    scratch.cleanup()
    return 0


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


# GPT-2's shapes (layers, width, heads): small 124 M parameters, medium 355 M, large 774 M
RANDOM_SIZES = {"random-gpt2": (12, 768, 12), "random-gpt2-medium": (24, 1024, 16), "random-gpt2-large": (36, 1280, 20)}


def random_gpt2(path: Path, shape: tuple[int, int, int] = RANDOM_SIZES["random-gpt2"], seed: int = 0) -> Path:
    """A GPT-2-shaped causal LM (``shape``: layers, width, heads; 50,257 tokens, 1,024
    positions) with random weights and a word-level tokenizer (token ``t<i>`` is id i),
    saved under ``path``: speed figures at a real size without downloading a model."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    vocab = 50257
    layers, width, heads = shape
    config = GPT2Config(vocab_size=vocab, bos_token_id=vocab - 1, eos_token_id=vocab - 1, n_layer=layers,
                        n_embd=width, n_head=heads)
    GPT2LMHeadModel(config).save_pretrained(path)
    words = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    PreTrainedTokenizerFast(tokenizer_object=words, eos_token=f"t{vocab - 1}", unk_token="t0").save_pretrained(path)
    return path


if __name__ == "__main__":
    raise SystemExit(main())
