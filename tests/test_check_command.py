"""``atlas check SPEC`` and :func:`search.api.check`: a campaign file checked as ``atlas run``
would check it, against the storage it would run on, by the run's own functions: each of
the run's refusals before its workers start with the run's words (exit 2), and else what the
run would do (exit 0), writing nothing and starting no workers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from archive.errors import SchemaBehind
from archive.store import Store
from entropy_atlas.holders import holder_text
from search import api
from search.campaigns import CampaignConflict, open_campaign
from search.cli import app
from search.scheduler import EvaluatorSetupFailed, lease_holder_id
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec

QUAD = "python tests.support.evaluators:quadratic"
BROKEN = {"kind": "python", "target": "tests.support.evaluators:BrokenSetup"}


def _file(folder: Path, name: str = "c.yaml", **overrides: Any) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(quadratic_spec(**overrides), sort_keys=False))
    return path


def _atlas(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def stored(tmp_path: Path) -> str:
    """A SQLite storage holding campaign ``quad`` run to its budget of 10."""
    url = f"sqlite:///{tmp_path / 'made.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    return url


def test_a_valid_file_is_summed_up_and_nothing_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_STORAGE", raising=False)
    spec = _file(tmp_path, search__budget=200, search__batch_size=20, search__max_in_flight=40)
    result = _atlas("check", str(spec))
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout) == [
        "quad: map-elites, 200 evaluations in batches of 20 (40 in flight)",
        f"25 grid cells over ma × mb, evaluator {QUAD}",
        "sqlite:///atlas.db: a new campaign; the run creates the file",
    ]
    assert result.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]  # no atlas.db, no atlas-maps/


@pytest.mark.parametrize(("overrides", "args", "env"), [
    ({"search__budget": 0}, (), None),  # the file's own fields
    ({"search__options": {"iso_sigma": -1}}, (), None),  # the proposer's options
    ({"evaluator": {"kind": "python", "target": "tests.support.nowhere:f"}}, (), None),  # the evaluator's target
    ({}, ("--budget", "-1"), None),  # an override
    ({}, ("--name", "Bad Name"), None),
    ({}, (), {"ATLAS_LEASE_TTL": "soon"}),  # the environment's settings
    ({}, ("--storage", "sqlite:///{tmp}/no/such/folder/x.db"), None),  # the storage
    ({}, ("--storage", "sqlit:///x.db"), None),
], ids=["field", "option", "target", "budget", "name", "setting", "folder", "url"])
def test_a_refused_file_gets_the_run_s_error_lines(tmp_path: Path, overrides: dict[str, Any], args: tuple[str, ...],
                                                   env: dict[str, str] | None) -> None:
    spec = _file(tmp_path, **overrides)
    args = tuple(a.replace("{tmp}", str(tmp_path)) for a in args)
    if "--storage" not in args:
        args = (*args, "--storage", f"sqlite:///{tmp_path / 'atlas.db'}")
    checked = _atlas("check", str(spec), *args, env=env)
    ran = _atlas("run", str(spec), *args, "--executor", "inline", env=env)
    assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
    assert _lines(checked.stderr)[0].startswith("error: ")
    assert _lines(checked.stderr) == _lines(ran.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_a_stored_campaign_the_file_may_not_continue_gets_the_run_s_refusal(tmp_path: Path, stored: str) -> None:
    """A changed spec, and a budget below what the campaign has: the run's words, the way
    on as ``atlas`` says it (the storage given carried into ``atlas resume``)."""
    changed = _file(tmp_path, search__budget=10, search__batch_size=5)
    same = _file(tmp_path, "same.yaml", search__budget=10)
    for args in ([str(changed)], [str(same), "--budget", "4"]):
        checked = _atlas("check", *args, "--storage", stored)
        ran = _atlas("run", *args, "--storage", stored)  # refused before Ray starts
        assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
        assert _lines(checked.stderr) == _lines(ran.stderr)
    assert "changed: search.batch_size); use another --name, or resume it with `atlas resume quad --storage " \
        in _atlas("check", str(changed), "--storage", stored).stderr


def test_a_spent_fail_fast_budget_is_the_run_s_refusal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'made.db'}"
    fails = {"kind": "python", "target": "tests.support.evaluators:always_fails"}
    with pytest.raises(Exception, match="failed"):
        api.run(quadratic_spec(evaluator=fails, search__budget=3), storage=url, executor="inline")
    spec = _file(tmp_path, evaluator=fails, search__budget=3)
    checked = _atlas("check", str(spec), "--storage", url)
    ran = _atlas("run", str(spec), "--storage", url)  # refused before Ray starts; its resume line as check's
    assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
    assert _lines(checked.stderr) == _lines(ran.stderr)
    assert "failed with its budget of 3 spent" in checked.stderr


def test_continued_and_finished_campaigns_are_said(tmp_path: Path, stored: str) -> None:
    spec = _file(tmp_path, search__budget=10)
    finished = _atlas("check", str(spec), "--storage", stored)
    assert finished.exit_code == 0, finished.output
    assert _lines(finished.stdout)[-1] == (f"{stored}: campaign quad is already finished: 10 of 10 evaluations; raise "
                                           f"the budget to go on (`atlas resume quad --storage {stored} --budget N`)")
    more = _atlas("check", str(spec), "--storage", stored, "--budget", "30")
    assert _lines(more.stdout)[0].startswith("quad: map-elites, 30 evaluations")
    assert _lines(more.stdout)[-1] == f"{stored}: continues campaign quad: 10 of 30 evaluations done, 20 to run"
    for args, fields in ((["--budget", "30"], {"campaign": "continues", "done": 10, "to_run": 20, "budget": 30}),
                         ([], {"campaign": "finished", "done": 10, "to_run": 0, "budget": 10})):
        result = _atlas("check", str(spec), "--storage", stored, "--json", *args)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert {k: doc[k] for k in fields} == fields
        assert doc["name"] == "quad" and doc["algorithm"] == "map-elites" and doc["batch_size"] == 10
        assert doc["max_in_flight"] == 20 and doc["cells"] == 25 and doc["measures"] == ["ma", "mb"]
        assert doc["storage"] == stored and doc["held_by"] is None and doc["setup"] is False
        assert doc["warnings"] == ["archive: 25 cells but the budget is 10 evaluations; at most 40% of the map can "
                                   "be filled"] if not args else doc["warnings"] == []
    store = Store(stored, readonly=True)
    try:  # nothing written: the budget raised by neither check
        assert store.require_campaign("quad").settings.budget == 10
    finally:
        store.close()


def test_the_warnings_are_the_run_s_warning_lines(tmp_path: Path) -> None:
    spec = _file(tmp_path, search__batch_size=30)
    result = _atlas("check", str(spec), "--storage", f"sqlite:///{tmp_path / 'atlas.db'}")
    assert result.exit_code == 0, result.output
    assert _lines(result.stderr) == ["warning: search.batch_size: 30 but max_in_flight is 20; at most 20 are asked "
                                     "at a time"]


def test_setup_runs_the_evaluator_s_setup_and_says_the_run_s_error(tmp_path: Path) -> None:
    spec = _file(tmp_path, evaluator=BROKEN)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    plain = _atlas("check", str(spec), "--storage", url)
    assert plain.exit_code == 0, plain.output  # off by default: the setup is not run
    checked = _atlas("check", str(spec), "--storage", url, "--setup")
    ran = _atlas("run", str(spec), "--storage", url, "--executor", "inline")
    assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
    assert _lines(checked.stderr) == _lines(ran.stderr)
    assert "evaluator setup failed: FileNotFoundError: no model at /nowhere/model.bin" in checked.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
    good = _atlas("check", str(_file(tmp_path, "good.yaml")), "--storage", url, "--setup")
    assert good.exit_code == 0 and _lines(good.stdout)[-1] == "the evaluator's setup succeeded", good.output


def test_a_campaign_a_live_scheduler_runs_is_said_not_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    store = Store(url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        assert store.acquire_lease(campaign.id, lease_holder_id(), ttl_s=60) is None
        spec = _file(tmp_path)
        result = _atlas("check", str(spec), "--storage", url)
        assert result.exit_code == 0, result.output
        holder = holder_text(lease_holder_id())
        assert _lines(result.stdout)[-2:] == [
            f"{url}: continues campaign quad: 0 of 60 evaluations done, 60 to run",
            f"campaign quad is being run now by {holder}; a run is refused until it stops"]
        assert json.loads(_atlas("check", str(spec), "--storage", url, "--json").stdout)["held_by"] == holder
        assert _atlas("run", str(spec), "--storage", url).exit_code == 2  # which the run refuses
    finally:
        store.close()


def test_an_archive_at_an_older_schema_is_not_brought_up(tmp_path: Path, stored: str) -> None:
    from sqlalchemy import create_engine

    from tests.support.migrations import migrate_to

    engine = create_engine(stored)
    migrate_to(engine, "0003", down=True)
    engine.dispose()
    result = _atlas("check", str(_file(tmp_path, search__budget=10)), "--storage", stored)
    assert result.exit_code == 0, result.output  # the run would bring it up and go on: no refusal
    assert _lines(result.stdout)[-1] == (f"{stored}: an archive at an older schema revision, which the run brings up "
                                         "to this version first (`atlas migrate --storage URL` does it alone); check "
                                         "again after that for the campaign it may hold")
    said = json.loads(_atlas("check", str(_file(tmp_path, search__budget=10)), "--storage", stored, "--json").stdout)
    assert (said["campaign"], said["done"], said["to_run"], said["behind"]) == ("unknown", None, None, True)
    with pytest.raises(SchemaBehind):  # still behind: check did not migrate it
        Store(stored, readonly=True)
    assert _atlas("run", str(_file(tmp_path, search__budget=10)), "--storage", stored, "--executor",
                  "inline").exit_code == 0  # as the run does: it brings the archive up and runs


def _head() -> str:
    from archive.engine import head_revision

    return head_revision()


def test_the_api_returns_the_report_and_speaks_python(tmp_path: Path, stored: str) -> None:
    report = api.check(quadratic_spec(search__budget=30), storage=stored)
    assert isinstance(report, api.CheckReport)
    assert (report.name, report.campaign, report.done, report.to_run) == ("quad", "continues", 10, 20)
    assert (report.budget, report.batch_size, report.max_in_flight, report.archive) == (30, 10, 20, "grid")
    assert (report.cells, report.measures, report.evaluator, report.held_by) == (25, ("ma", "mb"), QUAD, None)
    new = api.check(quadratic_spec(), storage=tmp_path / "new.db", name="q2")
    assert (new.name, new.campaign, new.to_run) == ("q2", "new", 60) and not (tmp_path / "new.db").exists()
    spec = _file(tmp_path, search__budget=10)
    with pytest.raises(SpecError) as budget:
        api.check(spec, storage=stored, budget=-1)
    assert str(budget.value).startswith(f"{spec} with budget=-1 is not valid")
    with pytest.raises(CampaignConflict, match=r"use another name=…, or resume it with `api\.resume\('quad', …\)`"):
        api.check(quadratic_spec(search__budget=10, search__batch_size=5), storage=stored)
    with pytest.raises(EvaluatorSetupFailed, match="nothing was written"):
        api.check(quadratic_spec(evaluator=BROKEN), storage=tmp_path / "new.db", setup=True)
    with pytest.raises(TypeError, match="setup: must be True or False"):
        api.check(quadratic_spec(), storage=stored, setup="yes")  # type: ignore[arg-type]
    assert not (tmp_path / "new.db").exists()


def test_the_api_keeps_the_evaluator_s_warnings_in_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """The evaluator's warnings (logged by a run) are the report's, before the file's, and
    given to ``on_warning``; nothing is logged."""
    review = api.evaluator_review
    monkeypatch.setattr(api, "evaluator_review", lambda spec: (review(spec)[0], ["space.a: not read"]))
    said: list[str] = []
    with caplog.at_level(logging.WARNING, logger="entropy_atlas"):
        report = api.check(quadratic_spec(search__batch_size=30), storage=tmp_path / "x.db", on_warning=said.append)
    assert report.warnings == ("space.a: not read", "search.batch_size: 30 but max_in_flight is 20; at most 20 "
                               "are asked at a time")
    assert said == list(report.warnings) and caplog.records == []


@pytest.mark.parametrize("stored_too", [False, True], ids=["new", "refused-stored"])
def test_an_unwritable_map_path_is_checked_where_the_run_checks_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    stored: str, stored_too: bool) -> None:
    """The default map path (``atlas-maps/…``, here a file where its folder goes) is checked
    where ``atlas run`` checks it: before the storage's campaign and before the file's
    warnings are printed, so check's lines are run's, a file's warning not among them, and a
    stored campaign the file may not continue is not said first."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "atlas-maps").write_text("not a folder")
    url = stored if stored_too else f"sqlite:///{tmp_path / 'new.db'}"
    spec = _file(tmp_path, search__batch_size=30, search__budget=10, search__max_in_flight=40)  # warns; stored: changed
    checked = _atlas("check", str(spec), "--storage", url)
    ran = _atlas("run", str(spec), "--storage", url, "--executor", "inline")
    assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
    assert len(_lines(checked.stderr)) == 1 and "atlas-maps is a file, not a folder" in checked.stderr
    assert _lines(checked.stderr) == _lines(ran.stderr)
    assert not (tmp_path / "new.db").exists()


def test_several_files_are_checked_each_on_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas check a.yaml b.yaml c.yaml`` (a folder of campaigns in CI): every file is
    checked, whatever the others; each refused one prints the run's lines, the others their
    summaries (a blank line between two), and the exit is 2 where any was refused; ``--json``
    gives the list of the reports that passed, each naming its ``file``; ``--name`` names one
    campaign, so several files with it are refused."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATLAS_STORAGE", raising=False)
    def named_file(file: str, **overrides: Any) -> Path:
        (tmp_path / file).write_text(yaml.safe_dump(quadratic_spec(**overrides), sort_keys=False))
        return tmp_path / file

    first = named_file("a.yaml", name="qa")
    bad = named_file("b.yaml", name="qb", search__budget=0)
    last = named_file("c.yaml", name="qc", search__budget=30)
    result = _atlas("check", str(first), str(bad), str(last))
    assert result.exit_code == 2, result.output
    assert result.stderr == _atlas("check", str(bad)).stderr  # the refused file's own lines, as alone
    blocks = result.stdout.strip().split("\n\n")
    assert [b.splitlines()[0].split(":")[0] for b in blocks] == ["qa", "qc"]
    assert blocks[1] == _atlas("check", str(last)).stdout.strip()  # each summary as alone
    said = json.loads(_atlas("check", str(first), str(last), "--json").stdout)
    assert [(r["file"], r["name"], r["budget"]) for r in said] == [(str(first), "qa", 60), (str(last), "qc", 30)]
    one = json.loads(_atlas("check", str(first), "--json").stdout)
    assert isinstance(one, dict) and one["file"] == str(first)  # one file: one object, as before
    named = _atlas("check", str(first), str(last), "--name", "other")
    assert named.exit_code == 2 and _lines(named.stderr) == [
        "error: --name names one campaign, and 2 files were given"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.yaml", "b.yaml", "c.yaml"]  # nothing created
