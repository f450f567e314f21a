"""Create a campaign from a spec, or find the one a spec continues."""

from __future__ import annotations

from typing import Any

from archive.layout import CellLayout, MeasureAxis
from archive.store import CampaignRecord, Store
from entropy_atlas.errors import AtlasError
from search.spec import CampaignSpec, SpecError, parse_spec


class CampaignConflict(AtlasError, ValueError):
    """A campaign of that name exists with a different spec."""


class CampaignNotFound(LookupError):
    """No campaign of that name in the storage."""


def layout_for(spec: CampaignSpec) -> CellLayout:
    axes = [MeasureAxis(m.name, m.low, m.high, m.bins) for m in spec.measures]
    return CellLayout.build(spec.archive.type, axes, cells=spec.archive.cells,
                            samples=spec.archive.samples, seed=spec.search.seed)


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        path = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, path + ".")
        elif a != b:
            out.append(path)
    return out


def open_campaign(store: Store, spec: CampaignSpec) -> CampaignRecord:
    """The campaign named by ``spec``: created if new, continued if the spec matches.

    A different budget is allowed (it only moves the end); lowering it below what was
    already created is refused. Any other difference is a :class:`CampaignConflict`.
    """
    existing = store.campaign(spec.name)
    if existing is None:
        return store.create_campaign(spec.name, spec.model_dump(mode="json"), spec.spec_hash(),
                                     layout_for(spec).to_json())
    if existing.spec_hash != spec.spec_hash():
        old = dict(existing.spec)
        changed = [d for d in _differences(old, spec.model_dump(mode="json")) if d != "search.budget"]
        raise CampaignConflict(
            f"campaign {spec.name!r} already exists with a different spec (changed: {', '.join(changed)}); "
            f"use another --name, or resume it with `atlas resume {spec.name}`"
        )
    if existing.spec["search"]["budget"] != spec.search.budget:
        created = store.count_created(existing.id)
        if spec.search.budget < created:
            raise SpecError([f"search.budget: {spec.search.budget} is below the {created} evaluations "
                             f"campaign {spec.name!r} already has"])
        store.update_campaign(existing.id, spec=spec.model_dump(mode="json"))
        existing = store.campaign(spec.name)
        assert existing is not None
    return existing


def stored_spec(store: Store, name: str) -> tuple[CampaignRecord, CampaignSpec]:
    campaign = store.campaign(name)
    if campaign is None:
        known = ", ".join(c.name for c in store.campaigns()) or "none"
        raise CampaignNotFound(f"no campaign named {name!r} in {store.url} (campaigns: {known})")
    return campaign, parse_spec(campaign.spec, source=f"stored spec of {name}")
