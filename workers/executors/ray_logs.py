"""Ray's own report of a dead worker, as one warning line instead of a paragraph on stdout.

With ``log_to_driver`` Ray forwards its workers' output to the driver, and with it the
raylet's report of each worker that died under a task: a 700-character paragraph with
lease, worker and node ids, a list of common causes and, once several come, a note on
deduplication with a web address, on the driver's **stdout**, between the progress bar and
the run's summary (coloured even where stdout is a file). The scheduler records the
evaluations such a worker held (``worker lost: …``, retried or failed as the run's rules
say), so what the paragraph adds is the worker's pid and why it ended.

:func:`route_worker_deaths` wraps the function Ray's error listener prints such reports
with (``ray._private.worker.print_to_stdstream``) so that each becomes one line given to
``warn``: ``a Ray worker died (pid 11355,
SYSTEM_ERROR: Worker unexpectedly exits with a connection error code 2. End of file.)``.
Everything else a worker or the raylet prints goes through Ray's handler as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

log = logging.getLogger("entropy_atlas.executor")

PRINTER = "print_to_stdstream"  # what Ray's error listener calls with each report, looked up at each call
_DEATH = "A worker died or was killed while executing a task"
_PID = re.compile(r"Worker PID: (\d+)")
_EXIT_TYPE = re.compile(r"Worker exit type: (\w+)")
_DETAIL = re.compile(r"Worker exit detail: (.*?)(?: Some common causes|$)")


def worker_death(line: str) -> str | None:
    """The one-line account of the raylet's report of a dead worker in ``line``, or None
    where ``line`` is something else."""
    if _DEATH not in line:
        return None
    found = [m.group(1).strip() if (m := pattern.search(line)) else None for pattern in (_PID, _EXIT_TYPE, _DETAIL)]
    pid, exit_type, detail = found
    why = ": ".join(part for part in (exit_type, detail) if part)
    said = ", ".join(part for part in (f"pid {pid}" if pid else None, why) if part)
    return f"a Ray worker died ({said})" if said else "a Ray worker died"


class _DeathsAsWarnings:
    """Ray's printer of a batch of forwarded lines with the raylet's dead-worker reports
    taken out and given to ``warn``."""

    def __init__(self, forward: Callable[..., None], warn: Callable[[str], None]) -> None:
        self.forward, self.warn = forward, warn

    def __call__(self, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        if data.get("pid") == "raylet":
            kept = []
            for line in data.get("lines") or []:
                death = worker_death(str(line))
                if death is None:
                    kept.append(line)
                else:
                    self.warn(death)
            if not kept:
                return
            data = {**data, "lines": kept}
        self.forward(data, *args, **kwargs)


def route_worker_deaths(warn: Callable[[str], None] | None = None) -> bool:
    """Put :class:`_DeathsAsWarnings` around ``ray._private.worker.print_to_stdstream``,
    once a process: the function Ray's error listener prints the raylet's reports with
    (looked up at each call). Each dead worker's report becomes ``warn(line)`` (default: a
    warning on the executor's logger, which ``atlas`` prints as ``warning: …``). Returns
    whether it is in place: False where this Ray version keeps no such function, and
    Ray's printing is then left as it is."""
    try:
        from ray._private import worker as ray_worker
    except ImportError:
        return False
    printer = getattr(ray_worker, PRINTER, None)
    if not callable(printer):
        return False
    if not isinstance(printer, _DeathsAsWarnings):
        setattr(ray_worker, PRINTER, _DeathsAsWarnings(printer, warn or (lambda text: log.warning("%s", text))))
    return True
