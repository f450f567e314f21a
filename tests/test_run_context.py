"""One run, one setup: the spec's search space and the cell layout are built once per run
and the proposer and the scheduler share them (:mod:`search.run`); the parameter models
live in :mod:`search.params`, so the space does not import the spec."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from archive.layout import CellLayout
from archive.store import Store
from search import api
from search.campaigns import open_campaign
from search.params import CategoricalParam, FloatParam, IntParam
from search.run import CampaignRun, RunSetup, setup_run
from search.scheduler import Scheduler
from search.space import SearchSpace
from search.spec import parse_spec
from tests.conftest import ROOT, quadratic_spec


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], list[Scheduler]]:
    """Counts of spaces and layouts built, and every scheduler made, while a test runs."""
    counts: Counter[str] = Counter()
    schedulers: list[Scheduler] = []

    def spy(name: str, original: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(SearchSpace, "__init__", spy("space", SearchSpace.__init__))
    monkeypatch.setattr(CellLayout, "build", staticmethod(spy("layout.build", CellLayout.build)))
    monkeypatch.setattr(CellLayout, "from_json", staticmethod(spy("layout.from_json", CellLayout.from_json)))
    original_init = Scheduler.__init__

    def scheduler_init(self: Scheduler, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        schedulers.append(self)

    monkeypatch.setattr(Scheduler, "__init__", scheduler_init)
    return counts, schedulers


def test_a_new_run_builds_its_space_and_layout_once_and_shares_them(
        sqlite_url: str, built: tuple[Counter[str], list[Scheduler]]) -> None:
    counts, schedulers = built
    spec = parse_spec(quadratic_spec(search__algorithm="random", search__budget=6, search__batch_size=3))
    counts.clear()  # the spec's own check of its initial points is not the run's
    assert api.run(spec, storage=sqlite_url, executor="inline").finished == 6
    assert counts == {"space": 1, "layout.build": 1}
    (scheduler,) = schedulers
    run, ctx = scheduler.campaign_run, scheduler.proposer.ctx
    assert ctx.space is run.space is scheduler.space
    assert ctx.layout is run.layout is scheduler.layout
    assert ctx.batch_size == run.batch_size == 3 and ctx.seed == run.seed == 3
    assert run.record.name == "quad" and run.spec is spec


def test_a_resumed_run_reads_its_stored_layout_once(sqlite_url: str,
                                                    built: tuple[Counter[str], list[Scheduler]]) -> None:
    counts, schedulers = built
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    counts.clear()
    assert api.resume("quad", storage=sqlite_url, executor="inline", budget=20).finished == 20
    assert counts["layout.from_json"] == 1 and counts["layout.build"] == 0
    resumed = schedulers[-1]
    assert resumed.proposer.ctx.layout is resumed.layout is resumed.campaign_run.layout
    assert resumed.proposer.ctx.space is resumed.space


def test_the_proposer_context_is_read_from_the_setup() -> None:
    spec = parse_spec(quadratic_spec(search__batch_size=7, search__seed=11, search__options={"x": 1},
                                     objective={"name": "loss", "direction": "minimize"},
                                     archive={"type": "grid", "qd_offset": -2.0}))
    setup = setup_run(spec, CellLayout.build("grid", []))
    ctx = setup.proposer_context()
    assert (ctx.batch_size, ctx.seed, ctx.options, ctx.objective_name) == (7, 11, {"x": 1}, "loss")
    assert ctx.maximize is False and setup.sign == -1.0 and ctx.qd_offset == setup.qd_offset == -2.0
    assert (ctx.evaluator_kind, ctx.goal) == ("python", "quad")
    assert ctx.space is setup.space and ctx.layout is setup.layout


def test_a_run_is_frozen_and_belongs_to_its_campaign(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        spec = parse_spec(quadratic_spec())
        record = open_campaign(store, spec)
        setup = setup_run(spec, CellLayout.from_json(record.layout))
        run = setup.committed(record)
        assert isinstance(run, CampaignRun) and isinstance(run, RunSetup) and run.space is setup.space
        with pytest.raises(dataclasses.FrozenInstanceError):
            run.spec = spec  # type: ignore[misc]
        other = parse_spec(quadratic_spec(name="other"))
        with pytest.raises(ValueError, match="not spec 'other'"):
            setup_run(other, setup.layout).committed(record)
    finally:
        store.close()


def test_the_space_uses_the_parameter_models_without_importing_the_spec() -> None:
    code = ("import sys, search.space, search.params as p; "
            "assert 'search.spec' not in sys.modules, 'search.space imported search.spec'; "
            "assert search.space.FloatParam is p.FloatParam")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
    space = parse_spec(quadratic_spec(space={"f": {"type": "float", "low": 0.0, "high": 1.0},
                                             "i": {"type": "int", "low": 1, "high": 3},
                                             "c": {"type": "categorical", "choices": ["x", "y"]}})).space
    assert [type(p) for p in space.values()] == [FloatParam, IntParam, CategoricalParam]
