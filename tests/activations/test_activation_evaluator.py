"""The ``activation`` evaluator end to end: real training on digits, determinism, failures."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from search.spec import load_spec
from workers import registry
from workers.activations.data import load_dataset
from workers.activations.factory import activation_factory
from workers.activations.training import TrainConfig, deterministic, train_and_measure
from workers.contract import EvalContext
from workers.evaluators.activation import PARAM_KEYS, ActivationEvaluator
from workers.runner import EvaluationTask, run_tasks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "activations.yaml"
QUICK = {"hidden": [32], "epochs": 3}


def make(config: dict | None = None) -> ActivationEvaluator:
    evaluator = ActivationEvaluator()
    evaluator.setup(config or {}, EvalContext())
    return evaluator


@pytest.fixture(scope="module")
def quick() -> ActivationEvaluator:
    return make(QUICK)


def test_mlp_with_relu_reaches_95_percent_on_digits() -> None:
    result = make().evaluate({"activation": "relu"}, EvalContext(seed=0))
    assert result["objective"] >= 0.95, result["metrics"]["accuracy_per_seed"]
    curve = result["metrics"]["loss_curve"]
    assert len(curve) == 20 and curve[-1] < 0.25 * curve[0]  # it learned
    assert len(result["metrics"]["post_activation_entropy_per_layer"]) == 2
    assert 0.0 < result["measures"]["post_activation_sparsity"] < 1.0  # ReLU has exact zeros


def test_training_alone_is_real() -> None:
    """An untrained-looking setting (one epoch, tiny rate) stays far below the trained accuracy."""
    data = load_dataset("digits")
    factory = activation_factory({"activation": "relu"})
    with deterministic(1):
        weak = train_and_measure(factory, data, TrainConfig(hidden=(16,), epochs=1, lr=1e-5), seed=0)
    assert weak.accuracy < 0.5


def test_same_params_and_seed_give_the_same_numbers(quick: ActivationEvaluator) -> None:
    params = {"activation": "crrelu", "crrelu_eps": 0.3}
    first = quick.evaluate(params, EvalContext(seed=7))
    again = make(QUICK).evaluate(params, EvalContext(seed=7))  # a fresh evaluator, too
    assert first["objective"] == again["objective"]
    assert first["measures"] == again["measures"]
    assert first["metrics"]["loss_curve"] == again["metrics"]["loss_curve"]
    assert first["metrics"]["activation_params"] == again["metrics"]["activation_params"]
    other = quick.evaluate(params, EvalContext(seed=8))
    assert other["metrics"]["loss_curve"] != first["metrics"]["loss_curve"]


def test_determinism_settings_are_restored(quick: ActivationEvaluator) -> None:
    threads = torch.get_num_threads()
    enabled = torch.are_deterministic_algorithms_enabled()
    quick.evaluate({"activation": "relu"}, EvalContext(seed=0))
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == enabled


def test_crrelu_result_shape_and_learned_eps(quick: ActivationEvaluator) -> None:
    result = quick.evaluate({"activation": "crrelu"}, EvalContext(seed=0))
    assert 0.5 < result["objective"] <= 1.0
    m = result["measures"]
    assert set(m) == {"post_activation_entropy", "predictive_entropy", "post_activation_sparsity"}
    assert 0.0 < m["post_activation_entropy"] <= math.log(64)
    assert 0.0 < m["predictive_entropy"] <= math.log(10)
    eps = result["metrics"]["activation_params"]["layer0.eps"]
    assert isinstance(eps, float) and eps != pytest.approx(0.01, abs=1e-6)  # trained
    metrics = result["metrics"]
    assert metrics["wall_time_s"] >= metrics["train_seconds"] > 0
    assert metrics["num_params"] == 64 * 32 + 32 + 32 * 10 + 10 + 1
    assert metrics["activation"] == "crrelu" and metrics["dataset"] == "digits" and metrics["device"] == "cpu"


def test_fixed_family_coefficients_are_kept(quick: ActivationEvaluator) -> None:
    result = quick.evaluate(
        {"activation": "family", "family_c1": 0.5, "family_c2": -0.25, "family_c3": 0.125}, EvalContext(seed=0)
    )
    assert result["metrics"]["activation_params"]["layer0.coeffs"] == [0.5, -0.25, 0.125]


def test_symbolic_expression_and_canonical_form(quick: ActivationEvaluator) -> None:
    result = quick.evaluate(
        {"activation": "symbolic", "expression": "x*sigmoid(1.7*x) + 0.01*x*exp(-x**2/2)"}, EvalContext(seed=0)
    )
    assert result["objective"] > 0.5
    assert result["metrics"]["expression_canonical"].startswith("((x * sigmoid((1.7 * x)))")


def test_mean_over_training_seeds() -> None:
    result = make({**QUICK, "seeds": 2}).evaluate({"activation": "gelu"}, EvalContext(seed=5))
    per_seed = result["metrics"]["accuracy_per_seed"]
    assert result["metrics"]["train_seeds"] == [5, 6]
    assert len(per_seed) == 2 and result["objective"] == pytest.approx(sum(per_seed) / 2)
    single = make(QUICK).evaluate({"activation": "gelu"}, EvalContext(seed=6))
    assert single["objective"] == per_seed[1]


def test_params_override_training_settings(quick: ActivationEvaluator) -> None:
    result = quick.evaluate({"activation": "relu", "epochs": 2, "lr": 0.01}, EvalContext(seed=0))
    assert len(result["metrics"]["loss_curve"]) == 2


def test_vit_reports_attention_entropy() -> None:
    evaluator = make({"model": "vit", "epochs": 2, "dim": 16, "heads": 2, "depth": 1, "max_train": 400})
    result = evaluator.evaluate({"activation": "crrelu"}, EvalContext(seed=0))
    att = result["measures"]["attention_entropy"]
    assert 0.0 < att <= math.log(5) + 1e-9  # 4 patches of 4x4 + the class token
    assert len(result["metrics"]["attention_entropy_per_layer"]) == 1
    assert result["metrics"]["model"] == "vit"


def test_runner_marks_a_diverging_activation_failed_and_the_rest_done(quick: ActivationEvaluator) -> None:
    tasks = [
        EvaluationTask(1, 0, {"activation": "symbolic", "expression": "log(x)"}, seed=0),  # NaN for x < 0
        EvaluationTask(2, 1, {"activation": "elu"}, seed=0),
        EvaluationTask(3, 2, {"activation": "symbolic", "expression": "x.__class__"}, seed=0),
    ]
    measures = ["post_activation_entropy", "predictive_entropy"]
    outcomes = run_tasks(quick, tasks, measures, EvalContext())
    assert [o.status for o in outcomes] == ["failed", "done", "failed"]
    assert "training diverged" in outcomes[0].error
    assert "attribute access is not allowed" in outcomes[2].error
    assert set(measures) <= set(outcomes[1].measures)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"activation": "relu", "lrr": 1.0}, ValueError, "unknown params \\['lrr'\\]"),
        ({"activation": "relu", "epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"activation": "relu", "lr": -1}, ValueError, "lr must be a positive number"),
        ({"activation": "nope"}, ValueError, "unknown activation"),
    ],
)
def test_bad_params_are_refused(quick: ActivationEvaluator, params: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        quick.evaluate(params, EvalContext(seed=0))


def test_a_campaigns_own_parameter_is_left_unread_and_a_misspelt_one_fails(quick: ActivationEvaluator) -> None:
    """``layers`` beside the activation's parameters failed the evaluation (``unknown params
    ['layers']``); it is left unread, as the decoding evaluator leaves it: the same numbers."""
    plain = quick.evaluate({"activation": "elu"}, EvalContext(seed=3))
    extra = quick.evaluate({"activation": "elu", "layers": 4, "w": [0.5, -0.5]}, EvalContext(seed=3))
    assert extra["objective"] == plain["objective"] and extra["measures"] == plain["measures"]
    with pytest.raises(ValueError, match="unknown params \\['swish_betta'\\]"):
        quick.evaluate({"activation": "swish", "swish_betta": 2.0}, EvalContext(seed=3))


def test_bad_config_is_refused_at_setup(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown config keys \\['epoch'\\]"):
        make({"epoch": 3})
    with pytest.raises(ValueError, match="model must be 'mlp' or 'vit'"):
        make({"model": "cnn"})
    with pytest.raises(ValueError, match="seeds"):
        make({"seeds": 0})
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cifar-10-batches-py")):
        make({"dataset": "cifar10", "data_dir": str(tmp_path)})


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_asked_for_without_cuda_is_a_clear_error(quick: ActivationEvaluator) -> None:
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        quick.evaluate({"activation": "relu"}, EvalContext(seed=0, device="cuda:0"))


def test_example_campaign_fits_the_evaluator(quick: ActivationEvaluator) -> None:
    spec = load_spec(EXAMPLE)
    assert spec.evaluator.kind == "activation"
    assert set(spec.space) <= PARAM_KEYS
    make(dict(spec.evaluator.config))  # the config is accepted
    names = {m.name for m in spec.measures}
    for point in spec.search.initial_points[:2]:
        result = quick.evaluate(point, EvalContext(seed=0))
        assert names <= set(result["measures"])


@pytest.mark.skipif(
    "activation" not in registry.available(),
    reason="entry point 'activation' is not registered (pyproject.toml, then reinstall)",
)
def test_registered_as_activation() -> None:
    assert isinstance(registry.build("activation", {}), ActivationEvaluator)
