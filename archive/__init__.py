"""The archive: SQL models and migrations, the store, statistics, exports and figures.

    import archive
    camp = archive.open("sqlite:///atlas.db").campaign("quickstart")
    camp.stats(); camp.elites(top=10); camp.export("run.json"); camp.map("map.png")
"""

from archive.errors import CampaignNotFound, LeaseConflict, StorageError
from archive.handle import ArchiveHandle, CampaignHandle
from archive.store import Store


def open(storage: str, readonly: bool = True) -> ArchiveHandle:
    """Open a storage URL (``sqlite:///atlas.db``, ``postgresql+psycopg://…``) to read it;
    ``readonly=False`` creates and migrates it as needed."""
    return ArchiveHandle(storage, readonly=readonly)


__all__ = ["ArchiveHandle", "CampaignHandle", "CampaignNotFound", "LeaseConflict", "StorageError", "Store", "open"]
