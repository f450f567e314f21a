"""Proposer checkpoints: explicit, versioned JSON fields and named NumPy arrays, never pickles.

A checkpoint is the bytes the ``checkpoints`` table keeps next to the rows they match:

    b"entropy-atlas-checkpoint\\n"      the magic line
    uint32, little-endian               the length of the header
    header, UTF-8 JSON                  {"format": "entropy-atlas-checkpoint", "format_version": 1,
                                         "proposer": "cma-me", "version": 1,
                                         "requires": {"ribs": "0.12.0"},
                                         "fields": {...}, "arrays": ["emitter.0.mean", ...]}
    an ``.npz`` archive                 the arrays named in the header (``np.savez``, stored)

The rules:

- **Reading never runs code.** The header is read by :func:`json.loads`, the arrays by
  ``np.load(..., allow_pickle=False)`` from a zip whose members must be stored
  uncompressed (no zip bombs), so an object array is refused instead of unpickled.
  ``fields`` are plain JSON (finite numbers, strings, lists, objects); numbers that must
  come back bit for bit, or may be infinite, go in ``arrays``.
- **A proposer names itself and versions its fields.** ``proposer`` must be the reading
  proposer's name and ``version`` one it reads (``versions``): a checkpoint of another
  proposer, or of a version it does not know (newer, or older without a migration), is a
  :class:`CheckpointError` that says which and what to do.
- **Library internals are pinned.** ``requires`` maps a distribution to the version that
  wrote the checkpoint, for state read from a library's private attributes (the ribs
  proposers'). It is read only under that same version; any other installed version is a
  :class:`CheckpointError` rather than state silently misread.
- **Legacy pickles are never unpickled.** Entropy Atlas used to pickle proposer state
  (bytes starting with ``b"\\x80"``); unpickling data from a shared database is a way to
  run code, so :func:`loads` refuses them and :func:`is_legacy_pickle` lets a proposer
  rebuild its state from the archive where it can (:meth:`Proposer.from_legacy`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import io
import json
import logging
import math
import re
import struct
import zipfile
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from entropy_atlas.errors import AtlasError

MAGIC = b"entropy-atlas-checkpoint\n"
FORMAT = "entropy-atlas-checkpoint"
FORMAT_VERSION = 1
_LENGTH = struct.Struct("<I")
_ARRAY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")

log = logging.getLogger("entropy_atlas.checkpoint")


class CheckpointError(AtlasError, ValueError):
    """A stored proposer checkpoint that this Entropy Atlas cannot (or will not) read.
    ``rerun``: the campaign cannot go on here, only run again under a new name, which the
    scheduler says in its caller's words (``atlas run SPEC --name NEW`` or ``api.run``)."""

    def __init__(self, message: str, rerun: bool = False) -> None:
        super().__init__(message)
        self.rerun = rerun


@dataclasses.dataclass
class Checkpoint:
    """What a proposer saves: plain-JSON ``fields``, named ``arrays``, pinned ``requires``.

    ``version`` is the version of the fields as written (set by :func:`loads`)."""

    fields: dict[str, Any]
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    requires: dict[str, str] = dataclasses.field(default_factory=dict)
    version: int = 0


# -- writing -------------------------------------------------------------------
def dumps(proposer: str, version: int, fields: Mapping[str, Any],
          arrays: Mapping[str, np.ndarray] | None = None, requires: Mapping[str, str] | None = None) -> bytes:
    """The checkpoint bytes of ``proposer``'s state (see the module docstring for the layout).

    Raises ``TypeError``/``ValueError`` (a bug in the proposer, not the user's input) for a
    field that is not plain, finite JSON (naming its path: ``fields.told: a NumPy int64 is not
    JSON; convert it with int()``), an array of Python objects or a bad array name."""
    arrays = dict(arrays or {})
    for name, arr in arrays.items():
        if not _ARRAY_NAME.fullmatch(name):
            raise ValueError(f"checkpoint array name {name!r}: letters, digits, '_', '.' and '-' only")
        if np.asarray(arr).dtype.hasobject:
            raise TypeError(f"checkpoint array {name!r} holds Python objects; only numeric arrays are saved")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "proposer": proposer, "version": int(version),
              "requires": dict(requires or {}), "fields": dict(fields), "arrays": sorted(arrays)}
    try:
        text = json.dumps(header, allow_nan=False, separators=(",", ":"), sort_keys=True).encode()
    except (TypeError, ValueError) as exc:  # the value at fault, by its path, rather than the encoder's words
        problem = _json_problem(header["fields"], "fields") or _json_problem(header["requires"], "requires")
        if problem is None:
            raise
        raise type(exc)(problem) from None
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{k: np.asarray(v) for k, v in arrays.items()})
    return MAGIC + _LENGTH.pack(len(text)) + text + buf.getvalue()


def _an(kind: str) -> str:
    return f"{'an' if kind[:1] in 'aeio' else 'a'} {kind}"


def _json_problem(value: Any, path: str) -> str | None:
    """Why the value at ``path`` is not plain, finite JSON, as ``path: reason; what to do``
    (the first such value, depth first); None when it is. A NumPy scalar is refused rather
    than converted: it would load back as another type (a Python ``int`` for an ``int64``),
    and a resumed proposer must get back what it saved."""
    if value is None or isinstance(value, bool | str | int):
        return None
    if isinstance(value, float):  # NumPy's float64 too: JSON keeps it bit for bit, and loads a float back equal
        if math.isfinite(value):
            return None
        return f"{path}: {float(value)!r} is not finite JSON; put it in the checkpoint's arrays"
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"{path}: the key {key!r} is {_an(type(key).__name__)}; a field's keys are strings"
            problem = _json_problem(item, f"{path}.{key}")
            if problem is not None:
                return problem
        if len({type(key) for key in value}) > 1:
            return f"{path}: its keys are of several types; a field's keys are strings"
        return None
    if isinstance(value, list | tuple):
        return next((p for i, item in enumerate(value) if (p := _json_problem(item, f"{path}.{i}")) is not None),
                    None)
    kind = type(value).__name__
    if isinstance(value, np.ndarray):
        return f"{path}: an array is not JSON; put it in the checkpoint's arrays"
    if isinstance(value, np.generic):
        convert = {"b": "bool()", "i": "int()", "u": "int()", "f": "float()"}.get(value.dtype.kind)
        how = f"convert it with {convert}" if convert else "put it in the checkpoint's arrays"
        return f"{path}: a NumPy {kind} is not JSON; {how}"
    return f"{path}: {_an(kind)} is not JSON; a field holds numbers, strings, lists and dicts of them"


# -- reading -------------------------------------------------------------------
def is_legacy_pickle(data: bytes) -> bool:
    """Whether ``data`` is the pickle an older Entropy Atlas wrote (protocol 2 or later)."""
    return bytes(data[:1]) == b"\x80"


def legacy_error(proposer: str, why: str) -> CheckpointError:
    """The error for a legacy pickle that ``proposer`` cannot rebuild from the archive."""
    return CheckpointError(
        f"the checkpoint of proposer {proposer!r} was written by an older Entropy Atlas (a pickle); it is not "
        f"loaded, because unpickling data from a shared database can run any code, and {why}. Finish the "
        f"campaign with the Entropy Atlas version that started it, or run its spec again under a new name",
        rerun=True)


def warn_legacy(proposer: str, how: str) -> None:
    """Log that a legacy pickle was left unread and ``proposer``'s state rebuilt ``how``."""
    log.warning("proposer %s: the checkpoint was written by an older Entropy Atlas (a pickle) and is not "
                "loaded (unpickling can run code); its state was rebuilt from the archive: %s", proposer, how)


def loads(data: bytes, proposer: str, versions: Collection[int]) -> Checkpoint:
    """The checkpoint in ``data``, written by ``proposer`` in one of ``versions``.

    Never unpickles. Raises :class:`CheckpointError` for a legacy pickle, bytes that are no
    checkpoint, another proposer's checkpoint, a version not in ``versions``, a library
    version other than the installed one, or arrays that are missing or not numeric."""
    data = bytes(data)
    if is_legacy_pickle(data):
        raise legacy_error(proposer, "this proposer does not rebuild its state from the archive")
    header, blob = split_header(data, proposer)
    _check_header(header, proposer, versions)
    _check_requires(header["requires"], proposer)
    arrays = read_arrays(blob, header["arrays"], proposer)
    return Checkpoint(fields=header["fields"], arrays=arrays, requires=header["requires"],
                      version=header["version"])


def split_header(data: bytes, proposer: str) -> tuple[dict[str, Any], bytes]:
    """The JSON header and the npz bytes after it."""
    start = len(MAGIC) + _LENGTH.size
    if not data.startswith(MAGIC) or len(data) < start:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} is not an Entropy Atlas checkpoint "
                              f"(it starts with {data[:16]!r})")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    if start + length > len(data):
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} is truncated")
    try:
        header = json.loads(data[start:start + length].decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has an unreadable header ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} is not an Entropy Atlas checkpoint")
    return header, data[start + length:]


def _check_header(header: dict[str, Any], proposer: str, versions: Collection[int]) -> None:
    """The format, proposer and version are ones this reader knows; the rest well typed."""
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"the checkpoint of proposer {proposer!r} has container format {header.get('format_version')!r}; "
            f"this Entropy Atlas reads format {FORMAT_VERSION}: resume with the Entropy Atlas that wrote it")
    if header.get("proposer") != proposer:
        raise CheckpointError(
            f"the checkpoint was written by proposer {header.get('proposer')!r}, not {proposer!r}: resume the "
            f"campaign with the algorithm that wrote it, or run its spec again under a new name", rerun=True)
    version = header.get("version")
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions))
        when = "newer than" if isinstance(version, int) and version > max(versions) else "not one of"
        raise CheckpointError(
            f"the checkpoint of proposer {proposer!r} has version {version!r}, {when} the versions this "
            f"Entropy Atlas reads ({known}): resume with the Entropy Atlas that wrote it")
    for key, kind in (("fields", dict), ("requires", dict), ("arrays", list)):
        if not isinstance(header.get(key), kind):
            raise CheckpointError(f"the checkpoint of proposer {proposer!r} has no valid {key!r}")


def _check_requires(requires: dict[str, Any], proposer: str) -> None:
    """Every pinned library is installed at the version that wrote the checkpoint."""
    for dist, wanted in sorted(requires.items()):
        installed = installed_version(dist)
        if installed != wanted:
            raise CheckpointError(
                f"the checkpoint of proposer {proposer!r} was written with {dist} {wanted} and {dist} "
                f"{installed or '(none)'} is installed; it holds state read from {dist}'s internals, which "
                f"change between releases, so it is read only under {dist} {wanted}: install {dist}=={wanted} "
                f"to resume, or run the spec again under a new name", rerun=True)


def read_arrays(blob: bytes, names: list[Any], proposer: str) -> dict[str, np.ndarray]:
    """The named arrays of the npz ``blob``: stored zip members, no pickles, none missing."""
    if not names:
        return {}
    wanted = [str(name) for name in names]
    _check_stored(blob, proposer)
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in wanted if name in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:  # an object array: ValueError
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has unreadable arrays ({exc})") from None
    missing = sorted(set(wanted) - set(arrays))
    if missing:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} lacks arrays {missing}")
    return arrays


def _check_stored(blob: bytes, proposer: str) -> None:
    """``blob`` is a zip of stored (uncompressed) members, as ``np.savez`` writes."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            compressed = [i.filename for i in zf.infolist() if i.compress_type != zipfile.ZIP_STORED]
    except zipfile.BadZipFile as exc:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has unreadable arrays ({exc})") from None
    if compressed:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has compressed arrays {compressed}; "
                              f"Entropy Atlas writes them stored")


@functools.cache
def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, None when it is not installed
    (read once per process: the metadata lookup costs milliseconds, and every checkpoint
    of a ribs proposer asks)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- NumPy generators ----------------------------------------------------------
def rng_state(gen: np.random.Generator) -> dict[str, Any]:
    """A generator's ``bit_generator.state`` as JSON (a PCG64 state is a dict of ints)."""
    state = gen.bit_generator.state
    json.dumps(state)  # a bit generator with array state (MT19937) would need arrays instead
    return state


def set_rng_state(gen: np.random.Generator, state: Any, what: str) -> None:
    """Put a saved ``bit_generator.state`` back into ``gen`` (``what`` names it in errors)."""
    try:
        gen.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint's state of {what} does not fit its generator ({exc})") from None
