"""Figures and the entropy-performance law at their edges: objectives near the largest
float, names with ``$`` in them (drawn as written, never as mathtext), fits that overflow,
and metric values that are not real numbers."""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure
from typer.testing import CliRunner

import archive
from archive import figures, law, law_figures
from archive.layout import CellLayout, MeasureAxis
from archive.records import CampaignSettings
from search import api
from search.cli import app
from tests.conftest import quadratic_spec

HUGE = 1.7e308
OBJECTIVE = "gain $x^$ y"
MEASURE = r"p $\frac{$ q"
OVERFLOWING = {"h": [0.5, 1.0, 1.5, 2.0], "r": [1e200, -1e200, 3e199, 1.0]}


def settings(objective: str = "score", measures: tuple[str, ...] = ("ma", "mb")) -> CampaignSettings:
    return CampaignSettings(objective=objective, maximize=True, qd_offset=0.0, budget=8, algorithm="random",
                            measures=measures, measure_directions={}, params=("a",), coordinate_options=(10,))


def rows(objectives: list[float], measures: tuple[str, ...], layout: CellLayout | None = None) -> list[dict]:
    """Done evaluations (or elites, with their cells) spread over [0, 1] in each measure."""
    out = []
    for i, objective in enumerate(objectives):
        point = {m: (i + 0.5) / len(objectives) for m in measures}
        out.append({"objective": objective, "measures": point})
    if layout is not None:
        cells = layout.index_of(np.array([[r["measures"][m] for m in measures] for r in out]))
        out = [{**r, "cell": int(c)} for r, c in zip(out, cells, strict=True)]
    return out


def layout_of(kind: str, names: tuple[str, ...]) -> CellLayout:
    axes = [MeasureAxis(n, 0.0, 1.0, 4 if i < 2 else 3) for i, n in enumerate(names)]
    return CellLayout.build(kind, axes, cells=8 if kind == "cvt" else None, samples=400)


def finite_limits(fig: Figure) -> bool:
    return all(np.isfinite([*ax.get_xlim(), *ax.get_ylim()]).all() for ax in fig.axes)


def test_a_front_of_objectives_near_the_largest_float_has_finite_axes(tmp_path: Path,
                                                                       drawn: list[Figure]) -> None:
    data = rows([HUGE, -HUGE, 1.0, 2.0], ("ma", "mb"))
    data[0]["measures"]["mb"] = -HUGE
    out = figures.pareto_front(tmp_path / "front.png", "c", settings(), data)
    assert out.read_bytes()[:4] == b"\x89PNG" and finite_limits(drawn[0])


@pytest.mark.parametrize("names", [("ma",), ("ma", "mb")])
def test_a_cvt_map_of_objectives_near_the_largest_float_is_drawn(tmp_path: Path, drawn: list[Figure],
                                                                 names: tuple[str, ...]) -> None:
    layout = layout_of("cvt", names)
    out = figures.elite_map(tmp_path / "map.png", layout, settings(measures=names),
                            rows([HUGE, -HUGE, 1.0], names, layout), "t")
    assert out.read_bytes()[:4] == b"\x89PNG" and finite_limits(drawn[0])


def extreme(params: dict, ctx: object) -> dict:
    """A ``kind: python`` target: objectives at ±1.7e308 and in between."""
    a = params["a"]
    return {"objective": HUGE if a > 0.66 else -HUGE if a < 0.33 else a, "measures": {"ma": a, "mb": 1 - a}}


def test_a_stored_cvt_campaign_near_the_largest_float_is_mapped(sqlite_url: str, tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=12, search__algorithm="random",
                          evaluator={"kind": "python", "target": "tests.test_figure_edges:extreme"},
                          archive={"type": "cvt", "cells": 8, "samples": 400})
    api.run(spec, storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        objectives = {e["objective"] for e in handle.campaign("quad").evaluations(status="done")}
        assert {HUGE, -HUGE} <= objectives
        assert handle.campaign("quad").map(tmp_path / "map.png").read_bytes()[:4] == b"\x89PNG"


def svg_text(path: Path) -> str:
    """The text of an SVG written with its text as text (not glyph paths), unescaped."""
    return html.unescape(path.read_text())


def draw_map(names: tuple[str, ...], kind: str) -> Callable[[Path], Path]:
    layout = layout_of(kind, names)
    return lambda path: figures.elite_map(path, layout, settings(OBJECTIVE, names),
                                          rows([1.0, 2.0, 3.0], names, layout), f"{OBJECTIVE}: map")


def a_fit() -> law.LawFit:
    return law.fit_law([0.2, 0.6, 1.0, 1.4], [0.9, 0.8, 0.6, 0.3], measure=MEASURE, objective=OBJECTIVE)


def draw_law(path: Path) -> Path:
    return law_figures.law_figure(a_fit(), path, title=f"{MEASURE} law")


def draw_runs(path: Path) -> Path:
    reading = law.LawReading(law.PER_RUN, "c", MEASURE, OBJECTIVE, runs=[law.RunLaw(1, 1, a_fit())])
    return law_figures.runs_figure(reading, path, title=f"{MEASURE} runs")


def draw_front(path: Path) -> Path:
    names = (MEASURE, "mb")
    return figures.pareto_front(path, "c $1$", settings(OBJECTIVE, names), rows([1.0, 2.0, 3.0], names))


FIGURES: dict[str, Callable[[Path], Path]] = {
    "grid-1": draw_map((MEASURE,), "grid"),
    "grid-2": draw_map((MEASURE, "mb"), "grid"),
    "facets-3": draw_map(("ma", MEASURE, "m $c$"), "grid"),
    "facets-4": draw_map(("ma", "mb", "mc", MEASURE), "grid"),
    "cvt-2": draw_map((MEASURE, "mb"), "cvt"),
    "cvt-3": draw_map(("ma", "mb", MEASURE), "cvt"),
    "front": draw_front,
    "law": draw_law,
    "runs": draw_runs,
}
EXPECTED = {"front": ["c $1$", OBJECTIVE, MEASURE], "law": [OBJECTIVE, MEASURE], "runs": [OBJECTIVE, MEASURE],
            "facets-3": [OBJECTIVE, MEASURE, "m $c$"]}


@pytest.mark.parametrize("figure", list(FIGURES))
def test_names_with_dollars_are_drawn_as_written(tmp_path: Path, figure: str) -> None:
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        out = FIGURES[figure](tmp_path / "figure.svg")
    text = svg_text(out)
    for name in EXPECTED.get(figure, [OBJECTIVE, MEASURE]):
        assert name in text, name


def test_plain_text_escapes_every_dollar() -> None:
    assert figures.plain_text(r"a $b$ \$c") == r"a \$b\$ \\$c"


@pytest.mark.parametrize("h, r", [(OVERFLOWING["h"], OVERFLOWING["r"]), ([0.5, 1.0, 1.5], [HUGE, -HUGE, 1.0]),
                                  ([0.5, 1.0, 1.5], [HUGE, HUGE, HUGE])])
def test_a_fit_that_overflows_is_refused_without_warnings(h: list[float], r: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(law.LawFitError, match="not finite"):
            law.fit_law(h, r)


def overflowing(params: dict, ctx: object) -> dict:
    """A ``kind: python`` target: the k-th of :data:`OVERFLOWING`'s points."""
    k = int(params["k"])
    return {"objective": OVERFLOWING["r"][k], "measures": {"final_entropy": OVERFLOWING["h"][k]}}


def test_atlas_law_reports_a_fit_that_overflows_as_one_error(sqlite_url: str) -> None:
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.test_figure_edges:overflowing"},
                          space={"k": {"type": "int", "low": 0, "high": 3}},
                          measures=[{"name": "final_entropy", "low": 0.0, "high": 2.0, "bins": 4}],
                          search={"algorithm": "random", "budget": 4, "batch_size": 4, "max_in_flight": 4,
                                  "initial_points": [{"k": k} for k in range(4)]})
    api.run(spec, storage=sqlite_url, executor="inline")
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(app, ["law", "quad", "--storage", sqlite_url, *extra], catch_exceptions=False)
        assert result.exit_code == 2, result.stdout
        assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
        assert "not finite" in result.stderr and not result.stdout


def metric_values(values: list[Any]) -> list[dict[str, Any]]:
    """Done evaluations whose metric ``cval`` holds each of ``values`` in turn, objectives 0, 1, …"""
    return [{"objective": float(i), "measures": {}, "metrics": {"cval": v}} for i, v in enumerate(values)]


def test_only_real_numbers_are_law_points() -> None:
    done = metric_values(["a", "1", 1, 2.5, False, "false", True, None, float("nan")])
    assert law.campaign_points("c", settings(), done, "cval") == ("cval", [1.0, 2.5], [2.0, 3.0])
    with pytest.raises(law.LawFitError, match="needs at least 3"):
        law.cross_configuration_law("c", settings(), done, "cval")
    assert law.campaign_points("c", settings(), metric_values([10 ** 400, 3]), "cval")[1] == [3.0]


def test_only_real_numbers_are_trajectory_checkpoints() -> None:
    trajectory = {"train_entropy": [0.1, "0.2", 0.3, True], "val_accuracy": [0.5, 0.6, "0.7", 0.8]}
    assert law.trajectory_points(trajectory) == ([0.1], [0.5])
