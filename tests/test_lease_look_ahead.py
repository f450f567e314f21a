"""A run or resume of a campaign that a live scheduler is running is refused before anything
expensive is built: the proposer (pyribs' import took 6 s of a 13 s refusal), the evaluator's
check, the executor's start. The look ahead only reads the lease; the take of the lease
(:meth:`search.scheduler.Scheduler.run`) still refuses a scheduler that took it in between."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from archive.store import Store
from search import api
from search.campaigns import open_campaign
from search.cli import app
from search.scheduler import CampaignBusy, lease_holder_id
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from workers.executors.inline import InlineExecutor

BUSY = r"campaign 'quad' is being run by scheduler .+; wait for it to finish, or for its lease to expire"


def _held(url: str, ttl_s: float = 60, **overrides: Any) -> tuple[Store, int]:
    """The campaign ``quad`` written, its lease taken by a live holder (this process)."""
    store = Store(url)
    campaign = open_campaign(store, parse_spec(quadratic_spec(**overrides)))
    assert store.acquire_lease(campaign.id, lease_holder_id(), ttl_s=ttl_s) is None
    return store, campaign.id


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a run built, by name: each build the look ahead must come before is recorded
    (and the proposer's refused, so that a refusal after it fails the test either way)."""
    calls: list[str] = []

    def no_proposer(*_args: Any, **_kwargs: Any) -> Any:
        calls.append("proposer")
        raise AssertionError("the proposer was built for a busy campaign")

    real_review, real_start = api.evaluator_review, InlineExecutor.start
    monkeypatch.setattr(api, "build_proposer", no_proposer)
    monkeypatch.setattr(api, "evaluator_review", lambda spec: (calls.append("evaluator"), real_review(spec))[1])
    monkeypatch.setattr(InlineExecutor, "start", lambda self: (calls.append("executor"), real_start(self))[1])
    return calls


def test_run_of_a_busy_campaign_is_refused_before_anything_is_built(storage_url: str, built: list[str]) -> None:
    store, cid = _held(storage_url)
    try:
        with pytest.raises(CampaignBusy, match=BUSY):
            api.run(quadratic_spec(), storage=storage_url, executor="inline")
        assert built == [] and store.count_created(cid) == 0
    finally:
        store.close()


def test_resume_of_a_busy_campaign_is_refused_before_anything_is_built(storage_url: str, built: list[str]) -> None:
    store, cid = _held(storage_url)
    try:
        with pytest.raises(CampaignBusy, match=BUSY):
            api.resume("quad", storage=storage_url, executor="inline", budget=500)
        assert built == [] and store.count_created(cid) == 0
        assert store.require_campaign("quad").settings.budget == 60  # the refused budget is not written
    finally:
        store.close()


def test_the_cli_refuses_a_busy_campaign_in_one_line_without_the_proposer(tmp_path: Path, built: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    store, _ = _held(url)
    store.close()
    spec = tmp_path / "quad.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(), sort_keys=False))
    for args in (["resume", "quad"], ["run", str(spec)]):
        result = CliRunner().invoke(app, [*args, "--storage", url, "--executor", "inline"])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: campaign 'quad' is being run by scheduler "), lines
    assert built == []


def test_an_expired_or_dead_lease_is_not_looked_ahead_as_busy(sqlite_url: str) -> None:
    """The look ahead's rule is the take's: an expired lease, or one whose holder's process
    is gone, does not hold the campaign."""
    store, cid = _held(sqlite_url, ttl_s=-1, search__budget=10)
    try:
        assert api.resume("quad", storage=sqlite_url, executor="inline").finished == 10
        dead = f"{lease_holder_id().split(':')[0]}:999999999:deadbeef"
        assert store.acquire_lease(cid, dead, ttl_s=600) is None
        assert api.resume("quad", storage=sqlite_url, executor="inline", budget=20).finished == 20
    finally:
        store.close()


@pytest.mark.parametrize("entry", ["run", "resume"])
def test_a_lease_taken_after_the_look_ahead_is_still_refused_at_the_take(sqlite_url: str,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        entry: str) -> None:
    """Another scheduler that takes the lease while this run builds its proposer wins: the
    run is refused when it takes the lease, having written nothing."""
    store = Store(sqlite_url)
    cid = open_campaign(store, parse_spec(quadratic_spec())).id
    real = api.build_proposer

    def taken_meanwhile(*args: Any, **kwargs: Any) -> Any:
        store.acquire_lease(cid, lease_holder_id(), ttl_s=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "build_proposer", taken_meanwhile)
    try:
        with pytest.raises(CampaignBusy, match=BUSY):
            if entry == "run":
                api.run(quadratic_spec(), storage=sqlite_url, executor="inline")
            else:
                api.resume("quad", storage=sqlite_url, executor="inline")
        assert store.count_created(cid) == 0
    finally:
        store.close()
