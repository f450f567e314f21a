"""The entropy-performance law fitted apart for each value of one search parameter
(``atlas law NAME --by PARAM``).

The ``cross-configuration`` or ``pooled`` fit of :mod:`archive.law` is repeated for each
value of the parameter, over the evaluations that took it (a pooled group pools those
runs' checkpoints); evaluations without the parameter (a conditional one, inactive) form
the group :data:`~archive.law.UNSET`. Two values are one group when their JSON texts are
equal (``1`` and ``"1"`` differ). A group of fewer than :data:`~archive.law.MIN_POINTS`
points, or one the law cannot be fitted to, is listed with why, not fitted. ``per-run``
is one fit per run already and refuses ``by``; with ``by`` and no mode the default is
``pooled`` where the per-run default would apply, else ``cross-configuration``. The
reading keeps the ungrouped fit (``fit``) beside its groups; where the points cannot
determine one law (:class:`~archive.law.DegeneratePointsError`), it has none and says why
in ``reason``, and the groups are fitted still.

A continuous parameter (:func:`is_continuous`: the space's ``type: float``; with no space,
one whose values are all real numbers and some a float that is not a whole number) with
more than :data:`MAX_FLOAT_BINS` distinct values is not grouped per value, which would
make each group one evaluation (one run): its values are cut into ranges at their
distinct values' quantiles (:func:`float_edges`), between 2 and :data:`MAX_FLOAT_BINS` of them, one per
:data:`EVALUATIONS_PER_BIN` evaluations, labelled ``[LOW, HIGH)`` (the last ``[LOW, HIGH]``)
with edges of the fewest significant digits, at least 2, that keep them apart. The
groups of a numeric parameter (ranges, ints, floats) are listed by value; those of any
other (a categorical's, a bool's) fitted first by ceiling, highest first, then by label;
:data:`~archive.law.UNSET` last either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

from archive.law import (
    CROSS,
    MIN_POINTS,
    PER_RUN,
    POOLED,
    TRAJECTORY,
    UNSET,
    LawFitError,
    LawGroup,
    LawReading,
    campaign_law,
    fit_law,
    measured_value,
    performance_of,
    real_number,
    resolve_mode,
    run_metrics,
    trajectory_points,
)
from archive.law_figures import BOUND_MARKERS, FLOOR_LEGEND, draw_curve
from archive.records import CampaignSettings


def grouped_law(name: str, settings: CampaignSettings, done: list[dict[str, Any]], by: str,
                measure: str | None = None, mode: str | None = None,
                space: Mapping[str, Any] | None = None) -> LawReading:
    """:func:`archive.law.campaign_law` with one fit per value of parameter ``by`` in
    ``groups`` (:func:`law_groups`); ``mode`` defaults to ``pooled`` where the ungrouped
    default is ``per-run``. A name that is no parameter, or ``per-run``, is refused
    (:func:`check_by`)."""
    mode = resolve_mode(done, measure, mode, runs_default=POOLED)
    check_by(name, settings, done, by, mode)
    reading = campaign_law(name, settings, done, measure, mode, space, keep_unfitted=True)
    reading.by = by
    reading.binned = (_space_type(space, by) == "float" if isinstance(space, Mapping)
                      else is_continuous(_values(done, by)))
    reading.groups = law_groups(reading, done, by)
    return reading


MAX_FLOAT_BINS = 4  # a continuous parameter is cut into at most this many ranges (:func:`float_edges`)
EVALUATIONS_PER_BIN = 6  # ... and one range per this many evaluations, at least 2


def _space_type(space: Mapping[str, Any], by: str) -> Any:
    """The ``type`` of parameter ``by`` in a campaign spec's ``space`` (``None`` where it has none)."""
    param = space.get(by)
    return param.get("type") if isinstance(param, Mapping) else None


def _values(done: list[dict[str, Any]], by: str) -> list[Any]:
    """The values of parameter ``by`` over ``done`` (the evaluations that have it)."""
    return [ev["params"][by] for ev in done if by in (ev.get("params") or {})]


def is_continuous(values: Sequence[Any]) -> bool:
    """Whether the values of a parameter (no space to say) look continuous: every one a real
    number (not a bool) and some a float that is not a whole number."""
    numbers = [real_number(v) for v in values]
    return bool(values) and all(v is not None for v in numbers) \
        and any(isinstance(v, float) and not float(v).is_integer() for v in values)


def float_edges(values: Sequence[float], bins: int) -> list[Decimal]:
    """The edges of ``bins`` ranges of ``values`` at the quantiles of their distinct values
    (a value many evaluations share is one value, so it cannot swallow the others), low to
    high: the lowest edge at or below min(values), the highest at or above max(values), all
    of the fewest significant digits, at least 2, that keep apart the quantiles that differ;
    a range no value falls in is merged into its neighbour."""
    ordered = sorted({float(v) for v in values})
    inner = [ordered[k * len(ordered) // bins] for k in range(1, bins)]
    raw = sorted({ordered[0], *inner, ordered[-1]})
    for digits in range(2, 18):
        edges = [_round(raw[0], digits, ROUND_FLOOR), *(_round(v, digits, ROUND_HALF_EVEN) for v in raw[1:-1]),
                 _round(raw[-1], digits, ROUND_CEILING)]
        if all(b > a for a, b in pairwise(edges)):
            break
    while len(edges) > 2:
        counts = [0] * (len(edges) - 1)
        for v in ordered:
            counts[_bin_of(v, edges)] += 1
        if all(counts):
            break
        empty = counts.index(0)
        del edges[empty if empty == len(counts) - 1 else empty + 1]
    return edges


def _round(value: float, digits: int, rounding: str) -> Decimal:
    """``value`` to ``digits`` significant digits, rounded as ``rounding`` says."""
    exact = Decimal(repr(value))
    if exact == 0:
        return Decimal(0)
    return exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), rounding=rounding).normalize()


def _bin_of(value: float, edges: Sequence[Decimal]) -> int:
    """The range of ``edges`` that ``value`` falls in: ``[e_i, e_{i+1})``, the last closed."""
    inner = [float(e) for e in edges[1:-1]]
    return sum(value >= e for e in inner)


def _edge_text(edge: Decimal) -> str:
    """An edge as written: plain digits (``0.00012``, ``450``), or an exponent where those would be long."""
    text = f"{edge:f}"
    return text if len(text) <= 10 else f"{float(edge):.{max(2, len(edge.as_tuple().digits))}g}"


def bin_evaluations(done: list[dict[str, Any]], by: str) -> list[tuple[Any, str, list[dict[str, Any]]]] | None:
    """``done`` split into ranges of the continuous parameter ``by``'s values (module
    docstring): (``[low, high]``, ``"[low, high)"``, evaluations) from the lowest range up,
    then the evaluations without ``by`` under (None, :data:`UNSET`); ``None`` where ``by``
    has no more than :data:`MAX_FLOAT_BINS` distinct values or some value is no real number
    (then each value is its own group)."""
    values = [real_number(v) for v in _values(done, by)]
    if any(v is None for v in values) or len(set(values)) <= MAX_FLOAT_BINS:
        return None
    bins = max(2, min(MAX_FLOAT_BINS, len(values) // EVALUATIONS_PER_BIN))
    edges = float_edges([v for v in values if v is not None], bins)
    groups: list[list[dict[str, Any]]] = [[] for _ in edges[1:]]
    unset: list[dict[str, Any]] = []
    for ev in done:
        params = ev.get("params") or {}
        if by in params:
            groups[_bin_of(float(params[by]), edges)].append(ev)
        else:
            unset.append(ev)
    last = len(groups) - 1
    out: list[tuple[Any, str, list[dict[str, Any]]]] = [
        ([float(edges[i]), float(edges[i + 1])],
         f"[{_edge_text(edges[i])}, {_edge_text(edges[i + 1])}{']' if i == last else ')'}", evs)
        for i, evs in enumerate(groups)]
    return out + ([(None, UNSET, unset)] if unset else [])


def check_by(name: str, settings: CampaignSettings, done: list[dict[str, Any]], by: str, mode: str) -> None:
    """A :class:`LawFitError` unless ``by`` names one of the campaign's parameters (its
    settings' ``params``; where those are empty, the names in the evaluations' params)
    and ``mode`` is not ``per-run`` (whose fits are one per run already)."""
    known = list(settings.params) or sorted({k for ev in done for k in (ev.get("params") or {})})
    listed = ", ".join(known) or "none"
    if not by.strip():
        raise LawFitError(f"by (--by) is empty: name a parameter of campaign {name!r} (parameters: {listed})")
    if by not in known:
        raise LawFitError(f"campaign {name!r} has no parameter named {by!r} to group by (parameters: {listed})")
    if mode == PER_RUN:
        raise LawFitError(f"by (--by) groups the {POOLED} or {CROSS} fit; the {PER_RUN} fit is one fit per run "
                          f"already: drop by (--by), or choose --mode {POOLED} or {CROSS} "
                          f"(mode={POOLED!r} or {CROSS!r} from Python)")


def group_key(value: Any) -> str:
    """The key two evaluations share when their parameter values are the same value:
    its JSON text (so ``1`` and ``"1"`` differ, and lists group too)."""
    return json.dumps(value, sort_keys=True, default=str)


def group_label(value: Any) -> str:
    """A group's label: a string value as it is, any other as its JSON text."""
    return value if isinstance(value, str) else group_key(value)


def group_evaluations(done: list[dict[str, Any]], by: str) -> list[tuple[Any, str, list[dict[str, Any]]]]:
    """``done`` split by their value of parameter ``by``: (value, label, evaluations) in
    order of first appearance; evaluations whose params lack ``by`` under (None, :data:`UNSET`)."""
    groups: dict[str | None, tuple[Any, str, list[dict[str, Any]]]] = {}
    for ev in done:
        params = ev.get("params") or {}
        key = group_key(params[by]) if by in params else None
        if key not in groups:
            groups[key] = (params[by], group_label(params[by]), []) if key is not None else (None, UNSET, [])
        groups[key][2].append(ev)
    return list(groups.values())


def _group_points(reading: LawReading, evs: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """A group's (H, R) points in ``reading``'s mode: each evaluation's measure and final
    objective, negated where the reading is (:func:`~archive.law.performance_of`: a minimised
    objective's fitness), in ``cross-configuration``, or its trajectory's checkpoints (``pooled``)."""
    hs: list[float] = []
    rs: list[float] = []
    for ev in evs:
        if reading.mode == CROSS:
            h, r = real_number(measured_value(ev, reading.measure)), performance_of(ev, not reading.negated)
            pairs = ([h], [r]) if h is not None and r is not None else ([], [])
        else:
            pairs = trajectory_points(run_metrics(ev).get(TRAJECTORY))
        hs += pairs[0]
        rs += pairs[1]
    return hs, rs


def law_groups(reading: LawReading, done: list[dict[str, Any]], by: str) -> list[LawGroup]:
    """One :class:`LawGroup` per value of ``by`` (:func:`group_evaluations`), or per range of
    its values where ``reading.binned`` (:func:`bin_evaluations`), each fitted over its own
    points in ``reading``'s mode; a group of fewer than :data:`MIN_POINTS` points, or one
    the law cannot be fitted to, keeps its reason instead of a fit. In the order of
    :func:`order_groups`."""
    split = bin_evaluations(done, by) if reading.binned else None
    if split is None:
        reading.binned = False
        split = group_evaluations(done, by)
    out = []
    for value, label, evs in split:
        hs, rs = _group_points(reading, evs)
        group = LawGroup(value, label, len(hs), entropy=hs, performance=rs, binned=reading.binned,
                         evaluations=sum(bool(_group_points(reading, [ev])[0]) for ev in evs),
                         varying=varying_params(evs, [c for c in reading.categorical if c != by]))
        if len(hs) < MIN_POINTS:
            group.reason = f"{len(hs)} point{'' if len(hs) == 1 else 's'}: the law needs at least {MIN_POINTS}"
        else:
            try:
                group.fit = fit_law(hs, rs, measure=reading.measure, objective=reading.objective,
                                    negated=reading.negated)
            except LawFitError as exc:
                group.reason = str(exc)
        out.append(group)
    return order_groups(out)


def order_groups(groups: list[LawGroup]) -> list[LawGroup]:
    """Groups of a numeric parameter (every value but :data:`UNSET`'s a real number, or
    ranges) by value, lowest first; any other's fitted first by ceiling, highest first,
    then the others by label; :data:`UNSET` last either way."""
    unset = [g for g in groups if g.label == UNSET and g.value is None]
    rest = [g for g in groups if g not in unset]
    if all(g.binned or real_number(g.value) is not None for g in rest):
        return sorted(rest, key=lambda g: g.value[0] if g.binned else real_number(g.value)) + unset
    fitted = sorted((g for g in rest if g.fit), key=lambda g: (-g.fit.ceiling, g.label))  # type: ignore[union-attr]
    return fitted + sorted((g for g in rest if not g.fit), key=lambda g: g.label) + unset


def varying_params(evs: list[dict[str, Any]], names: list[str]) -> tuple[str, ...]:
    """Those of ``names`` that take two values or more over ``evs`` (a group's evaluations):
    the parameters that could split the group further."""
    return tuple(name for name in names
                 if len({group_key(ev["params"][name]) for ev in evs if name in (ev.get("params") or {})}) > 1)


def group_colours(n: int) -> list[Any]:
    """``n`` distinct colours for a grouped figure's groups: ``C0``…``C9`` up to ten, the
    twenty of ``tab20`` up to twenty, else ``n`` steps along ``viridis``."""
    from matplotlib import colormaps

    if n <= 10:
        return [f"C{i}" for i in range(n)]
    cmap = colormaps["tab20"] if n <= 20 else colormaps["viridis"]
    return [cmap(i) for i in range(n)] if n <= 20 else [cmap(i / (n - 1)) for i in range(n)]


def groups_figure(reading: LawReading, path: str | Path, title: str | None = None) -> Path:
    """A grouped reading (``by``) as PNG/SVG/PDF: each group's points in its own colour
    (:func:`group_colours`, in :func:`law_groups`' order; hollow for a group not fitted)
    and, where fitted, its curve (solid over its points, dashed to H = 0, :func:`_curve`)
    and its ceiling marked at H = 0 (a star; a floor, where a < 0, a triangle pointing
    down, :data:`~archive.law_figures.BOUND_MARKERS`); the ungrouped fit thin and grey for
    comparison. The legend names each group: its value or range, ceiling (or floor), R²
    and n, or that it was not fitted.
    Names and ``title`` drawn as written (:func:`archive.figures.plain_text`)."""
    from archive.figures import new_figure, plain_text, save, tight_layout

    path = Path(path)
    fig = new_figure(figsize=(9.5, 5))
    ax = fig.subplots()
    groups, by = reading.groups, reading.by or ""
    for group, colour in zip(groups, group_colours(len(groups)), strict=True):
        if group.fit is not None:
            f = group.fit
            label = f"{group.title(by)}: {f.bound} {f.ceiling:.3g}, R² {f.r2:.2f}, n = {f.n}"
            ax.scatter(f.entropy, f.performance, s=14, alpha=0.7, color=colour)
            draw_curve(ax, f, colour, label=plain_text(label), lw=1.2)
            ax.scatter([0.0], [f.ceiling], marker=BOUND_MARKERS[f.bound], s=70, color=colour, zorder=3)
        else:
            ax.scatter(group.entropy, group.performance, s=18, facecolors="none", edgecolors=[colour],
                       label=plain_text(f"{group.title(by)}: not fitted ({group.n} points)"))
    if reading.fit is not None:
        whole = reading.fit
        draw_curve(ax, whole, "0.5", label=f"all points: {whole.bound} {whole.ceiling:.3g}, R² {whole.r2:.2f}",
                   lw=0.8)
    ax.plot([], [], color="0.4", ls="--", lw=1, label="dashed: the law beyond\nthe points, to H = 0")
    bounds = {g.fit.bound for g in groups if g.fit is not None}
    if "floor" in bounds:
        ax.scatter([], [], marker=BOUND_MARKERS["floor"], color="0.4", label=FLOOR_LEGEND)
    ax.set_xlabel(plain_text(f"{reading.measure} (H, nats)"))
    ax.set_ylabel(plain_text(reading.objective))
    fitted = sum(g.fit is not None for g in groups)
    head = f"by {reading.by}: {fitted} of {len(groups)} group{'' if len(groups) == 1 else 's'} fitted"
    ax.set_title(plain_text(f"{title}\n{head}" if title else f"entropy-performance law R = −a·exp(H) + b, {head}"),
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    tight_layout(fig)
    save(fig, path)
    return path
