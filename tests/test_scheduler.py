"""Campaigns end to end on the inline executor: budgets, failures, elites, proposers, resume."""

from __future__ import annotations

from collections import defaultdict

import pytest

import archive
from archive.store import Store
from entropy_atlas.errors import AtlasError
from search import api
from search.campaigns import CampaignConflict, open_campaign
from search.scheduler import CampaignBusy, Scheduler, lease_holder_id
from search.spec import parse_spec
from tests.conftest import quadratic_spec


def best_per_cell(rows: list[dict], maximize: bool = True) -> dict[int, float]:
    best: dict[int, float] = {}
    for r in rows:
        if r["status"] != "done":
            continue
        value = r["objective"]
        if r["cell"] not in best or (value > best[r["cell"]] if maximize else value < best[r["cell"]]):
            best[r["cell"]] = value
    return best


def check_archive(url: str, name: str, budget: int, maximize: bool = True) -> archive.CampaignHandle:
    camp = archive.open(url).campaign(name)
    rows = camp.evaluations()
    assert len(rows) == budget
    assert sorted(r["seq"] for r in rows) == list(range(budget))
    assert all(r["status"] in ("done", "failed") for r in rows)
    elites = {e["cell"]: e["objective"] for e in camp.elites()}
    assert elites == best_per_cell(rows, maximize)
    return camp


@pytest.mark.parametrize("algorithm", ["map-elites", "cma-me", "cma-mae", "random"])
def test_each_proposer_runs_to_budget(sqlite_url: str, algorithm: str) -> None:
    spec = quadratic_spec(search__algorithm=algorithm, search__budget=80)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 80 and stats.counts["failed"] == 0
    camp = check_archive(sqlite_url, "quad", 80)
    assert {r["proposer"] for r in camp.evaluations()} == {algorithm}
    assert stats.coverage > 0.3


def test_map_elites_beats_random_on_the_same_budget(sqlite_url: str) -> None:
    """The best objective found, as a mean over four seeds: one seed's best at 300
    evaluations is luck to within about 2e-3 either way, for both algorithms."""
    me, rnd = [], []
    for seed in range(4):
        common = {"search__budget": 300, "search__batch_size": 20, "search__seed": seed}
        me.append(api.run(quadratic_spec(name=f"me{seed}", **common), storage=sqlite_url,
                          executor="inline").best_objective)
        rnd.append(api.run(quadratic_spec(name=f"rnd{seed}", search__algorithm="random", **common),
                           storage=sqlite_url, executor="inline").best_objective)
    assert sum(me) / 4 >= sum(rnd) / 4 - 1e-3


def test_failures_are_kept_and_never_elites(sqlite_url: str) -> None:
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:flaky"},
                          search__algorithm="random", search__budget=100)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    camp = check_archive(sqlite_url, "quad", 100)
    failed = camp.evaluations(status="failed")
    assert stats.counts["failed"] == len(failed) > 0
    reasons = defaultdict(int)
    for r in failed:
        a = r["params"]["a"]
        if a < 0.1:
            assert "boom" in r["error"]
            reasons["exception"] += 1
        elif a < 0.2:
            assert "objective is not a finite number (got a float: nan)" in r["error"]
            reasons["nan"] += 1
        else:
            assert "measure 'mb' is missing" in r["error"]
            reasons["missing"] += 1
    assert set(reasons) == {"exception", "nan", "missing"}
    elite_ids = {e["evaluation_id"] for e in camp.elites()}
    assert not elite_ids & {r["id"] for r in failed}


def test_timeout_fails_the_evaluation_and_the_campaign_goes_on(sqlite_url: str) -> None:
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:sleepy"},
                          search__algorithm="random", search__budget=12, search__batch_size=1,
                          search__initial_points=[{"a": 0.95, "b": 0.5}], resources={"timeout_s": 0.5})
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    camp = check_archive(sqlite_url, "quad", 12)
    first = next(r for r in camp.evaluations() if r["seq"] == 0)
    assert first["status"] == "failed" and first["error"] == "timeout: ran past 0.5 s"  # as on Ray
    assert stats.finished == 12


def test_initial_points_come_first_as_given(sqlite_url: str) -> None:
    points = [{"a": 0.3, "b": 0.6}, {"a": 0.9, "b": 0.1}]
    spec = quadratic_spec(search__initial_points=points, search__budget=30)
    api.run(spec, storage=sqlite_url, executor="inline")
    rows = sorted(archive.open(sqlite_url).campaign("quad").evaluations(), key=lambda r: r["seq"])
    assert [r["params"] for r in rows[:2]] == points
    assert {rows[0]["proposer"], rows[1]["proposer"]} == {"initial"}
    assert rows[0]["objective"] == pytest.approx(1.0)


def test_minimise_and_cvt(sqlite_url: str) -> None:
    spec = quadratic_spec(objective={"name": "loss", "direction": "minimize"},
                          archive={"type": "cvt", "cells": 12, "samples": 500}, search__budget=60)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    camp = check_archive(sqlite_url, "quad", 60, maximize=False)
    assert stats.cells == 12
    assert stats.best_objective == min(r["objective"] for r in camp.evaluations(status="done"))


def test_budget_is_counted_across_runs_and_can_be_raised(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=30), storage=sqlite_url, executor="inline")
    api.run(quadratic_spec(search__budget=30), storage=sqlite_url, executor="inline")
    assert len(archive.open(sqlite_url).campaign("quad").evaluations()) == 30
    stats = api.resume("quad", storage=sqlite_url, executor="inline", budget=50)
    assert stats.finished == 50
    check_archive(sqlite_url, "quad", 50)


def test_same_name_different_spec_is_refused(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    with pytest.raises(CampaignConflict, match=r"changed: search\.seed"):
        api.run(quadratic_spec(search__budget=10, search__seed=99), storage=sqlite_url, executor="inline")


def test_a_changed_measure_is_named_by_its_field(sqlite_url: str) -> None:
    """`changed: measures` had not said which measure, nor which of its fields."""
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    changed = quadratic_spec(search__budget=20)
    changed["measures"][1]["bins"] = 7
    with pytest.raises(CampaignConflict, match=r"changed: measures\.1\.bins\)"):
        api.run(changed, storage=sqlite_url, executor="inline")


def test_a_reordered_space_is_a_different_campaign(sqlite_url: str) -> None:
    """The space's order is the unit cube's axes: a file that lists ``b`` before ``a`` had
    continued the campaign, and half its rows then read their points the other way."""
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    reordered = quadratic_spec(search__budget=20)
    reordered["space"] = {"b": reordered["space"]["b"], "a": reordered["space"]["a"]}
    with pytest.raises(CampaignConflict, match=r"changed: space \(the order: a, b → b, a\)"):
        api.run(reordered, storage=sqlite_url, executor="inline")
    camp = archive.open(sqlite_url).campaign("quad")
    assert camp.stats().finished == 10 and list(camp.spec["space"]) == ["a", "b"]


def test_reordered_portfolio_members_are_a_different_campaign(sqlite_url: str) -> None:
    members = {"map-elites": {}, "random": {}}
    api.run(quadratic_spec(search__budget=10, search__algorithm="portfolio", search__options={"members": members}),
            storage=sqlite_url, executor="inline")
    swapped = {"random": {}, "map-elites": {}}
    with pytest.raises(CampaignConflict, match=r"search\.options\.members \(the order: map-elites, random → "):
        api.run(quadratic_spec(search__budget=20, search__algorithm="portfolio", search__options={"members": swapped}),
                storage=sqlite_url, executor="inline")


def test_a_second_scheduler_is_refused_while_the_lease_is_held(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    spec = parse_spec(quadratic_spec())
    campaign = open_campaign(store, spec)
    assert store.acquire_lease(campaign.id, lease_holder_id(), ttl_s=60) is None  # a live holder: us
    with pytest.raises(CampaignBusy, match="is being run by scheduler"):
        api.run(quadratic_spec(), storage=sqlite_url, executor="inline")
    assert store.count_created(campaign.id) == 0


def test_a_dead_local_holder_does_not_block(sqlite_url: str) -> None:
    import socket

    store = Store(sqlite_url)
    campaign = open_campaign(store, parse_spec(quadratic_spec(search__budget=10)))
    dead = f"{socket.gethostname()}:999999999:deadbeef"
    assert store.acquire_lease(campaign.id, dead, ttl_s=600) is None
    assert api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline").finished == 10


@pytest.mark.parametrize("algorithm", ["map-elites", "cma-me"])
def test_resume_equivalence(sqlite_url: str, algorithm: str) -> None:
    """Stopping after every batch and resuming gives the same evaluations as one run."""
    one = f"{sqlite_url[:-3]}-one.db"
    common = {"search__max_in_flight": 10, "search__algorithm": algorithm}
    api.run(quadratic_spec(search__budget=60, **common), storage=one, executor="inline")
    for budget in range(10, 70, 10):
        api.run(quadratic_spec(search__budget=budget, **common), storage=sqlite_url, executor="inline")
    a = [r["params"] for r in archive.open(one).campaign("quad").evaluations()]
    b = [r["params"] for r in archive.open(sqlite_url).campaign("quad").evaluations()]
    assert a == b


def test_scheduler_refuses_a_proposer_that_proposes_nothing(sqlite_url: str) -> None:
    from search.api import executor_config, prepare
    from search.proposers.random_search import RandomProposer
    from workers.executors import make_executor

    class Mute(RandomProposer):
        def ask(self, n: int) -> list:
            return []

    store = Store(sqlite_url)
    spec = parse_spec(quadratic_spec())
    campaign = open_campaign(store, spec)
    setup = prepare(store, spec, "inline", None).setup
    proposer = Mute(setup.proposer_context())
    scheduler = Scheduler(store, setup.committed(campaign), proposer, make_executor("inline", executor_config(spec)))
    with pytest.raises(AtlasError, match=r"proposer random proposed nothing with nothing in flight, at 0 of 60"):
        scheduler.run()
    assert store.campaign("quad").status == "stopped"
