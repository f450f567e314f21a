"""Train the built-in arithmetic models and write their checkpoints.

    python -m workers.decoding.train_arith                    # both sizes, seed 0, into workers/data/
    python -m workers.decoding.train_arith --size tiny --seed 3 --out /tmp/arith-tiny-3

Each run prints the loss as it goes, then the greedy exact-match accuracy on the
held-out problems and on 1,000 training problems, the training time and the size of the
written directory. See :mod:`workers.decoding.arith` for the data, the model and the loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from workers.decoding.arith import PACKAGED_DATA, SIZES, save, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=[*SIZES, "all"], default="all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (default: the size's own)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output directory (default: {PACKAGED_DATA}/arith-SIZE); only with one --size")
    parser.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args(argv)
    sizes = list(SIZES) if args.size == "all" else [args.size]
    if args.out is not None and len(sizes) > 1:
        parser.error("--out needs a single --size")
    for size in sizes:
        model, report = train(size, seed=args.seed, steps=args.steps, num_threads=args.threads,
                              log_every=args.log_every)
        out = save(model, report, args.out or PACKAGED_DATA / f"arith-{size}")
        total = sum(f.stat().st_size for f in out.iterdir())
        print(json.dumps({**dataclasses.asdict(report), "out": str(out), "bytes": total}, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
