"""The archive's errors, each an :class:`~entropy_atlas.errors.AtlasError`."""

from __future__ import annotations

from entropy_atlas.errors import AtlasError


class StorageError(AtlasError, RuntimeError):
    """The storage cannot be opened, reached or written."""


class StorageURLError(StorageError):
    """The storage URL itself is wrong: not a URL, a backend or driver this install does not
    have, options or an in-memory database a storage cannot take, or a SQLite path that
    names no file to read or no folder to create one in. The command line says where the URL
    came from when it was ``$ATLAS_STORAGE`` (no ``--storage`` given)."""


class SchemaBehind(StorageError):
    """Opened read-only, the archive is at an older schema revision: a write command brings
    it up (``atlas run``, ``atlas resume``, ``atlas migrate``); read commands never write."""


class NoArchive(StorageError):
    """Opened read-only, the database holds no archive: it is empty (a write command creates
    the schema there), or holds another application's tables (``foreign``: the error a
    write command refuses them with)."""

    def __init__(self, message: str, foreign: StorageError | None = None) -> None:
        super().__init__(message)
        self.foreign = foreign


class CampaignNotFound(AtlasError, KeyError, LookupError):
    """No campaign of that name in the storage."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "campaign not found"


class LeaseConflict(AtlasError, RuntimeError):
    """A write of a scheduler that no longer holds the campaign's lease (another took it)."""


class CampaignDeleted(LeaseConflict):
    """A write of a scheduler whose campaign was deleted under it (``atlas delete --force``)."""


class UnknownMeasure(AtlasError, ValueError):
    """A measure named by a read (``atlas front --minimize M``) that the campaign does not have."""


class CampaignNameTaken(AtlasError, RuntimeError):
    """A new campaign's name, written by another run between this one's check and its write."""


class StorageFull(StorageError):
    """The storage has no room left: the disk holding a SQLite file (SQLite's ``database or
    disk is full``), or the PostgreSQL server's (SQLSTATE 53100, ``disk_full``). No retry
    mends it, so it is raised at once: ``problem`` says what is full, ``where`` where to free
    space, ``then`` what to do once there is some (a run's is ``atlas resume NAME``)."""

    def __init__(self, problem: str, where: str = "there", then: str = "run again") -> None:
        super().__init__(problem, where, then)  # args as given: the error pickles (a forked reader's)
        self.problem, self.where, self.then = problem, where, then

    def __str__(self) -> str:
        return f"{self.problem}: free space {self.where}, then {self.then}"
