"""The archive: SQL models and migrations, the store, statistics, exports and figures.

    import archive
    camp = archive.open("sqlite:///atlas.db").campaign("quickstart")
    camp.stats(); camp.elites(top=10); camp.export("run.json"); camp.map("map.png")
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from archive.errors import CampaignNotFound, LeaseConflict, StorageError

if TYPE_CHECKING:
    from archive.handle import ArchiveHandle, CampaignHandle
    from archive.store import Store


def open(storage: str | os.PathLike[str], readonly: bool = True) -> ArchiveHandle:
    """Open a storage URL (``sqlite:///atlas.db``, ``postgresql+psycopg://…``), or a SQLite
    file's path (a :class:`pathlib.Path`), to read it; ``readonly=False`` creates and migrates
    it as needed, and is what :meth:`CampaignHandle.delete` needs."""
    from archive.handle import ArchiveHandle

    return ArchiveHandle(storage, readonly=readonly)


def __getattr__(name: str) -> Any:
    """The handles and the store, imported on first use: they bring SQLAlchemy, which the
    archive's plain modules (records, layout, stats, figures) do not need."""
    if name in ("ArchiveHandle", "CampaignHandle"):
        from archive import handle

        return getattr(handle, name)
    if name == "Store":
        from archive.store import Store

        return Store
    raise AttributeError(f"module 'archive' has no attribute {name!r}")


__all__ = ["ArchiveHandle", "CampaignHandle", "CampaignNotFound", "LeaseConflict", "StorageError", "Store", "open"]
