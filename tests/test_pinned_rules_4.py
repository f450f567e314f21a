"""Rules a fourth mutation audit found untested: the unit cube's conditions, inactive
coordinates and clipping (search/space.py), what a proposer's params may not be repaired
into (a boolean, a categorical's case), a label of exactly 64 characters
(search/proposals.py), campaign seeds of four words and negative ones (search/seeds.py),
the step writer's bounded queue, its stop after a failure and its merged ids
(search/step_writer.py), and the elites read best first (archive/store.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.store import NewEvaluation, Result, Store
from search.params import CategoricalParam, FloatParam, IntParam
from search.proposals import BadProposals, ProposalRows
from search.proposers.base import Proposal
from search.seeds import evaluation_seeds
from search.space import SearchSpace
from search.step_writer import StepWriter, merged

# -- search/space.py ---------------------------------------------------------------------

SAMPLER = CategoricalParam(type="categorical", choices=["top_p", "min_p", "none"])


def conditional_space() -> SearchSpace:
    """``p`` active for two of the sampler's three choices (a condition's list of values)."""
    return SearchSpace({"sampler": SAMPLER,
                        "p": FloatParam(type="float", low=0.0, high=1.0, when={"sampler": ["top_p", "min_p"]}),
                        "k": IntParam(type="int", low=1, high=4)})


def test_a_condition_s_list_of_values_holds_for_each_of_them() -> None:
    """docs/campaigns.md's ``when: {sampler: [a, b]}``: the parameter is active for any value listed."""
    space = conditional_space()
    assert space.is_active("p", {"sampler": "min_p"}) and space.is_active("p", {"sampler": "top_p"})
    assert not space.is_active("p", {"sampler": "none"})
    decoded = space.decode(np.array([0.5, 0.25, 0.5]))  # sampler u = 1/2: min_p, the second of three
    assert decoded == {"sampler": "min_p", "p": 0.25, "k": 3}


def test_an_inactive_or_absent_parameter_encodes_as_one_half() -> None:
    """search/space.py: a conditional parameter whose condition does not hold encodes as u = 1/2."""
    space = conditional_space()
    assert space.encode({"sampler": "none", "k": 1}).tolist() == [5 / 6, 0.5, 0.125]
    assert space.encode({}).tolist() == [0.5, 0.5, 0.5]


def test_decode_clips_a_point_outside_the_cube_onto_its_faces() -> None:
    """SearchSpace.decode_many: rows are clipped into [0, 1] first, so a categorical's
    coordinate below 0 is its first choice (as at 0), not the last (index −1)."""
    space = SearchSpace({"sampler": SAMPLER})
    assert space.decode_many(np.array([[-0.2], [0.0], [1.0], [1.3]])) == [
        {"sampler": "top_p"}, {"sampler": "top_p"}, {"sampler": "none"}, {"sampler": "none"}]


def test_a_boolean_is_not_a_number_for_coerce_complete_or_a_proposer() -> None:
    """search/space.py _check_number and SearchSpace.repair_proposed: a boolean is a problem,
    never read as 0 or 1, with repair or without."""
    space = SearchSpace({"k": IntParam(type="int", low=0, high=4), "t": FloatParam(type="float", low=0.0, high=2.0)})
    for point in ({"k": True, "t": 1.0}, {"k": 1, "t": False}):
        assert space.coerce(point)[1] and space.coerce(point, repair=True)[1]
        assert space.complete(point)[1] and space.repair_proposed(point)[1]
    assert space.repair_proposed({"k": True, "t": 1.0})[1] == ["k: True is not a number"]


def test_a_proposer_s_categorical_value_must_be_exactly_a_choice() -> None:
    """SearchSpace.repair_proposed: a categorical value that is not exactly one of the choices
    is a problem, never guessed at (``coerce(repair=True)`` does match its case)."""
    space = SearchSpace({"sampler": SAMPLER})
    _, problems = space.repair_proposed({"sampler": "TOP_P"})
    assert problems == ["sampler: 'TOP_P' is not one of ['top_p', 'min_p', 'none']"]
    assert space.coerce({"sampler": "TOP_P"}, repair=True) == ({"sampler": "top_p"}, [])


# -- search/proposals.py -----------------------------------------------------------------

def test_a_label_of_exactly_64_characters_is_taken() -> None:
    """ProposalRows.rows: a label is a str of at most 64 characters (the column's width)."""
    rows = ProposalRows(SearchSpace({"sampler": SAMPLER}), "portfolio")
    taken = rows.rows([Proposal(np.array([0.5]), proposer="m" * 64)], 1, 0)
    assert taken[0].proposer == "m" * 64
    with pytest.raises(BadProposals, match="longer than 64 characters"):
        rows.rows([Proposal(np.array([0.5]), proposer="m" * 65)], 1, 1)


# -- search/seeds.py ---------------------------------------------------------------------

@pytest.mark.parametrize("campaign_seed", [2**96, 2**100 + 12345, 2**160 - 1])
def test_a_campaign_seed_of_four_words_or_more_equals_numpy(campaign_seed: int) -> None:
    """evaluation_seeds equals SeedSequence([campaign_seed, seq]) for any non-negative seed
    (the spec's ``seed`` has no upper bound): entropy words past the pool of four are mixed in."""
    seqs = [0, 1, 7, 1000]
    expected = [int(np.random.SeedSequence([campaign_seed, s]).generate_state(1)[0] & 0x7FFFFFFF) for s in seqs]
    assert evaluation_seeds(campaign_seed, seqs) == expected


@pytest.mark.timeout(10)
def test_a_negative_campaign_seed_is_refused() -> None:
    """search/seeds.py _words: seeds must be non-negative (as NumPy's SeedSequence refuses them)."""
    with pytest.raises(ValueError, match="non-negative"):
        evaluation_seeds(-1, [0, 1])


# -- search/step_writer.py ---------------------------------------------------------------

class FakeStore:
    """What StepWriter calls of a Store: ``reserve_ids`` from a counter, and ``step``, whose
    first call waits for ``release`` and then raises where ``fail_first``."""

    def __init__(self, fail_first: bool = False) -> None:
        self.next_id, self.steps = 1, []
        self.entered, self.release = threading.Event(), threading.Event()
        self.fail_first = fail_first

    def reserve_ids(self, n: int) -> list[int]:
        ids = list(range(self.next_id, self.next_id + n))
        self.next_id += n
        return ids

    def step(self, **step: Any) -> None:
        first = not self.entered.is_set()
        self.entered.set()
        if first:
            assert self.release.wait(10)
            if self.fail_first:
                raise RuntimeError("the database is gone")
        self.steps.append(step)


def turn(row: str) -> dict[str, Any]:
    """A turn's Store.step arguments: one row (a name stands for it) and what merged reads."""
    return {"sign": 1.0, "holder": None, "rows": [row]}


def test_reserve_gives_n_ids_whatever_ahead_says() -> None:
    """StepWriter.reserve: ``n`` ids; ``ahead`` only adds to the stock (a negative one adds nothing)."""
    store = FakeStore()
    writer = StepWriter(store)  # type: ignore[arg-type]
    try:
        assert writer.reserve(3, ahead=-10) == [1, 2, 3]
        assert writer.reserve(2, ahead=1) == [4, 5] and store.next_id == 7  # one kept in stock
        assert writer.reserve(1) == [6]
    finally:
        writer.close()


@pytest.mark.timeout(20)
def test_a_submit_beyond_depth_waits_for_the_writer() -> None:
    """StepWriter: at most ``depth`` turns wait; a submit beyond that waits for the writer."""
    store = FakeStore()
    writer = StepWriter(store, depth=1)  # type: ignore[arg-type]
    try:
        writer.submit(1, **turn("a"))
        assert store.entered.wait(10)  # the writer holds turn a
        writer.submit(1, **turn("b"))  # waits in the queue: it is full
        third = threading.Thread(target=writer.submit, args=(1,), kwargs=turn("c"))
        third.start()
        time.sleep(0.3)
        assert third.is_alive()
        store.release.set()
        third.join(10)
        writer.flush()
    finally:
        store.release.set()
        writer.close()
    assert [row for s in store.steps for row in s["rows"]] == ["a", "b", "c"]


@pytest.mark.timeout(20)
def test_after_a_failed_write_nothing_queued_is_written_and_the_waiting_submit_raises() -> None:
    """search/step_writer.py: after a failure nothing more is written (not the turns queued
    behind it either), and the error is raised again on every call: a submit that waited for
    room while the write failed raises it too."""
    store = FakeStore(fail_first=True)
    writer = StepWriter(store, depth=1)  # type: ignore[arg-type]
    try:
        writer.submit(1, **turn("a"))
        assert store.entered.wait(10)
        writer.submit(1, **turn("b"))
        threading.Timer(0.3, store.release.set).start()
        with pytest.raises(RuntimeError, match="the database is gone"):
            writer.submit(1, **turn("c"))  # waits for room until a's write has failed
        with pytest.raises(RuntimeError):
            writer.flush()
    finally:
        store.release.set()
        writer.close()
    assert store.steps == []


def test_merged_turns_without_reserved_ids_take_the_sequence_s() -> None:
    """merged: rows of turns that gave no ids are written under the sequence's ids (``ids`` None)."""
    turn = {"campaign_id": 1, "sign": 1.0, "holder": None}
    both = merged([{**turn, "rows": ["a"]}, {**turn, "rows": ["b"], "checkpoint": ("p", b"s")}])
    assert both["rows"] == ["a", "b"] and both["ids"] is None and both["checkpoint"] == ("p", b"s")


# -- archive/store.py: the elites read model ---------------------------------------------

def test_elites_are_read_best_fitness_first_and_top_keeps_the_best(tmp_path: Path) -> None:
    """Store.elites (``camp.elites(top=…)``, ``atlas elites --top``): best fitness first, so
    ``top`` keeps the best; when minimising the best is the lowest objective."""
    store = Store(f"sqlite:///{tmp_path / 'atlas.db'}")
    try:
        for name, sign in (("max", 1.0), ("min", -1.0)):
            spec = {"search": {"budget": 10}, "objective": {"name": "f",
                                                            "direction": "maximize" if sign > 0 else "minimize"}}
            cid = store.create_campaign(name, spec, "hash", {"kind": "grid"}).id
            rows = [NewEvaluation(seq=q, params={"a": q}, x=[q / 10], proposer="p") for q in range(4)]
            ids = store.step(cid, rows=rows)
            objectives = [2.0, 7.0, -1.0, 4.0]
            store.step(cid, sign=sign, results=[Result(i, "done", objective=f, measures={"m": 0.0}, cell=c)
                                                for c, (i, f) in enumerate(zip(ids, objectives, strict=True))])
            ranked = sorted(objectives, reverse=sign > 0)
            assert [e["objective"] for e in store.elites(cid)] == ranked
            assert [e["objective"] for e in store.elites(cid, top=2)] == ranked[:2]
            assert [e[2] for e in store.elite_cells(cid)] == ranked
    finally:
        store.close()
