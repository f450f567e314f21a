"""Long tables as plain aligned text: what ``atlas elites`` prints for thousands of rows,
and the arithmetic of a table's width that both it and rich's tables are laid out by.

rich lays a table out cell by cell (measuring, wrapping, styling), about half a
millisecond a row: ten seconds for the elites of a 100 × 100 map. A table of more rows
than :data:`PLAIN_ROWS` is written instead as the same columns in the same look (the title
centred over the table, the header, a rule, one line a row, two spaces between columns,
numbers right-aligned), each row on one line, nothing wrapped or cut: linear time, a few
milliseconds a thousand rows.

Headers are never cut, but may **fold**: with ``fold`` = ``k`` a header longer than its
column's cells and than ``k`` characters is written on several lines, each at most as wide
as the column (its widest cell, or ``k``, or the header's longest word:
:func:`longest_word`), broken after a ``_`` or a ``.`` or at a space and never inside a
unit such as ``(nats)`` (:func:`folded`; a table's header is cut inside a word only where
the word is longer than :data:`WHOLE_WORD`), so
a column of short numbers under a long name
(``mean_token_entropy_over_all_generated_continuations_nats``) is as narrow as ``k``.
:func:`fold_to_fit` finds the widest fold at which a table fits a console, never
narrower than :data:`MIN_FOLD`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PLAIN_ROWS = 500  # above this many rows, tables are plain text
MIN_FOLD = 8  # headers fold onto lines of at least this many characters (``cell``, ``eval`` never fold)
GAP = 2  # characters between two columns
WHOLE_WORD = 24  # a header's word up to this long is never cut when it folds (a longer one is, to fit a console)


def plain_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[bool], fold: int | None = None) -> str:
    """The table as text lines (ending with a newline): ``headers`` (folded at ``fold``
    characters, see the module) over ``rows`` of cell texts, column ``j`` right-aligned where
    ``right[j]``; trailing spaces trimmed."""
    widths = column_widths(headers, cell_widths(rows, len(headers)), fold)

    def line(cells: Sequence[str]) -> str:
        return (" " * GAP).join(c.rjust(w) if r else c.ljust(w)
                                for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    width = table_width(widths)
    out = [title.center(width).rstrip(), *map(line, header_lines(headers, widths)), "─" * width]
    out += [line(row) for row in rows]
    return "\n".join(out) + "\n"


def cell_widths(rows: Sequence[Sequence[str]], columns: int) -> list[int]:
    """Each of ``columns`` columns' widest cell in ``rows``."""
    widths = [0] * columns
    for row in rows:
        for j, cell in enumerate(row):
            if len(cell) > widths[j]:
                widths[j] = len(cell)
    return widths


def column_widths(headers: Sequence[str], cells: Sequence[int], fold: int | None = None) -> list[int]:
    """Each column's width: its widest cell (``cells``) or its header, where wider; with
    ``fold``, a header counts as at most ``fold`` characters (the rest goes on more lines)."""
    return [max(c, len(h) if fold is None else min(len(h), max(fold, min(longest_word(h), WHOLE_WORD))))
            for h, c in zip(headers, cells, strict=True)]


def longest_word(header: str) -> int:
    """The length of ``header``'s longest piece that :func:`folded` keeps whole: a word
    between spaces, ``_`` and ``.`` (``measures.`` ``width``), a unit's words. A column is
    never narrower than it (up to :data:`WHOLE_WORD`: a 300-character name is still cut to
    fit), so a header folds at those places or not at all, never inside a word
    (``measures.wid`` over ``th`` had been a header)."""
    pieces = [sub for chunk in _outside_spaces(header) for part in _after_underscores(chunk)
              for sub in (part.split(" ") if part.startswith("(") else [part])]
    return max(map(len, pieces), default=0)


def table_width(widths: Sequence[int]) -> int:
    """The width of a table of columns ``widths`` wide, :data:`GAP` between two."""
    return sum(widths) + GAP * (len(widths) - 1)


def fold_to_fit(headers: Sequence[str], cells: Sequence[int], width: int) -> int | None:
    """The widest fold (see the module) at which columns of cells ``cells`` wide under
    ``headers`` make a table at most ``width`` wide: ``None`` where no header needs folding,
    :data:`MIN_FOLD` where even that is too wide (the caller checks with :func:`table_width`)."""
    if table_width(column_widths(headers, cells)) <= width:
        return None
    for fold in range(max(map(len, headers)) - 1, MIN_FOLD, -1):
        if table_width(column_widths(headers, cells, fold)) <= width:
            return fold
    return MIN_FOLD


def header_lines(headers: Sequence[str], widths: Sequence[int]) -> list[list[str]]:
    """The header's lines: each header cut into pieces of its column's width, bottom-aligned
    on the rule as rich aligns a header (a shorter header's upper lines empty)."""
    pieces = [folded(h, w) for h, w in zip(headers, widths, strict=True)]
    depth = max(map(len, pieces), default=1)
    return [[p[i - depth + len(p)] if i >= depth - len(p) else "" for p in pieces] for i in range(depth)]


def folded(text: str, width: int) -> list[str]:
    """``text`` as lines of at most ``width`` characters, nothing lost: broken after a ``_``
    (kept at the line's end) or at a space (dropped there), never inside a parenthesised
    unit such as ``(nats)`` or ``(nat / s)``; only a word longer than ``width`` (a unit too,
    at its spaces first) is cut, into pieces ``width`` wide (:func:`header_words`)."""
    width = max(width, 1)
    lines: list[str] = []
    line = ""
    for word, spaced in header_words(text, width):
        joined = f"{line} {word}" if spaced and line else line + word
        if len(joined) <= width:
            line = joined
            continue
        if line:
            lines.append(line)
        line = word
    return [*lines, line] if line or not lines else lines


def header_words(text: str, width: int) -> list[tuple[str, bool]]:
    """``text``'s words, each with whether a space came before it: the pieces between spaces
    outside parentheses, each split after its ``_``; a parenthesised group is one word. A word
    longer than ``width`` is split at its spaces (a long unit's), then cut ``width`` wide."""
    out: list[tuple[str, bool]] = []
    for i, chunk in enumerate(_outside_spaces(text)):
        parts = [chunk] if chunk.startswith("(") else [p for p in _after_underscores(chunk) if p]
        for j, part in enumerate(parts):
            spaced = i > 0 and j == 0
            if len(part) <= width:
                out.append((part, spaced))
                continue
            for k, sub in enumerate(part.split(" ")):
                pieces = [sub[m:m + width] for m in range(0, len(sub), width)] or [""]
                out += [(piece, (spaced or k > 0) and m == 0) for m, piece in enumerate(pieces)]
    return out or [("", False)]


def _outside_spaces(text: str) -> list[str]:
    """``text`` split at its spaces outside parentheses (a unit's spaces stay in it); a run
    of spaces splits as one."""
    chunks, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")" and depth > 0)
        if ch == " " and depth == 0:
            chunks.append(current)
            current = ""
        else:
            current += ch
    return [c for c in [*chunks, current] if c] if text.strip() else [text]


def _after_underscores(word: str) -> list[str]:
    """``word`` split after each ``_`` and ``.`` (``post_`` ``activation_`` ``entropy``,
    ``measures.`` ``width``); a parenthesised unit is kept whole."""
    if word.startswith("("):
        return [word]
    return [p for p in re.split(r"(?<=[_.])", word) if p] or [word]
