"""Elites measured outside the map's axes: how many, on which measure, how far.

A grid puts a measure below its axis' ``low`` in the measure's first bin and one above its
``high`` in its last (:meth:`archive.layout.CellLayout.index_of` clips it there); a CVT
archive puts it in the nearest centroid, and its centroids lie within ``[low, high]`` too.
Either way the map shows such an elite at a value it never had. :func:`outside_axes`
counts them from the elites alone (one row per cell at most: never the evaluations), for
``atlas status``, the warning at the end of ``atlas run`` and the elite map's note
(:func:`measure_text`, :func:`run_warning`, :func:`figure_note`). Plain Python: no NumPy,
no SQL.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from archive.layout import MeasureAxis
from entropy_atlas.wording import count


@dataclasses.dataclass(frozen=True)
class OutsideAxis:
    """One measure's elites outside its axis: ``below`` of them under ``low`` (the least of
    them ``least``), ``above`` over ``high`` (the greatest ``greatest``); ``index`` is the
    measure's place in the spec's ``measures``."""

    measure: str
    index: int
    low: float
    high: float
    below: int = 0
    above: int = 0
    least: float | None = None
    greatest: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Outside:
    """The elites outside the axes: ``elites`` of them on at least one measure, and each
    measure that has some (``measures``, in the spec's order)."""

    elites: int = 0
    measures: tuple[OutsideAxis, ...] = ()

    def __bool__(self) -> bool:
        return self.elites > 0

    def to_json(self) -> dict[str, Any]:
        return {"elites": self.elites, "measures": [m.to_json() for m in self.measures]}


def outside_axes(axes: Sequence[MeasureAxis], elites: Iterable[Mapping[str, Any]]) -> Outside:
    """The elites (rows with a ``measures`` mapping) whose measure lies below its axis'
    ``low`` or above its ``high``. A value on ``low`` or ``high`` is inside; a missing,
    non-numeric or NaN measure is neither (nothing places it); ±inf is outside."""
    below = [0] * len(axes)
    above = [0] * len(axes)
    least: list[float | None] = [None] * len(axes)
    greatest: list[float | None] = [None] * len(axes)
    elites_out = 0
    for elite in elites:
        measures = elite.get("measures") or {}
        out = False
        for i, axis in enumerate(axes):
            value = _number(measures.get(axis.name))
            if value is None or axis.low <= value <= axis.high:
                continue
            out = True
            if value < axis.low:
                below[i] += 1
                least[i] = value if least[i] is None else min(least[i], value)
            else:
                above[i] += 1
                greatest[i] = value if greatest[i] is None else max(greatest[i], value)
        elites_out += out
    found = tuple(OutsideAxis(a.name, i, a.low, a.high, below[i], above[i], least[i], greatest[i])
                  for i, a in enumerate(axes) if below[i] or above[i])
    return Outside(elites_out, found)


def _number(value: Any) -> float | None:
    """``value`` as a float, or None where it is no number (bool, str, None, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def _sides(m: OutsideAxis, noun: bool = True) -> str:
    """``3 elites below 0 (down to -0.4) and 2 above 2 (up to 2.32)`` (without ``noun``: ``3 below …``)."""
    parts = []
    if m.below:
        parts.append(f"{count(m.below, 'elite') if noun else m.below} below {m.low:g} (down to {m.least:.4g})")
    if m.above:
        parts.append(f"{count(m.above, 'elite') if noun and not parts else m.above} above {m.high:g} "
                     f"(up to {m.greatest:.4g})")
    return " and ".join(parts)


def _placed(m: OutsideAxis, kind: str) -> str:
    """Where the archive put them: a grid's edge bin of the measure, a CVT's nearest cell."""
    if kind != "grid":
        return "each drawn in its nearest cell"
    edge = {(True, False): "first bin", (False, True): "last bin"}.get((bool(m.below), bool(m.above)),
                                                                       "first and last bins")
    return f"drawn in its {edge}"


def _widen(m: OutsideAxis) -> str:
    """``measures.0 (high >= 2.32)``: the spec's bounds that would hold them."""
    bounds = ([f"low <= {m.least:.4g}"] if m.below else []) + ([f"high >= {m.greatest:.4g}"] if m.above else [])
    return f"measures.{m.index} ({', '.join(bounds)})"


def measure_text(m: OutsideAxis, kind: str) -> str:
    """One measure's line of ``atlas status``: ``mean_entropy: 3 elites above 2 (up to 2.32),
    drawn in its last bin; widen measures.0 (high >= 2.32) in a new campaign to see them``."""
    return (f"{m.measure}: {_sides(m)}, {_placed(m, kind)}; widen {_widen(m)} in a new campaign "
            f"to see them")


def run_warning(found: Outside, kind: str, name: str) -> str:
    """The one warning at the end of ``atlas run``: how many elites, each measure's side and
    extreme, and where the rest is told."""
    sides = "; ".join(f"{m.measure} {_sides(m, noun=False)}" for m in found.measures)
    where = "drawn in the edge cells" if kind == "grid" else "each drawn in its nearest cell"
    return (f"{count(found.elites, 'elite')} {_lie(found.elites)} outside the map's axes, {where}: {sides}; "
            f"`atlas status {name}` says which bounds to widen")


def figure_note(found: Outside, kind: str, projected: bool = False) -> str:
    """The elite map's note: ``3 elites lie beyond the axes (mean_entropy up to 2.32), drawn
    in the edge cells`` (a CVT heatmap: in their nearest cells; a CVT map of points,
    ``projected``: cut off by the frames of the panels of that measure)."""
    extremes = ", ".join(f"{m.measure} {_extremes(m)}" for m in found.measures)
    where = ("drawn in the edge cells" if kind == "grid" else "cut off by the panels' frames" if projected
             else "drawn in their nearest cells")
    return f"{count(found.elites, 'elite')} {_lie(found.elites)} beyond the axes ({extremes}), {where}"


def _extremes(m: OutsideAxis) -> str:
    """``down to -0.4 and up to 2.32``."""
    return " and ".join(([f"down to {m.least:.4g}"] if m.below else [])
                        + ([f"up to {m.greatest:.4g}"] if m.above else []))


def _lie(n: int) -> str:
    return "lies" if n == 1 else "lie"
