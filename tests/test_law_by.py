"""``atlas law NAME --by PARAM`` (one fit of R = −a·exp(H) + b per value of a parameter)
and the warning on an ungrouped fit whose points mix regimes (:func:`archive.law.mixed_regimes`).

The synthetic campaigns mirror the decoding example: one regime (``sampler: good``) reaches
R = 1 at H = 0, the other (``sampler: capped``) runs far lower at every entropy, so the law
fitted over both puts its ceiling under the measured 1.0."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from archive.law import (
    CROSS,
    POOLED,
    UNSET,
    LawFitError,
    campaign_law,
    categorical_params,
    fit_law,
    law_warnings,
    mixed_regimes,
    reading_warnings,
)
from archive.law_groups import grouped_law
from archive.records import CampaignSettings
from search import api
from search.cli import app

GOOD = (0.3, 1.3)  # (a, b): ceiling 1.0
CAPPED = (0.05, 0.7)  # ceiling 0.65
MIXED_TEXT = "do not follow one law"


def regime_r(sampler: str, h: float) -> float:
    a, b = GOOD if sampler == "good" else CAPPED
    return -a * math.exp(h) + b


def evaluate(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A ``kind: python`` target: R on its regime's law, H from ``t``, with a small deterministic wobble;
    ``good`` is at H = 0 for half its t (below 0.75, as greedy decoding), ``capped`` starts at H = 0.1."""
    t, sampler = float(params["t"]), str(params["sampler"])
    h = max(0.0, t - 0.75) if sampler == "good" else 0.1 + t
    wobble = 0.005 * math.sin(41.0 * t)
    return {"objective": regime_r(sampler, h) + wobble, "measures": {"mean_entropy": h}}


def spec(name: str, budget: int = 80) -> dict[str, Any]:
    return {
        "name": name,
        "evaluator": {"kind": "python", "target": "tests.test_law_by:evaluate"},
        "space": {"sampler": {"type": "categorical", "choices": ["good", "capped"]},
                  "t": {"type": "float", "low": 0.0, "high": 1.5},
                  "cap": {"type": "float", "low": 0.0, "high": 1.0, "when": {"sampler": "capped"}}},
        "objective": {"name": "accuracy", "direction": "maximize"},
        "measures": [{"name": "mean_entropy", "low": 0.0, "high": 1.6, "bins": 8}],
        "search": {"algorithm": "random", "budget": budget, "batch_size": 8, "max_in_flight": 8, "seed": 0},
    }


def settings(params: tuple[str, ...] = ("sampler", "t", "cap")) -> CampaignSettings:
    return CampaignSettings(objective="accuracy", maximize=True, qd_offset=0.0, budget=10, algorithm="random",
                            measures=("mean_entropy",), measure_directions={}, params=params,
                            coordinate_options=(2, 10, 10))


def done_evaluations(n_good: int = 40, n_capped: int = 40, noise: float = 0.01, seed: int = 0) -> list[dict]:
    """Two regimes' done evaluations as the store gives them, ``capped`` ones with the conditional ``cap``;
    half the ``good`` ones at H = 0 (as greedy decoding is in the decoding example)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_good + n_capped):
        sampler = "good" if i < n_good else "capped"
        t = float(rng.uniform(0.0, 1.5))
        h = max(0.0, t - 0.75) if sampler == "good" else 0.1 + t  # as :func:`evaluate` maps t
        params: dict[str, Any] = {"sampler": sampler, "t": t}
        if sampler == "capped":
            params["cap"] = 0.5
        out.append({"id": i + 1, "seq": i, "status": "done", "params": params,
                    "objective": regime_r(sampler, h) + float(rng.normal(0.0, noise)),
                    "measures": {"mean_entropy": h}})
    return out


def atlas(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"}, terminal_width=250, catch_exceptions=False)


# --------------------------------------------------------------------------- the grouped fit


def test_by_fits_each_value_apart_with_unset_and_small_groups_listed() -> None:
    done = done_evaluations()
    done += [{"id": 90, "seq": 90, "status": "done", "params": {"sampler": "lone", "t": 0.2},
              "objective": 0.5, "measures": {"mean_entropy": 0.2}}]
    reading = grouped_law("c", settings(), done, "sampler")
    assert reading.mode == CROSS and reading.by == "sampler" and reading.fit is not None and reading.fit.n == 81
    labels = [g.label for g in reading.groups]
    assert labels == ["good", "capped", "lone"]  # fitted by ceiling, highest first; then the rest
    good, capped, lone = reading.groups
    assert good.fit is not None and good.fit.ceiling == pytest.approx(1.0, abs=0.02) and good.n == 40
    assert capped.fit is not None and capped.fit.ceiling == pytest.approx(0.65, abs=0.03) and capped.n == 40
    assert good.fit.r2 > 0.95 and capped.fit.r2 > 0.5
    assert lone.fit is None and lone.n == 1 and "needs at least 3" in (lone.reason or "")

    by_cap = grouped_law("c", settings(), done, "cap")  # conditional: the good ones lack it
    unset = [g for g in by_cap.groups if g.label == UNSET]
    assert len(unset) == 1 and unset[0].value is None and unset[0].n == 41
    assert [g.n for g in by_cap.groups if g.label == "0.5"] == [40]

    doc = reading.to_dict()
    json.dumps(doc)
    assert doc["by"] == "sampler" and [g["label"] for g in doc["groups"]] == labels
    assert doc["groups"][0]["fitted"] and doc["groups"][0]["ceiling"] == pytest.approx(good.fit.ceiling)
    assert doc["groups"][2] == {"value": "lone", "label": "lone", "unset": False, "n": 1, "fitted": False,
                                "reason": lone.reason, "a": None, "b": None, "a_ci": None, "b_ci": None,
                                "ceiling": None, "ceiling_ci": None, "r2": None}
    assert {"a", "b", "ceiling", "ceiling_ci", "r2", "n", "mode", "measure"} <= set(doc)  # the ungrouped keys stay


def test_a_group_the_law_cannot_fit_is_listed_with_why() -> None:
    done = done_evaluations()
    done += [{"id": 100 + k, "seq": 100 + k, "status": "done", "params": {"sampler": "flat", "t": 0.0},
              "objective": 1.0, "measures": {"mean_entropy": 0.0}} for k in range(4)]
    flat = next(g for g in grouped_law("c", settings(), done, "sampler").groups if g.label == "flat")
    assert flat.fit is None and flat.n == 4 and "same mean_entropy" in (flat.reason or "")


def test_by_refuses_an_unknown_parameter_an_empty_name_and_the_per_run_mode() -> None:
    done = done_evaluations()
    with pytest.raises(LawFitError) as unknown:
        grouped_law("c", settings(), done, "nope")
    assert str(unknown.value) == "campaign 'c' has no parameter named 'nope' to group by (parameters: sampler, t, cap)"
    with pytest.raises(LawFitError, match=r"^by \(--by\) is empty"):
        grouped_law("c", settings(), done, " ")
    with pytest.raises(LawFitError, match="the per-run fit is one fit per run already"):
        grouped_law("c", settings(), done, "sampler", mode="per-run")
    # settings written without params: the evaluations' parameters are the known ones
    with pytest.raises(LawFitError, match=r"\(parameters: cap, sampler, t\)"):
        grouped_law("c", settings(params=()), done, "nope")


def trajectory(sampler: str, h0: float) -> dict[str, list[float]]:
    hs = [h0 * math.exp(-k / 3) for k in range(1, 7)]
    return {"train_entropy": hs, "val_accuracy": [regime_r(sampler, h) for h in hs]}


def test_by_pools_each_groups_checkpoints_and_is_the_default_with_trajectories() -> None:
    done = [{"id": i, "seq": i, "status": "done", "params": {"sampler": s, "t": 0.1 * i},
             "objective": 0.5 - 0.05 * i, "measures": {"mean_entropy": 0.5 + 0.1 * i},
             "metrics": {"trajectory": trajectory(s, 0.6 + 0.1 * i)}}
            for i, s in enumerate(["good", "capped"] * 3)]
    reading = grouped_law("c", settings(), done, "sampler")
    assert reading.mode == POOLED and reading.fit is not None and reading.fit.n == 36
    good, capped = reading.groups
    assert good.label == "good" and good.n == 18 and good.fit is not None
    assert good.fit.ceiling == pytest.approx(1.0, abs=1e-6) and good.fit.r2 == pytest.approx(1.0)
    assert capped.fit is not None and capped.fit.ceiling == pytest.approx(0.65, abs=1e-6)
    assert grouped_law("c", settings(), done, "sampler", mode=CROSS).mode == CROSS


# --------------------------------------------------------------------------- the mixed-regime warning


def test_the_mixed_regime_warning_fires_on_two_regimes_and_names_the_categorical_parameters() -> None:
    done = done_evaluations()
    reading = campaign_law("c", settings(), done, space=spec("c")["space"])
    fit = reading.fit
    assert fit is not None and fit.ceiling < 0.9  # the ceiling lies under the measured 1.0
    found = mixed_regimes(fit)
    assert found is not None and found.above >= 3 and found.p < 0.005 and found.near >= found.above
    warnings = reading_warnings(reading)
    assert len([w for w in warnings if MIXED_TEXT in w]) == 1
    assert "--by PARAM (categorical parameters: sampler)" in warnings[-1]
    # grouped, each regime is one law: no group is flagged
    assert not [w for w in reading_warnings(grouped_law("c", settings(), done, "sampler")) if MIXED_TEXT in w]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("n, noise, near_zero", [(60, 0.01, False), (200, 0.03, True), (30, 0.05, True),
                                                 (400, 0.02, True), (12, 0.05, False)])
def test_the_mixed_regime_warning_stays_quiet_on_one_noisy_law(seed: int, n: int, noise: float,
                                                               near_zero: bool) -> None:
    """One law plus Gaussian noise, half the points at H ≈ 0 where ``near_zero`` (where
    noise puts many points above the ceiling's interval): never flagged."""
    rng = np.random.default_rng(seed)
    h = rng.uniform(0.0, 1.6, n)
    if near_zero:
        h[: n // 2] = np.abs(rng.normal(0.0, 0.01, n // 2))
    r = -0.42 * np.exp(h) + 0.87 + rng.normal(0.0, noise, n)
    fit = fit_law(h, r, measure="mean_entropy")
    assert mixed_regimes(fit) is None
    assert not [w for w in law_warnings(fit, ("sampler",)) if MIXED_TEXT in w]


def test_the_mixed_regime_warning_stays_quiet_on_an_exact_law_and_a_rising_one() -> None:
    h = np.linspace(0.0, 1.5, 20)
    assert mixed_regimes(fit_law(h, -0.3 * np.exp(h) + 0.95)) is None
    assert mixed_regimes(fit_law(h, 0.3 * np.exp(h) + 0.1 + 0.2 * (h < 0.2))) is None  # a < 0: no ceiling


def test_points_below_zero_entropy_are_no_evidence_of_mixed_regimes() -> None:
    """The sign test takes only the points with H >= 0 (docs/entropy_rl.md, mixed regimes;
    law.py's module docstring): with a > 0 the law itself puts R above its ceiling at every
    H < 0, so one law plus small noise over H in [−3, 2] (a measure that goes below 0, as
    ``atlas law --measure`` allows) is not flagged."""
    rng = np.random.default_rng(0)
    h = np.concatenate([np.linspace(-3.0, -0.5, 30), np.linspace(0.0, 2.0, 30)])
    fit = fit_law(h.tolist(), (-0.3 * np.exp(h) + 1.0 + rng.normal(0, 0.005, h.size)).tolist(), measure="m")
    assert fit.a > 0
    assert sum(fit.predict(h[:30]) > fit.ceiling_ci[1]) == 30  # every point at H < 0 lies above the ceiling's CI
    assert mixed_regimes(fit) is None


def test_categorical_params_from_the_space_else_from_the_values() -> None:
    assert categorical_params(spec("c")["space"], []) == ("sampler",)
    done = [{"params": {"s": "x", "flag": True, "t": 0.5}}, {"params": {"s": "y", "flag": False, "t": 1}}]
    assert categorical_params(None, done) == ("s", "flag")


# --------------------------------------------------------------------------- atlas law --by


def test_atlas_law_by_table_json_figure_and_refusals(tmp_path: Path, sqlite_url: str) -> None:
    api.run(spec("two"), storage=sqlite_url, executor="inline")

    plain = atlas("law", "two", "--storage", sqlite_url, "--json")
    assert plain.exit_code == 0, plain.stderr
    doc = json.loads(plain.stdout)
    assert "groups" not in doc and [w for w in doc["warnings"] if MIXED_TEXT in w]
    assert "(categorical parameters: sampler)" in plain.stderr

    shown = atlas("law", "two", "--storage", sqlite_url, "--by", "sampler", "--out", str(tmp_path / "by.png"))
    assert shown.exit_code == 0, shown.stderr
    assert "by sampler" in shown.stdout and "all (ungrouped)" in shown.stdout and "95% CI" in shown.stdout
    assert (tmp_path / "by.png").read_bytes()[:4] == b"\x89PNG"

    grouped = json.loads(atlas("law", "two", "--storage", sqlite_url, "--by", "sampler", "--json").stdout)
    assert grouped["by"] == "sampler" and grouped["n"] == doc["n"] and grouped["ceiling"] == doc["ceiling"]
    groups = {g["label"]: g for g in grouped["groups"]}
    assert set(groups) == {"good", "capped"} and sum(g["n"] for g in groups.values()) == doc["n"]
    assert groups["good"]["ceiling"] == pytest.approx(1.0, abs=0.02)
    assert groups["capped"]["ceiling"] == pytest.approx(0.65, abs=0.02)
    for g in groups.values():
        lo, hi = g["ceiling_ci"]
        assert f"{g['ceiling']:.4g}" in shown.stdout and f"[{lo:.4g}, {hi:.4g}]" in shown.stdout
    assert not [w for w in grouped["warnings"] if MIXED_TEXT in w]

    by_cap = json.loads(atlas("law", "two", "--storage", sqlite_url, "--by", "cap", "--json").stdout)
    assert UNSET in [g["label"] for g in by_cap["groups"]]

    unknown = atlas("law", "two", "--storage", sqlite_url, "--by", "nope")
    assert unknown.exit_code == 2 and not unknown.stdout
    assert unknown.stderr == ("error: campaign 'two' has no parameter named 'nope' to group by "
                              "(parameters: sampler, t, cap)\n")
    per_run = atlas("law", "two", "--storage", sqlite_url, "--by", "sampler", "--mode", "per-run")
    assert per_run.exit_code == 2 and per_run.stderr.startswith("error: by (--by) groups") \
        and per_run.stderr.count("\n") == 1


def clean(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A ``kind: python`` target: one law with a deterministic noise-like wobble."""
    h = float(params["t"])
    return {"objective": -0.3 * math.exp(h) + 0.95 + 0.01 * math.sin(97.0 * h), "measures": {"mean_entropy": h}}


def test_atlas_law_gives_no_mixed_regime_warning_on_one_law(sqlite_url: str) -> None:
    one = spec("one")
    one["evaluator"]["target"] = "tests.test_law_by:clean"
    api.run(one, storage=sqlite_url, executor="inline")
    result = atlas("law", "one", "--storage", sqlite_url, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["warnings"] == [], result.stderr


@pytest.mark.slow
def test_the_decoding_example_is_flagged_and_its_samplers_fit_apart(sqlite_url: str) -> None:
    """examples/decoding.yaml as shipped (~20–60 s): the ead sampler's low ceiling and the others'
    1.0 at H ≈ 0 are two regimes; the ungrouped fit is flagged, naming ``sampler``."""
    example = Path(__file__).resolve().parents[1] / "examples" / "decoding.yaml"
    api.run(example, storage=sqlite_url, executor="inline")
    doc = json.loads(atlas("law", "decoding-tradeoffs", "--storage", sqlite_url, "--json").stdout)
    mixed = [w for w in doc["warnings"] if MIXED_TEXT in w]
    assert mixed and "sampler, order, top_h_variant" in mixed[0] and doc["ceiling"] < 0.9
    grouped = json.loads(atlas("law", "decoding-tradeoffs", "--storage", sqlite_url, "--by", "sampler",
                               "--json").stdout)
    ceilings = {g["label"]: g["ceiling"] for g in grouped["groups"] if g["fitted"]}
    assert ceilings["none"] > doc["ceiling_ci"][1] and ceilings["ead"] < ceilings["none"]


def test_a_groups_mixed_regime_warning_names_only_the_parameters_that_vary_within_it() -> None:
    """The ``ead`` group of the decoding example had been told to try ``top_h_variant``, a
    parameter only ``top_h`` evaluations have."""
    done = done_evaluations()
    for ev in done:  # one sampler; the regime follows ``order``; ``variant`` is the same everywhere
        ev["params"] = {"sampler": "s", "order": ev["params"]["sampler"], "variant": "v", "t": ev["params"]["t"]}
    space = {"sampler": {"type": "categorical", "choices": ["s"]},
             "order": {"type": "categorical", "choices": ["good", "capped"]},
             "variant": {"type": "categorical", "choices": ["v", "w"]},
             "t": {"type": "float", "low": 0.0, "high": 1.5}}
    reading = grouped_law("c", settings(params=("sampler", "order", "variant", "t")), done, "sampler", space=space)
    mixed = [w for w in reading_warnings(reading) if MIXED_TEXT in w]
    assert len(mixed) == 1 and mixed[0].startswith("sampler = s: ")
    assert mixed[0].endswith("(categorical parameters: order)")
