"""Proposer settings at their edges: each refused with the file (nothing written) where it
would crash, hang or quietly not learn, and the portfolio sharing its asks fairly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search import api
from search.proposers import build_proposer
from search.proposers.base import Observation
from search.spec import SpecError
from tests.conftest import quadratic_spec
from tests.test_llm import llm_context


def _spec(algorithm: str, options: dict[str, Any] | None = None, **search: Any) -> dict[str, Any]:
    spec = quadratic_spec(**{f"search__{k}": v for k, v in search.items()})
    spec["search"].update(algorithm=algorithm, options=options or {})
    return spec


def _refused(spec: dict[str, Any], tmp_path: Path, match: str) -> None:
    db = tmp_path / "a.db"
    with pytest.raises(SpecError, match=match):
        api.run(spec, storage=f"sqlite:///{db}", executor="inline")
    assert not db.exists()


@pytest.mark.parametrize("algorithm, options, restarts", [
    ("bo", {"raw_samples": 1}, 8), ("mo-bo", {"raw_samples": 2}, 4), ("bo", {"num_restarts": 9, "raw_samples": 8}, 9),
])
def test_fewer_raw_samples_than_restarts_are_refused(tmp_path: Path, algorithm: str, options: dict[str, Any],
                                                      restarts: int) -> None:
    """BoTorch picks each restart's start among the raw samples: the first model-based ask
    raised, after the first evaluations, and every resume raised again."""
    _refused(_spec(algorithm, options, budget=10), tmp_path,
             rf"search.options.raw_samples: must be >= num_restarts \({restarts}\)")


def test_mo_bo_takes_its_own_lighter_defaults() -> None:
    from search.proposers.mo_bo import MoBoProposer

    mo = build_proposer("mo-bo", llm_context({"raw_samples": 4}))
    assert isinstance(mo, MoBoProposer) and (mo.num_restarts, mo.raw_samples) == (4, 4)
    assert (build_proposer("bo", llm_context({})).num_restarts, build_proposer("bo", llm_context({})).raw_samples) == (
        8, 256)


@pytest.mark.parametrize("seed", [2**32, 2**63 - 1])
@pytest.mark.parametrize("algorithm", ["optuna-tpe", "optuna-cmaes"])
def test_optuna_samplers_run_on_every_seed_the_spec_allows(sqlite_url: str, algorithm: str, seed: int) -> None:
    assert api.run(_spec(algorithm, budget=6, seed=seed), storage=sqlite_url, executor="inline").finished == 6


def test_optuna_seeds_below_two_to_the_32_are_kept_and_larger_ones_spread() -> None:
    def seed_of(seed: int) -> int:
        ctx = llm_context({})
        ctx.seed = seed
        return build_proposer("optuna-tpe", ctx).sampler_seed

    assert seed_of(7) == 7 and seed_of(2**32 - 1) == 2**32 - 1
    assert len({seed_of(2**32), seed_of(2**32 + 1), seed_of(2**63 - 1)}) == 3
    assert all(0 <= seed_of(s) < 2**32 for s in (2**32, 2**63 - 1))


def test_a_portfolio_with_an_optuna_member_runs_at_the_largest_seed(sqlite_url: str) -> None:
    spec = _spec("portfolio", {"members": {"random": {}, "optuna-tpe": {}}}, budget=6, seed=2**63 - 1)
    assert api.run(spec, storage=sqlite_url, executor="inline").finished == 6


@pytest.mark.parametrize("sigma0, odds", [(2, "one time in"), (1e300, "never, to double precision")])
def test_a_sigma0_cma_es_would_resample_forever_is_refused(tmp_path: Path, sigma0: float, odds: str) -> None:
    """pyribs resamples each solution until it is in the bounds: sigma0 2 on 10 dimensions
    ran on with the campaign written and nothing evaluated."""
    spec = _spec("cma-me", {"sigma0": sigma0}, budget=10, batch_size=4, max_in_flight=4)
    spec["space"] = {"x": {"type": "float", "low": 0.0, "high": 1.0, "size": 10}}
    spec["evaluator"] = {"kind": "benchmark", "config": {"function": "sphere", "dim": 10}}
    spec["measures"] = [{"name": "m0", "low": -1.0, "high": 1.0, "bins": 4}]
    _refused(spec, tmp_path, rf"search.options.sigma0: .*lands in the unit cube of 10 dimensions {odds}.*"
                             r"take sigma0 <= 0\.\d+")


def test_the_largest_sigma0_offered_is_accepted() -> None:
    from search.proposers.ribs_emitters import MAX_RESAMPLES, _largest_sigma, in_cube_probability

    x0 = np.full(10, 0.5)
    largest = _largest_sigma(x0)
    assert in_cube_probability(largest, x0) >= 1 / MAX_RESAMPLES > in_cube_probability(largest * 1.01, x0)
    assert in_cube_probability(0.15, np.full(2, 0.5)) > 0.99


@pytest.mark.parametrize("algorithm, options", [("cma-me", {}), ("cma-mae", {}),
                                                ("portfolio", {"members": {"random": {}, "cma-me": {}}})])
def test_cma_es_with_fewer_in_flight_than_a_generation_is_refused(tmp_path: Path, algorithm: str,
                                                                  options: dict[str, Any]) -> None:
    """Every generation was cut to max_in_flight and never told: the checkpoint's mean and
    sigma stayed at their start after 64 evaluations."""
    _refused(_spec(algorithm, options, budget=16, batch_size=8, max_in_flight=4), tmp_path,
             r"search.max_in_flight: cma-ma?e asks generations of batch_size \(8\)")


@pytest.mark.parametrize("batch_size, emitters", [(1, 1), (8, 5)])
def test_cma_es_generations_of_one_are_refused(tmp_path: Path, batch_size: int, emitters: int) -> None:
    _refused(_spec("cma-me", {"emitters": emitters}, budget=16, batch_size=batch_size, max_in_flight=8), tmp_path,
             "search.batch_size: cma-me needs generations of at least 2 per emitter")


def test_a_portfolios_batches_of_one_turn_go_round_its_members(sqlite_url: str) -> None:
    """16 batches asked before any result came back all went to the first member."""
    spec = _spec("portfolio", {"members": {"random": {}, "optuna-tpe": {}, "map-elites": {}}}, budget=64,
                 batch_size=4, max_in_flight=64)
    api.run(spec, storage=sqlite_url, executor="inline")
    import archive

    with archive.open(sqlite_url) as handle:
        counts = handle.campaign("quad").proposer_counts()
    assert set(counts) == {"random", "optuna-tpe", "map-elites"}
    assert all(sum(c.values()) >= 8 for c in counts.values()), counts


def test_a_members_own_label_is_kept_and_credits_the_member() -> None:
    """An llm member's fallbacks stay ``llm-fallback`` (they were stored as ``llm``), and
    their results still count for the llm arm."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on: every ask falls back
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = {"model": "m", "base_url": f"http://127.0.0.1:{port}/v1", "api_key_env": "NO_SUCH_KEY_VAR",
           "backoff_s": 0}
    portfolio = build_proposer("portfolio", llm_context({"members": {"llm": llm, "random": {}}}))
    proposals = portfolio.ask(4)
    assert {p.proposer for p in proposals} == {"llm-fallback"}
    portfolio.tell([Observation(evaluation_id=i, seq=i, x=p.x, params={}, fitness=1.0, measures=None, cell=i,
                                meta={}, proposer="llm-fallback") for i, p in enumerate(proposals)])
    assert portfolio.pulls == {"llm": 4, "random": 0} and portfolio.asked["llm"] == 4
    assert portfolio.ask(4)[0].proposer == "random"  # the member never asked goes next


def portfolio_told(asked: dict[str, int], results: dict[str, list[tuple[int, float]]]) -> Any:
    """A portfolio of ``random`` and ``map-elites`` (in that order) on the 5 × 5 grid, each
    asked once for ``asked[name]`` proposals, then told ``results[name]``, (cell, fitness)
    pairs, ``random``'s first."""
    portfolio = build_proposer("portfolio", llm_context({"members": {"random": {}, "map-elites": {}}}))
    for name in ("random", "map-elites"):
        if asked.get(name):
            assert {q.proposer for q in portfolio.ask(asked[name])} == {name}
    layout = portfolio.ctx.layout
    told = [(name, cell, fitness) for name in ("random", "map-elites") for cell, fitness in results.get(name, [])]
    portfolio.tell([Observation(evaluation_id=i, seq=i, x=np.full(2, 0.5), params={}, fitness=fitness,
                                measures=np.array([(lo + hi) / 2 for lo, hi in layout.cell_bounds(cell)]), cell=cell,
                                meta={}, proposer=name) for i, (name, cell, fitness) in enumerate(told)])
    return portfolio


@pytest.mark.parametrize("improved, chosen", [(8, "map-elites"), (9, "random")])
def test_the_portfolio_chooses_by_ucb1_with_two_ln_n(improved: int, chosen: str) -> None:
    """A member is chosen by argmax r̄_i + c · sqrt(2 ln N / n_i) (portfolio.py's docstring;
    docs/proposers.md, the portfolio row: UCB1, ``c`` 1). ``random`` improved the map
    ``improved`` times in 10, ``map-elites`` 0 in 2 (N = 12): 0.8 + 0.705 < 0 + 1.576, so
    map-elites; 0.9 + 0.705 > 1.576, so random. With sqrt(ln N / n_i) random won both."""
    worse = [(0, 0.5)] * (10 - improved)  # below the cell's elite: no improvement
    portfolio = portfolio_told({"random": 10, "map-elites": 2},
                               {"random": [(c, 1.0) for c in range(improved)] + worse,
                                "map-elites": [(1, 0.5), (2, 0.5)]})
    assert portfolio.pulls == {"random": 10, "map-elites": 2}
    assert portfolio.rewards == {"random": float(improved), "map-elites": 0.0}
    assert portfolio.ask(4)[0].proposer == chosen


def test_a_tie_with_the_cells_elite_is_no_improvement() -> None:
    """The reward is 1 for a new cell or a strictly better elite (portfolio.py's docstring):
    two equal results in one cell earn 1 between them."""
    portfolio = portfolio_told({"random": 2}, {"random": [(0, 1.0), (0, 1.0)]})
    assert portfolio.pulls["random"] == 2 and portfolio.rewards["random"] == 1.0


def test_a_member_told_nothing_yet_has_a_mean_reward_of_one() -> None:
    """r̄_i is 1 until the member is told anything (portfolio.py's docstring): ``random``
    improved the map 3 times in 4, ``map-elites`` has 4 in flight and no result, so
    map-elites goes next (1 + sqrt(2 ln 8 / 4) against 0.75 + the same)."""
    portfolio = portfolio_told({"random": 4, "map-elites": 4},
                               {"random": [(0, 1.0), (1, 1.0), (2, 1.0), (0, 0.5)]})
    assert portfolio.pulls == {"random": 4, "map-elites": 0}
    assert portfolio.ask(4)[0].proposer == "map-elites"


@pytest.mark.parametrize("algorithm, options, warning", [
    ("map-elites", {"iso_sigma": 0.1, "discount": 0.5},
     "search.options.discount: the iso_line variation does not use it (only adaptive does); it is ignored"),
    ("map-elites", {"variation": "gaussian", "sigmas": [[0.1, 0.2]]},
     "search.options.sigmas: the gaussian variation does not use it (only adaptive does); it is ignored"),
    ("qd-bo", {"raw_samples": 5}, "search.options.raw_samples: qd-bo does not use it; it is ignored"),
])
def test_options_taken_but_unused_are_warned_about(algorithm: str, options: dict[str, Any], warning: str) -> None:
    from search.spec import parse_spec, spec_warnings

    assert warning in spec_warnings(parse_spec(_spec(algorithm, options, budget=16)))
    assert not [w for w in spec_warnings(parse_spec(_spec("map-elites", {"discount": 0.5}, budget=16)))
                if "discount" in w]  # adaptive (the default) uses it


@pytest.mark.parametrize("option, value, rule", [("temperature", 1e308, "<= 10"),
                                                 ("max_tokens", 10**15, "in [1, 1000000]")])
def test_llm_sampling_settings_are_bounded(option: str, value: float, rule: str) -> None:
    from search.proposers import OptionError

    with pytest.raises(OptionError, match=rf"search.options.{option}: must be .*{re.escape(rule)}"):
        build_proposer("llm", llm_context({"model": "m", "api_key_env": "NO_SUCH_KEY_VAR", option: value}))
