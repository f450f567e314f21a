"""The ``atlas`` console script: the command's interrupt handler set before anything is
imported, so that a Ctrl-C or SIGTERM in the command's first tenth of a second (while
:mod:`search.cli` and its libraries load) is one ``stopped`` line and exit 130, as it is
anywhere later, not an import's traceback (SIGINT) or a death by the signal (SIGTERM).
Once the command is loaded the handlers before are put back: it sets its own."""

from __future__ import annotations

import signal
import sys

STOPPED_STARTING = "stopped while starting; nothing was written"  # as search.cli's _RunStop says it


def main() -> None:  # pragma: no cover - console entry point (tests/test_startup_interrupts.py runs it)
    from entropy_atlas.interrupts import HELD, interrupt

    before = {signum: signal.signal(signum, interrupt) for signum in HELD}
    try:
        from search.cli import main as command
    except KeyboardInterrupt:
        sys.stderr.write(STOPPED_STARTING + "\n")
        sys.exit(130)
    for signum, handler in before.items():  # the command sets its own where it needs them
        signal.signal(signum, handler)
    command()
