"""Helpers shared by the benchmarks (not part of the package)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def noop(params: dict, ctx: object) -> dict:
    """The no-op evaluator of the throughput benchmark."""
    return {"objective": float(params["a"]), "measures": {"ma": float(params["a"]), "mb": float(params["b"])}}


class Sleeper:
    """Sleeps ``config.sleep_s`` seconds per evaluation, then answers like :func:`noop`."""

    def setup(self, config: dict, ctx: object) -> None:
        self.sleep_s = float(config.get("sleep_s", 0.05))

    def evaluate(self, params: dict, ctx: object) -> dict:
        import time

        time.sleep(self.sleep_s)
        return noop(params, ctx)


@contextlib.contextmanager
def scratch_storage(kind: str, workdir: Path, postgres: str | None, name: str) -> Iterator[str]:
    """A storage URL for one benchmark run: a new SQLite file ``NAME-<hex>.db`` in ``workdir``
    (``kind`` sqlite), or a fresh schema ``NAME_<hex>`` of the PostgreSQL database at
    ``postgres`` (``kind`` postgresql), dropped with everything in it afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / f'{name}-{uuid.uuid4().hex[:8]}.db'}"
        return
    if not postgres:
        raise SystemExit("postgresql: give --postgres URL or set ATLAS_TEST_POSTGRES_URL")
    from archive.engine import scratch_schema

    with scratch_schema(postgres, name) as url:
        yield url


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` timed calls of ``fn``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (else what ``platform`` says)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu
