"""The entropy-performance law's warnings as a Python reader and ``atlas law`` see them.

- A :class:`archive.law.LawReading` carries its warnings (``.warnings``, ``to_dict()["warnings"]``),
  the one source ``atlas law`` prints and puts in ``--json``.
- Every :class:`archive.law.LawFitError` about an argument names it as both spell it:
  ``measure (--measure)``, ``mode (--mode)``, ``by (--by)``.
- ``--by`` over a categorical parameter whose groups are all too small says so (no
  "is it continuous?" hint, which is for other parameters).
- A ceiling −a + b outside the range of R's unit (a ``fraction``'s [0, 1]) is flagged;
  per-run, the runs whose ceiling is are counted.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import archive
from archive.law import CROSS, PER_RUN, POOLED, LawFitError, campaign_law, fit_law, law_warnings
from archive.law_groups import grouped_law
from archive.records import CampaignSettings
from search import api
from search.cli import app

RANGE_TEXT = "outside [0, 1], the range of"


def settings(units: dict[str, str] | None = None, params: tuple[str, ...] = ("t",)) -> CampaignSettings:
    return CampaignSettings(objective="accuracy", maximize=True, qd_offset=0.0, budget=8, algorithm="random",
                            measures=("final_entropy",), measure_directions={}, params=params,
                            coordinate_options=(10,) * len(params), units=dict(units or {}))


def point(i: int, h: float, r: float, params: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A done evaluation as the store gives it: objective ``r`` at ``final_entropy`` ``h``."""
    return {"id": 100 + i, "seq": i, "status": "done", "params": params or {"t": h}, "objective": r,
            "measures": {"final_entropy": h}, **extra}


def law_points(a: float, b: float, hs: list[float]) -> list[dict[str, Any]]:
    """Done evaluations on R = −a·exp(H) + b exactly."""
    return [point(i, h, -a * math.exp(h) + b) for i, h in enumerate(hs)]


HS = [0.3, 0.5, 0.7, 0.9, 1.0]


def accuracy_points() -> list[dict[str, Any]]:
    """Four accuracies in [0, 1] falling with H whose fit extrapolates to a ceiling of 1.43
    [0.596, 2.26] at H = 0 (as `atlas law entropy-rl --mode cross-configuration`'s 1.44 [0.95, 1.93])."""
    return [point(i, h, r) for i, (h, r) in enumerate(zip([1.0, 1.1, 1.2, 1.3], [0.65, 0.55, 0.30, 0.25],
                                                              strict=True))]


# --------------------------------------------------------------------------- 1. the reading carries them


def test_a_reading_carries_its_warnings_in_python_and_in_to_dict() -> None:
    """A notebook's ``campaign(NAME).law()`` had no ``warnings``: R² < 0.3, mixed regimes or a
    measure that is no entropy reached only the CLI's readers."""
    rng = np.random.default_rng(0)
    done = [point(i, float(h), float(r)) for i, (h, r) in enumerate(zip(rng.uniform(0, 1, 30),
                                                                         rng.normal(0.5, 0.1, 30), strict=True))]
    for i, ev in enumerate(done):
        ev["measures"]["diversity"] = ev["measures"]["final_entropy"] + 0.01 * i
    reading = campaign_law("c", settings(), done, measure="diversity")
    warnings = reading.warnings
    assert any("'diversity' does not look like an entropy" in w for w in warnings)
    assert any("R² =" in w and "explains little" in w for w in warnings)
    doc = reading.to_dict()
    assert doc["warnings"] == warnings and list(doc)[-1] == "warnings"


def fraction_target(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A ``kind: python`` target: an accuracy (unit fraction) on a law whose ceiling is 1.1."""
    h = 0.3 + 0.7 * float(params["t"])
    return {"objective": -0.5 * math.exp(h) + 1.6 + 0.003 * math.sin(31.0 * h), "measures": {"final_entropy": h}}


def fraction_spec() -> dict[str, Any]:
    return {
        "name": "frac",
        "evaluator": {"kind": "python", "target": "tests.test_law_warnings:fraction_target"},
        "space": {"t": {"type": "float", "low": 0.0, "high": 1.0}},
        "objective": {"name": "accuracy", "direction": "maximize", "unit": "fraction"},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 1.5, "bins": 5, "unit": "nats"}],
        "search": {"algorithm": "random", "budget": 8, "batch_size": 8, "max_in_flight": 8, "seed": 0},
    }


def test_the_handle_reading_and_atlas_law_json_give_the_same_warnings(sqlite_url: str) -> None:
    """The CLI's ``--json`` ``warnings`` (and stderr) are the reading's own, in the same
    order, with ``warnings`` still the last key after ``figure``."""
    api.run(fraction_spec(), storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        reading = handle.campaign("frac").law()
        warnings, doc = reading.warnings, reading.to_dict()
    assert reading.mode == CROSS and reading.unit == "fraction" and reading.fit is not None
    assert [w for w in warnings if RANGE_TEXT in w] and doc["warnings"] == warnings
    shown = CliRunner().invoke(app, ["law", "frac", "--storage", sqlite_url, "--json"], env={"COLUMNS": "250"},
                               catch_exceptions=False)
    assert shown.exit_code == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert out["warnings"] == warnings and list(out)[-2:] == ["figure", "warnings"]
    assert all(f"warning: {w}" in " ".join(shown.stderr.split()) for w in warnings)


# --------------------------------------------------------------------------- 2. errors name the argument


def trajectory_runs(n: int = 3) -> list[dict[str, Any]]:
    """Done evaluations with trajectories (R = −0.3·exp(H) + 0.9 at each checkpoint)."""
    out = []
    for i in range(n):
        hs = [1.2 - 0.15 * k - 0.05 * i for k in range(5)]
        traj = {"train_entropy": hs, "val_accuracy": [-0.3 * math.exp(h) + 0.9 for h in hs]}
        out.append(point(i, hs[-1], traj["val_accuracy"][-1], metrics={"trajectory": traj}))
    return out


@pytest.mark.parametrize("call, text", [
    (lambda: campaign_law("c", settings(), trajectory_runs(), measure=" "), "measure (--measure) is empty"),
    (lambda: campaign_law("c", settings(), trajectory_runs(), mode="both"), "unknown mode (--mode) 'both'"),
    (lambda: campaign_law("c", settings(), trajectory_runs(), measure="final_entropy", mode=PER_RUN),
     "measure (--measure) chooses the cross-configuration fit's H; the per-run fit uses each run's "
     "train_entropy (metrics.trajectory): drop measure (--measure) for the per-run fit, or fit final_entropy "
     "across configurations with --mode cross-configuration (mode='cross-configuration' from Python)"),
    (lambda: campaign_law("c", settings(), law_points(0.3, 0.9, HS), mode=PER_RUN),
     "with --mode cross-configuration (mode='cross-configuration' from Python)"),
    (lambda: campaign_law("c", settings(), law_points(0.3, 0.9, HS), mode=POOLED),
     "with --mode cross-configuration (mode='cross-configuration' from Python)"),
    (lambda: grouped_law("c", settings(), law_points(0.3, 0.9, HS), " "), "by (--by) is empty"),
    (lambda: grouped_law("c", settings(), trajectory_runs(), "t", mode=PER_RUN),
     "drop by (--by), or choose --mode pooled or cross-configuration "
     "(mode='pooled' or 'cross-configuration' from Python)"),
])
def test_every_argument_error_names_the_argument_as_python_and_the_cli_spell_it(call: Any, text: str) -> None:
    """The errors said ``--measure``, ``--by``, ``--mode`` only: a Python caller passes ``measure=``."""
    with pytest.raises(LawFitError) as refused:
        call()
    message = str(refused.value)
    assert text in message
    for flag in ("--measure", "--mode", "--by"):  # every flag named goes with its Python name: before it, or
        given = len(re.findall(rf"{flag} [^(]*\({flag[2:]}=", message))  # after a value given it, `mode='…'`
        assert message.count(flag) == message.count(f"{flag[2:]} ({flag})") + given


# --------------------------------------------------------------------------- 3. --by a categorical


ACTIVATIONS = ["relu", "gelu", "tanh", "silu", "elu", "selu", "mish", "sigmoid", "softplus", "hardswish", "leaky",
               "identity"]
SPACE = {"activation": {"type": "categorical", "choices": ACTIVATIONS}, "lr": {"type": "float", "low": 0, "high": 1}}


def by_points(values: list[Any], by: str) -> list[dict[str, Any]]:
    return [point(i, 0.2 + 0.1 * i, 0.8 - 0.05 * i, params={by: v, "lr": 0.1 * i}) for i, v in enumerate(values)]


def test_by_a_categorical_with_groups_too_small_says_so_not_is_it_continuous() -> None:
    """`atlas law activations-digits --by activation` (8 evaluations, 8 of 12 activations)
    asked whether the 12-choice categorical ``activation`` was continuous."""
    s = settings(params=("activation", "lr"))
    reading = grouped_law("activations-digits", s, by_points(ACTIVATIONS[:8], "activation"), "activation",
                          space=SPACE)
    (line,) = [w for w in reading.warnings if "no value of activation" in w]
    assert "continuous" not in line
    assert "(8 groups, the largest of 1 point)" in line and "too small" in line
    assert "more evaluations per value" in line
    two_each = by_points(ACTIVATIONS[:4] * 2, "activation")
    (line,) = [w for w in grouped_law("c", s, two_each, "activation", space=SPACE).warnings if "no value" in w]
    assert "the largest of 2 points" in line and "continuous" not in line


def test_by_a_categorical_whose_groups_are_big_enough_but_unfittable_points_at_their_reasons() -> None:
    s = settings(params=("activation", "lr"))
    done = [point(i, 0.5 + 0.3 * (i % 2), 0.6 + 0.01 * i, params={"activation": ACTIVATIONS[i % 2], "lr": 0.1})
            for i in range(6)]  # each group at one entropy: its slope is undetermined
    reading = grouped_law("c", s, done, "activation", mode=CROSS, space=SPACE)
    assert all(g.fit is None and g.n == 3 for g in reading.groups)
    (line,) = [w for w in reading.warnings if "no value" in w]
    assert "the largest of 3 points" in line and "see each group's reason" in line and "too small" not in line


def test_by_a_parameter_of_one_value_per_evaluation_keeps_the_is_it_continuous_hint() -> None:
    """An int parameter no two evaluations share (a float one is cut into ranges now:
    tests/test_law_fixes.py::test_by_a_float_parameter_fits_a_few_ranges_of_it_sorted_and_labelled)."""
    s = settings(params=("activation", "seed"))
    done = by_points(ACTIVATIONS[:8], "activation")
    for i, ev in enumerate(done):
        ev["params"]["seed"] = 10 + i
    space = {**SPACE, "seed": {"type": "int", "low": 0, "high": 100}}
    reading = grouped_law("c", s, done, "seed", space=space)
    assert "no value of seed has a fittable group of at least 3 points (8 groups): is seed continuous?" \
        in reading.warnings


# --------------------------------------------------------------------------- 4. a ceiling outside R's range


def test_a_ceiling_above_one_for_a_fraction_is_flagged_and_other_units_are_not() -> None:
    """`atlas law entropy-rl --mode cross-configuration` reported ceiling 1.43849 [0.9459, 1.931]
    for an accuracy (``unit: fraction``) with no warning."""
    done = accuracy_points()
    reading = campaign_law("entropy-rl", settings({"accuracy": "fraction"}), done, mode=CROSS)
    fit = reading.fit
    assert fit is not None and fit.ceiling > 1 and fit.ceiling_ci[0] < 1 and max(fit.performance) <= 1
    (line,) = [w for w in reading.warnings if RANGE_TEXT in w]
    assert f"the ceiling −a + b = {fit.ceiling:.3g}" in line and "lies above 1," in line
    assert "accuracy (a fraction)" in line and "whole 95% CI" not in line
    assert reading.to_dict()["warnings"] == reading.warnings
    for units in ({}, {"accuracy": "nats"}):  # no unit, or an unbounded one: nothing to compare with
        assert not [w for w in campaign_law("c", settings(units), done).warnings if RANGE_TEXT in w]
    inside = campaign_law("c", settings({"accuracy": "fraction"}), law_points(0.3, 1.2, HS))
    assert inside.fit is not None and 0 < inside.fit.ceiling < 1
    assert not [w for w in inside.warnings if RANGE_TEXT in w]


def test_a_ceiling_below_zero_and_a_whole_interval_outside_are_said() -> None:
    below = fit_law(HS, [0.5 * math.exp(h) - 0.6 for h in HS], measure="final_entropy", objective="accuracy")
    assert below.ceiling < 0
    (line,) = [w for w in law_warnings(below, unit="Fraction ") if RANGE_TEXT in w]
    assert "lies below 0 (its whole 95% CI too)" in line
    assert not [w for w in law_warnings(below) if RANGE_TEXT in w]  # no unit: no range


def test_per_run_counts_the_runs_whose_ceiling_is_outside() -> None:
    runs = trajectory_runs(3)
    hs = [0.9, 0.7, 0.5, 0.3]
    runs[1]["metrics"]["trajectory"] = {"train_entropy": hs, "val_accuracy": [-0.4 * math.exp(h) + 1.5 for h in hs]}
    reading = campaign_law("c", settings(), runs)
    assert reading.mode == PER_RUN and reading.unit == "fraction"
    (line,) = [w for w in reading.warnings if "runs have a ceiling" in w]
    assert line.startswith("1 of 3 runs have a ceiling −a + b outside [0, 1], the range of val_accuracy")
    assert "evaluations 101 (1.1)" in line


def test_per_run_counts_the_runs_whose_r2_is_below_0_3() -> None:
    """A per-run reading whose median R² is above 0.3 says how many runs fall below 0.3
    (law.py's ``reading_warnings`` and ``WEAK_R2``; docs/entropy_rl.md: "8 of 16 below
    0.3"): four runs, one of R² 0.2 (its checkpoints ± 0.3 about the law), say "1 of 4";
    the four on the law say nothing."""
    runs = trajectory_runs(4)
    hs = runs[2]["metrics"]["trajectory"]["train_entropy"]
    runs[2]["metrics"]["trajectory"]["val_accuracy"] = [-0.3 * math.exp(h) + 0.9 + 0.3 * (-1) ** k
                                                        for k, h in enumerate(hs)]
    reading = campaign_law("c", settings(), runs)
    assert reading.mode == PER_RUN and 0 < reading.runs[2].fit.r2 < 0.3
    assert "1 of 4 runs have R² below 0.3" in reading.warnings
    assert not [w for w in campaign_law("c", settings(), trajectory_runs(4)).warnings if "R² below" in w]


def test_a_grouped_reading_flags_each_group_whose_ceiling_is_outside() -> None:
    high = accuracy_points()
    low = law_points(0.3, 1.2, HS)
    done = [{**ev, "id": 200 + i, "params": {"arm": "high" if i < len(high) else "low"}}
            for i, ev in enumerate(high + low)]
    reading = grouped_law("c", settings({"accuracy": "fraction"}, params=("arm",)), done, "arm")
    flagged = [w for w in reading.warnings if RANGE_TEXT in w]
    assert len(flagged) == 1 and flagged[0].startswith("arm = high: the ceiling")
