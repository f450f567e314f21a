"""Figures of a campaign with no done evaluation do not look like data
(:func:`archive.figures.empty_note`): a map keeps its measures' ranges, draws no colour bar
and says ``no done evaluation (N failed)``; a front spans each measure's range, has no
objective ticks and no legend, and says the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from archive import figures
from archive.layout import CellLayout, MeasureAxis
from archive.records import CampaignSettings, MapData, Stats

NOTE = "no done evaluation (24 failed)"


def settings(measures: tuple[str, ...]) -> CampaignSettings:
    return CampaignSettings(objective="score", maximize=True, qd_offset=0.0, budget=60, algorithm="random",
                            measures=measures, measure_directions={}, params=("a",), coordinate_options=(10,))


AXES = [MeasureAxis("entropy", 0.0, 4.0, 10), MeasureAxis("width", 0.0, 1.5, 10), MeasureAxis("depth", 2.0, 3.0, 3)]


def layout(kind: str, dims: int) -> CellLayout:
    if kind == "grid":
        return CellLayout.build("grid", AXES[:dims])
    return CellLayout.build("cvt", [MeasureAxis(a.name, a.low, a.high, 0) for a in AXES[:dims]], cells=12,
                            samples=600)


def stats(failed: int, elites: int = 0) -> Stats:
    return Stats({"pending": 0, "running": 0, "done": 0, "failed": failed}, failed, failed, elites, 100, 0.0, 0.0,
                 None, None)


def colour_bars(fig: Figure) -> list:
    return [ax for ax in fig.axes if hasattr(ax, "_colorbar")]


def texts(fig: Figure) -> list[str]:
    return [t.get_text().replace("\n", " ") for ax in fig.axes for t in ax.texts] + [
        t.get_text().replace("\n", " ") for t in fig.texts] + [ax.get_title().replace("\n", " ") for ax in fig.axes]


@pytest.mark.parametrize(("kind", "dims"), [("grid", 1), ("grid", 2), ("cvt", 1), ("cvt", 2), ("grid", 3),
                                            ("cvt", 3)])
def test_a_map_of_no_elite_has_no_colour_bar_and_says_why(tmp_path: Path, drawn: list[Figure], kind: str,
                                                          dims: int) -> None:
    cells = layout(kind, dims)
    data = MapData("broken", cells, settings(tuple(cells.measure_names)), [], stats(24))
    figures.draw_map(tmp_path / "map.png", data)
    fig = drawn[-1]
    assert colour_bars(fig) == []
    assert any(NOTE in t for t in texts(fig)), texts(fig)
    first = fig.axes[0]
    if kind == "grid" and dims <= 2:  # the measures' [low, high], whatever the data
        assert first.get_xlim() == (AXES[0].low, AXES[0].high)
        if dims == 2:
            assert first.get_ylim() == (AXES[1].low, AXES[1].high)


def test_a_map_of_no_elite_whose_failures_were_not_counted_says_none_is_done(tmp_path: Path,
                                                                             drawn: list[Figure]) -> None:
    cells = layout("grid", 2)
    figures.draw_map(tmp_path / "map.png", MapData("b", cells, settings(tuple(cells.measure_names)), [], stats(0)))
    (ax,) = drawn[-1].axes
    assert [t.get_text() for t in ax.texts] == ["no done evaluation"]


def test_a_map_with_elites_keeps_its_colour_bar(tmp_path: Path, drawn: list[Figure]) -> None:
    cells = layout("grid", 2)
    elites = [{"cell": 0, "objective": 1.0, "measures": {"entropy": 0.1, "width": 0.1}}]
    figures.draw_map(tmp_path / "map.png", MapData("b", cells, settings(tuple(cells.measure_names)), elites,
                                                   stats(3, elites=1)))
    assert len(colour_bars(drawn[-1])) == 1
    assert not any("no done evaluation" in t for t in texts(drawn[-1]))


def test_a_front_of_no_done_evaluation_spans_the_measures_and_says_why(tmp_path: Path,
                                                                      drawn: list[Figure]) -> None:
    names = ("entropy", "width")
    figures.pareto_front(tmp_path / "front.png", "broken", settings(names), [], measure_axes=AXES[:2], failed=24)
    fig = drawn[-1]
    for ax, axis in zip(fig.axes, AXES[:2], strict=True):
        assert ax.get_xlim() == (axis.low, axis.high)
        assert list(ax.get_yticks()) == [] and ax.get_legend() is None
        assert [t.get_text() for t in ax.texts] == [NOTE]
    assert fig.get_suptitle() == f"broken: score against each measure, {NOTE}"


def test_a_front_of_no_done_evaluation_without_ranges_shows_no_made_up_ticks(tmp_path: Path,
                                                                            drawn: list[Figure]) -> None:
    figures.pareto_front(tmp_path / "front.png", "broken", settings(("entropy",)), [])
    (ax,) = drawn[-1].axes
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
    assert [t.get_text() for t in ax.texts] == ["no done evaluation"]


def test_a_front_with_evaluations_is_drawn_as_before(tmp_path: Path, drawn: list[Figure]) -> None:
    rows = [{"objective": float(o), "measures": {"entropy": float(m)}} for o, m in zip(np.linspace(0, 1, 5),
                                                                                        np.linspace(0, 4, 5),
                                                                                        strict=True)]
    figures.pareto_front(tmp_path / "front.png", "ok", settings(("entropy",)), rows, measure_axes=AXES[:1], failed=2)
    (ax,) = drawn[-1].axes
    assert ax.get_legend() is not None and len(ax.texts) == 0
    assert drawn[-1].get_suptitle() == "ok: score against each measure, 5 evaluations"
