"""JSON columns read as text and decoded in one call.

Decoding a JSON column value by value (what SQLAlchemy's JSON type and psycopg's loader
do) costs a ``json.loads`` call each, and most of that is the call, not the parse: ten
thousand elites' measures, params and points spend about two thirds of a second on it.
:func:`loads_many` joins the texts into one JSON array and decodes that once, at the
parser's own speed: orjson's (a quarter of ``json.loads``' time on such an array), or, for
what orjson refuses and ``json`` reads (``NaN``, integers beyond 64 bits, in rows written
before the store's own encoder), ``json``'s. A text that is not JSON (never written by the
store) makes it decode value by value, ``None`` for the bad ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson


def loads_many(texts: Sequence[str | None]) -> list[Any]:
    """The JSON values of ``texts`` (``None`` for ``None`` and for a text that is not JSON)."""
    if not texts:
        return []
    document = "[" + ",".join("null" if t is None else t for t in texts) + "]"
    for loads in (orjson.loads, json.loads):
        try:
            values = loads(document)
        except (ValueError, TypeError):
            continue
        if isinstance(values, list) and len(values) == len(texts):
            return values
        break
    return [_loads(t) for t in texts]


def _loads(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except (ValueError, TypeError):
        return None
