"""What a proposer's ask returned, checked before it is stored: the rows of a turn.

Rules (:meth:`ProposalRows.rows`): the result is a list (or tuple) of
:class:`~search.proposers.base.Proposal`; each ``x`` a vector of the space's dimension with
finite coordinates, clipped into [0, 1] (the clipped ``x`` is what is stored, decoded and
told); ``params`` given are repaired or refused by
:meth:`~search.space.SearchSpace.repair_proposed`, and ``x`` re-encoded from them where it
does not decode to them; a label is a str that fits the table; ``meta`` a dict JSON can
store. The first problem is a :class:`BadProposals` whose text follows "proposer NAME".
A proposal without params keeps its ``x``: a CMA-ES emitter must be told the very
solutions it sampled.

What is taken but not as proposed is said, once a run (one :class:`ProposalRows`): a
proposal outside the space (a coordinate of ``x`` outside [0, 1], or a value of ``params``
outside its bounds) is clipped, stored with ``clipped: true`` in its proposal dict (its
``meta``), and the first one of each label is a warning on the ``entropy_atlas.proposals``
logger (``proposer NAME proposed points outside the space (x: 99 > high 5); they are
clipped to its bounds``), which ``atlas`` prints as a ``warning:`` line; an ask that
returns more than the ``n`` asked has the rest dropped, with one warning
(``proposer NAME returned 20 proposals for 10 asked; the extra are dropped``).

What a ``take_calls`` returned is checked as :func:`checked_calls` rules: a list (or tuple)
of dicts, each a row of ``proposer_calls`` (:mod:`archive.models`) with the fields that
table takes and no other, ``proposer``, ``key``, ``request`` and ``status`` given.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np
import orjson

from archive.models import CALL_FIELDS, CALL_JSON, CALL_REQUIRED, CALL_TEXTS
from archive.records import NewEvaluation
from entropy_atlas.storable import text_problem
from search.params import FloatParam
from search.proposers.base import Proposal
from search.space import SearchSpace, short_repr

log = logging.getLogger("entropy_atlas.proposals")

# a proposal's meta is stored as archive.bulk writes JSON columns (orjson, these options)
_META_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
# the longest proposer label the evaluations table takes (archive.models: String(64))
LABEL_CHARS = 64


class BadProposals(Exception):
    """An ask (or a ``take_calls``) returned what the scheduler cannot store or evaluate; the
    text says what, in words that follow "proposer NAME" (``returned a point of dimension 3,
    the space has 2``)."""


def _kind(value: Any) -> str:
    """What a value is, as a message names it: ``None``, ``a generator``, ``an ndarray``."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' or name.startswith('nd') else 'a'} {name}"


class ProposalRows:
    """Turns what ``proposer_name``'s asks return into rows of ``space``'s points."""

    def __init__(self, space: SearchSpace, proposer_name: str) -> None:
        self.space = space
        self.proposer_name = proposer_name
        self._warned: set[str] = set()  # what this run has warned of: "extra", "clipped:<label>"

    def rows(self, result: Any, n: int, seq: int) -> list[NewEvaluation]:
        """The rows (from ``seq`` on) of the first ``n`` proposals of an ask's ``result``.

        ``result`` must be a list (or tuple) of :class:`Proposal`. Each ``x`` must be a
        vector of the space's dimension with finite coordinates; coordinates outside
        [0, 1] are clipped, and the clipped ``x`` is what is stored, decoded and told.
        ``params`` given are checked as :meth:`SearchSpace.repair_proposed` rules (repaired
        or refused); ``x`` is kept where it decodes to them, else re-encoded from them. A
        label (``proposer``) is a str of at most 64 characters, ``meta`` a dict (or None:
        empty) that JSON can store. A proposal without params keeps its (clipped) ``x``:
        a CMA-ES emitter must be told the very solutions it sampled.

        A proposal clipped (its ``x`` outside the cube, or its ``params`` outside their
        bounds) is stored with ``clipped: true`` in its proposal dict, and warned of once a
        run for each label; proposals past the ``n`` asked are dropped, warned of once a run
        (the module's rules). Nothing is warned of for an ask that is refused."""
        proposals = self._proposal_list(result, n)
        if not proposals:
            return []
        xs, outside = self._cube_points(proposals)
        notes: list[str | None] = [self._cube_note(row) if row is not None else None for row in outside]
        params = self._params_of(proposals, xs, notes)
        labels = [self._label(i, p) for i, p in enumerate(proposals)]
        metas = self._metas(proposals)
        if isinstance(result, list | tuple) and len(result) > n:
            self._warn_once("extra", f"proposer {self.proposer_name} returned {len(result)} proposals for {n} asked; "
                                     "the extra are dropped")
        for i, note in enumerate(notes):
            if note is not None:
                metas[i] = {**metas[i], "clipped": True}
                self._warn_once(f"clipped:{labels[i]}", f"proposer {self._named(labels[i])} proposed points outside "
                                                        f"the space ({note}); they are clipped to its bounds")
        return [NewEvaluation(seq=seq + i, params=pr, x=x, proposer=label, proposal=meta)
                for i, (pr, x, label, meta) in enumerate(zip(params, xs.tolist(), labels, metas, strict=True))]

    @staticmethod
    def _proposal_list(result: Any, n: int) -> list[Proposal]:
        """The first ``n`` items of ``result`` (a list or tuple), each a :class:`Proposal`."""
        if not isinstance(result, list | tuple):
            raise BadProposals(f"returned {_kind(result)} from ask, not a list of proposals")
        proposals = list(result[:n])
        for i, p in enumerate(proposals):
            if not isinstance(p, Proposal):
                raise BadProposals(f"returned {_kind(p)} as proposal {i}, not a Proposal")
        return proposals

    def _warn_once(self, key: str, text: str) -> None:
        """Warn ``text`` unless this run has warned of ``key`` already."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", text)

    def _named(self, label: str) -> str:
        """A proposal's label as a warning names its proposer: the proposer's name, with the
        label where it differs (a portfolio's member: ``portfolio (from map-elites)``)."""
        return self.proposer_name if label == self.proposer_name else f"{self.proposer_name} (from {label})"

    def _cube_note(self, row: np.ndarray) -> str:
        """What a point's first coordinate outside [0, 1] was (``row``: the unclipped point),
        by the parameter it belongs to: ``x[1]: 1.8 > 1 in the unit cube``."""
        c = int(np.flatnonzero((row < 0.0) | (row > 1.0))[0])
        slot = next(s for s in self.space.slots if s.start <= c < s.start + s.size)
        at = f"{slot.name}[{c - slot.start}]" if isinstance(slot.param, FloatParam) and slot.size > 1 else slot.name
        value = float(row[c])
        return f"{at}: {value:.12g} {'> 1' if value > 1.0 else '< 0'} in the unit cube"

    def _cube_points(self, proposals: list[Proposal]) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The proposals' points as one array (a row each), clipped into the cube, and each
        point as proposed where it lay outside the cube (else None); refused where one is
        not a vector of the space's dimension or has a non-finite coordinate."""
        try:
            xs = np.array([p.x for p in proposals])
        except (ValueError, TypeError):  # ragged: diagnosed one by one below
            xs = np.empty(0, dtype=object)
        if xs.dtype.kind not in "iuf" or xs.shape != (len(proposals), self.space.dim):
            raise BadProposals(self._bad_point(proposals))
        if not np.isfinite(xs).all():
            row = int(np.flatnonzero(~np.isfinite(xs).all(axis=1))[0])
            raise BadProposals(f"proposed a point with a non-finite coordinate ({self._which(row, proposals[row])}: "
                                f"{short_repr(xs[row].tolist(), 60)})")
        xs = xs.astype(float)
        outside = ((xs < 0.0) | (xs > 1.0)).any(axis=1)
        rows: list[np.ndarray | None] = [xs[i].copy() if out else None for i, out in enumerate(outside.tolist())]
        return np.clip(xs, 0.0, 1.0), rows

    def _bad_point(self, proposals: list[Proposal]) -> str:
        """What is wrong with the first proposal whose ``x`` is not a vector of numbers of the
        space's dimension."""
        dim = self.space.dim
        for i, p in enumerate(proposals):
            try:
                x = np.asarray(p.x)
            except (ValueError, TypeError):
                x = np.empty(0, dtype=object)
            if x.dtype.kind not in "iuf":
                return f"returned x={short_repr(p.x, 60)} as {self._which(i, p)}'s point, not a vector of numbers"
            if x.ndim != 1:
                return f"returned a point of shape {x.shape} as {self._which(i, p)}, not a vector of {dim} coordinates"
            if x.shape[0] != dim:
                return f"returned a point of dimension {x.shape[0]}, the space has {dim} ({self._which(i, p)})"
        return f"returned points that are not vectors of {dim} numbers"

    def _params_of(self, proposals: list[Proposal], xs: np.ndarray, notes: list[str | None]) -> list[dict[str, Any]]:
        """Each proposal's params: ``x`` decoded, or the params it gave, repaired against the
        space (a row of ``xs`` re-encoded from them where it does not decode to them). A
        value clipped into its bounds is the proposal's note in ``notes`` (before its ``x``'s)."""
        decoded = self.space.decode_many(xs)
        for i, p in enumerate(proposals):
            if p.params is None:
                continue
            clipped: list[str] = []
            params, problems = self.space.repair_proposed(p.params, clipped)
            if clipped:  # what the proposer meant says more than its x
                notes[i] = clipped[0]
            if problems:
                raise BadProposals(f"proposed params the space cannot take ({self._which(i, p)}): {problems[0]}")
            if params != decoded[i]:
                xs[i] = self.space.encode(params)
                decoded[i] = params
        return decoded

    def _which(self, i: int, p: Proposal) -> str:
        """Proposal ``i`` as a message names it, with its label where that is not the proposer's
        name (a portfolio's member: ``proposal 2, from map-elites``)."""
        label = p.proposer
        if isinstance(label, str) and label not in ("", self.proposer_name):
            return f"proposal {i}, from {label}"
        return f"proposal {i}"

    def _label(self, i: int, p: Proposal) -> str:
        """Proposal ``i``'s label: its ``proposer`` (a str that fits the table), else the proposer's name."""
        if p.proposer is None or p.proposer == "":
            return self.proposer_name
        if not isinstance(p.proposer, str):
            raise BadProposals(f"labelled proposal {i} proposer={short_repr(p.proposer, 60)}, not a name (a str)")
        if len(p.proposer) > LABEL_CHARS:
            raise BadProposals(f"labelled proposal {i} {short_repr(p.proposer, 60)}, "
                               f"longer than {LABEL_CHARS} characters")
        return p.proposer

    @staticmethod
    def _metas(proposals: list[Proposal]) -> list[dict[str, Any]]:
        """Each proposal's ``meta`` (None: empty), refused where it is not a dict JSON can store."""
        metas = [{} if p.meta is None else p.meta for p in proposals]
        for i, meta in enumerate(metas):
            if not isinstance(meta, dict):
                raise BadProposals(f"returned meta={short_repr(meta, 60)} with proposal {i}, not a dict")
        try:
            orjson.dumps(metas, option=_META_JSON)
        except TypeError:
            for i, meta in enumerate(metas):
                try:
                    orjson.dumps(meta, option=_META_JSON)
                except TypeError as exc:
                    raise BadProposals(f"returned meta that JSON cannot store with proposal {i}: {exc}") from None
        return metas


def checked_calls(result: Any) -> list[dict[str, Any]]:
    """The calls of a ``take_calls``' ``result``, each a new dict with every field of
    ``proposer_calls`` but ``created_at`` (None where not given), as the store writes them.

    ``result`` must be a list (or tuple) of dicts. Each holds only the table's fields
    (:data:`CALL_FIELDS`) and gives ``proposer``, ``key``, ``request`` and ``status``:
    ``proposer`` and ``key`` a str of at most 64 characters, ``status`` of at most 16,
    ``reply`` and ``error`` a str or None, none with a NUL or a lone surrogate; ``request``,
    ``usage`` and ``outcome`` what JSON stores (no NaN); ``latency_s`` a finite number or None,
    ``created_at`` (where given) a finite number. The first problem is a :class:`BadProposals`."""
    if not isinstance(result, list | tuple):
        raise BadProposals(f"returned {_kind(result)} from take_calls, not a list of calls (dicts)")
    calls = []
    for i, call in enumerate(result):
        if not isinstance(call, dict):
            raise BadProposals(f"returned {_kind(call)} as call {i} from take_calls, not a dict")
        calls.append(_checked_call(i, call))
    return calls


def _checked_call(i: int, call: dict[Any, Any]) -> dict[str, Any]:
    """Call ``i`` with every field but ``created_at`` (None where not given), checked as
    :func:`checked_calls` rules."""
    where = f"call {i} from take_calls"
    unknown = [k for k in call if k not in CALL_FIELDS]
    if unknown:
        raise BadProposals(f"returned {where} with the field {short_repr(unknown[0], 60)}, which the archive "
                           f"does not keep (fields: {', '.join(CALL_FIELDS)})")
    missing = [k for k in CALL_REQUIRED if k not in call]
    if missing:
        raise BadProposals(f"returned {where} without {missing[0]!r} (a call gives {', '.join(CALL_REQUIRED)})")
    for field, width in CALL_TEXTS.items():
        _check_text(where, field, call.get(field), width)
    for field in CALL_JSON:
        _check_json(where, field, call.get(field))
    _check_seconds(where, "latency_s", call.get("latency_s"), nullable=True)
    if "created_at" in call:  # else the store stamps it
        _check_seconds(where, "created_at", call["created_at"], nullable=False)
    return {**dict.fromkeys(f for f in CALL_FIELDS if f != "created_at"), **call}


def _check_text(where: str, field: str, value: Any, width: int | None) -> None:
    """A call's text ``field``: a str (or None, where the column takes it: ``width`` None)
    of at most ``width`` characters, without what no storage keeps."""
    if value is None and width is None:
        return
    rule = "a str" if width is None else f"a str of at most {width} characters"
    if not isinstance(value, str) or (width is not None and len(value) > width):
        raise BadProposals(f"returned {where} with {field}={short_repr(value, 60)}, not {rule}")
    problem = text_problem(value)
    if problem:
        raise BadProposals(f"returned {where} with a {field} holding {problem}, which storage refuses")


def _check_json(where: str, field: str, value: Any) -> None:
    """A call's JSON ``field``: what the column's encoder (``json.dumps``) writes, without NaN."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise BadProposals(f"returned {where} with {field} that JSON cannot store: {exc}") from None


def _check_seconds(where: str, field: str, value: Any, nullable: bool) -> None:
    """A call's ``field`` of seconds: a finite number (or None, where ``nullable``)."""
    if value is None and nullable:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        rule = "a finite number of seconds" + (" or None" if nullable else "")
        raise BadProposals(f"returned {where} with {field}={short_repr(value, 60)}, not {rule}")


def _finite(value: int | float) -> bool:
    """Whether ``value`` is a finite float (an int beyond a float's range is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
