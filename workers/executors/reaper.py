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


def end_new_descendants(before: set[tuple[int, int]], wait_s: float = 5.0) -> list[int]:
    """Kill every process below this one that is not in ``before`` (:func:`descendants`,
    taken earlier): what a start cut short (a Ctrl-C inside ``ray.init``) had started, which
    nothing else would end. Each is stopped first (``SIGSTOP``) and the tree read again, so
    a process one of them started meanwhile is found too, then all are killed, and waited
    for up to ``wait_s`` (a kill takes effect once the process is next scheduled). The pids
    killed."""
    if not PROC.is_dir():
        return []
    stopped: set[tuple[int, int]] = set()
    while new := [t for t in descendants(os.getpid()) if t not in before and t not in stopped]:
        for pid, started in new:
            if is_alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
        stopped.update(new)
    for pid, started in stopped:
        if start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while any(is_alive(pid, started) for pid, started in stopped) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(pid for pid, _ in stopped)


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
