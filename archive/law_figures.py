"""Figures of the entropy-performance law (:mod:`archive.law`): one fit's points and curve,
and a per-run reading's curves, one colour per run.

Each curve is solid over its points' entropies and dashed beyond them down to H = 0, where
the ceiling −a + b is marked (:func:`curve_spans`): a star, or, where a < 0 and −a + b is
the law's floor (:attr:`archive.law.LawFit.bound`), a triangle pointing down, labelled
floor (:data:`BOUND_MARKERS`). Names and titles are drawn as written
(:func:`archive.figures.plain_text`).

R is a performance, higher is better: a minimised objective is drawn as the law fitted it,
negated (``−NAME`` on the R axis, saying that NAME is minimised: :attr:`LawFit.negated`),
so the star, the ceiling, is always the best bound and the worst is a floor (:mod:`archive.law`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archive.law import NEGATION, LawFit, LawReading, RunLaw

BOUND_MARKERS = {"ceiling": "*", "floor": "v"}  # the marker of −a + b at H = 0, by :attr:`LawFit.bound`
FLOOR_LEGEND = "at H = 0, a triangle: a floor −a + b\n(a < 0: R rises with H)"


def law_figure(fit: LawFit, path: str | Path, title: str | None = None) -> Path:
    """The points and the fitted curve as PNG/SVG/PDF: solid over the points' entropies,
    dashed beyond them down to H = 0, where the ceiling −a + b is marked (:func:`curve_spans`;
    a floor, where a < 0, labelled so, :data:`BOUND_MARKERS`);
    names and ``title`` drawn as written (:func:`archive.figures.plain_text`)."""
    from archive.figures import new_figure, plain_text, save, tight_layout

    path = Path(path)
    fig = new_figure(figsize=(7, 5))
    ax = fig.subplots()
    ax.scatter(fit.entropy, fit.performance, s=22, alpha=0.75, label=f"evaluations (n = {fit.n})")
    draw_curve(ax, fit, "C3", label=f"R = −{fit.a:.3g}·exp(H) + {fit.b:.3g}   (R² = {fit.r2:.3f})")
    ax.axhline(fit.ceiling, color="C3", ls=":", lw=1)
    rises = " (a < 0: R rises with H)" if fit.bound == "floor" else ""
    ax.scatter([0.0], [fit.ceiling], marker=BOUND_MARKERS[fit.bound], s=140, color="C3", zorder=3,
               label=f"{fit.bound} −a + b = {fit.ceiling:.3g} [{fit.ceiling_ci[0]:.3g}, {fit.ceiling_ci[1]:.3g}]"
                     f"{rises}")
    ax.plot([], [], color="C3", ls="--", lw=1, label="dashed: the law beyond the points, to H = 0")
    ax.set_xlabel(plain_text(f"{fit.measure} (H, nats)"))
    ax.set_ylabel(plain_text(performance_label(fit)))
    ax.set_title(plain_text(title or "entropy-performance law R = −a·exp(H) + b"), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    tight_layout(fig)
    save(fig, path)
    return path


def performance_label(fit: LawFit) -> str:
    """The R axis' label: R's name, and where it is a minimised objective's negation
    (``−NAME``, :attr:`LawFit.negated`), that NAME is minimised."""
    if not fit.negated:
        return fit.objective
    return f"{fit.objective}  ({fit.objective.removeprefix(NEGATION)} is minimised)"


CURVE_POINTS = 100  # points of each drawn stretch of a fitted curve


def curve_spans(entropy: Sequence[float]) -> tuple[tuple[float, float], tuple[float, float] | None]:
    """Where a fitted curve is drawn: solid over the points' entropies (lowest to highest),
    and dashed from there to H = 0, the law's ceiling (``None`` where the points reach 0);
    a fit of no points is drawn solid over [0, 1]."""
    h = np.asarray(entropy, dtype=float)
    if not len(h):
        return (0.0, 1.0), None
    lo, hi = float(h.min()), float(h.max())
    if lo > 0:
        return (lo, hi), (0.0, lo)
    if hi < 0:
        return (lo, hi), (hi, 0.0)
    return (lo, hi), None


def draw_curve(ax: Any, fit: LawFit, color: Any, label: str | None = None, lw: float = 1.5) -> None:
    """``fit``'s curve on ``ax`` over :func:`curve_spans`: solid over its points, dashed to H = 0."""
    solid, dashed = curve_spans(fit.entropy)
    grid = np.linspace(*solid, CURVE_POINTS)
    ax.plot(grid, fit.predict(grid), color=color, lw=lw, label=label)
    if dashed is not None:
        grid = np.linspace(*dashed, CURVE_POINTS)
        ax.plot(grid, fit.predict(grid), color=color, lw=lw * 0.8, ls="--")


MAX_LISTED_RUNS = 10  # the per-run figure's legend names this many runs; more are coloured along a colour bar


def run_colours(reading: LawReading) -> tuple[list[RunLaw], list[Any]]:
    """The runs in order of their ceiling −a + b, highest first, and each one's colour: one
    of ten distinct colours (``C0``…``C9``) for up to :data:`MAX_LISTED_RUNS` runs; for more,
    the ``viridis`` colour of its rank (highest ceiling brightest), so no two runs share one."""
    from matplotlib import colormaps

    ordered = sorted(reading.runs, key=lambda r: (-r.fit.ceiling, r.evaluation_id))
    n = len(ordered)
    if n <= MAX_LISTED_RUNS:
        return ordered, [f"C{i}" for i in range(n)]
    cmap = colormaps["viridis"]
    return ordered, [cmap(1.0 - i / (n - 1)) for i in range(n)]


def listed_runs(n: int) -> list[int]:
    """The positions (in :func:`run_colours`' order) of the runs the legend names: every one
    up to :data:`MAX_LISTED_RUNS`; else the highest and the lowest ceilings, half each."""
    if n <= MAX_LISTED_RUNS:
        return list(range(n))
    top = MAX_LISTED_RUNS - MAX_LISTED_RUNS // 2
    return [*range(top), *range(n - MAX_LISTED_RUNS // 2, n)]


def unlisted_note(ordered: list[RunLaw], listed: list[int]) -> str | None:
    """The legend's line for the runs it does not name: how many, their ceilings' range and
    where every run is listed; ``None`` where it names them all."""
    rest = [r for i, r in enumerate(ordered) if i not in set(listed)]
    if not rest:
        return None
    low, high = min(r.fit.ceiling for r in rest), max(r.fit.ceiling for r in rest)
    return (f"{len(rest)} more run{'' if len(rest) == 1 else 's'} not listed: ceilings\n{low:.3g} to {high:.3g} "
            f"(colour bar; atlas law\nlists all {len(ordered)})")


def runs_figure(reading: LawReading, path: str | Path, title: str | None = None) -> Path:
    """Each run's checkpoints and its fitted curve (the ``per-run`` reading) as PNG/SVG/PDF:
    each curve solid over its checkpoints and dashed beyond them down to H = 0, where its
    ceiling −a + b is marked (a run with a < 0: its floor, :data:`BOUND_MARKERS`). Up to
    :data:`MAX_LISTED_RUNS` runs have distinct colours and the legend names each (its id,
    ceiling or floor, and R², highest −a + b first); more are coloured
    by the rank of their ceiling along a colour bar, and the legend names the five highest
    and five lowest and says how many others it does not name, and their ceilings
    (:func:`unlisted_note`). Names and ``title`` drawn as written
    (:func:`archive.figures.plain_text`); the title says how many runs and their median
    ceiling, under ``title`` where one is given."""
    from archive.figures import new_figure, plain_text, save, tight_layout

    path = Path(path)
    ordered, colours = run_colours(reading)
    listed = listed_runs(len(ordered))
    fig = new_figure(figsize=(9.5, 5))
    ax = fig.subplots()
    for i, (run, colour) in enumerate(zip(ordered, colours, strict=True)):
        f = run.fit
        label = f"#{run.evaluation_id}: {f.bound} {f.ceiling:.3g}, R² {f.r2:.2f}" if i in listed else None
        ax.scatter(f.entropy, f.performance, s=14, alpha=0.7, color=colour)
        draw_curve(ax, f, colour, label=label, lw=1.0)
        ax.scatter([0.0], [f.ceiling], marker=BOUND_MARKERS[f.bound], s=50, color=colour, zorder=3)
    if len(ordered) > MAX_LISTED_RUNS:
        _rank_colour_bar(fig, ax, ordered)
    note = unlisted_note(ordered, listed)
    if note:
        ax.plot([], [], ls="", label=plain_text(note))
    if ordered:
        ax.plot([], [], color="0.4", ls="--", lw=1, label="dashed: the law beyond\nthe checkpoints, to H = 0")
        if any(r.fit.bound == "ceiling" for r in ordered):
            ax.scatter([], [], marker="*", color="0.4", label="at H = 0: each run's\nceiling −a + b")
        if any(r.fit.bound == "floor" for r in ordered):
            ax.scatter([], [], marker=BOUND_MARKERS["floor"], color="0.4", label=FLOOR_LEGEND)
    median = reading.median()
    ax.set_xlabel(plain_text(f"{reading.measure} (H, nats)"))
    ax.set_ylabel(plain_text(reading.objective))
    runs = f"{len(reading.runs)} run{'' if len(reading.runs) == 1 else 's'}; median ceiling {median['ceiling']:.3g}"
    ax.set_title(plain_text(f"{title}\n{runs}" if title else f"per-run law R = −a·exp(H) + b ({runs})"), fontsize=10)
    if ordered:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    tight_layout(fig)
    save(fig, path)
    return path


def _rank_colour_bar(fig: Any, ax: Any, ordered: list[RunLaw]) -> None:
    """A colour bar under ``ax`` of :func:`run_colours`' ranks, its ticks the ceilings at a few ranks."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    n = len(ordered)
    mappable = ScalarMappable(Normalize(0, n - 1), colormaps["viridis"])
    bar = fig.colorbar(mappable, ax=ax, orientation="horizontal", fraction=0.05, pad=0.14, aspect=40)
    ticks = sorted({round(k * (n - 1) / 4) for k in range(5)})
    bar.set_ticks(ticks)
    bar.set_ticklabels([f"{ordered[n - 1 - t].fit.ceiling:.3g}" for t in ticks], fontsize=7)
    bar.set_label(f"each run's ceiling −a + b (colour by its rank of {n})", fontsize=8)
