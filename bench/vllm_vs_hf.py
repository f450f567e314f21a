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
model.

    python bench/vllm_vs_hf.py --sampler top_p --temperature 1.0
    python bench/vllm_vs_hf.py --model /models/gpt2 --sampler typical --prompts 64 --tokens 128
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

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

    lm = load_model(args.model, "cuda", args.dtype)
    task = build_task("arithmetic" if lm.is_builtin_arith else "continuation", lm, args.prompts, 0, {})
    prompts = [item.prompt_ids for item in task.items for _ in range(args.samples)]
    longest = max(len(p) for p in prompts)
    tokens = args.tokens or task.default_max_new_tokens
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

    engine = vllm_backend.VLLMEngine(str(model_dir(args.model)), dtype=args.dtype, logprobs=args.logprobs)

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
    print(f"model {args.model} on {torch.cuda.get_device_name(0)}, {len(prompts)} sequences, up to {tokens} "
          f"new tokens, config {config.to_dict()['sampler']} T={config.temperature}, "
          f"{'native' if vllm_backend.is_native(config) else 'logits processor'} on vLLM")
    for name, value in results.items():
        print(f"  {name:32s} {value:12.0f} tokens/s")
    print(f"  ratio vllm / hf (ours)           {results['vllm'] / results['hf (ours, entropies measured)']:12.2f}")
    print(f"  ratio vllm / transformers        {results['vllm'] / results['hf (transformers generate)']:12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
