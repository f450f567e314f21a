"""The elite map as a figure: a heatmap (grid, 1-D or 2-D measures; facets for more) or a
Voronoi plot (CVT), coloured by each cell's elite objective, with a colour bar.

Every name a user gives (campaign, objective, measures) is drawn as written
(:func:`plain_text`), and objectives and measures near the largest float are drawn at
±:data:`COLOUR_LIMIT` (:func:`colour_scale`, :func:`drawable`), so that no axis, colour
bar or label makes matplotlib fail. Cells are coloured on viridis (perceptually uniform,
colour-blind safe; reversed for a minimised objective, so the better elite is the brighter),
over :func:`colour_scale`'s range (a few far outliers drawn at its ends), empty cells hatched
grey with a key (:func:`show_empty_cells`), grid bin edges as minor ticks, long names wrapped
(:func:`wrapped`).

A figure of no data does not look like one (:func:`empty_note`): a map with no elite draws
its measures' ranges hatched, no colour bar (it would colour nothing, over a made-up range)
and says ``no done evaluation (N failed)`` in its axes (or, for a map of several panels,
under its title); a front of no done evaluation spans each measure's ``[low, high]``, has
no objective ticks and no legend, and says the same in each panel and its title.

Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas attached
(:func:`new_figure`), never through ``pyplot``: nothing here needs a window, a figure
manager or a GUI backend, importing the module sets no backend for its caller, and a
figure is freed with its last reference (no ``plt.close``). The files are the ones
``pyplot`` with ``MPLBACKEND=Agg`` writes. Each figure is built by a function that returns
it (:func:`map_figure`, :func:`elite_map_figure`, :func:`pareto_front_figure`: what
:meth:`archive.handle.CampaignHandle.map_figure` gives a notebook, which shows it) and
written by one that builds it, then saves it (:func:`draw_map`, :func:`elite_map`,
:func:`pareto_front`: what ``atlas`` writes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from archive.layout import CellLayout, MeasureAxis
from archive.outputs import replacing
from archive.outside import figure_note, outside_axes
from archive.records import CampaignSettings, MapData, Stats
from archive.stats import non_dominated
from archive.units import with_unit
from entropy_atlas.scores import qd_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar

MAPS_DIR = Path("atlas-maps")


def storage_identity(storage_url: str) -> str:
    """The storage URL that names one storage, with its password removed: a SQLite file's
    path is made absolute (``sqlite:///atlas.db`` run here is that file wherever it is named
    from); anything that does not parse as a URL is kept as given."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(storage_url)
    except ArgumentError:
        return storage_url
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and database not in ("", ":memory:") and not database.startswith("file:"):
        url = url.set(database=str(Path(database).resolve()))
    return url.render_as_string(hide_password=True)


def storage_tag(storage_url: str) -> str:
    """A short readable name of a storage for folder names: a slug of its kind and where it
    is (SQLite: the file's stem; else host and database), then ``-`` and the first 8 hex
    digits of the SHA-256 of :func:`storage_identity` (so two storages never share a tag,
    and no password reaches a path). E.g. ``sqlite-atlas-1a2b3c4d``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    identity = storage_identity(storage_url)
    try:
        url = make_url(storage_url)
        parts = [url.get_backend_name()]
        parts += [Path(url.database).stem] if parts[0] == "sqlite" and url.database else [url.host, url.database]
    except ArgumentError:
        parts = ["storage"]
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(p for p in parts if p).lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return f"{slug or 'storage'}-{digest}"


def default_map_path(storage_url: str, name: str) -> Path:
    """Where ``atlas run`` writes a campaign's map: ``atlas-maps/<storage tag>/NAME.png``
    (see :func:`storage_tag`), so campaigns of one name in two storages keep two maps."""
    return MAPS_DIR / storage_tag(storage_url) / f"{name}.png"


def new_figure(**kwargs: Any) -> Figure:
    """A figure (``kwargs``: :class:`~matplotlib.figure.Figure`'s, as ``pyplot.figure``
    takes them) on the Agg canvas, which renders PNG and lays text out; ``savefig`` to SVG
    or PDF switches to that format's canvas as ``pyplot``'s figures do."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def tight_layout(fig: Figure) -> None:
    """``fig.tight_layout()``, then no layout engine: what ``tight_layout`` leaves behind (a
    placeholder engine) makes ``savefig`` draw the whole figure once more without rendering
    it, a fifth of a second for an elite map, though the placeholder lays nothing out."""
    fig.tight_layout()
    fig.set_layout_engine(None)


def plain_text(text: str) -> str:
    """``text`` as matplotlib draws it as written: every ``$`` escaped as ``\\$``, so that
    no pair of them starts mathtext (``$\\frac{$`` failed to parse, ``$x$`` lost its
    dollars). Every user-given text a figure draws (titles, axis, colour bar and facet
    labels) passes through it."""
    return text.replace("$", r"\$")


def wrapped(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (at spaces where it can,
    inside a word where it must: measure names are often one long word with underscores),
    then drawn as written (:func:`plain_text`). A name longer than its axis ran off the
    figure (a 60-character objective's colour bar label was cut at the canvas' edge)."""
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [text]
    return plain_text("\n".join(lines))


def map_title(name: str, s: Stats) -> str:
    """The line over an elite map: cells filled, QD-score (as the command line shows it,
    :func:`entropy_atlas.scores.qd_text`: ``18579.6``, where the map had said ``1.858e+04``)
    and best."""
    best = "—" if s.best_objective is None else f"{s.best_objective:.4g}"
    return (f"{name}: {s.elites}/{s.cells} cells ({s.coverage:.1%}), "
            f"QD-score {qd_text(s.qd_score)}, best {best}")


def draw_map(path: Path, data: MapData) -> Path:
    """Write :func:`map_figure` of ``data`` to ``path`` (PNG, SVG or PDF by suffix: :func:`save`)."""
    save(map_figure(data), path)
    return path


def map_figure(data: MapData) -> Figure:
    """:func:`elite_map_figure` of a campaign's :class:`~archive.records.MapData`, titled by
    :func:`map_title`; a map of no elite says how many evaluations failed where its stats
    counted them."""
    return elite_map_figure(data.layout, data.settings, data.elites, map_title(data.name, data.stats),
                            failed=data.stats.counts.get("failed"))


def empty_note(failed: int | None = None) -> str:
    """What a figure with no done evaluation to draw says: ``no done evaluation``, and
    ``(N failed)`` where N > 0 is known."""
    return "no done evaluation" + (f" ({failed:,} failed)" if failed else "")


def _say_empty(ax: Axes, note: str) -> None:
    """``note`` in the middle of ``ax``, on a white box (over a map's hatching)."""
    ax.text(0.5, 0.5, wrapped(note, 40), transform=ax.transAxes, ha="center", va="center", fontsize=11,
            color="0.25", bbox={"facecolor": "white", "edgecolor": "0.7", "boxstyle": "round,pad=0.4"})


def elite_map(path: Path, layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]],
              title: str, failed: int | None = None) -> Path:
    """Write :func:`elite_map_figure` to ``path`` (PNG, SVG or PDF by suffix: :func:`save`)."""
    save(elite_map_figure(layout, settings, elites, title, failed), path)
    return path


def elite_map_figure(layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]],
                     title: str, failed: int | None = None) -> Figure:
    """The elite map of ``elites`` (rows with cell, objective and measures) over ``layout``,
    a :class:`~matplotlib.figure.Figure` on the Agg canvas (:func:`new_figure`, no ``pyplot``
    state); ``title`` and every name drawn as written (:func:`plain_text`), long ones
    wrapped (:func:`wrapped`).

    Cells: coloured by their elite's objective on a perceptually uniform, colour-blind safe
    scale (viridis; reversed for a minimised objective, so the better elite is always the
    brighter one), over the range :func:`colour_scale` gives (elites beyond it drawn at its
    ends, the colour bar's triangles and its label saying how many); a cell with no elite is
    hatched grey (:func:`show_empty_cells`). Grid maps mark every bin edge with a minor tick.
    Where elites were measured outside the axes' ranges, a line under the title says how many
    and where they are drawn (:func:`archive.outside.figure_note`). With no elite, there is
    no colour bar (no colour to read) and the map says :func:`empty_note` (with ``failed``,
    how many evaluations failed, where given) in its axes, or under the title of a map of
    several panels; the axes span the measures' ranges as ever."""
    objective = np.array([e["objective"] for e in elites], dtype=float)
    scale = colour_scale(objective, (-0.1, 0.1))
    verb = "higher" if settings.maximize else "lower"
    unit = settings.units.get(settings.objective)
    label_text = f"{settings.objective} ({unit + '; ' if unit else ''}{verb} is better){scale.note()}"
    cmap = "viridis" if settings.maximize else "viridis_r"
    found = outside_axes(layout.axes, elites)
    note = figure_note(found, layout.kind, projected=layout.kind != "grid" and len(layout.axes) > 2) if found else ""
    empty = empty_note(failed) if not elites else ""
    if empty and len(layout.axes) > 2:
        note = empty  # several panels: said once, under the title
    if layout.kind == "grid" and len(layout.axes) > 2:
        fig = _facets(layout, settings, elites, label_text, title, scale, note)
    elif len(layout.axes) > 2:
        fig = _projections(layout, settings, elites, label_text, title, scale, note)
    else:
        two = len(layout.axes) == 2
        fig = new_figure(figsize=(8, 6) if two else (9, 3))
        ax = fig.subplots()
        label = wrapped(label_text, 60 if two else 28)
        if layout.kind == "grid":  # one or two measures (pyribs' 1-D heatmap fails on a single elite)
            colorbar = _grid_heatmap(ax, layout, settings, elites, cmap, label, scale)
            _bin_edges(ax, layout.axes)
        else:
            colorbar = _cvt_heatmap(ax, layout, elites, cmap, label, scale)
        show_empty_cells(ax, colorbar)
        if empty:
            _say_empty(ax, empty)
        ax.set_xlabel(wrapped(_axis_label(layout.axes[0], settings), 90))
        if two:
            ax.set_ylabel(wrapped(_axis_label(layout.axes[1], settings), 60))
        ax.set_title(_heading(title, note, 72 if two else 84), fontsize=10)
        tight_layout(fig)
    return fig


def _heading(title: str, note: str, width: int) -> str:
    """``title`` over ``note`` (where there is one), each wrapped at ``width`` characters."""
    return wrapped(title, width) + (f"\n{wrapped(note, width)}" if note else "")


def _axis_label(axis: MeasureAxis, settings: CampaignSettings) -> str:
    """A map's axis: the measure, its unit and its range, ``mean_entropy (nats)  [0, 2]``."""
    return f"{with_unit(axis.name, settings.units)}  [{axis.low:g}, {axis.high:g}]"


EMPTY_FACE, EMPTY_HATCH, EMPTY_EDGE = "#f2f2f2", "/", "#c4c4c4"  # what no colour of the scale is
EMPTY_LABEL = "no elite"


def show_empty_cells(ax: Axes, key: Colorbar | None) -> None:
    """Draw the cells of ``ax`` that hold no elite (left undrawn: transparent) as a light grey
    hatched with grey lines, and name them in a key over the colour bar ``key``: viridis has
    no grey and the hatching tells them apart in greyscale too (an empty cell was the white
    of the page, as the figure's margin is, and a map with no elites was a blank box). The key
    sits clear of the bar's upper triangle where it has one."""
    from matplotlib.patches import Patch

    ax.set_facecolor(EMPTY_FACE)
    ax.patch.set_hatch(EMPTY_HATCH)
    ax.patch.set_hatchcolor(EMPTY_EDGE)
    if key is not None:
        swatch = Patch(facecolor=EMPTY_FACE, hatch=EMPTY_HATCH, edgecolor=EMPTY_EDGE, label=EMPTY_LABEL)
        top = 1.0 + (key.extendfrac if isinstance(key.extendfrac, float) else 0.05) * 1.4 * (
            key.extend in ("max", "both"))
        key.ax.legend(handles=[swatch], loc="lower center", bbox_to_anchor=(0.5, top), frameon=False, fontsize=8,
                      handlelength=1.4, handleheight=1.4, borderaxespad=0.3)


MAX_EDGE_TICKS = 100


def _bin_edges(ax: Axes, axes: list[MeasureAxis]) -> None:
    """A minor tick at every bin edge of the x measure (and the y measure, where there is
    one), so that a reader can tell which cell a value falls in (the major ticks are round
    numbers, 2.56-wide bins had none on their edges); an axis of more than
    :data:`MAX_EDGE_TICKS` bins has none (they would merge into a bar)."""
    for axis, measure in zip((ax.xaxis, ax.yaxis), axes, strict=False):
        if measure.bins <= MAX_EDGE_TICKS:
            axis.set_ticks(np.linspace(measure.low, measure.high, measure.bins + 1), minor=True)
    ax.tick_params(which="minor", length=2.5, width=0.6)


def save(fig: Figure, path: Path) -> None:
    """Write ``fig`` to ``path`` (its format by the suffix) whole or not at all
    (:func:`archive.outputs.replacing`): a full disk leaves no partial figure. It is drawn in
    memory first: matplotlib's PDF writer, failing a write, raised its own ``AttributeError``
    in its clean-up, and that (not the full disk) was what the command line met."""
    image = io.BytesIO()
    fig.savefig(image, format=Path(path).suffix.lstrip(".").lower(), dpi=120)
    with replacing(path) as temporary:
        temporary.write_bytes(image.getbuffer())


COLOUR_LIMIT = 1e307  # a colour range or an axis within ±this: its span stays a finite float
OUTLIER_SPREAD = 1000.0  # all values span this many times their central 90 %: the outliers are trimmed
OUTLIER_FENCE = 10.0  # trimmed to the values within this many central-90 % widths of it
OUTLIER_MIN_VALUES = 10  # fewer values have no central 90 % worth the name


@dataclasses.dataclass(frozen=True)
class ColourScale:
    """A colour bar's range and how many values lie below and above it (drawn at its ends)."""

    low: float
    high: float
    below: int = 0
    above: int = 0

    @property
    def extend(self) -> str:
        """The colour bar's ``extend``: a triangle at each end that values lie beyond."""
        return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
            (self.below > 0, self.above > 0), "both")

    def note(self) -> str:
        """What the colour bar's label adds: how many values are drawn at its ends."""
        beyond = self.below + self.above
        return f", {beyond} off-scale" if beyond else ""


def colour_scale(values: np.ndarray, empty: tuple[float, float]) -> ColourScale:
    """The colour scale of ``values`` (``empty`` when none is finite).

    The rule: the least and greatest finite value; but when that span is more than
    :data:`OUTLIER_SPREAD` times the width w of the central 90 % (5th to 95th percentile;
    with at least :data:`OUTLIER_MIN_VALUES` values and w > 0), the range shrinks to the
    least and greatest values within :data:`OUTLIER_FENCE`·w of that central 90 %. A diverged
    run's 1e12 among accuracies of 0.9 made every other cell one colour; an ordinary spread
    of bad cells (a few at 0.1 among 0.97s) is far inside the trigger and keeps its colours.
    The range is then held within ±:data:`COLOUR_LIMIT` (objectives of ±1.8e308 made the span
    infinite, and matplotlib failed to lay out the bar) and widened where it is one value.
    Infinities and values past the range are counted as below or above it."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    finite = values[np.isfinite(values)]
    if not len(finite):
        return ColourScale(*empty, below=int(np.sum(values < 0)), above=int(np.sum(values > 0)))
    low, high = float(np.min(finite)), float(np.max(finite))
    if len(finite) >= OUTLIER_MIN_VALUES:
        q05, q95 = (float(q) for q in np.percentile(finite, [5, 95]))
        width = q95 - q05
        if width > 0 and np.isfinite(width) and high - low > OUTLIER_SPREAD * width:
            inside = finite[(finite >= q05 - OUTLIER_FENCE * width) & (finite <= q95 + OUTLIER_FENCE * width)]
            low, high = float(np.min(inside)), float(np.max(inside))
    low, high = (float(v) for v in np.clip([low, high], -COLOUR_LIMIT, COLOUR_LIMIT))
    if low == high:
        pad = max(0.1, abs(low) * 1e-6)
        low, high = low - pad, high + pad
    return ColourScale(low, high, below=int(np.sum(values < low)), above=int(np.sum(values > high)))


def drawable(values: np.ndarray) -> np.ndarray:
    """``values`` held within ±:data:`COLOUR_LIMIT` for drawing on an axis: one past it is
    drawn at its end, so that the axis' span and margins stay finite floats (points at
    ±1.7e308 made them infinite, and laying out the ticks failed); NaN stays NaN."""
    return np.clip(values, -COLOUR_LIMIT, COLOUR_LIMIT)


def _colorbar(fig: Figure, mappable: Any, label: str, scale: ColourScale, elites: Sequence[Any],
              **kwargs: Any) -> Colorbar | None:
    """The colour bar of ``mappable`` labelled ``label``, with a triangle at each end that
    values lie beyond (:attr:`ColourScale.extend`); none where there are no ``elites`` to
    colour (a bar over a made-up range looked like data)."""
    if not len(elites):
        return None
    return fig.colorbar(mappable, label=label, extend=scale.extend, **kwargs)


def _cvt_heatmap(ax: Axes, layout: CellLayout, elites: list[dict[str, Any]], cmap: str, label: str,
                 scale: ColourScale) -> Colorbar | None:
    """A 1-D or 2-D CVT map: pyribs' ``cvt_archive_heatmap`` of the elites (each cell its
    Voronoi region, clipped to the measure box), its colours over ``scale`` and each
    objective held within it (pyribs' own range, their least and greatest, was infinite at
    ±1.7e308), and a colour bar of our own (:func:`_colorbar`). A 1-D map fills its axes
    (pyribs' aspect of 0.5 left two thirds of the strip blank)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from ribs.visualize import cvt_archive_heatmap  # seconds to import

    objective = np.array([e["objective"] for e in elites], dtype=float)
    archive = layout.make_archive(solution_dim=1)
    if elites:
        archive.add(
            solution=np.zeros((len(elites), 1)),
            objective=np.clip(np.nan_to_num(objective, posinf=scale.high, neginf=scale.low), scale.low, scale.high),
            measures=np.array([[e["measures"][m] for m in layout.measure_names] for e in elites], dtype=float),
        )
    cvt_archive_heatmap(archive, ax=ax, cmap=cmap, vmin=scale.low, vmax=scale.high, cbar=None,
                        aspect="auto" if len(layout.axes) == 1 else None, lw=0.5 if layout.cells <= 1000 else 0.0)
    if len(layout.axes) == 1:
        ax.set_yticks([])
    mappable = ScalarMappable(Normalize(scale.low, scale.high), cmap)
    return _colorbar(ax.figure, mappable, label, scale, elites, ax=ax)


def _grid_heatmap(ax: Axes, layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]],
                  cmap: str, label: str, scale: ColourScale) -> Colorbar | None:
    """A 1-D or 2-D grid's heatmap as pyribs' ``grid_archive_heatmap`` draws it (each cell a
    rectangle of the colour of its elite's objective, a colour bar; here an image of equal
    cells rather than pyribs' mesh), without importing pyribs (seconds): each elite in the
    cell its measures fall in (:meth:`CellLayout.index_of`, pyribs' rule), the better
    objective where two share one, its colour over ``scale``."""
    nx, ny = (*layout.dims, 1)[:2]  # one measure: a strip of one row
    colors = np.full((ny, nx), np.nan)
    objective = np.array([e["objective"] for e in elites], dtype=float)
    if elites:
        measures = np.array([[e["measures"][m] for m in layout.measure_names] for e in elites], dtype=float)
        gx, gy = np.unravel_index(layout.index_of(measures), (nx, ny))
        order = np.argsort(settings.sign * objective, kind="stable")  # the best written last wins
        colors[gy[order], gx[order]] = objective[order]
    colors = np.clip(colors, scale.low, scale.high)  # what lies past the range is drawn at its end (NaN stays empty)
    (x0, x1), (y0, y1) = (*layout.ranges, (0.0, 1.0))[:2]
    if len(layout.dims) == 1:  # the strip's height measures nothing
        ax.set_yticks([])
    image = ax.imshow(colors, origin="lower", extent=(x0, x1, y0, y1), aspect="auto", interpolation="nearest",
                      cmap=cmap, vmin=scale.low, vmax=scale.high)  # equal cells: an image, a fraction of a mesh's cost
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return _colorbar(ax.figure, image, label, scale, elites, ax=ax)


def _facets(layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]], label: str,
            title: str, scale: ColourScale, note: str = "") -> Figure:
    """One heatmap of the first two measures per bin of the third (and fourth) measure;
    further measures are collapsed, keeping each pixel's best elite. Colours, empty cells
    and bin edges as :func:`elite_map` draws them."""
    dims = layout.dims
    sign = settings.sign
    grid = np.full(dims, np.nan)
    for e in elites:
        idx = np.unravel_index(e["cell"], tuple(dims))
        cur = grid[idx]
        if np.isnan(cur) or sign * e["objective"] > sign * cur:
            grid[idx] = e["objective"]
    while grid.ndim > 4:  # collapse trailing measures, best elite wins
        grid = np.nanmax(grid, axis=-1) if settings.maximize else np.nanmin(grid, axis=-1)
    rows = dims[3] if grid.ndim == 4 else 1
    cols = dims[2]
    fig = new_figure(figsize=(2.2 * cols + 1.5, 2.2 * rows + 0.8), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    grid = np.clip(grid, scale.low, scale.high)
    a0, a1 = layout.axes[0], layout.axes[1]
    image = None
    for r, c in itertools.product(range(rows), range(cols)):
        panel = grid[:, :, c, r] if grid.ndim == 4 else grid[:, :, c]
        ax = axes[r][c]
        image = ax.imshow(panel.T, origin="lower", extent=(a0.low, a0.high, a1.low, a1.high),
                          aspect="auto", vmin=scale.low, vmax=scale.high, interpolation="nearest",
                          cmap="viridis" if settings.maximize else "viridis_r")
        lo, hi = layout.axes[2].low, layout.axes[2].high
        w = (hi - lo) / dims[2]
        panel_title = wrapped(f"{layout.axes[2].name} ∈ [{lo + c * w:.3g}, {lo + (c + 1) * w:.3g})", 34)
        if grid.ndim == 4:
            lo3, hi3 = layout.axes[3].low, layout.axes[3].high
            w3 = (hi3 - lo3) / dims[3]
            panel_title += "\n" + wrapped(f"{layout.axes[3].name} ∈ [{lo3 + r * w3:.3g}, {lo3 + (r + 1) * w3:.3g})",
                                          34)
        ax.set_title(panel_title, fontsize=7)
        ax.set_xlabel(wrapped(with_unit(a0.name, settings.units), 34), fontsize=7)
        ax.set_ylabel(wrapped(with_unit(a1.name, settings.units), 34), fontsize=7)
        ax.tick_params(labelsize=6)
        _bin_edges(ax, layout.axes[:2])
        show_empty_cells(ax, None)
    assert image is not None
    show_empty_cells(axes[0][0], _colorbar(fig, image, wrapped(label, max(28, 14 * rows)), scale, elites, ax=axes,
                                           shrink=0.8))
    fig.suptitle(_heading(title, note, max(60, 14 * cols)), fontsize=10)
    return fig


MAX_PROJECTED = 4  # a CVT map of more measures shows the pairs of its first four


def _projections(layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]], label: str,
                 title: str, scale: ColourScale, note: str = "") -> Figure:
    """A CVT map of three or more measures (which pyribs' heatmap does not draw): each
    pair of its first :data:`MAX_PROJECTED` measures, every elite a point at its two
    measures, coloured by its objective over ``scale``, the better drawn over the worse."""
    axes_of = layout.axes[:MAX_PROJECTED]
    pairs = list(itertools.combinations(range(len(axes_of)), 2))
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig = new_figure(figsize=(3.4 * cols + 1.5, 3.0 * rows + 0.8), layout="constrained")
    grid = fig.subplots(rows, cols, squeeze=False)
    objective = np.array([e["objective"] for e in elites], dtype=float)
    measures = np.array([[e["measures"][a.name] for a in axes_of] for e in elites], dtype=float).reshape(
        len(elites), len(axes_of))
    order = np.argsort(settings.sign * objective, kind="stable")  # the best drawn last, on top
    objective = np.clip(objective, scale.low, scale.high)
    points = None
    for k, ax in enumerate(grid.flat):
        if k >= len(pairs):
            ax.set_visible(False)
            continue
        i, j = pairs[k]
        points = ax.scatter(measures[order, i], measures[order, j], c=objective[order], s=14, vmin=scale.low,
                            vmax=scale.high, cmap="viridis" if settings.maximize else "viridis_r")
        ax.set_xlim(axes_of[i].low, axes_of[i].high)
        ax.set_ylim(axes_of[j].low, axes_of[j].high)
        ax.set_xlabel(wrapped(with_unit(axes_of[i].name, settings.units), 44), fontsize=7)
        ax.set_ylabel(wrapped(with_unit(axes_of[j].name, settings.units), 40), fontsize=7)
        ax.tick_params(labelsize=6)
    assert points is not None
    _colorbar(fig, points, wrapped(label, max(28, 20 * rows)), scale, elites, ax=grid, shrink=0.8)
    shown = "" if len(layout.axes) <= MAX_PROJECTED else f" (pairs of the first {MAX_PROJECTED} measures)"
    fig.suptitle(_heading(f"{title}{shown}", note, max(60, 24 * cols)), fontsize=10)
    return fig


def _window(values: np.ndarray) -> tuple[float, float] | None:
    """The limits of an axis of ``values`` when some lie off :func:`colour_scale`'s range
    (its range with 5 % margins), else None (matplotlib's own limits)."""
    scale = colour_scale(values, (0.0, 1.0))
    if not (scale.below or scale.above):
        return None
    pad = 0.05 * (scale.high - scale.low)
    return scale.low - pad, scale.high + pad


def _onto(values: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """``values`` as drawn on an axis of ``window``: held within it (:func:`drawable` without one)."""
    return drawable(values) if window is None else np.clip(values, *window)


OFF_SCALE_MARKERS = (("^", 1, 1), ("v", 1, -1), (">", 0, 1), ("<", 0, -1))  # marker, axis (0: x), side


def pareto_front(path: Path, name: str, settings: CampaignSettings, rows: list[dict[str, Any]],
                 measure_axes: Sequence[MeasureAxis] = (), failed: int | None = None) -> Path:
    """Write :func:`pareto_front_figure` to ``path`` (PNG, SVG or PDF by suffix: :func:`save`)."""
    save(pareto_front_figure(name, settings, rows, measure_axes, failed), path)
    return path


def pareto_front_figure(name: str, settings: CampaignSettings, rows: list[dict[str, Any]],
                        measure_axes: Sequence[MeasureAxis] = (), failed: int | None = None) -> Figure:
    """A :class:`~matplotlib.figure.Figure` on the Agg canvas (:func:`new_figure`, no
    ``pyplot`` state) of the objective against each measure, every done evaluation in ``rows`` as a point, and
    the two-objective Pareto front (objective and that measure, each in its direction:
    ``settings.measure_directions``, maximise by default) drawn as a step line; names as
    written (:func:`plain_text`), long ones wrapped (:func:`wrapped`).

    Each axis spans its values, but where a few lie far off the rest (:func:`colour_scale`'s
    rule: one diverged run's loss of 1e12 among losses below 1 drew every other point on one
    line) it spans the rest, and those few are drawn at its edge as triangles pointing their
    way, counted in the legend; values past ±:data:`COLOUR_LIMIT` are drawn at it
    (:func:`drawable`).

    With no row, each panel spans its measure's ``[low, high]`` (of ``measure_axes``, the map's:
    matplotlib's −0.05..0.05 of no data looked like data; no ticks where none is given), has
    no objective ticks (the objective has no range to show) and no legend, and says :func:`empty_note` (with
    ``failed``, how many evaluations failed, where given), as the title does."""
    directions = settings.measure_directions
    ranges = {a.name: (a.low, a.high) for a in measure_axes}
    names = list(settings.measures)
    fig = new_figure(figsize=(5.5 * len(names), 4.5))
    axes = fig.subplots(1, len(names), squeeze=False)
    obj = np.array([r["objective"] for r in rows], dtype=float)
    osign = settings.sign
    for ax, measure in zip(axes[0], names, strict=True):
        m = np.array([r["measures"][measure] for r in rows], dtype=float)
        msign = 1.0 if directions.get(measure, "maximize") == "maximize" else -1.0
        xw, yw = _window(m), _window(obj)
        x, y = _onto(m, xw), _onto(obj, yw)
        sides = np.sign(np.stack([drawable(m) - x, drawable(obj) - y], axis=1))  # 1: past the high end, -1: the low
        off = np.any(sides != 0, axis=1)
        if not len(rows):
            if measure in ranges:
                ax.set_xlim(*ranges[measure])
            else:  # no range known: no ticks of a made-up one
                ax.set_xticks([])
            ax.set_yticks([])
            _say_empty(ax, empty_note(failed))
        else:
            ax.scatter(x[~off], y[~off], s=10, alpha=0.35, color="tab:gray", label="evaluations")
        for marker, axis, side in OFF_SCALE_MARKERS:  # off in the objective: ^ or v, else < or >
            these = (sides[:, axis] == side) & ((sides[:, 1] == 0) if axis == 0 else True)
            if these.any():
                ax.scatter(x[these], y[these], s=30, marker=marker, color="tab:gray", clip_on=False,
                           label=f"{int(these.sum())} off-scale, at the edge")
        if len(rows):
            mask = non_dominated(np.stack([osign * obj, msign * m], axis=1))
            order = np.argsort(m[mask])
            fm, fo = x[mask], y[mask]
            # the attainment staircase: between two front points the best objective reachable is the
            # next point's when the measure is maximised (points at or beyond m), the last one's when minimised
            ax.step(fm[order], fo[order], where="pre" if msign > 0 else "post", color="tab:red", lw=1.5)
            ax.scatter(fm, fo, s=28, color="tab:red", label=f"Pareto front ({int(mask.sum())})")
        if xw is not None:
            ax.set_xlim(*xw)
        if yw is not None:
            ax.set_ylim(*yw)
        ax.set_xlabel(wrapped(f"{with_unit(measure, settings.units)} ({directions.get(measure, 'maximize')})", 60))
        way = "maximize" if settings.maximize else "minimize"
        ax.set_ylabel(wrapped(f"{with_unit(settings.objective, settings.units)} ({way})", 50))
        if len(rows):
            ax.legend(fontsize=8)
    shown = f"{len(rows)} evaluations" if len(rows) else empty_note(failed)
    fig.suptitle(wrapped(f"{name}: {settings.objective} against each measure, {shown}", 60 * len(names)),
                 fontsize=10)
    tight_layout(fig)
    return fig
