"""On a real Ray cluster started by the test: submit the scheduler as a Ray job, follow
its log, and lose a worker node mid-campaign."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import archive
from tests.conftest import quadratic_spec
from tests.support.background import run_in_background
from tests.support.ray_nodes import RayCluster
from tests.test_cli import atlas
from tests.test_scheduler import check_archive

pytestmark = [pytest.mark.ray, pytest.mark.skipif(sys.platform != "linux", reason="uses process groups")]


@pytest.fixture
def cluster() -> Iterator[RayCluster]:
    c = RayCluster(head_cpus=1)
    try:
        yield c
    finally:
        c.stop()


def test_submit_runs_the_scheduler_as_a_ray_job(tmp_path: Path, cluster: RayCluster) -> None:
    """A relative SQLite URL names the file in the submitter's directory (not in Ray's
    package folder on the node), so `atlas status` here reads what the job wrote."""
    url = "sqlite:///atlas.db"
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(name="submitted", search__budget=30)))
    done = atlas("submit", str(spec), "--address", cluster.dashboard, "--storage", url, "--wait",
                 "--python", sys.executable, "--env", f"PYTHONPATH={os.environ['PYTHONPATH']}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[0]
    assert job_id.startswith("atlas-submitted-") and "SUCCEEDED" in done.stdout
    assert f"storage: sqlite:///{tmp_path / 'atlas.db'}" in done.stderr
    status = json.loads(atlas("status", "submitted", "--json", "--storage", url, cwd=tmp_path).stdout)
    assert status["finished"] == 30 and status["status"] == "finished"
    log = atlas("logs", "submitted", "--address", cluster.dashboard, cwd=tmp_path)
    assert log.returncode == 0 and "submitted: 30 evaluations" in log.stdout
    followed = atlas("logs", "submitted", "--address", cluster.dashboard, "--follow", cwd=tmp_path, timeout=60)
    assert followed.returncode == 0 and "submitted: 30 evaluations" in followed.stdout


def test_bad_file_never_reaches_the_cluster(tmp_path: Path, cluster: RayCluster) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=-1)))
    done = atlas("submit", str(spec), "--address", cluster.dashboard, cwd=tmp_path)
    assert done.returncode == 2 and "search.budget" in done.stderr
    from ray.job_submission import JobSubmissionClient

    assert JobSubmissionClient(cluster.dashboard).list_jobs() == []


def test_losing_a_worker_node_mid_campaign(tmp_path: Path, cluster: RayCluster) -> None:
    """Evaluations need the `w` resource, which only the two worker nodes have; one of them
    is killed while one of its processes is inside an evaluation: that evaluation is retried
    on the other node, nothing is lost. The nodes inherit the evaluator's settings from this
    process's environment (a worker's environment is its node's, not the driver's)."""
    busy = tmp_path / "busy"
    busy.mkdir()
    os.environ.update(ATLAS_TEST_SLEEP="0.3", ATLAS_TEST_BUSY_DIR=str(busy))
    import ray

    try:
        first = cluster.add_worker(cpus=1, resources='{"w": 1}')
        cluster.add_worker(cpus=1, resources='{"w": 1}')
        ray.init(address=cluster.address)
        deadline = time.time() + 60
        while ray.cluster_resources().get("w", 0) < 2 and time.time() < deadline:
            time.sleep(0.5)
        assert ray.cluster_resources().get("w", 0) == 2
        url = f"sqlite:///{tmp_path / 'atlas.db'}"
        spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"},
                              search__budget=60, search__batch_size=2, search__max_in_flight=4,
                              resources={"num_cpus": 0, "timeout_s": 60, "max_retries": 3, "custom": {"w": 1}})
        worker, result = run_in_background(spec, url, executor="ray")
        done = 0
        while worker.is_alive():
            time.sleep(0.1)
            if (tmp_path / "atlas.db").exists():
                # the file is there before its schema, and the schema before the campaign's row
                with contextlib.suppress(archive.StorageError, archive.CampaignNotFound):
                    done = len(archive.open(url).campaign("quad").evaluations(status="done"))
            node_busy = {p.name for p in busy.iterdir()} & {str(pid) for pid in first.session_pids()}
            if done >= 10 and node_busy:
                break
        assert worker.is_alive(), "the campaign ended before the node could be killed mid-evaluation"
        first.kill(signal.SIGKILL)
        worker.join(timeout=600)
    finally:
        ray.shutdown()
        for key in ("ATLAS_TEST_SLEEP", "ATLAS_TEST_BUSY_DIR"):
            os.environ.pop(key, None)
    assert "error" not in result, result.get("error")
    assert result["stats"].finished == 60
    check_archive(url, "quad", 60)
    rows = archive.open(url).campaign("quad").evaluations()
    assert any(r["attempts"] > 1 for r in rows), "the killed node had evaluations in flight"
    assert all(r["status"] == "done" for r in rows)
