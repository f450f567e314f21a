"""Per-worker resource caps that the operating system enforces.

``cap_memory_growth(mb)`` sets the soft ``RLIMIT_DATA`` of this process to its current data
segment (``VmData`` in ``/proc/self/status``: heap and private anonymous mappings, which is
where NumPy and torch CPU tensors live) plus ``mb`` MiB. An allocation past it raises
``MemoryError`` in the evaluation that asked, which then fails with that reason while the
worker and its node stay healthy. Linux only; elsewhere it does nothing.
"""

from __future__ import annotations

import resource
from pathlib import Path


def data_segment_bytes() -> int | None:
    """This process's ``VmData`` in bytes, or None where /proc does not tell."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmData:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cap_memory_growth(mb: float) -> int | None:
    """Allow the data segment to grow by at most ``mb`` MiB from now; returns the limit in
    bytes (None where it cannot be set)."""
    current = data_segment_bytes()
    if current is None:
        return None
    limit = current + int(mb * 2**20)
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    return limit
