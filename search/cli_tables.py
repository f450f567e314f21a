"""The tables the read commands print: ``atlas status`` (the campaigns, one campaign, its
proposers and most common failures), ``atlas elites``, ``atlas failures`` and ``atlas law
--by``'s groups (with the cells and caption every law table shares).

Every text from outside (a parameter's value, an error) goes through
:func:`search.consoles.escape`; a table of more than :data:`~search.plain_table.PLAIN_ROWS`
rows is plain aligned text (:func:`search.plain_table.plain_table`). A table wider than
the console is laid out again narrower (fewer parameter entries, folded headers) before
rich would wrap its cells.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rich.cells import cell_len
from rich.markup import escape as markup_escape
from rich.table import Table

from entropy_atlas.scores import qd_text  # the run's lines, `atlas status`, the elite map's title
from search.consoles import console, escape, hinted
from search.plain_table import PLAIN_ROWS, plain_table
from search.printable import printable


def cell_text(value: Any, exact: bool = False, quoted: bool = False) -> str:
    """A value as a table shows it (floats to 4 significant digits, vectors to their first
    four entries) or, ``exact``, as a CSV keeps it: a float as its ``repr`` (round-trips),
    a list or mapping as JSON, with every entry. ``quoted`` (a column of values of several
    kinds, :func:`_quoted_params`): a string, a boolean and a mapping as JSON writes them
    (``"1"``, ``false``), at the top and in a vector alike, so that none reads as another."""
    if value is None:
        return ""
    if (exact or quoted) and isinstance(value, bool):  # as atlas export's CSV and JSON write them
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if exact else f"{value:.4g}"
    if (exact and isinstance(value, list | dict)) or (quoted and isinstance(value, str | dict)):
        return json.dumps(value, ensure_ascii=exact)
    if isinstance(value, list):
        return "[" + ", ".join(_entry_text(v, quoted) for v in value[:4]) + (", …]" if len(value) > 4 else "]")
    return str(value)


def _entry_text(value: Any, quoted: bool) -> str:
    """An entry of a vector as :func:`cell_text` shows it: a float to 3 significant digits;
    anything else as ``str`` writes it or, ``quoted``, as JSON does (``"1"``, ``false``, ``null``)."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if quoted:
        return "null" if value is None else cell_text(value, quoted=True)
    return str(value)


def param_columns(space: Sequence[str], rows: Iterable[dict[str, Any]]) -> list[str]:
    """The parameters a table or CSV of ``rows`` (each with its ``params``) has a column or an
    entry for, in that order: every parameter of the campaign's ``space`` in the space's
    order (:attr:`~archive.records.CampaignSettings.params`, as ``atlas export`` and the JSON
    write them), whichever rows are shown (a conditional parameter none of them has too),
    then any other name the rows hold, in order of first appearance. The columns had been the
    names the shown rows held, sorted: ``atlas elites --top 3 --format csv`` dropped a
    conditional parameter that ``--top 50`` kept."""
    return list(dict.fromkeys([*space, *(k for r in rows for k in r["params"])]))


def _in_order(params: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """``params`` with the names of ``names`` first, in that order, then the others as they were."""
    return {**{p: params[p] for p in names if p in params}, **params}


def _quoted_params(rows: list[dict[str, Any]], param_names: list[str]) -> set[str]:
    """The parameters whose column in the elite table quotes its strings (:func:`cell_text`):
    those whose values, nulls aside, are of more than one kind (:func:`archive.export.json_column`'s
    kinds: a string, a number, a boolean, a list or mapping), such as the choices ``"1"``,
    ``1``, ``"false"`` and ``false``, which read alike unquoted. A column of one kind (all
    strings, all numbers, all vectors) is shown as it always was."""
    from archive.export import json_column

    quoted: set[str] = set()
    for p in param_names:
        values = [r["params"].get(p) for r in rows]
        if json_column(values) and any(v is not None and not isinstance(v, list | dict) for v in values):
            quoted.add(p)  # more than one kind: nested-only columns are json_column's too
    return quoted


def _numeric_params(rows: list[dict[str, Any]], param_names: list[str]) -> set[str]:
    """The parameters whose column in the elite table is right-aligned as the numbers before
    it are: those whose values, the rows without one aside, are all numbers (not booleans);
    a column of strings, vectors or several kinds stays left-aligned. Every parameter's column
    had been left-aligned, ``0.001046`` under ``0.000628`` read as text."""
    numeric: set[str] = set()
    for p in param_names:
        values = [r["params"][p] for r in rows if r["params"].get(p) is not None]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            numeric.add(p)
    return numeric


def qd_offset_warning(fitness: Sequence[float], settings: Any) -> str | None:
    """The warning where elites lie below the QD-score's zero, ``archive.qd_offset``: the
    score counts each elite's fitness − qd_offset (:func:`archive.stats.qd_score`; fitness is
    the objective maximised, minus it minimised), so each such elite lowers it, and a map
    with more cells can score less than one with fewer (all objectives negative at the
    default offset 0: a search that filled 44 cells scored −75, one that filled 38 −63).
    ``fitness``: the elites'; ``settings``: the campaign's
    :class:`~archive.records.CampaignSettings`. None where no elite lies below it."""
    offset = float(settings.qd_offset)
    below = [f for f in fitness if f < offset]
    if not below:
        return None
    lowest, name = min(below), settings.objective
    counted, least = (name, f"the lowest {name}") if settings.maximize else (
        f"−{name} ({name} is minimised)", f"minus the highest {name}")
    return (f"QD-score counts each elite's {counted} − archive.qd_offset ({offset:g}); {len(below)} of "
            f"{len(fitness)} elites lie below it, so each such cell lowers the score and a map with more cells can "
            f"score less: set archive.qd_offset below {least} ({lowest:.6g}) to rank maps by it")


# -- helpers of status, elites, failures and delete: tables that stay readable at 80 columns
NUMBER = {"justify": "right", "no_wrap": True}


def _table(title: str, **options: Any) -> Table:
    """A table with a rule under its header, no borders and two spaces between columns
    (where a boxed table spends three or four characters a column); ``title`` is plain
    text, never markup."""
    from rich import box

    return Table(title=escape(title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                 collapse_padding=True, **options)


def law_table(title: str) -> Table:
    """A table of ``atlas law``'s default or per-run reading: borderless, as every other
    command's (:func:`_table`), where it had drawn heavy boxes; ``title`` plain text."""
    return _table(title)


def _unfinished_text(r: dict[str, Any]) -> str:
    """``3 in flight``, or where no run holds the campaign and some rows wait,
    ``4 pending (`atlas resume NAME` runs them)``."""
    if r["pending"]:
        return hinted(f"{r['pending']} pending (`atlas resume {r['name']}` runs them)")
    return f"{r['in_flight']} in flight"


def _fits(table: Table) -> bool:
    """Whether ``table`` at its natural width (nothing wrapped or cut) fits the console."""
    return console.measure(table, options=console.options.update_width(10**6)).maximum <= console.width


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


# (header, the cell of a status row, which columns go first when the console is narrow: 0 never)
CAMPAIGN_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str], int], ...] = (
    ("name", lambda r: r["name"], 0),
    ("algorithm", lambda r: r["algorithm"], 3),
    ("status", lambda r: r["status"], 0),
    ("evals", lambda r: f"{r['finished']}/{r['budget']}", 0),
    ("failed", lambda r: str(r["failed"]), 0),
    ("in flight", lambda r: f"{r['pending']} pending" if r["pending"] else str(r["in_flight"]), 1),
    ("coverage", lambda r: f"{r['coverage']:.1%}", 0),
    ("QD-score", lambda r: qd_text(r["qd_score"]), 2),
    ("best", lambda r: _number(r["best"]), 0),
)


#: the rank of "in flight" where no campaign has a row in flight or pending: it goes first
IDLE_RANK = 4


def _ranked_columns(rows: list[dict[str, Any]]) -> list[tuple[str, Callable[[dict[str, Any]], str], int]]:
    """:data:`CAMPAIGN_COLUMNS` for ``rows``: "in flight" ranked :data:`IDLE_RANK` (the
    first to go) where every row's is 0 with nothing pending, since such a column says
    nothing; at 80 columns it had outlasted the QD-score, the figure that compares campaigns."""
    idle = not any(r["pending"] or r["in_flight"] for r in rows)
    return [(header, cell, IDLE_RANK if idle and header == "in flight" else rank)
            for header, cell, rank in CAMPAIGN_COLUMNS]


def campaigns_table(rows: list[dict[str, Any]]) -> Table:
    """``atlas status``: one line per campaign. Names are never cut: while the table is
    wider than the console, the least needed columns go (in flight where every row's is 0,
    then algorithm, then QD-score, then in flight, which says what ``atlas resume`` would
    run: ``400 pending``; ``atlas status NAME`` shows them all); a name folds only when even
    the narrowest table cannot hold it. The columns left out are named under the table."""
    columns = _ranked_columns(rows)
    for drop in range(max(rank for _, _, rank in columns) + 1, 0, -1):
        table = _campaigns_grid(rows, [c for c in columns if c[2] < drop], fold_names=False)
        if _fits(table):
            return _name_left_out(table)
    return _name_left_out(_campaigns_grid(rows, [c for c in columns if c[2] == 0], fold_names=True))


def _name_left_out(table: Table) -> Table:
    """``table`` with a caption naming the campaign columns it leaves out, if any."""
    shown = {str(c.header) for c in table.columns}
    left_out = [header for header, _, _ in CAMPAIGN_COLUMNS if header not in shown]
    if left_out:
        table.caption = escape(hinted(f"not shown at {console.width} columns: {', '.join(left_out)} "
                                      f"(see `atlas status NAME`)"))
        table.caption_justify = "left"
    return table


def _campaigns_grid(rows: list[dict[str, Any]], columns: list[tuple[str, Callable[[dict[str, Any]], str], int]],
                    fold_names: bool) -> Table:
    table = _table("campaigns")
    for header, _, _ in columns:
        if header == "name":
            table.add_column(header, no_wrap=not fold_names, overflow="fold")
        elif header in ("algorithm", "status"):
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, **NUMBER)
    for r in rows:
        table.add_row(*[escape(cell(r)) for _, cell, _ in columns])
    return table


def campaign_table(r: dict[str, Any]) -> Table:
    """``atlas status NAME``: one field a line, so any name and number fits."""
    table = _table(f"campaign {r['name']}", show_header=False)
    table.add_column("field", no_wrap=True, style="bold")
    table.add_column("value", overflow="fold")
    best = _number(r["best"], 6)
    if r["best_evaluation_id"] is not None:
        best += f" (evaluation {r['best_evaluation_id']})"
    for field, value in (
        ("name", r["name"]), ("algorithm", r["algorithm"]), ("status", r["status"]),
        ("evaluations", f"{r['finished']} of {r['budget']} finished: {r['done']} done, {r['failed']} failed; "
                        f"{_unfinished_text(r)}"),
        ("cells", f"{r['elites']} of {r['cells']} filled ({r['coverage']:.1%})"),
        ("QD-score", qd_text(r["qd_score"])), ("best", best),
    ):
        table.add_row(field, escape(value))
    return table


def proposers_table(r: dict[str, Any]) -> Table:
    """Each proposer's counts and exploration entropy; on a narrow console the entropy's
    text (``0.84 ± 0.02 (latest 100 of 12,500 runs of 20)``) wraps, names and counts stay whole.
    Its rows written and not finished are ``in flight`` while a run holds the campaign, else
    ``pending`` (:func:`_unfinished_fields`)."""
    table = _table("evaluations by proposer")
    table.add_column("proposer", no_wrap=True, min_width=8)
    for col in ("done", "failed", "in flight" if r["status"] == "running" else "pending"):
        table.add_column(col, **NUMBER)
    table.add_column("exploration entropy", justify="right", overflow="fold", ratio=1)
    from archive.stats import Exploration

    entropy = r.get("exploration") or {}
    for proposer, counts in sorted(r["proposers"].items()):
        table.add_row(escape(proposer), str(counts.get("done", 0)), str(counts.get("failed", 0)),
                      str(counts.get("in_flight", 0) + counts.get("pending", 0)),
                      Exploration(**entropy[proposer]).text() if proposer in entropy else "—")
    return table


def model_calls_table(calls: list[dict[str, Any]]) -> Table:
    """``atlas status NAME``'s model calls, a line per proposer that called a model: its
    calls, answered, failed, answered whose reply gave no usable candidate (``unusable``: a
    column only where some call's did), asks that sent no request (``not asked``: ``—``
    where not known), tokens (a column only where some reply counted them) and the latest
    problem's first line with when it came (:func:`_latest_error_text`); on a narrow
    console the error wraps, the rest stays whole."""
    table = _table("model calls")
    table.add_column("proposer", no_wrap=True, min_width=8)
    tokens = any(c.get("tokens") is not None for c in calls)
    unusable = any(c.get("unusable") for c in calls)
    for col in ("calls", "answered", "failed", *(("unusable",) if unusable else ()), "not asked",
                *(("tokens",) if tokens else ())):
        table.add_column(col, **NUMBER)
    table.add_column("latest error", overflow="fold", ratio=1)
    for c in calls:
        not_asked = "—" if c.get("not_asked") is None else str(c["not_asked"])
        numbers = [str(c["calls"]), str(c["answered"]), str(c["failed"]),
                   *((str(c.get("unusable") or 0),) if unusable else ()), not_asked]
        if tokens:
            numbers.append("—" if c.get("tokens") is None else f"{c['tokens']:,}")
        table.add_row(escape(c["proposer"]), *numbers, escape(_latest_error_text(c)))
    return table


def _latest_error_text(c: dict[str, Any]) -> str:
    """``MESSAGE (at 2025-01-02 10:11:12)`` in local time: the latest failed call's error,
    or ``unusable reply: WHY`` where an answered call that gave no usable candidate came
    later; ``—`` where there is neither."""
    error_at, unusable_at = c.get("latest_error_at"), c.get("latest_unusable_at")
    if error_at is None and unusable_at is None:
        return "—"
    import time

    if unusable_at is not None and (error_at is None or unusable_at > error_at):
        message, at = f"unusable reply: {c.get('latest_unusable') or '(no reason)'}", unusable_at
    else:
        message, at = c.get("latest_error") or "(no message)", error_at
    return f"{message} (at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))})"


def failure_counts_table(counts: list[dict[str, Any]], title: str) -> Table:
    """Failure messages and how many evaluations failed with each, most common first."""
    table = _table(title)
    table.add_column("count", **NUMBER)
    table.add_column("message", overflow="fold")
    for c in counts:
        table.add_row(str(c["count"]), escape(c["message"] or "(no message)"))
    return table


def failure_row(ev: dict[str, Any]) -> dict[str, Any]:
    from archive.records import error_message  # the rule failures are counted by; the package is not a start-up import

    return {"id": ev["id"], "seq": ev["seq"], "attempts": ev["attempts"], "proposer": ev["proposer"],
            "message": error_message(ev["error"]), "error": ev["error"], "params": ev["params"]}


def params_text(params: dict[str, Any], quoted: set[str] | frozenset[str] = frozenset()) -> str:
    """``name=value, …``, the values of the parameters ``quoted`` (:func:`_quoted_params`) quoted."""
    return _joined_params({k: cell_text(v, quoted=k in quoted) for k, v in params.items()})


def _joined_params(texts: dict[str, str]) -> str:
    """Parameters' texts in one cell: ``name=text, …``."""
    return ", ".join(f"{k}={t}" for k, t in texts.items())


def _elite_numbers(r: dict[str, Any], measure_names: list[str]) -> list[str]:
    """An elite row's cell, evaluation id, objective and measures, as the tables show them."""
    return [str(r["cell"]), str(r["evaluation_id"]), f"{r['objective']:.6g}",
            *[_number(r["measures"].get(m)) for m in measure_names]]


def failures_table(title: str, failed: list[dict[str, Any]], space: Sequence[str] = ()) -> Table:
    """The failed evaluations, each row's params as ``name=value`` text in the order of
    :func:`param_columns` (the campaign's ``space`` first)."""
    names = param_columns(space, failed)
    table = _table(title)
    for col in ("id", "seq", "attempts"):
        table.add_column(col, **NUMBER)
    table.add_column("proposer", overflow="fold")
    table.add_column("error", overflow="fold")
    table.add_column("params", overflow="fold")
    quoted = _quoted_params(failed, names)
    for f in failed:
        table.add_row(str(f["id"]), str(f["seq"]), str(f["attempts"]), escape(f["proposer"]),
                      escape(f["message"] or "(no message)"),
                      escape(params_text(_in_order(f["params"], names), quoted)))
    return table


def objective_label(objective: str, ids: tuple[str, ...]) -> str:
    """The objective's column label: its name, or ``objective.NAME`` where the name is one
    of the id columns' (an objective called ``cell`` gave a CSV two ``cell`` columns)."""
    return f"objective.{objective}" if objective in ids else objective


def column_labels(fixed: list[str], measure_names: list[str], param_names: list[str]) -> list[str]:
    """The measures' and parameters' column labels after the ``fixed`` columns: each its
    name, but a name that two columns would share is written ``measures.NAME`` or
    ``params.NAME`` (as ``atlas export`` writes every one), so no two columns share a label."""
    taken = [*fixed, *measure_names, *param_names]
    shared = {n for n in taken if taken.count(n) > 1}
    return ([f"measures.{m}" if m in shared else m for m in measure_names]
            + [f"params.{p}" if p in shared else p for p in param_names])


def elites_table(title: str, rows: list[dict[str, Any]], objective: str, measure_names: list[str],
                  param_names: list[str], units: Mapping[str, str] | None = None) -> Table | str:
    """The elite table, laid out to fit the console without cutting a name or a number. The
    objective's and measures' headers carry their ``units`` (the campaign's
    :attr:`~archive.records.CampaignSettings.units`) as the figures' axes do, ``mean_entropy
    (nats)`` (:func:`quantity_headers`); a name without a unit is its label alone. The
    first layout that fits: a column per parameter (each cell whole on one line); one
    ``params`` column of ``name=value`` text, whole; that column wrapped at its spaces (rich's
    table only). In each, headers too wide for the console (long measure names) fold onto
    more lines (:func:`search.plain_table.fold_to_fit`), never narrower than the numbers
    under them, which stay whole. A rich table; plain text
    (:func:`search.plain_table.plain_table`) for more than :data:`PLAIN_ROWS` rows, or where
    no layout fits even with the narrowest folding (its lines then run past the console:
    nothing is cut, where rich had squeezed the cell, eval and objective columns to nothing;
    the headers fold as far as the numbers alone need)."""
    from search.plain_table import cell_widths, column_widths, fold_to_fit, table_width

    plain = len(rows) > PLAIN_ROWS  # rich's layout would take seconds
    numbers = [_elite_numbers(r, measure_names) for r in rows]
    quoted = _quoted_params(rows, param_names)
    texts = [{p: printable(cell_text(v, quoted=p in quoted)) for p, v in _in_order(r["params"], param_names).items()}
             for r in rows]  # each value's, once, in the columns' order
    objective_column = objective_label(objective, ("cell", "eval"))
    labels = [printable(label) for label in column_labels(["cell", "eval", objective_column], measure_names,
                                                          param_names)]
    heads = ["cell", "eval", *quantity_headers([objective, *measure_names],
                                               [printable(objective_column), *labels[:len(measure_names)]],
                                               units or {})]
    split = [[*cells, *[t.get(p, "") for p in param_names]] for cells, t in zip(numbers, texts, strict=True)]
    numeric = _numeric_params(rows, param_names)
    aligned = [True] * len(heads) + [p in numeric for p in param_names]  # right: the numbers, parameters' too
    layouts = [([*heads, *labels[len(measure_names):]], split, aligned,
                cell_widths(split, len(heads) + len(param_names)))]
    if param_names:
        layouts += _shared_params_layouts(heads, numbers, texts, wraps=not plain)
    for headers, cells, right, widths in layouts:
        fold = fold_to_fit(headers, widths, console.width)
        if table_width(column_widths(headers, widths, fold)) <= console.width:
            return plain_table(title, headers, cells, right, fold) if plain else _elites_grid(
                title, headers, cells, right, fold)
    if not right[-1]:  # the parameters' text runs past the console: the headers fold for the numbers alone
        widths = [*widths[:-1], 0]
    return plain_table(title, headers, cells, right, fold_to_fit(headers, widths, console.width))


def quantity_headers(names: list[str], labels: list[str], units: Mapping[str, str]) -> list[str]:
    """The headers of the columns of the quantities ``names`` (the objective, the measures),
    each its column's label (:func:`column_labels`: ``measures.NAME`` where a name is shared)
    with the name's unit in ``units`` as :func:`archive.units.unit_label` writes it, printable."""
    from archive.units import unit_label

    return [unit_label(label, printable(units[name]) if units.get(name) else None)
            for name, label in zip(names, labels, strict=True)]


#: a table's layout: its headers, each row's cell texts, which columns are right-aligned
#: (numbers) and each column's width as its cells need it
_Layout = tuple[list[str], list[list[str]], list[bool], list[int]]


def _shared_params_layouts(heads: list[str], numbers: list[list[str]], texts: list[dict[str, str]],
                           wraps: bool) -> list[_Layout]:
    """The layouts with the parameters in one ``params`` column after the numbers: its text
    whole, then (``wraps``: rich's table) as narrow as its longest word."""
    from search.plain_table import cell_widths

    joined = [[*cells, _joined_params(t)] for cells, t in zip(numbers, texts, strict=True)]
    headers, right, widths = [*heads, "params"], [True] * len(heads) + [False], cell_widths(numbers, len(heads))
    whole = max((len(row[-1]) for row in joined), default=0)  # no rows: the header alone
    layouts = [(headers, joined, right, [*widths, whole])]
    if wraps:
        layouts.append((headers, joined, right, [*widths, max((len(w) for row in joined for w in row[-1].split()),
                                                             default=0)]))
    return layouts


def _elites_grid(title: str, headers: list[str], rows: list[list[str]], right: list[bool],
                 fold: int | None) -> Table:
    """A rich table of the elites' printable ``headers`` (folded at ``fold``, as
    :func:`search.plain_table.plain_table` folds them) and cell texts: ``right`` columns
    (the numbers) never wrap, the others fold."""
    from rich.text import Text

    from search.plain_table import cell_widths, column_widths, folded

    table = _table(title, min_width=min(len(title), console.width))
    widths = column_widths(headers, cell_widths(rows, len(headers)), fold)
    for header, width, numeric in zip(headers, widths, right, strict=True):
        table.add_column(Text("\n".join(folded(header, width))), **(NUMBER if numeric else {"overflow": "fold"}))
    for row in rows:
        table.add_row(*[cell if numeric else markup_escape(cell) for cell, numeric in zip(row, right, strict=True)])
    return table


# -- atlas law: the bound of a fit, and the table of ``--by``'s groups
def bound_cell(fit: Any) -> str:
    """A table's −a + b: the number, followed by ``floor`` where a < 0 (it is then the law's lowest value)."""
    return f"{fit.ceiling:.4g}" + (" floor" if fit.bound == "floor" else "")


def floor_caption(fits: list[Any]) -> str | None:
    """The line under a law table where some fit has a < 0: what its floor means; ``None`` where none has."""
    if not any(f.bound == "floor" for f in fits):
        return None
    return ("floor: a < 0, so R rises with H and −a + b, its value at H = 0, is the law's lowest (a floor), "
            "not a ceiling")


# the columns of ``atlas law --by``'s table: (header, which go first when the console is narrow: 0 never);
# ``group`` stands for the parameter's name, ``n`` for ``n (evaluations)`` or ``n (checkpoints)``
LAW_GROUP_COLUMNS: tuple[tuple[str, int], ...] = (
    ("group", 0), ("a", 2), ("b", 3), ("ceiling −a + b", 0), ("95% CI", 1), ("R²", 0), ("n", 0), ("note", 0))
NOTE_WIDTH = 20  # the least width a law table's notes keep before its columns go


def law_groups_table(name: str, reading: Any) -> Table:
    """``atlas law --by``'s table: one row per group (its value, a, b, the ceiling and its
    95 % CI, R², n; a group not fitted shows its point count and why), then the ungrouped fit;
    a −a + b that is a floor (a < 0) is marked so (:func:`bound_cell`, :func:`floor_caption`).

    Laid out to the console's width as ``atlas status``' campaigns are: numbers and group
    values are never cut and a note wraps; while the table, its notes :data:`NOTE_WIDTH` wide,
    is wider than the console, the least needed columns go (b, then a, then the 95 % CI: the
    ceiling, R² and n stay), named under the table (``--json`` has them all). Where even that
    is too wide (a long group value, a long word in a note), two headers go on two lines
    and the values and notes fold to what the console leaves them. It had been laid out at
    its full width wherever a word was long, each note on one line (294 columns at 100)."""
    rows = _law_rows(reading)
    for drop in (4, 3, 2, 1, 0):
        columns = [c for c, rank in LAW_GROUP_COLUMNS if rank < max(drop, 1)]
        table = _law_grid(name, reading, columns, rows, fold=drop == 0)
        if drop == 0:
            labels = [printable(reading.by), *(r["group"] for r in rows)]
            _fold_to_console(table, [table.columns[0], table.columns[-1]], [max(cell_len(t) for t in labels)])
        elif _fits(table):
            _fold_to_console(table, [table.columns[-1]], [0])  # a note wraps at what the console leaves it
            break
    fits = [g.fit for g in reading.groups if g.fit is not None] + ([reading.fit] if reading.fit is not None else [])
    left_out = [c for c, _ in LAW_GROUP_COLUMNS if c not in columns]
    lines = [floor_caption(fits) or "",
             f"not shown at {console.width} columns: {', '.join(left_out)} (see --json)" if left_out else ""]
    table.caption = "\n".join(line for line in lines if line) or None
    table.caption_justify = "left"
    return table


def _law_rows(reading: Any) -> list[dict[str, str]]:
    """The printable texts of ``atlas law --by``'s rows, by column (:data:`LAW_GROUP_COLUMNS`):
    the groups', then the ungrouped fit's where there is one or a reason why there is none."""

    def row(label: str, f: Any, n: int | None, note: str) -> dict[str, str]:
        cells = {"group": printable(label), "n": "" if n is None else str(n), "note": printable(note)}
        if f is not None:
            cells |= {"a": f"{f.a:.4g}", "b": f"{f.b:.4g}", "ceiling −a + b": bound_cell(f), "R²": f"{f.r2:.3f}",
                      "95% CI": f"[{f.ceiling_ci[0]:.4g}, {f.ceiling_ci[1]:.4g}]"}
        return cells

    rows = [row(g.label, g.fit, g.n, "" if g.fit is not None else g.reason or "") for g in reading.groups]
    whole = reading.fit
    if whole is not None or reading.reason:
        rows.append(row("all (ungrouped)", whole, None if whole is None else whole.n,
                        "" if whole is not None else reading.reason))
    return rows


def _law_grid(name: str, reading: Any, columns: list[str], rows: list[dict[str, str]], fold: bool) -> Table:
    """The groups' table of ``rows`` (:func:`_law_rows`; an ungrouped row after a rule)
    with only ``columns``, its notes measured at most
    :data:`NOTE_WIDTH` wide; ``fold``: the ceiling's and n's headers on two lines
    (``ceiling`` over ``−a + b``) and the group values may fold (else each stays whole on one line)."""
    what = "evaluations" if reading.mode != "pooled" else "checkpoints"
    table = _table(f"entropy-performance law of {name}, {reading.mode}, by {reading.by}: "
                   f"{reading.objective} = −a·exp({reading.measure}) + b")
    for col in columns:
        if col == "group":
            table.add_column(escape(reading.by), no_wrap=not fold, overflow="fold")
        elif col == "note":
            table.add_column(col, overflow="fold", max_width=NOTE_WIDTH)
        else:
            header = f"n ({what})" if col == "n" else col
            table.add_column(header.replace(" ", "\n", 1) if fold and col in ("n", "ceiling −a + b") else header,
                             **NUMBER)
    for i, r in enumerate(rows):
        if i == len(reading.groups):  # the ungrouped row
            table.add_section()
        table.add_row(*[markup_escape(r.get(c, "")) for c in columns])
    return table


def _fold_to_console(table: Table, folding: list[Any], natural: list[int]) -> None:
    """Share what the console's width leaves beside ``table``'s other columns (at their
    natural widths) among its ``folding`` columns (that wrap or fold), as their widest: each
    but the last its ``natural`` width, at most an even share of what is left; the last the
    rest. So no column is measured wider than the console leaves it, and the table is laid
    out to the console, never at its natural width (:class:`search.consoles._Console`)."""
    for column in folding:
        column.max_width = 1
    room = console.width - console.measure(table, options=console.options.update_width(10**6)).maximum + len(folding)
    for i, column in enumerate(folding):
        width = room if i == len(folding) - 1 else min(natural[i], room // (len(folding) - i))
        column.max_width = max(width, 1)
        room -= column.max_width
