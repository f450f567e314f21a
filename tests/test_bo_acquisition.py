"""``bo``'s acquisition optimiser on a mixed space: every categorical combination in one
batch of restarts under a fixed budget, conditional coordinates held at the centre,
proposals inside the space, seeded runs that repeat, torch's thread count restored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.generation import gen

from search.proposers import acquisition, build_proposer, gp
from search.proposers.base import ProposerContext
from tests.test_bo_mixed_space import SPACE, observations
from tests.test_checkpoints import FakeHistory, context

OPTIONS = {"num_restarts": 5, "raw_samples": 96, "initial_design": 4}


def proposer(options: dict[str, Any] | None = None, seed: int = 0) -> Any:
    ctx = ProposerContext(space=SPACE, layout=context({}).layout, options=options or OPTIONS, batch_size=2,
                          seed=seed)
    return build_proposer("bo", ctx)


class Recorder:
    """Wraps BoTorch's batched L-BFGS-B: the restarts and options of each run, the iterations of each restart."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[dict[str, Any]] = []
        self._real = gen.fmin_l_bfgs_b_batched
        monkeypatch.setattr(gen, "fmin_l_bfgs_b_batched", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        xs, fs, results = self._real(*args, **kwargs)
        self.runs.append({"restarts": len(kwargs["x0"]), "maxiter": kwargs["maxiter"], "maxls": kwargs["maxls"],
                          "iterations": [int(r["nit"]) for r in results]})
        return xs, fs, results


def test_all_combinations_run_as_one_batch_of_restarts_within_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(monkeypatch)
    bo = proposer()
    bo.tell(observations(20))
    bo.ask(2)
    combinations = 3  # linear, rbf, poly
    per_combination, _ = acquisition.restarts_per_combination(OPTIONS["num_restarts"], OPTIONS["raw_samples"],
                                                              combinations)
    assert per_combination == 2
    # one L-BFGS-B run per point of the batch (sequential greedy), not one per combination and point,
    # and no second round with fresh starts
    assert len(recorder.runs) == 2
    for run in recorder.runs:
        assert run["restarts"] == combinations * per_combination
        assert (run["maxiter"], run["maxls"]) == (acquisition.ACQF_MAXITER, acquisition.ACQF_MAXLS)
        assert max(run["iterations"]) <= acquisition.ACQF_MAXITER


def test_every_combination_gets_its_share_of_starts() -> None:
    """Starts come per combination, its categorical coordinates set, even where the
    acquisition prefers one combination everywhere."""

    class PrefersFirst(AcquisitionFunction):
        def forward(self, X: torch.Tensor) -> torch.Tensor:
            return -X[..., 0].sum(-1) - ((X[..., 1:] - 0.3) ** 2).sum((-1, -2))

    encoder = gp.Encoder(SPACE)
    fixed = encoder.fixed_features(np.random.default_rng(0))
    combinations, _ = acquisition.combination_tensors(encoder, fixed, torch.device("cpu"))
    torch.manual_seed(0)
    starts = acquisition.combination_starts(PrefersFirst(model=None), encoder.bounds(torch.device("cpu")), q=1,
                                            num_restarts=6, raw_samples=40, cat_dims=encoder.cat_dims,
                                            combinations=combinations, per_combination=3)
    assert starts.shape == (9, 1, SPACE.dim)
    assert starts[:, 0, 0].tolist() == [0.0] * 3 + [1.0] * 3 + [2.0] * 3
    assert bool(((starts >= 0) & (starts <= encoder.bounds(torch.device("cpu"))[1])).all())


def test_switched_off_coordinates_sit_at_the_centre_and_get_no_gradient() -> None:
    encoder = gp.Encoder(SPACE)
    fixed = encoder.fixed_features(np.random.default_rng(0))
    combinations, inactive = acquisition.combination_tensors(encoder, fixed, torch.device("cpu"))

    class Sum(AcquisitionFunction):
        def forward(self, X: torch.Tensor) -> torch.Tensor:
            return X.sum((-1, -2))

    wrapped = acquisition.ConditionalInputs(Sum(model=None), encoder.cat_dims, combinations, inactive)
    x = torch.tensor([[[0.0, 0.9, 0.2, 0.3, 0.8]], [[1.0, 0.9, 0.2, 0.3, 0.8]], [[2.0, 0.9, 0.2, 0.3, 0.8]]],
                     dtype=torch.double, requires_grad=True)
    projected = wrapped.project(x)
    # linear: gamma and width off; rbf: both on; poly: gamma off, width on
    assert projected[:, 0, 1].tolist() == [0.5, 0.9, 0.5]
    assert projected[:, 0, 4].tolist() == [0.5, 0.8, 0.8]
    wrapped(x).sum().backward()
    assert x.grad[:, 0, 1].tolist() == [0.0, 1.0, 0.0] and x.grad[:, 0, 4].tolist() == [0.0, 1.0, 1.0]
    wrapped.set_X_pending(x[:1, 0].detach())
    assert wrapped.X_pending[0, 1] == 0.5 and wrapped.acqf.X_pending[0, 4] == 0.5


def test_proposals_stay_in_the_space_and_respect_conditions() -> None:
    bo = proposer()
    bo.tell(observations(20))
    for _ in range(2):
        proposals = bo.ask(2)
        for p in proposals:
            assert p.meta["source"] == "bo"
            assert np.all((p.x >= 0.0) & (p.x <= 1.0))
            kernel = int(p.x[0] * 3)
            assert p.x[0] == pytest.approx((kernel + 0.5) / 3)  # a category's centre
            params = SPACE.decode(p.x)
            assert ("gamma" in params) == (params["kernel"] == "rbf")
            assert ("width" in params) == (params["kernel"] != "linear")
            if params["kernel"] != "rbf":
                assert p.x[1] == 0.5  # switched off: at the centre, as the GP saw it
            if params["kernel"] == "linear":
                assert p.x[4] == 0.5
            assert isinstance(params["depth"], int) and 1 <= params["depth"] <= 12
        bo.tell([])


def test_a_seeded_run_repeats_and_a_resumed_one_proposes_the_same() -> None:
    first, second = proposer(), proposer()
    for bo in (first, second):
        bo.tell(observations(16))
    a = [p.x for p in first.ask(2)] + [p.x for p in first.ask(2)]
    b = [p.x for p in second.ask(2)] + [p.x for p in second.ask(2)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    # a proposer restored from the first's checkpoint (after its first ask) proposes its second batch
    replay = proposer()
    replay.tell(observations(16))
    pending = [p.x for p in replay.ask(2)]
    resumed = proposer()
    resumed.restore(replay.state(), FakeHistory(observations(16), []))
    for x in pending:
        resumed.book.propose(x)
    np.testing.assert_array_equal(np.stack([p.x for p in resumed.ask(2)]), np.stack(a[2:]))
    assert not np.array_equal(np.stack(a[:2]), np.stack(a[2:]))


def test_an_ask_runs_on_one_thread_and_restores_the_count() -> None:
    seen: list[int] = []
    bo = proposer()
    bo.tell(observations(12))
    real = bo.suggest

    def suggest(n: int, rng: np.random.Generator) -> np.ndarray:
        seen.append(torch.get_num_threads())
        return real(n, rng)

    bo.suggest = suggest
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        bo.ask(2)
        assert seen == [gp.CPU_THREADS] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
