"""Run the scheduler on a Ray cluster as a Ray job (the Ray Jobs API).

``submit`` validates the campaign locally (a bad file never reaches the cluster), then
uploads it as the job's working directory and starts ``atlas run campaign.yaml
--address auto`` there; the job carries ``{"atlas_campaign": NAME}`` in its metadata, so
``logs`` can find a campaign's latest job. Progress lives in the database, so ``atlas
status`` works wherever the scheduler runs. The project must be installed on the
cluster's nodes (see deploy/Dockerfile).
"""

from __future__ import annotations

import shlex
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from search.spec import CampaignSpec

METADATA_KEY = "atlas_campaign"


def _client(address: str) -> Any:
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as exc:
        raise ConnectionError(f"cannot reach the Ray job server at {address}: {exc}") from None


def submit(spec: CampaignSpec, address: str, storage: str, env_vars: dict[str, str] | None = None,
           python: str = "python") -> str:
    """Submit the campaign's scheduler as a Ray job; returns the job id."""
    client = _client(address)
    workdir = Path(tempfile.mkdtemp(prefix="atlas-submit-"))
    (workdir / "campaign.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    entrypoint = " ".join(shlex.quote(a) for a in [
        python, "-m", "search.cli", "run", "campaign.yaml", "--storage", storage, "--address", "auto",
        "--map", f"atlas-maps/{spec.name}.png",
    ])
    job_id = f"atlas-{spec.name}-{uuid.uuid4().hex[:8]}"
    return client.submit_job(
        entrypoint=entrypoint, submission_id=job_id,
        runtime_env={"working_dir": str(workdir), "env_vars": {"RAY_AUTH_MODE": "disabled", **(env_vars or {})}},
        metadata={METADATA_KEY: spec.name},
    )


def latest_job(address: str, name: str) -> Any:
    jobs = [j for j in _client(address).list_jobs() if (j.metadata or {}).get(METADATA_KEY) == name]
    if not jobs:
        raise LookupError(f"no Ray job for campaign {name!r} at {address}")
    return max(jobs, key=lambda j: j.start_time or 0)


def logs(address: str, name: str, follow: bool = False) -> Iterator[str]:
    """The log of the campaign's latest job: all of it, or followed until the job ends."""
    client = _client(address)
    job = latest_job(address, name)
    if not follow:
        yield client.get_job_logs(job.submission_id)
        return
    import asyncio

    async def tail() -> list[str]:
        out = []
        async for chunk in client.tail_job_logs(job.submission_id):
            out.append(chunk)
        return out

    yield from asyncio.run(tail())


def wait(address: str, job_id: str, timeout_s: float = 600) -> str:
    """Block until the job ends; its final status."""
    from ray.job_submission import JobStatus

    client = _client(address)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = client.get_job_status(job_id)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            return str(status.value)
        time.sleep(1)
    raise TimeoutError(f"job {job_id} still running after {timeout_s:g} s")
