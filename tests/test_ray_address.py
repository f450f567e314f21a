"""``atlas run --address``: what is not a Ray cluster's address is one line within seconds,
refs are matched the same under Ray Client, and the pool fits the nodes one by one."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from tests.conftest import quadratic_spec
from tests.support.loopback import LoopbackServer
from tests.test_edges import assert_one_line_errors, campaign_rows, invoke
from workers.executors import ray_executor
from workers.executors.base import ExecutorConfig, ExecutorError
from workers.executors.ray_executor import RayExecutor, check_reachable
from workers.runner import EvaluationTask

pytestmark = pytest.mark.ray
FORMS = "HOST:6379"




@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback socket that listens and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture
def no_ray_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ray.init`` fails the test where it is reached (it would hang for minutes)."""
    def refuse(**kwargs: Any) -> None:
        raise AssertionError(f"ray.init reached with {kwargs.get('address')}")

    monkeypatch.setattr(ray_executor.ray, "init", refuse)


def _config(**overrides: Any) -> ExecutorConfig:
    return ExecutorConfig(kind="python", config={}, target="tests.support.evaluators:quadratic",
                          measure_names=["ma", "mb"], **overrides)


def _start_refused(address: str) -> str:
    """The one line a start at ``address`` is refused with (no Ray left behind)."""
    with pytest.raises(ExecutorError) as info:
        RayExecutor(_config(), address=address).start()
    assert not ray.is_initialized()
    text = str(info.value)
    assert "\n" not in text and address in text and FORMS in text, text
    return text


# -- 2: something answers, but not a GCS --------------------------------------------
@pytest.mark.usefixtures("no_ray_init")
def test_an_http_server_at_the_address_is_not_a_gcs(http_port: int) -> None:
    """The dashboard's port, or any HTTP server: Ray's 'Failed to get cluster ID' every 40 s, for ever."""
    start = time.monotonic()
    assert "not a Ray cluster's GCS: an HTTP server answers" in _start_refused(f"127.0.0.1:{http_port}")
    with pytest.raises(ExecutorError, match=r"cannot reach the Ray cluster at 127\.0\.0\.1:1: Connection refused"):
        check_reachable("127.0.0.1:1")  # refused: as fast as before
    assert time.monotonic() - start < 5


class RedisLike(LoopbackServer):
    """A loopback service that is neither gRPC nor HTTP: it answers what it reads as Redis
    does (Redis listens on 6379, Ray's default GCS port)."""

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            with contextlib.suppress(OSError):
                if conn.recv(1024):
                    conn.sendall(b"-ERR unknown command 'PRI', with args beginning with:\r\n")


@pytest.fixture
def redis_like_port() -> Iterator[int]:
    with RedisLike() as server:
        yield server.port


@pytest.mark.usefixtures("no_ray_init")
def test_a_service_that_is_not_http_is_not_called_an_http_server(redis_like_port: int) -> None:
    """Redis on 6379 was "an HTTP server answers there (the dashboard's port?)", and `atlas
    submit` then advised http://HOST:6379, which failed in turn."""
    said = _start_refused(f"127.0.0.1:{redis_like_port}")
    assert "not a Ray cluster's GCS: something other than Ray answers there (it replied \"-ERR unknown command" in said
    assert "HTTP" not in said


@pytest.mark.usefixtures("no_ray_init")
def test_a_socket_that_never_answers_is_refused_after_the_probe(silent_port: int, monkeypatch) -> None:
    monkeypatch.setattr(ray_executor, "PROBE_S", 1.0)
    start = time.monotonic()
    assert "gave no gRPC answer within 1 s" in _start_refused(f"127.0.0.1:{silent_port}")
    assert time.monotonic() - start < 5


# -- 3 and 4: malformed addresses, and whatever ray.init raises --------------------------
@pytest.mark.usefixtures("no_ray_init")
@pytest.mark.parametrize(("address", "said"), [("127.0.0.1", "is not a Ray cluster's address (HOST:PORT)"),
                                               ("localhost:abc", "is not a Ray cluster's address"),
                                               ("http://127.0.0.1:8265", "is an HTTP address"),
                                               ("https://head.example:8265", "is an HTTP address")])
def test_a_malformed_or_http_address_is_refused_at_once(address: str, said: str) -> None:
    """No port: a 110-line ``ValueError`` traceback; http://: 'Name or service not known'."""
    start = time.monotonic()
    text = _start_refused(address)
    assert said in text and "atlas submit" in text
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("raised", [ValueError("Invalid address format: x"),
                                    ConnectionError("ray client connection timeout"),
                                    RuntimeError("Version mismatch"), TimeoutError("timed out\nmore")])
def test_any_failure_of_ray_init_at_an_address_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                           raised: Exception) -> None:
    def init(**kwargs: Any) -> None:
        raise raised

    monkeypatch.setattr(ray_executor.ray, "init", init)
    text = _start_refused("auto")
    assert f"cannot join the Ray cluster at auto: {type(raised).__name__}: {str(raised).splitlines()[0]}" in text


@pytest.mark.parametrize("address", ["127.0.0.1", "http://127.0.0.1:8265"])
def test_atlas_run_names_the_address_forms_in_one_line(tmp_path: Path, address: str) -> None:
    db = tmp_path / "a.db"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(search__budget=4)))
    result = invoke("run", str(path), "--storage", f"sqlite:///{db}", "--address", address)
    error = assert_one_line_errors(result)[0]
    assert address in error and "HOST:6379" in error and "atlas submit" in error, error
    assert campaign_rows(db) == 0 and not ray.is_initialized()


# -- 5: what one node holds, not the cluster's sum --------------------------------------
def _nodes(monkeypatch: pytest.MonkeyPatch, *nodes: dict[str, float], dead: dict[str, float] | None = None) -> None:
    """Fake ``ray.nodes()`` (and its sum, ``ray.cluster_resources()``) for a cluster of ``nodes``."""
    listed = [{"Alive": True, "Resources": n} for n in nodes] + ([{"Alive": False, "Resources": dead}] if dead else [])
    total: dict[str, float] = {}
    for node in nodes:
        for name, amount in node.items():
            total[name] = total.get(name, 0.0) + amount
    monkeypatch.setattr(ray_executor.ray, "nodes", lambda: listed)
    monkeypatch.setattr(ray_executor.ray, "cluster_resources", lambda: total)


@pytest.mark.parametrize(("nodes", "config", "said"), [
    ([{"CPU": 2.0}, {"CPU": 2.0}], {"num_cpus": 3}, "ask for 3 of 'CPU' each but the Ray cluster has 2 on its "
                                                   "largest node (4 over 2 alive node(s))"),
    ([{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}], {"num_gpus": 2}, "ask for 2 of 'GPU' each but the Ray "
                                                                             "cluster has 1 on its largest node"),
    ([{"CPU": 4.0, "h100": 1.0}, {"CPU": 4.0, "h100": 1.0}], {"custom_resources": {"h100": 2}},
     "ask for 2 of 'h100' each"),
    ([{"CPU": 1.0, "GPU": 1.0}, {"CPU": 4.0}], {"num_cpus": 2, "num_gpus": 1},
     "ask for CPU 2, GPU 1 each but no node of the Ray cluster has all of it"),
])
def test_an_actor_no_single_node_can_hold_is_refused(monkeypatch: pytest.MonkeyPatch, nodes: list[dict[str, float]],
                                                     config: dict[str, Any], said: str) -> None:
    """Two 2-CPU nodes and 3 CPUs an evaluation: the check passed on the sum, the campaign
    was written and the actor stayed PENDING_CREATION for minutes."""
    _nodes(monkeypatch, *nodes)
    with pytest.raises(ExecutorError) as info:
        RayExecutor(_config(**config))._pool_size()
    assert said in str(info.value)


def test_a_dead_node_holds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    _nodes(monkeypatch, {"CPU": 2.0}, dead={"CPU": 8.0})
    monkeypatch.setattr(ray_executor.ray, "cluster_resources", lambda: {"CPU": 10.0})
    with pytest.raises(ExecutorError, match="has 2 on its largest node"):
        RayExecutor(_config(num_cpus=3))._pool_size()


@pytest.mark.parametrize(("nodes", "config", "size"), [
    ([{"CPU": 3.0}, {"CPU": 3.0}], {"num_cpus": 2}, 2),  # the sum (6) would say 3
    ([{"CPU": 1.5, "GPU": 1.0}, {"CPU": 1.5, "GPU": 1.0}], {"num_cpus": 1, "num_gpus": 0.5}, 2),
])
def test_the_pool_is_what_the_nodes_hold_one_by_one(monkeypatch: pytest.MonkeyPatch, nodes: list[dict[str, float]],
                                                    config: dict[str, Any], size: int) -> None:
    _nodes(monkeypatch, *nodes)
    assert RayExecutor(_config(**config))._pool_size() == size


def test_workers_that_reserve_nothing_are_one_per_cpu(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """``num_cpus: 0`` and nothing else reserved: Ray places any number of actors, and the
    pool was ``max_in_flight`` of them (1000 processes on two 2-CPU nodes). One per CPU,
    with a warning naming the fraction that places more; a fraction is still honoured."""
    _nodes(monkeypatch, {"CPU": 2.0}, {"CPU": 2.0})
    with caplog.at_level("WARNING", logger="entropy_atlas.executor"):
        assert RayExecutor(_config(num_cpus=0, max_in_flight=1000))._pool_size() == 4
    assert "4 workers, one per CPU of the Ray cluster, not max_in_flight's 1000" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="entropy_atlas.executor"):
        assert RayExecutor(_config(num_cpus=0, max_in_flight=3))._pool_size() == 3
    assert caplog.text == ""
    assert RayExecutor(_config(num_cpus=0.25, max_in_flight=1000))._pool_size() == 16


# -- last: these share the module's private Ray (``ray_cluster``); the tests above need none
@pytest.mark.usefixtures("ray_cluster")
def test_a_real_gcs_passes_and_its_port_under_ray_client_is_named() -> None:
    """The probe must know a GCS when it sees one; ``ray://`` on the GCS's port was a 36 s
    ``ConnectionError`` traceback."""
    gcs = ray.get_runtime_context().gcs_address
    check_reachable(gcs)
    with pytest.raises(ExecutorError, match=r"ray://.* is not a Ray cluster's Ray Client server: that port is the "
                                            r"GCS's; .*HOST:6379"):
        check_reachable(f"ray://{gcs}")


# -- 1: Ray Client's refs ---------------------------------------------------------
@pytest.mark.usefixtures("ray_cluster")
def test_results_come_back_when_ray_wait_hands_back_new_ref_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under Ray Client ``ray.wait`` returns new ``ClientObjectRef`` objects (equal, not
    identical): ``poll`` never collected anything and the run sat at 0/30."""
    real_wait = ray.wait

    def client_wait(refs: list[Any], **kwargs: Any) -> tuple[list[Any], list[Any]]:
        ready, rest = real_wait(refs, **kwargs)
        return [ray.ObjectRef(r.binary()) for r in ready], [ray.ObjectRef(r.binary()) for r in rest]

    executor = RayExecutor(_config(max_in_flight=2))
    executor.start()
    try:
        monkeypatch.setattr(ray_executor.ray, "wait", client_wait)
        executor.submit([EvaluationTask(i, i, {"a": 0.1 * i, "b": 0.5}, seed=i) for i in range(4)])
        outcomes: list[Any] = []
        deadline = time.monotonic() + 30
        while len(outcomes) < 4 and time.monotonic() < deadline:
            outcomes += executor.poll(0.5)
        assert sorted(o.evaluation_id for o in outcomes) == [0, 1, 2, 3]
        assert all(o.status == "done" for o in outcomes), outcomes
    finally:
        monkeypatch.setattr(ray_executor.ray, "wait", real_wait)
        executor.shutdown()
