"""A GRPO run that diverges stops with one clear error, and a near-zero temperature does not diverge.

Before the divergence check, a huge coefficient or learning rate surfaced as the sampler's
``RuntimeError: probability tensor contains either inf, nan or element < 0`` at the next
rollout; a temperature of 1e-40 overflowed z / T in the loss's log-probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch

from workers.contract import EvalContext
from workers.decoding.models import LanguageModel, load_model
from workers.decoding.tasks import ArithmeticTask
from workers.evaluators.entropy_rl import MEASURES, EntropyRLEvaluator
from workers.rl import GRPOConfig, GRPOTrainer
from workers.rl.rollout import entropy_of, tempered_logits, token_batch, token_logprobs
from workers.rl.trainer import first_nonfinite_parameter
from workers.runner import EvaluationTask, run_tasks

DIVERGED = r"training diverged at step \d+: .+ is not finite"


@pytest.fixture(scope="module")
def nano() -> LanguageModel:
    return load_model("builtin:arith-nano", dtype="float32")


@pytest.fixture
def fresh(nano: LanguageModel) -> Iterator[LanguageModel]:
    """The nano model, its starting weights restored after the test."""
    state = {k: v.detach().clone() for k, v in nano.model.state_dict().items()}
    yield nano
    nano.model.load_state_dict(state)


def run(lm: LanguageModel, **params: Any) -> list[Any]:
    task = ArithmeticTask(lm, 16)
    cfg = GRPOConfig(steps=3, prompts_per_step=4, group_size=4, **params)
    return GRPOTrainer(lm, task.items, task.correct, cfg, max_new_tokens=4).train()


@pytest.mark.parametrize("params", [
    {"entropy_coef": 1e38},
    {"entropy_coef": -1e38},
    {"lr": 1e10},
    {"lr": 1e10, "num_minibatches": 1},  # finite weights whose forward pass overflows: caught after the update
    {"loss_mode": "kl_cov", "kl_cov_ratio": 0.0, "kl_coef": 1e38},
    {"ref_kl_coef": 1e38},
], ids=["entropy_coef+", "entropy_coef-", "lr", "lr-one-minibatch", "kl_coef", "ref_kl_coef"])
def test_a_diverging_run_stops_with_training_diverged(fresh: LanguageModel, params: dict[str, Any]) -> None:
    with pytest.raises(FloatingPointError, match=DIVERGED):
        run(fresh, **params)


def test_the_error_names_the_step_and_what_stopped_being_finite(fresh: LanguageModel) -> None:
    with pytest.raises(FloatingPointError) as caught:
        run(fresh, entropy_coef=1e38)
    assert str(caught.value) == "training diverged at step 1: parameter 'transformer.wte.weight' is not finite"


def test_first_nonfinite_parameter() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    assert first_nonfinite_parameter(model) is None
    with torch.no_grad():
        model[1].bias[0] = float("nan")
    assert first_nonfinite_parameter(model) == "1.bias"


def test_a_near_zero_temperature_trains_as_greedy_sampling(fresh: LanguageModel) -> None:
    history = run(fresh, temperature=1e-40)
    assert [s.entropy for s in history] == [0.0, 0.0, 0.0]
    assert all(torch.isfinite(torch.tensor([s.pg_loss, s.approx_kl, s.covariance])).all() for s in history)


def test_log_probs_at_a_near_zero_temperature_are_the_greedy_policys(nano: LanguageModel) -> None:
    task = ArithmeticTask(nano, 4)
    prompts = [list(item.prompt_ids) for item in task.items]
    batch = token_batch(prompts, [[3, 5]] * len(prompts), nano.pad_id)
    with torch.no_grad():
        logp, entropy = token_logprobs(nano, batch, 1e-40)
        greedy_logp, _ = token_logprobs(nano, batch, 1e-30)  # z / T still fits: the plain rule
    assert entropy.tolist() == [0.0] * entropy.numel()
    assert set(logp.tolist()) == {0.0, -float("inf")}  # 0 for the argmax token, −inf for the others
    assert torch.equal(logp == 0, greedy_logp == 0)


def test_tempered_logits_are_z_over_t_bit_for_bit_where_they_fit() -> None:
    z = torch.randn(5, 11, generator=torch.Generator().manual_seed(0)) * 30
    for t in (0.3, 0.7, 1.0, 1.3, 1e-30):
        assert torch.equal(tempered_logits(z, t), z / t)
    for rows in (z, -z.abs() - 1.0):  # overflow to +inf, and every entry −inf (all logits < 0)
        tiny = torch.log_softmax(tempered_logits(rows, 1e-40), -1)
        assert not torch.isnan(tiny).any()
        assert tiny.amax(-1).tolist() == [0.0] * 5 and torch.equal(tiny.argmax(-1), rows.argmax(-1))
    masked = z.clone()
    masked[:, 0] = -float("inf")  # a masked token keeps a row on the plain rule
    assert torch.equal(tempered_logits(masked, 0.7), masked / 0.7)
    logp = torch.log_softmax(z, -1)
    assert torch.equal(entropy_of(logp), -(logp.exp() * logp).sum(-1))  # unchanged without −inf entries
    assert entropy_of(torch.tensor([[0.0, -float("inf")]])).tolist() == [0.0]


def test_a_diverging_evaluation_fails_alone_with_the_message() -> None:
    ev = EntropyRLEvaluator()
    ev.setup({"model": "builtin:arith-nano", "num_prompts": 8, "num_eval_prompts": 4, "eval_samples": 2,
              "steps": 2, "prompts_per_step": 4, "group_size": 4, "law_checkpoints": 0}, EvalContext())
    tasks = [EvaluationTask(1, 0, {"lr": 1e10}, seed=1), EvaluationTask(2, 1, {}, seed=1)]
    diverged, fine = run_tasks(ev, tasks, list(MEASURES), EvalContext())
    assert diverged.status == "failed" and "training diverged at step 1" in diverged.error
    assert "FloatingPointError" in diverged.error
    assert fine.status == "done"


def test_an_lr_adamw_cannot_take_is_refused_with_the_file() -> None:
    """AdamW's first step is lr / (1 − β₁) = 10·lr: above 3.4e37 torch raised "value cannot be
    converted to type float without overflow" in every such run."""
    from workers.registry import check

    reason = "must be <= 3.4e+37 (AdamW's first step is 10·lr, which float32 must hold)"
    assert check("entropy_rl", {"lr": 1e38}, None, {}) == [f"evaluator.config.lr: {reason}"]
    assert check("entropy_rl", {}, None, {"lr": {"type": "float", "low": 1e-6, "high": 1e38, "log": True}}) == [
        f"space.lr.high: {reason}, got 1e+38"]
    assert check("entropy_rl", {}, None, {"lr": {"type": "float", "low": 1e-6, "high": 3.4e37, "log": True}}) == []
    with pytest.raises(ValueError, match=r"lr must be in \(0, 3.4e\+37\]"):
        GRPOConfig(lr=1e38)
