"""Interrupts held across a critical section: :func:`held_interrupts`.

A Ctrl-C (SIGINT) or a SIGTERM raises :class:`KeyboardInterrupt` wherever the main thread
is. Inside a storage write that can leave a transaction open on a connection nothing will
ever close: SQLite's write lock then stays with it, and the run's own last write (its
status, ``stopped``) waited on that lock for minutes, then gave up with the campaign still
marked ``running``. So a write holds the first interrupt until its transaction has ended
(committed or rolled back), then acts on it as it would have; a second interrupt while
one is held acts at once, for a write that hangs.

Only the main thread receives signals, so elsewhere the block runs as it is.

A Ctrl-C can also be lost: one that lands in a ctypes callback (numba's compiler, which
pyribs' CMA-ES calls) is printed as "Exception ignored" and dropped, and the run went on.
:func:`interrupt`, the command's handler, notes the request as well as raising it, and a
loop that checks :func:`requested` between its steps stops even so.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM)
_requested = threading.Event()


def interrupt(_signum: int, _frame: FrameType | None) -> None:
    """A SIGINT and SIGTERM handler: note the request to stop (:func:`requested`), then
    raise :class:`KeyboardInterrupt` where the main thread is."""
    _requested.set()
    raise KeyboardInterrupt


def requested() -> bool:
    """Whether :func:`interrupt` has been called since :func:`clear` (its exception may have
    been swallowed)."""
    return _requested.is_set()


def clear() -> None:
    """Forget an earlier request (a new command starts)."""
    _requested.clear()


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Run the block with SIGINT and SIGTERM held: the first that arrives is acted on (its
    previous handler called, or, for the default action, the signal sent again) once the
    block ends, however it ends; a second interrupt while one is held acts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[tuple[int, FrameType | None]] = []
    previous: dict[int, Any] = {}

    def hold(signum: int, frame: FrameType | None) -> None:
        if received:  # the second: the user insists (and the first is acted on by this one)
            received.clear()
            _act(signum, frame, previous[signum])
        else:
            received.append((signum, frame))

    for signum in HELD:
        previous[signum] = signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            _act(*received[0], previous[received[0][0]])


def _act(signum: int, frame: FrameType | None, handler: Any) -> None:
    """Do what ``handler`` (a signal's disposition before the hold) would have done."""
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
