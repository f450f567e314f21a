"""The archive: SQL models and migrations, the store, statistics, exports and figures.

    import archive
    camp = archive.open("sqlite:///atlas.db").campaign("quickstart")
    camp.stats(); camp.elites(top=10); camp.export("run.json"); camp.map("map.png")
"""

from archive.handle import ArchiveHandle, CampaignHandle
from archive.store import StorageError, Store


def open(storage: str) -> ArchiveHandle:
    """Open a storage URL (``sqlite:///atlas.db``, ``postgresql+psycopg://…``)."""
    return ArchiveHandle(storage)


__all__ = ["ArchiveHandle", "CampaignHandle", "StorageError", "Store", "open"]
