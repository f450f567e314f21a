"""What every storage keeps as it is: the rule shared by what the file may hold
(:mod:`search.spec`) and what an evaluator or a model returns (:mod:`workers.runner`,
:mod:`search.proposers.llm`).

- integers within 64 bits (SQLite's INTEGER, the JSON encoder's ints): :data:`INT64`;
- text without a NUL (PostgreSQL's text and JSON refuse it) or a lone surrogate (no UTF-8
  encoder takes one): :func:`storable_text` writes either as a backslash escape.
"""

from __future__ import annotations

INT64 = (-(2**63), 2**63 - 1)


def storable_text(text: str) -> str:
    """``text`` with a NUL or a lone surrogate written as a backslash escape (``\\x00``,
    ``\\udcff``); text with neither is returned as it is."""
    if "\x00" not in text:
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            pass
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
