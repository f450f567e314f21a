"""The Optuna proposers resume as an uninterrupted run continues (search/proposers/optuna_samplers.py).

A run stopped where no evaluation is in flight (``budget`` a multiple of ``batch_size``)
and resumed must propose, seq by seq, what the same run made in one go proposes: the
checkpoint holds the sampler's random states, the trials' order and generations, GP's
kernel and the tells behind CMA-ES. Before it held only the ask count, and the resumed
sampler drew again from the campaign's seed: NSGA-II re-proposed the very points it had
evaluated.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import pytest

import archive
from archive.store import Store
from search import api
from search.proposers import build_proposer
from search.proposers.base import Observation
from search.proposers.checkpoint import dumps
from tests.conftest import quadratic_spec
from tests.test_checkpoints import Campaign, FakeHistory, context, split_and_resume

MIXED_SPACE = {
    "a": {"type": "float", "low": 0.0, "high": 1.0},
    "b": {"type": "float", "low": 0.0, "high": 1.0},
    "kind": {"type": "categorical", "choices": ["p", "q", "r"]},
    "beta": {"type": "float", "low": 0.1, "high": 10.0, "log": True, "when": {"kind": "q"}},
    "n": {"type": "int", "low": 0, "high": 9},
}
VECTOR_SPACE = {  # six dimensions: CMA-ES's C, updated in float, stops being exactly symmetric
    "a": {"type": "float", "low": 0.0, "high": 1.0},
    "b": {"type": "float", "low": 0.0, "high": 1.0},
    "v": {"type": "float", "low": -1.0, "high": 1.0, "size": 4},
}


def spec(algorithm: str, budget: int, batch: int, options: dict[str, Any],
         space: dict[str, Any] | None = None) -> dict[str, Any]:
    """quadratic_spec with ``batch`` proposals at a time, all told before the next ask."""
    out = quadratic_spec(search__algorithm=algorithm, search__budget=budget, search__batch_size=batch,
                         search__max_in_flight=batch, search__seed=1, search__options=options)
    if space is not None:
        out["space"] = space
    return out


def params(url: str) -> list[dict[str, Any]]:
    return [r["params"] for r in archive.open(url).campaign("quad").evaluations()]


def in_one_go_and_resumed(url: str, algorithm: str, total: int, stop: int, batch: int, options: dict[str, Any],
                          space: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The params, by seq, of the run made in one go and of the run stopped at ``stop`` and resumed."""
    one = f"{url[:-3]}-one.db"
    api.run(spec(algorithm, total, batch, options, space), storage=one, executor="inline")
    api.run(spec(algorithm, stop, batch, options, space), storage=url, executor="inline")
    assert api.resume("quad", storage=url, executor="inline", budget=total).finished == total
    return params(one), params(url)


def repeats(rows: list[dict[str, Any]], stop: int) -> int:
    """How many rows from ``stop`` on have the params of a row before ``stop``."""
    return sum(p in rows[:stop] for p in rows[stop:])


# Each case engages the sampler's own state before the stop: TPE and GP model after their
# startup trials (GP starts its next fit from the kernel it kept), CMA-ES has told a
# generation (its optimizer is replayed from the tells; in six dimensions, two generations
# told, as the sampler's own store-and-restore leaves it), NSGA-II is in its third generation.
CASES = [
    ("optuna-tpe", 12, 6, 3, {"n_startup_trials": 3}, None),
    ("optuna-cmaes", 30, 20, 2, {"n_startup_trials": 4}, None),
    ("optuna-cmaes", 60, 44, 4, {"n_startup_trials": 4}, VECTOR_SPACE),
    ("optuna-gp", 8, 4, 2, {"n_startup_trials": 2}, None),
    ("optuna-nsga2", 24, 12, 2, {"population_size": 4}, None),
]


@pytest.mark.parametrize("algorithm,total,stop,batch,options,space", CASES,
                         ids=[c[0] + ("-6d" if c[5] else "") for c in CASES])
def test_a_run_stopped_at_a_batch_boundary_resumes_as_the_run_made_in_one_go(
        sqlite_url: str, algorithm: str, total: int, stop: int, batch: int, options: dict[str, Any],
        space: dict[str, Any] | None) -> None:
    whole, resumed = in_one_go_and_resumed(sqlite_url, algorithm, total, stop, batch, options, space)
    assert len(whole) == len(resumed) == total
    assert resumed[:stop] == whole[:stop]
    assert resumed[stop:] == whole[stop:]


def test_nsga2_on_a_mixed_space_resumed_evaluates_no_earlier_point_again(sqlite_url: str) -> None:
    whole, resumed = in_one_go_and_resumed(sqlite_url, "optuna-nsga2", 24, 12, 2, {"population_size": 4},
                                           MIXED_SPACE)
    assert resumed == whole
    # a child may equal its parent (no crossover, no mutation), as often as in the run made in one go
    assert repeats(resumed, 12) == repeats(whole, 12) <= 3  # the old resume: 12 of 12, generation 0 again


def test_a_version_1_checkpoint_resumes_with_new_draws_and_nsga2_generations(
        sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """An older Entropy Atlas saved only the ask count (version 1): the study is rebuilt
    from the rows, its generations as asked ``batch_size`` at a time, and its draws reseeded."""
    api.run(spec("optuna-nsga2", 12, 2, {"population_size": 4}, MIXED_SPACE), storage=sqlite_url,
            executor="inline")
    cid = Store(sqlite_url).campaign("quad").id
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE checkpoints SET state = ? WHERE campaign_id = ?",
                     (dumps("optuna-nsga2", 1, {"asks": 6}), cid))
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.optuna"):
        assert api.resume("quad", storage=sqlite_url, executor="inline", budget=24).finished == 24
    assert repeats(params(sqlite_url), 12) <= 3  # the old resume: 12 of 12
    assert "version 1" in caplog.text and "reseeded" in caplog.text


def test_version_1_generations_are_rebuilt_as_asked_batch_by_batch() -> None:
    run = Campaign(build_proposer("optuna-nsga2", context({"population_size": 4}, batch_size=2)))
    for _ in range(6):
        run.step()
    asked = [t.system_attrs["NSGAIISampler:generation"] for t in run.proposer.study.trials]
    resumed = build_proposer("optuna-nsga2", context({"population_size": 4}, batch_size=2))
    resumed.restore(dumps("optuna-nsga2", 1, {"asks": 6}), FakeHistory(run.finished, []))
    rebuilt = [t.system_attrs["NSGAIISampler:generation"] for t in resumed.study.trials]
    assert rebuilt == asked == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
    assert resumed.asks == 6
    resumed.ask(2)  # four of generation 2 completed: the next is generation 3, bred from them
    assert [t.system_attrs["NSGAIISampler:generation"] for t in resumed.study.trials[-2:]] == [3, 3]


def test_a_result_asked_before_the_resume_is_not_told_to_the_trial_that_took_its_number() -> None:
    """Two results in flight at the checkpoint; the resumed study asks first, and its new
    trials get the numbers the old ones had. Each result goes to the trial of its params."""
    run, resumed, in_flight = split_and_resume("optuna-tpe", {"n_startup_trials": 3}, steps=3)
    fresh = run.evaluate(resumed.ask(2))
    assert [o.meta["trial"] for o in fresh] == [o.meta["trial"] for o in in_flight]  # the same numbers
    resumed.tell(in_flight)
    resumed.tell(fresh)
    told = {_key(o.params): o.fitness for o in [*run.finished, *in_flight, *fresh]}
    trials = resumed.study.trials
    assert len(trials) == len(told) and all(t.state.name == "COMPLETE" for t in trials)
    assert {_key(t.params): t.value for t in trials} == told


def test_results_in_flight_at_the_checkpoint_keep_their_generation_and_the_run_continues_exactly() -> None:
    run, resumed, in_flight = split_and_resume("optuna-nsga2", {"population_size": 6}, steps=5)
    original = run.proposer
    for proposer in (original, resumed):
        proposer.tell(in_flight)
    assert [t.system_attrs for t in resumed.study.trials] == [t.system_attrs for t in original.study.trials]
    for _ in range(3):
        a, b = original.ask(4), resumed.ask(4)
        assert [p.params for p in a] == [p.params for p in b]
        observations = run.evaluate(a)
        original.tell(observations)
        resumed.tell(observations)
    assert original.state() == resumed.state()


def _key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def test_the_checkpoint_holds_no_pickle_of_the_cma_es() -> None:
    """CmaEsSampler keeps its optimizer as a pickle in a trial's attributes; the checkpoint
    keeps the generations told instead, which the resumed proposer replays."""
    run = Campaign(build_proposer("optuna-cmaes", context({"n_startup_trials": 4})))
    for _ in range(6):
        run.step()
    pickled = [key for t in run.proposer.study.trials for key in t.system_attrs if key.startswith("cma:optimizer")]
    assert pickled  # the sampler has told CMA-ES a generation
    data = run.proposer.state()
    assert b"cma:optimizer" not in data and b'"cma":' in data
    resumed = build_proposer("optuna-cmaes", context({"n_startup_trials": 4}))
    resumed.restore(data, FakeHistory(run.finished, []))
    for _ in range(3):
        a, b = run.proposer.ask(4), resumed.ask(4)
        assert [p.params for p in a] == [p.params for p in b]
        observations: list[Observation] = run.evaluate(a)
        run.proposer.tell(observations)
        resumed.tell(observations)


def reproducible_spec(name: str, algorithm: str, budget: int, batches_in_flight: int,
                      options: dict[str, Any]) -> dict[str, Any]:
    """quadratic_spec, reproducible, with ``batches_in_flight`` batches of 4 asked a turn."""
    return quadratic_spec(name=name, search={"algorithm": algorithm, "budget": budget, "batch_size": 4,
                                             "max_in_flight": 4 * batches_in_flight, "seed": 5,
                                             "reproducible": True, "options": options})


def rows_by_seq(url: str, name: str) -> list[tuple[int, dict[str, Any]]]:
    return [(r["seq"], r["params"]) for r in archive.open(url).campaign(name).evaluations()]


# The cut falls inside a turn's asks (20 is no multiple of 8 or 12): the results of the
# turn's asks before it are written, not told, and in flight to the resumed proposer, which
# asks the rest of the turn first. Before, its study left those trials out (the numbers
# after them closed up, none running, told last): TPE, CMA-ES (which seeds each ask from the
# trial's number) and GP (which reads running trials) parted at the cut, NSGA-II from seq 25.
REPRODUCIBLE = [
    ("optuna-tpe", 2, 48, {"n_startup_trials": 3}),
    ("optuna-tpe", 3, 48, {"n_startup_trials": 3}),
    ("optuna-cmaes", 2, 40, {"n_startup_trials": 4}),
    ("optuna-gp", 2, 24, {"n_startup_trials": 2}),
    ("optuna-nsga2", 2, 40, {"population_size": 8}),  # 4 or 6 (to 64 rows) had not parted
    # a member behind the portfolio's view of the archive, which had not handed on the rows in flight
    ("portfolio", 2, 48, {"members": {"optuna-tpe": {"n_startup_trials": 3}, "random": {}}}),
]


@pytest.mark.parametrize("algorithm,batches_in_flight,total,options", REPRODUCIBLE,
                         ids=[f"{c[0]}-{c[1]}" for c in REPRODUCIBLE])
def test_a_reproducible_run_cut_with_batches_in_flight_resumes_as_the_uninterrupted_run(
        sqlite_url: str, algorithm: str, batches_in_flight: int, total: int, options: dict[str, Any]) -> None:
    api.run(reproducible_spec("whole", algorithm, total, batches_in_flight, options), storage=sqlite_url,
            executor="inline")
    api.run(reproducible_spec("cut", algorithm, 20, batches_in_flight, options), storage=sqlite_url,
            executor="inline")
    assert api.resume("cut", storage=sqlite_url, executor="inline", budget=total).finished == total
    whole, resumed = rows_by_seq(sqlite_url, "whole"), rows_by_seq(sqlite_url, "cut")
    assert len(whole) == total
    assert resumed == whole
