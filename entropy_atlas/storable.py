"""What every storage keeps as it is: the rule shared by what the file may hold
(:mod:`search.spec`) and what an evaluator or a model returns (:mod:`workers.runner`,
:mod:`search.proposers.llm`).

- integers within 64 bits (SQLite's INTEGER, the JSON encoder's ints): :data:`INT64`;
- text without a NUL (PostgreSQL's text and JSON refuse it) or a lone surrogate (no UTF-8
  encoder takes one): :func:`text_problem` names either, :func:`storable_text` writes
  either as a backslash escape.
"""

from __future__ import annotations

INT64 = (-(2**63), 2**63 - 1)


def text_problem(text: str) -> str | None:
    """What in ``text`` no storage keeps, or None: ``a NUL character (\\0)`` or ``a lone
    surrogate (\\ud800-\\udfff)``."""
    if "\x00" in text:
        return "a NUL character (\\0)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (\\ud800-\\udfff)"
    return None


def storable_text(text: str) -> str:
    """``text`` with a NUL or a lone surrogate (:func:`text_problem`) written as a backslash
    escape (``\\x00``, ``\\udcff``); text with neither is returned as it is."""
    if text_problem(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
