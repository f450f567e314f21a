"""GRPO steps per second of the ``entropy_rl`` trainer on the built-in arithmetic models.

One step = a rollout of ``prompts × group`` completions (KV-cached sampling), the
no-grad log-prob pass, and ``ppo_epochs × num_minibatches`` AdamW updates, as in
:mod:`workers.rl.trainer`. Each row: ``--steps`` timed steps after ``--warmup`` untimed
ones, for the vanilla loss, Clip-Cov, KL-Cov, the entropy bonus and AEPO (which samples
a quarter of the prompts again). CPU with ``--threads`` torch threads, and CUDA when it
is available (or ``--device``).

    python bench/rl_steps.py [--model builtin:arith-tiny-rl] [--steps 20] [--warmup 3]
                             [--threads 1] [--prompts 8] [--group 8] [--device cpu,cuda]
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import _common  # noqa: F401
import torch

from workers.decoding.models import load_model
from workers.decoding.tasks import ArithmeticTask
from workers.rl import GRPOConfig, GRPOTrainer

VARIANTS: dict[str, dict[str, object]] = {
    "vanilla GRPO": {},
    "clip-higher + Clip-Cov": {"eps_high": 0.28, "loss_mode": "clip_cov", "clip_cov_ratio": 0.002},
    "KL-Cov": {"loss_mode": "kl_cov", "kl_cov_ratio": 0.002},
    "entropy bonus (adaptive)": {"entropy_coef": 0.01, "adaptive_entropy": True},
    "AEPO": {"aepo": True},
}


def bench(model: str, device: str, variant: dict[str, object], steps: int, warmup: int, prompts: int,
          group: int) -> tuple[float, float]:
    """(steps per second, response tokens per second) of ``variant``."""
    lm = load_model(model, device, "float32")
    task = ArithmeticTask(lm, 128)
    cfg = GRPOConfig(steps=steps, prompts_per_step=prompts, group_size=group, **variant)  # type: ignore[arg-type]
    trainer = GRPOTrainer(lm, task.items, lambda item, text: float(task.correct(item, text)), cfg,
                          max_new_tokens=task.default_max_new_tokens, seed=0)
    trainer.train(warmup)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    began = time.perf_counter()
    history = trainer.train(steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    return steps / seconds, sum(s.tokens for s in history) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin:arith-tiny-rl")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--device", default=None, help="comma-separated (default: cpu, and cuda when available)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    devices = args.device.split(",") if args.device else ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    print(f"{args.model}, {args.prompts} prompts x {args.group} completions per step, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, {args.threads} CPU thread(s)")
    print("| device | variant | RL steps/s | response tokens/s |")
    print("| --- | --- | --- | --- |")
    for device in devices:
        name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "CPU"
        for label, variant in VARIANTS.items():
            rate, tok_rate = bench(args.model, device, variant, args.steps, args.warmup, args.prompts, args.group)
            print(f"| {name} | {label} | {rate:.2f} | {tok_rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
