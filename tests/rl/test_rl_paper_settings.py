"""The entropy_rl example's starting points are at their papers' settings, its search keeps
Clip-Cov at PRIME's ratio bounds, and a run records the bounds it used.

Before, every starting point set ``eps_high: 0.2`` and the searched ``eps_high`` (0.2-0.4)
applied to ``clip_cov`` too, so "Clip-Cov at its paper's settings" ran with the ratio held
to [0, 1.2] instead of PRIME's scripts' 1 / 1 (REFERENCE.md §5: ``clip_ratio_low =
clip_ratio_high = 1``), and an export showed ``'loss_mode': 'clip_cov', 'eps_low': None,
'eps_high': 0.2``: the bound the loss applied (1 for eps_low) was nowhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.space import SearchSpace
from search.spec import load_spec
from workers.contract import EvalContext
from workers.evaluators.entropy_rl import EntropyRLEvaluator
from workers.rl.config import GRPOConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "entropy_rl.yaml"
#: (eps_low, eps_high) of each method's official scripts (REFERENCE.md §§5-6): GRPO's PPO clip
#: 0.2 / 0.2, DAPO's clip-higher 0.2 / 0.28, PRIME's Clip-Cov 1 / 1 (KL-Cov never clips; its
#: loss mode's default is 1 / 1 too).
PAPER_CLIP = {"grpo": (0.2, 0.2), "clip-higher": (0.2, 0.28), "clip_cov": (1.0, 1.0), "kl_cov": (1.0, 1.0)}


def grpo_config(point: dict[str, Any]) -> GRPOConfig:
    spec = load_spec(EXAMPLE)
    known = GRPOConfig.field_names()
    defaults = {k: v for k, v in spec.evaluator.config.items() if k in known}
    return GRPOConfig.from_params({k: v for k, v in point.items() if k in known}, defaults)


def method(cfg: GRPOConfig) -> str:
    if cfg.loss_mode != "vanilla":
        return cfg.loss_mode
    return "clip-higher" if cfg.eps_high not in (None, 0.2) else "grpo"


def test_each_starting_point_runs_at_its_papers_clip_bounds() -> None:
    configs = [grpo_config(p) for p in load_spec(EXAMPLE).search.initial_points]
    assert {method(c) for c in configs} == set(PAPER_CLIP)
    for cfg in configs:
        assert cfg.clip_bounds() == PAPER_CLIP[method(cfg)], cfg
    clip_cov = next(c for c in configs if c.loss_mode == "clip_cov")
    kl_cov = next(c for c in configs if c.loss_mode == "kl_cov")
    assert (clip_cov.clip_cov_ratio, clip_cov.clip_cov_lb, clip_cov.clip_cov_ub) == (2e-4, 1.0, 5.0)
    assert (kl_cov.kl_cov_ratio, kl_cov.kl_coef) == (0.002, 1.0)  # PRIME's 7B k_percent 0.2 (a percent)
    aepo = next(c for c in configs if c.aepo)
    assert (aepo.aepo_entropy_target, aepo.aepo_temperature_high, aepo.aepo_temperature_low) == (0.5, 1.2, 0.8)


def test_the_search_keeps_clip_cov_and_kl_cov_at_their_own_bounds() -> None:
    """Any point MAP-Elites draws: the searched eps_high is clip-higher's (vanilla) alone."""
    space = SearchSpace(load_spec(EXAMPLE).space)
    points = space.decode_many(np.random.default_rng(0).random((400, space.dim)))
    by_mode: dict[str, list[tuple[float, float]]] = {}
    for point in points:
        cfg = grpo_config(point)
        by_mode.setdefault(cfg.loss_mode, []).append(cfg.clip_bounds())
    assert set(by_mode) == {"vanilla", "clip_cov", "kl_cov"}
    assert set(by_mode["clip_cov"]) == {(1.0, 1.0)} and set(by_mode["kl_cov"]) == {(1.0, 1.0)}
    highs = [high for _, high in by_mode["vanilla"]]
    assert 0.2 <= min(highs) < 0.25 and 0.35 < max(highs) <= 0.4  # clip-higher is still searched


@pytest.fixture(scope="module")
def evaluator() -> EntropyRLEvaluator:
    ev = EntropyRLEvaluator()
    ev.setup({"model": "builtin:arith-nano", "num_prompts": 8, "num_eval_prompts": 8, "eval_samples": 2,
              "steps": 1, "prompts_per_step": 4, "group_size": 2, "law_checkpoints": 0}, EvalContext())
    return ev


@pytest.mark.parametrize(("params", "bounds"), [
    ({"loss_mode": "clip_cov"}, (1.0, 1.0)),
    ({"loss_mode": "kl_cov", "eps_low": 0.5}, (0.5, 1.0)),
    ({"loss_mode": "vanilla"}, (0.2, 0.2)),
    ({"loss_mode": "vanilla", "eps_high": 0.28}, (0.2, 0.28)),
])
def test_a_run_records_the_clip_bounds_it_used(evaluator: EntropyRLEvaluator, params: dict[str, Any],
                                               bounds: tuple[float, float]) -> None:
    metrics = evaluator.evaluate(params, EvalContext(seed=1))["metrics"]
    assert (metrics["eps_low"], metrics["eps_high"]) == bounds
    assert (metrics["config"]["eps_low"], metrics["config"]["eps_high"]) == bounds
    assert metrics["config"]["loss_mode"] == params["loss_mode"]


def test_the_recorded_config_reruns_the_same_run(evaluator: EntropyRLEvaluator) -> None:
    first = evaluator.evaluate({"loss_mode": "clip_cov", "clip_cov_ratio": 0.5}, EvalContext(seed=3))
    again = evaluator.evaluate(first["metrics"]["config"], EvalContext(seed=3))
    assert again["objective"] == first["objective"] and again["measures"] == first["measures"]
    assert again["metrics"]["curves"]["dropped"] == first["metrics"]["curves"]["dropped"]
