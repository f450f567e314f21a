"""``os._exit`` refused while an evaluator's code runs in the scheduler's own process.

``os._exit(n)`` ends a process at once: no exception, no ``finally``, no ``atexit``. Called
by an evaluator's module as it is imported (the check of a ``python`` target before a run
writes anything), or by its ``setup``, ``evaluate`` or ``teardown`` on the inline or
simulated executor, it ended ``atlas run`` without a word, with the evaluator's code as the
command's exit status (``0`` read as success).

While :func:`exit_refused` holds, ``os._exit`` called from this process raises
:class:`ProcessExit` in its place, which fails what called it as any exception does: the
import is a one-line refusal, the evaluation a failed one with its message, the run goes
on. The rule holds for this process only: a forked child (another pid) calling it, as
``multiprocessing`` children do, exits as before; so does any call once the block has
ended, through ``os._exit`` or a reference taken to it inside the block.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NoReturn

_real_exit = os._exit
_held = 0  # how many exit_refused blocks are open
_pid = os.getpid()


class ProcessExit(BaseException):
    """``os._exit(code)`` called inside :func:`exit_refused`; a ``BaseException``, so that an
    evaluator's own ``except Exception`` does not take it for an error it can go on from."""

    def __init__(self, code: object) -> None:
        super().__init__(f"called os._exit({code!r:.200}), which would have ended the scheduler's process")
        self.code = code


def _guarded_exit(code: int) -> NoReturn:
    """``os._exit`` while installed: refused in this process inside a block, else the real one."""
    if _held and os.getpid() == _pid:
        raise ProcessExit(code)
    _real_exit(code)


@contextlib.contextmanager
def exit_refused() -> Iterator[None]:
    """Inside the block, this process's ``os._exit`` raises :class:`ProcessExit`. Blocks nest;
    the guard is installed once, on the first, and costs a counter each after."""
    global _held, _pid
    if os._exit is not _guarded_exit:
        os._exit = _guarded_exit
    if not _held:
        _pid = os.getpid()  # a process forked from this one guards itself, not its parent
    _held += 1
    try:
        yield
    finally:
        _held -= 1
