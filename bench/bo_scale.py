"""``bo``, ``qd-bo`` and ``mo-bo`` at large n: seconds per ask vs the number of observations,
``max_fit_points`` at its default and off (0); and the best found on bench/bo_mixed.py's
problem at 60 evaluations with either (#15).

Each (algorithm, space, batch, n, bound) runs in a process of its own, driving the proposer
directly: n uniformly random observations are told, then one ask (cold: the fit starts from
BoTorch's defaults, as after a start or resume) and, its batch told, one more (warm, as in
a running campaign). Printed: wall and this process's CPU seconds of each ask, the seconds
of its fits (the rest is the acquisition), and how many observations the model was fitted
on. A series stops after the first n whose ask took over ``--limit`` seconds; a process
still running at 2 × limit + 60 s is killed and its n reported as past the limit.

Spaces: ``cont``, four floats in [0, 1] (measures x0, x1 on a 10 × 10 grid); ``mixed``,
bench/bo_mixed.py's (measures depth, 12 bins, and log10 lr, 8 bins). ``mo-bo`` trades the
objective against the first measure.

``--mo-quality``: ``mo-bo``'s search instead, on each space: the hypervolume of the
(objective, first measure) pairs evaluated (both maximised; reference point (−1, 0) on
``cont``, (−1, 1) on ``mixed``) after ``--budget`` evaluations, batch 2, per seed, driving
the proposer directly.

    python bench/bo_scale.py [--algorithms bo,qd-bo,mo-bo] [--spaces cont,mixed] [--batches 2,8]
                             [--sizes 200,500,1000,2000,4000] [--bounds default,0] [--limit 120]
                             [--seeds 5] [--budget 60] [--timing-only | --quality-only | --mo-quality]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np
from bo_mixed import SPACE as MIXED
from bo_mixed import campaign, load, score

CONTINUOUS = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(4)}


def problem(space: str) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    """The space, the measures, and the outcome (params -> fitness, measures) of ``space``."""
    if space == "cont":
        def cont(p: dict[str, Any]) -> tuple[float, list[float]]:
            x = np.array([p[f"x{i}"] for i in range(4)])
            return float(-np.sum((x - 0.3) ** 2) + 0.1 * np.sin(9 * x[0])), [float(x[0]), float(x[1])]
        return CONTINUOUS, [{"name": "x0", "low": 0, "high": 1, "bins": 10},
                            {"name": "x1", "low": 0, "high": 1, "bins": 10}], cont

    def mixed(p: dict[str, Any]) -> tuple[float, list[float]]:
        lr = float(p["lr"])
        return score(p["kernel"], p.get("gamma"), lr, int(p["depth"])), [float(p["depth"]), math.log10(lr)]
    return MIXED, [{"name": "depth", "low": 1, "high": 12, "bins": 12},
                   {"name": "loglr", "low": -5, "high": -1, "bins": 8}], mixed


def one(algorithm: str, space_name: str, batch: int, n: int, bound: str) -> None:
    """Time the two asks of one configuration; a JSON line each."""
    from search import api
    from search.campaigns import layout_for
    from search.proposers import build_proposer, gp
    from search.proposers.base import Observation, ProposerContext
    from search.space import SearchSpace

    space_dict, measures, outcome = problem(space_name)
    spec = api.as_spec({"name": "scale", "evaluator": {"kind": "python", "target": "bo_scale:one"},
                        "space": space_dict, "objective": {"name": "objective", "direction": "maximize"},
                        "measures": measures, "search": {"algorithm": algorithm, "budget": 10, "batch_size": batch,
                                                         "seed": 0}})
    space, layout = SearchSpace(spec.space), layout_for(spec)
    options: dict[str, Any] = {} if bound == "default" else {"max_fit_points": int(bound)}
    if algorithm == "mo-bo":
        options["measures"] = [measures[0]["name"]]
    proposer = build_proposer(algorithm, ProposerContext(space=space, layout=layout, options=options,
                                                         batch_size=batch, seed=0))
    fits = {"s": 0.0, "points": 0, "depth": 0}
    for name in ("fit_gp", "fit_model_list"):
        original = getattr(gp, name)

        def timed(x: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            start = time.perf_counter()
            fits["depth"] += 1
            try:
                return _original(x, *args, **kwargs)
            finally:
                fits["depth"] -= 1
                if not fits["depth"]:  # fit_model_list's own fit_gp calls are counted in its time
                    fits["s"] += time.perf_counter() - start
                fits["points"] = len(x)
        setattr(gp, name, timed)

    def observe(points: list[np.ndarray], first: int) -> list[Observation]:
        out = []
        for i, u in enumerate(points):
            params = space.decode(u)
            fitness, m = outcome(params)
            m = np.array(m)
            out.append(Observation(first + i, first + i, u, params, fitness, m, int(layout.index_of(m[None])[0]), {}))
        return out

    proposer.tell(observe(list(np.random.default_rng(1).random((n, space.dim))), 0))
    told = n
    for label in ("cold", "warm"):
        fits["s"] = 0.0
        wall, cpu = time.perf_counter(), time.process_time()
        proposals = proposer.ask(batch)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(json.dumps({"ask": label, "wall": wall, "cpu": cpu, "fit": fits["s"], "fitted": fits["points"],
                          "source": proposals[0].meta.get("source")}), flush=True)
        proposer.tell(observe([p.x for p in proposals], told))
        told += len(proposals)


def timings(args: argparse.Namespace) -> None:
    print(f"CPU: {_common.cpu_name()}; {load()}")
    print("| algorithm | space | batch | n | max_fit_points | fitted | cold ask: wall / CPU / fit s "
          "| warm ask: wall / CPU / fit s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for algorithm in args.algorithms.split(","):
        for space in args.spaces.split(","):
            for batch in args.batches.split(","):
                for bound in args.bounds.split(","):
                    for n in (int(v) for v in args.sizes.split(",")):
                        if not series_row(algorithm, space, int(batch), n, bound, args.limit):
                            break
    print(load())


def series_row(algorithm: str, space: str, batch: int, n: int, bound: str, limit: float) -> bool:
    """Print one configuration's row; whether its asks stayed within ``limit`` seconds."""
    command = [sys.executable, __file__, "--one", algorithm, space, str(batch), str(n), bound]
    head = f"| {algorithm} | {space} | {batch} | {n} | {bound} |"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=2 * limit + 60)
    except subprocess.TimeoutExpired:
        print(f"{head} | past {2 * limit + 60:.0f} s: stopped | |", flush=True)
        return False
    asks = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or len(asks) < 2:
        print(f"{head} | failed: {(done.stderr.strip().splitlines() or ['?'])[-1]} | |", flush=True)
        return False
    cells = [f"{a['wall']:.2f} / {a['cpu']:.2f} / {a['fit']:.2f}" + ("" if a["source"] != "sobol" else " (Sobol)")
             for a in asks]
    print(f"{head} {asks[0]['fitted']} | {cells[0]} | {cells[1]} |", flush=True)
    return max(a["wall"] for a in asks) <= limit


def quality(args: argparse.Namespace) -> None:
    """bench/bo_mixed.py's campaign (batch 2) with ``max_fit_points`` at its default and 0:
    the best found, and whether every point evaluated was the same."""
    import archive
    from search import api

    same = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            best, points = {}, {}
            for bound in ("default", "0"):
                spec = campaign(seed, args.budget, 2)
                if bound != "default":
                    spec["search"]["options"] = {"max_fit_points": int(bound)}
                url = f"sqlite:///{Path(tmp) / f'{seed}-{bound}.db'}"
                best[bound] = float(api.run(spec, storage=url, executor="inline").best_objective)
                points[bound] = [r["x"] for r in archive.open(url).campaign(spec["name"]).evaluations()]
            identical = points["default"] == points["0"]
            same += identical
            print(f"seed {seed}: best at {args.budget}: default {best['default']:.4f}, 0 (every point) "
                  f"{best['0']:.4f}; the same {len(points['0'])} points evaluated: {identical}", flush=True)
    print(f"the same campaign on {same} of {args.seeds} seeds")


MO_REFERENCE = {"cont": [-1.0, 0.0], "mixed": [-1.0, 1.0]}


def mo_quality(args: argparse.Namespace) -> None:
    """``mo-bo`` on each space: the hypervolume of what it evaluated after ``--budget`` evaluations, per seed."""
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume
    from botorch.utils.multi_objective.pareto import is_non_dominated

    from search import api
    from search.campaigns import layout_for
    from search.proposers import build_proposer
    from search.proposers.base import Observation, ProposerContext
    from search.space import SearchSpace

    print(load())
    for space_name in args.spaces.split(","):
        space_dict, measures, outcome = problem(space_name)
        volumes = []
        for seed in range(args.seeds):
            spec = api.as_spec({"name": "mo", "evaluator": {"kind": "python", "target": "bo_scale:one"},
                                "space": space_dict, "objective": {"name": "objective", "direction": "maximize"},
                                "measures": measures, "search": {"algorithm": "mo-bo", "budget": args.budget,
                                                                 "batch_size": 2, "seed": seed}})
            space, layout = SearchSpace(spec.space), layout_for(spec)
            proposer = build_proposer("mo-bo", ProposerContext(space=space, layout=layout, batch_size=2, seed=seed,
                                                               options={"measures": [measures[0]["name"]]}))
            pairs: list[list[float]] = []
            while len(pairs) < args.budget:
                told = []
                for p in proposer.ask(2):
                    params = space.decode(p.x)
                    fitness, m = outcome(params)
                    told.append(Observation(len(pairs), len(pairs), p.x, params, fitness, np.array(m),
                                            int(layout.index_of(np.array(m)[None])[0]), {}))
                    pairs.append([fitness, m[0]])
                proposer.tell(told)
            y = torch.tensor(pairs, dtype=torch.double)
            volumes.append(Hypervolume(torch.tensor(MO_REFERENCE[space_name], dtype=torch.double))
                           .compute(y[is_non_dominated(y)]))
            print(f"mo-bo {space_name} seed {seed}: hypervolume at {args.budget}: {volumes[-1]:.4f}", flush=True)
        print(f"mo-bo {space_name}: mean {np.mean(volumes):.4f} over {args.seeds} seeds")
    print(load())


def main() -> None:
    if sys.argv[1:2] == ["--one"]:
        algorithm, space, batch, n, bound = sys.argv[2:7]
        one(algorithm, space, int(batch), int(n), bound)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", default="bo,qd-bo,mo-bo")
    parser.add_argument("--spaces", default="cont,mixed")
    parser.add_argument("--batches", default="2,8")
    parser.add_argument("--sizes", default="200,500,1000,2000,4000")
    parser.add_argument("--bounds", default="default,0", help="max_fit_points values; 'default': the option unset")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds an ask may take before a series stops")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--mo-quality", action="store_true", help="mo-bo's hypervolume at --budget, per seed")
    args = parser.parse_args()
    if args.mo_quality:
        mo_quality(args)
        return
    if not args.quality_only:
        timings(args)
    if not args.timing_only:
        quality(args)


if __name__ == "__main__":
    main()
