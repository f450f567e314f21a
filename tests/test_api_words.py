"""A run of the Python API that stops says the way on in Python's words.

``api.run``/``api.resume`` (``cli_words`` False) had ended a stop of the scheduler's, or a
failed setup, with the command line's ``atlas resume NAME`` and ``atlas delete NAME --yes``:
a way on that cannot work for a proposer registered in a script
(:func:`search.proposers.register`: ``atlas`` does not know it), and that drops the options
the run was given. They say ``api.resume('quad', …)`` and
``archive.open(…, readonly=False).campaign('quad').delete()`` now; ``atlas`` (``cli_words``)
still says its own, with its ``--storage``/``--executor`` added (:func:`search.consoles.hinted`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import archive
from archive.errors import StorageError, StorageFull
from archive.store import Store
from search import api, proposers
from search.campaigns import CampaignConflict, commit_campaign, plan_campaign
from search.cli import app
from search.scheduler import (
    CampaignBusy,
    CampaignFailing,
    EvaluatorSetupFailed,
    LeaseLost,
    ProposerFailed,
    ProposerStuck,
    lease_holder_id,
)
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec
from tests.support.proposers import GridWalkProposer
from workers.executors.inline import InlineExecutor

RESUME = "`api.resume('quad', …)`"
DELETE = "`archive.open(…, readonly=False).campaign('quad').delete()`"


class StateRaises(GridWalkProposer):
    """A script's proposer whose ``state()`` raises (its checkpoint cannot be taken)."""

    name = "state-raises"

    def state(self) -> bytes:
        raise RuntimeError("the state is gone")


class AsksOnce(GridWalkProposer):
    """A script's proposer that proposes one point, then nothing (a space used up)."""

    name = "asks-once"

    def ask(self, n: int) -> list[Any]:
        return super().ask(min(n, 1 - self.asked))


class AsksNothing(GridWalkProposer):
    """A script's proposer that proposes nothing at all."""

    name = "asks-nothing"

    def ask(self, n: int) -> list[Any]:
        return []


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts, and leaves, with only this file's proposers registered."""
    monkeypatch.setattr(proposers, "_REGISTERED", {})
    for cls in (StateRaises, AsksOnce, AsksNothing):
        proposers.register(cls.name, cls)


def _url(tmp_path: Path, file: str = "atlas.db") -> str:
    return f"sqlite:///{tmp_path / file}"


def _small(**search: Any) -> dict[str, Any]:
    """Campaign ``quad`` of budget 8, in batches of 4, with ``search`` as its search's other fields."""
    spec = quadratic_spec()
    spec["search"].update({"budget": 8, "batch_size": 4, "max_in_flight": 4, **search})
    return spec


def _atlas(*args: str) -> str:
    """The one ``error:`` line of ``atlas ARGS``, which exits 2."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _run_file(tmp_path: Path, spec: dict[str, Any], url: str, *flags: str) -> str:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return _atlas("run", str(path), "--storage", url, "--executor", "inline", *flags)


def _python_words(line: str) -> None:
    assert "atlas " not in line and "--" not in line, line


# -- a proposer's stop -----------------------------------------------------------------------
def test_a_registered_proposer_whose_state_raises_says_api_resume(tmp_path: Path) -> None:
    """It said "fix the proposer (or its options) and `atlas resume quad`", which cannot run
    a proposer registered in a script."""
    with pytest.raises(ProposerFailed) as raised:
        api.run(_small(algorithm=StateRaises.name), storage=_url(tmp_path), executor="inline")
    line = str(raised.value)
    assert line.startswith("campaign 'quad': proposer state-raises raised in state: RuntimeError: the state is gone")
    assert line.endswith(f"; fix the proposer (or its options) and {RESUME}"), line
    _python_words(line)

    url = _url(tmp_path, "cli.db")
    cli = _run_file(tmp_path, _small(algorithm=StateRaises.name), url)
    assert cli.endswith(f"; fix the proposer (or its options) and `atlas resume quad --storage {url} "
                        f"--executor inline`"), cli


def test_a_proposer_stuck_says_api_resume_with_the_lower_budget(tmp_path: Path) -> None:
    """It said "lower the budget with `atlas resume quad --budget 1`"."""
    with pytest.raises(ProposerStuck) as raised:
        api.run(_small(algorithm=AsksOnce.name, batch_size=1, max_in_flight=1), storage=_url(tmp_path),
                executor="inline")
    line = str(raised.value)
    assert line.endswith("(a small discrete space may be used up: lower the budget with "
                         "`api.resume('quad', budget=1, …)`, or widen the space)"), line
    _python_words(line)


def test_a_proposer_stuck_before_its_first_evaluation_says_api_resume_or_delete(tmp_path: Path) -> None:
    spec = _small(algorithm=AsksNothing.name)
    with pytest.raises(ProposerStuck) as raised:
        api.run(spec, storage=_url(tmp_path), executor="inline")
    line = str(raised.value)
    assert line.endswith(f"fix the proposer (or its options) and {RESUME}, or {DELETE} and run the corrected "
                         f"spec"), line
    _python_words(line)

    url = _url(tmp_path, "cli.db")
    cli = _run_file(tmp_path, spec, url)
    assert cli.endswith(f"fix the proposer (or its options) and `atlas resume quad --storage {url} --executor "
                        f"inline`, or `atlas delete quad --storage {url} --yes` and run the corrected file"), cli


# -- a setup that fails on a campaign the storage holds --------------------------------------
def _stored_then_unloadable(tmp_path: Path, url: str) -> dict[str, Any]:
    """Campaign ``quad`` (budget 4) run whole in ``url``, its evaluator's model then removed."""
    model = tmp_path / "model.bin"
    model.write_text("weights")
    spec = quadratic_spec(search__budget=4, search__batch_size=4)
    spec["evaluator"] = {"kind": "python", "target": "tests.support.evaluators:NeedsFile",
                         "config": {"path": str(model)}}
    api.run(spec, storage=url, executor="inline")
    model.unlink()
    return spec


@pytest.mark.parametrize("call", ["run", "resume"])
def test_a_failed_setup_of_a_stored_campaign_says_api_resume_or_the_handles_delete(tmp_path: Path,
                                                                                  call: str) -> None:
    """It said "`atlas resume quad`, or, … `atlas delete quad --yes` and run the corrected file"."""
    url = _url(tmp_path)
    spec = _stored_then_unloadable(tmp_path, url)
    with pytest.raises(EvaluatorSetupFailed) as raised:
        if call == "run":
            api.run(spec, storage=url, executor="inline", budget=8)
        else:
            api.resume("quad", storage=url, executor="inline", budget=8)
    line = str(raised.value)
    assert line.endswith(f"; nothing was charged: fix what the evaluator reads and {RESUME}, or, where its config "
                         f"must change (the stored spec is the campaign's), {DELETE} and run the corrected "
                         f"spec"), line
    _python_words(line)

    flags = ("--storage", url, "--executor", "inline", "--budget", "8")
    cli = (_run_file(tmp_path, spec, url, "--budget", "8") if call == "run" else _atlas("resume", "quad", *flags))
    assert cli.endswith(f"fix what the evaluator reads and `atlas resume quad --storage {url} --executor inline`, "
                        f"or, where its config must change (the stored spec is the campaign's), "
                        f"`atlas delete quad --storage {url} --yes` and run the corrected file"), cli


class _LateSetupCheck(InlineExecutor):
    """An inline executor whose setup outcome is known only once the campaign is written."""

    def setup_problem(self, wait_s: float = 0.0) -> str | None:
        return None


def test_a_setup_failing_under_the_run_says_api_resume(tmp_path: Path) -> None:
    spec = quadratic_spec(search__budget=8)
    spec["evaluator"]["target"] = "tests.support.evaluators:BrokenSetup"
    executor = _LateSetupCheck(api.executor_config(api.as_spec(spec)))
    with pytest.raises(EvaluatorSetupFailed) as raised:
        api.run(spec, storage=_url(tmp_path), executor=executor)
    assert f"fix what the evaluator reads and {RESUME}, or, " in str(raised.value)
    assert f"{DELETE} and run the corrected spec" in str(raised.value)
    _python_words(str(raised.value))


# -- the run's other stops ----------------------------------------------------------------------
def test_a_busy_campaign_says_api_resume(tmp_path: Path) -> None:
    url = _url(tmp_path)
    store = Store(url)
    try:
        record = commit_campaign(store, plan_campaign(store, parse_spec(quadratic_spec())))
        assert store.acquire_lease(record.id, lease_holder_id(), ttl_s=60) is None
        for call in (lambda: api.run(quadratic_spec(), storage=url, executor="inline"),
                     lambda: api.resume("quad", storage=url, executor="inline")):
            with pytest.raises(CampaignBusy) as raised:
                call()
            assert str(raised.value).endswith(f"(at most 30 s), then {RESUME}"), raised.value
        cli = _atlas("resume", "quad", "--storage", url, "--executor", "inline")
        assert cli.endswith(f"then `atlas resume quad --storage {url} --executor inline`"), cli
    finally:
        store.close()


@pytest.mark.parametrize("error", [StorageFull("storage x is full"), StorageError("lost the storage for 8 s")])
def test_a_storage_full_or_lost_says_api_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                error: StorageError) -> None:
    def refused(self: Store, *args: Any, **kwargs: Any) -> list[int]:
        raise error

    monkeypatch.setattr(Store, "step", refused)
    with pytest.raises(StorageError) as raised:
        api.run(_small(), storage=_url(tmp_path), executor="inline")
    line = str(raised.value)
    assert (f"free space there, then {RESUME}" if isinstance(error, StorageFull)
            else f"kept: {RESUME} continues it once the storage answers") in line, line
    _python_words(line)


def test_a_campaign_deleted_under_the_run_says_the_handles_delete(tmp_path: Path) -> None:
    url = _url(tmp_path)

    deleted: list[bool] = []

    def delete(stats: Any) -> None:
        if not deleted:
            with archive.open(url, readonly=False) as handle:
                handle.campaign("quad").delete(force=True)
            deleted.append(True)

    with pytest.raises(LeaseLost) as raised:
        api.run(_small(), storage=url, executor="inline", progress=delete)
    assert str(raised.value) == ("campaign 'quad' was deleted while this run held it "
                                 "(`archive.open(…, readonly=False).campaign('quad').delete(force=True)`); "
                                 "this run stopped without writing more")


def test_a_campaign_failing_fast_says_the_handles_failures(tmp_path: Path) -> None:
    spec = _small(fail_fast=4)
    spec["evaluator"]["target"] = "tests.support.evaluators:always_fails"
    with pytest.raises(CampaignFailing) as raised:
        api.run(spec, storage=_url(tmp_path), executor="inline")
    assert "(see `archive.open(…).campaign('quad').failure_summary()`; search.fail_fast: 0 turns this check off)" \
        in str(raised.value), raised.value


def test_a_name_taken_meanwhile_says_api_resume(tmp_path: Path) -> None:
    url = _url(tmp_path)
    store = Store(url)
    try:
        plan = plan_campaign(store, parse_spec(quadratic_spec()))
        commit_campaign(store, plan_campaign(store, parse_spec(quadratic_spec())))  # another run, first
        with pytest.raises(CampaignConflict) as python:
            commit_campaign(store, plan)  # Python's words unless told otherwise
        with pytest.raises(CampaignConflict) as command_line:
            commit_campaign(store, plan, cli_words=True)
    finally:
        store.close()
    assert str(python.value).endswith(f"that run has it: {RESUME} once it stops"), python.value
    assert str(command_line.value).endswith("that run has it: `atlas status quad`, and `atlas resume quad` once "
                                            "it stops"), command_line.value


def test_delete_words() -> None:
    from search.campaigns import delete_words

    assert delete_words("quad", cli_words=True) == "atlas delete quad --yes"
    assert delete_words("quad", cli_words=False) == "archive.open(…, readonly=False).campaign('quad').delete()"


def test_every_message_function_speaks_python_unless_told_atlas() -> None:
    """One rule for the default of ``cli_words``: a library function says the way on in
    Python's words; only ``atlas`` (and what it calls) passes ``cli_words=True``. Stop 35 left
    five defaults at True and four at False, so a caller that forgot the flag got either."""
    import inspect

    from search import api, campaigns, scheduler

    functions = [scheduler.busy_message, scheduler.proposer_failed_message, scheduler.proposer_output_message,
                 scheduler.rerun_words, scheduler.setup_failed_message, scheduler.Scheduler.__init__,
                 campaigns.commit_campaign, campaigns.write_limits, campaigns.check_budget, campaigns.plan_campaign,
                 campaigns.check_not_spent, campaigns.resume_words, campaigns.delete_words, campaigns.rename_words,
                 api.refuse_busy, api.run, api.resume, api.given_words]
    defaults = {f.__qualname__: inspect.signature(f).parameters["cli_words"].default for f in functions}
    assert defaults == dict.fromkeys(defaults, False)
    assert "api.resume('k1', …)" in scheduler.busy_message("k1", "vm:1:a:b:c", 30)


def test_a_new_limit_refused_inside_commit_campaign_says_the_callers_words(tmp_path: Path) -> None:
    """``commit_campaign`` with ``limits`` writes the new budget itself; its refusal (the
    budget below what the campaign has) had always said ``atlas resume``: the caller's words
    were not passed on to :func:`write_limits`."""
    url = _url(tmp_path)
    api.run(quadratic_spec(search__budget=8, search__batch_size=4), storage=url, executor="inline")
    store = Store(url)
    try:
        plan = plan_campaign(store, api.as_spec(quadratic_spec(search__budget=8, search__batch_size=4)))
        lowered = api.as_spec(quadratic_spec(search__budget=5, search__batch_size=4))  # after the plan was made
        said = {}
        for cli_words in (False, True):
            with pytest.raises(SpecError) as refused:
                commit_campaign(store, dataclasses.replace(plan, spec=lowered), cli_words=cli_words)
            said[cli_words] = str(refused.value)
    finally:
        store.close()
    assert "`api.resume('quad', …)`" in said[False] and "atlas" not in said[False], said[False]
    assert "`atlas resume quad`" in said[True], said[True]
