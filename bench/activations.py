"""Forward+backward time of CRReLU, the family and a parsed symbolic activation vs GELU.

One step = ``y = act(x); y.backward(g)`` on a ``size × size`` float32 tensor (4096² =
16.8 M elements) with ``x.requires_grad``; the learnable scalars (CRReLU's ε, the
family's c_k when ``learnable``) get their gradients too, as in training. Each row is
the median of ``--repeats`` timed steps after ``--warmup`` untimed ones, eager and under
``torch.compile`` (inductor), with the ratio to GELU's eager time. Compilation time is
reported separately and not counted in the step time.

    python bench/activations.py [--size 4096] [--repeats 7] [--warmup 2] [--device cpu]
                                [--no-compile] [--out docs/benchmarks/activations.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import _common
import torch
from torch import nn

from workers.activations import CRReLU, GaussianPolyActivation, parse_activation

ROOT = Path(__file__).resolve().parents[1]
SYMBOLIC = "x*sigmoid(1.7*x) + 0.01*x*exp(-x**2/2)"
SYMBOLIC_CRRELU = "relu(x) + 0.01*x*exp(-x**2/2)"


def candidates() -> dict[str, Callable[[], nn.Module]]:
    return {
        "GELU (reference)": nn.GELU,
        "ReLU": nn.ReLU,
        "CRReLU (learnable ε)": lambda: CRReLU(0.01, learnable=True),
        "family K=3 (fixed c)": lambda: GaussianPolyActivation([0.01, 0.1, -0.05], learnable=False),
        "family K=3 (learnable c)": lambda: GaussianPolyActivation([0.01, 0.1, -0.05], learnable=True),
        f"symbolic `{SYMBOLIC_CRRELU}`": lambda: parse_activation(SYMBOLIC_CRRELU),
        f"symbolic `{SYMBOLIC}`": lambda: parse_activation(SYMBOLIC),
    }


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    grad: torch.Tensor,
    warmup: int,
    repeats: int,
    device: str,
) -> tuple[float, float]:
    """(seconds of the first call, median seconds per step afterwards)."""

    def step() -> None:
        x.grad = None
        fn(x).backward(grad)

    sync(device)
    start = time.perf_counter()
    step()
    sync(device)
    first = time.perf_counter() - start
    for _ in range(max(0, warmup - 1)):
        step()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks" / "activations.md",
        help="write the Markdown report here ('-' to skip)",
    )
    args = parser.parse_args()

    device = args.device
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.size, args.size, generator=gen).to(device).requires_grad_()
    grad = torch.randn(args.size, args.size, generator=gen).to(device)

    rows = []
    for name, make in candidates().items():
        module = make().to(device)
        _, eager = time_steps(module, x, grad, args.warmup, args.repeats, device)
        compiled_s = compile_s = None
        if not args.no_compile:
            torch._dynamo.reset()
            compiled = torch.compile(module)
            compile_s, compiled_s = time_steps(compiled, x, grad, args.warmup, args.repeats, device)
        rows.append((name, eager, compiled_s, compile_s))
        shown = f"{compiled_s * 1e3:8.1f} ms compiled" if compiled_s else ""
        print(f"{name:55s} {eager * 1e3:8.1f} ms eager {shown}", flush=True)

    gelu = rows[0][1]
    gelu_best = min(t for t in (rows[0][1], rows[0][2]) if t)
    lines = [
        "| activation | eager fwd+bwd | × GELU eager | compiled fwd+bwd | × GELU eager | compile helps? "
        "| compile time |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for name, eager, compiled_s, compile_s in rows:
        if compiled_s is None or compile_s is None:
            lines.append(f"| {name} | {eager * 1e3:.1f} ms | {eager / gelu:.2f} | — | — | not run | — |")
            continue
        helps = "yes" if compiled_s < 0.9 * eager else ("no (slower)" if compiled_s > 1.1 * eager else "no (±10 %)")
        lines.append(
            f"| {name} | {eager * 1e3:.1f} ms | {eager / gelu:.2f} | {compiled_s * 1e3:.1f} ms | "
            f"{compiled_s / gelu:.2f} | {helps} ({eager / compiled_s:.2f}×) | {compile_s:.1f} s |"
        )
    table = "\n".join(lines)
    print()
    print(table)
    best = {name: min(t for t in (eager, comp) if t) for name, eager, comp, _ in rows}
    print("\nbest of eager/compiled, ratio to GELU's best:")
    for name, t in best.items():
        print(f"  {name:55s} {t / gelu_best:.2f}")

    if str(args.out) == "-":
        return
    cpu = _common.cpu_name()
    header = (
        f"Measured on `{device}`: {cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} with "
        f"{torch.get_num_threads()} intra-op threads, Python {platform.python_version()}; one run of "
        f"`python bench/activations.py --size {args.size} --repeats {args.repeats} --warmup {args.warmup}`. "
        f"A step is `y = act(x); y.backward(g)` on a {args.size}×{args.size} float32 tensor, median of "
        f"{args.repeats} steps after {args.warmup} warm-up steps; compile time (the first call under "
        "`torch.compile`, inductor) is not counted in the step time."
    )
    best_lines = "\n".join(f"| {name} | {t * 1e3:.1f} ms | {t / gelu_best:.2f} |" for name, t in best.items())
    body = "\n\n".join(
        [
            "# Activation functions: forward+backward time (`bench/activations.py`)",
            header,
            table,
            "Best of eager and compiled, against GELU's best:\n\n| activation | best step | × GELU best |\n"
            "| --- | ---: | ---: |\n" + best_lines,
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = args.out.read_text() if args.out.exists() else ""
    marker = "<!-- notes -->"
    notes = existing.split(marker, 1)[1] if marker in existing else "\n"
    args.out.write_text(body + "\n\n" + marker + notes)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
