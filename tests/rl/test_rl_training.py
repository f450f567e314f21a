"""Real GRPO runs on the built-in arithmetic models, and the ``entropy_rl`` evaluator
through the evaluator contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tests.decoding.conftest import build_char_model
from workers.contract import EvalContext
from workers.decoding import arith
from workers.decoding.models import ModelNotFoundError, load_model
from workers.decoding.tasks import ArithmeticTask
from workers.evaluators.entropy_rl import MEASURES, EntropyRLEvaluator
from workers.registry import build
from workers.rl import GRPOConfig, GRPOTrainer, evaluate_policy
from workers.runner import EvaluationTask, run_tasks


def nano_run(entropy_coef: float, steps: int = 120) -> tuple[float, float, list[float]]:
    """(held-out entropy before, after, rollout-entropy curve) of a GRPO run on arith-nano."""
    lm = load_model("builtin:arith-nano", dtype="float32")
    task = ArithmeticTask(lm, 128)
    train, held = task.items[:64], task.items[64:]
    before = evaluate_policy(lm, held, task.correct, 4, samples=4, greedy=False).entropy
    cfg = GRPOConfig(steps=steps, lr=1e-3, ppo_epochs=1, num_minibatches=1, entropy_coef=entropy_coef)
    history = GRPOTrainer(lm, train, task.correct, cfg, max_new_tokens=4, seed=0).train()
    after = evaluate_policy(lm, held, task.correct, 4, samples=4, seed=1, greedy=False).entropy
    return before, after, [s.entropy for s in history]


def test_entropy_falls_without_a_bonus_and_holds_with_a_large_one() -> None:
    before, after, curve = nano_run(entropy_coef=0.0)
    assert after < 0.9 * before  # the policy sharpens: entropy is consumed
    assert sum(curve[-20:]) / 20 < sum(curve[:10]) / 10 - 0.05
    before_b, after_b, curve_b = nano_run(entropy_coef=0.5)
    assert before_b == before  # the same starting policy
    assert after_b > 0.95 * before  # no collapse with a large bonus
    assert after_b > after + 0.1
    assert min(curve_b) > 0.8 * curve_b[0]


@pytest.fixture(scope="module")
def evaluator() -> EntropyRLEvaluator:
    ev = EntropyRLEvaluator()
    ev.setup({"model": "builtin:arith-tiny-rl", "num_prompts": 16, "num_eval_prompts": 16, "eval_samples": 2,
              "steps": 3, "prompts_per_step": 4, "group_size": 4}, EvalContext())
    return ev


def test_evaluator_through_the_contract(evaluator: EntropyRLEvaluator) -> None:
    tasks = [EvaluationTask(1, 0, {"loss_mode": "clip_cov", "clip_cov_ratio": 0.05, "eps_high": 0.28}, seed=5),
             EvaluationTask(2, 1, {"loss_mode": "kl_cov", "kl_cov_ratio": 0.05, "lr": 1e-3}, seed=5),
             EvaluationTask(3, 2, {"aepo": True, "aepo_entropy": "exact", "adaptive_entropy": True,
                                   "entropy_target": 2.0}, seed=5),
             EvaluationTask(4, 3, {"loss_mode": "bogus"}, seed=5)]
    clip_cov, kl_cov, aepo, bad = run_tasks(evaluator, tasks, list(MEASURES), EvalContext())
    for out in (clip_cov, kl_cov, aepo):
        assert out.status == "done", out.error
        assert 0.0 <= out.objective <= 1.0
        assert out.measures["final_entropy"] > 0
        assert out.measures["entropy_retained"] == pytest.approx(
            out.measures["final_entropy"] / out.metrics["initial_entropy"])
        curves = out.metrics["curves"]
        assert {"reward", "entropy", "covariance", "clipped", "dropped", "penalised"} <= set(curves)
        assert all(len(v) == 3 for v in curves.values())
        assert out.metrics["train_seconds"] > 0 and out.metrics["steps_per_s"] > 0
        json.dumps(out.metrics)  # storable as is
    assert sum(clip_cov.metrics["curves"]["dropped"]) >= 3 and sum(clip_cov.metrics["curves"]["penalised"]) == 0
    assert sum(kl_cov.metrics["curves"]["penalised"]) >= 3 and sum(kl_cov.metrics["curves"]["clipped"]) == 0
    # AEPO's exact-entropy variant: the rule on the pre-update entropy, hot (1.2) at or below the 0.5-nat
    # target, cold (0.8) above it
    expected = [1.2 if h <= 0.5 else 0.8 for h in aepo.metrics["curves"]["entropy"]]
    assert aepo.metrics["curves"]["aepo_entropy"] == aepo.metrics["curves"]["entropy"]
    assert aepo.metrics["curves"]["aepo_temperature"] == expected and expected[0] == 1.2
    assert all(c > 0 for c in aepo.metrics["curves"]["entropy_coef"])  # adaptive: raised toward 2 nats
    assert bad.status == "failed" and "loss_mode must be one of" in (bad.error or "")


def test_same_seed_same_result_other_seed_other_run(evaluator: EntropyRLEvaluator) -> None:
    params = {"temperature": 1.1, "entropy_coef": 0.05}
    a = evaluator.evaluate(params, EvalContext(seed=11))
    b = evaluator.evaluate(params, EvalContext(seed=11))
    c = evaluator.evaluate(params, EvalContext(seed=12))
    assert a["objective"] == b["objective"] and a["measures"] == b["measures"]
    assert a["metrics"]["curves"]["entropy"] == b["metrics"]["curves"]["entropy"]
    assert a["metrics"]["curves"]["reward"] != c["metrics"]["curves"]["reward"] or (
        a["metrics"]["curves"]["entropy"] != c["metrics"]["curves"]["entropy"])


def test_zero_steps_is_the_starting_policy(evaluator: EntropyRLEvaluator) -> None:
    out = evaluator.evaluate({"steps": 0}, EvalContext(seed=0))
    assert out["metrics"]["curves"]["reward"] == []
    # the same weights as the start (restored after every run), sampled with the same eval_seed: the start exactly
    assert out["measures"]["entropy_retained"] == 1.0
    assert out["objective"] == out["metrics"]["initial_accuracy"] and out["metrics"]["accuracy_gain"] == 0.0


@pytest.mark.parametrize("max_new_tokens", [1, 2, 8])
def test_zero_steps_is_the_start_at_any_searched_length(evaluator: EntropyRLEvaluator, max_new_tokens: int) -> None:
    """max_new_tokens as a search parameter: the start is measured at the run's own length
    (it was measured once at the config's, and an untrained policy at 1 token "retained"
    1.8 of its entropy and "lost" 0.39 of its accuracy)."""
    out = evaluator.evaluate({"steps": 0, "max_new_tokens": max_new_tokens}, EvalContext(seed=0))
    assert out["measures"]["entropy_retained"] == 1.0
    assert out["metrics"]["accuracy_gain"] == 0.0


def test_a_campaigns_own_parameter_is_left_unread_and_a_misspelt_one_fails(evaluator: EntropyRLEvaluator) -> None:
    """``layers`` beside the GRPO parameters failed the run (``unknown GRPO parameter(s)
    layers``); it is left unread, as the decoding evaluator leaves it: the same run."""
    plain = evaluator.evaluate({"steps": 1}, EvalContext(seed=2))
    extra = evaluator.evaluate({"steps": 1, "layers": 4, "w": [0.5, -0.5]}, EvalContext(seed=2))
    assert extra["objective"] == plain["objective"] and extra["measures"] == plain["measures"]
    with pytest.raises(ValueError, match="unknown GRPO parameter\\(s\\) entropy_coeff"):
        evaluator.evaluate({"steps": 1, "entropy_coeff": 0.1}, EvalContext(seed=2))


def test_every_run_is_scored_on_the_starts_draw(evaluator: EntropyRLEvaluator) -> None:
    """Runs with other training seeds are sampled on the held-out prompts with one eval_seed."""
    a = evaluator.evaluate({"steps": 0}, EvalContext(seed=3))
    b = evaluator.evaluate({"steps": 0}, EvalContext(seed=4))
    assert a["objective"] == b["objective"] and a["measures"] == b["measures"]


def test_missing_model_dir_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    ev = build("entropy_rl")
    with pytest.raises(ModelNotFoundError, match=str(missing)):
        ev.setup({"model": str(missing)}, EvalContext())
    with pytest.raises(ValueError, match="unknown entropy_rl config key"):
        ev.setup({"modle": "builtin:arith-nano"}, EvalContext())
    with pytest.raises(ValueError, match="verifiable reward"):
        ev.setup({"model": "builtin:arith-nano", "task": "continuation"}, EvalContext())


def test_jsonl_task_and_a_local_hf_model(tmp_path: Path) -> None:
    # the jsonl task with the built-in tokenizer: additions written as the built-in models answer them
    data = tmp_path / "add.jsonl"
    _, held = arith.heldout_problems()
    lines = [{"prompt": arith.prompt_text(a, b), "answer": arith.answer_text(a, b)} for a, b in held[:24].tolist()]
    data.write_text("".join(json.dumps(x) + "\n" for x in lines))
    ev = EntropyRLEvaluator()
    ev.setup({"model": "builtin:arith-tiny-rl", "task": "jsonl", "data": str(data), "num_prompts": 16,
              "num_eval_prompts": 8, "eval_samples": 2, "steps": 2, "prompts_per_step": 4, "group_size": 4,
              "max_new_tokens": 4}, EvalContext())
    assert len(ev.train_items) == 16 and len(ev.eval_items) == 8
    assert ev.eval_items[0].prompt == lines[16]["prompt"]  # the file's last lines are held out
    out = ev.evaluate({}, EvalContext(seed=0))
    assert ev.initial.greedy_accuracy > 0.5  # the rewards are real: the starting model answers most
    assert math.isfinite(out["objective"]) and len(out["metrics"]["curves"]["reward"]) == 2
    # any Hugging Face causal LM from a local directory (a random character-level GPT-2 here)
    model_dir = build_char_model(tmp_path / "char")
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps({"prompt": f"{i}+1=", "answer": str(i + 1)}) + "\n"
                                               for i in range(12)))
    hf = EntropyRLEvaluator()
    hf.setup({"model": str(model_dir), "task": "jsonl", "data": str(tmp_path / "qa.jsonl"), "num_prompts": 8,
              "num_eval_prompts": 4, "eval_samples": 2, "steps": 2, "prompts_per_step": 2, "group_size": 2,
              "max_new_tokens": 3}, EvalContext())
    out = hf.evaluate({"entropy_coef": 0.01}, EvalContext(seed=0))
    assert out["measures"]["final_entropy"] > 1.0  # random weights: near-uniform over ~100 characters
    assert out["metrics"]["curves"]["tokens"][0] > 0


def test_answer_diversity_counts_distinct_answers_per_prompt() -> None:
    from workers.rl.trainer import answer_diversity

    assert answer_diversity(["12", "12", "12", "12"], 4) == 0.0
    assert answer_diversity(["12", "13", "14", "15"], 4) == 1.0
    # two prompts: 2 distinct of 4 (1/3) and 3 distinct of 4 (2/3)
    assert answer_diversity(["1", "1", "2", "2", "a", "b", "c", "c"], 4) == pytest.approx(0.5)
    assert answer_diversity(["1", "2"], 1) == 0.0


def test_sharper_policy_gives_fewer_distinct_answers(evaluator: EntropyRLEvaluator) -> None:
    """The measure follows the policy: colder evaluation sampling gives fewer distinct answers."""
    lm, items = evaluator.lm, evaluator.eval_items
    hot = evaluate_policy(lm, items, evaluator._reward, 4, samples=4, temperature=1.5, greedy=False)
    cold = evaluate_policy(lm, items, evaluator._reward, 4, samples=4, temperature=0.3, greedy=False)
    assert cold.answer_diversity < hot.answer_diversity
    out = evaluator.evaluate({"steps": 0}, EvalContext(seed=0))
    assert out["measures"]["answer_diversity"] == out["metrics"]["initial_answer_diversity"] > 0


def test_the_policy_entropy_is_measured_at_the_evaluation_temperature() -> None:
    """workers/rl/trainer.py evaluate_policy: "the policy's token-mean entropy (nats, at that
    temperature)"; entropy_rl's ``final_entropy`` is "at eval_temperature", not the T = 1 model entropy."""
    lm = load_model("builtin:arith-nano", dtype="float32")
    task = ArithmeticTask(lm, 16)
    cool = evaluate_policy(lm, task.items, task.correct, 4, samples=2, temperature=0.5, greedy=False)
    hot = evaluate_policy(lm, task.items, task.correct, 4, samples=2, temperature=3.0, greedy=False)
    assert hot.entropy > 2.0 * cool.entropy


def one_step_trainer(**overrides: object) -> GRPOTrainer:
    """A GRPO trainer on arith-nano for one small step (4 prompts x 4 samples, 2 minibatches)."""
    lm = load_model("builtin:arith-nano", dtype="float32")
    task = ArithmeticTask(lm, 16)
    config = GRPOConfig(**{"steps": 1, "lr": 1e-3, "ppo_epochs": 1, "num_minibatches": 2, "prompts_per_step": 4,
                           "group_size": 4, **overrides})
    return GRPOTrainer(lm, task.items, task.correct, config, max_new_tokens=4, seed=0)


def test_the_steps_entropy_is_a_token_mean_over_the_rollout(monkeypatch: pytest.MonkeyPatch) -> None:
    """workers/rl/trainer.py StepStats.entropy: the "token-mean entropy of the tempered policy on the
    rollout" (verl's actor/entropy, token-mean), not a mean of per-sequence means. Spies on the
    trainer module's ``token_logprobs`` (an internal seam) to read the rollout's per-token entropies."""
    import workers.rl.trainer as trainer_module

    rollouts: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = trainer_module.token_logprobs

    def spy(lm: object, batch: object, temperature: float, model: object = None) -> object:
        logp, ent = real(lm, batch, temperature, model)
        if not torch.is_grad_enabled():  # the rollout's pass, not a minibatch's
            rollouts.append((ent.detach().clone(), batch.target_mask.sum(-1)))
        return logp, ent

    monkeypatch.setattr(trainer_module, "token_logprobs", spy)
    stats = one_step_trainer().step()
    ent, lengths = rollouts[0]
    per_row = torch.stack([e.mean() for e in torch.split(ent, lengths.tolist())])
    assert len(set(lengths.tolist())) > 1  # rows of different lengths: the two means differ
    assert abs(float(per_row.mean()) - float(ent.mean())) > 1e-4
    assert stats.entropy == pytest.approx(float(ent.mean()), rel=1e-9)


def test_the_adaptive_bonus_enters_the_loss_only_at_or_below_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """workers/rl/entropy_control.py: the bonus −c·H "enters that step's loss only when H ≤ H_target",
    while c itself still moves by δ per update. Spies on the trainer module's ``policy_loss`` (an
    internal seam) for the coefficient each minibatch's loss is given."""
    import workers.rl.trainer as trainer_module

    coefs: list[float] = []
    real = trainer_module.policy_loss

    def spy(*args: object, **kwargs: object) -> object:
        coefs.append(float(kwargs["entropy_coef"]))  # type: ignore[arg-type]
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "policy_loss", spy)
    stats = one_step_trainer(adaptive_entropy=True, entropy_coef=0.5, entropy_target=0.0).step()
    assert coefs and all(c == 0.0 for c in coefs)  # every minibatch's H > 0 = the target
    assert stats.entropy_coef == pytest.approx(0.5 - 0.005 * len(coefs))
