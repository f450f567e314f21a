"""``atlas submit`` and ``atlas logs`` against a fake Ray job server (``search.jobs._client``
monkeypatched): the storage URL the job gets, a transient refusal retried, the upload's
folder removed, a local evaluator module named, ``--wait`` without a deadline, and
``--follow`` printing each chunk as it comes. The real cluster is ``tests/test_cluster.py``'s."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from ray.job_submission import JobStatus

from search import cli, jobs
from tests.conftest import quadratic_spec

AGAIN = "Request failed with status code 500: No available agent to submit job, please try again later."


class FakeJobServer:
    """What ``JobSubmissionClient`` offers ``search.jobs``, scripted by the test."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []
        self.refusals: list[Exception] = []
        self.workdirs: list[Path] = []
        self.statuses: list[Any] = [JobStatus.SUCCEEDED]
        self.chunks: list[Any] = []

    def submit_job(self, **request: Any) -> str:
        workdir = Path(request["runtime_env"]["working_dir"])
        assert (workdir / "campaign.yaml").exists()  # the upload happens during the call
        self.workdirs.append(workdir)
        if self.refusals:
            raise self.refusals.pop(0)
        self.submitted.append(request)
        return str(request["submission_id"])

    def list_jobs(self) -> list[Any]:
        return [SimpleNamespace(metadata=dict(r["metadata"]), submission_id=r["submission_id"], start_time=i)
                for i, r in enumerate(self.submitted)]  # started in the order submitted

    def get_job_logs(self, job_id: str) -> str:
        return f"the whole log of {job_id}\n"

    def get_job_status(self, job_id: str) -> Any:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(status, Exception):
            raise status
        return status

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        for chunk in self.chunks:
            if callable(chunk):
                chunk = chunk()
            await asyncio.sleep(0.05)
            yield chunk


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeJobServer:
    fake = FakeJobServer()
    monkeypatch.setattr(jobs, "_client", lambda address: fake)
    monkeypatch.setattr(jobs, "SUBMIT_BACKOFF_S", 0.01, raising=False)
    monkeypatch.delenv("ATLAS_STORAGE", raising=False)
    return fake


def atlas(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``atlas ARGS`` in this process as ``main`` runs it: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["atlas", *args])
    code = cli._run_app()
    out, err = capsys.readouterr()
    return code, out, err


def spec_file(tmp_path: Path, **overrides: Any) -> Path:
    """A campaign whose target an installed module holds (``tests`` is not one: it would be warned of)."""
    path = tmp_path / "c.yaml"
    overrides.setdefault("evaluator", {"kind": "python", "target": "json:loads"})
    path.write_text(yaml.safe_dump(quadratic_spec(name="sub", **overrides)))
    return path


LOCAL = "http://127.0.0.1:8265"


def test_a_relative_sqlite_path_is_made_absolute_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_file(tmp_path)
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", LOCAL, "--storage",
                            "sqlite:///rel.db")
    assert code == 0, err
    assert f"--storage sqlite:///{tmp_path / 'rel.db'} " in server.submitted[0]["entrypoint"]
    assert f"storage: sqlite:///{tmp_path / 'rel.db'}" in err and "warning" not in err
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", LOCAL)  # the default, atlas.db
    assert code == 0 and f"--storage sqlite:///{tmp_path / 'atlas.db'} " in server.submitted[1]["entrypoint"]
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", "http://head:8265",
                           "--storage", "sqlite:///rel.db")
    assert code == 0 and f"--storage sqlite:///{tmp_path / 'rel.db'} " in server.submitted[2]["entrypoint"]
    assert err.startswith("warning: a SQLite file is only visible")
    assert f"writes {tmp_path / 'rel.db'} on the node" in err


def test_a_bad_storage_url_is_refused_before_anything_is_submitted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    code, out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                           "--storage", "sqlit:///x")
    assert code == 2 and out == ""
    assert err.splitlines() == [line for line in err.splitlines() if line.startswith("error:")]
    assert len(err.splitlines()) == 1 and "unsupported storage 'sqlit'" in err
    assert server.workdirs == [] and server.submitted == []


@pytest.mark.parametrize("python, address, line", [
    ("{tmp}/nope/python", LOCAL, "error: --python '{tmp}/nope/python': no such file"),
    ("{tmp}/plain.txt", LOCAL, "error: --python '{tmp}/plain.txt': not an executable file"),
    ("{tmp}", LOCAL, "error: --python '{tmp}': not an executable file"),
    ("venv/bin/python", LOCAL, "error: --python 'venv/bin/python': no such file ({tmp}/venv/bin/python)"),
    ("venv/bin/python", "http://head:8265", "error: --python 'venv/bin/python': a relative path would be looked "
     "for in the job's temporary folder on the cluster; give the interpreter's absolute path on the nodes"),
    ("", LOCAL, "error: --python '': name the Python on the cluster that has entropy-atlas installed")])
def test_a_python_the_job_cannot_start_is_refused_before_anything_is_submitted(
        python: str, address: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], server: FakeJobServer) -> None:
    """``--python`` went into the entrypoint unchecked: the job was submitted and failed on
    the cluster (``/bin/sh: 1: …: not found``)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain.txt").write_text("not a program")
    python, line = python.format(tmp=tmp_path), line.format(tmp=tmp_path)
    code, out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", address,
                           "--python", python)
    assert (code, out, err.splitlines()) == (2, "", [line])
    assert server.workdirs == [] and server.submitted == []


def test_a_python_path_that_is_there_is_submitted_and_a_relative_one_made_absolute(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").symlink_to(sys.executable)
    spec = spec_file(tmp_path)
    for python, address, given in [("venv/bin/python", LOCAL, str(tmp_path / "venv" / "bin" / "python")),
                                   ("/opt/conda/bin/python", "http://head:8265", "/opt/conda/bin/python"),
                                   ("python3", "http://head:8265", "python3")]:
        code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", address, "--python", python,
                                "--storage", "postgresql+psycopg://u@db/atlas")
        assert code == 0, err
        assert server.submitted[-1]["entrypoint"].startswith(f"{given} -m search.cli run campaign.yaml ")


def test_a_submission_refused_try_again_later_is_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    server.refusals = [RuntimeError(AGAIN), RuntimeError(AGAIN)]
    code, out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                           "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    assert code == 0, err
    assert out.split() == [server.submitted[0]["submission_id"]] and len(server.workdirs) == 3
    assert err.count("warning:") == 1 and "not ready" in err


def test_a_submission_refused_otherwise_or_for_too_long_is_one_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    args = ("submit", str(spec_file(tmp_path)), "--address", LOCAL, "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    server.refusals = [RuntimeError("Request failed with status code 400: bad runtime_env.")]
    code, _out, err = atlas(monkeypatch, capsys, *args)
    assert code == 2 and len(server.workdirs) == 1 and server.submitted == []
    assert err.splitlines() == [f"error: the Ray job server at {LOCAL} did not take the job: Request failed with "
                                "status code 400: bad runtime_env."]
    monkeypatch.setattr(jobs, "SUBMIT_PATIENCE_S", 0.1, raising=False)
    server.refusals = [RuntimeError(AGAIN)] * 1000
    code, _out, err = atlas(monkeypatch, capsys, *args)
    assert code == 2 and server.submitted == [] and "Traceback" not in err
    assert [line for line in err.splitlines() if not line.startswith("warning:")] == [
        f"error: the Ray job server at {LOCAL} did not take the job: {AGAIN}"]


def test_the_uploaded_folder_is_removed_once_submitted_or_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    args = ("submit", str(spec_file(tmp_path)), "--address", LOCAL, "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    assert atlas(monkeypatch, capsys, *args)[0] == 0
    assert len(server.workdirs) == 1 and not server.workdirs[0].exists()
    server.refusals = [RuntimeError("Request failed with status code 400: no.")]
    assert atlas(monkeypatch, capsys, *args)[0] == 2
    assert len(server.workdirs) == 2 and not any(w.exists() for w in server.workdirs)


def test_a_target_module_beside_the_spec_is_named_before_submitting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myeval.py").write_text("def evaluate(params):\n    return {}\n")
    spec = spec_file(tmp_path, evaluator={"kind": "python", "target": "myeval:evaluate"})
    args = ("submit", str(spec), "--address", LOCAL, "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    code, _out, err = atlas(monkeypatch, capsys, *args)
    assert code == 0 and len(server.submitted) == 1
    (warning,) = [line for line in err.splitlines() if line.startswith("warning:")]
    assert "'myeval'" in warning and "--env PYTHONPATH=" in warning and "install it on the nodes" in warning
    code, _out, err = atlas(monkeypatch, capsys, *args, "--env", f"PYTHONPATH={tmp_path}")
    assert code == 0 and "warning" not in err  # the user said where the cluster finds it
    installed = spec_file(tmp_path, evaluator={"kind": "python", "target": "yaml:safe_load"})
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(installed), *args[2:])
    assert code == 0 and "warning" not in err


class FakeTime:
    """A clock that only ``sleep`` moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_waits_as_long_as_the_job_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    clock = FakeTime()
    monkeypatch.setattr(jobs, "time", clock)
    server.statuses = [JobStatus.PENDING] * 5 + [JobStatus.RUNNING] * 3000 + [JobStatus.SUCCEEDED]
    code, out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                           "--storage", f"sqlite:///{tmp_path / 'a.db'}", "--wait")
    assert code == 0, err
    job_id = server.submitted[0]["submission_id"]
    assert out.splitlines() == [job_id, f"job {job_id}: PENDING", f"job {job_id}: RUNNING", f"job {job_id}: SUCCEEDED"]
    assert clock.now - 1_000.0 >= 3000


def test_a_wait_that_loses_the_job_server_is_one_error_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:
    monkeypatch.setattr(jobs, "time", FakeTime())
    server.statuses = [JobStatus.RUNNING, ConnectionError("Connection refused")]
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                           "--storage", f"sqlite:///{tmp_path / 'a.db'}", "--wait")
    job_id = server.submitted[0]["submission_id"]
    assert code == 2
    assert err.splitlines() == [f"error: the status of job {job_id} from the Ray job server at {LOCAL} failed: "
                                "Connection refused"]


def test_follow_yields_each_chunk_as_the_job_writes_it(server: FakeJobServer, tmp_path: Path) -> None:
    events: list[str] = []
    server.submitted = [{"submission_id": "atlas-sub-1", "metadata": {jobs.METADATA_KEY: "sub"}}]
    server.chunks = [lambda i=i: events.append(f"wrote {i}") or f"line {i}\n" for i in range(3)]
    for chunk in jobs.logs(LOCAL, "sub", follow=True):
        events.append(f"read {chunk.strip()}")
    assert events == ["wrote 0", "read line 0", "wrote 1", "read line 1", "wrote 2", "read line 2"]


def test_follow_prints_the_first_lines_before_the_job_ends_and_ctrl_c_exits_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: FakeJobServer) -> None:
    printed: list[str] = []

    def interrupt() -> str:
        printed.append(capsys.readouterr().out)
        raise KeyboardInterrupt

    server.submitted = [{"submission_id": "atlas-sub-1", "metadata": {jobs.METADATA_KEY: "sub"}}]
    server.chunks = ["scheduler started\n", interrupt]
    code, _out, err = atlas(monkeypatch, capsys, "logs", "sub", "--address", LOCAL, "--follow")
    assert printed == ["scheduler started\n"]
    assert code == 130 and "Traceback" not in err


def test_a_job_names_its_storage_without_the_password(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: FakeJobServer,
        tmp_path: Path) -> None:
    """The job's metadata names the storage it writes (what ``logs --storage`` picks by), a
    relative SQLite path made absolute, a PostgreSQL password hidden."""
    monkeypatch.chdir(tmp_path)
    assert atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                 "--storage", "sqlite:///a.db")[0] == 0
    assert atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                 "--storage", "postgresql+psycopg://me:secret@db.example:5432/atlas")[0] == 0
    named = [r["metadata"][jobs.STORAGE_KEY] for r in server.submitted]
    assert named == [f"sqlite:///{tmp_path / 'a.db'}", "postgresql+psycopg://me:***@db.example:5432/atlas"]


def test_logs_with_a_storage_reads_the_latest_job_writing_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: FakeJobServer,
        tmp_path: Path) -> None:
    """One campaign name in two storages, each submitted as a job: ``atlas logs NAME`` reads
    the latest job; with ``--storage`` (or ``$ATLAS_STORAGE``) the latest that writes that
    storage, a job that names none (submitted before jobs named it) still a candidate; a
    storage no job writes is one error line naming it."""
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    server.submitted = [
        {"submission_id": "job-a", "metadata": {jobs.METADATA_KEY: "sub", jobs.STORAGE_KEY: a}},
        {"submission_id": "job-b", "metadata": {jobs.METADATA_KEY: "sub", jobs.STORAGE_KEY: b}},
    ]
    assert atlas(monkeypatch, capsys, "logs", "sub", "--address", LOCAL)[1] == "the whole log of job-b\n"
    picked = atlas(monkeypatch, capsys, "logs", "sub", "--address", LOCAL, "--storage", a)
    assert picked[1] == "the whole log of job-a\n"
    monkeypatch.setenv("ATLAS_STORAGE", a)
    assert atlas(monkeypatch, capsys, "logs", "sub", "--address", LOCAL)[1] == "the whole log of job-a\n"
    server.submitted.append({"submission_id": "job-old", "metadata": {jobs.METADATA_KEY: "sub"}})
    assert atlas(monkeypatch, capsys, "logs", "sub", "--address", LOCAL)[1] == "the whole log of job-old\n"
    server.submitted.pop()
    other = f"sqlite:///{tmp_path / 'c.db'}"
    code, _out, err = atlas(monkeypatch, capsys, "logs", "sub", "--address", LOCAL, "--storage", other)
    assert code == 2 and err.splitlines() == [f"error: no Ray job for campaign 'sub' at {LOCAL} that writes {other}"]


def test_a_storage_url_holding_a_password_is_warned_of_at_submit(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: FakeJobServer,
        tmp_path: Path) -> None:
    """The job's entrypoint carries the storage URL, which the job server shows to anyone who
    reaches it: a URL with a password is submitted with one warning saying so and what to do
    instead; one without a password (libpq reads PGPASSWORD or ~/.pgpass on the node) is not."""
    with_password = "postgresql+psycopg://me:secret@db.example:5432/atlas"
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                            "--storage", with_password)
    (line,) = err.splitlines()
    assert code == 0 and line.startswith("warning: the storage URL's password is shown to anyone who can read")
    assert "PGPASSWORD" in line and "secret" not in line
    code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec_file(tmp_path)), "--address", LOCAL,
                            "--storage", "postgresql+psycopg://me@db.example:5432/atlas")
    assert code == 0 and err == ""
