"""The archive as a Python API: ``archive.open(storage).campaign(name)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archive.layout import CellLayout
from archive.store import CampaignRecord, Stats, Store


class CampaignHandle:
    """Read one campaign: progress, elites, evaluations, exports and its map."""

    def __init__(self, store: Store, record: CampaignRecord) -> None:
        self.store = store
        self.record = record
        self.layout = CellLayout.from_json(record.layout)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def spec(self) -> dict[str, Any]:
        return self.record.spec

    @property
    def maximize(self) -> bool:
        return self.spec.get("objective", {}).get("direction", "maximize") == "maximize"

    @property
    def objective_name(self) -> str:
        return self.spec.get("objective", {}).get("name", "objective")

    @property
    def budget(self) -> int:
        return int(self.spec["search"]["budget"])

    @property
    def qd_offset(self) -> float:
        return float(self.spec.get("archive", {}).get("qd_offset", 0.0))

    def refresh(self) -> CampaignHandle:
        record = self.store.campaign(self.name)
        if record is not None:
            self.record = record
        return self

    def stats(self) -> Stats:
        return self.store.stats(self.record.id, self.layout.cells, self.qd_offset)

    def elites(self, top: int | None = None) -> list[dict[str, Any]]:
        return self.store.elites(self.record.id, top=top)

    def evaluations(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.store.evaluations(self.record.id, status=status)

    def proposer_counts(self) -> dict[str, dict[str, int]]:
        return self.store.proposer_counts(self.record.id)

    def export(self, path: str | Path) -> Path:
        from archive.export import export_campaign

        return export_campaign(self, Path(path))

    def map(self, path: str | Path) -> Path:
        from archive.figures import elite_map

        return elite_map(self, Path(path))

    def law(self, measure: str | None = None) -> Any:
        """The entropy-performance law R = −a·exp(H) + b over the done evaluations
        (:class:`archive.law.LawFit`; ``measure`` defaults to ``final_entropy``)."""
        from archive.law import campaign_law

        return campaign_law(self, measure)


class ArchiveHandle:
    """A storage, opened (migrations applied on first use)."""

    def __init__(self, storage: str) -> None:
        self.store = Store(storage)

    def campaigns(self) -> list[CampaignHandle]:
        return [CampaignHandle(self.store, r) for r in self.store.campaigns()]

    def campaign(self, name: str) -> CampaignHandle:
        record = self.store.campaign(name)
        if record is None:
            known = ", ".join(c.name for c in self.store.campaigns()) or "none"
            raise KeyError(f"no campaign named {name!r} (campaigns: {known})")
        return CampaignHandle(self.store, record)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ArchiveHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
