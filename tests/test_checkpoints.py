"""Proposer checkpoints: the explicit format, round trips per proposer kind, no pickle
written or read (a crafted pickle never runs), version, proposer and library checks,
and what each proposer does with the pickle of an older Entropy Atlas."""

from __future__ import annotations

import io
import json
import logging
import pickle
import sqlite3
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import archive
from archive.layout import CellLayout, MeasureAxis
from archive.store import Store
from search import api
from search.cli import app
from search.proposers import build_proposer
from search.proposers.base import Observation, Proposal, Proposer, ProposerContext
from search.proposers.checkpoint import MAGIC, CheckpointError, dumps, loads
from search.space import SearchSpace
from search.spec import parse_spec
from tests.conftest import quadratic_spec

# What a pickle of NumPy or ribs objects names; none of it belongs in a checkpoint.
PICKLE_MARKS = (b"numpy._core", b"numpy.core", b"_reconstruct", b"_frombuffer", b"__generator_ctor",
                b"numpy.random", b"ribs.", b"__builtin__", b"builtins")


# -- a campaign without the scheduler -------------------------------------------
def context(options: dict[str, Any], batch_size: int = 4) -> ProposerContext:
    space = SearchSpace(parse_spec(quadratic_spec()).space)
    layout = CellLayout.build("grid", [MeasureAxis("ma", 0.0, 1.0, 5), MeasureAxis("mb", 0.0, 1.0, 5)])
    return ProposerContext(space=space, layout=layout, options=options, batch_size=batch_size, seed=0)


class FakeHistory:
    """The archive as the store would give it back: results in order, elites, in flight."""

    def __init__(self, finished: list[Observation], pending: list[Observation],
                 calls: list[dict[str, Any]] | None = None) -> None:
        self._finished, self._pending, self._calls = finished, pending, calls or []

    def elites(self) -> list[Observation]:
        best: dict[int, Observation] = {}
        for o in self._finished:
            if o.ok and o.cell is not None and (o.cell not in best or o.fitness > best[o.cell].fitness):
                best[o.cell] = o
        return list(best.values())

    def finished(self) -> list[Observation]:
        return list(self._finished)

    def pending_x(self) -> np.ndarray:
        return np.array([o.x for o in self._pending]) if self._pending else np.zeros((0, 0))

    def calls(self, proposer: str) -> list[dict[str, Any]]:
        return [c for c in self._calls if c["proposer"] == proposer]


class Campaign:
    """Asks a proposer, evaluates the quadratic, and keeps the log a store would keep."""

    def __init__(self, proposer: Proposer) -> None:
        self.proposer = proposer
        self.finished: list[Observation] = []
        self.next_id = 0

    def evaluate(self, proposals: list[Proposal]) -> list[Observation]:
        out = []
        layout, space = self.proposer.ctx.layout, self.proposer.ctx.space
        for p in proposals:
            x = np.asarray(p.x, dtype=float)
            a, b = float(x[0]), float(x[1])
            out.append(Observation(self.next_id, self.next_id, x, p.params or space.decode(x),
                                   1 - (a - 0.3) ** 2 - (b - 0.6) ** 2, x.copy(), int(layout.index_of(x)[0]),
                                   dict(p.meta), p.proposer or self.proposer.name))
            self.next_id += 1
        return out

    def step(self, keep_in_flight: int = 0) -> list[Observation]:
        """One ask; all results told but the last ``keep_in_flight``, which are returned."""
        obs = self.evaluate(self.proposer.ask(self.proposer.ctx.batch_size))
        cut = len(obs) - keep_in_flight
        self.proposer.tell(obs[:cut])
        self.finished += obs[:cut]
        return obs[cut:]


def split_and_resume(algorithm: str, options: dict[str, Any], steps: int = 5) -> tuple[Campaign, Proposer,
                                                                                        list[Observation]]:
    """Run ``steps`` batches, leave two results in flight, checkpoint, and restore a fresh
    proposer from the checkpoint and the archive."""
    run = Campaign(build_proposer(algorithm, context(options)))
    for _ in range(steps):
        run.step()
    in_flight = run.step(keep_in_flight=2)
    resumed = build_proposer(algorithm, context(options))
    resumed.restore(run.proposer.state(), FakeHistory(run.finished, in_flight))
    return run, resumed, in_flight


EXACT = [
    ("random", {}),
    ("map-elites", {}),
    ("map-elites", {"variation": "gaussian", "emitters": 2}),
    ("cma-me", {"emitters": 2}),
    ("cma-mae", {}),
    ("bo", {"initial_design": 200}),  # Sobol asks only: no GP fit in a unit test
    ("portfolio", {"members": {"map-elites": {}, "random": {}, "cma-me": {}}}),
]


@pytest.mark.parametrize("algorithm,options", EXACT, ids=[f"{a}-{i}" for i, (a, _) in enumerate(EXACT)])
def test_a_restored_proposer_continues_exactly(algorithm: str, options: dict[str, Any]) -> None:
    run, resumed, in_flight = split_and_resume(algorithm, options)
    original = run.proposer
    for p in (original, resumed):
        p.tell(in_flight)
    for _ in range(3):
        a, b = original.ask(4), resumed.ask(4)
        assert [p.x.tolist() for p in a] == [p.x.tolist() for p in b]
        assert [p.meta for p in a] == [p.meta for p in b]
        obs = run.evaluate(a)
        original.tell(obs)
        resumed.tell(obs)
    assert original.state() == resumed.state()


def test_cma_es_state_comes_back_attribute_for_attribute() -> None:
    run, resumed, _ = split_and_resume("cma-me", {"emitters": 2}, steps=8)
    for mine, theirs in zip(run.proposer.emitters, resumed.emitters, strict=True):
        assert (mine.restarts, mine.itrs) == (theirs.restarts, theirs.itrs) and mine.itrs > 0
        a, b = mine._opt, theirs._opt
        for name in ("mean", "pc", "ps", "sigma", "current_eval"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        for name in ("cov", "eigenbasis", "eigenvalues", "invsqrt", "condition_number", "updated_eval"):
            assert np.array_equal(getattr(a.cov, name), getattr(b.cov, name)), name
        assert a._rng.bit_generator.state == b._rng.bit_generator.state


def test_cma_mae_thresholds_come_back_exactly() -> None:
    run, resumed, _ = split_and_resume("cma-mae", {}, steps=8)
    mine, theirs = run.proposer.archive.data(), resumed.archive.data()
    assert len(mine["index"]) > 3
    for field in ("index", "solution", "objective", "measures", "threshold"):
        assert np.array_equal(mine[field], theirs[field]), field
    assert not np.array_equal(mine["threshold"], mine["objective"])  # thresholds are their own state


def test_bo_optuna_and_llm_keep_their_counts() -> None:
    run, resumed, _ = split_and_resume("bo", {"initial_design": 200}, steps=3)
    assert (resumed.asks, resumed.sobol_drawn) == (run.proposer.asks, run.proposer.sobol_drawn) == (4, 16)
    run, resumed, _ = split_and_resume("optuna-tpe", {"n_startup_trials": 100}, steps=3)
    assert resumed.asks == run.proposer.asks == 4 and len(resumed.study.trials) == len(run.finished)
    llm = build_proposer("llm", context({"model": "m", "base_url": "http://127.0.0.1:1/v1"}))
    llm.requests, llm.asks = 3, 7
    llm.discarded["duplicate"] += 2
    again = build_proposer("llm", context({"model": "m", "base_url": "http://127.0.0.1:1/v1"}))
    again.restore(llm.state(), FakeHistory([], []))
    assert (again.requests, again.asks, dict(again.discarded)) == (3, 7, {"duplicate": 2})


# -- the format ----------------------------------------------------------------
def test_the_format_is_a_json_header_and_stored_npy_arrays_without_a_pickle() -> None:
    run, _, _ = split_and_resume("cma-me", {"emitters": 2})
    data = run.proposer.state()
    assert data.startswith(MAGIC) and not data.startswith(b"\x80")
    assert not any(mark in data for mark in PICKLE_MARKS)
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    header = json.loads(data[len(MAGIC) + 4 : len(MAGIC) + 4 + length])
    assert header["format"] == "entropy-atlas-checkpoint" and header["proposer"] == "cma-me"
    assert header["version"] == 1 and header["requires"] == {"ribs": __import__("ribs").__version__}
    assert {"emitter.0.mean", "emitter.0.cov.cov", "archive.index"} <= set(header["arrays"])
    with zipfile.ZipFile(io.BytesIO(data[len(MAGIC) + 4 + length :])) as zf:
        names = zf.namelist()
        assert sorted(names) == sorted(f"{n}.npy" for n in header["arrays"])
        for name in names:
            assert zf.getinfo(name).compress_type == zipfile.ZIP_STORED
            assert not np.lib.format.read_array(zf.open(name), allow_pickle=False).dtype.hasobject


def test_fields_and_arrays_round_trip_bit_for_bit() -> None:
    arrays = {"a": np.array([0.1, np.inf, -0.0]), "b": np.arange(6, dtype=np.int32).reshape(2, 3)}
    fields = {"n": 3, "big": 2**127 + 1, "s": "x", "nested": {"l": [1.5, None, True]}}
    got = loads(dumps("p", 2, fields, arrays, {"numpy": np.__version__}), "p", {1, 2})
    assert got.fields == fields and got.version == 2 and set(got.arrays) == {"a", "b"}
    for k, v in arrays.items():
        assert got.arrays[k].dtype == v.dtype and got.arrays[k].tobytes() == v.tobytes()
    with pytest.raises(ValueError):
        dumps("p", 1, {"x": float("nan")})  # fields are strict JSON; NaN goes in an array
    with pytest.raises(TypeError):
        dumps("p", 1, {}, {"o": np.array([object()])})


class Payload:
    """A pickle that, when loaded, creates ``path`` (what an attacker's code would do)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return open, (str(self.path), "w")


def test_a_crafted_pickle_is_refused_without_running(tmp_path: Path) -> None:
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(Payload(proof)))  # the payload is live: loading it runs code
    assert proof.exists()
    marker = tmp_path / "marker"
    payload = pickle.dumps({"rng": Payload(marker)})
    with pytest.raises(CheckpointError, match=r"older Entropy Atlas \(a pickle\).*can run any code"):
        loads(payload, "random", {1})
    for algorithm in ("random", "map-elites", "bo", "optuna-tpe"):  # rebuilt from the archive
        build_proposer(algorithm, context({})).restore(payload, FakeHistory([], []))
    with pytest.raises(CheckpointError):
        build_proposer("cma-me", context({})).restore(payload, FakeHistory([], []))
    assert not marker.exists()


def test_an_object_array_inside_a_checkpoint_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    npz = io.BytesIO()
    np.savez(npz, evil=np.array([Payload(marker)], dtype=object))  # allow_pickle=True: an attacker's writer
    good = dumps("random", 1, {"rng": np.random.default_rng(0).bit_generator.state}, {"evil": np.zeros(1)})
    head = good[: len(good) - len(_npz_of(good))]
    crafted = head + npz.getvalue()
    with pytest.raises(CheckpointError, match="unreadable arrays"):
        loads(crafted, "random", {1})
    assert not marker.exists()


def _npz_of(data: bytes) -> bytes:
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    return data[len(MAGIC) + 4 + length :]


def test_compressed_or_truncated_or_foreign_bytes_are_refused() -> None:
    good = dumps("p", 1, {}, {"a": np.zeros(1000)})
    packed = io.BytesIO()
    np.savez_compressed(packed, a=np.zeros(1000))
    with pytest.raises(CheckpointError, match="compressed"):
        loads(good[: len(good) - len(_npz_of(good))] + packed.getvalue(), "p", {1})
    with pytest.raises(CheckpointError, match="truncated"):
        loads(good[: len(MAGIC) + 10], "p", {1})
    with pytest.raises(CheckpointError, match="not an Entropy Atlas checkpoint"):
        loads(b'{"format": "something else"}', "p", {1})


# -- versions, proposers, libraries ----------------------------------------------
def test_a_newer_or_unknown_version_is_a_clear_error() -> None:
    state = {"rng": np.random.default_rng(0).bit_generator.state}
    proposer = build_proposer("random", context({}))
    with pytest.raises(CheckpointError, match=r"version 7, newer than the versions this Entropy Atlas reads \(1\)"):
        proposer.restore(dumps("random", 7, state), FakeHistory([], []))
    with pytest.raises(CheckpointError, match=r"version 0, not one of"):
        proposer.restore(dumps("random", 0, state), FakeHistory([], []))


def test_another_proposers_checkpoint_is_a_clear_error() -> None:
    state = build_proposer("random", context({})).state()
    with pytest.raises(CheckpointError, match="written by proposer 'random', not 'map-elites'"):
        build_proposer("map-elites", context({})).restore(state, FakeHistory([], []))


def test_a_ribs_checkpoint_is_read_only_under_the_ribs_that_wrote_it() -> None:
    run, _, in_flight = split_and_resume("cma-me", {})
    saved = loads(run.proposer.state(), "cma-me", {1})
    other = dumps("cma-me", 1, saved.fields, saved.arrays, {"ribs": "0.0.1"})
    with pytest.raises(CheckpointError, match=r"written with ribs 0\.0\.1 and ribs \S+ is installed.*ribs==0\.0\.1"):
        build_proposer("cma-me", context({})).restore(other, FakeHistory(run.finished, in_flight))


# -- legacy pickles: rebuilt from the archive, or refused --------------------------
def legacy(**state: Any) -> bytes:
    """The bytes an older Entropy Atlas wrote: a pickle (of plain values here)."""
    return pickle.dumps(state)


def test_legacy_pickles_of_archive_rebuildable_proposers_resume(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "entropy_atlas.checkpoint")
    run = Campaign(build_proposer("map-elites", context({})))
    for _ in range(4):
        run.step()
    in_flight = run.step(keep_in_flight=2)
    history = FakeHistory(run.finished, in_flight)
    rows = len(run.finished) + len(in_flight)
    me = build_proposer("map-elites", context({}))
    me.restore(legacy(random_left=0), history)
    assert len(me.archive) == len(history.elites()) and me.gen_counter == rows and len(me.ask(4)) == 4
    bo = build_proposer("bo", context({"initial_design": 200}))
    bo.restore(legacy(asks=1, sobol_drawn=4), history)
    assert (bo.asks, bo.sobol_drawn, len(bo.book.x), len(bo.book.pending)) == (rows, rows, len(run.finished), 2)
    rnd = build_proposer("random", context({}))
    rnd.restore(legacy(), history)
    assert not np.array_equal(rnd.ask(4)[0].x, build_proposer("random", context({})).ask(4)[0].x)
    calls = [{"proposer": "llm", "key": "k", "status": "ok", "reply": "[]"}]
    llm = build_proposer("llm", context({"model": "m", "base_url": "http://127.0.0.1:1/v1"}))
    llm.restore(legacy(requests=1, asks=1, discarded={}), FakeHistory(run.finished, in_flight, calls))
    assert (llm.requests, llm.asks, llm.cache) == (1, rows, {"k": "[]"})
    warned = [r.getMessage() for r in caplog.records if r.name == "entropy_atlas.checkpoint"]
    assert len(warned) == 4 and all("older Entropy Atlas (a pickle) and is not loaded" in w for w in warned)


def test_a_legacy_portfolio_replays_its_bandit_from_the_results() -> None:
    options = {"members": {"map-elites": {}, "random": {}}}
    run = Campaign(build_proposer("portfolio", context(options)))
    for _ in range(6):
        run.step()
    rebuilt = build_proposer("portfolio", context(options))
    rebuilt.restore(legacy(pulls={}, rewards={}), FakeHistory(run.finished, []))
    assert rebuilt.pulls == run.proposer.pulls and rebuilt.rewards == run.proposer.rewards
    assert sum(rebuilt.pulls.values()) == len(run.finished)
    with_cma = build_proposer("portfolio", context({"members": {"cma-me": {}, "random": {}}}))
    with pytest.raises(CheckpointError, match=r"proposer 'cma-me'.*CMA-ES state"):
        with_cma.restore(legacy(pulls={}), FakeHistory(run.finished, []))


def test_resuming_a_campaign_with_a_legacy_pickle(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    for algorithm in ("cma-me", "map-elites"):
        spec = quadratic_spec(name=algorithm, search__algorithm=algorithm, search__budget=20)
        api.run(spec, storage=sqlite_url, executor="inline")
        cid = store.campaign(algorithm).id
        with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as conn:  # what an older version left
            conn.execute("UPDATE checkpoints SET state = ? WHERE campaign_id = ? AND proposer = ?",
                         (legacy(random_left=0), cid, algorithm))
        if algorithm == "cma-me":
            with pytest.raises(CheckpointError, match="proposer 'cma-me' was written by an older Entropy Atlas") as e:
                api.resume(algorithm, storage=sqlite_url, executor="inline", budget=30)
            assert str(e.value).endswith("under a new name (`api.run(spec, name='NEW', …)`)")  # Python's words
            assert "atlas run" not in str(e.value)
            assert store.count_created(cid) == 20  # refused before anything was written
            said = CliRunner().invoke(app, ["resume", algorithm, "--budget", "30", "--storage", sqlite_url,
                                            "--executor", "inline"])
            assert said.exit_code == 2 and said.stderr.count("\n") == 1, said.stderr
            assert said.stderr.rstrip().endswith("under a new name (`atlas run SPEC --name NEW`)")  # atlas's
            assert store.count_created(cid) == 20
        else:
            assert api.resume(algorithm, storage=sqlite_url, executor="inline", budget=30).finished == 30
            assert store.load_checkpoint(cid, algorithm).startswith(MAGIC)  # now in the new format


# -- exact resume through the scheduler, for what test_scheduler does not cover ----
@pytest.mark.parametrize("algorithm", ["cma-mae", "random"])
def test_resume_equivalence_of_more_proposers(sqlite_url: str, algorithm: str) -> None:
    one = f"{sqlite_url[:-3]}-one.db"
    common = {"search__max_in_flight": 10, "search__algorithm": algorithm}
    api.run(quadratic_spec(search__budget=40, **common), storage=one, executor="inline")
    for budget in range(10, 50, 10):
        api.run(quadratic_spec(search__budget=budget, **common), storage=sqlite_url, executor="inline")
    a = [r["params"] for r in archive.open(one).campaign("quad").evaluations()]
    b = [r["params"] for r in archive.open(sqlite_url).campaign("quad").evaluations()]
    assert a == b
