"""The edges: refused before anything is written, failing fast, one-line errors.

Each test drives the command line in-process (typer's runner) on a SQLite file of its own
and checks both what the user reads (``error:`` lines, exit 2, never a traceback) and what
the storage holds afterwards (no campaign row for a refused file).
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from archive.errors import CampaignNotFound
from archive.store import Store
from search import api
from search.cli import app
from search.scheduler import EvaluatorSetupFailed
from search.spec import SpecError
from tests.conftest import quadratic_spec
from workers.executors.inline import InlineExecutor

runner = CliRunner()


@pytest.fixture(autouse=True)
def maps_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The maps a run draws by default go under the test's folder, not the checkout's."""
    import archive.figures

    monkeypatch.setattr(archive.figures, "MAPS_DIR", tmp_path / "atlas-maps")


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def write(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def campaign_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] if "campaigns" in tables else 0


def assert_one_line_errors(result: Any) -> list[str]:
    """Exit 2, and every line of stderr an ``error:`` or ``warning:`` line (no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "an error must say something"
    assert all(line.startswith(("error:", "warning:")) for line in lines), result.stderr
    assert "Traceback" not in result.output
    errors = [line for line in lines if line.startswith("error:")]
    assert errors, result.stderr
    return errors


REFUSED = {
    "unknown kind": lambda s: s["evaluator"].update(kind="benchmrk", target=None),
    "unknown option": lambda s: s["search"].update(options={"bogus": 1}),
    "option of the wrong type": lambda s: s["search"].update(options={"iso_sigma": "abc"}),
    "unimportable target": lambda s: s["evaluator"].update(target="no_such_module_xyz:evaluate"),
    "missing attribute": lambda s: s["evaluator"].update(target="tests.support.evaluators:nope"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_campaign_writes_nothing_and_the_corrected_file_runs(tmp_path: Path, case: str) -> None:
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=10)
    bad = quadratic_spec(search__budget=10)
    REFUSED[case](bad)
    if bad["evaluator"].get("target") is None:
        bad["evaluator"].pop("target")
    result = invoke("run", str(write(tmp_path / "bad.yaml", bad)), "--storage", f"sqlite:///{db}",
                    "--executor", "inline")
    assert_one_line_errors(result)
    assert "evaluating" not in result.output  # refused while starting: no progress bar beside the error
    assert not db.exists()  # refused before the storage was opened: no file, no schema
    good = invoke("run", str(write(tmp_path / "good.yaml", spec)), "--storage", f"sqlite:///{db}",
                  "--executor", "inline", "--map", str(tmp_path / "m.png"))
    assert good.exit_code == 0, good.output
    assert "evaluating" in good.output and "10/10" in good.output
    assert campaign_rows(db) == 1


def test_a_refused_option_leaves_a_fresh_postgresql_schema_empty(postgres_url: str) -> None:
    """The proposer's options are checked before the storage is opened: no tables are made."""
    from sqlalchemy import create_engine, text

    bad = quadratic_spec(search__options={"iso_sigma": -1})
    with pytest.raises(SpecError, match=re.escape("search.options.iso_sigma: must be a number > 0")):
        api.run(bad, storage=postgres_url, executor="inline")
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(text("SELECT count(*) FROM information_schema.tables "
                                       "WHERE table_schema = current_schema()")).scalar_one()
    finally:
        engine.dispose()
    assert tables == 0
    assert api.run(quadratic_spec(search__budget=10), storage=postgres_url, executor="inline").finished == 10


def test_the_evaluator_and_the_options_are_refused_together_naming_the_file(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", quadratic_spec(
        evaluator={"kind": "python", "target": "no_such_module_xyz:evaluate"},
        search__options={"iso_sigma": -1, "discount": 0.5}))
    db = tmp_path / "atlas.db"
    errors = assert_one_line_errors(invoke("run", str(bad), "--storage", f"sqlite:///{db}", "--executor", "inline"))
    assert [e.split(": ")[1:3] for e in errors] == [
        [str(bad), "evaluator.target"], [str(bad), "search.options.iso_sigma"]], errors
    assert not db.exists()


def test_a_stored_option_that_is_refused_now_names_the_stored_spec(tmp_path: Path) -> None:
    """A campaign stored by an earlier version with an option this one refuses: its resume
    says which campaign's stored spec, in one line, and charges nothing."""
    import json

    db = tmp_path / "atlas.db"
    api.run(quadratic_spec(search__budget=10), storage=f"sqlite:///{db}", executor="inline")
    with sqlite3.connect(db) as conn:
        spec = json.loads(conn.execute("SELECT spec FROM campaigns").fetchone()[0])
        spec["search"]["options"] = {"random_init": -1}
        conn.execute("UPDATE campaigns SET spec = ?", (json.dumps(spec),))
    errors = assert_one_line_errors(invoke("resume", "quad", "--budget", "20", "--storage", f"sqlite:///{db}",
                                           "--executor", "inline"))
    assert errors == ["error: stored spec of quad: search.options.random_init: must be an integer >= 0 (got -1)"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), sum(attempts) FROM evaluations").fetchone() == (10, 10)


def test_submit_refuses_a_bad_option_before_it_reaches_for_the_cluster(tmp_path: Path) -> None:
    """Nothing listens at the address: the option's error, not the connection's, is what a user sees."""
    bad = write(tmp_path / "bad.yaml", quadratic_spec(search__options={"iso_sigma": "abc"}))
    result = invoke("submit", str(bad), "--address", "http://127.0.0.1:9", "--storage",
                    f"sqlite:///{tmp_path / 'atlas.db'}")
    errors = assert_one_line_errors(result)
    assert errors == [f"error: {bad}: search.options.iso_sigma: must be a number > 0 (got 'abc')"]


def test_an_unknown_executor_is_refused_before_the_row(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=5))
    lines = assert_one_line_errors(invoke("run", str(spec), "--storage", f"sqlite:///{db}", "--executor", "rey"))
    assert "unknown executor 'rey'" in lines[0]
    assert campaign_rows(db) == 0


def test_a_bad_map_path_is_refused_before_the_run(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=5))
    (tmp_path / "file").write_text("")
    result = invoke("run", str(spec), "--storage", f"sqlite:///{db}", "--executor", "inline",
                    "--map", str(tmp_path / "file" / "m.png"))
    assert "is a file, not a folder" in assert_one_line_errors(result)[0]
    assert campaign_rows(db) == 0


@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_a_campaign_whose_first_evaluations_all_fail_stops(tmp_path: Path, executor: str) -> None:
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=200, search__batch_size=5, search__max_in_flight=5)
    spec["evaluator"]["target"] = "tests.support.evaluators:always_fails"
    result = invoke("run", str(write(tmp_path / "c.yaml", spec)), "--storage", f"sqlite:///{db}",
                    "--executor", executor)
    lines = assert_one_line_errors(result)
    assert "the first 10 evaluations all failed" in lines[0] and "always broken" in lines[0]
    store = Store(f"sqlite:///{db}", readonly=True)
    try:
        record = store.require_campaign("quad")
        stats = store.stats(record.id, 25)
        assert record.status == "failed"
        assert 10 <= stats.counts["failed"] < 30 and stats.created < 200
    finally:
        store.close()


def test_a_run_shorter_than_fail_fast_whose_evaluations_all_fail_stops_too(tmp_path: Path) -> None:
    """A run of 3 (a budget, or a resume's --budget, below fail_fast) whose evaluations all
    failed had been reported finished, exit 0; one done among them is a run that works."""
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=3, search__batch_size=1, search__max_in_flight=1)
    spec["evaluator"]["target"] = "tests.support.evaluators:always_fails"
    result = invoke("run", str(write(tmp_path / "c.yaml", spec)), "--storage", f"sqlite:///{db}",
                    "--executor", "inline")
    lines = assert_one_line_errors(result)
    assert "the first 3 evaluations all failed" in lines[0] and "always broken" in lines[0]
    again = invoke("resume", "quad", "--storage", f"sqlite:///{db}", "--executor", "inline", "--budget", "5")
    assert "the first 2 evaluations all failed" in assert_one_line_errors(again)[0]  # this run's 2 of 2
    store = Store(f"sqlite:///{db}", readonly=True)
    try:
        record = store.require_campaign("quad")
        assert record.status == "failed" and store.stats(record.id, 25).counts["failed"] == 5
    finally:
        store.close()

    spec["evaluator"]["target"] = "tests.support.evaluators:flaky"  # raises where a < 0.1
    spec["name"] = "mixed"
    spec["search"]["initial_points"] = [{"a": 0.05, "b": 0.5}, {"a": 0.5, "b": 0.5}, {"a": 0.6, "b": 0.5}]
    result = invoke("run", str(write(tmp_path / "m.yaml", spec)), "--storage", f"sqlite:///{db}",
                    "--executor", "inline")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_an_evaluator_that_cannot_be_set_up_is_refused_before_anything_is_written(tmp_path: Path,
                                                                                  executor: str) -> None:
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=50)
    spec["evaluator"]["target"] = "tests.support.evaluators:BrokenSetup"
    path = write(tmp_path / "c.yaml", spec)
    result = invoke("run", str(path), "--storage", f"sqlite:///{db}", "--executor", executor)
    lines = assert_one_line_errors(result)
    assert "evaluator setup failed: FileNotFoundError: no model at /nowhere/model.bin" in lines[0]
    assert "nothing was written" in lines[0]
    assert not db.exists()  # the setup is waited on before the storage is opened: not even an empty schema
    spec["evaluator"]["target"] = "tests.support.evaluators:quadratic"  # the corrected file runs: nothing was stored
    result = invoke("run", str(write(path, spec)), "--storage", f"sqlite:///{db}", "--executor", executor)
    assert result.exit_code == 0, result.output
    assert campaign_rows(db) == 1


class _LateSetupCheck(InlineExecutor):
    """An inline executor whose setup outcome is not known before the campaign is written
    (as a Ray worker still loading its model when the run's wait ends)."""

    def setup_problem(self, wait_s: float = 0.0) -> str | None:
        return None


def test_a_setup_failing_after_the_campaign_is_written_stops_the_run_and_charges_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(search__budget=50)
    spec["evaluator"]["target"] = "tests.support.evaluators:BrokenSetup"
    executor = _LateSetupCheck(api.executor_config(api.as_spec(spec)))
    with pytest.raises(EvaluatorSetupFailed, match=r"nothing was charged: fix what the evaluator reads and "
                                                   r"`api\.resume\('quad', …\)`, or, .* `archive\.open\(…, "
                                                   r"readonly=False\)\.campaign\('quad'\)\.delete\(\)`"):
        api.run(spec, storage=url, executor=executor)
    store = Store(url, readonly=True)
    try:
        rows = store.evaluations(store.require_campaign("quad").id)
        assert rows and all(r["status"] == "pending" and r["attempts"] == 0 for r in rows)
    finally:
        store.close()


def _stored_then_unloadable(tmp_path: Path, budget: int) -> tuple[Path, Path, dict[str, Any]]:
    """A campaign run to ``budget`` whose evaluator loads ``model.bin`` at setup, then the
    file removed: the storage file, the model's path and the spec."""
    db = tmp_path / "atlas.db"
    model = tmp_path / "model.bin"
    model.write_text("weights")
    spec = quadratic_spec(search__budget=budget)
    spec["evaluator"] = {"kind": "python", "target": "tests.support.evaluators:NeedsFile",
                         "config": {"path": str(model)}}
    api.run(spec, storage=f"sqlite:///{db}", executor="inline")
    model.unlink()
    return db, model, spec


def test_a_resume_whose_setup_fails_changes_nothing(tmp_path: Path) -> None:
    db, model, _ = _stored_then_unloadable(tmp_path, 10)
    result = invoke("resume", "quad", "--storage", f"sqlite:///{db}", "--executor", "inline", "--budget", "20")
    lines = assert_one_line_errors(result)
    assert f"no model at {model}" in lines[0] and "nothing was charged" in lines[0]
    store = Store(f"sqlite:///{db}", readonly=True)
    try:
        record = store.require_campaign("quad")
        assert record.settings.budget == 10  # the new budget was not written either
        assert store.stats(record.id, 0).counts["done"] == 10 and store.count_created(record.id) == 10
    finally:
        store.close()
    model.write_text("weights")
    result = invoke("resume", "quad", "--storage", f"sqlite:///{db}", "--executor", "inline", "--budget", "20")
    assert result.exit_code == 0, result.output
    store = Store(f"sqlite:///{db}", readonly=True)
    try:
        assert store.stats(store.require_campaign("quad").id, 0).counts["done"] == 20
    finally:
        store.close()


def test_a_stored_campaign_run_again_whose_setup_fails_is_named_as_written(tmp_path: Path) -> None:
    """Its setup is waited on before the storage is opened; the line still tells a campaign
    the storage holds (resume, or delete and rerun) from one never written."""
    db, model, spec = _stored_then_unloadable(tmp_path, 4)
    result = invoke("run", str(write(tmp_path / "c.yaml", spec)), "--storage", f"sqlite:///{db}", "--executor",
                    "inline", "--budget", "8")
    lines = assert_one_line_errors(result)
    assert f"no model at {model}" in lines[0] and "nothing was charged" in lines[0], lines


@pytest.mark.parametrize("change", ["seed", "budget"])
def test_a_stored_campaign_the_spec_may_not_continue_is_refused_before_the_workers_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Another spec under a stored name, or a budget below what it has, is refused before
    the executor starts and its evaluator's setup (a model load, minutes) is waited on."""
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=6)
    api.run(spec, storage=f"sqlite:///{db}", executor="inline")
    started: list[str] = []
    monkeypatch.setattr(InlineExecutor, "start", lambda self: started.append("start"))
    monkeypatch.setattr(InlineExecutor, "setup_problem", lambda self, wait_s: started.append("setup"))
    if change == "seed":
        spec["search"]["seed"] = 99
    else:
        spec["search"]["budget"] = 3
    result = invoke("run", str(write(tmp_path / "c.yaml", spec)), "--storage", f"sqlite:///{db}", "--executor",
                    "inline")
    expected = "different spec (changed: search.seed)" if change == "seed" else "below the 6 evaluations"
    assert expected in assert_one_line_errors(result)[0]
    assert started == []


def test_a_decoding_config_the_model_cannot_serve_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    spec = {"name": "too-long",
            "evaluator": {"kind": "decoding", "config": {"model": "builtin:arith-tiny", "num_prompts": 2,
                                                         "samples_per_prompt": 1, "max_new_tokens": 100000}},
            "space": {"temperature": {"type": "float", "low": 0.2, "high": 2.0}},
            "objective": {"name": "accuracy", "direction": "maximize"},
            "measures": [{"name": "mean_entropy", "low": 0.0, "high": 4.0, "bins": 4}],
            "search": {"algorithm": "random", "budget": 4, "batch_size": 2}}
    result = invoke("run", str(write(tmp_path / "c.yaml", spec)), "--storage", f"sqlite:///{db}",
                    "--executor", "inline")
    lines = assert_one_line_errors(result)
    assert "max_new_tokens 100000 does not fit" in lines[0] and "nothing was written" in lines[0]
    assert campaign_rows(db) == 0


def test_fail_fast_can_be_turned_off(tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=30, search__fail_fast=0)
    spec["evaluator"]["target"] = "tests.support.evaluators:always_fails"
    stats = api.run(spec, storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
    assert stats.counts["failed"] == 30


def test_one_done_evaluation_keeps_fail_fast_from_stopping_the_run(tmp_path: Path) -> None:
    """search/scheduler.py: fail-fast stops a run whose first ``fail_fast`` evaluations *all*
    failed (``_all_failed``: none of this run's evaluations done). A run whose first evaluation is
    done and whose next 10 fail goes on to its budget."""
    points = [{"a": 0.5, "b": 0.5}] + [{"a": 0.05, "b": 0.05 + 0.08 * i} for i in range(10)]
    spec = quadratic_spec(search__algorithm="random", search__budget=11, search__batch_size=1,
                          search__max_in_flight=1, search__initial_points=points)
    spec["evaluator"]["target"] = "tests.support.evaluators:flaky"  # raises where a < 0.1
    stats = api.run(spec, storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
    assert stats.counts["done"] == 1 and stats.counts["failed"] == 10


def test_sys_exit_in_an_evaluator_fails_that_evaluation_only(tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=40)
    spec["evaluator"]["target"] = "tests.support.evaluators:exits_when_a_is_high"
    stats = api.run(spec, storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
    assert stats.finished == 40 and 0 < stats.counts["failed"] < 40
    store = Store(f"sqlite:///{tmp_path / 'a.db'}", readonly=True)
    try:
        failed = store.evaluations(store.require_campaign("quad").id, status="failed")
        assert all("sys.exit(3)" in r["error"] for r in failed)
    finally:
        store.close()


@pytest.mark.parametrize("url, message", [
    ("sqlit:///x.db", "unsupported storage 'sqlit'"),
    ("not a url at all", "not a storage URL"),
    ("mysql://root@127.0.0.1/db", "unsupported storage 'mysql'"),
])
def test_a_bad_storage_url_is_one_line(tmp_path: Path, url: str, message: str) -> None:
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=5))
    for args in (("run", str(spec), "--executor", "inline"), ("status",), ("elites", "quad")):
        lines = assert_one_line_errors(invoke(*args, "--storage", url))
        assert message in lines[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "c.yaml"]


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is a text file, not SQLite\n" * 100)
    before = junk.read_bytes()
    for args in (("status",), ("run", str(write(tmp_path / "c.yaml", quadratic_spec())), "--executor", "inline")):
        lines = assert_one_line_errors(invoke(*args, "--storage", f"sqlite:///{junk}"))
        assert "not an SQLite database" in lines[0]
    assert junk.read_bytes() == before


def test_another_applications_sqlite_file_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=5))
    for args in (("status",), ("run", str(spec), "--executor", "inline")):
        assert "another application's tables" in "".join(
            assert_one_line_errors(invoke(*args, "--storage", f"sqlite:///{other}")))
    with sqlite3.connect(other) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"users"}


def test_another_applications_database_is_refused_alone_before_the_run_starts(tmp_path: Path) -> None:
    """Another application's tables were refused only when the run opened the storage for
    writing, after its checks had passed: the file's warnings came first (a refusal stands
    alone), and ``atlas check`` read the database as holding no campaign. The look ahead
    refuses it now, with the same line, and ``check`` with it."""
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=5))  # 25 cells, 5 evaluations: a warning
    said = {}
    for command in ("run", "check"):
        result = invoke(command, str(spec), "--storage", f"sqlite:///{other}",
                        *(("--executor", "inline") if command == "run" else ()))
        assert result.exit_code == 2, result.output
        said[command] = [line for line in result.stderr.splitlines() if line.strip()]
    assert said["run"] == said["check"], said
    assert len(said["run"]) == 1 and said["run"][0].startswith(f"error: storage sqlite:///{other} holds another "
                                                                "application's tables (users)"), said


def test_an_archive_of_a_newer_version_is_named(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    Store(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffff9999'")
    for args in (("status",), ("run", str(write(tmp_path / "c.yaml", quadratic_spec())), "--executor", "inline")):
        lines = assert_one_line_errors(invoke(*args, "--storage", f"sqlite:///{db}"))
        assert "written by a newer Entropy Atlas" in lines[0]


def test_read_commands_create_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "atlas.db"
    for args in (("status",), ("elites", "quad"), ("export", "quad", "--out", str(tmp_path / "x.json")),
                 ("map", "quad", "--out", str(tmp_path / "m.png"))):
        lines = assert_one_line_errors(invoke(*args, "--storage", f"sqlite:///{missing}"))
        assert "does not exist" in lines[0]
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "x.json").exists()


def test_a_folder_with_no_storage_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new user's `atlas status` in a folder where nothing has run: `error: cannot open
    storage sqlite:///atlas.db: the file atlas.db does not exist` (`no campaign named 'foo':
    the storage file atlas.db does not exist`) said what was wrong, not what to do."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_STORAGE", raising=False)
    hint = "run a campaign first (`atlas run SPEC` writes it), or name the storage that holds it " \
           "(--storage URL, or ATLAS_STORAGE)"
    for args in (("status",), ("status", "foo"), ("elites", "foo"), ("failures", "foo"), ("law", "foo"),
                 ("export", "foo", "--out", "x.json"), ("map", "foo", "--out", "m.png"), ("resume", "foo")):
        (line,) = assert_one_line_errors(invoke(*args))
        assert "atlas.db does not exist; " + hint in line, (args, line)
    with pytest.raises(CampaignNotFound, match=re.escape(hint)):
        api.resume("foo", executor="inline")
    assert not list(tmp_path.iterdir())


def test_a_read_only_storage_fails_at_once_not_after_retrying(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes read-only files; the permanent-error rule is checked through PRAGMA below")
    db = tmp_path / "atlas.db"
    api.run(quadratic_spec(search__budget=5), storage=f"sqlite:///{db}", executor="inline")
    db.chmod(0o444)
    result = invoke("run", str(write(tmp_path / "c.yaml", quadratic_spec(search__budget=10))),
                    "--storage", f"sqlite:///{db}", "--executor", "inline")
    assert "lost the storage" not in " ".join(assert_one_line_errors(result))


def test_permanent_errors_are_not_retried(tmp_path: Path) -> None:
    """A write to a read-only connection is refused once, as a StorageError, at once."""
    from archive.errors import StorageError

    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=5), storage=url, executor="inline")
    store = Store(url, readonly=True, retry_s=120)
    try:
        with pytest.raises(StorageError, match=r"readonly|read-only") as raised:
            store.update_campaign(1, status="x")
        assert "lost the storage" not in str(raised.value)  # the message of a retried error
    finally:
        store.close()


def test_resuming_a_finished_campaign_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    result = invoke("resume", "quad", "--storage", url)  # the Ray executor: never started
    assert result.exit_code == 0 and "already finished: 10 of 10" in " ".join(result.stdout.split())


@pytest.mark.parametrize(("args", "message"), [
    (("resume", "quad", "--budget", "5"), "error: stored spec of quad with --budget 5: search.budget: 5 is below "
                                          "the 10 evaluations campaign 'quad' already has; continue it with "
                                          "`atlas resume quad --storage URL --executor inline` (its budget is "
                                          "10), or run more with a --budget above 10"),
    (("resume", "quad", "--budget", "0"), "error: stored spec of quad with --budget 0: search.budget: must be > 0"),
    (("elites", "quad", "--top", "-3"), "error: --top must be >= 1, not -3"),
    (("elites", "quad", "--top", "0"), "error: --top must be >= 1, not 0"),
    (("failures", "quad", "--limit", "0"), "error: --limit must be >= 1, not 0"),
])
def test_a_number_out_of_range_on_the_command_line_is_one_line(tmp_path: Path, args: tuple, message: str) -> None:
    """``--budget`` below what the campaign has was "already finished: 10 of 5", and 0 was
    taken as no budget given; a negative ``--top`` became SQL's LIMIT -3 (no limit);
    ``--limit 0`` was typer's boxed usage error."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    assert assert_one_line_errors(invoke(*args, "--storage", url, "--executor", "inline")
                                  if args[0] == "resume" else invoke(*args, "--storage", url)) == [
        message.replace("URL", url)]
    with sqlite3.connect(tmp_path / "atlas.db") as conn:
        assert conn.execute("SELECT count(*), max(attempts) FROM evaluations").fetchone() == (10, 1)


def test_an_override_that_is_refused_names_the_file_and_the_override(tmp_path: Path) -> None:
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=10))
    errors = assert_one_line_errors(invoke("run", str(spec), "--budget", "-5", "--storage",
                                           f"sqlite:///{tmp_path / 'atlas.db'}", "--executor", "inline"))
    assert errors == [f"error: {spec} with --budget -5: search.budget: must be > 0"]
    assert not (tmp_path / "atlas.db").exists()


def test_store_elites_refuses_a_negative_top(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'atlas.db'}")
    try:
        with pytest.raises(ValueError, match="top: must be >= 0"):
            store.elites(1, top=-1)
    finally:
        store.close()


def test_a_scheduler_that_died_shows_as_interrupted_and_unstarted_rows_are_not_charged(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=20, search__batch_size=10, search__max_in_flight=10)
    spec["evaluator"]["target"] = "tests.support.evaluators:dies_on_third_call"
    path = write(tmp_path / "c.yaml", spec)
    done = subprocess.run([sys.executable, "-m", "search.cli", "run", str(path), "--storage", f"sqlite:///{db}",
                           "--executor", "inline"], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL
    store = Store(f"sqlite:///{db}", readonly=True)
    try:
        record = store.require_campaign("quad")
        rows = store.evaluations(record.id)
    finally:
        store.close()
    assert record.status == "running" and record.live_status(now=record.lease_expires + 1) == "interrupted"
    started = [r for r in rows if r["attempts"] > 0]
    assert len(started) == 3 and all(r["status"] == "running" and r["attempts"] == 1 for r in started)
    unstarted = [r for r in rows if r not in started]
    assert len(unstarted) == 7 and all(r["status"] == "pending" and r["attempts"] == 0 for r in unstarted)
    status = invoke("status", "quad", "--storage", f"sqlite:///{db}", "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)["status"] == "interrupted"


@pytest.mark.parametrize("command", [("map", "quad"), ("front", "quad"), ("law", "quad"),
                                     ("export", "quad")])
def test_an_output_that_cannot_be_written_is_refused_before_the_work(tmp_path: Path, command: tuple) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    (tmp_path / "taken").write_text("a file")
    suffix = ".json" if command[0] == "export" else ".png"
    for out, message in ((tmp_path / "taken" / f"x{suffix}", "is a file, not a folder"),
                         (tmp_path / "x.txt", "the file must end in"), (tmp_path, "is a directory")):
        lines = assert_one_line_errors(invoke(*command, "--out", str(out), "--storage", url))
        assert message in lines[0], lines


def _small_campaign(tmp_path: Path, db: Path) -> None:
    result = invoke("run", str(write(tmp_path / "c.yaml", quadratic_spec(search__budget=6))), "--storage",
                    f"sqlite:///{db}", "--executor", "inline", "--map", str(tmp_path / "m.png"))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("scheme, out", [("sqlite", "store.json"), ("sqlite", "store.json-wal"),
                                         ("sqlite+pysqlite", "store.json")])
def test_an_output_may_not_be_the_storage_being_read(tmp_path: Path, scheme: str, out: str) -> None:
    """A storage file named like an export: the export would have replaced the archive (as
    it did where the URL named SQLite's driver, ``sqlite+pysqlite:///store.json``)."""
    db = tmp_path / "store.json"
    _small_campaign(tmp_path, db)
    before = db.read_bytes()
    result = invoke("export", "quad", "--storage", f"{scheme}:///{db}", "--out", str(tmp_path / out))
    assert "is the storage being read" in assert_one_line_errors(result)[0]
    assert db.read_bytes() == before and campaign_rows(db) == 1


def test_the_root_folder_as_storage_is_one_line(tmp_path: Path) -> None:
    """``--storage sqlite:////`` (the folder ``/``): ``ValueError: PosixPath('/') has an empty
    name`` as a traceback, from the check that the map is not the storage."""
    result = invoke("run", str(write(tmp_path / "c.yaml", quadratic_spec(search__budget=6))), "--storage",
                    "sqlite:////", "--executor", "inline", "--map", str(tmp_path / "m.png"))
    assert assert_one_line_errors(result) == ["error: cannot open storage sqlite:////: / is not a regular file"]


@pytest.mark.parametrize("out", ["a" * 300 + ".png", "/proc/atlas-test.png", "x\udcff.png"])
def test_an_output_the_file_system_refuses_is_one_line(tmp_path: Path, out: str) -> None:
    """A name too long for the file system, a place that refuses files as they are written
    (``/proc``, which a root user's access check passes), a path that is not UTF-8."""
    db = tmp_path / "atlas.db"
    _small_campaign(tmp_path, db)
    path = out if out.startswith("/") else str(tmp_path / out)
    for command in ("map", "front"):
        result = invoke(command, "quad", "--storage", f"sqlite:///{db}", "--out", path)
        assert assert_one_line_errors(result)[0].startswith("error: "), result.stderr
    result = invoke("export", "quad", "--storage", f"sqlite:///{db}", "--out", path.removesuffix(".png") + ".csv")
    assert_one_line_errors(result)


def test_a_default_map_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "atlas-maps").write_text("")
    spec = write(tmp_path / "c.yaml", quadratic_spec(search__budget=6))
    result = invoke("run", str(spec), "--executor", "inline")
    assert "atlas-maps is a file, not a folder" in assert_one_line_errors(result)[0]
    assert campaign_rows(tmp_path / "atlas.db") == 0


def test_a_refused_run_prints_its_errors_alone_and_a_run_that_starts_its_warnings(tmp_path: Path) -> None:
    """The file's warnings (here: more cells than the budget can fill) had been printed before
    the refusal that made them moot."""
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=10)  # 25 cells
    spec["evaluator"]["target"] = "no_such_module_anywhere:f"
    refused = invoke("run", str(write(tmp_path / "bad.yaml", spec)), "--storage", f"sqlite:///{db}",
                     "--executor", "inline")
    errors = assert_one_line_errors(refused)
    assert len(errors) == 1 and "cannot import 'no_such_module_anywhere'" in errors[0]
    assert "warning:" not in refused.stderr
    spec["evaluator"]["target"] = "tests.support.evaluators:quadratic"
    good = invoke("run", str(write(tmp_path / "good.yaml", spec)), "--storage", f"sqlite:///{db}",
                  "--executor", "inline", "--map", str(tmp_path / "m.png"))
    assert good.exit_code == 0, good.output
    assert "warning: archive: 25 cells but the budget is 10 evaluations" in good.stderr
