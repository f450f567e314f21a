"""Settings read from the environment, each checked where it is read.

A malformed value is a :class:`SettingError` naming the variable (one ``error:`` line on
the command line), read when a command needs it rather than when a module is imported, so
that it never surfaces as a traceback at import, and before anything is written.

A setting with a range (:func:`seconds_within`: ``ATLAS_LEASE_TTL``, 1 s to a day;
``ATLAS_DB_LOCK_TIMEOUT_S``, 1 ms to a day) refuses a number outside it the same way, naming
the range and why. Each is read on every storage: a run reads them all before it opens one
(``search.api.RunSettings``), and every engine reads the lock timeout, which only PostgreSQL
uses, so that a malformed one is refused on SQLite too rather than taken without a word.
"""

from __future__ import annotations

import math
import os

from entropy_atlas.errors import AtlasError

DEFAULT_STORAGE = "sqlite:///atlas.db"  # in the working directory; $ATLAS_STORAGE overrides
#: What to do where a read finds no storage file: the end of its one line (a folder where no
#: campaign has run yet, or a command run away from the storage its campaign wrote).
NO_STORAGE_HINT = ("run a campaign first (`atlas run SPEC` writes it), or name the storage that holds it "
                   "(--storage URL, or ATLAS_STORAGE)")


class SettingError(AtlasError, ValueError):
    """An environment variable of Entropy Atlas holds a value it cannot use."""


def default_storage() -> str:
    """The storage a command uses when none is given: ``$ATLAS_STORAGE``, else
    :data:`DEFAULT_STORAGE` (set but empty: unset, as the other ``ATLAS_*`` are). Read
    without SQLAlchemy, which ``atlas map``'s drawing process never imports."""
    return os.environ.get("ATLAS_STORAGE") or DEFAULT_STORAGE


def seconds(name: str, default: float, *, positive: bool = False) -> float:
    """``$name`` as a finite number of seconds, >= 0 (> 0 when ``positive``); ``default``
    when unset or empty."""
    return number(name, default, "seconds", positive=positive)


def number(name: str, default: float, unit: str, *, positive: bool = False) -> float:
    """``$name`` as a finite number (of ``unit``), >= 0 (> 0 when ``positive``); ``default``
    when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    bound = "> 0" if positive else ">= 0"
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(f"{name}={raw!r}: must be a number of {unit} {bound}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise SettingError(f"{name}={raw}: must be a finite number of {unit} {bound}")
    return value


def seconds_within(name: str, default: float, low: float, high: float, why: str) -> float:
    """``$name`` as :func:`seconds` (> 0) reads it, and from ``low`` to ``high`` seconds: one
    outside is a :class:`SettingError` naming the range and ``why`` it is that."""
    value = seconds(name, default, positive=True)
    if not low <= value <= high:
        raw = os.environ.get(name, "").strip()
        raise SettingError(f"{name}={raw}: must be from {low:g} to {high:g} seconds ({why})")
    return value


#: The range of ``ATLAS_LEASE_TTL``: renewed every third of it, a lease under a second cannot
#: be kept (one renewal held up a moment loses it); past a day, a crashed scheduler's campaign
#: stays locked to every other host that long (a killed one on the same host is known at once).
LEASE_TTL_RANGE_S = (1.0, 86_400.0)
#: The range of ``ATLAS_DB_LOCK_TIMEOUT_S``: PostgreSQL's ``lock_timeout`` is whole milliseconds,
#: and 0 ms turns it off (a value under 1 ms had meant waiting for ever).
LOCK_TIMEOUT_RANGE_S = (0.001, 86_400.0)


def lease_ttl_s() -> float:
    """How long a scheduler's lease on its campaign lasts unrenewed (``ATLAS_LEASE_TTL``, 30 s;
    :data:`LEASE_TTL_RANGE_S`)."""
    return seconds_within("ATLAS_LEASE_TTL", 30.0, *LEASE_TTL_RANGE_S,
                          "the lease is renewed every third of it, and outlives a crashed scheduler that long")


def db_retry_s() -> float:
    """How long a store retries while its database is unreachable (``ATLAS_DB_RETRY_S``, 120 s)."""
    return seconds("ATLAS_DB_RETRY_S", 120.0)


def db_lock_timeout_s() -> float:
    """How long one PostgreSQL statement waits for a lock before it fails and its
    transaction is retried as an unreachable database's is (``ATLAS_DB_LOCK_TIMEOUT_S``, 15 s;
    :data:`LOCK_TIMEOUT_RANGE_S`)."""
    return seconds_within("ATLAS_DB_LOCK_TIMEOUT_S", 15.0, *LOCK_TIMEOUT_RANGE_S,
                          "PostgreSQL's lock timeout, in whole milliseconds")


def max_proposer_state_mb() -> float:
    """The largest proposer checkpoint (``state()``) a run writes, in MB of 2**20 bytes: a
    larger one stops the run, since it is written every turn (``ATLAS_MAX_PROPOSER_STATE_MB``, 64)."""
    return number("ATLAS_MAX_PROPOSER_STATE_MB", 64.0, "megabytes", positive=True)


def ray_grace_s() -> float:
    """How long the GCS of the Ray cluster at ``--address`` may stay silent before the run
    stops with one line (``ATLAS_RAY_GRACE_S``, 30 s); one back within it costs nothing."""
    return seconds("ATLAS_RAY_GRACE_S", 30.0, positive=True)


def progress_every_s() -> float:
    """Off a terminal (a log file, a pipe, a cluster job's output), how often ``atlas run``
    and ``atlas resume`` write a plain progress line (``ATLAS_PROGRESS_EVERY_S``, 30 s)."""
    return seconds("ATLAS_PROGRESS_EVERY_S", 30.0, positive=True)
