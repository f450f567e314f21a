"""The elite map as a figure: a heatmap (grid, 1-D or 2-D measures; facets for more) or a
Voronoi plot (CVT), coloured by each cell's elite objective, with a colour bar.

Every name a user gives (campaign, objective, measures) is drawn as written
(:func:`plain_text`), and objectives and measures near the largest float are drawn at
±:data:`COLOUR_LIMIT` (:func:`colour_range`, :func:`drawable`), so that no axis, colour
bar or label makes matplotlib fail.

Figures are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas attached
(:func:`new_figure`), never through ``pyplot``: nothing here needs a window, a figure
manager or a GUI backend, importing the module sets no backend for its caller, and a
figure is freed with its last reference (no ``plt.close``). The files are the ones
``pyplot`` with ``MPLBACKEND=Agg`` writes.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from archive.layout import CellLayout
from archive.outputs import replacing
from archive.records import CampaignSettings, MapData, Stats
from archive.stats import non_dominated

if TYPE_CHECKING:
    from matplotlib.axes import Axes

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


def map_title(name: str, s: Stats) -> str:
    """The line over an elite map: cells filled, QD-score and best."""
    best = "—" if s.best_objective is None else f"{s.best_objective:.4g}"
    return (f"{name}: {s.elites}/{s.cells} cells ({s.coverage:.1%}), "
            f"QD-score {s.qd_score:.4g}, best {best}")


def draw_map(path: Path, data: MapData) -> Path:
    """:func:`elite_map` of a campaign's :class:`~archive.records.MapData`, titled by :func:`map_title`."""
    return elite_map(path, data.layout, data.settings, data.elites, map_title(data.name, data.stats))


def elite_map(path: Path, layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]],
              title: str) -> Path:
    """Write the elite map of ``elites`` (rows with cell, objective and measures) over
    ``layout`` to ``path`` (PNG, SVG or PDF by suffix); ``title`` and every name drawn as
    written (:func:`plain_text`)."""
    names = [plain_text(n) for n in layout.measure_names]
    label = plain_text(f"{settings.objective} ({'higher' if settings.maximize else 'lower'} is better)")
    title = plain_text(title)
    if layout.kind == "grid" and len(names) > 2:
        fig = _facets(layout, settings, elites, label, title)
    elif len(names) > 2:
        fig = _projections(layout, settings, elites, label, title)
    else:
        fig = new_figure(figsize=(8, 6) if len(names) == 2 else (9, 3))
        ax = fig.subplots()
        cmap = "viridis" if settings.maximize else "viridis_r"
        if layout.kind == "grid":  # one or two measures (pyribs' 1-D heatmap fails on a single elite)
            _grid_heatmap(ax, layout, settings, elites, cmap, label)
        else:
            _cvt_heatmap(ax, layout, elites, cmap, label)
        ax.set_xlabel(f"{names[0]}  [{layout.axes[0].low:g}, {layout.axes[0].high:g}]")
        if len(names) == 2:
            ax.set_ylabel(f"{names[1]}  [{layout.axes[1].low:g}, {layout.axes[1].high:g}]")
        ax.set_title(title, fontsize=10)
        tight_layout(fig)
    save(fig, path)
    return path


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


def colour_range(values: np.ndarray, empty: tuple[float, float]) -> tuple[float, float]:
    """The colour bar's (low, high) over ``values``: their least and greatest, held within
    ±:data:`COLOUR_LIMIT` (objectives of ±1.8e308 made the span infinite, and matplotlib
    failed to lay out the bar), and widened where they are all one value; ``empty`` when
    there are none."""
    if not len(values):
        return empty
    low, high = (float(v) for v in np.clip([np.min(values), np.max(values)], -COLOUR_LIMIT, COLOUR_LIMIT))
    if low == high:
        pad = max(0.1, abs(low) * 1e-6)
        low, high = low - pad, high + pad
    return low, high


def drawable(values: np.ndarray) -> np.ndarray:
    """``values`` held within ±:data:`COLOUR_LIMIT` for drawing on an axis: one past it is
    drawn at its end, so that the axis' span and margins stay finite floats (points at
    ±1.7e308 made them infinite, and laying out the ticks failed); NaN stays NaN."""
    return np.clip(values, -COLOUR_LIMIT, COLOUR_LIMIT)


def _cvt_heatmap(ax: Axes, layout: CellLayout, elites: list[dict[str, Any]], cmap: str, label: str) -> None:
    """A 1-D or 2-D CVT map, pyribs' ``cvt_archive_heatmap`` of the elites, with the colour
    range :func:`colour_range` of their objectives and each objective held within it
    (pyribs' own range, their least and greatest, was infinite at ±1.7e308)."""
    from ribs.visualize import cvt_archive_heatmap  # seconds to import

    objective = np.array([e["objective"] for e in elites], dtype=float)
    low, high = colour_range(objective, (-0.1, 0.1))
    archive = layout.make_archive(solution_dim=1)
    if elites:
        archive.add(
            solution=np.zeros((len(elites), 1)),
            objective=np.clip(objective, low, high),
            measures=np.array([[e["measures"][m] for m in layout.measure_names] for e in elites], dtype=float),
        )
    cvt_archive_heatmap(archive, ax=ax, cmap=cmap, vmin=low, vmax=high, cbar_kwargs={"label": label})


def _grid_heatmap(ax: Axes, layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]],
                  cmap: str, label: str) -> None:
    """A 1-D or 2-D grid's heatmap as pyribs' ``grid_archive_heatmap`` draws it (each cell a
    rectangle of the colour of its elite's objective, the colour range the elites'
    objectives, a colour bar; here an image of equal cells rather than pyribs' mesh), without
    importing pyribs (seconds): each elite in the cell its measures fall in
    (:meth:`CellLayout.index_of`, pyribs' rule), the better objective where two share one."""
    nx, ny = (*layout.dims, 1)[:2]  # one measure: a strip of one row
    colors = np.full((ny, nx), np.nan)
    objective = np.array([e["objective"] for e in elites], dtype=float)
    if elites:
        measures = np.array([[e["measures"][m] for m in layout.measure_names] for e in elites], dtype=float)
        gx, gy = np.unravel_index(layout.index_of(measures), (nx, ny))
        order = np.argsort(settings.sign * objective, kind="stable")  # the best written last wins
        colors[gy[order], gx[order]] = objective[order]
    low, high = colour_range(objective, (-0.1, 0.1))
    colors = np.clip(colors, low, high)  # what lies past the range is drawn at its end (NaN stays empty)
    (x0, x1), (y0, y1) = (*layout.ranges, (0.0, 1.0))[:2]
    if len(layout.dims) == 1:  # the strip's height measures nothing
        ax.set_yticks([])
    image = ax.imshow(colors, origin="lower", extent=(x0, x1, y0, y1), aspect="auto", interpolation="nearest",
                      cmap=cmap, vmin=low, vmax=high)  # equal cells: an image, drawn at a fraction of a mesh's cost
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.figure.colorbar(image, ax=ax, label=label)


def _facets(layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]], label: str,
            title: str) -> Figure:
    """One heatmap of the first two measures per bin of the third (and fourth) measure;
    further measures are collapsed, keeping each pixel's best elite."""
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
    finite = grid[np.isfinite(grid)]
    vmin, vmax = colour_range(finite, (0.0, 1.0))
    grid = np.clip(grid, vmin, vmax)
    a0, a1 = layout.axes[0], layout.axes[1]
    image = None
    for r, c in itertools.product(range(rows), range(cols)):
        panel = grid[:, :, c, r] if grid.ndim == 4 else grid[:, :, c]
        ax = axes[r][c]
        image = ax.imshow(panel.T, origin="lower", extent=(a0.low, a0.high, a1.low, a1.high),
                          aspect="auto", vmin=vmin, vmax=vmax,
                          cmap="viridis" if settings.maximize else "viridis_r")
        lo, hi = layout.axes[2].low, layout.axes[2].high
        w = (hi - lo) / dims[2]
        panel_title = f"{plain_text(layout.axes[2].name)} ∈ [{lo + c * w:.3g}, {lo + (c + 1) * w:.3g})"
        if grid.ndim == 4:
            lo3, hi3 = layout.axes[3].low, layout.axes[3].high
            w3 = (hi3 - lo3) / dims[3]
            panel_title += f"\n{plain_text(layout.axes[3].name)} ∈ [{lo3 + r * w3:.3g}, {lo3 + (r + 1) * w3:.3g})"
        ax.set_title(panel_title, fontsize=7)
        ax.set_xlabel(plain_text(a0.name), fontsize=7)
        ax.set_ylabel(plain_text(a1.name), fontsize=7)
        ax.tick_params(labelsize=6)
    assert image is not None
    fig.colorbar(image, ax=axes, label=label, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


MAX_PROJECTED = 4  # a CVT map of more measures shows the pairs of its first four


def _projections(layout: CellLayout, settings: CampaignSettings, elites: list[dict[str, Any]], label: str,
                 title: str) -> Figure:
    """A CVT map of three or more measures (which pyribs' heatmap does not draw): each
    pair of its first :data:`MAX_PROJECTED` measures, every elite a point at its two
    measures, coloured by its objective, the better drawn over the worse."""
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
    vmin, vmax = colour_range(objective, (0.0, 1.0))
    objective = np.clip(objective, vmin, vmax)
    points = None
    for k, ax in enumerate(grid.flat):
        if k >= len(pairs):
            ax.set_visible(False)
            continue
        i, j = pairs[k]
        points = ax.scatter(measures[order, i], measures[order, j], c=objective[order], s=14, vmin=vmin, vmax=vmax,
                            cmap="viridis" if settings.maximize else "viridis_r")
        ax.set_xlim(axes_of[i].low, axes_of[i].high)
        ax.set_ylim(axes_of[j].low, axes_of[j].high)
        ax.set_xlabel(plain_text(axes_of[i].name), fontsize=7)
        ax.set_ylabel(plain_text(axes_of[j].name), fontsize=7)
        ax.tick_params(labelsize=6)
    assert points is not None
    fig.colorbar(points, ax=grid, label=label, shrink=0.8)
    shown = "" if len(layout.axes) <= MAX_PROJECTED else f" (pairs of the first {MAX_PROJECTED} measures)"
    fig.suptitle(f"{title}{shown}", fontsize=10)
    return fig


def pareto_front(path: Path, name: str, settings: CampaignSettings, rows: list[dict[str, Any]]) -> Path:
    """Objective against each measure, every done evaluation in ``rows`` as a point, and
    the two-objective Pareto front (objective and that measure, each in its direction:
    ``settings.measure_directions``, maximise by default) drawn as a step line; values
    past ±:data:`COLOUR_LIMIT` drawn at it (:func:`drawable`), names as written
    (:func:`plain_text`)."""
    directions = settings.measure_directions
    names = list(settings.measures)
    fig = new_figure(figsize=(5.5 * len(names), 4.5))
    axes = fig.subplots(1, len(names), squeeze=False)
    obj = np.array([r["objective"] for r in rows], dtype=float)
    osign = settings.sign
    for ax, measure in zip(axes[0], names, strict=True):
        m = np.array([r["measures"][measure] for r in rows], dtype=float)
        msign = 1.0 if directions.get(measure, "maximize") == "maximize" else -1.0
        ax.scatter(drawable(m), drawable(obj), s=10, alpha=0.35, color="tab:gray", label="evaluations")
        if len(rows):
            mask = non_dominated(np.stack([osign * obj, msign * m], axis=1))
            order = np.argsort(m[mask])
            fm, fo = drawable(m[mask]), drawable(obj[mask])
            # the attainment staircase: between two front points the best objective reachable is the
            # next point's when the measure is maximised (points at or beyond m), the last one's when minimised
            ax.step(fm[order], fo[order], where="pre" if msign > 0 else "post", color="tab:red", lw=1.5)
            ax.scatter(fm, fo, s=28, color="tab:red", label=f"Pareto front ({int(mask.sum())})")
        ax.set_xlabel(plain_text(f"{measure} ({directions.get(measure, 'maximize')})"))
        ax.set_ylabel(plain_text(f"{settings.objective} ({'maximize' if settings.maximize else 'minimize'})"))
        ax.legend(fontsize=8)
    fig.suptitle(plain_text(f"{name}: {settings.objective} against each measure, {len(rows)} evaluations"),
                 fontsize=10)
    tight_layout(fig)
    save(fig, path)
    return path
