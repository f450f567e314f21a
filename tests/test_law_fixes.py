"""What two users of ``atlas law`` found, each fixed:

1. a fit with a < 0 (R rises with H) called −a + b a "ceiling", though it is the law's lowest value;
2. degenerate groups (R the same everywhere, H all ≈ 0, two distinct entropies) printed numbers,
   zero-width intervals, a false "too large" reason and SciPy's ``OptimizeWarning``;
3. ``--by`` a float parameter made one group per distinct float (one run each), unsorted, with 20-digit labels;
4. with ``--by``, the ungrouped fit's own warnings were dropped;
5. an unknown ``--measure`` listed the measures, not the metrics it also accepts;
6. a ceiling of 1.0004 for a ``fraction`` was printed ``= 1`` in a warning that it "lies above 1".
"""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

from archive import law, law_figures
from archive.law import CROSS, POOLED, LawFitError, campaign_law, fit_law
from archive.law_groups import grouped_law
from archive.records import CampaignSettings
from search import api
from search.cli import app

FLOOR_TEXT = "a floor, not a ceiling"


def settings(params: tuple[str, ...] = ("arm", "t"), units: dict[str, str] | None = None,
             objective: str = "accuracy") -> CampaignSettings:
    return CampaignSettings(objective=objective, maximize=True, qd_offset=0.0, budget=8, algorithm="random",
                            measures=("final_entropy",), measure_directions={}, params=params,
                            coordinate_options=(10,) * len(params), units=dict(units or {}))


def point(i: int, h: float, r: float, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": 100 + i, "seq": i, "status": "done", "params": params, "objective": r,
            "measures": {"final_entropy": h}, **extra}


def arm_r(arm: str, h: float) -> float:
    """``falls``: R = −0.3·exp(H) + 0.9 (a > 0); ``rises``: R = 0.3·exp(H) + 0.05 (a < 0)."""
    return -0.3 * math.exp(h) + 0.9 if arm == "falls" else 0.3 * math.exp(h) + 0.05


def atlas(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"}, terminal_width=250, catch_exceptions=False)


def legend_text(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())


# --------------------------------------------------------------------------- 1. a < 0: a floor


def test_a_negative_a_is_called_a_floor_in_warnings_tables_and_figures(tmp_path: Path, drawn: list[Figure]) -> None:
    """`atlas law rl-small --mode pooled`: a −0.0949 [−0.189, −0.00068], "ceiling −a + b (H = 0) 0.2318"."""
    hs = np.linspace(0.2, 1.2, 12)
    done = [point(i, float(h), arm_r("rises", float(h)) + 0.004 * math.sin(9 * h), {"arm": "rises", "t": 0.1})
            for i, h in enumerate(hs)]
    reading = campaign_law("c", settings(), done, mode=CROSS)
    fit = reading.fit
    assert fit is not None and fit.a < 0 and fit.a_ci[1] < 0
    (line,) = [w for w in reading.warnings if FLOOR_TEXT in w]
    assert fit.bound == "floor"
    assert line.startswith(f"a = {fit.a:.3g} [") and "accuracy rises with final_entropy here" in line
    assert f"−a + b = {fit.ceiling:.3g} is its value at H = 0" in line and "CI reaches 0" not in line
    assert reading.to_dict()["warnings"] == reading.warnings
    falling = campaign_law("c", settings(), [point(i, float(h), arm_r("falls", float(h)), {"arm": "falls", "t": 0})
                                              for i, h in enumerate(hs)])
    assert falling.fit is not None and falling.fit.bound == "ceiling"
    assert not [w for w in falling.warnings if FLOOR_TEXT in w]

    law_figures.law_figure(fit, tmp_path / "law.png")
    text = legend_text(drawn[-1])
    assert "floor −a + b" in text and "ceiling" not in text
    assert any(c.get_paths() and c.get_label().startswith("floor") for c in drawn[-1].axes[0].collections)

    # per group: the rising group is flagged, and named, the falling one is not
    both = done + [point(50 + i, float(h), arm_r("falls", float(h)), {"arm": "falls", "t": 0.2})
                   for i, h in enumerate(hs)]
    grouped = grouped_law("c", settings(), both, "arm", mode=CROSS)
    flagged = [w for w in grouped.warnings if FLOOR_TEXT in w]
    assert len(flagged) == 1 and flagged[0].startswith("arm = rises: a = ")


def test_a_negative_a_with_a_weak_fit_says_both_in_one_warning() -> None:
    """``--by activation``: a group with a = −0.003 and "ceiling" 0.80."""
    rng = np.random.default_rng(0)
    h = rng.uniform(0.2, 1.4, 30)
    r = 0.8 + 0.003 * np.exp(h) + rng.normal(0, 0.05, 30)
    fit = fit_law(h, r, measure="final_entropy", objective="accuracy")
    assert fit.a < 0 and fit.a_ci[1] > 0 and fit.r2 < law.WEAK_R2
    (line,) = law.law_warnings(fit)
    assert line.startswith(f"R² = {fit.r2:.3f} is below 0.3") and "a, b and the floor say little" in line
    assert FLOOR_TEXT in line and "a's 95% CI reaches 0" in line


def per_run_reading() -> law.LawReading:
    """Three runs: two whose accuracy falls as the entropy does not (a > 0), one whose accuracy rises."""
    runs = []
    for i, arm in enumerate(["falls", "rises", "falls"]):
        hs = [1.2 - 0.15 * k - 0.03 * i for k in range(6)]
        traj = {"train_entropy": hs, "val_accuracy": [arm_r(arm, h) + 0.002 * math.sin(5 * h) for h in hs]}
        runs.append(point(i, hs[-1], traj["val_accuracy"][-1], {"arm": arm, "t": 0.1}, metrics={"trajectory": traj}))
    return campaign_law("c", settings(), runs)


def test_per_run_counts_the_runs_with_a_floor_and_marks_them_in_the_figure(tmp_path: Path,
                                                                           drawn: list[Figure]) -> None:
    reading = per_run_reading()
    (line,) = [w for w in reading.warnings if FLOOR_TEXT in w]
    assert [r.fit.bound for r in reading.runs] == ["ceiling", "floor", "ceiling"]
    assert line.startswith("1 of 3 runs have a < 0: their val_accuracy rises with train_entropy")
    assert "evaluations 101 (a = " in line
    law_figures.runs_figure(reading, tmp_path / "runs.png")
    fig = drawn[-1]
    text = legend_text(fig)
    assert "#101: floor " in text and "#100: ceiling " in text and "a floor −a + b" in text
    markers = [c for c in fig.axes[0].collections if len(c.get_offsets()) == 1 and c.get_offsets()[0][0] == 0.0]
    floor_run = reading.runs[1].fit.ceiling
    assert [tuple(c.get_offsets()[0]) for c in markers if c.get_paths()[0] is not None]  # drawn at H = 0
    (floor_marker,) = [c for c in markers if c.get_offsets()[0][1] == pytest.approx(floor_run)]
    star = [c for c in markers if c is not floor_marker]
    assert len(star) == 2 and floor_marker.get_paths()[0] != star[0].get_paths()[0]


# --------------------------------------------------------------------------- 2. degenerate points


DEGENERATE = {
    # 11 points, accuracy 1 at H ≈ 0 (greedy decoding): was a −6.6e-08, b 1, ceiling [1, 1], R² 0.000
    "greedy": ([0.0, 1e-28, 3e-12, 2e-10, 1e-9, 0.0, 5e-28, 0.0, 1e-11, 0.0, 2e-9], [1.0] * 11),
    # six at H ≈ 0, one at 0.092: was a perfect fit with a zero-width CI
    "two": ([0.0, 1e-28, 1e-12, 0.0, 2e-10, 0.0, 0.092], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5]),
    # the accuracy is the same at spread entropies: was "not finite … too large for a float's range"
    "flat": ([0.1, 0.4, 0.7, 1.0, 1.3], [1.0] * 5),
}


def test_degenerate_groups_get_one_note_and_no_numbers_nor_scipy_warning() -> None:
    done = [point(100 * k + i, h, r, {"arm": name, "t": 0.5}) for k, (name, (hs, rs)) in enumerate(DEGENERATE.items())
            for i, (h, r) in enumerate(zip(hs, rs, strict=True))]
    done += [point(900 + i, h, arm_r("falls", h), {"arm": "fine", "t": 0.5})
             for i, h in enumerate([0.2, 0.6, 1.0, 1.4])]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SciPy's OptimizeWarning (law.py:174) leaked before
        reading = grouped_law("c", settings(), done, "arm", mode=CROSS)
        groups = {g.label: g for g in reading.groups}
        lines = reading.warnings
    assert groups["fine"].fit is not None
    for name in DEGENERATE:
        assert groups[name].fit is None, name
        assert not [w for w in lines if w.startswith(f"arm = {name}:")]  # no "R² = 0.000 is below 0.3"
    assert groups["greedy"].reason == ("every point has the same final_entropy (0, 0 to 2e-09: closer than 1e-06 "
                                       "nats) and the same accuracy (1): there is nothing to fit")
    assert groups["two"].reason.startswith(
        "the points have only 2 distinct values of final_entropy (0 (6 points), 0.092 (1 point); values closer")
    assert groups["flat"].reason.startswith("accuracy is the same (1) at every point: it does not change with "
                                            "final_entropy, so a = 0")
    assert "too large" not in groups["flat"].reason
    doc = reading.to_dict()
    assert all(g["ceiling_ci"] is None for g in doc["groups"] if g["label"] in DEGENERATE)


def test_fit_law_refuses_entropies_that_differ_by_rounding_and_keeps_close_but_real_ones() -> None:
    with pytest.raises(LawFitError, match=r"the same entropy \(0, 0 to 2e-28: closer than 1e-06 nats\); the law's"):
        fit_law([0.0, 1e-28, 2e-28, 0.0], [0.5, 0.4, 0.3, 0.2])
    with pytest.raises(LawFitError, match="only 2 distinct values"):
        fit_law([0.5, 0.5, 0.9, 0.9 + 1e-8], [0.6, 0.61, 0.5, 0.52])
    fit = fit_law([0.0, 0.01, 0.02, 0.03], [0.9, 0.88, 0.87, 0.85])  # small but real spread: fitted
    assert fit.a > 0 and fit.ceiling_ci[1] > fit.ceiling_ci[0]
    # two opposite laws that cancel: a ≈ 1e-16, whose covariance was infinite ("not finite … too large")
    hs = [0.2, 0.5, 0.8, 1.1] * 2
    flat = fit_law(hs, [arm_r("falls" if i < 4 else "rises", h) for i, h in enumerate(hs)])
    assert abs(flat.a) < 1e-9 and flat.r2 < 0.01 and 0 < flat.a_ci[1] - flat.a_ci[0] < 1


def test_atlas_law_of_a_degenerate_campaign_is_one_error_line(sqlite_url: str) -> None:
    api.run(flat_spec(), storage=sqlite_url, executor="inline")
    shown = atlas("law", "flat", "--storage", sqlite_url)
    assert shown.exit_code == 2 and not shown.stdout and shown.stderr.count("\n") == 1
    assert shown.stderr.startswith("error: accuracy is the same (1) at every point")
    grouped = atlas("law", "flat", "--storage", sqlite_url, "--by", "t", "--json")
    assert grouped.exit_code == 0, grouped.stderr
    doc = json.loads(grouped.stdout)
    assert doc["reason"].startswith("accuracy is the same (1)") and "a" not in doc
    assert all(not g["fitted"] and g["reason"].startswith("accuracy is the same") for g in doc["groups"])


def flat_target(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"objective": 1.0, "measures": {"final_entropy": 0.1 + float(params["t"])}}


def flat_spec() -> dict[str, Any]:
    return {
        "name": "flat",
        "evaluator": {"kind": "python", "target": "tests.test_law_fixes:flat_target"},
        "space": {"t": {"type": "float", "low": 0.0, "high": 1.0}},
        "objective": {"name": "accuracy", "direction": "maximize"},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 1.5, "bins": 5}],
        "search": {"algorithm": "random", "budget": 12, "batch_size": 12, "max_in_flight": 12, "seed": 0},
    }


# --------------------------------------------------------------------------- 3. --by a float parameter


def float_points(n: int = 60, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` evaluations, each with its own float ``temperature`` (many digits) and one law."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        temperature = float(np.exp(rng.uniform(math.log(1e-4), math.log(3e-2))))
        h = float(rng.uniform(0.1, 1.5))
        out.append(point(i, h, arm_r("falls", h) + float(rng.normal(0, 0.01)),
                         {"arm": "falls", "t": i % 7, "temperature": temperature}))
    return out


@pytest.mark.parametrize("space", [None, {"temperature": {"type": "float", "low": 1e-4, "high": 3e-2, "log": True},
                                          "t": {"type": "int", "low": 0, "high": 6}}])
def test_by_a_float_parameter_fits_a_few_ranges_of_it_sorted_and_labelled(space: dict[str, Any] | None) -> None:
    """Before: 60 groups of one point each, unsorted, labelled 0.00025088933955554174."""
    done = float_points()
    reading = grouped_law("c", settings(("arm", "t", "temperature")), done, "temperature", mode=CROSS, space=space)
    assert 2 <= len(reading.groups) <= 4 and reading.binned
    labels = [g.label for g in reading.groups]
    assert all(re.fullmatch(r"\[[0-9.e-]{1,8}, [0-9.e-]{1,8}\)", label) for label in labels[:-1]), labels
    assert labels[-1].endswith("]")
    lows = [g.value[0] for g in reading.groups]
    assert lows == sorted(lows) and all(g.value[0] < g.value[1] for g in reading.groups)
    assert all(g.fit is not None and g.n >= 10 for g in reading.groups)
    assert sum(g.n for g in reading.groups) == 60
    for g in reading.groups:  # each range holds exactly the values its label says
        low, high = g.value
        mine = [ev for ev in done if low <= ev["params"]["temperature"] < high
                or (g is reading.groups[-1] and ev["params"]["temperature"] == high)]
        assert len(mine) == g.n
    doc = reading.to_dict()
    assert doc["binned"] is True and [g["label"] for g in doc["groups"]] == labels
    assert reading.groups[0].title("temperature") == f"temperature in {labels[0]}"


def test_by_an_int_keeps_its_values_sorted_by_value_and_a_few_floats_keep_theirs() -> None:
    done = float_points(42)
    reading = grouped_law("c", settings(("arm", "t", "temperature")), done, "t", mode=CROSS)
    assert [g.label for g in reading.groups] == [str(k) for k in range(7)] and not reading.binned
    for ev in done:
        ev["params"]["temperature"] = [0.5, 0.25, 1.5][ev["id"] % 3]
    few = grouped_law("c", settings(("arm", "t", "temperature")), done, "temperature", mode=CROSS)
    assert [g.label for g in few.groups] == ["0.25", "0.5", "1.5"] and not few.binned


def test_pooled_groups_of_one_run_each_are_said_to_be_per_run_fits() -> None:
    runs = []
    for i in range(4):
        hs = [1.2 - 0.15 * k - 0.03 * i for k in range(6)]
        traj = {"train_entropy": hs, "val_accuracy": [arm_r("falls", h) + 0.002 * math.sin(5 * h + i) for h in hs]}
        runs.append(point(i, hs[-1], traj["val_accuracy"][-1], {"arm": "falls", "t": 3 * i},
                          metrics={"trajectory": traj}))
    reading = grouped_law("c", settings(), runs, "t")
    assert reading.mode == POOLED and all(g.fit is not None for g in reading.groups)
    (line,) = [w for w in reading.warnings if "holds one run" in w]
    assert all(g.evaluations == 1 for g in reading.groups)
    assert line.startswith("each of the 4 fitted groups of t holds one run") and "--mode per-run" in line
    assert not [w for w in grouped_law("c", settings(), runs, "arm").warnings if "holds one run" in w]


# --------------------------------------------------------------------------- 4. the ungrouped fit's warnings


def test_by_keeps_the_ungrouped_fits_own_warnings() -> None:
    """Two arms that each follow a law, in opposite directions: the fit of both explains little."""
    hs = np.linspace(0.2, 1.2, 10)
    done = [point(i + 20 * k, float(h), arm_r(arm, float(h)) + 0.02 * k * h, {"arm": arm, "t": 0.1})
            for k, arm in enumerate(["falls", "rises"]) for i, h in enumerate(hs)]
    whole = campaign_law("c", settings(), done, mode=CROSS)
    assert whole.fit is not None and whole.fit.r2 < law.WEAK_R2
    own = whole.warnings
    grouped = grouped_law("c", settings(), done, "arm", mode=CROSS)
    kept = [w for w in grouped.warnings if w.startswith("all points (ungrouped): ")]
    assert kept == [f"all points (ungrouped): {w}" for w in own] and any("R² =" in w for w in kept)


# --------------------------------------------------------------------------- 5. --measure names the metrics


def test_an_unknown_measure_lists_the_metrics_it_accepts_too() -> None:
    done = [point(i, 0.1 * i, 0.5, {"arm": "a", "t": 0.1},
                  metrics={"accuracy_at_1": 0.5, "trajectory": {"train_entropy": [0.1]}, "note": "x",
                           **{f"m{k:02d}": k for k in range(20)}}) for i in range(4)]
    with pytest.raises(LawFitError) as refused:
        campaign_law("c", settings(), done, measure="accuracy")
    assert str(refused.value) == (
        "campaign 'c' has no measure or metric named 'accuracy' (measures: final_entropy; metrics with a number: "
        "accuracy_at_1, m00, m01, m02, m03, m04, m05, m06, m07, m08, m09, m10 and 9 more)")


# --------------------------------------------------------------------------- 6. a ceiling above 1, shown above 1


def test_a_ceiling_just_above_one_is_printed_above_one() -> None:
    hs = [0.3, 0.5, 0.7, 0.9, 1.0]
    done = [point(i, h, -0.3 * math.exp(h) + 1.3004, {"arm": "a", "t": 0.1}) for i, h in enumerate(hs)]
    reading = campaign_law("c", settings(units={"accuracy": "fraction"}), done)
    (line,) = [w for w in reading.warnings if "outside [0, 1]" in w]
    assert "the ceiling −a + b = 1.0004 [1.0004, 1.0004] lies above 1 (its whole 95% CI too)" in line
    assert law.outside_text(1.005, (0.0, 1.0)) == "1.005" and law.outside_text(-0.0004, (0.0, 1.0)) == "-0.0004"
    assert law.outside_text(1.43849, (0.0, 1.0)) == "1.44"


# --------------------------------------------------------------------------- the CLI, end to end


def arm_target(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A ``kind: python`` target: the ``arm``'s law at H = 0.1 + t, with a small wobble."""
    h = 0.1 + float(params["t"])
    return {"objective": arm_r(str(params["arm"]), h) + 0.004 * math.sin(37.0 * h), "measures": {"final_entropy": h}}


def arm_spec() -> dict[str, Any]:
    return {
        "name": "arms",
        "evaluator": {"kind": "python", "target": "tests.test_law_fixes:arm_target"},
        "space": {"arm": {"type": "categorical", "choices": ["falls", "rises"]},
                  "t": {"type": "float", "low": 0.0, "high": 1.0}},
        "objective": {"name": "accuracy", "direction": "maximize", "unit": "fraction"},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 1.5, "bins": 5}],
        "search": {"algorithm": "random", "budget": 48, "batch_size": 16, "max_in_flight": 16, "seed": 0},
    }


def test_atlas_law_by_shows_floors_ranges_and_the_ungrouped_warnings(sqlite_url: str, tmp_path: Path,
                                                                     drawn: list[Figure]) -> None:
    api.run(arm_spec(), storage=sqlite_url, executor="inline")
    shown = atlas("law", "arms", "--storage", sqlite_url, "--by", "arm", "--out", str(tmp_path / "by.png"))
    assert shown.exit_code == 0, shown.stderr
    text = legend_text(drawn[-1])
    assert "arm = rises: floor " in text and "arm = falls: ceiling " in text and "a floor −a + b" in text
    err = " ".join(shown.stderr.split())
    assert "warning: arm = rises: a = " in err and FLOOR_TEXT in err
    assert "warning: all points (ungrouped): R² = " in err
    (rises,) = [line for line in shown.stdout.splitlines() if line.strip("│ ").startswith("rises")]
    assert " floor " in rises
    assert "floor: a < 0, so R rises with H" in " ".join(shown.stdout.split())

    ranges = json.loads(atlas("law", "arms", "--storage", sqlite_url, "--by", "t", "--json").stdout)
    assert ranges["binned"] is True and 2 <= len(ranges["groups"]) <= 4
    assert [g["value"][0] for g in ranges["groups"]] == sorted(g["value"][0] for g in ranges["groups"])
    shown = atlas("law", "arms", "--storage", sqlite_url, "--by", "t")
    assert ranges["groups"][0]["label"] in shown.stdout
