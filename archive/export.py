"""Exports of a campaign: ``.json`` (one object), ``.csv`` and ``.parquet`` (flat evaluations).

JSON: ``{"campaign": {name, spec, status}, "evaluations": [...], "elites": [...]}``, the
elites best first, each with its cell, evaluation id, objective, measures, params, then
the evaluation's ``seq`` and ``proposer`` (the fields ``camp.elites()`` and the dashboard
give them, so a reader joins them by either).
CSV/Parquet: one row per evaluation: its scalar fields, with ``elite`` (true for the
evaluation that holds its cell in the elite map, false for every other) right after
``cell``; then ``params.*`` (in the order of the spec's space), ``measures.*`` (of its
measures) and ``metrics.*`` columns (a key the spec does not name after those it does, in
order of first appearance). Nested values (a
vector parameter, a metric curve) are kept whole as JSON text, and floats are written to
full precision (the shortest text that reads back as the same double, never rounded);
CSV writes ``elite`` as ``true``/``false`` and nulls as empty fields. A column whose
values mix kinds (:func:`json_column`: a categorical of strings and numbers, a metric that
is a list on one row and a string on another) is written as text, every value as its JSON
text, encoded once (``"1"``, ``1``, ``false``, ``[1,2]``, ``"text"``): each reads back
with a JSON parser as the value it was. A metric column with no value to type it (always
NaN or null) is ``double``; a stored infinity (a diverged metric) stays one there, and a
NaN is null, as in the JSON export. ``created_at``, ``started_at`` and ``finished_at``
are seconds since the Unix epoch (UTC), as doubles.

Parquet holds what a reader needs beyond the rows (CSV cannot; its reader takes them from
the JSON export or from the Parquet file):

- the campaign under the schema metadata key :data:`METADATA_KEY` (``b"entropy_atlas"``,
  JSON, :func:`campaign_metadata`): name, status, the spec as stored (redacted), its
  objective (name, direction), measures (name, low, high, bins) and archive (``qd_offset``),
  the QD-score's rule, the timestamps' unit, the schema revision and the stored cell
  layout (``layout``: a grid's axes, a CVT's centroids), so the QD-score and every cell are
  rebuilt from the file alone (``pq.read_schema(path).metadata[b"entropy_atlas"]``);
- pandas' metadata (``b"pandas"``, :func:`pandas_metadata`) naming the nullable dtype of
  every integer and boolean column that may hold a null (``cell``, null on a failed row,
  and those of ``params.*``, ``measures.*``, ``metrics.*``): ``pd.read_parquet`` reads
  them as ``Int64`` / ``boolean``, not as ``float64`` with NaN (or ``object``);
- a parameter's column whose every value is a list of numbers, of strings or of booleans
  (a vector parameter; nulls aside) as a Parquet list column, not JSON text
  (:func:`_list_column`); CSV keeps JSON text, and so does every ``metrics.*`` column (an
  evaluator's metrics are typed by no spec: a curve may be ragged, mixed or an object).

The campaign's spec goes out through :func:`archive.redact.redact_spec`: values of secret keys
(``api_key``, ``password``, ``token``, …) and passwords in URLs are written as ``***``.

Both read the JSON columns as the text the database holds, straight from the DBAPI
cursor: the JSON export splices it in unparsed (orjson fragments), the flat exports parse
it with orjson, and the tables are built and written column by column with pyarrow.
Python's cyclic garbage collector is paused while the rows are in memory: 10⁵ rows make
millions of objects, none of them cyclic, and its passes over them were half the time.
That keeps a 10⁵-evaluation export well under a second (see docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from operator import methodcaller
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from archive.outputs import replacing
from archive.redact import redact_spec
from entropy_atlas.errors import AtlasError

if TYPE_CHECKING:
    import pyarrow as pa

EVALUATION_FIELDS = ("id", "seq", "params", "status", "objective", "measures", "metrics", "cell",
                     "proposer", "attempts", "error", "worker", "created_at", "started_at", "finished_at")
JSON_FIELDS = ("params", "measures", "metrics")
# the scalar fields' column types, for columns with no value to infer them from (an empty campaign)
SCALAR_TYPES = {"id": "int64", "seq": "int64", "status": "string", "objective": "float64", "cell": "int64",
                "proposer": "string", "attempts": "int64", "error": "string", "worker": "string",
                "created_at": "float64", "started_at": "float64", "finished_at": "float64"}
_EMPTY: dict[str, Any] = {}
#: the Parquet schema metadata key of the campaign's metadata (:func:`campaign_metadata`)
METADATA_KEY = b"entropy_atlas"
#: the columns never null (pandas keeps its plain dtypes for them; :func:`pandas_metadata`)
NEVER_NULL = frozenset({"id", "seq", "attempts", "elite"})
TIMESTAMP_UNIT = "seconds since the Unix epoch, UTC"


class ExportError(AtlasError, ValueError):
    """An export the user asked for that cannot be written (an unknown file type)."""


@dataclasses.dataclass
class ExportData:
    """What an export writes: the campaign (name, spec, status), its evaluation rows as
    :meth:`~archive.store.Store.evaluation_texts` returns them for ``EVALUATION_FIELDS``
    (the ``JSON_FIELDS`` as stored text), and its elites as ``(cell, evaluation_id,
    objective)`` best first; ``layout``: the stored cell layout
    (:meth:`archive.layout.CellLayout.to_json`: a grid's axes, a CVT's centroids), which a
    Parquet export carries in its metadata."""

    name: str
    spec: dict[str, Any]
    status: str
    rows: Sequence[Sequence[Any]]
    elite_cells: Sequence[tuple[int, int, float]]
    layout: dict[str, Any] | None = None


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside (reference counting still frees everything)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _valid_json(text: str) -> str:
    """Stored JSON text that is valid JSON: Python's ``json`` may have written
    ``NaN``/``Infinity`` (a metric curve that diverged); those become ``null``."""
    if "NaN" in text or "Infinity" in text:
        return orjson.dumps(json.loads(text)).decode()
    return text


def _fragments(texts: Sequence[str | None]) -> list[orjson.Fragment | None]:
    """Each stored JSON text as an orjson fragment (written out as is), ``None`` as null."""
    stored = "\n".join(t for t in texts if t is not None)
    if "NaN" in stored or "Infinity" in stored:
        texts = [None if t is None else _valid_json(t) for t in texts]
    return [None if t is None else orjson.Fragment(t) for t in texts]


def _constant(name: str) -> float | None:
    """What a flat export makes of the constants Python's ``json`` wrote: ``Infinity`` and
    ``-Infinity`` the floats (a double column holds them), ``NaN`` null."""
    return None if name == "NaN" else float(name)


def _parsed(texts: Sequence[str | None]) -> list[dict[str, Any]]:
    """Each stored JSON object decoded (``{}`` for SQL NULL and JSON ``null``); a value that
    is not an object (metrics a list, from a version that stored them) as ``{"value": v}``.
    ``NaN``/``Infinity`` written by Python's ``json`` (which orjson refuses) are read by it
    as :func:`_constant` says."""
    try:
        decoded = [None if t is None else orjson.loads(t) for t in texts]
    except orjson.JSONDecodeError:
        decoded = [None if t is None else json.loads(t, parse_constant=_constant) for t in texts]
    return [_EMPTY if v is None or v == {} else v if isinstance(v, dict) else {"value": v} for v in decoded]


def _columns(data: ExportData) -> list[Sequence[Any]]:
    """The campaign's evaluations as one sequence per field of ``EVALUATION_FIELDS``."""
    return list(zip(*data.rows, strict=True)) if data.rows else [()] * len(EVALUATION_FIELDS)


def write_json(data: ExportData, path: Path) -> Path:
    """The export document, with each evaluation's JSON columns spliced in as stored."""
    with gc_paused():
        columns = _columns(data)
        for field in JSON_FIELDS:
            i = EVALUATION_FIELDS.index(field)
            columns[i] = _fragments(columns[i])
        evaluations = [dict(zip(EVALUATION_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)]
        by_id = {doc["id"]: doc for doc in evaluations}
        elites = [
            {"cell": cell, "evaluation_id": eid, "objective": objective,
             "measures": by_id[eid]["measures"], "params": by_id[eid]["params"],
             "seq": by_id[eid]["seq"], "proposer": by_id[eid]["proposer"]}
            for cell, eid, objective in data.elite_cells
        ]
        document = {"campaign": {"name": data.name, "spec": redact_spec(data.spec), "status": data.status},
                    "evaluations": evaluations, "elites": elites}
        path.write_bytes(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2))
    return path


#: the kind of a column's value that decides its column type (one double column holds an
#: integer and a float; a list and an object are both written as JSON text); any other type is its own kind
_KINDS: dict[type, str] = {bool: "bool", int: "number", float: "number", list: "nested", dict: "nested"}


def _kinds(values: Iterable[Any]) -> set[Any]:
    """The kinds (:data:`_KINDS`) of ``values``, nulls aside (a C-speed pass over their types)."""
    return {_KINDS.get(t, t) for t in set(map(type, values)) if t is not type(None)}


def json_column(values: Iterable[Any]) -> bool:
    """Whether a column of ``values`` is written as JSON text, each value's own
    (:func:`json_text`): where they are nested (lists, objects) or, nulls aside, of more than
    one kind (:data:`_KINDS`: the choices ``1``, ``"1"``, ``false``; a metric ``{"a": 1}``
    on one row and ``5`` on another). Text alone keeps those apart: as ``str()`` the
    integer ``1`` and the string ``"1"`` were both ``1``. ``atlas elites --format csv``
    keeps its columns by the same rule."""
    kinds = _kinds(values)
    return len(kinds) > 1 or kinds == {"nested"}


def json_text(value: Any) -> str | None:
    """``value`` as compact JSON text, once (``None``, and a float JSON cannot hold, as
    ``None``: a null)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):  # an integer past 64 bits, say
        return json.dumps(value, default=str)


def _plain_list(kind: pa.DataType) -> bool:
    """Whether ``kind`` is a list (of lists …) of numbers, of strings or of booleans."""
    import pyarrow as pa

    if not pa.types.is_list(kind):
        return False
    while pa.types.is_list(kind):
        kind = kind.value_type
    return any(test(kind) for test in (pa.types.is_integer, pa.types.is_floating, pa.types.is_string,
                                       pa.types.is_boolean))


def _list_column(values: Sequence[Any]) -> pa.Array | None:
    """``values`` as a list column where every one is, nulls aside, a list (of lists …) of
    numbers, of strings or of booleans that pyarrow holds as one type (integers and floats
    together are doubles); else ``None`` (:func:`_column` writes JSON text): a list of
    objects, of mixed kinds, of no typed value at all (``[]`` alone), or an integer past 64 bits."""
    import pyarrow as pa

    if set(map(type, values)) - {list, type(None)}:  # an object (or a subclass) among them
        return None
    try:
        column = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return column if _plain_list(column.type) else None


def _column(values: Sequence[Any], lists: bool = False) -> pa.Array:
    """A pyarrow array of ``values``: with ``lists`` (Parquet), a list column where
    :func:`_list_column` makes one; else JSON text where :func:`json_column` says so, else
    the type they share; ``double`` where no value types them (a metric always NaN or null)."""
    import pyarrow as pa

    kinds = _kinds(values)
    if not kinds:
        return pa.array(values, type=pa.float64())
    if lists and kinds == {"nested"} and (column := _list_column(values)) is not None:
        return column
    if not json_column(values):
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # what one kind still cannot hold (2**64 and 1)
            pass
    return pa.array([json_text(v) for v in values], type=pa.string())


def _flattened(group: str, texts: Sequence[str | None], order: Sequence[str] = (),
               lists: bool = False) -> dict[str, pa.Array]:
    """``group.key`` -> array for every key of the stored JSON objects (null where a row
    lacks the key; see :func:`_column`, ``lists`` passed on): first the keys of ``order``
    that some row has, in that order, then any other in order of first appearance."""
    objects = _parsed(texts)
    seen = dict.fromkeys(chain.from_iterable(objects))
    named = [key for key in dict.fromkeys(order) if key in seen]
    keys = [*named, *(key for key in seen if key not in set(named))]
    return {f"{group}.{key}": _column(list(map(methodcaller("get", key), objects)), lists) for key in keys}


def spec_order(spec: Any, group: str) -> list[str]:
    """The keys of JSON column ``group`` in the order the campaign's ``spec`` names them:
    ``params`` its space's parameters, ``measures`` its measures (none for ``metrics``, or
    for a spec that does not hold them as expected)."""
    if not isinstance(spec, dict):
        return []
    if group == "params":
        space = spec.get("space")
        return [str(k) for k in space] if isinstance(space, dict) else []
    if group == "measures":
        measures = spec.get("measures")
        if isinstance(measures, list):
            return [str(m["name"]) for m in measures if isinstance(m, dict) and "name" in m]
    return []


def _elite_flags(data: ExportData, ids: Sequence[int]) -> pa.Array:
    """For each evaluation id, whether that evaluation is its cell's elite (one vectorised lookup)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    elite_ids = [eid for _, eid, _ in data.elite_cells]
    return pc.is_in(pa.array(ids, type=pa.int64()), value_set=pa.array(elite_ids, type=pa.int64()))


def flat_table(data: ExportData, lists: bool = False) -> pa.Table:
    """One row per evaluation: the scalar fields with ``elite`` after ``cell``, then
    ``group.key`` for every key of the JSON columns (absent keys are null): ``params.*`` in
    the order of the spec's space and ``measures.*`` in that of its measures
    (:func:`spec_order`), whatever order the first row holds them in, then any key the spec
    does not name, and ``metrics.*``, in order of first appearance. The columns had followed
    the first row, so two exports of one space differed (a conditional parameter inactive
    there came last). ``lists`` (Parquet's table): a ``params.*`` column of lists as a list
    column where :func:`_list_column` makes one, not JSON text (``metrics.*`` stay text)."""
    import pyarrow as pa

    with gc_paused():
        columns = dict(zip(EVALUATION_FIELDS, _columns(data), strict=True))
        arrays = {}
        for field, values in columns.items():
            if field not in JSON_FIELDS:
                known = all(v is None for v in values)  # nothing to infer from: the field's own type
                arrays[field] = pa.array(values, type=SCALAR_TYPES[field]) if known else _column(values)
            if field == "cell":
                arrays["elite"] = _elite_flags(data, columns["id"])
        for group in JSON_FIELDS:
            arrays.update(_flattened(group, columns[group], spec_order(data.spec, group), lists and group == "params"))
        return pa.table(arrays)


def _spec_part(spec: Any, key: str) -> Any:
    """``spec[key]`` where ``spec`` is a mapping (``None`` where not: an archive's odd spec)."""
    return spec.get(key) if isinstance(spec, dict) else None


def campaign_metadata(data: ExportData) -> dict[str, Any]:
    """What a Parquet export says of its campaign beyond the rows (:data:`METADATA_KEY`):
    its name and status, the spec as stored (secrets redacted, :func:`redact_spec`), that
    spec's ``objective`` (name, direction), ``measures`` (name, low, high, bins) and
    ``archive`` (``qd_offset``) again at the top for a reader who wants those alone, the
    QD-score's rule, the timestamps' unit, the schema revision of the archive it came from
    (:func:`archive.engine.script_head`: the one this version reads and writes) and the
    stored cell ``layout`` (None where the caller gave none)."""
    from archive.engine import script_head

    spec = redact_spec(data.spec)
    return {"campaign": {"name": data.name, "status": data.status, "spec": spec},
            "objective": _spec_part(spec, "objective"), "measures": _spec_part(spec, "measures"),
            "archive": _spec_part(spec, "archive"),
            "qd_score": "sum over the elites of (fitness - archive.qd_offset); fitness = objective when "
                        "maximising, -objective when minimising",
            "timestamps": {"columns": ["created_at", "started_at", "finished_at"], "unit": TIMESTAMP_UNIT},
            "schema_revision": script_head(), "layout": data.layout}


def pandas_metadata(table: pa.Table) -> dict[str, Any]:
    """pandas' schema metadata for ``table``: the nullable dtype (``Int64``, ``boolean``) of
    each integer and boolean column but those never null (:data:`NEVER_NULL`), whether or
    not this export holds a null there, so that one campaign's exports read alike; pandas
    had read an integer column with a null (``cell`` of a failed row, a metric it did not
    report) as ``float64``. Other columns are left to pyarrow's own conversion."""
    import pyarrow as pa

    columns = []
    for field in table.schema:
        if field.name in NEVER_NULL:
            continue
        if pa.types.is_integer(field.type):
            dtype = ("int64", "Int64")
        elif pa.types.is_boolean(field.type):
            dtype = ("bool", "boolean")
        else:
            continue
        columns.append({"name": field.name, "field_name": field.name, "pandas_type": dtype[0],
                        "numpy_type": dtype[1], "metadata": None})
    return {"index_columns": [], "column_indexes": [], "columns": columns}


def parquet_table(data: ExportData) -> pa.Table:
    """The Parquet export's table: :func:`flat_table` with list columns, its schema
    metadata the campaign's (:func:`campaign_metadata`) and pandas' (:func:`pandas_metadata`)."""
    table = flat_table(data, lists=True)
    return table.replace_schema_metadata({
        METADATA_KEY: orjson.dumps(campaign_metadata(data), default=str),
        b"pandas": orjson.dumps(pandas_metadata(table)),
    })


def export_campaign(data: ExportData, path: Path) -> Path:
    """Write ``data`` to ``path``, its format chosen by the suffix (``.json``, ``.csv``,
    ``.parquet``); :class:`ExportError` for any other."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".csv", ".parquet"):
        raise ExportError(f"cannot export to {path.name!r}: use .json, .csv or .parquet")
    with replacing(path) as temporary:  # whole or not at all: a full disk leaves no partial export
        if suffix == ".json":
            write_json(data, temporary)
        elif suffix == ".csv":
            from pyarrow import csv

            csv.write_csv(flat_table(data), temporary)
        else:
            import pyarrow.parquet as pq

            pq.write_table(parquet_table(data), temporary)
    return path
