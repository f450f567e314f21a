"""The Python API as a script or a notebook meets it (`search/api.py`, `archive/handle.py`):
a SIGTERM and a Ctrl-C stop a run cleanly, a killed campaign reads as ``atlas status`` reads
it, the spec's warnings are given without ``on_warning``, errors name Python's arguments (not
``atlas``'s flags), a read-only handle's delete says so first, any path-like storage opens,
and a dict spec's NumPy numbers and tuples are taken as plain data."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import archive
from archive.errors import StorageError, UnknownMeasure
from search import api
from search.cli import app
from search.spec import SpecError, parse_spec
from tests.conftest import ROOT, quadratic_spec
from tests.support import evaluators

SLOW = {"kind": "python", "target": "tests.support.evaluators:slow_quadratic"}
RUN_IN_A_SCRIPT = """
import sys
from search import api
from tests.conftest import quadratic_spec
spec = quadratic_spec(name="scripted", search__budget=400, search__batch_size=4, search__max_in_flight=4,
                      evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"})
api.run(spec, storage=sys.argv[1], executor="inline")
print("returned", flush=True)
"""


def _scripted_run(tmp_path: Path, url: str, signum: int) -> subprocess.CompletedProcess:
    """``api.run`` inline in a plain script (no SIGTERM handler of its own), sent ``signum``
    once it has finished three evaluations (the evaluator logs each); the script's end."""
    log = tmp_path / "finished.log"
    env = {**os.environ, "ATLAS_TEST_LOG": str(log), "ATLAS_TEST_SLEEP": "0.05", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", RUN_IN_A_SCRIPT, url], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and \
            (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _stopped_at_four(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Campaign ``quad`` of budget 40, stopped (by its progress callback) with few created."""
    def stop_at_four(stats: Any) -> None:
        if stats.finished >= 4:
            raise RuntimeError("stopped by the test")

    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.05")  # progress is reported every 0.3 s at most
    with pytest.raises(RuntimeError):
        api.run(quadratic_spec(search__budget=40, search__batch_size=2, search__max_in_flight=2, evaluator=SLOW),
                storage=url, executor="inline", progress=stop_at_four)
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0")


def _rows(url: str, name: str = "scripted") -> list[dict[str, Any]]:
    with archive.open(url) as handle:
        return handle.campaign(name).evaluations()


# -- 1. SIGTERM -----------------------------------------------------------------------------

def test_a_sigterm_stops_a_scripts_run_cleanly_and_still_ends_the_process(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM had killed the script at once: the campaign left ``running`` with rows
    ``running``, charged again on resume (attempts 2). Now the run stops as a Ctrl-C does,
    then the process still ends by the SIGTERM."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    ended = _scripted_run(tmp_path, url, signal.SIGTERM)
    assert ended.returncode == -signal.SIGTERM, ended.stderr
    assert "returned" not in ended.stdout and "Traceback" not in ended.stderr
    with archive.open(url) as handle:
        camp = handle.campaign("scripted")
        assert camp.record.status == "stopped"
        rows = camp.evaluations()
    assert "running" not in {r["status"] for r in rows}
    assert all(r["attempts"] == (1 if r["status"] == "done" else 0) for r in rows)
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0")
    assert api.resume("scripted", storage=url, executor="inline", budget=len(rows) + 4).finished == len(rows) + 4
    assert all(r["attempts"] == 1 for r in _rows(url))  # nothing charged twice


def test_a_callers_own_sigterm_handler_is_left_alone(sqlite_url: str) -> None:
    """A script's own handler sees the SIGTERM and the run goes on; after a run, the
    handler is the one the caller had (and the default where it had none)."""
    seen: list[int] = []
    sent: list[bool] = []

    def progress(stats: Any) -> None:
        if stats.finished and not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    def mine(signum: int, frame: Any) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        stats = api.run(quadratic_spec(search__budget=8), storage=sqlite_url, executor="inline", progress=progress)
        assert stats.finished == 8 and seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    api.run(quadratic_spec(name="again", search__budget=4), storage=sqlite_url, executor="inline")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# -- 2. Ctrl-C --------------------------------------------------------------------------------

def test_a_ctrl_c_is_a_plain_keyboard_interrupt(sqlite_url: str) -> None:
    """A Ctrl-C during an inline batch came out as the runner's ``InterruptedBatch`` (a
    subclass, with an empty message)."""
    spec = quadratic_spec(search__budget=12, search__batch_size=6, search__max_in_flight=6,
                          evaluator={"kind": "python", "target": "tests.support.evaluators:interrupts_once"})
    try:
        for stop in (lambda: api.run(spec, storage=sqlite_url, executor="inline"),
                     lambda: api.resume("quad", storage=sqlite_url, executor="inline")):
            evaluators.INTERRUPT_AT.update(call=2, calls=0)
            with pytest.raises(KeyboardInterrupt) as raised:
                stop()
            assert type(raised.value) is KeyboardInterrupt
    finally:
        evaluators.INTERRUPT_AT.update(call=0, calls=0)
    assert {r["status"] for r in _rows(sqlite_url, "quad")} <= {"done", "pending"}


# -- 3. a killed campaign as atlas status reads it -----------------------------------------------

def test_a_killed_campaign_reads_as_atlas_status_reads_it(tmp_path: Path) -> None:
    """After ``kill -9`` the handle said ``record.status`` ``running`` and counts
    ``{'pending': 7, 'running': 1}``, where ``atlas status`` says ``interrupted``, all pending."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    ended = _scripted_run(tmp_path, url, signal.SIGKILL)
    assert ended.returncode == -signal.SIGKILL
    shown = CliRunner().invoke(app, ["status", "scripted", "--storage", url, "--json"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    row = json.loads(shown.stdout)
    row = row[0] if isinstance(row, list) else row
    with archive.open(url) as handle:
        camp = handle.campaign("scripted")
        counts = camp.stats().counts
        assert camp.status == row["status"] == "interrupted"
        unfinished = camp.unfinished()
    assert unfinished == {k: row[k] for k in ("running", "in_flight", "pending")}
    assert unfinished == {"running": 0, "in_flight": 0, "pending": counts["pending"] + counts["running"]}
    assert unfinished["pending"] > 0


def test_a_campaign_a_run_holds_reads_running_with_its_evaluations_in_flight(sqlite_url: str) -> None:
    seen: list[tuple[str, dict[str, int], dict[str, int]]] = []

    def progress(stats: Any) -> None:
        if not seen:
            with archive.open(sqlite_url) as handle:
                camp = handle.campaign("quad")
                seen.append((camp.status, camp.unfinished(), camp.stats().counts))

    api.run(quadratic_spec(search__budget=8, search__batch_size=4, search__max_in_flight=4), storage=sqlite_url,
            executor="inline", progress=progress)
    status, unfinished, counts = seen[0]
    assert status == "running"
    assert unfinished == {"running": counts["running"], "in_flight": counts["pending"] + counts["running"],
                          "pending": 0}
    with archive.open(sqlite_url) as handle:
        camp = handle.campaign("quad")
        assert (camp.status, camp.unfinished()) == ("finished", {"running": 0, "in_flight": 0, "pending": 0})


def test_the_new_reads_of_a_deleted_campaign_say_so(sqlite_url: str) -> None:
    from archive.errors import CampaignNotFound

    api.run(quadratic_spec(search__budget=3), storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        stale = handle.campaign("quad")
        with archive.open(sqlite_url, readonly=False) as writer:
            writer.campaign("quad").delete()
        with pytest.raises(CampaignNotFound, match="was deleted"):
            stale.unfinished()
        with pytest.raises(CampaignNotFound, match="was deleted"):
            _ = stale.status


# -- 4. warnings ------------------------------------------------------------------------------

def test_the_specs_warnings_are_logged_without_on_warning(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Without ``on_warning`` ``api.run`` had dropped them without a word."""
    spec = quadratic_spec(search__budget=3, search__batch_size=10, search__options={"ranker": "imp"})
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.spec"):
        api.run(spec, storage=sqlite_url, executor="inline")
    said = [r.getMessage() for r in caplog.records if r.name == "entropy_atlas.spec"]
    given: list[str] = []
    api.run({**spec, "name": "given"}, storage=sqlite_url, executor="inline", on_warning=given.append)
    assert said == given
    assert any(w.startswith("search.batch_size: 10") for w in said)
    assert any(w.startswith("search.options.ranker:") for w in said)


def test_a_resume_that_lowers_the_budget_warns(sqlite_url: str, caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``api.resume(…, budget=N)`` below the stored budget had lowered it without a word,
    and ``resume`` took no ``on_warning``."""
    _stopped_at_four(sqlite_url, monkeypatch)
    with pytest.raises(TypeError, match="on_warning: must be a callable"):
        api.resume("quad", storage=sqlite_url, executor="inline", budget=20, on_warning=5)  # type: ignore[arg-type]
    given: list[str] = []
    api.resume("quad", storage=sqlite_url, executor="inline", budget=20, on_warning=given.append)
    assert given == ["budget=20 lowers campaign quad's budget from 40: it stops at 20 evaluations"]
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.spec"):
        api.resume("quad", storage=sqlite_url, executor="inline", budget=30)  # a raise says nothing
        api.resume("quad", storage=sqlite_url, executor="inline", budget=30)  # nor the same budget
    assert [r for r in caplog.records if r.name == "entropy_atlas.spec"] == []


def test_atlas_resume_says_a_lowered_budget_once_in_its_own_words(sqlite_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _stopped_at_four(sqlite_url, monkeypatch)
    done = CliRunner().invoke(app, ["resume", "quad", "--budget", "10", "--storage", sqlite_url,
                                    "--executor", "inline", "--map", str(Path(sqlite_url[10:]).with_suffix(".png"))])
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines() == [
        "warning: --budget 10 lowers campaign quad's budget from 40: it stops at 10 evaluations"]


# -- 5. Python's words -------------------------------------------------------------------------

def test_errors_name_pythons_arguments_not_the_flags(sqlite_url: str, tmp_path: Path) -> None:
    """They had said ``with --budget 10`` and ``--minimize zz``, flags the API has not."""
    with pytest.raises(SpecError, match=r"^campaign with budget=-1 is not valid"):
        api.run(quadratic_spec(), storage=sqlite_url, executor="inline", budget=-1)
    api.run(quadratic_spec(search__budget=6), storage=sqlite_url, executor="inline")
    with pytest.raises(SpecError, match=r"^campaign with budget=4 is not valid:\s+search.budget: 4 is below"):
        api.run(quadratic_spec(search__budget=6), storage=sqlite_url, executor="inline", budget=4)
    with pytest.raises(SpecError, match=r"^stored spec of quad with budget=2 is not valid"):
        api.resume("quad", storage=sqlite_url, executor="inline", budget=2)
    with pytest.raises(SpecError, match=r"^stored spec of quad with budget=0 is not valid"):
        api.resume("quad", storage=sqlite_url, executor="inline", budget=0)
    with archive.open(sqlite_url) as handle:
        camp = handle.campaign("quad")
        with pytest.raises(UnknownMeasure, match=r"^minimize='zz': not a measure of campaign 'quad' \(measures: ma"):
            camp.front(tmp_path / "f.png", minimize=["ma", "zz"])
        assert camp.front(tmp_path / "one.png", minimize="ma") == tmp_path / "one.png"  # one name, not m, a
        assert (tmp_path / "one.png").is_file()
        with pytest.raises(TypeError, match="minimize: each must be a measure's name"):
            camp.front(tmp_path / "f.png", minimize=[3])  # type: ignore[list-item]


def test_atlas_keeps_its_flags_words(sqlite_url: str, tmp_path: Path) -> None:
    api.run(quadratic_spec(search__budget=6), storage=sqlite_url, executor="inline")
    runner = CliRunner()
    refused = runner.invoke(app, ["front", "quad", "--storage", sqlite_url, "--out", str(tmp_path / "f.png"),
                                  "--minimize", "zz"])
    assert refused.stderr.startswith("error: --minimize zz: not a measure of campaign 'quad'")
    below = runner.invoke(app, ["resume", "quad", "--budget", "2", "--storage", sqlite_url, "--executor", "inline"])
    assert below.stderr.startswith("error: stored spec of quad with --budget 2: search.budget: 2 is below")


# -- 6. a read-only handle's delete ---------------------------------------------------------------

def test_a_read_only_handles_delete_says_how_to_open_one_that_writes(sqlite_url: str) -> None:
    """It had been ``StorageError …: attempt to write a readonly database``."""
    api.run(quadratic_spec(search__budget=3), storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        with pytest.raises(StorageError) as refused:
            handle.campaign("quad").delete()
        assert str(refused.value) == (f"cannot delete campaign 'quad': this handle is read-only; open it with "
                                      f"archive.open({sqlite_url!r}, readonly=False)")
    with archive.open(sqlite_url, readonly=False) as handle:
        assert handle.campaign("quad").delete()["campaigns"] == 1


# -- 7. a path-like storage ----------------------------------------------------------------------

class _PathLike:
    """A path-like object that is not a :class:`pathlib.Path` (``os.PathLike[str]``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_any_path_like_storage_opens_as_its_sqlite_file(tmp_path: Path) -> None:
    """``archive.open`` is typed ``str | os.PathLike[str]``; only a ``pathlib.Path`` had been taken."""
    api.run(quadratic_spec(search__budget=3), storage=_PathLike(tmp_path / "a.db"), executor="inline")
    with archive.open(_PathLike(tmp_path / "a.db")) as handle:
        assert handle.campaign("quad").stats().finished == 3


# -- 8. a notebook's dict spec ----------------------------------------------------------------------

def test_numpys_numbers_and_tuples_in_a_dict_spec_are_plain_data(sqlite_url: str) -> None:
    """``bins: np.int64(10)`` had been refused (``must be an integer (got an int64)``), a
    tuple of measures ``must be a list (got a list)``. NumPy's ``bool_`` is taken as ``bool`` too."""
    spec = quadratic_spec(search__budget=np.int64(5), search__batch_size=np.int32(5),
                          search__initial_points=[{"a": np.float32(0.5), "b": np.float64(0.25)}],
                          search__fail_fast=np.int16(3),
                          space={"a": {"type": "float", "low": np.float64(0.0), "high": np.float64(1.0)},
                                 "b": {"type": "float", "low": 0.0, "high": 1.0}},
                          measures=({"name": "ma", "low": 0.0, "high": 1.0, "bins": np.int64(5)},
                                    {"name": "mb", "low": np.float32(0.0), "high": 1.0, "bins": 5}))
    assert api.run(spec, storage=sqlite_url, executor="inline").finished == 5
    with archive.open(sqlite_url) as handle:
        stored = handle.campaign("quad").spec
    assert json.loads(json.dumps(stored)) == stored
    assert type(stored["measures"][0]["bins"]) is int and type(stored["search"]["budget"]) is int
    assert type(stored["search"]["fail_fast"]) is int and type(stored["measures"][1]["low"]) is float
    assert api.plain_data({"x": (np.bool_(True), np.arange(2))}) == {"x": [True, [0, 1]]}


def test_a_tuple_is_named_a_tuple() -> None:
    from entropy_atlas.validation import kind_of

    assert kind_of((1, 2)) == "a tuple"
    with pytest.raises(SpecError, match=r"objective: must be a mapping \(got a tuple\)"):
        parse_spec(quadratic_spec(objective=("score", "maximize")))


def test_a_type_takes_an_before_a_vowel() -> None:
    """entropy_atlas/validation.py a_type: the type's name with its article (``an int``)."""
    from entropy_atlas.validation import a_type

    assert a_type(3) == "an int"
    assert a_type("s") == "a str"
    assert a_type(object()) == "an object"
