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
reading keeps the ungrouped fit (``fit``) beside its groups.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    real_number,
    resolve_mode,
    run_metrics,
    trajectory_points,
)
from archive.law_figures import draw_curve
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
    reading = campaign_law(name, settings, done, measure, mode, space)
    reading.by = by
    reading.groups = law_groups(reading, done, by)
    return reading


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
                          f"already: drop by (--by), or choose mode (--mode) {POOLED} or {CROSS}")


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
    """A group's (H, R) points in ``reading``'s mode: each evaluation's final objective and
    measure (``cross-configuration``) or its trajectory's checkpoints (``pooled``)."""
    hs: list[float] = []
    rs: list[float] = []
    for ev in evs:
        if reading.mode == CROSS:
            h, r = real_number(measured_value(ev, reading.measure)), real_number(ev.get("objective"))
            pairs = ([h], [r]) if h is not None and r is not None else ([], [])
        else:
            pairs = trajectory_points(run_metrics(ev).get(TRAJECTORY))
        hs += pairs[0]
        rs += pairs[1]
    return hs, rs


def law_groups(reading: LawReading, done: list[dict[str, Any]], by: str) -> list[LawGroup]:
    """One :class:`LawGroup` per value of ``by`` (:func:`group_evaluations`), each fitted
    over its own points in ``reading``'s mode; a group of fewer than :data:`MIN_POINTS`
    points, or one the law cannot be fitted to, keeps its reason instead of a fit. Fitted
    groups first, highest ceiling first; then the others by label."""
    out = []
    for value, label, evs in group_evaluations(done, by):
        hs, rs = _group_points(reading, evs)
        group = LawGroup(value, label, len(hs), entropy=hs, performance=rs,
                         varying=varying_params(evs, [c for c in reading.categorical if c != by]))
        if len(hs) < MIN_POINTS:
            group.reason = f"{len(hs)} point{'' if len(hs) == 1 else 's'}: the law needs at least {MIN_POINTS}"
        else:
            try:
                group.fit = fit_law(hs, rs, measure=reading.measure, objective=reading.objective)
            except LawFitError as exc:
                group.reason = str(exc)
        out.append(group)
    fitted = sorted((g for g in out if g.fit), key=lambda g: (-g.fit.ceiling, g.label))  # type: ignore[union-attr]
    return fitted + sorted((g for g in out if not g.fit), key=lambda g: (g.label == UNSET, g.label))


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
    and its ceiling marked at H = 0; the ungrouped fit thin and grey for comparison. The
    legend names each group: its value, ceiling, R² and n, or that it was not fitted.
    Names and ``title`` drawn as written (:func:`archive.figures.plain_text`)."""
    from archive.figures import new_figure, plain_text, save, tight_layout

    path = Path(path)
    fig = new_figure(figsize=(9.5, 5))
    ax = fig.subplots()
    groups = reading.groups
    for group, colour in zip(groups, group_colours(len(groups)), strict=True):
        if group.fit is not None:
            f = group.fit
            label = f"{reading.by} = {group.label}: ceiling {f.ceiling:.3g}, R² {f.r2:.2f}, n = {f.n}"
            ax.scatter(f.entropy, f.performance, s=14, alpha=0.7, color=colour)
            draw_curve(ax, f, colour, label=plain_text(label), lw=1.2)
            ax.scatter([0.0], [f.ceiling], marker="*", s=70, color=colour, zorder=3)
        else:
            ax.scatter(group.entropy, group.performance, s=18, facecolors="none", edgecolors=[colour],
                       label=plain_text(f"{reading.by} = {group.label}: not fitted ({group.n} points)"))
    if reading.fit is not None:
        whole = reading.fit
        draw_curve(ax, whole, "0.5", label=f"all points: ceiling {whole.ceiling:.3g}, R² {whole.r2:.2f}", lw=0.8)
    ax.plot([], [], color="0.4", ls="--", lw=1, label="dashed: the law beyond\nthe points, to H = 0")
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
