"""How a QD-score is shown, in one place for every room that shows one: the command
line's lines and tables (:mod:`search.cli_tables`) and the elite map's title
(:func:`archive.figures.map_title`), which had shown ``1.858e+04`` where ``atlas status``
showed ``18579.6`` of the same score."""

from __future__ import annotations

QD_DIGITS = 6  # significant digits of a QD-score, wherever it is shown


def qd_text(value: float | None) -> str:
    """A QD-score as every line of the command line and every elite map shows it:
    :data:`QD_DIGITS` significant digits, ``18579.6`` (``1.23457e+07`` past them), ``—``
    for none."""
    return "—" if value is None else f"{value:.{QD_DIGITS}g}"
