"""The archive as a Python API: ``archive.open(storage).campaign(name)``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archive.layout import CellLayout
from archive.outputs import EXPORT_SUFFIXES, FIGURE_SUFFIXES, check_output
from archive.records import CampaignRecord, CampaignSettings, MapData, Stats, scheduler_is_live
from archive.store import ELITE_FIELDS, Store


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
    def settings(self) -> CampaignSettings:
        return self.record.settings

    @property
    def maximize(self) -> bool:
        return self.settings.maximize

    @property
    def objective_name(self) -> str:
        return self.settings.objective

    @property
    def budget(self) -> int:
        return self.settings.budget

    @property
    def qd_offset(self) -> float:
        return self.settings.qd_offset

    def refresh(self) -> CampaignHandle:
        record = self.store.campaign(self.name)
        if record is not None:
            self.record = record
        return self

    def stats(self, by_proposer: dict[str, dict[str, int]] | None = None) -> Stats:
        """:meth:`Store.stats` (``by_proposer``: :meth:`proposer_counts`, when read already)."""
        return self.store.stats(self.record.id, self.layout.cells, self.qd_offset, by_proposer)

    def elites(self, top: int | None = None, fields: Sequence[str] = ELITE_FIELDS) -> list[dict[str, Any]]:
        """:meth:`Store.elites`: best first, with the evaluation's ``fields`` (all by default)."""
        return self.store.elites(self.record.id, top=top, fields=fields)

    def evaluations(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.store.evaluations(self.record.id, status=status)

    def proposer_counts(self) -> dict[str, dict[str, int]]:
        return self.store.proposer_counts(self.record.id)

    def export(self, path: str | Path) -> Path:
        """All evaluations and elites to ``.json``, ``.csv`` or ``.parquet`` (:mod:`archive.export`)."""
        from archive.export import EVALUATION_FIELDS, JSON_FIELDS, ExportData, export_campaign, gc_paused

        path = Path(path)
        if path.is_dir() or path.suffix.lower() in EXPORT_SUFFIXES:  # another suffix: export_campaign names the formats
            check_output(path, EXPORT_SUFFIXES, self.store.url)
        with gc_paused(), self.store.snapshot():  # the rows and the elites of one moment
            data = ExportData(self.name, self.spec, self.refresh().record.live_status(),
                              self.store.evaluation_texts(self.record.id, EVALUATION_FIELDS, JSON_FIELDS),
                              self.store.elite_cells(self.record.id))
            return export_campaign(data, path)

    def map_data(self) -> MapData:
        """The elite map's data (:class:`archive.records.MapData`), read without drawing: the
        elites best first, measures alone, and the title's figures (cells filled, QD-score,
        best) from :meth:`Store.stats` over the elites table alone (no evaluation counted;
        its exactly rounded fitness sum: a plain ``sum`` here had said 0 where 1e308 and
        -1e308 cancel), both read at one moment."""
        with self.store.snapshot():
            elites = self.elites(fields=("measures",))
            stats = self.store.stats(self.record.id, self.layout.cells, self.qd_offset, by_proposer={})
        return MapData(self.name, self.layout, self.settings, elites, stats)

    def map(self, path: str | Path) -> Path:
        """The elite map as a figure (:func:`archive.figures.draw_map`); ``path`` checked as
        the command line checks it (:func:`archive.outputs.check_output`)."""
        from archive.figures import draw_map

        check_output(Path(path), FIGURE_SUFFIXES, self.store.url)
        return draw_map(Path(path), self.map_data())

    def front(self, path: str | Path) -> Path:
        """Objective against each measure with its Pareto front (:func:`archive.figures.pareto_front`)."""
        from archive.figures import pareto_front

        check_output(Path(path), FIGURE_SUFFIXES, self.store.url)
        return pareto_front(Path(path), self.name, self.settings, self.evaluations(status="done"))

    def law(self, measure: str | None = None, mode: str | None = None) -> Any:
        """The entropy-performance law R = −a·exp(H) + b over the done evaluations, an
        :class:`archive.law.LawReading` in ``mode``: ``per-run`` (each run's fit over its
        checkpoints, training entropy vs validation accuracy: the paper's use), ``pooled``
        (one fit over all runs' checkpoints) or ``cross-configuration`` (one fit over the
        final objective vs ``measure``, default ``final_entropy``; its ``.fit`` is the
        :class:`~archive.law.LawFit`). ``None``: ``per-run`` when trajectories exist and
        no ``measure`` is named, else ``cross-configuration``."""
        from archive.law import campaign_law

        return campaign_law(self.name, self.settings, self.evaluations(status="done"), measure, mode)

    def failure_summary(self, limit: int = 5) -> list[tuple[str, int]]:
        """The ``limit`` most common failure messages (an error's first line) and their
        counts, most common first."""
        return self.store.failure_summary(self.record.id, limit=limit)

    def failed_evaluations(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Failed evaluations, the latest first, at most ``limit``."""
        return self.store.failed_evaluations(self.record.id, limit=limit)

    def lease_is_live(self, now: float | None = None) -> bool:
        """Whether a scheduler holds the campaign's lease, it has not expired, and its holder
        is not a process of this host that is gone (:func:`~archive.records.scheduler_is_live`)."""
        return scheduler_is_live(self.record.lease_holder, self.record.lease_expires, now)

    def delete(self, force: bool = False) -> dict[str, int]:
        """Delete the campaign and all its rows (refused while its lease is live, unless
        ``force``); the counts deleted, by table. Needs a storage opened for writing."""
        return self.store.delete_campaign(self.record.id, force=force)


class ArchiveHandle:
    """A storage, opened read-only by default (nothing created, nothing migrated); with
    ``readonly=False`` it is created and migrated as a campaign run would."""

    def __init__(self, storage: str, readonly: bool = True) -> None:
        self.store = Store(storage, readonly=readonly)

    def campaigns(self) -> list[CampaignHandle]:
        return [CampaignHandle(self.store, r) for r in self.store.campaigns()]

    def campaign(self, name: str) -> CampaignHandle:
        return CampaignHandle(self.store, self.store.require_campaign(name))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ArchiveHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
