"""Rules a fifth mutation audit found untested: the Optuna proposers' checkpoint (version-1
generations and reseeding, a row no saved trial holds, another Optuna warned about,
CMA-ES's tells oldest first, trial numbers closing up behind a trial in flight, the study's
lists and random states it keeps: search/proposers/optuna_samplers.py), ordered batches
and the scheduler's clean stop (workers/executors/ordered.py, search/scheduler.py), the
Parquet export's nullable booleans (archive/export.py), the did-you-mean rule
(entropy_atlas/names.py) and ``atlas check``'s report (search/api.py)."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.export import ExportData, export_campaign
from archive.store import Store
from entropy_atlas.names import closest_name, did_you_mean
from search import api, proposers
from search.campaigns import open_campaign
from search.proposers import build_proposer
from search.proposers.base import Proposer
from search.proposers.checkpoint import Checkpoint, dumps, loads
from search.proposers.optuna_samplers import batch_generations, expand, random_states, study_attrs
from search.scheduler import ProposerFailed, lease_holder_id
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec
from tests.test_checkpoints import Campaign, FakeHistory, context
from workers.executors import ExecutorConfig
from workers.executors.base import Executor
from workers.executors.ordered import OrderedBatches
from workers.runner import EvaluationTask, Outcome

# -- search/proposers/optuna_samplers.py -----------------------------------------------


def _saved(proposer: Proposer) -> Checkpoint:
    """``proposer``'s checkpoint as read back."""
    return loads(proposer.state(), proposer.name, (2,))


def test_version_1_generations_count_only_the_trials_that_completed() -> None:
    """batch_generations: a batch starts the next generation once ``population`` trials of
    the current one have completed (``ok``); a failed trial does not count."""
    assert batch_generations([True, False, True, True, True], 2, 2) == [0, 0, 0, 0, 1]
    assert batch_generations([True, True, True, True], 2, 2) == [0, 0, 1, 1]


def test_a_version_1_resume_reseeds_from_the_seed_and_the_ask_count() -> None:
    """Version 1: every random state is reseeded from the campaign's seed and the ask count,
    so two checkpoints of different ask counts draw differently, and one count alike."""
    run = Campaign(build_proposer("optuna-tpe", context({"n_startup_trials": 100})))
    for _ in range(3):
        run.step()

    def first_ask(asks: int) -> list[dict[str, Any]]:
        resumed = build_proposer("optuna-tpe", context({"n_startup_trials": 100}))
        resumed.restore(dumps("optuna-tpe", 1, {"asks": asks}), FakeHistory(run.finished, []))
        return [p.params for p in resumed.ask(2)]

    assert first_ask(3) == first_ask(3)
    assert first_ask(3) != first_ask(4)


def test_a_finished_row_that_no_saved_trial_holds_is_added_after_them() -> None:
    """Version 2: a finished row no saved trial holds (one that finished after the
    checkpoint) is added to the rebuilt study after the saved trials: nothing is lost."""
    run = Campaign(build_proposer("optuna-tpe", context({"n_startup_trials": 3})))
    for _ in range(2):
        run.step()
    data = run.proposer.state()
    later = run.evaluate(run.proposer.ask(1))
    resumed = build_proposer("optuna-tpe", context({"n_startup_trials": 3}))
    resumed.restore(data, FakeHistory([*run.finished, *later], []))
    trials = resumed.study.trials
    assert len(trials) == len(run.finished) + 1
    assert trials[-1].params == later[0].params and trials[-1].value == later[0].fitness


def test_a_checkpoint_of_another_optuna_is_resumed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The checkpoint records the Optuna that wrote it; under another one it is resumed, warned about."""
    run = Campaign(build_proposer("optuna-tpe", context({"n_startup_trials": 3})))
    run.step()
    saved = _saved(run.proposer)
    data = dumps("optuna-tpe", 2, {**saved.fields, "optuna": "0.0.1"}, saved.arrays, saved.requires)
    resumed = build_proposer("optuna-tpe", context({"n_startup_trials": 3}))
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.optuna"):
        resumed.restore(data, FakeHistory(run.finished, []))
    assert "written under Optuna 0.0.1" in caplog.text


def _told_together(run: Campaign, resumed: Proposer, steps: int) -> None:
    """``steps`` batches asked of both proposers (the same), evaluated once, told to both."""
    for _ in range(steps):
        a, b = run.proposer.ask(4), resumed.ask(4)
        assert [p.params for p in a] == [p.params for p in b]
        observations = run.evaluate(a)
        run.proposer.tell(observations)
        resumed.tell(observations)


def test_cma_es_tells_told_after_a_resume_follow_the_rebuilt_ones_oldest_first() -> None:
    """The ``cma`` checkpoint field holds the told generations oldest first: a resumed
    proposer that tells two more generations saves what the uninterrupted one saves."""
    run = Campaign(build_proposer("optuna-cmaes", context({"n_startup_trials": 4})))
    for _ in range(6):
        run.step()
    resumed = build_proposer("optuna-cmaes", context({"n_startup_trials": 4}))
    resumed.restore(run.proposer.state(), FakeHistory(run.finished, []))
    before = _saved(run.proposer).fields["cma"]
    _told_together(run, resumed, 4)
    after = _saved(run.proposer).fields["cma"]
    assert len(after["tells"]) >= len(before["tells"]) + 2  # two generations or more told since the resume
    assert _saved(resumed).fields["cma"] == after


def _first_trial_in_flight(algorithm: str, options: dict[str, Any], steps: int) -> tuple[Campaign, Proposer]:
    """A run whose first trial is still in flight after ``steps`` batches, and a proposer
    restored from its checkpoint (that trial left out: the numbers after it close up)."""
    run = Campaign(build_proposer(algorithm, context(options)))
    first = run.evaluate(run.proposer.ask(4))
    run.proposer.tell(first[1:])
    run.finished += first[1:]
    for _ in range(steps):
        run.step()
    resumed = build_proposer(algorithm, context(options))
    resumed.restore(run.proposer.state(), FakeHistory(run.finished, first[:1]))
    return run, resumed


def _closed_up(numbers: list[int]) -> list[int]:
    """Trial numbers of the original study in the rebuilt one, trial 0 (in flight) left out."""
    return [n - 1 for n in numbers if n != 0]


def test_nsga2_s_parents_are_renumbered_where_a_trial_in_flight_was_left_out() -> None:
    """The study's lists (NSGA-II's parents) name the rebuilt study's trials: behind a trial
    in flight at the checkpoint, the numbers close up."""
    run, resumed = _first_trial_in_flight("optuna-nsga2", {"population_size": 4}, 5)
    original = study_attrs(run.proposer.study)
    assert original and all(original.values())
    assert study_attrs(resumed.study) == {key: _closed_up(numbers) for key, numbers in original.items()}


def test_cma_es_tells_are_renumbered_where_a_trial_in_flight_was_left_out() -> None:
    """CMA-ES's told generations, restored, name the rebuilt study's trials (and its bearer)."""
    run, resumed = _first_trial_in_flight("optuna-cmaes", {"n_startup_trials": 4}, 6)
    original = _saved(run.proposer).fields["cma"]
    rebuilt = _saved(resumed).fields["cma"]
    assert rebuilt["bearer"] == original["bearer"] - 1
    assert [expand(told) for told in rebuilt["tells"]] == [_closed_up(expand(told)) for told in original["tells"]]


class _StudyWithLists:
    """A study whose storage holds NSGA-II's parents of four generations and another list."""

    _study_id = 0

    class _storage:  # as Optuna names it
        @staticmethod
        def get_study_system_attrs(study_id: int) -> dict[str, Any]:
            return {"NSGAIISampler:parent:1": [0], "NSGAIISampler:parent:2": [1], "NSGAIISampler:parent:10": [2],
                    "NSGAIISampler:parent:3": [3], "kept": [4], "not_a_list": 5}


def test_the_checkpoint_keeps_the_two_highest_generations_of_each_list() -> None:
    """study_attrs: of keys ending in a number, the two highest of each stem (by number, not
    by text), and every other list of trial numbers."""
    assert study_attrs(_StudyWithLists()) == {"NSGAIISampler:parent:3": [3], "NSGAIISampler:parent:10": [2],
                                              "kept": [4]}


class _Held:
    """An object of Optuna's (its module says so) holding a random state."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner


_Held.__module__ = "optuna.fake"


def test_random_states_are_found_two_levels_below_the_sampler() -> None:
    """random_states: the sampler's own, then those of the Optuna objects it holds, to two
    levels; one held in several places named by its first (shortest) path."""
    own, deep = np.random.RandomState(1), np.random.RandomState(2)
    sampler = _Held(_Held(_Held(deep)))
    sampler.rng = own  # type: ignore[attr-defined]
    sampler.again = _Held(own)  # type: ignore[attr-defined]
    assert random_states(sampler) == {"rng": own, "inner.inner.inner": deep}  # type: ignore[arg-type]


# -- workers/executors/ordered.py ------------------------------------------------------


class _Scripted(Executor):
    """An executor whose polls hand back ``script``'s lists one a poll (then nothing)."""

    def __init__(self, script: list[list[Outcome]]) -> None:
        super().__init__(ExecutorConfig(kind="python", config={}, target=None, measure_names=[]))
        self.script = script

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return 2

    def submit(self, tasks: list[EvaluationTask]) -> None:
        self._report_started([t.evaluation_id for t in tasks])

    def poll(self, timeout: float) -> list[Outcome]:
        return self.script.pop(0) if self.script else []

    def in_flight(self) -> int:
        return 0

    def shutdown(self) -> None:
        pass


def test_a_second_outcome_of_an_evaluation_held_is_dropped() -> None:
    """OrderedBatches: the first outcome of an evaluation held is the one handed back."""
    first, again = Outcome(1, "done", objective=1.0, measures={}), Outcome(1, "failed", error="twice")
    ex = OrderedBatches(_Scripted([[first, again], [Outcome(2, "done", objective=2.0, measures={})]]))
    ex.submit([EvaluationTask(i, i, {}, seed=i, attempt=1) for i in (1, 2)])
    assert ex.poll(0.2) == [first, Outcome(2, "done", objective=2.0, measures={})]



# -- search/scheduler.py: a clean stop ---------------------------------------------------


class _Stops(Executor):
    """Ends nothing on its own: its first poll raises ``stop`` (or hands back a done outcome
    of the first task), and :meth:`take_finished` hands back ``held(ids)`` once, ``ids`` the
    tasks submitted."""

    reports_starts_late = True

    def __init__(self, held: Any, stop: BaseException | None = None) -> None:
        super().__init__(ExecutorConfig(kind="python", config={}, target=None, measure_names=["ma", "mb"]))
        self.held, self.stop = held, stop
        self.ids: list[int] = []
        self.taken = False

    def start(self) -> None:
        pass

    def capacity(self) -> int:
        return 8

    def submit(self, tasks: list[EvaluationTask]) -> None:
        self.ids += [t.evaluation_id for t in tasks]
        self._report_started([t.evaluation_id for t in tasks])

    def poll(self, timeout: float) -> list[Outcome]:
        if self.stop is not None:
            raise self.stop
        return [_done(self.ids[0])] if self.ids else []

    def take_finished(self) -> list[Outcome]:
        out, self.taken = ([] if self.taken else self.held(self.ids)), True
        return out

    def in_flight(self) -> int:
        return len(self.ids)

    def shutdown(self) -> None:
        pass


def _done(eid: int) -> Outcome:
    return Outcome(eid, "done", objective=0.5, measures={"ma": 0.5, "mb": 0.5})


def _statuses(url: str) -> list[tuple[int, str, int]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return conn.execute("SELECT seq, status, attempts FROM evaluations ORDER BY seq").fetchall()


def test_a_ctrl_c_writes_only_what_finished_of_what_the_executor_held(sqlite_url: str) -> None:
    """_stop_cleanly writes the outcomes the executor holds finished (take_finished), of
    evaluations in flight, neither lost nor of a failed setup (those never ran to an end:
    back pending, their attempt taken back, as is what is still in flight)."""
    def held(ids: list[int]) -> list[Outcome]:
        return [_done(ids[0]), Outcome(ids[1], "lost", error="worker lost"),
                Outcome(ids[2], "failed", error="evaluator setup failed: x", setup_failed=True),
                _done(10**9)]  # an evaluation not in flight (given up before): not this run's to write

    spec = quadratic_spec(search__budget=4, search__batch_size=4, search__max_in_flight=4)
    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=sqlite_url, executor=_Stops(held, KeyboardInterrupt()))
    assert _statuses(sqlite_url) == [(0, "done", 1), (1, "pending", 0), (2, "pending", 0), (3, "pending", 0)]


def test_a_proposer_that_failed_is_told_nothing_the_executor_held(sqlite_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A stop on a proposer's failure (``told`` False) takes nothing from the executor: its
    state may hold part of a turn. Every evaluation goes back pending, uncharged."""
    monkeypatch.setitem(proposers.BUILTIN, "flaky", "tests.support.proposers:FlakyProposer")
    spec = quadratic_spec(search__algorithm="flaky", search__options={"fail_tell": 1}, search__budget=4,
                          search__batch_size=2, search__max_in_flight=4)
    with pytest.raises(ProposerFailed):
        api.run(spec, storage=sqlite_url, executor=_Stops(lambda ids: [_done(ids[1])]))
    assert _statuses(sqlite_url) == [(seq, "pending", 0) for seq in range(4)]

# -- archive/export.py -----------------------------------------------------------------


def test_pandas_reads_a_boolean_column_with_a_null_as_nullable_booleans(tmp_path: Path) -> None:
    """pandas' metadata names ``boolean`` for a boolean column that may hold a null (a
    parameter inactive on a row); it had come out as ``object``."""
    import pandas as pd

    def row(eid: int, params: str, cell: int | None, status: str) -> tuple[Any, ...]:
        return (eid, eid, params, status, 1.0 if cell is not None else None, "{}", "{}", cell, "random", 1,
                None, None, 0.0, 0.0, 0.0)

    data = ExportData(name="q", spec={}, status="finished", elite_cells=[(3, 1, 1.0)],
                      rows=[row(1, '{"flag": true}', 3, "done"), row(2, "{}", None, "failed")])
    frame = pd.read_parquet(export_campaign(data, tmp_path / "b.parquet"))
    assert str(frame["params.flag"].dtype) == "boolean" and str(frame["cell"].dtype) == "Int64"
    assert frame["params.flag"].tolist()[0] is True and frame["params.flag"].isna().tolist() == [False, True]


# -- entropy_atlas/names.py --------------------------------------------------------------


def test_a_name_exactly_at_the_cutoff_is_offered() -> None:
    """A known name is offered where difflib's ratio is at least the cutoff: 2·4/10 = 0.8."""
    assert closest_name("sigmx", ["sigma"]) == "sigma"
    assert closest_name("sigxx", ["sigma"]) is None  # 0.6


def test_dashes_fold_to_underscores_before_the_ratio() -> None:
    """``N-Top-K`` folds to ``n_top_k`` (unfolded, 2·5/14 ≈ 0.71: below the cutoff)."""
    assert did_you_mean("N-Top-K", ["n_top_k", "n_top"]) == "; did you mean 'n_top_k'?"


# -- search/api.py: check ----------------------------------------------------------------


@pytest.fixture
def ten_done(tmp_path: Path) -> str:
    """A SQLite storage holding campaign ``quad`` run to its budget of 10."""
    url = f"sqlite:///{tmp_path / 'made.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    return url


def _sql(url: str, statement: str) -> None:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.execute(statement)


def test_check_judges_a_campaign_finished_as_the_run_does(ten_done: str) -> None:
    """``finished`` only where the campaign is recorded finished (a run killed after its last
    result has its record to finish: it continues, nothing to run); ``to_run`` is the
    budget less the evaluations finished, those pending included."""
    spec = quadratic_spec(search__budget=10)
    assert (api.check(spec, storage=ten_done).campaign, api.check(spec, storage=ten_done).to_run) == ("finished", 0)
    _sql(ten_done, "UPDATE campaigns SET status = 'running'")
    report = api.check(spec, storage=ten_done)
    assert (report.campaign, report.done, report.to_run) == ("continues", 10, 0)
    _sql(ten_done, "UPDATE evaluations SET status = 'pending', objective = NULL, finished_at = NULL WHERE seq >= 7")
    report = api.check(spec, storage=ten_done)
    assert (report.campaign, report.done, report.to_run) == ("continues", 7, 3)


def test_check_names_no_holder_whose_lease_has_expired(tmp_path: Path) -> None:
    """``held_by``: the scheduler that runs the campaign now; a lease expired is no run."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    store = Store(url)
    try:
        campaign = open_campaign(store, parse_spec(quadratic_spec()))
        assert store.acquire_lease(campaign.id, lease_holder_id(), ttl_s=0.001) is None
        time.sleep(0.01)
        assert api.check(quadratic_spec(), storage=url).held_by is None
    finally:
        store.close()


def test_check_says_the_file_s_error_before_a_storage_it_cannot_open(tmp_path: Path) -> None:
    """_StorageAhead.look: the checks that need no storage come before what the storage
    could not answer (here a SQLite file in a folder that is not there)."""
    spec = quadratic_spec(search__options={"iso_sigma": -1})
    with pytest.raises(SpecError, match=r"search\.options\.iso_sigma: must be a number > 0"):
        api.check(spec, storage=f"sqlite:///{tmp_path / 'no' / 'such' / 'x.db'}")


def test_check_reports_the_storage_with_its_password_hidden(postgres_url: str) -> None:
    """CheckReport.storage: the URL, its password hidden."""
    url = postgres_url.replace("postgres@", "postgres:s3cret-pw@", 1)
    assert "s3cret-pw" in url
    report = api.check(quadratic_spec(name="pinned5"), storage=url)
    assert report.campaign == "new" and "s3cret-pw" not in report.storage and "***" in report.storage
