"""Text that came from outside (an evaluator's error, a model's reply, a parameter's
value) made safe to print on a terminal.

An error message holding ``ESC [31m`` coloured the rest of ``atlas failures``, and
``ESC ] 0; … BEL`` set the terminal's title: whatever an evaluator raised reached the
terminal as control sequences. :func:`printable` writes every control character (C0 but
the tab, DEL, C1), the line and paragraph separators (U+2028, U+2029, which split a
table's row) and the bidirectional overrides (U+202A–U+202E, U+2066–U+2069, which reorder
what is shown) as Python's escapes, and a tab as a space; every other character stays.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with what a terminal would act on written as escapes (see the module)."""
    return _UNPRINTABLE.sub(_escaped, text).replace("\t", " ")
