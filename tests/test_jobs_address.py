"""``atlas submit`` / ``atlas logs`` ``--address``: checked before Ray is asked, so a port
nothing listens at is one ``error:`` line within seconds, naming the address. Before, the
GCS form ``HOST:PORT`` (what ``atlas run --address`` takes) waited 41 s and printed three
raw Ray C++ log lines first. A plain ``HOST:PORT`` is the cluster's GCS, as Ray reads it:
its job server is the dashboard address the GCS holds (a fake GCS here: no Ray cluster)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
import yaml
from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

from search import jobs
from tests.conftest import quadratic_spec
from tests.test_edges import assert_one_line_errors, invoke

ROOT = Path(__file__).resolve().parent.parent
FORMS = "http://HEAD:8265"
FAST_S = 10.0  # generous: the check itself takes milliseconds; the rest is the CLI's start and the file's check


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, read, closed)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return int(port)


def _spec(tmp_path: Path) -> Path:
    """A campaign whose target is an installed module (no 'not shipped' warning on stderr)."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(name="sub", evaluator={"kind": "python", "target": "json:loads"})))
    return path


def _atlas(*args: str) -> tuple[int, str, float]:
    """``python -m search.cli ARGS`` in a process of its own (so Ray's C++ lines, written to
    fd 2, would show): exit code, stderr, seconds taken."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stderr, time.monotonic() - start


def _one_error_line(code: int, stderr: str, address: str) -> str:
    """Exit 2 and stderr exactly one ``error:`` line naming ``address`` and the job server's form."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, (code, stderr)
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    assert address in lines[0] and FORMS in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["submit", "logs"])
def test_a_gcs_address_nothing_listens_at_is_one_line_within_seconds(command: str, tmp_path: Path) -> None:
    """The walkthrough's case: 41 s and three Ray C++ log lines before; now one line."""
    address = f"127.0.0.1:{_closed_port()}"
    args = (["submit", str(_spec(tmp_path)), "--storage", f"sqlite:///{tmp_path / 'x.db'}"] if command == "submit"
            else ["logs", "sub"])
    code, stderr, took = _atlas(*args, "--address", address)
    line = _one_error_line(code, stderr, address)
    assert "Connection refused" in line and "GCS" in line, line
    if command == "logs":  # submit checks the file first (seconds on a busy machine): timed below without it
        assert took < FAST_S, took


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "localhost:{port}", "http://127.0.0.1:{port}", "[::1]:{port}",
                                  "ray://127.0.0.1:{port}"])  # Ray Client's: 40 s and Ray's own lines before
def test_every_address_form_nothing_listens_at_is_refused_at_once(
        form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Timed without the check of the campaign file (it comes first and is not what is measured)."""
    from search import api

    monkeypatch.setattr(api, "check_campaign", lambda *args, **kwargs: None)
    address = form.format(port=_closed_port())
    start = time.monotonic()
    result = invoke("submit", str(_spec(tmp_path)), "--address", address, "--storage", f"sqlite:///{tmp_path / 'x.db'}")
    took = time.monotonic() - start
    errors = assert_one_line_errors(result)
    assert len(errors) == 1 and address in errors[0] and FORMS in errors[0], result.stderr
    assert took < FAST_S, took


@pytest.mark.parametrize("address", ["127.0.0.1", "head:port", "http://:8265", "http://head:99999"])
def test_an_address_of_no_form_is_refused_naming_the_forms(address: str) -> None:
    with pytest.raises(jobs.JobServerUnreachable, match=FORMS) as info:
        jobs.job_server_url(address)
    assert "\n" not in str(info.value)




class _FakeGcs(gcs_service_pb2_grpc.NodeInfoGcsServiceServicer, gcs_service_pb2_grpc.InternalKVGcsServiceServicer):
    """Answers as a GCS: a cluster id, and ``dashboard`` (None: no such key) for the dashboard's address."""

    def __init__(self) -> None:
        self.dashboard: str | None = None

    def GetClusterId(self, request: object, context: object) -> gcs_service_pb2.GetClusterIdReply:
        return gcs_service_pb2.GetClusterIdReply(cluster_id=b"x" * 28)

    def InternalKVGet(self, request: gcs_service_pb2.InternalKVGetRequest,
                      context: object) -> gcs_service_pb2.InternalKVGetReply:
        if (request.key, request.namespace) != (b"dashboard", b"dashboard") or self.dashboard is None:
            return gcs_service_pb2.InternalKVGetReply(status=gcs_service_pb2.GcsStatus(code=17, message="not found"))
        return gcs_service_pb2.InternalKVGetReply(value=self.dashboard.encode())


@pytest.fixture
def gcs() -> Iterator[tuple[_FakeGcs, str]]:
    """A fake GCS on a loopback port, and its ``HOST:PORT``."""
    fake = _FakeGcs()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    gcs_service_pb2_grpc.add_NodeInfoGcsServiceServicer_to_server(fake, server)
    gcs_service_pb2_grpc.add_InternalKVGcsServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, f"127.0.0.1:{port}"
    server.stop(0)


def test_a_gcs_address_gives_the_job_server_it_names(gcs: tuple[_FakeGcs, str], http_port: int) -> None:
    """``HOST:6379`` as Ray reads it: the GCS holds the dashboard's address, the job server's."""
    fake, address = gcs
    fake.dashboard = f"127.0.0.1:{http_port}"
    assert jobs.job_server_url(address) == f"http://127.0.0.1:{http_port}"


def test_a_gcs_naming_no_job_server_or_an_unreachable_one_is_one_line(gcs: tuple[_FakeGcs, str]) -> None:
    fake, address = gcs
    with pytest.raises(jobs.JobServerUnreachable, match=f"the Ray cluster at {address} names no job server"):
        jobs.job_server_url(address)
    fake.dashboard = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(jobs.JobServerUnreachable, match=f"cannot reach the Ray job server at http://{fake.dashboard} "
                                                        f"\\(named by the GCS at {address}\\): Connection refused"):
        jobs.job_server_url(address)


def test_the_dashboard_port_without_http_is_told_to_add_it(http_port: int) -> None:
    """``HEAD:8265`` with no scheme is a GCS address to Ray, which would wait on it; the line says to write http://."""
    address = f"127.0.0.1:{http_port}"
    start = time.monotonic()
    with pytest.raises(jobs.JobServerUnreachable, match=f"write http://{address}"):
        jobs.job_server_url(address)
    assert time.monotonic() - start < FAST_S


def test_an_http_address_that_answers_is_taken_as_given(http_port: int) -> None:
    assert jobs.job_server_url(f"http://127.0.0.1:{http_port}") == f"http://127.0.0.1:{http_port}"
    assert jobs.job_server_url("auto") == "auto"  # left to Ray (ray:// is probed: above)
