"""The entropy-performance law as Cui et al. use it: per run, over training checkpoints
(training entropy H_i vs validation accuracy R_i), and the campaign readings of
``atlas law``: ``per-run`` (the default with trajectories), ``pooled`` and
``cross-configuration`` (the fit over final values, one point per evaluation)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from archive.law import CROSS, PER_RUN, POOLED, LawFitError, campaign_law, fit_law, fit_run_law, has_trajectories
from archive.records import CampaignSettings
from search import cli as cli_module

B = 0.9  # every synthetic run's b; its a is 0.2 + 0.2·u (u a search parameter)


def run_a(u: float) -> float:
    return 0.2 + 0.2 * u


def synthetic_trajectory(u: float, h0: float, n: int = 6) -> dict[str, list[float]]:
    """A run whose checkpoints follow R = −a·exp(H) + B exactly, entropy falling from h0."""
    hs = [h0 * math.exp(-k / 3) for k in range(1, n + 1)]
    return {"step": list(range(1, n + 1)), "train_entropy": hs,
            "val_accuracy": [-run_a(u) * math.exp(h) + B for h in hs], "seconds": [0.0] * n}


def evaluate(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A ``kind: python`` target: one synthetic run with its trajectory in the metrics."""
    u, h0 = float(params["u"]), float(params["h0"])
    traj = synthetic_trajectory(u, h0)
    return {"objective": traj["val_accuracy"][-1], "measures": {"final_entropy": traj["train_entropy"][-1]},
            "metrics": {"trajectory": traj}}


def test_fit_run_law_recovers_a_run_and_reads_both_forms() -> None:
    traj = synthetic_trajectory(0.5, 1.2)
    fit = fit_run_law(traj)
    assert fit.a == pytest.approx(run_a(0.5), rel=1e-8) and fit.b == pytest.approx(B, rel=1e-8)
    assert fit.ceiling == pytest.approx(B - run_a(0.5)) and fit.r2 == pytest.approx(1.0) and fit.n == 6
    assert fit.measure == "train_entropy" and fit.objective == "val_accuracy"
    rows = [{"train_entropy": h, "val_accuracy": r} for h, r in zip(traj["train_entropy"], traj["val_accuracy"],
                                                                    strict=True)]
    assert fit_run_law(rows).a == pytest.approx(fit.a)
    with pytest.raises(LawFitError, match="at least 3 points"):
        fit_run_law({"train_entropy": [0.5, 0.4], "val_accuracy": [0.1, 0.2]})
    with pytest.raises(LawFitError, match="at least 3 points"):
        fit_run_law("not a trajectory")


def test_checkpoint_steps_spread_over_the_run() -> None:
    from workers.rl.trainer import checkpoint_steps

    assert checkpoint_steps(30, 6) == [5, 10, 15, 20, 25, 30]
    assert checkpoint_steps(20, 6) == [4, 7, 10, 14, 17, 20]
    assert checkpoint_steps(3, 6) == [1, 2, 3]
    assert checkpoint_steps(0, 6) == [] and checkpoint_steps(10, 0) == []


def done_evaluations(n: int, with_trajectory: bool = True) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        result = evaluate({"u": rng.uniform(), "h0": rng.uniform(0.6, 1.5)}, None)
        if not with_trajectory:
            result["metrics"] = {}
        out.append({"id": 100 + i, "seq": i, "status": "done", **result})
    return out


def settings() -> CampaignSettings:
    return CampaignSettings(objective="accuracy", maximize=True, qd_offset=0.0, budget=5, algorithm="random",
                            measures=("final_entropy",), measure_directions={}, params=("u", "h0"),
                            coordinate_options=(10, 10))


def test_campaign_readings_and_the_default_mode() -> None:
    done = done_evaluations(5)
    s = settings()
    assert has_trajectories(done) and not has_trajectories(done_evaluations(3, with_trajectory=False))
    per_run = campaign_law("c", s, done)
    assert per_run.mode == PER_RUN and per_run.fit is None and len(per_run.runs) == 5
    assert [r.evaluation_id for r in per_run.runs] == [100, 101, 102, 103, 104]
    for run, ev in zip(per_run.runs, done, strict=True):
        assert run.fit.b == pytest.approx(B, rel=1e-6) and run.fit.n == 6
        assert run.fit.a == pytest.approx(-(ev["objective"] - B) / math.exp(ev["measures"]["final_entropy"]))
    assert per_run.median()["b"] == pytest.approx(B) and per_run.median()["n"] == 6
    doc = per_run.to_dict()
    assert doc["mode"] == "per-run" and len(doc["runs"]) == 5 and doc["runs"][0]["evaluation_id"] == 100
    json.dumps(doc)

    pooled = campaign_law("c", s, done, mode=POOLED)
    assert pooled.mode == POOLED and pooled.fit is not None and pooled.fit.n == 30
    every = [(h, r) for ev in done for h, r in zip(ev["metrics"]["trajectory"]["train_entropy"],
                                                   ev["metrics"]["trajectory"]["val_accuracy"], strict=True)]
    alone = fit_law([h for h, _ in every], [r for _, r in every])
    assert pooled.fit.a == pytest.approx(alone.a) and pooled.fit.b == pytest.approx(alone.b)
    assert pooled.fit.r2 < 1.0  # the runs differ in a: no one curve holds them all

    cross = campaign_law("c", s, done, mode=CROSS)
    assert cross.mode == CROSS and cross.fit is not None and cross.fit.n == 5
    assert cross.fit.measure == "final_entropy" and cross.fit.objective == "accuracy"
    assert campaign_law("c", s, done, measure="final_entropy").mode == CROSS  # a measure: the cross fit
    assert campaign_law("c", s, done_evaluations(3, with_trajectory=False)).mode == CROSS

    with pytest.raises(LawFitError, match=r"unknown mode \(--mode\) 'both'"):
        campaign_law("c", s, done, mode="both")
    with pytest.raises(LawFitError, match="uses each run's train_entropy"):
        campaign_law("c", s, done, measure="final_entropy", mode=PER_RUN)
    with pytest.raises(LawFitError, match="no done evaluation with a trajectory"):
        campaign_law("c", s, done_evaluations(3, with_trajectory=False), mode=PER_RUN)
    short = done_evaluations(4)
    short[0]["metrics"] = {"trajectory": {"train_entropy": [0.3, 0.2], "val_accuracy": [0.5, 0.6]}}
    short[1]["metrics"] = {}
    short[2]["metrics"]["trajectory"]["val_accuracy"] = [0.25] * 6  # R never moves: a = 0, R² = 1, vacuous
    mixed = campaign_law("c", s, short)
    assert [r.evaluation_id for r in mixed.runs] == [103] and [i for i, _ in mixed.skipped] == [100, 101, 102]
    assert "is the same (0.25) at every checkpoint" in mixed.skipped[2][1]


@pytest.mark.parametrize("mode", [PER_RUN, POOLED])
def test_a_measure_with_a_run_mode_is_refused_saying_what_to_do(mode: str) -> None:
    """`atlas law NAME --mode per-run --measure M` said why it is refused, not what to do."""
    with pytest.raises(LawFitError) as refused:
        campaign_law("c", settings(), done_evaluations(3), measure="final_entropy", mode=mode)
    assert str(refused.value) == (
        f"measure (--measure) chooses the cross-configuration fit's H; the {mode} fit uses each run's "
        f"train_entropy (metrics.trajectory): drop measure (--measure) for the {mode} fit, or fit final_entropy "
        f"across configurations with --mode cross-configuration (mode='cross-configuration' from Python)")


def law_spec(name: str, budget: int) -> dict[str, Any]:
    return {
        "name": name,
        "evaluator": {"kind": "python", "target": "tests.rl.test_law_per_run:evaluate"},
        "space": {"u": {"type": "float", "low": 0.0, "high": 1.0}, "h0": {"type": "float", "low": 0.6, "high": 1.5}},
        "objective": {"name": "accuracy", "direction": "maximize"},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 1.5, "bins": 10}],
        "search": {"algorithm": "random", "budget": budget, "batch_size": 4, "max_in_flight": 4, "seed": 0},
    }


def atlas(*args: str) -> Any:
    return CliRunner().invoke(cli_module.app, list(args), env={"COLUMNS": "200"}, terminal_width=200,
                              catch_exceptions=False)


def test_atlas_law_per_run_pooled_and_cross_configuration(tmp_path: Path) -> None:
    from search import api

    url = f"sqlite:///{tmp_path / 'law.db'}"
    api.run(law_spec("runs", 8), storage=url, executor="inline")

    shown = atlas("law", "runs", "--storage", url, "--out", str(tmp_path / "runs.png"))
    assert shown.exit_code == 0, shown.stderr
    assert "per-run" in shown.stdout and "8 runs" in shown.stdout and "median" in shown.stdout
    assert "ceiling" in shown.stdout and "R²" in shown.stdout
    assert (tmp_path / "runs.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads(atlas("law", "runs", "--storage", url, "--json").stdout)
    assert doc["mode"] == "per-run" and len(doc["runs"]) == 8 and doc["warnings"] == []
    assert all(r["b"] == pytest.approx(B, rel=1e-6) and r["r2"] == pytest.approx(1.0) and r["n"] == 6
               for r in doc["runs"])
    assert doc["median"]["b"] == pytest.approx(B, rel=1e-6)
    for run in doc["runs"]:
        assert str(run["evaluation_id"]) in shown.stdout and f"{run['a']:.4g}" in shown.stdout

    pooled = json.loads(atlas("law", "runs", "--storage", url, "--json", "--mode", "pooled").stdout)
    assert pooled["mode"] == "pooled" and pooled["n"] == 48
    cross = atlas("law", "runs", "--storage", url, "--mode", "cross-configuration")
    assert cross.exit_code == 0 and "cross-configuration" in cross.stdout and "evaluations" in cross.stdout
    cross_doc = json.loads(atlas("law", "runs", "--storage", url, "--json", "--mode", "cross-configuration").stdout)
    assert cross_doc["mode"] == "cross-configuration" and cross_doc["n"] == 8
    assert cross_doc["measure"] == "final_entropy"

    bad = atlas("law", "runs", "--storage", url, "--mode", "per-run", "--measure", "final_entropy")
    assert bad.exit_code == 2 and "cross-configuration fit's H" in bad.stderr
    unknown = atlas("law", "runs", "--storage", url, "--mode", "nope")
    assert unknown.exit_code == 2 and "error: unknown mode (--mode) 'nope'" in unknown.stderr


# --------------------------------------------------------------------------- the evaluator


@pytest.fixture(scope="module")
def rl_evaluators() -> tuple[Any, Any]:
    from workers.contract import EvalContext
    from workers.evaluators.entropy_rl import EntropyRLEvaluator

    base = {"model": "builtin:arith-tiny-rl", "num_prompts": 16, "num_eval_prompts": 16, "eval_samples": 2,
            "steps": 6, "prompts_per_step": 4, "group_size": 4}
    off, on = EntropyRLEvaluator(), EntropyRLEvaluator()
    off.setup({**base, "law_checkpoints": 0}, EvalContext())
    on.setup({**base, "law_checkpoints": 3, "law_eval_prompts": 8}, EvalContext())
    return off, on


def test_the_evaluator_records_a_trajectory_without_changing_the_run(rl_evaluators: tuple[Any, Any]) -> None:
    from workers.contract import EvalContext

    off, on = rl_evaluators
    params = {"loss_mode": "clip_cov", "clip_cov_ratio": 0.05, "lr": 1e-3}
    a = off.evaluate(params, EvalContext(seed=3))
    b = on.evaluate(params, EvalContext(seed=3))
    traj = b["metrics"]["trajectory"]
    assert traj["step"] == [2, 4, 6]
    # H_k is step k's training-rollout entropy; R_k an accuracy on the 8-prompt subset (2 samples each)
    assert traj["train_entropy"] == [b["metrics"]["curves"]["entropy"][k - 1] for k in traj["step"]]
    assert all(0.0 <= r <= 1.0 and (r * 16) == int(r * 16) for r in traj["val_accuracy"])
    assert b["metrics"]["trajectory_seconds"] == pytest.approx(sum(traj["seconds"])) and all(
        s > 0 for s in traj["seconds"])
    # validating at checkpoints draws nothing from the trainer: the run is the same bit for bit
    assert a["metrics"]["curves"]["entropy"] == b["metrics"]["curves"]["entropy"]
    assert a["objective"] == b["objective"] and a["measures"] == b["measures"]
    assert a["metrics"]["trajectory"]["step"] == []
    json.dumps(b["metrics"])


@pytest.mark.slow
def test_a_real_entropy_rl_campaign_fits_per_run(tmp_path: Path) -> None:
    """A small real campaign (4 GRPO runs of 12 steps, 4 checkpoints each) read per run."""
    from search import api

    spec = {
        "name": "rl-law",
        "evaluator": {"kind": "entropy_rl", "config": {
            "model": "builtin:arith-tiny-rl", "num_prompts": 32, "num_eval_prompts": 32, "eval_samples": 2,
            "steps": 12, "prompts_per_step": 4, "group_size": 4, "law_checkpoints": 4, "law_eval_prompts": 16}},
        "space": {"lr": {"type": "float", "low": 1e-5, "high": 3e-4, "log": True},
                  "entropy_coef": {"type": "float", "low": 0.0, "high": 0.2}},
        "objective": {"name": "accuracy", "direction": "maximize"},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 1.5, "bins": 5},
                     {"name": "entropy_retained", "low": 0.0, "high": 2.0, "bins": 5}],
        "search": {"algorithm": "random", "budget": 4, "batch_size": 2, "max_in_flight": 2, "seed": 0},
    }
    url = f"sqlite:///{tmp_path / 'rl.db'}"
    began = time.perf_counter()
    api.run(spec, storage=url, executor="inline")
    took = time.perf_counter() - began
    doc = json.loads(atlas("law", "rl-law", "--storage", url, "--json").stdout)
    print(f"\n{took:.1f} s; per-run fits:", json.dumps(doc["runs"], default=str), "median:", doc["median"])
    assert doc["mode"] == "per-run" and len(doc["runs"]) + len(doc["skipped"]) == 4
    assert all(r["n"] == 4 for r in doc["runs"])
    cross = json.loads(atlas("law", "rl-law", "--storage", url, "--json", "--mode", "cross-configuration").stdout)
    assert cross["mode"] == "cross-configuration" and cross["n"] == 4
