"""``atlas run --address`` when the Ray cluster stops under the run: the run stops itself
with one line once the cluster's GCS has been silent for the grace (``ATLAS_RAY_GRACE_S``;
Ray had ended the process after 60 s with its own line, exit 1, the campaign left ``running``), its lease
released at once, and ``atlas resume`` on a new cluster finishes exactly the budget. A
worker's call that fails while the GCS is silent is not a lost worker until the GCS
answers again."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import yaml

import archive
from tests.conftest import quadratic_spec
from tests.support.ray_nodes import RayNode, free_port
from tests.test_cli import ATLAS, atlas
from tests.test_scheduler import check_archive
from workers.executors import ray_executor
from workers.executors.base import ExecutorConfig
from workers.executors.ray_executor import ClusterLost, RayExecutor
from workers.runner import EvaluationTask, Outcome

pytestmark = [pytest.mark.ray, pytest.mark.skipif(sys.platform != "linux", reason="uses process sessions")]
NOTHING_THERE = "127.0.0.1:1"  # a GCS address nothing answers at (connection refused at once)


# -- in one process, on the module's local Ray ---------------------------------------
def _executor(target: str) -> RayExecutor:
    config = ExecutorConfig(kind="python", config={}, target=target, measure_names=["ma", "mb"],
                            campaign="quad", max_in_flight=2, timeout_s=600)
    executor = RayExecutor(config, address="127.0.0.1:6379")  # Ray is up already: the address is only named
    executor.start()
    return executor


def _watch(executor: RayExecutor, target: str) -> ray_executor._ClusterWatch:
    """Point ``executor``'s watch at ``target`` (as ``_init_ray`` does at an address)."""
    executor._watch = ray_executor._ClusterWatch(target)
    return executor._watch


def _poll_until(executor: RayExecutor, done: int, limit_s: float = 60.0) -> list[Outcome]:
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + limit_s
    while len(outcomes) < done and time.monotonic() < deadline:
        outcomes += executor.poll(0.2)
    return outcomes


_Killed = tuple[RayExecutor, ray_executor._ClusterWatch, ray_executor._Slot]


@contextlib.contextmanager
def _worker_killed_mid_evaluation(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Killed]:
    """An executor (no heartbeat) whose watch asks a GCS that is not there, and the slot whose
    worker ran evaluation 0 (``sleepy`` with a > 0.9: an hour) until it was killed; shut down
    after the block."""
    monkeypatch.setattr(ray_executor, "HEARTBEAT_S", 3600.0)
    executor = _executor("tests.support.evaluators:sleepy")
    try:
        watch = _watch(executor, NOTHING_THERE)
        executor.submit([EvaluationTask(0, 0, {"a": 0.95, "b": 0.5}, seed=0)])
        deadline = time.monotonic() + 60
        while not any(s.held and s.ready is None for s in executor._slots) and time.monotonic() < deadline:
            executor.poll(0.2)  # until a worker is set up and runs it
        busy = next(s for s in executor._slots if s.held)
        ray.kill(busy.actor)
        yield executor, watch, busy
    finally:
        executor.shutdown()


@pytest.mark.usefixtures("ray_cluster")
def test_a_silent_gcs_holds_the_outcomes_back_then_stops_the_run_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """While the GCS is silent, poll waits and hands nothing back (the outcomes stay with the
    workers); silent for the grace it raises ClusterLost, one line naming the cluster, the
    campaign and the resume; shutdown after it kills what it can without waiting on Ray."""
    monkeypatch.setenv("ATLAS_RAY_GRACE_S", "1.5")
    monkeypatch.setattr(ray_executor, "HEARTBEAT_S", 0.0)
    executor = _executor("tests.support.evaluators:quadratic")
    try:
        watch = _watch(executor, ray.get_runtime_context().gcs_address)
        executor.submit([EvaluationTask(i, i, {"a": 0.1 * i, "b": 0.5}, seed=i) for i in range(2)])
        assert [o.status for o in _poll_until(executor, 2)] == ["done", "done"]  # the real GCS answers
        executor.submit([EvaluationTask(i, i, {"a": 0.1 * i, "b": 0.5}, seed=i) for i in range(2, 4)])
        watch.target = NOTHING_THERE
        start = time.monotonic()
        with pytest.raises(ClusterLost) as info:
            while time.monotonic() - start < 10:
                assert executor.poll(0.2) == [], "outcomes taken while the GCS was silent"
        assert 1.5 <= time.monotonic() - start < 5
    finally:
        begun = time.monotonic()
        executor.shutdown()
        assert time.monotonic() - begun < 10
    (line,) = info.value.lines()
    assert line.startswith("the Ray cluster at 127.0.0.1:6379 stopped answering (its GCS gave no answer for 1.5 s")
    assert line.endswith("campaign 'quad' is stopped")  # the scheduler adds the resume in its caller's words


@pytest.mark.usefixtures("ray_cluster")
def test_a_gcs_back_within_the_grace_loses_nothing_and_a_dead_worker_is_lost_only_then(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed while the GCS is silent is not reported lost (the cluster may be what
    went): its failed call is kept; once the GCS answers again (within the grace) it is lost as
    ever, retried, and the run goes on."""
    with _worker_killed_mid_evaluation(monkeypatch) as (executor, watch, _):
        watch.asked = 0.0  # its last answer is old: the failed call asks it
        held_back = [o for _ in range(10) for o in executor.poll(0.2)]
        assert held_back == [] and watch.silent_since is not None
        watch.target = ray.get_runtime_context().gcs_address
        watch.asked = 0.0
        (lost,) = _poll_until(executor, 1)
        assert lost.status == "lost" and lost.evaluation_id == 0 and "worker lost" in (lost.error or "")
        executor.submit([EvaluationTask(1, 1, {"a": 0.2, "b": 0.5}, seed=1)])
        assert [o.status for o in _poll_until(executor, 1)] == ["done"]


@pytest.mark.usefixtures("ray_cluster")
def test_a_worker_call_failing_just_after_a_heartbeat_asks_the_gcs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """The GCS answered the heartbeat a moment ago, then the cluster stopped and a worker's
    call failed: the failure asks the GCS again, finds it silent, and holds the evaluation
    back. Before, an answer under a second old was taken as the GCS's word: the worker was
    lost and replaced, and killing that replacement later blocked the run past its grace."""
    with _worker_killed_mid_evaluation(monkeypatch) as (executor, watch, busy):
        watch.asked = time.monotonic()  # the heartbeat's answer, just now
        held_back = [o for _ in range(10) for o in executor.poll(0.2)]
        assert held_back == [] and watch.silent_since is not None
        assert busy in executor._slots, "the worker was taken for lost while the GCS was silent"


@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.parametrize("gcs_answers", [True, False])
def test_a_replacement_never_registered_is_killed_only_while_the_gcs_answers(
        monkeypatch: pytest.MonkeyPatch, gcs_answers: bool) -> None:
    """Replacing an actor that never answered ``ready``: with the GCS silent it is dropped,
    not killed (Ray's kill waits for its creation to be registered, which a gone GCS never
    does: the run blocked until Ray ended it); with the GCS answering it is killed as ever."""
    monkeypatch.setattr(ray_executor, "HEARTBEAT_S", 3600.0)
    executor = _executor("tests.support.evaluators:quadratic")
    killed: list[object] = []
    try:
        if not gcs_answers:
            _watch(executor, NOTHING_THERE)
        (slot, *_) = executor._slots
        slot.ready = slot.actor.ready.remote()  # as a replacement whose setup has not answered
        monkeypatch.setattr(ray_executor.ray, "kill", lambda actor, **_: killed.append(actor))
        executor._replace_actor(0)
        assert executor._slots[0] is not slot
        assert killed == ([slot.actor] if gcs_answers else [])
    finally:
        monkeypatch.undo()
        executor.shutdown()


# -- end to end: a cluster of our own, killed by process id --------------------------------
class _Head:
    """``ray start --head --block`` in a session of its own (no dashboard), on a free port;
    :meth:`kill` SIGKILLs every process of that session (GCS, raylet, workers): ours only."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
        self.port = free_port()
        self.node = RayNode(["--head", f"--port={self.port}", "--num-cpus=2", "--include-dashboard=false",
                             f"--temp-dir={self.tmp}", "--node-ip-address=127.0.0.1"])
        deadline = time.monotonic() + 90
        while self._alive_nodes() < 1:
            if time.monotonic() > deadline or self.node.proc.poll() is not None:
                self.node.stop()
                raise RuntimeError("the Ray head did not come up within 90 s")
            time.sleep(0.5)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _alive_nodes(self) -> int:
        import grpc
        from ray.core.generated import gcs_pb2, gcs_service_pb2, gcs_service_pb2_grpc

        with grpc.insecure_channel(self.address) as channel:
            stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
            try:
                reply = stub.GetAllNodeInfo(gcs_service_pb2.GetAllNodeInfoRequest(), timeout=2)
            except grpc.RpcError:
                return 0
        return sum(1 for n in reply.node_info_list if n.state == gcs_pb2.GcsNodeInfo.ALIVE)

    def kill(self) -> None:
        self.node.kill(signal.SIGKILL)

    def stop(self) -> None:
        self.node.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def heads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_Head]]:
    """Ray heads the test starts (``heads.append(_Head())``), every one stopped at the end.
    Their workers inherit this environment: each evaluation sleeps 0.5 s."""
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.5")
    started: list[_Head] = []
    try:
        yield started
    finally:
        for head in started:
            head.stop()


def _spec(tmp_path: Path, budget: int) -> Path:
    """A campaign of ``budget`` evaluations of 0.5 s, two at a time (the head's 2 CPUs)."""
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"},
        search__budget=budget, search__batch_size=2, search__max_in_flight=2,
        resources={"timeout_s": 60, "max_retries": 2})))
    return spec


def _run_until_done(tmp_path: Path, address: str, budget: int, done: int) -> subprocess.Popen:
    """``atlas run --address`` in a subprocess, once ``done`` evaluations are written."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    proc = subprocess.Popen([*ATLAS, "run", str(_spec(tmp_path, budget)), "--address", address], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _done(url) < done and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if proc.poll() is not None or time.monotonic() >= deadline:
        proc.kill()
        raise AssertionError(f"the run did not get to {done} evaluations: {proc.communicate()}")
    return proc


def _done(url: str) -> int:
    with contextlib.suppress(archive.StorageError, archive.CampaignNotFound):
        return len(archive.open(url).campaign("quad").evaluations(status="done"))
    return 0


@pytest.mark.slow
def test_stopping_the_cluster_under_a_run_stops_it_in_one_line_and_it_resumes(tmp_path: Path, heads: list[_Head],
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill the cluster's processes (GCS, raylet, workers) mid-run: within the grace and the
    shutdown the run ends, exit 2, with one ``error:`` line naming the cluster and the resume
    (before: Ray ended it after 60 s with its own line, exit 1); ``atlas status`` says
    ``stopped`` at once, and ``atlas resume --address`` on a new cluster runs exactly the
    budget."""
    budget = 30  # over the map's 25 cells: no warning on stderr
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    grace = 5.0
    monkeypatch.setenv("ATLAS_RAY_GRACE_S", str(grace))  # the run's, in its subprocess
    heads.append(_Head())
    proc = _run_until_done(tmp_path, heads[0].address, budget, done=4)
    try:
        heads[0].kill()
        killed = time.monotonic()
        _, stderr = proc.communicate(timeout=grace + 45)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the run did not end within {grace + 45:g} s of the kill: {proc.communicate()}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - killed
    assert proc.returncode == 2, stderr
    assert grace <= took < grace + ray_executor.PROBE_S + 15, took
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert f"the Ray cluster at {heads[0].address} stopped answering" in errors[0]
    assert f"`atlas resume quad --address {heads[0].address}`" in errors[0] and "Failed to connect to GCS" not in stderr

    status = atlas("status", "quad", "--json", cwd=tmp_path)
    row = json.loads(status.stdout)
    assert row["status"] == "stopped" and 4 <= row["finished"] < budget, row

    heads.append(_Head())
    done = atlas("resume", "quad", "--address", heads[1].address, cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr
    assert f"quad: {budget} evaluations (0 failed)" in done.stdout
    check_archive(url, "quad", budget)
