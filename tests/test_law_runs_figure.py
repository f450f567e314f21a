"""The per-run law figure (``atlas law NAME --out``) stays readable with many runs, and both
law figures draw the fitted curve down to H = 0, where the law's ceiling −a + b is. Before,
with 16 runs the legend named 12 and said nothing of the other 4, runs #1 and #11 shared a
colour (ten colours, repeated), and each run's curve stopped at its lowest checkpoint
entropy though the docs promised curves "down to H = 0"."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from archive import law, law_figures


def reading(n: int) -> law.LawReading:
    """``n`` runs (ids 100…), each fitted to 6 checkpoints of H in [0.4 + i/50, 1.6 + i/50],
    with ceilings that all differ."""
    runs = []
    for i in range(n):
        h = np.linspace(0.4, 1.6, 6) + i / 50
        r = -(0.1 + 0.01 * i) * np.exp(h) + 0.9 + 0.005 * np.sin(7 * h + i)
        runs.append(law.RunLaw(100 + i, i, law.fit_law(h, r, measure="train_entropy", objective="val_accuracy")))
    return law.LawReading(law.PER_RUN, "c", "train_entropy", "val_accuracy", runs=runs)


def draw(tmp_path: Path, drawn: list[Figure], n: int) -> tuple[law.LawReading, Figure]:
    r = reading(n)
    law_figures.runs_figure(r, tmp_path / "runs.png", title="c (per-run)")
    return r, drawn[-1]


def curves(fig: Figure) -> list[Line2D]:
    """The figure's drawn lines (not the legend's empty samples)."""
    return [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 1]


def legend_text(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())


@pytest.mark.parametrize("n", [4, 16, 40])
def test_every_run_has_a_colour_of_its_own(tmp_path: Path, drawn: list[Figure], n: int) -> None:
    _, fig = draw(tmp_path, drawn, n)
    colours = {to_rgba(line.get_color()) for line in curves(fig)}
    assert len(colours) == n


@pytest.mark.parametrize("n", [4, 10, 16, 40])
def test_the_legend_names_every_run_or_says_how_many_it_does_not(tmp_path: Path, drawn: list[Figure],
                                                                 n: int) -> None:
    r, fig = draw(tmp_path, drawn, n)
    text = legend_text(fig)
    named = {int(m) for m in re.findall(r"#(\d+):", text)}
    assert named <= {run.evaluation_id for run in r.runs}
    unnamed = re.search(r"(\d+) more runs? not listed", text)
    assert len(named) + (int(unnamed.group(1)) if unnamed else 0) == n
    if n <= law_figures.MAX_LISTED_RUNS:
        assert unnamed is None
    else:  # the ones named are the highest and lowest ceilings; the colour bar spans them all
        ceilings = sorted((run.fit.ceiling, run.evaluation_id) for run in r.runs)
        assert {ident for _, ident in ceilings[:5] + ceilings[-5:]} == named
        assert any(hasattr(ax, "_colorbar") for ax in fig.axes)


@pytest.mark.parametrize("n", [1, 4, 16])
def test_each_runs_curve_reaches_h_0_dashed_beyond_its_checkpoints(tmp_path: Path, drawn: list[Figure],
                                                                   n: int) -> None:
    r, fig = draw(tmp_path, drawn, n)
    lines = curves(fig)
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(dashed) == n
    reached = sorted((float(line.get_ydata()[0]), float(line.get_xdata()[0])) for line in dashed)
    assert [x for _, x in reached] == [0.0] * n
    assert [y for y, _ in reached] == pytest.approx(sorted(run.fit.ceiling for run in r.runs))
    for line in lines:
        if line.get_linestyle() == "-":  # solid: over the run's checkpoints only
            assert min(line.get_xdata()) >= 0.4 - 1e-12


def test_the_cross_configuration_curve_is_solid_over_its_points_and_dashed_to_h_0(
        tmp_path: Path, drawn: list[Figure]) -> None:
    fit = law.fit_law([0.5, 0.9, 1.3, 1.7], [0.8, 0.7, 0.5, 0.2], measure="final_entropy", objective="accuracy")
    law_figures.law_figure(fit, tmp_path / "law.png")
    lines = curves(drawn[-1])
    solid = [line for line in lines if line.get_linestyle() == "-"]
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert len(solid) == 1 and len(dashed) == 1
    assert (min(solid[0].get_xdata()), max(solid[0].get_xdata())) == pytest.approx((0.5, 1.7))
    assert (min(dashed[0].get_xdata()), max(dashed[0].get_xdata())) == pytest.approx((0.0, 0.5))
    assert dashed[0].get_ydata()[0] == pytest.approx(fit.ceiling)


def test_curve_spans_cover_h_0_whatever_side_the_points_are_on() -> None:
    assert law_figures.curve_spans([0.5, 1.0]) == ((0.5, 1.0), (0.0, 0.5))
    assert law_figures.curve_spans([0.0, 1.0]) == ((0.0, 1.0), None)
    assert law_figures.curve_spans([-0.5, 1.0]) == ((-0.5, 1.0), None)
    assert law_figures.curve_spans([-2.0, -1.0]) == ((-2.0, -1.0), (-1.0, 0.0))
