"""What a reader of an elite map needs from it, asserted on the figure's artists: a colour
scale that one outlier does not flatten, empty cells unlike any colour of the scale and
named in a key, bin edges on the axes, long names inside the canvas, a 1-D CVT strip that
fills its axes, and the better elite the brighter one whichever way the objective goes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colorbar import Colorbar
from matplotlib.figure import Figure

from archive import figures
from archive.layout import CellLayout, MeasureAxis
from archive.records import CampaignSettings


def settings(measures: list[str], objective: str = "score", maximize: bool = True) -> CampaignSettings:
    return CampaignSettings(objective=objective, maximize=maximize, qd_offset=0.0, budget=8, algorithm="random",
                            measures=tuple(measures), measure_directions={}, params=("a",), coordinate_options=(10,))


def elites(layout: CellLayout, objectives: list[float], seed: int = 0) -> list[dict]:
    """One elite per cell (the first len(objectives) cells of a shuffled order), at its cell's centre."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([a.low for a in layout.axes], [a.high for a in layout.axes], size=(4000, len(layout.axes)))
    cells = layout.index_of(points)
    _, first = np.unique(cells, return_index=True)
    first = rng.permutation(first)[:len(objectives)]
    assert len(first) == len(objectives)
    names = layout.measure_names
    return [{"cell": int(cells[i]), "objective": float(o), "measures": dict(zip(names, points[i], strict=True))}
            for i, o in zip(first, objectives, strict=True)]


def grid(*bins: int, names: list[str] | None = None, low: float = 0.0, high: float = 1.0) -> CellLayout:
    names = names or [f"m{i}" for i in range(len(bins))]
    return CellLayout.build("grid", [MeasureAxis(n, low, high, b) for n, b in zip(names, bins, strict=True)])


def cvt(dims: int, cells: int = 12) -> CellLayout:
    return CellLayout.build("cvt", [MeasureAxis(f"m{i}", 0.0, 1.0, 0) for i in range(dims)], cells=cells, samples=600)


def draw(tmp_path: Path, drawn: list[Figure], layout: CellLayout, rows: list[dict], **kwargs: object) -> Figure:
    figures.elite_map(tmp_path / "map.png", layout, settings(layout.measure_names, **kwargs), rows, "t")  # type: ignore[arg-type]
    return drawn[-1]


def colour_bar(fig: Figure) -> Colorbar:
    """The figure's colour bar (the axes matplotlib made for it)."""
    (bar,) = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    return bar._colorbar


@pytest.mark.parametrize("outlier", [1e12, float("inf"), 1.7e308])
def test_one_outlier_does_not_flatten_the_other_cells_colours(tmp_path: Path, drawn: list[Figure],
                                                              outlier: float) -> None:
    objectives = [-i / 10 for i in range(29)] + [outlier]
    fig = draw(tmp_path, drawn, grid(10, 10), elites(grid(10, 10), objectives))
    bar = colour_bar(fig)
    assert bar.mappable.get_clim() == (-2.8, 0.0)  # the other 29 spread over the whole scale
    assert bar.extend == "max" and "1 off-scale" in bar.ax.get_ylabel()


def test_an_ordinary_spread_of_bad_cells_keeps_the_whole_range(tmp_path: Path, drawn: list[Figure]) -> None:
    objectives = [0.97 + i * 1e-4 for i in range(60)] + [0.1, 0.4, 0.7]
    fig = draw(tmp_path, drawn, grid(10, 10), elites(grid(10, 10), objectives))
    bar = colour_bar(fig)
    assert bar.mappable.get_clim() == (0.1, max(objectives)) and bar.extend == "neither"
    assert "off-scale" not in bar.ax.get_ylabel()


def test_colour_scale_counts_what_lies_beyond_it() -> None:
    scale = figures.colour_scale(np.array([-np.inf, *np.linspace(0, 1, 20), 1e9, np.nan]), (0.0, 1.0))
    assert (scale.low, scale.high, scale.below, scale.above, scale.extend) == (0.0, 1.0, 1, 1, "both")
    assert figures.colour_scale(np.array([np.inf]), (-0.1, 0.1)) == figures.ColourScale(-0.1, 0.1, 0, 1)


@pytest.mark.parametrize("layout", ["grid-1", "grid-2", "cvt-1", "cvt-2", "facets"])
def test_empty_cells_are_hatched_grey_and_named_in_a_key(tmp_path: Path, drawn: list[Figure], layout: str) -> None:
    shape = {"grid-1": grid(6), "grid-2": grid(6, 6), "cvt-1": cvt(1), "cvt-2": cvt(2), "facets": grid(4, 4, 2)}[layout]
    fig = draw(tmp_path, drawn, shape, elites(shape, [1.0, 2.0, 3.0]))
    maps = [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]
    for ax in maps:  # what shows through an undrawn (empty) cell
        assert ax.patch.get_hatch() == figures.EMPTY_HATCH
        assert ax.patch.get_facecolor()[:3] != (1.0, 1.0, 1.0)
    keys = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert keys == [figures.EMPTY_LABEL]


@pytest.mark.parametrize("bins", [(5, 20), (1, 7), (100, 3)])
def test_every_bin_edge_of_a_grid_map_is_a_minor_tick(tmp_path: Path, drawn: list[Figure],
                                                      bins: tuple[int, int]) -> None:
    layout = grid(*bins, low=-25.6, high=25.6)
    ax = draw(tmp_path, drawn, layout, elites(layout, [1.0, 2.0])).axes[0]
    for axis, n in zip((ax.xaxis, ax.yaxis), bins, strict=True):
        assert np.allclose(axis.get_minor_locator()(), np.linspace(-25.6, 25.6, n + 1))


LONG = ["mean_token_entropy_of_the_sampling_distribution_in_nats_per_token_over_all_prompts_and_samples",
        "distinct_2_of_the_samples_of_each_problem_averaged_over_the_held_out_problems"]


@pytest.mark.parametrize("measures", [1, 2, 3])
def test_long_names_stay_inside_the_figure(tmp_path: Path, drawn: list[Figure], measures: int) -> None:
    layout = grid(*[4] * measures, names=[*LONG, "a_third_measure_" * 6][:measures])
    fig = draw(tmp_path, drawn, layout, elites(layout, [1.0, 2.0, 3.0]),
               objective="exact_match_accuracy_on_held_out_problems_times_four_samples_each")
    fig.canvas.draw()  # laid out at the figure's own dpi, as its bbox is
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    texts = [t for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label, ax.title) if t.get_text()]
    texts += [t for t in fig.texts if t.get_text()]
    assert len(texts) >= 3
    for text in texts:
        box = text.get_window_extent(renderer)
        assert canvas.x0 - 1 <= box.x0 and box.x1 <= canvas.x1 + 1, text.get_text()
        assert canvas.y0 - 1 <= box.y0 and box.y1 <= canvas.y1 + 1, text.get_text()


def test_a_one_measure_cvt_map_fills_its_axes(tmp_path: Path, drawn: list[Figure]) -> None:
    layout = cvt(1)
    ax = draw(tmp_path, drawn, layout, elites(layout, [1.0, 2.0])).axes[0]
    assert ax.get_aspect() == "auto" and list(ax.get_yticks()) == []


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("kind", ["grid", "cvt"])
def test_the_better_elite_is_the_brighter_colour(tmp_path: Path, drawn: list[Figure], maximize: bool,
                                                 kind: str) -> None:
    layout = grid(4, 4) if kind == "grid" else cvt(2)
    bar = colour_bar(draw(tmp_path, drawn, layout, elites(layout, [1.0, 2.0, 3.0]), maximize=maximize))
    best, worst = (3.0, 1.0) if maximize else (1.0, 3.0)
    luminance = [np.dot(bar.cmap(bar.norm(v))[:3], [0.2126, 0.7152, 0.0722]) for v in (best, worst)]
    assert luminance[0] > luminance[1] + 0.5
    assert bar.cmap.name.startswith("viridis")


def test_one_diverged_evaluation_does_not_flatten_the_front(tmp_path: Path, drawn: list[Figure]) -> None:
    rng = np.random.default_rng(0)
    rows = [{"objective": float(rng.uniform(0, 1)), "measures": {"entropy": float(rng.uniform(0, 2))}}
            for _ in range(40)]
    rows[0]["objective"] = 1e12  # a diverged run's loss
    figures.pareto_front(tmp_path / "front.png", "c", settings(["entropy"], objective="loss", maximize=False), rows)
    ax = drawn[-1].axes[0]
    low, high = ax.get_ylim()
    assert -0.1 < low < 0.1 and 0.9 < high < 1.1  # the other 39 span the axis
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "1 off-scale, at the edge" in legend
    (edge,) = [c for c in ax.collections if c.get_label() == "1 off-scale, at the edge"]
    assert edge.get_offsets()[0][1] == pytest.approx(high)  # drawn at the top edge


def test_a_per_run_law_titled_by_the_caller_still_says_how_many_runs(tmp_path: Path, drawn: list[Figure]) -> None:
    from archive import law, law_figures

    fit = law.fit_law([0.2, 0.6, 1.0, 1.4], [0.9, 0.8, 0.6, 0.3], measure="train_entropy", objective="accuracy")
    reading = law.LawReading(law.PER_RUN, "c", "train_entropy", "accuracy",
                             runs=[law.RunLaw(i, 1, fit) for i in range(14)])
    law_figures.runs_figure(reading, tmp_path / "runs.png", title="c (per-run): R = −a·exp(H) + b")
    title = drawn[-1].axes[0].get_title()
    assert title.startswith("c (per-run)") and f"14 runs; median ceiling {fit.ceiling:.3g}" in title


def test_units_the_spec_gives_label_the_axes_and_the_colour_bar(tmp_path: Path, drawn: list[Figure]) -> None:
    """``unit`` on a measure or the objective (a label, nothing more) reaches the campaign's
    settings and the map's axes and colour bar; a spec without units draws names alone and
    keeps its hash (a stored campaign is the same campaign); an empty unit is refused."""
    from search.spec import SpecError, parse_spec
    from tests.conftest import quadratic_spec

    plain = quadratic_spec()
    spec = quadratic_spec()
    spec["objective"]["unit"] = "fraction"
    spec["measures"][0]["unit"] = "nats"
    parsed = parse_spec(spec)
    s = CampaignSettings.from_spec(parsed.model_dump(mode="json"))
    first = spec["measures"][0]["name"]
    assert s.units == {spec["objective"]["name"]: "fraction", first: "nats"}
    assert CampaignSettings.from_json(s.to_json()).units == s.units
    layout = grid(5, 5, names=[m["name"] for m in spec["measures"]])
    figures.elite_map(tmp_path / "map.png", layout, s, elites(layout, [0.1, 0.5, 0.9]), "t")
    (ax,) = [a for a in drawn[-1].axes if not hasattr(a, "_colorbar")]
    assert ax.get_xlabel().startswith(f"{first} (nats)")
    assert ax.get_ylabel().startswith(spec["measures"][1]["name"] + "  [")  # no unit given: the name alone
    assert colour_bar(drawn[-1]).ax.get_ylabel() == f"{spec['objective']['name']} (fraction; higher is better)"
    stored = parse_spec(plain).model_dump(mode="json")  # as a campaign stored before units were in the format
    for named in (stored["objective"], *stored["measures"]):
        assert named.pop("unit") is None
    assert parse_spec(stored).spec_hash() == parse_spec(plain).spec_hash()
    spec["measures"][0]["unit"] = ""
    with pytest.raises(SpecError, match=r"measures\.0\.unit"):
        parse_spec(spec)
