"""Who holds a campaign's lease: a scheduler's holder id and whether the process behind one
is gone. Standard library only, so that ``atlas status`` can ask without importing the
scheduler (its proposers and workers take half a second).

A holder id is ``HOST:PID:TOKEN:BOOT:PIDNS``: the host name, the process id, a random token,
and where that process id names a process: the kernel's boot (``/proc/sys/kernel/random/boot_id``,
dashes left out) and the PID namespace (the inode of ``/proc/self/ns/pid``). A process id
means something only in its PID namespace: a scheduler in a container that shares the
host's name (``docker run --network host``, a Kubernetes ``hostNetwork`` pod, ``unshare
--pid``) is ``vm:11:…`` while no process 11 exists on the host. Messages name a holder as
a person reads it (:func:`holder_text`: ``scheduler pid 11 on host vm``), never the raw id.

The rule: a holder is dead only when that is certain. Its process was in this process's
PID namespace (same host name, boot and namespace) and its process id no longer exists
there, or is a zombie. A holder of another namespace or boot, or one whose place is unknown
(``?``: no ``/proc`` to read it from), is left to its lease's expiry (30 s by default).

A holder id written before the place was (``HOST:PID:TOKEN``) is judged as it was: on this
host name, a process id that does not exist here is dead. Only schedulers from before this
rule write one (and tests and tools that write a dead one by hand); judging them as before
keeps a ``kill -9`` of such a run known at once, and nothing newer can be mistaken by it.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid

UNKNOWN = "?"  # a place this process could not read


def lease_holder_id() -> str:
    """This process's holder id, ``HOST:PID:TOKEN:BOOT:PIDNS`` (a new token each call)."""
    boot, pidns = our_place()
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{boot}:{pidns}"


def holder_text(holder: str) -> str:
    """A holder id as messages show it to a person: ``scheduler pid 13211 on host vm``, where
    ``vm:13211:21cef13e:338ea5…:4026531836`` had been shown whole. The id itself stays what
    is stored, compared and written where a machine reads it (the dashboard's JSON). Text
    that is no holder id (``another scheduler``) is shown as it is, a scheduler named."""
    parts = holder.split(":")
    if len(parts) in (3, 5) and parts[0] and parts[1].isdigit():
        return f"scheduler pid {parts[1]} on host {parts[0]}"
    return holder if "scheduler" in holder else f"scheduler {holder}"


def holder_is_dead(holder: str) -> bool:
    """True only when it is certain that ``holder``'s process is gone: it ran in this
    process's PID namespace on this boot of this host, and its process id is gone or a
    zombie. Another namespace or boot, or a place unknown, is not known dead (its lease
    expires instead). An old holder id (``HOST:PID:TOKEN``) is judged by host name alone,
    as before."""
    parts = holder.split(":")
    if len(parts) not in (3, 5) or parts[0] != socket.gethostname():
        return False
    if len(parts) == 5 and not shares_our_pids(parts[3], parts[4]):
        return False
    return _process_is_gone(parts[1])


@functools.cache
def _place_of(pid: int) -> tuple[str, str]:
    """The boot and PID namespace of process ``pid`` (this one; a fork reads its own)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip().replace("-", "")
        link = os.readlink("/proc/self/ns/pid")  # 'pid:[4026531836]'
    except OSError:
        return UNKNOWN, UNKNOWN
    pidns = link.partition("[")[2].rstrip("]")
    if not (boot.isalnum() and pidns.isdigit()):
        return UNKNOWN, UNKNOWN
    return boot, pidns


def our_place() -> tuple[str, str]:
    """This process's boot id and PID namespace inode (``?`` each where unreadable)."""
    return _place_of(os.getpid())


def shares_our_pids(boot: str, pidns: str) -> bool:
    """Whether a process of boot ``boot`` and PID namespace ``pidns`` had its process id in
    this process's PID namespace: both known, and both ours."""
    ours = our_place()
    return UNKNOWN not in ours and (boot, pidns) == ours


def _process_is_gone(pid_text: str) -> bool:
    """Whether process ``pid_text`` of this PID namespace no longer exists or is a zombie
    (never this process; a PID that is no valid one is not known gone)."""
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """Whether ``pid`` is a zombie, read where ``/proc`` shows this PID namespace (a
    ``/proc`` of another would show another process of that id)."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return False
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
