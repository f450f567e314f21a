"""Output files: refused before the work that would fill them, never after.

``check_output(path, suffixes, storage)`` raises :class:`~entropy_atlas.errors.OutputPathError`
when the file could not be written: a suffix that is not one of ``suffixes``, a path
that is a directory, an existing file that is read-only, a folder that cannot be
created or written, a path that is not UTF-8 or that the file system refuses, or the
SQLite file of the ``storage`` being read; and a folder that does not exist
(``--out /nonexistent/x.json``), as a new SQLite storage's missing folder is refused
(:func:`archive.engine.new_file_problem`): both had been created, a typo in the path writing
the file somewhere nobody would look. Only a folder of Entropy Atlas's own naming is made
where missing (``new_folders``: ``atlas run``'s default map, ``atlas-maps/…``).
:func:`writing` names a file that fails as it is written.

Every output is written whole or not at all (:func:`replacing`): to a temporary file beside
it, put in its place once complete. A write that fails (a full disk) or is interrupted
leaves no partial file, and an earlier file of that name as it was; on a full disk a partial
export or figure had stayed (a 0-byte ``e.json``; an earlier export cut short).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from entropy_atlas.errors import OutputPathError

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")
EXPORT_SUFFIXES = (".json", ".csv", ".parquet")


def check_output(path: Path, suffixes: tuple[str, ...], storage: str | None = None, *,
                 new_folders: bool = False, what: str | None = None) -> Path:
    """``path`` when a file can be written there (see the module's rule), and, given the
    ``storage`` URL read from, when it is not that storage's own SQLite file (or one of its
    journals): an export named like the file it reads would have replaced the archive. Its
    folder must exist, unless ``new_folders`` (a path Entropy Atlas chose itself). ``what``
    is the option that gave ``path`` (``--out``, ``--map``): an error about the path itself
    (its suffix, a directory, read-only, the storage) names it, ``--out bo.xlsx: …``, where
    the path alone had not said which argument was wrong."""
    path = Path(path)
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise OutputPathError(f"{_given(ascii(str(path)), what)}: the path is not valid UTF-8") from None
    try:
        return _writable(path, suffixes, storage, new_folders, what)
    except OutputPathError:
        raise
    except OSError as exc:  # a name too long for the file system, and the like
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Where a file checked writable fails as it is written (``/proc``, a full disk, a
    folder gone meanwhile): :class:`OutputPathError` naming it, not the OS's traceback."""
    try:
        yield
    except OutputPathError:
        raise
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` (its folder, created where missing, and its suffix,
    which names the format) to write instead of it, put in its place (``os.replace``) once
    the block ends; removed where the block raises or is interrupted, ``path`` then as it
    was. A symbolic link is written through, and an existing file's permissions kept. An
    ``OSError`` of the write names ``path``, never the temporary file (:func:`_named`)."""
    path = Path(path)
    final = path.resolve() if path.is_symlink() else path
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.stem[:100]}.{secrets.token_hex(4)}.partial{final.suffix}")
    try:
        yield temporary
        if final.exists():
            shutil.copymode(final, temporary)
        os.replace(temporary, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(exc, OSError):
            raise _named(exc, temporary, path) from None
        raise


def _named(exc: OSError, temporary: Path, path: Path) -> OSError:
    """``exc`` as it would read had it been raised writing ``path`` itself, where it names
    the temporary file: the OS's reason for its errno, and ``path`` as its file (pyarrow's
    ``Failed to open local file '/proc/.x.1496e28f.partial.csv'`` is ``No such file or
    directory``, of ``/proc/x.csv``), or, with no errno, its text naming ``path`` instead.
    ``exc`` itself where it does not name the temporary file."""
    text = str(exc)
    if temporary.name not in text:  # its random name: however the library wrote the folder
        return exc
    reason = (os.strerror(exc.errno) if isinstance(exc.errno, int)
              else text.replace(str(temporary), str(path)).replace(temporary.name, path.name))
    try:
        return type(exc)(exc.errno, reason, str(path))
    except TypeError:  # a subclass with a constructor of its own
        return OSError(exc.errno, reason, str(path))


#: A SQLite storage URL, with or without a driver (``sqlite:///PATH``, ``sqlite+pysqlite:///PATH``): its path.
SQLITE_URL = re.compile(r"sqlite(\+\w+)?:///(?P<path>.*)", re.DOTALL)


def _storage_files(storage: str | None) -> set[Path]:
    """The files of ``storage`` when it is a SQLite file (``sqlite:///PATH``, or with a
    driver named, ``sqlite+pysqlite:///PATH``: read here without SQLAlchemy, which ``atlas
    map``'s drawing process never imports): the database and its journals."""
    found = SQLITE_URL.fullmatch(storage) if storage is not None else None
    if found is None:
        return set()
    name = unquote(found["path"].partition("?")[0])
    if not name or name == ":memory:" or "\x00" in name:
        return set()
    database = Path(name).expanduser().resolve()
    if not database.name:  # the root folder (sqlite:////): no file, no journals beside it
        return {database}
    return {database, *(database.with_name(database.name + end) for end in ("-wal", "-shm", "-journal"))}


def _given(path: str, what: str | None) -> str:
    """``path`` as the error names it: after its option, ``--out bo.xlsx``, where ``what`` says which."""
    return f"{what} {path}" if what else path


def _writable(path: Path, suffixes: tuple[str, ...], storage: str | None, new_folders: bool,
              what: str | None = None) -> Path:
    given = _given(str(path), what)
    if path.resolve() in _storage_files(storage):
        raise OutputPathError(f"{given} is the storage being read ({storage}); name another file")
    if path.is_dir():
        raise OutputPathError(f"{given} is a directory; name a file")
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{given}: the file must end in {', '.join(suffixes)}")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{given} exists and is read-only")
        return path
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {path}: {folder} is a file, not a folder")
    if folder != path.parent and not new_folders:
        raise OutputPathError(f"cannot write {path}: the folder {path.parent} does not exist; create it first "
                              f"(mkdir -p {shlex.quote(str(path.parent))}), or correct the path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {path}: the folder {folder} is not writable")
    return path
