"""The two rich consoles the command line writes to (``console``: results and a run's
progress, on standard output; ``err``: errors and warnings, on standard error, so that
standard error holds nothing but them), :func:`escape`,
which makes text from outside safe to print on them, and :func:`guarded_streams`, the
one place where a standard stream that cannot be written (a reader that closed the pipe,
a full disk) becomes the command's exit code."""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO

from rich.console import Console, ConsoleDimensions
from rich.markup import escape as markup_escape
from rich.table import Table

from search.printable import printable


class _Console(Console):
    """A rich console that does not cut a table to a console narrower than the table's
    narrowest layout (each column as narrow as its longest word, or its whole text where it
    does not wrap): such a table is laid out at its natural width, nothing wrapped or cut,
    its lines running past the console (the terminal wraps them), as ``atlas elites``' plain
    tables are. rich had cut its cells to ``…`` and dropped a wrapping column whole
    (``COLUMNS=20 atlas status``: no name column). A table of more than
    :data:`MEASURED_ROWS` rows is left to rich: measuring it costs a third of drawing it,
    and the only such table, ``atlas elites``', is laid out to fit the console already.

    Off a terminal (a pipe, a file) a line of text is never hard-wrapped (:meth:`print`):
    rich had broken ``atlas run … > o.txt``'s summary and ``elite map: PATH`` at 80 columns.

    While ``console`` shows a live display on a terminal (``atlas run``'s start-up spinner,
    its progress bar: :attr:`lives`), what ``err`` prints on that same terminal goes through
    ``console``, which clears the display, prints the lines whole and draws it again under
    them, as rich does with what a live display's own program writes to ``sys.stderr``:
    written to standard error directly, a warning had been glued to the spinner's line."""

    _at_least = 0  # the natural width of a table being printed that the console cannot hold
    lives = 0  # the live displays (a spinner, a progress bar) started on this console and not yet stopped

    def set_live(self, live: Any) -> Any:
        shown = super().set_live(live)
        self.lives += 1
        return shown

    def clear_live(self) -> None:
        super().clear_live()
        self.lives -= 1

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if size.width >= self._at_least else ConsoleDimensions(self._at_least, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]

    def print(self, *objects: Any, **kwargs: Any) -> None:
        """rich's print, but: off a terminal, a print of text alone (``str``: a summary, a
        path, a warning, an error) is soft-wrapped, each line written whole as a script or a
        grep of a log reads it, unless the call says otherwise; a table is laid out to the
        console's width as on a terminal. ``err``'s print while ``console`` shows a live
        display on the terminal is ``console``'s (see the class)."""
        if self.stderr and self is not console and console.lives and self.is_terminal and console.is_terminal:
            console.print(*objects, **kwargs)
            return
        if not self.is_terminal and "soft_wrap" not in kwargs and all(isinstance(o, str) for o in objects):
            kwargs["soft_wrap"] = True
        tables = [o for o in objects if isinstance(o, Table) and o.row_count <= MEASURED_ROWS]
        unbounded = self.options.update_width(10**6) if tables else None
        widths = [self.measure(t, options=unbounded) for t in tables]
        self._at_least = max((w.maximum for w in widths if w.minimum > self.width), default=0)
        try:
            super().print(*objects, **kwargs)
        finally:
            self._at_least = 0


MEASURED_ROWS = 100
console = _Console()
err = _Console(stderr=True)

PIPE_CLOSED_EXIT = 128 + signal.SIGPIPE  # 141: what a shell shows for a command SIGPIPE killed


def escape(text: str) -> str:
    """``text`` for a rich console: what a terminal would act on as escapes
    (:func:`search.printable.printable`: an evaluator's error may hold anything), its
    markup inert."""
    return markup_escape(printable(text))


class OutputLost(Exception):
    """A write to a standard stream that could not be written (see :class:`GuardedStream`)."""


class GuardedStream:
    """A standard stream whose first failed write or flush (``OSError``: EPIPE, ENOSPC, EIO)
    is kept as :attr:`lost`; its descriptor then points at ``/dev/null``, so nothing written
    later fails again (the interpreter's last flush printed ``Exception ignored``). A write
    to a lost stream raises :class:`OutputLost` in the main thread, where it stops the
    command (not an ``OSError``: typer and rich turned that into exit 1 without a word), and
    is dropped in any other (rich's refresh thread); a flush never raises."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lost: OSError | None = None

    def write(self, text: str) -> int:
        if self.lost is None:
            written = self._tried(self.stream.write, text)
            if self.lost is None:
                return written
        if threading.current_thread() is threading.main_thread():
            raise OutputLost(str(self.lost))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.lost is None:
            self._tried(self.stream.flush)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.stream, attr)

    def _tried(self, op: Callable[..., Any], *args: Any) -> Any:
        try:
            return op(*args)
        except OSError as exc:
            self.lost = exc
            _to_devnull(self.stream)
            return None


def _to_devnull(stream: TextIO) -> None:
    with open(os.devnull, "w") as devnull, suppress(OSError, ValueError):  # no descriptor: nothing to fail at exit
        os.dup2(devnull.fileno(), stream.fileno())


@contextmanager
def guarded_streams() -> Iterator[tuple[GuardedStream, GuardedStream]]:
    """``sys.stdout`` and ``sys.stderr`` as :class:`GuardedStream` for the block (standard
    output's unencodable characters backslash-escaped, as Python escapes standard error's),
    then as they were."""
    before = sys.stdout, sys.stderr, getattr(sys.stdout, "errors", None)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    out, error = GuardedStream(sys.stdout), GuardedStream(sys.stderr)
    sys.stdout, sys.stderr = out, error  # type: ignore[assignment]
    try:
        yield out, error
    finally:
        sys.stdout, sys.stderr = before[0], before[1]
        if before[2] is not None and hasattr(sys.stdout, "reconfigure"):
            sys.stdout.reconfigure(errors=before[2])


def lost_output_code(out: GuardedStream, error: GuardedStream) -> int | None:
    """The exit code of a command whose output was lost, whatever the command would have
    exited with; ``None`` where both streams were written whole. A reader that closed the
    pipe (``atlas elites NAME | head -1``): 141, without a word, as a shell shows coreutils'
    commands killed by SIGPIPE. Any other loss (``> /dev/full``): exit 2, with one ``error:``
    line where standard output was lost and standard error still writes."""
    lost = out.lost or error.lost
    if lost is None:
        return None
    if lost.errno == errno.EPIPE:
        return PIPE_CLOSED_EXIT
    if out.lost is not None:
        with suppress(OutputLost):  # standard error lost as well: nothing can be said
            err.print(f"[bold red]error:[/] cannot write standard output ({escape(lost.strerror or str(lost))}): "
                      "the output is cut short; send it where it can be written", highlight=False, soft_wrap=True)
    return 2


class HintWords:
    """What a `` `atlas COMMAND NAME` `` that this command prints needs to be followed
    literally (:func:`hinted`): ``storage``, `` --storage URL`` (its password hidden) where
    the command was given a ``--storage`` (``$ATLAS_STORAGE`` still holds otherwise);
    ``run_flags``, `` --executor …``/`` --address …`` as the command that printed it ran,
    for `` `atlas resume NAME` `` alone. ``name`` is the campaign they are for (the literal
    ``NAME`` of a hint for any campaign takes the storage too). Set by the commands that
    print such hints (``search.cli._resume_words``), cleared after each. A hint without
    them had read another storage: the default one, or another campaign of that name there."""

    name: str | None = None
    storage = ""
    run_flags = ""

    @classmethod
    def clear(cls) -> None:
        cls.name, cls.storage, cls.run_flags = None, "", ""


def hinted(text: str) -> str:
    """``text`` with :class:`HintWords`' options after each `` `atlas COMMAND NAME`` of its
    campaign (and each placeholder `` `atlas COMMAND NAME``): ``--storage`` in all,
    ``--executor``/``--address`` in `` `atlas resume NAME`` alone."""
    if not (HintWords.storage or HintWords.run_flags):
        return text
    import re

    names = "|".join(re.escape(n) for n in dict.fromkeys([*([HintWords.name] if HintWords.name else []), "NAME"]))

    def flags(m: re.Match[str]) -> str:
        added = HintWords.storage + (HintWords.run_flags if m.group(1) == "resume" else "")
        return m.group(0) if text.startswith(added, m.end()) else m.group(0) + added  # not twice

    return re.sub(rf"`atlas ([a-z]+) (?:{names})(?=[`\s])", flags, text)
