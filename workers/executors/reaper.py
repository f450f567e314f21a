"""Reap the private local Ray of a scheduler that was killed.

``ray.init(address="local")`` starts a head (GCS, raylet, monitors) that shares the
driver's fate, but the raylet's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``)
outlive a ``kill -9`` of the driver, reparented to init. :func:`watch` starts a small
detached process that waits for the driver to die and then ends exactly the processes it
was given — each named by pid *and* start time, so a pid the system reused is never hit —
and exits by itself once they are all gone (a clean ``ray.shutdown`` ends them first).
Linux only (it reads ``/proc``); elsewhere it does nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on (the name may hold spaces)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def is_alive(pid: int, started: int | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, given ``started``, is that same process."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


def descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, start time) of every process below ``pid``."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        if (started := start_time(child)) is not None:
            out.append((child, started))
        todo += children.get(child, [])
    return out


def watch(driver: int | None = None) -> subprocess.Popen[bytes] | None:
    """Start the reaper for the processes below ``driver`` (default: this process)."""
    if not PROC.is_dir():
        return None
    driver = os.getpid() if driver is None else driver
    targets = descendants(driver)
    if not targets:
        return None
    args = [str(driver), str(start_time(driver))] + [f"{pid}:{started}" for pid, started in targets]
    return subprocess.Popen([sys.executable, "-m", "workers.executors.reaper", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def reap(driver: int, driver_started: int, targets: list[tuple[int, int]], poll_s: float = 0.5) -> None:
    """Wait while the driver lives and some target does; then end the targets still alive."""
    while is_alive(driver, driver_started):
        if not any(is_alive(pid, started) for pid, started in targets):
            return
        time.sleep(poll_s)
    for pid, started in targets:
        if is_alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> None:
    driver, driver_started, *rest = argv
    targets = [(int(p), int(s)) for p, s in (item.split(":") for item in rest)]
    reap(int(driver), int(driver_started), targets)


if __name__ == "__main__":
    main(sys.argv[1:])
