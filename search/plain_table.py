"""Long tables as plain aligned text: what ``atlas elites`` prints for thousands of rows.

rich lays a table out cell by cell (measuring, wrapping, styling), about half a
millisecond a row: ten seconds for the elites of a 100 × 100 map. A table of more rows
than :data:`PLAIN_ROWS` is written instead as the same columns in the same look (the title
centred over the table, the header, a rule, one line a row, two spaces between columns,
numbers right-aligned), each row on one line, nothing wrapped or cut: linear time, a few
milliseconds a thousand rows.
"""

from __future__ import annotations

from collections.abc import Sequence

PLAIN_ROWS = 500  # above this many rows, tables are plain text


def plain_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                right: Sequence[bool]) -> str:
    """The table as text lines (ending with a newline): ``headers`` over ``rows`` of cell
    texts, column ``j`` right-aligned where ``right[j]``; trailing spaces trimmed."""
    widths = _widths(headers, rows)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    width = sum(widths) + 2 * (len(widths) - 1)
    out = [title.center(width).rstrip(), line(headers), "─" * width]
    out += [line(row) for row in rows]
    return "\n".join(out) + "\n"


def plain_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The width of :func:`plain_table`'s table of ``headers`` and ``rows`` (its rule line),
    without laying it out."""
    widths = _widths(headers, rows)
    return sum(widths) + 2 * (len(widths) - 1)


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width: its longest cell or header."""
    widths = [len(h) for h in headers]
    for row in rows:
        for j, cell in enumerate(row):
            if len(cell) > widths[j]:
                widths[j] = len(cell)
    return widths
