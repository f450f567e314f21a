"""``bo`` on mixed spaces: inactive parameters are one value to the GP, fits are bounded
and warm-started, and the warm start is part of the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from search.params import CategoricalParam, FloatParam, IntParam
from search.proposers import build_proposer, checkpoint, gp
from search.proposers.base import Observation, ProposerContext
from search.space import SearchSpace
from tests.test_checkpoints import FakeHistory, context

SPACE = SearchSpace({
    "kernel": CategoricalParam(type="categorical", choices=["linear", "rbf", "poly"]),
    "gamma": FloatParam(type="float", low=0.0, high=1.0, when={"kernel": "rbf"}),
    "lr": FloatParam(type="float", low=1e-5, high=1e-1, log=True),
    "depth": IntParam(type="int", low=1, high=12),
    "width": FloatParam(type="float", low=0.0, high=1.0, when={"kernel": ["rbf", "poly"]}),
})


def point(kernel: int, gamma: float, lr: float = 0.3, depth: float = 0.6, width: float = 0.9) -> np.ndarray:
    return np.array([(kernel + 0.5) / 3, gamma, lr, depth, width])


def test_inactive_parameters_sit_at_the_centre_in_the_gps_input() -> None:
    encoder = gp.Encoder(SPACE)
    raw = np.stack([point(0, 0.1), point(0, 0.9), point(1, 0.1), point(2, 0.8)])
    model = encoder.to_model(raw)
    assert model[:, 0].tolist() == [0, 0, 1, 2]  # choice indices
    assert model[0, 1] == model[1, 1] == 0.5 and model[3, 1] == 0.5  # gamma off under linear and poly
    assert model[2, 1] == pytest.approx(0.1)  # on under rbf
    assert model[0, 4] == model[1, 4] == 0.5 and model[2, 4] == model[3, 4] == pytest.approx(0.9)
    # two linear points that differ only where they cannot matter are one point to the GP
    np.testing.assert_array_equal(model[0], model[1])
    np.testing.assert_array_equal(raw[:, 2:4], model[:, 2:4])  # unconditional coordinates untouched


def test_a_condition_on_a_number_is_decoded_point_by_point() -> None:
    space = SearchSpace({
        "n": IntParam(type="int", low=1, high=2),
        "extra": FloatParam(type="float", low=0.0, high=1.0, when={"n": 2}),
    })
    model = gp.Encoder(space).to_model(np.array([[0.2, 0.9], [0.8, 0.9]]))
    assert model[:, 1].tolist() == [0.5, 0.9]


def test_each_category_combination_fixes_what_it_switches_off() -> None:
    fixed = gp.Encoder(SPACE).fixed_features(np.random.default_rng(0))
    assert fixed == [{0: 0.0, 1: 0.5, 4: 0.5}, {0: 1.0}, {0: 2.0, 1: 0.5}]


def observations(n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        u = rng.random(SPACE.dim)
        params = SPACE.decode(u)
        bonus = 1 - (params["gamma"] - 0.3) ** 2 if params["kernel"] == "rbf" else 0.0
        value = -(np.log10(params["lr"]) + 2.5) ** 2 + bonus
        out.append(Observation(i, i, u, params, float(value), None, None, {}))
    return out


def fitted(n: int, start: dict | None = None) -> torch.nn.Module:
    encoder = gp.Encoder(SPACE)
    obs = observations(n)
    x = gp.tensor(encoder.to_model(np.stack([o.x for o in obs])), torch.device("cpu"))
    y = gp.tensor([[o.fitness] for o in obs], torch.device("cpu"))
    return gp.fit_gp(x, y, encoder.cat_dims, start=start)


def log_likelihood(model: torch.nn.Module) -> float:
    from gpytorch.mlls import ExactMarginalLogLikelihood

    model.train()
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with torch.no_grad():
        return float(mll(model(*model.train_inputs), model.train_targets))


def test_a_warm_start_continues_from_the_previous_fit() -> None:
    """Started where the last fit stopped, the optimiser can only raise the likelihood; a
    start that does not fit the model (other shapes) is ignored, not an error."""
    first_model = fitted(30)
    first = gp.hyperparameters(first_model)
    assert first and all(np.isfinite(v).all() for v in first.values())
    again = fitted(30, start=first)
    assert log_likelihood(again) >= log_likelihood(first_model) - 1e-6
    cold_again = fitted(30)  # deterministic: the same data and no start give the same fit
    assert log_likelihood(cold_again) == pytest.approx(log_likelihood(first_model), abs=1e-9)
    wrong_shape = {name: np.zeros((*np.shape(v), 2)) for name, v in first.items()}
    assert log_likelihood(fitted(30, start=wrong_shape)) == pytest.approx(log_likelihood(first_model), abs=1e-9)


def test_bo_checkpoints_its_warm_start_and_reads_the_version_before() -> None:
    ctx = ProposerContext(space=SPACE, layout=context({}).layout, options={"num_restarts": 2, "raw_samples": 32,
                                                                           "initial_design": 4},
                          batch_size=2, seed=0)
    proposer = build_proposer("bo", ctx)
    proposer.tell(observations(12))
    proposer.ask(2)
    assert proposer.hyper
    state = proposer.state()
    resumed = build_proposer("bo", ctx)
    resumed.restore(state, FakeHistory(observations(12), []))
    assert resumed.hyper.keys() == proposer.hyper.keys()
    for name, value in proposer.hyper.items():
        np.testing.assert_array_equal(resumed.hyper[name], value)
    old = checkpoint.dumps("bo", 1, {"asks": 3, "sobol_drawn": 4})
    legacy = build_proposer("bo", ctx)
    legacy.restore(old, FakeHistory(observations(12), []))
    assert legacy.asks == 3 and legacy.sobol_drawn == 4 and legacy.hyper == {}
