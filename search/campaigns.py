"""Create a campaign from a spec, or find the one a spec continues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archive.errors import CampaignNameTaken, CampaignNotFound
from archive.layout import CellLayout, MeasureAxis
from archive.records import CampaignRecord
from archive.store import Store
from entropy_atlas.errors import AtlasError
from search.spec import RUN_LIMITS, CampaignSpec, SpecError, parse_spec

__all__ = ["BudgetSpent", "CampaignConflict", "CampaignNotFound", "CampaignPlan", "commit_campaign",
           "evaluator_units", "layout_for", "plan_campaign", "stored_spec"]


class CampaignConflict(AtlasError, ValueError):
    """A campaign of that name exists with a different spec."""


class BudgetSpent(AtlasError, ValueError):
    """A campaign that failed fast has spent its budget: a run at that budget has nothing
    left to evaluate (it would only have marked the campaign ``finished``)."""


@dataclass
class CampaignPlan:
    """What a run will write, worked out before anything is: the spec, the campaign it
    continues (None: a new one), and the cell layout (the stored one when continuing)."""

    spec: CampaignSpec
    existing: CampaignRecord | None
    layout: CellLayout


def layout_for(spec: CampaignSpec) -> CellLayout:
    axes = [MeasureAxis(m.name, m.low, m.high, m.bins) for m in spec.measures]
    return CellLayout.build(spec.archive.type, axes, cells=spec.archive.cells,
                            samples=spec.archive.samples, seed=spec.search.seed)


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The paths where ``new`` differs from ``old``, as the file names its fields
    (``measures.0.bins``): into mappings, and into lists of one length item by item."""
    out = []
    for key in sorted(set(old) | set(new)):
        out += _changed(f"{prefix}{key}", old.get(key), new.get(key))
    return out


def _changed(path: str, a: Any, b: Any) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return _differences(a, b, path + ".")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a != b:
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _changed(f"{path}.{i}", x, y)]
    return [path] if a != b else []


def plan_campaign(store: Store, spec: CampaignSpec, layout: CellLayout | None = None,
                  source: str = "campaign", budget_source: str | None = None) -> CampaignPlan:
    """Check that ``spec`` may run in ``store`` without writing anything.

    A new name is a new campaign, on ``layout`` (the spec's own, :func:`layout_for`,
    where the caller built it already). An existing one continues, on its stored layout,
    when the specs agree in everything but the run's limits (the budget and ``fail_fast``:
    :data:`~search.spec.RUN_LIMITS`; compared after filling defaults,
    so a field added to the format with a default does not make an old campaign
    different); lowering the budget below what was already created is refused. Any other
    difference is a :class:`CampaignConflict`. A refused budget names ``budget_source``
    (where the budget came from: ``c1.yaml with --budget 200``; default ``source``, the file).
    A campaign that failed fast with its budget spent (:func:`check_not_spent`) is
    :class:`BudgetSpent`: a run would evaluate nothing.
    """
    existing = store.campaign(spec.name)
    if existing is None:
        return CampaignPlan(spec, None, layout or layout_for(spec))
    old = parse_spec(existing.spec, source=f"stored spec of {spec.name}")
    if old.spec_hash() != spec.spec_hash():
        limits = {f"search.{key}" for key in RUN_LIMITS}
        changed = [d for d in _differences(old.model_dump(mode="json"), spec.model_dump(mode="json"))
                   if d not in limits]
        was, now = old.key_orders(), spec.key_orders()
        changed += [f"{path} (the order: {', '.join(was[path])} → {', '.join(now[path])})" for path in now
                    if path in was and was[path] != now[path] and set(was[path]) == set(now[path])]
        raise CampaignConflict(
            f"campaign {spec.name!r} already exists with a different spec (changed: {', '.join(changed)}); "
            f"use another --name, or resume it with `atlas resume {spec.name}`"
        )
    if old.search.budget != spec.search.budget:
        check_budget(store, existing.id, spec, budget_source or source, stored=old.search.budget)
    check_not_spent(store, existing, spec)
    return CampaignPlan(spec, existing, CellLayout.from_json(existing.layout))


def check_not_spent(store: Store, existing: CampaignRecord, spec: CampaignSpec) -> None:
    """Raise :class:`BudgetSpent` where campaign ``existing`` stopped ``failed`` (fail-fast)
    with every evaluation of ``spec``'s budget created and finished: the run would evaluate
    nothing and only mark it ``finished``. The line says how many failed and the budget that
    tries again (the failed ones' number more). Rows left unfinished still run."""
    if existing.status != "failed":
        return
    stats = store.stats(existing.id, 0)
    budget = spec.search.budget
    if stats.created < budget or stats.finished < stats.created:
        return
    failed = stats.counts["failed"]
    raise BudgetSpent(
        f"campaign {spec.name!r} failed with its budget of {budget} spent ({failed} of its {stats.created} "
        f"evaluations failed): nothing is left to run; to try again, raise the budget: "
        f"`atlas resume {spec.name} --budget {stats.created + max(failed, 1)}` runs {max(failed, 1)} more")


def commit_campaign(store: Store, plan: CampaignPlan, limits: bool = True) -> CampaignRecord:
    """Write the planned campaign: its row when new, its new limits (budget, ``fail_fast``)
    when changed (unless ``limits`` is False: a run writes them once it holds the lease,
    :func:`write_limits`, so that a run refused as busy changes nothing). A new name that
    another run wrote first is a :class:`CampaignConflict`."""
    spec = plan.spec
    if plan.existing is None:
        try:
            return store.create_campaign(spec.name, spec.model_dump(mode="json"), spec.spec_hash(),
                                         plan.layout.to_json(), evaluator_units(spec))
        except CampaignNameTaken:
            raise CampaignConflict(f"campaign {spec.name!r} was created by another run while this one started; "
                                   f"that run has it: `atlas status {spec.name}`, and `atlas resume {spec.name}` "
                                   f"once it stops") from None
    if limits:
        write_limits(store, plan.existing, spec)
    return store.require_campaign(spec.name)


def check_budget(store: Store, campaign_id: int, spec: CampaignSpec, source: str = "campaign",
                 stored: int | None = None) -> None:
    """Raise :class:`SpecError` when ``spec``'s budget is below the evaluations the
    campaign already has, naming ``source`` (where the budget came from) and how to go on:
    ``atlas resume`` at the ``stored`` budget (one a ``--budget`` raised past the file's), or
    a larger ``--budget``."""
    created = store.count_created(campaign_id)
    if spec.search.budget < created:
        kept = "" if stored is None else f" (its budget is {stored})"
        raise SpecError([f"search.budget: {spec.search.budget} is below the {created} evaluations "
                         f"campaign {spec.name!r} already has; continue it with `atlas resume {spec.name}`{kept}, "
                         f"or run more with a --budget above {created}"], source)


def write_limits(store: Store, record: CampaignRecord, spec: CampaignSpec) -> None:
    """Store ``spec``'s run limits (:data:`~search.spec.RUN_LIMITS`) where they changed. A
    new budget is checked again here, under the run's lease: the evaluations counted when
    the run was planned may have grown since, by the run that held the campaign then."""
    if record.spec != spec.model_dump(mode="json"):
        if record.spec["search"]["budget"] != spec.search.budget:
            check_budget(store, record.id, spec, stored=record.spec["search"]["budget"])
        store.update_campaign(record.id, spec=spec.model_dump(mode="json"), default_units=evaluator_units(spec))


def evaluator_units(spec: CampaignSpec) -> dict[str, str]:
    """The units ``spec``'s evaluator declares for its config (:func:`workers.registry.units`;
    none for ``kind: python``), by the spec's objective's and measures' names: the labels of
    those the spec gives no ``unit`` (:meth:`archive.records.CampaignSettings.from_spec`).
    Written with the campaign's settings, which every reader takes; a resume writes the same."""
    from workers import registry

    declared = registry.units(spec.evaluator.kind, dict(spec.evaluator.config))
    return declared.labels(spec.objective.name, [m.name for m in spec.measures])


def open_campaign(store: Store, spec: CampaignSpec) -> CampaignRecord:
    """Plan and commit in one step (for tools and tests that build nothing in between)."""
    return commit_campaign(store, plan_campaign(store, spec))


def stored_spec(store: Store, name: str) -> tuple[CampaignRecord, CampaignSpec]:
    campaign = store.require_campaign(name)
    return campaign, parse_spec(campaign.spec, source=f"stored spec of {name}")
