"""A read in a forked process beside other work in this one.

A figure command spends its time in two independent parts: the read (SQLAlchemy, the
database driver, the query: about 0.3–0.5 s at 10⁶ evaluations) and the figure library's
imports (matplotlib and NumPy, about 0.45 s). :func:`read_beside` runs the first in a forked
process while this one does the second, so on two cores they overlap.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def fork_is_safe() -> bool:
    """Whether this process may fork without exec: on Linux (macOS's system libraries are
    not safe to use in a forked child, Windows has no fork), with no other thread running (a
    fork can catch one of them holding a lock that the child then waits on forever)."""
    return sys.platform.startswith("linux") and hasattr(os, "fork") and threading.active_count() == 1


INTERRUPTS = {signal.SIGINT, signal.SIGTERM}


def _reader_signals() -> None:
    """The forked reader's signals, set before it takes its call (it forks with them
    blocked, so none lands before): a Ctrl-C, which a terminal sends the whole process
    group, is this process's to act on (the reader ends with the pool); a SIGTERM sent to the
    reader alone ends it, and this process reads again. With this process's handlers, an
    interrupt while the reader waited for its next call printed its traceback
    (``Process ForkProcess-1: … KeyboardInterrupt``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)


def read_beside(read: Callable[[], T], meanwhile: Callable[[], object]) -> T:
    """``read()`` in a forked process while ``meanwhile()`` runs in this one; its result,
    or its error, comes back pickled (so both must pickle: plain records, the project's
    errors). One after the other, in this process, where no fork is safe (:func:`fork_is_safe`),
    and again in this process if the forked reader died without an answer (killed, out of
    memory)."""
    if not fork_is_safe():
        meanwhile()
        return read()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"),
                             initializer=_reader_signals) as pool:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)  # the reader forks with them held
        try:
            pending = pool.submit(read)  # forks the reader
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # one that came meanwhile acts here
        meanwhile()
        try:
            return pending.result()
        except BrokenProcessPool:
            pass
    return read()
