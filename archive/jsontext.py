"""JSON columns read as text and decoded in one call.

Decoding a JSON column value by value (what SQLAlchemy's JSON type and psycopg's loader
do) costs a ``json.loads`` call each, and most of that is the call, not the parse: ten
thousand elites' measures, params and points spend about two thirds of a second on it.
:func:`loads_many` joins the texts into one JSON array and decodes that once, at the
parser's own speed; a text that is not JSON (never written by the store) makes it decode
value by value, ``None`` for the bad ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def loads_many(texts: Sequence[str | None]) -> list[Any]:
    """The JSON values of ``texts`` (``None`` for ``None`` and for a text that is not JSON)."""
    if not texts:
        return []
    try:
        values = json.loads("[" + ",".join("null" if t is None else t for t in texts) + "]")
        if len(values) == len(texts):
            return values
    except (ValueError, TypeError):
        pass
    return [_loads(t) for t in texts]


def _loads(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except (ValueError, TypeError):
        return None
