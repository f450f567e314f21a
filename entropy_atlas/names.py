"""Which known name a user meant: the one rule every "did you mean" hint uses.

Names are compared folded (:func:`folded`: lowercased, ``-`` as ``_``), by difflib's ratio
``2·M / T`` (``M`` matching characters, ``T`` the two lengths together); a known name is
offered where that ratio is at least the cutoff, :data:`MISSPELLING_CUTOFF` unless the caller
says otherwise (a measure's hint, a storage backend's, accept looser matches).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

#: How alike (difflib's ratio) a name must be to a known one to be read as a misspelling of it.
MISSPELLING_CUTOFF = 0.8


def folded(name: str) -> str:
    """``name`` as names are compared: lowercased, ``-`` as ``_`` (``Top-P`` is ``top_p``)."""
    return name.casefold().replace("-", "_")


def close_names(name: str, known: Collection[str], n: int = 1, cutoff: float = MISSPELLING_CUTOFF) -> list[str]:
    """Up to ``n`` names of ``known`` at least ``cutoff`` alike to ``name`` (both
    :func:`folded`), closest first, each as ``known`` writes it: ``Top-P`` is offered
    ``top_p``."""
    by_fold: dict[str, str] = {}
    for known_name in known:
        by_fold.setdefault(folded(known_name), known_name)
    return [by_fold[f] for f in difflib.get_close_matches(folded(name), sorted(by_fold), n=n, cutoff=cutoff)]


def closest_name(name: str, known: Collection[str], cutoff: float = MISSPELLING_CUTOFF) -> str | None:
    """The name of ``known`` closest to ``name`` (:func:`close_names`), or None where none is."""
    close = close_names(name, known, 1, cutoff)
    return close[0] if close else None


def did_you_mean(value: object, known: Collection[str]) -> str:
    """``; did you mean 'NAME'?`` where ``value`` is a string that a name of ``known`` other
    than itself is close to (:func:`closest_name`); empty otherwise."""
    meant = closest_name(value, known) if isinstance(value, str) else None
    return f"; did you mean {meant!r}?" if meant is not None and meant != value else ""
