"""GRPO with entropy controls, for causal LMs on tasks with verifiable rewards.

One module, one job:

- :mod:`workers.rl.config`: the hyperparameters and their conventions (nats, fractions);
- :mod:`workers.rl.advantages`: group-normalised advantages;
- :mod:`workers.rl.losses`: token-mean PPO loss with clip-higher, dual-clip, Clip-Cov, KL-Cov, the
  entropy bonus, GRPO's k3 KL to the reference, and the 80/20 top-entropy tokens;
- :mod:`workers.rl.entropy_control`: the adaptive entropy coefficient and AEPO's temperature rule;
- :mod:`workers.rl.dapo`: DAPO's dynamic-sampling filter and overlong reward shaping;
- :mod:`workers.rl.rollout`: sampling G completions per prompt, rewards, tempered log-probs;
- :mod:`workers.rl.trainer`: the loop, and the held-out evaluation of a policy;
- :mod:`workers.rl.dynamics`: the first-order entropy change of a softmax policy.

::

    from workers.decoding import load_model
    from workers.decoding.tasks import ArithmeticTask
    from workers.rl import GRPOConfig, GRPOTrainer, evaluate_policy

    lm = load_model("builtin:arith-nano", dtype="float32")
    task = ArithmeticTask(lm, num_prompts=96)
    train, held = task.items[:64], task.items[64:]
    trainer = GRPOTrainer(lm, train, task.correct, GRPOConfig(steps=20, entropy_coef=0.01), max_new_tokens=4)
    trainer.train()
    evaluate_policy(lm, held, task.correct, max_new_tokens=4)   # accuracy, entropy (nats), greedy accuracy

See ``docs/entropy_rl.md``.
"""

from workers.rl.advantages import group_advantages
from workers.rl.config import AEPO_ENTROPY, DEFAULT_CLIP, LOSS_MODES, GRPOConfig
from workers.rl.dapo import informative_groups, overlong_penalty
from workers.rl.entropy_control import AdaptiveEntropyCoef, aepo_prompt_count, aepo_sample_count, aepo_temperature
from workers.rl.losses import (
    LossOutput,
    clip_cov_select,
    dual_clip_losses,
    k3_kl,
    kl_cov_select,
    policy_loss,
    ppo_clip_losses,
    token_covariance,
    top_entropy_mask,
)
from workers.rl.trainer import GRPOTrainer, PolicyEval, StepStats, curves, evaluate_policy

__all__ = [
    "AEPO_ENTROPY",
    "DEFAULT_CLIP",
    "LOSS_MODES",
    "AdaptiveEntropyCoef",
    "GRPOConfig",
    "GRPOTrainer",
    "LossOutput",
    "PolicyEval",
    "StepStats",
    "aepo_prompt_count",
    "aepo_sample_count",
    "aepo_temperature",
    "clip_cov_select",
    "curves",
    "dual_clip_losses",
    "evaluate_policy",
    "group_advantages",
    "informative_groups",
    "k3_kl",
    "kl_cov_select",
    "overlong_penalty",
    "policy_loss",
    "ppo_clip_losses",
    "token_covariance",
    "top_entropy_mask",
]
