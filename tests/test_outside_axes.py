"""Elites measured outside the map's axes (:mod:`archive.outside`): told in ``atlas status
NAME`` (a line per measure, ``outside_axes`` in ``--json``), by a warning at the end of
``atlas run``/``atlas resume`` and by a note on the elite map; a campaign inside its axes
gets none of them. They had been drawn silently in the edge cells, at values never measured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from archive.layout import MeasureAxis
from archive.outside import Outside, OutsideAxis, figure_note, measure_text, outside_axes, run_warning
from search import cli as cli_module
from tests.conftest import quadratic_spec

# ma = a and mb = b are in [0, 1]: ma's axis stops at 0.5, mb's starts at 0.25
CLIPPED = [{"name": "ma", "low": 0.0, "high": 0.5, "bins": 5}, {"name": "mb", "low": 0.25, "high": 1.0, "bins": 5}]


def atlas(*args: str) -> Any:
    return CliRunner().invoke(cli_module.app, list(args), env={"COLUMNS": "200"}, terminal_width=200,
                              catch_exceptions=False)


def run_campaign(tmp_path: Path, name: str, **overrides: Any) -> tuple[Any, str]:
    """``atlas run`` of a 30-evaluation quadratic campaign, inline; its result and storage."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(name=name, search__budget=30, **overrides)))
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    done = atlas("run", str(spec), "--executor", "inline", "--storage", url, "--map", str(tmp_path / f"{name}.png"))
    assert done.exit_code == 0, done.output
    return done, url


# -- the counts -----------------------------------------------------------------------------
def test_outside_axes_counts_each_side_and_its_extreme() -> None:
    axes = [MeasureAxis("h", 0.0, 2.0, 10), MeasureAxis("d", 0.25, 1.0, 5)]
    elites = [{"measures": {"h": 2.32, "d": 0.1}}, {"measures": {"h": 2.1, "d": 0.5}},
              {"measures": {"h": 2.0, "d": 1.5}}, {"measures": {"h": 0.0, "d": 0.25}},
              {"measures": {"h": float("nan")}}, {"measures": None}]
    found = outside_axes(axes, elites)
    assert found.elites == 3  # the first is outside on both measures; 2.0 and 0.0 are on the edges, inside
    assert found.measures == (OutsideAxis("h", 0, 0.0, 2.0, 0, 2, None, 2.32),
                              OutsideAxis("d", 1, 0.25, 1.0, 1, 1, 0.1, 1.5))
    assert not outside_axes(axes, [{"measures": {"h": 1.0, "d": 0.5}}])


def test_the_extreme_below_an_axis_is_its_lowest_value() -> None:
    """archive/outside.py: each side's extreme; below the axis, "down to" the lowest value."""
    found = outside_axes([MeasureAxis("h", 0.0, 2.0, 10)],
                         [{"measures": {"h": -0.1}}, {"measures": {"h": -0.4}}, {"measures": {"h": -0.2}}])
    (axis,) = found.measures
    assert (axis.below, axis.least) == (3, -0.4)


def test_the_texts_name_the_side_the_extreme_and_the_bound_to_widen() -> None:
    h = OutsideAxis("mean_entropy", 0, 0.0, 2.0, 0, 3, None, 2.32)
    assert measure_text(h, "grid") == ("mean_entropy: 3 elites above 2 (up to 2.32), drawn in its last bin; "
                                       "widen measures.0 (high >= 2.32) in a new campaign to see them")
    d = OutsideAxis("d", 1, 0.25, 1.0, 1, 2, 0.1, 1.5)
    assert "1 elite below 0.25 (down to 0.1) and 2 above 1 (up to 1.5), each drawn in its nearest cell" in \
        measure_text(d, "cvt")
    found = Outside(4, (h, d))
    assert run_warning(found, "grid", "q").startswith("4 elites lie outside the map's axes, drawn in the edge cells: "
                                                      "mean_entropy 3 above 2 (up to 2.32); d 1 below 0.25")
    assert figure_note(found, "grid") == ("4 elites lie beyond the axes (mean_entropy up to 2.32, "
                                          "d down to 0.1 and up to 1.5), drawn in the edge cells")


# -- the three surfaces -------------------------------------------------------------------------
def test_a_campaign_past_its_axes_is_told_in_status_json_run_and_map(tmp_path: Path, drawn: list[Any]) -> None:
    done, url = run_campaign(tmp_path, "past", measures=CLIPPED)
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "outside the map's axes, drawn in the edge cells: ma " in warnings[0], done.stderr
    assert "above 0.5 (up to 0." in warnings[0] and "mb " in warnings[0] and "below 0.25" in warnings[0]
    assert done.stderr.rstrip().splitlines()[-1] == warnings[0]  # at the end
    assert "elite map:" in done.stdout  # the summary as it was

    row = json.loads(atlas("status", "past", "--storage", url, "--json").stdout)
    found = row["outside_axes"]
    (ma, mb) = found["measures"]
    assert (ma["measure"], ma["index"], ma["below"], ma["least"]) == ("ma", 0, 0, None)
    assert ma["above"] > 0 and 0.5 < ma["greatest"] <= 1.0
    assert mb["measure"] == "mb" and mb["below"] > 0 and 0.0 <= mb["least"] < 0.25
    assert found["elites"] >= max(ma["above"], mb["below"] + mb["above"])

    shown = atlas("status", "past", "--storage", url).stdout
    lines = [line for line in shown.splitlines() if "outside the map" in line]
    assert len(lines) == 2, shown
    elites = "elite" if ma["above"] == 1 else "elites"
    assert f"ma: {ma['above']} {elites} above 0.5 (up to {ma['greatest']:.4g}), drawn in its last bin" in lines[0]
    assert "widen measures.0 (high >= " in lines[0] and "mb: " in lines[1] and "measures.1 (low <= " in lines[1]

    title = drawn[-1].axes[0].get_title()
    assert f"{found['elites']} elites lie beyond the axes (ma up to {ma['greatest']:.4g}" in title.replace("\n", " ")


def test_a_campaign_within_its_axes_is_told_nothing(tmp_path: Path, drawn: list[Any]) -> None:
    done, url = run_campaign(tmp_path, "inside")
    assert "warning:" not in done.stderr
    row = json.loads(atlas("status", "inside", "--storage", url, "--json").stdout)
    assert row["outside_axes"] == {"elites": 0, "measures": []}
    assert "outside the map" not in atlas("status", "inside", "--storage", url).stdout
    assert "beyond the axes" not in drawn[-1].axes[0].get_title()
    (listed,) = json.loads(atlas("status", "--storage", url, "--json").stdout)
    assert listed["outside_axes"] is None  # the list reads no elites, as it reads no proposers


@pytest.mark.parametrize("measures", [3, 1])
def test_the_map_note_is_drawn_for_facets_and_strips(tmp_path: Path, drawn: list[Any], measures: int) -> None:
    """A grid of three measures (facets, under the figure's title) and of one (a strip)."""
    axes = [{"name": "ma", "low": 0.0, "high": 0.2, "bins": 3}, {"name": "mb", "low": 0.0, "high": 1.0, "bins": 3},
            {"name": "ma2", "low": 0.0, "high": 1.0, "bins": 2}][:measures]
    evaluator = {"kind": "python", "target": "tests.test_outside_axes:three_measures"}
    run_campaign(tmp_path, f"m{measures}", measures=axes, evaluator=evaluator)
    fig = drawn[-1]
    title = fig.get_suptitle() if measures == 3 else fig.axes[0].get_title()
    assert "beyond the axes (ma up to" in title.replace("\n", " ") and "drawn in the edge cells" in title.replace(
        "\n", " ")


def three_measures(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The quadratic's objective; measures ma = a, mb = b and ma2 = a."""
    a, b = float(params["a"]), float(params["b"])
    return {"objective": 1 - (a - 0.3) ** 2 - (b - 0.6) ** 2, "measures": {"ma": a, "mb": b, "ma2": a}}
