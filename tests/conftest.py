"""Shared fixtures: storages (SQLite always, PostgreSQL when ATLAS_TEST_POSTGRES_URL is set),
campaign specs, and one local Ray cluster for the tests that need it."""

from __future__ import annotations

import http.server
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Ray workers and CLI subprocesses import test evaluators as `tests.support.evaluators:…`.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and Python then installs no KeyboardInterrupt handler: the tests of Ctrl-C
# (and the processes they start, which inherit it too) need the handler a terminal's run has.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

POSTGRES_URL = os.environ.get("ATLAS_TEST_POSTGRES_URL")
POSTGRES_SKIP = "ATLAS_TEST_POSTGRES_URL is not set (.ci/run sets it to the local PostgreSQL server)"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'atlas.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP)
    from archive.engine import scratch_schema

    with scratch_schema(POSTGRES_URL, "atlas_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every archive test runs on SQLite and again on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'atlas.db'}"
    return request.getfixturevalue("postgres_url")


def finished_quadratic(folder: Path, budget: int, batch: int) -> Path:
    """A SQLite file in ``folder`` holding campaign ``q`` (:func:`quadratic_spec`) run to
    ``budget`` on the inline executor, ``batch`` asked and in flight at a time."""
    from search import api

    path = folder / "made.db"
    spec = quadratic_spec(name="q", search__budget=budget, search__batch_size=batch, search__max_in_flight=batch)
    api.run(spec, storage=f"sqlite:///{path}", executor="inline")
    return path


def quadratic_spec(**overrides: Any) -> dict[str, Any]:
    """A small campaign over (a, b) in [0, 1]^2 with a 5x5 map."""
    spec: dict[str, Any] = {
        "name": "quad",
        "evaluator": {"kind": "python", "target": "tests.support.evaluators:quadratic"},
        "space": {"a": {"type": "float", "low": 0.0, "high": 1.0},
                  "b": {"type": "float", "low": 0.0, "high": 1.0}},
        "objective": {"name": "score", "direction": "maximize"},
        "measures": [{"name": "ma", "low": 0.0, "high": 1.0, "bins": 5},
                     {"name": "mb", "low": 0.0, "high": 1.0, "bins": 5}],
        "search": {"algorithm": "map-elites", "budget": 60, "batch_size": 10, "max_in_flight": 20,
                   "seed": 3},
        "resources": {"timeout_s": 30, "max_retries": 2},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            spec[section][field] = value
        else:
            spec[section] = value
    return spec


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster for one test module's tests (started and shut down here)."""
    import ray

    started = False
    if not ray.is_initialized():
        # "local": a private head, never a cluster named by a stale /tmp/ray/ray_current_cluster
        ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
        started = True
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures saved while the test runs (each as it was when saved)."""
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1])
    return saved


@pytest.fixture
def http_port() -> Iterator[int]:
    """A loopback ``http.server`` (what answers on a dashboard's port)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


_EXIT_STATUS: list[int] = []  # the session's exit status, for pytest_unconfigure


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the suite's process once pytest has reported, by the session's exit status: the
    ``atexit`` handlers run first (Ray's shutdown of a cluster a test left, the engines'
    disposal), then ``os._exit``, not the interpreter's teardown of every module. A full
    CI run crashed in that teardown (SIGSEGV, exit 139, after ``3001 passed``) and so
    failed though every test passed; the tests' outcome is the exit status either way.
    ``ATLAS_TEST_PLAIN_EXIT=1`` keeps the interpreter's own exit (to look for the crash,
    with ``python -X faulthandler``)."""
    if os.environ.get("ATLAS_TEST_PLAIN_EXIT") == "1" or not _EXIT_STATUS:
        return
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[-1])
