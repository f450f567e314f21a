"""A Ctrl-C or SIGTERM in any phase of a command: start-up (the spec, the evaluator's
import, the storage, Ray), the read commands, ``atlas submit``. Each stops with one
``stopped`` line saying what was kept, exit 130, no traceback; nothing half-made is left
(no Ray process, no lease, no output file begun). The interrupt is raised at a chosen
point (a patched step), never timed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from archive.store import Store
from search import api
from tests.conftest import quadratic_spec
from tests.test_jobs import LOCAL, FakeJobServer, atlas, server  # noqa: F401  (the fixture)


def spec_file(tmp_path: Path, **overrides: Any) -> Path:
    """The quadratic campaign (:func:`quadratic_spec` with ``overrides``) as a file."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(**overrides)))
    return path


def interrupting(signum: int = signal.SIGINT) -> Callable[..., Any]:
    """A step that is interrupted: ``signum`` sent to this process, as a user or a
    supervisor sends it (acted on by whatever handler is in place then)."""

    def step(*_args: Any, **_kwargs: Any) -> Any:
        os.kill(os.getpid(), signum)
        raise AssertionError("the signal did not stop the command")

    return step


@pytest.fixture(autouse=True)
def no_request_left() -> Any:
    """A stop requested here is not left for another test's run to find."""
    from entropy_atlas import interrupts

    yield
    interrupts.clear()


@pytest.fixture
def sigterm_fails_the_test() -> Any:
    """SIGTERM, where the command has no handler of its own, fails the test (its default
    action would end pytest)."""

    def default(_signum: int, _frame: Any) -> None:
        raise AssertionError("SIGTERM reached the handler the command found: it would have killed the command")

    previous = signal.signal(signal.SIGTERM, default)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_the_run_starts_says_so_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        sigterm_fails_the_test: None, signum: int) -> None:
    """Ctrl-C while `atlas run` read the spec (before the run, whose own stop said so):
    typer's exit 130 without a word; SIGTERM there killed the command without one."""
    monkeypatch.setattr(api, "as_spec", interrupting(signum))
    db = tmp_path / "a.db"
    code, _out, err = atlas(monkeypatch, capsys, "run", str(spec_file(tmp_path)), "--storage", f"sqlite:///{db}",
                            "--executor", "inline")
    assert (code, err.strip()) == (130, "stopped while starting; nothing was written")
    assert not db.exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_the_evaluators_setup_is_waited_on_leaves_no_storage_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        sigterm_fails_the_test: None, signum: int) -> None:
    """The setup was waited on after the storage was opened: the stop said "nothing to
    resume" and left a new ``a.db`` holding an empty schema. It is waited on first."""
    from workers.executors.inline import InlineExecutor

    monkeypatch.setattr(InlineExecutor, "setup_problem", interrupting(signum))
    db = tmp_path / "a.db"
    code, _out, err = atlas(monkeypatch, capsys, "run", str(spec_file(tmp_path)), "--storage", f"sqlite:///{db}",
                            "--executor", "inline")
    assert (code, err.strip()) == (130, "stopped before the campaign was written; nothing to resume")
    assert not db.exists()


def test_an_interrupt_once_the_campaign_is_written_names_the_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C in the write that takes the campaign's lease acts once that write has
    committed: the lease was the stopped run's, and stayed taken (``atlas resume``
    elsewhere refused until it expired). It is released; the campaign resumes. A resume
    raising the finished campaign's budget, interrupted as it starts, had said "stopped
    after the campaign finished"."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    take = Store.acquire_lease

    def taken_then_interrupted(self: Store, *args: Any, **kwargs: Any) -> str | None:
        take(self, *args, **kwargs)
        raise KeyboardInterrupt  # where a Ctrl-C held by the write acts: once it committed

    monkeypatch.setattr(Store, "acquire_lease", taken_then_interrupted)
    code, _out, err = atlas(monkeypatch, capsys, "run", str(spec_file(tmp_path, search__budget=30)), "--storage", url,
                            "--executor", "inline")
    # the resume as it would find and run the campaign: its storage and executor (the default Ray had started)
    assert (code, err.strip()) == (130, f"stopped after 0 of 30 evaluations; continue with `atlas resume quad "
                                        f"--storage {url} --executor inline`")
    store = Store(url, readonly=True)
    try:
        record = store.campaign("quad")
        assert record is not None and record.lease_holder is None and record.status != "running"
    finally:
        store.close()
    monkeypatch.setattr(Store, "acquire_lease", take)
    code, out, err = atlas(monkeypatch, capsys, "resume", "quad", "--storage", url, "--executor", "inline",
                           "--map", str(tmp_path / "m.png"))
    assert code == 0, err
    assert "30 evaluations (0 failed)" in out

    # a raise of the budget interrupted as it starts: it had said the campaign finished
    monkeypatch.setattr(api, "checked_executor", interrupting())
    code, _out, err = atlas(monkeypatch, capsys, "resume", "quad", "--budget", "40", "--storage", url,
                            "--executor", "inline")
    assert (code, err.strip()) == (130, f"stopped after 30 of 40 evaluations; continue with `atlas resume quad "
                                        f"--storage {url} --executor inline --budget 40`")


def test_an_error_that_came_of_the_interrupt_is_the_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C inside a compiled module's import (matplotlib's, drawing the map) comes
    back as ``ImportError: initialization failed``: a traceback, exit 1."""
    from entropy_atlas import interrupts

    def import_cut_short(_out: Path, _data: Any) -> Path:
        try:
            interrupting()()
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None  # as the C module's init hands it back
        raise AssertionError("not interrupted")

    db = tmp_path / "a.db"
    api.run(quadratic_spec(search__budget=6), storage=f"sqlite:///{db}", executor="inline")
    capsys.readouterr()  # the set-up run's warnings (a batch and a map larger than its budget) aside
    interrupts.clear()
    monkeypatch.setattr("archive.figures.draw_map", import_cut_short)
    code, _out, err = atlas(monkeypatch, capsys, "map", "quad", "--storage", f"sqlite:///{db}",
                            "--out", str(tmp_path / "m.png"))
    assert (code, err.strip()) == (130, "stopped; nothing was written")
    assert not (tmp_path / "m.png").exists()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_read_command_says_so_and_removes_the_file_it_began(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        sigterm_fails_the_test: None, signum: int) -> None:
    """`atlas status` interrupted: exit 130 without a word (SIGTERM: killed). `atlas
    export` interrupted as it wrote: the same, and the half-written file left behind."""
    from archive.handle import CampaignHandle

    url = f"sqlite:///{tmp_path / 'a.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    capsys.readouterr()  # the set-up run's warnings (a batch and a map larger than its budget) aside
    monkeypatch.setattr(CampaignHandle, "stats", interrupting(signum))
    code, _out, err = atlas(monkeypatch, capsys, "status", "quad", "--storage", url)
    assert (code, err.strip()) == (130, "stopped; nothing was written")

    out = tmp_path / "e.json"

    def half_written(self: CampaignHandle, path: Path) -> Path:
        Path(path).write_text('{"campaign": ')
        interrupting(signum)()
        return Path(path)

    monkeypatch.setattr(CampaignHandle, "export", half_written)
    code, _out, err = atlas(monkeypatch, capsys, "export", "quad", "--storage", url, "--out", str(out))
    assert (code, err.strip()) == (130, "stopped; nothing was written")
    assert not out.exists()


def test_an_interrupted_submit_says_whether_the_job_may_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        server: FakeJobServer) -> None:  # noqa: F811
    """Ctrl-C during `atlas submit`: exit 130 without a word, though the job may have
    been sent (or, under --wait, runs on)."""
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(name="sub", evaluator={"kind": "python", "target": "json:loads"})))
    storage = f"sqlite:///{tmp_path / 'a.db'}"
    with monkeypatch.context() as patched:
        patched.setattr(api, "check_campaign", interrupting())
        code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", LOCAL, "--storage", storage)
    assert (code, err.strip()) == (130, "stopped; nothing was submitted")
    assert server.submitted == []

    with monkeypatch.context() as patched:
        patched.setattr(server, "submit_job", interrupting())
        code, _out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", LOCAL, "--storage", storage)
    assert code == 130
    assert err.strip() == (f"stopped; the job may have been submitted before the interrupt: `atlas logs sub "
                           f"--address {LOCAL}` shows it if so")

    monkeypatch.setattr(server, "get_job_status", interrupting())
    code, out, err = atlas(monkeypatch, capsys, "submit", str(spec), "--address", LOCAL, "--storage", storage, "--wait")
    job_id = out.strip()
    assert code == 130 and job_id.startswith("atlas-sub-")
    assert err.strip() == (f"stopped; job {job_id} was submitted and goes on running on the cluster: `atlas logs "
                           f"sub --address {LOCAL}` shows it")


def test_a_ctrl_c_while_the_storage_closes_waits_for_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A Ctrl-C inside a connection's close (a read command ending: the read-only SQLite
    engine tidies the file's side files there) had SQLAlchemy log ``Exception closing
    connection`` with its traceback, and left the side files. It acts once the store is closed."""
    from archive import engine

    db = tmp_path / "a.db"
    Store(f"sqlite:///{db}").close()
    store = Store(f"sqlite:///{db}", readonly=True)
    assert store.campaign("none") is None  # a connection opened
    tidy = engine.remove_side_files

    def interrupted(path: Path) -> list[Path]:
        os.kill(os.getpid(), signal.SIGINT)
        return tidy(path)

    monkeypatch.setattr(engine, "remove_side_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.close()
    assert "Exception closing connection" not in caplog.text
    assert not [p for p in engine.side_files(db) if p.exists()]


FORKED_READER_CTRL_C = """
import os, signal, sys
from search.forked import fork_is_safe, read_beside

def reads_after_a_ctrl_c():  # the reader gets its own Ctrl-C (the terminal's, to the process group)
    os.kill(os.getpid(), signal.SIGINT)
    return os.getpid()

if not fork_is_safe():
    print("no fork"); sys.exit(0)
try:
    reader = read_beside(reads_after_a_ctrl_c, lambda: None)
except KeyboardInterrupt:
    print("handed back"); sys.exit(0)
print("read in another process" if reader != os.getpid() else "read here")
"""


def test_a_ctrl_c_at_the_forked_reader_is_this_process_s_alone() -> None:
    """`atlas map` reads in a forked process; a Ctrl-C reaches both (a terminal sends it
    to the process group). The reader, with this process's handlers, printed
    ``Process ForkProcess-1: Traceback … KeyboardInterrupt`` or handed the interrupt back
    as its read's outcome. It goes on with its read; this process stops. Run in a fresh
    process: a fork is refused where other threads run, as they do in a test session."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", FORKED_READER_CTRL_C], cwd=root, capture_output=True, text=True,
                          timeout=60)
    if done.stdout.strip() == "no fork":
        pytest.skip("no fork on this platform: the read runs in this process")
    assert (done.returncode, done.stdout.strip()) == (0, "read in another process"), done.stderr
    assert "Traceback" not in done.stderr, done.stderr


RAY_START_INTERRUPTED = """
import json, os, signal, sys, time
import ray._private.services as services
from ray._private.gc_collect_manager import PythonGCThread
from search import cli
from workers.executors import reaper
from workers.executors.reaper import descendants, is_alive

seen = []  # Ray's processes as the interrupt came: (pid, start time)
spec, storage = sys.argv[1:3]

def sigterm_caught():
    for line in open("/proc/self/status"):
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)

out = {"sigterm_caught_after_ray": None}
tidy = getattr(reaper, "end_new_descendants", None)
def after_ray_shut_down(before):  # what the stop does once Ray is shut down
    if out["sigterm_caught_after_ray"] is None:
        out["sigterm_caught_after_ray"] = sigterm_caught()
    return tidy(before)

if tidy is not None:
    reaper.end_new_descendants = after_ray_shut_down

def atlas_run():
    sys.argv = ["atlas", "run", spec, "--storage", storage, "--executor", "ray"]
    return cli._run_app()

def all_gone(within=30):
    deadline = time.monotonic() + within
    while any(is_alive(*p) for p in seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not any(is_alive(*p) for p in seen)

made = PythonGCThread.__init__
def ctrl_c_inside_the_core_worker(self, *args, **kwargs):  # the driver's, which ray.init makes last
    seen.extend(descendants(os.getpid()))
    os.kill(os.getpid(), signal.SIGINT)
    made(self, *args, **kwargs)

PythonGCThread.__init__ = ctrl_c_inside_the_core_worker
out["code"] = atlas_run()
PythonGCThread.__init__ = made
out["gone"] = all_gone()

def cut_short(*args, **kwargs):  # a second Ctrl-C, as ray.init waits for the raylet it started
    seen.extend(descendants(os.getpid()))
    raise KeyboardInterrupt

services.get_node = cut_short
out["code_cut_short"] = atlas_run()
out["gone_cut_short"] = all_gone()
print("RESULT " + json.dumps(out), flush=True)
for pid, started in seen:  # not left to the next test, whatever happened
    if is_alive(pid, started):
        os.kill(pid, signal.SIGKILL)
"""


@pytest.mark.ray
def test_an_interrupt_inside_ray_init_leaves_none_of_its_processes_and_no_crash(tmp_path: Path) -> None:
    """A Ctrl-C while ``ray.init`` made the driver's core worker: the run said
    ``stopped``, then the process crashed at exit (SIGSEGV), Ray's processes left up. Ray's
    shutdown had put SIGTERM's action back to the default beneath Python's handler (which
    Python still reported as set: a SIGTERM then killed the command, a script's ``SIG_IGN``
    no longer held). A start cut short earlier (a second Ctrl-C, as the raylet started)
    left Ray's processes too, the agents outliving the command (``ray::DashboardAgent``,
    ``ray::RuntimeEnvAgent``). Run in a process of its own: this one's Ray stays untouched."""
    db = tmp_path / "a.db"
    done = subprocess.run([sys.executable, "-c", RAY_START_INTERRUPTED, str(spec_file(tmp_path)), f"sqlite:///{db}"],
                          capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1],
                          env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.returncode, done.stderr[-3000:])
    assert json.loads(lines[-1].removeprefix("RESULT ")) == {
        "sigterm_caught_after_ray": True, "code": 130, "gone": True, "code_cut_short": 130, "gone_cut_short": True}
    said = [line for line in done.stderr.splitlines() if line.startswith("stopped")]
    assert said == ["stopped before the campaign was written; nothing to resume"] * 2
    assert "Traceback" not in done.stderr
    assert not db.exists()


def test_an_interrupted_rewrite_of_an_output_leaves_the_earlier_file_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`atlas export --out` over an earlier export, interrupted half-way through its write:
    the earlier file is kept as it was (outputs are put in place once complete), and the
    line says so rather than calling it incomplete."""
    from archive import export as export_module

    url = f"sqlite:///{tmp_path / 'a.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    capsys.readouterr()  # the set-up run's warnings (a batch and a map larger than its budget) aside
    out = tmp_path / "e.json"
    out.write_text('{"earlier": true}')
    def half_then_interrupted(data: Any, path: Path) -> None:
        Path(path).write_text('{"campaign": ')
        interrupting(signal.SIGINT)()

    monkeypatch.setattr(export_module, "write_json", half_then_interrupted)
    code, _out, err = atlas(monkeypatch, capsys, "export", "quad", "--storage", url, "--out", str(out))
    assert code == 130 and err.strip().startswith(f"stopped; {out} is whole: the earlier file"), err
    assert out.read_text() == '{"earlier": true}'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".e.")] == []  # no temporary left


ENTRY_UNDER_A_SIGNAL = """
import builtins, os, signal, sys, tomllib
module, _, function = tomllib.load(open("pyproject.toml", "rb"))["project"]["scripts"]["atlas"].partition(":")
real_import = builtins.__import__
signum = int(sys.argv[1])

def signalling_import(name, *args, **kwargs):
    if name == "typer":  # search.cli's libraries, as they load
        builtins.__import__ = real_import
        os.kill(os.getpid(), signum)
    return real_import(name, *args, **kwargs)

builtins.__import__ = signalling_import
sys.argv = ["atlas", "status"]
entry = __import__(module, fromlist=[function])
getattr(entry, function)()
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_the_command_loads_is_one_line(signum: int) -> None:
    """The console script (pyproject's ``atlas``) interrupted while :mod:`search.cli`'s
    libraries load: ``stopped while starting``, exit 130. Before, its entry was
    ``search.cli:main`` itself: a SIGINT was an import's traceback, a SIGTERM killed it."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", ENTRY_UNDER_A_SIGNAL, str(int(signum))], cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (130, "stopped while starting; nothing was written")


def test_resume_lines_carry_the_options_that_find_and_run_the_campaign() -> None:
    """Only campaign ``quad``'s `` `atlas resume quad`` gets them, wherever they stand, and
    nothing once the command is over."""
    from search import cli

    with cli._resume_words():
        cli._note_resume_flags("quad", "sqlite:///my dir/a.db", "sqlite:///my dir/a.db", "inline", None)
        assert cli.hinted("continue with `atlas resume quad`; or `atlas resume quadratic` and "
                              "`atlas resume quad --budget 9`") == (
            "continue with `atlas resume quad --storage 'sqlite:///my dir/a.db' --executor inline`; or "
            "`atlas resume quadratic` and `atlas resume quad --storage 'sqlite:///my dir/a.db' --executor inline "
            "--budget 9`")
        cli._note_resume_flags("quad", None, "sqlite:///atlas.db", "ray", "10.0.0.1:6379")
        assert cli.hinted("`atlas resume quad`") == "`atlas resume quad --address 10.0.0.1:6379`"
        cli._note_resume_flags("quad", None, "sqlite:///atlas.db", "ray", None)
        assert cli.hinted("`atlas resume quad`") == "`atlas resume quad`"  # the defaults find it
        cli._note_resume_flags("quad", "postgresql+psycopg://u:secret@h/db", "postgresql+psycopg://u:secret@h/db",
                               "ray", None)
        assert "secret" not in cli.hinted("`atlas resume quad`")
    assert cli.hinted("`atlas resume quad`") == "`atlas resume quad`"
