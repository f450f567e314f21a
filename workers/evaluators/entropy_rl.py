"""``kind: entropy_rl``: fine-tune a policy with GRPO under entropy hyperparameters.

Each evaluation restores the starting weights, runs ``steps`` GRPO steps
(:mod:`workers.rl`) on the training prompts with the configuration in ``params``, then
samples the held-out prompts and returns

- ``objective``: held-out ``accuracy``, the mean exact-match reward of ``eval_samples``
  completions per held-out prompt at ``eval_temperature`` (avg@k, pass@1 sampled), drawn
  with the fixed ``eval_seed`` that the starting policy's accuracy was drawn with too
  (common random numbers: ``accuracy_gain`` compares policies on the same draw);
- ``measures``: ``final_entropy`` (token-mean entropy, nats, of the trained policy at
  ``eval_temperature`` on those completions) and ``entropy_retained`` (final_entropy /
  the starting policy's, measured the same way once per worker) and ``answer_diversity``
  (how many different answers the ``eval_samples`` completions of a held-out prompt give:
  (distinct − 1) / (samples − 1), averaged over prompts; an outcome-level diversity
  measure beside the token-level entropy);
- ``metrics``: the per-step ``curves`` (``reward``, ``entropy`` of the tempered rollout
  policy before each update, ``covariance`` Cov(log π, A) over the rollout's tokens,
  ``clipped`` / ``dropped`` (Clip-Cov) / ``penalised`` (KL-Cov) / ``dual_clipped`` token
  counts, ``tokens``, ``pg_tokens`` (the top-entropy tokens), ``pg_loss``, ``approx_kl``,
  ``ref_kl``, ``entropy_coef``, ``aepo_entropy``, ``aepo_temperature``, ``aepo_samples``,
  ``gen_batches`` / ``kept_groups`` (DAPO dynamic sampling), ``overlong_penalty``,
  ``response_length``, ``seconds``), greedy accuracy, the starting
  accuracy and entropy, the gain, train / eval / wall seconds, RL steps per second and
  the configuration used, whose ``eps_low`` / ``eps_high`` are the ratio bounds the loss
  applied (the loss mode's own where the params leave them null: 1 / 1 for ``clip_cov``),
  repeated as the metrics ``eps_low`` / ``eps_high``;
- ``metrics["trajectory"]``: the run's entropy-performance trajectory, the points Cui et
  al. fit their law R = −a·exp(H) + b over (one run, its training checkpoints): at
  ``law_checkpoints`` steps k_i = ⌈i·steps / law_checkpoints⌉, the ``train_entropy``
  (step k's rollout entropy, the ``entropy`` curve's value) and the ``val_accuracy``
  after step k's update, avg@``eval_samples`` at ``eval_temperature`` on the first
  ``law_eval_prompts`` held-out prompts (sampled with ``eval_seed`` at every checkpoint, so
  the points differ by the policy, not the draw); columns ``step``, ``train_entropy``,
  ``val_accuracy``, ``seconds``. ``trajectory_seconds`` is their total cost, kept out of
  ``train_seconds``. :func:`archive.law.fit_run_law` fits it.

Config::

    model: builtin:arith-tiny-rl   # or builtin:arith-nano, builtin:arith-tiny, or a local HF causal LM dir
    task: arithmetic               # arithmetic | jsonl
    num_prompts: 64                # training prompts
    num_eval_prompts: 64           # held-out prompts (disjoint from the training ones)
    eval_samples: 4                # completions per held-out prompt
    eval_temperature: 1.0          # > 0; the entropy measures are at this temperature
    prompt_seed: 0                 # which prompts (fixed across evaluations)
    eval_seed: 0                   # the held-out sampling seed, the same for the start and every run
    model_seed: 0                  # built-in models: the training seed (0 is checked in)
    dtype: float32                 # training precision
    num_threads: 1                 # torch CPU threads during an evaluation (null: leave as is)
    eval_data: null                # jsonl: a separate held-out file (else the file's last num_eval_prompts lines)
    law_checkpoints: 6             # trajectory checkpoints per run (0: none)
    law_eval_prompts: 16           # held-out prompts each checkpoint validates on
    # any GRPO parameter (workers.rl.config.GRPOConfig): the default every evaluation starts from
    # task options: digits, reverse_answer (arithmetic); data, prompt_field, answer_field,
    #               match, answer_regex, stop_strings (jsonl)

The config's model is :class:`~workers.evaluators.configs.EntropyRLConfig`;
:meth:`EntropyRLEvaluator.check_space` refuses a ``builtin:`` model that does not exist
(:func:`workers.builtin_models.builtin_model_problem`, naming the one probably meant), a space
parameter whose name is a likely misspelling of a GRPO parameter
(:func:`workers.contract.meant_name`: ``entropy_coeff``; ``; did you mean entropy_coef?``), a
``loss_mode`` choice that is not a loss mode, GRPO defaults that :class:`GRPOConfig` refuses,
an ``overlong_buffer_len`` (config or space) longer than any ``max_new_tokens`` a run can
have (config, task default or space): :func:`overlong_problems`, and a range end or a choice
its parameter refuses (:func:`value_problems`: ``eps_low`` above 1, ``aepo`` choosing
``"no"``, a float range for ``steps``). Any other space parameter (a campaign's ``layers``) is taken:
searched and stored with each evaluation, left unread by the training, and
:meth:`EntropyRLEvaluator.space_warnings` says so when the campaign is checked.

``params`` are GRPO parameters: ``steps``, ``lr``, ``group_size``, ``prompts_per_step``,
``temperature`` (rollout), ``eps_low``, ``eps_high`` (clip-higher; null: the loss mode's
official bounds), ``dual_clip``/``clip_ratio_c``, ``loss_mode`` (vanilla | clip_cov |
kl_cov), ``clip_cov_ratio``/``clip_cov_lb``/``clip_cov_ub``, ``kl_cov_ratio``/``kl_coef``,
``ref_kl_coef`` (GRPO's KL to the start), ``top_entropy_quantile`` (80/20),
``dynamic_sampling``/``max_gen_batches``, ``overlong_buffer_len``/``overlong_penalty_factor``
(DAPO), ``entropy_coef``, ``adaptive_entropy``/``entropy_target``/…,
``aepo``/``aepo_entropy``/``aepo_entropy_target``/``aepo_temperature_high``/… (conventions:
nats, fractions; see ``docs/entropy_rl.md``); other names are left unread, except a likely
misspelling of one, which fails that evaluation as an unknown parameter. On CPU the same params and
seed give the same result bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch

from workers.activations.training import deterministic
from workers.builtin_models import builtin_model_problem
from workers.contract import (
    EvalContext,
    Evaluator,
    Units,
    is_unread,
    measure_problems,
    misspelling_problems,
    unread_warnings,
)
from workers.decoding.models import LanguageModel, load_model
from workers.decoding.tasks import TASK_KEYS, Item, JsonlTask, Task, build_task
from workers.evaluators.configs import EntropyRLConfig, validate_config
from workers.rl.config import ADAMW_MAX_LR, AEPO_ENTROPY, LOSS_MODES, GRPOConfig
from workers.rl.trainer import GRPOTrainer, PolicyEval, checkpoint_steps, curves, evaluate_policy, trajectory
from workers.space_values import Kind, rule_problems

TASKS = ("arithmetic", "jsonl")
CONFIG_DEFAULTS: dict[str, Any] = {
    "model": "builtin:arith-tiny-rl",
    "task": "arithmetic",
    "num_prompts": 64,
    "num_eval_prompts": 64,
    "eval_samples": 4,
    "eval_temperature": 1.0,
    "prompt_seed": 0,
    "eval_seed": 0,
    "model_seed": 0,
    "dtype": "float32",
    "num_threads": 1,
    "eval_data": None,
    "law_checkpoints": 6,
    "law_eval_prompts": 16,
}
MEASURES = ("final_entropy", "entropy_retained", "answer_diversity")
#: Their units: ``final_entropy``'s (a natural log) is nats; the two ratios and the accuracy have none.
UNITS = Units(measures={"final_entropy": "nats"})
#: The names a categorical GRPO parameter may choose from, and what one of them is called.
CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "loss_mode": (LOSS_MODES, "a loss mode"),
    "aepo_entropy": (AEPO_ENTROPY, "an AEPO entropy signal"),
}
#: The GRPO fields that take an integer or a boolean (a float range's values are neither).
GRPO_KINDS: dict[str, Kind] = {f.name: ("bool" if str(f.type) == "bool" else "int")
                               for f in dataclasses.fields(GRPOConfig) if str(f.type).split(" ")[0] in ("int", "bool")}


class EntropyRLEvaluator(Evaluator):
    """GRPO runs of one starting policy on one task; the model is loaded once per worker."""

    max_batch_size = 1
    config_model = EntropyRLConfig

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        config = dict(config or {})
        task_keys = {k for name in TASKS for k in TASK_KEYS[name]}
        grpo_keys = GRPOConfig.field_names()
        known = set(CONFIG_DEFAULTS) | task_keys | grpo_keys
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown entropy_rl config key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        if config.get("task", CONFIG_DEFAULTS["task"]) not in TASKS:
            raise ValueError(f"entropy_rl task must be one of {', '.join(TASKS)} (a verifiable reward), "
                             f"got {config['task']!r}")
        settings: EntropyRLConfig = validate_config(EntropyRLConfig, config)
        cfg = settings.model_dump(exclude=set(grpo_keys))
        self.config = cfg
        self.defaults = settings.grpo_defaults()
        base = GRPOConfig.from_params({}, self.defaults)  # refuse bad defaults now, not per evaluation
        self.threads = cfg["num_threads"]
        self.device = ctx.device
        self.lm: LanguageModel = load_model(cfg["model"], ctx.device, cfg["dtype"], seed=int(cfg["model_seed"]))
        self.lm.model.eval()
        self.initial_state = {k: v.detach().clone() for k, v in self.lm.model.state_dict().items()}
        self.task, self.train_items, self.eval_items = self._build_task(cfg)
        longest = max(len(item.prompt_ids) for item in [*self.train_items, *self.eval_items])
        self.room = self.lm.max_positions - longest if self.lm.max_positions else None
        self.starts: dict[int, PolicyEval] = {}  # the starting policy measured at each max_new_tokens
        self.initial = self._start(self._tokens(base))

    @classmethod
    def check_space(cls, config: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
        """A ``builtin:`` model that exists (:func:`~workers.builtin_models.builtin_model_problem`),
        no space parameter named as a likely misspelling of a GRPO parameter
        (:func:`~workers.contract.meant_name`; any other name is taken, see
        :meth:`space_warnings`), every categorical ``loss_mode`` / ``aepo_entropy`` choice a
        known name, the config's GRPO defaults are a valid :class:`GRPOConfig`, DAPO's
        overlong buffer fits the generation limit (:func:`overlong_problems`), and every
        range end and choice keeps its parameter's rule (:func:`value_problems`)."""
        known = GRPOConfig.field_names()
        model = builtin_model_problem(str(config.get("model", CONFIG_DEFAULTS["model"])))
        problems = [f"evaluator.config.model: {model}"] if model else []
        problems += misspelling_problems(space, known, "a GRPO parameter")
        for name, (names, what) in CHOICES.items():
            param = space.get(name) or {}
            if param.get("type") == "categorical":
                problems += [f"space.{name}.choices: {choice!r} is not {what} (known: {', '.join(names)})"
                             for choice in param.get("choices", []) if choice not in names]
        try:
            GRPOConfig.from_params({}, {k: v for k, v in config.items() if k in known})
        except (ValueError, TypeError) as exc:
            problems.append(f"evaluator.config: {exc}")
        defaults = {k: v for k, v in config.items() if k in known}
        return problems + overlong_problems(config, space) + lr_problems(space) + value_problems(defaults, space)

    @classmethod
    def check_measures(cls, config: dict[str, Any], measures: list[str]) -> list[str]:
        """Each campaign measure is one the results hold (:data:`MEASURES`): another fails
        every evaluation as missing."""
        return measure_problems("entropy_rl", measures, MEASURES)

    @classmethod
    def units(cls, config: dict[str, Any]) -> Units:
        """:data:`UNITS`, whatever the config."""
        return UNITS

    @classmethod
    def space_warnings(cls, config: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
        """One line for each space parameter that is not a GRPO parameter and that
        :meth:`check_space` took (not a likely misspelling of one): it is searched and
        stored, and the training does not read it."""
        return unread_warnings(space, GRPOConfig.field_names(), "entropy_rl", "a GRPO parameter", "training")

    def _build_task(self, cfg: dict[str, Any]) -> tuple[Task, list[Item], list[Item]]:
        options = {k: cfg[k] for k in TASK_KEYS[cfg["task"]] if k in cfg}
        n_train, n_eval = cfg["num_prompts"], cfg["num_eval_prompts"]
        if cfg["task"] == "arithmetic":
            task = build_task("arithmetic", self.lm, n_train + n_eval, int(cfg["prompt_seed"]), options)
            return task, task.items[:n_train], task.items[n_train:]
        task = build_task("jsonl", self.lm, None, 0, options)
        if cfg["eval_data"]:
            held = JsonlTask(self.lm, cfg["eval_data"], n_eval, **{k: v for k, v in options.items()
                                                                     if k != "data" and v is not None})
            return task, task.items[:n_train], held.items
        if len(task.items) < n_eval + 1:
            raise ValueError(f"jsonl task data {options.get('data')!r} has {len(task.items)} prompts; it needs more "
                             f"than num_eval_prompts={n_eval} (or give eval_data, a separate held-out file)")
        return task, task.items[:-n_eval][:n_train], task.items[-n_eval:]

    def _tokens(self, cfg: GRPOConfig) -> int:
        """max_new_tokens of a run: the param, else the task's default; capped by the model's positions."""
        n = cfg.max_new_tokens or self.task.default_max_new_tokens
        if self.room is not None:
            if cfg.max_new_tokens is not None and cfg.max_new_tokens > self.room:
                raise ValueError(f"max_new_tokens {cfg.max_new_tokens} does not fit: {self.config['model']} has "
                                 f"{self.lm.max_positions} positions and the longest prompt "
                                 f"{self.lm.max_positions - self.room} tokens")
            n = min(n, self.room)
        if n < 1:
            raise ValueError(f"no room to generate: the longest prompt fills {self.config['model']}'s positions")
        return n

    def _start(self, max_new: int) -> PolicyEval:
        """The starting policy on the held-out prompts, generating ``max_new`` tokens as the
        run it is compared with does (``max_new_tokens`` may be a search parameter: a start
        measured at another length made an untrained policy look changed); measured once per
        length. Refused where its entropy is 0 (``entropy_retained`` would be undefined)."""
        if max_new not in self.starts:
            with deterministic(self.threads, str(self.lm.device)):
                self.lm.model.load_state_dict(self.initial_state)
                self.starts[max_new] = evaluate_policy(
                    self.lm, self.eval_items, self._reward, max_new, self.config["eval_samples"],
                    float(self.config["eval_temperature"]), seed=int(self.config["eval_seed"]))
        start = self.starts[max_new]
        if not start.entropy > 0:
            raise ValueError(f"the starting policy {self.config['model']} has zero entropy on the held-out prompts "
                             f"at max_new_tokens {max_new}; entropy_retained is undefined")
        return start

    def _reward(self, item: Item, text: str) -> float:
        return 1.0 if self.task.correct(item, text) else 0.0

    def teardown(self) -> None:
        self.lm = None  # type: ignore[assignment]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        known = GRPOConfig.field_names()  # a campaign's own parameter is left unread; a misspelt one fails
        cfg = GRPOConfig.from_params({k: v for k, v in params.items() if not is_unread(k, known)}, self.defaults)
        max_new = self._tokens(cfg)
        initial = self._start(max_new)
        began = time.perf_counter()
        self.lm.model.load_state_dict(self.initial_state)
        self.lm.model.eval()
        with deterministic(self.threads, str(self.lm.device)):
            torch.manual_seed(ctx.seed)
            trainer = GRPOTrainer(self.lm, self.train_items, self._reward, cfg, max_new, seed=ctx.seed)
            law_items = self.eval_items[:self.config["law_eval_prompts"]]
            eval_seed = int(self.config["eval_seed"])

            def validate() -> float:
                return evaluate_policy(self.lm, law_items, self._reward, max_new, self.config["eval_samples"],
                                       float(self.config["eval_temperature"]), seed=eval_seed, greedy=False).accuracy

            at = set(checkpoint_steps(cfg.steps, self.config["law_checkpoints"]))
            t0 = time.perf_counter()
            history = trainer.train(validate=validate, at=at)
            law = trajectory(trainer.checkpoints)
            trajectory_seconds = sum(law["seconds"])
            train_seconds = time.perf_counter() - t0 - trajectory_seconds
            final: PolicyEval = evaluate_policy(self.lm, self.eval_items, self._reward, max_new,
                                                self.config["eval_samples"], float(self.config["eval_temperature"]),
                                                seed=eval_seed)
        self.lm.model.load_state_dict(self.initial_state)
        retained = final.entropy / initial.entropy
        used = cfg.resolved()
        metrics: dict[str, Any] = {
            "accuracy": final.accuracy,
            "greedy_accuracy": final.greedy_accuracy,
            "initial_accuracy": initial.accuracy,
            "initial_greedy_accuracy": initial.greedy_accuracy,
            "initial_entropy": initial.entropy,
            "initial_answer_diversity": initial.answer_diversity,
            "accuracy_gain": final.accuracy - initial.accuracy,
            "response_length": final.response_length,
            "curves": curves(history),
            "trajectory": law,
            "trajectory_seconds": trajectory_seconds,
            "train_seconds": train_seconds,
            "eval_seconds": final.seconds,
            "wall_seconds": time.perf_counter() - began,
            "steps_per_s": len(history) / train_seconds if history and train_seconds > 0 else math.nan,
            "train_prompts": len(self.train_items),
            "eval_prompts": len(self.eval_items),
            "max_new_tokens": max_new,
            "eps_low": used.eps_low,  # the ratio bounds the loss used: the loss mode's own where unset
            "eps_high": used.eps_high,
            "config": used.to_dict(),
            "device": str(self.lm.device),
        }
        return {"objective": final.accuracy,
                "measures": {"final_entropy": final.entropy, "entropy_retained": retained,
                             "answer_diversity": final.answer_diversity},
                "metrics": metrics}



def generation_limit(settings: EntropyRLConfig) -> tuple[int, str]:
    """The most tokens a run of the config generates, and where that comes from (for a
    message): ``max_new_tokens``, else the task's default (``workers.decoding.tasks``:
    digits + 2 for arithmetic, digits 2 by default; 32 for jsonl). The model's positions
    may cap it further; only a loaded model knows that."""
    if settings.max_new_tokens is not None:
        return settings.max_new_tokens, "max_new_tokens of the config"
    if settings.task == "arithmetic":
        return (settings.digits or 2) + 2, "the arithmetic task's default, digits + 2"
    return 32, f"the {settings.task} task's default"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _largest(param: dict[str, Any], unset: float) -> tuple[float, str] | None:
    """The largest value a space parameter can take and the key that sets it: an int's or a
    float's ``high``, a categorical's largest choice (``None`` reads as ``unset``, the
    default); None where the space does not say."""
    if param.get("type") in ("int", "float") and _number(param.get("high")):
        return float(param["high"]), "high"
    if param.get("type") == "categorical":
        values = [unset if c is None else c for c in param.get("choices") or [] if c is None or _number(c)]
        if values:
            return float(max(values)), "choices"
    return None


def _reach(name: str, space: dict[str, dict[str, Any]], configured: float) -> tuple[float, str]:
    """The largest value parameter ``name`` can have in a run, and the path that sets it:
    the space's when it searches it (the config's too where a ``when`` may leave it
    inactive), else the config's (``configured``)."""
    param = space.get(name) or {}
    searched = _largest(param, configured)
    if searched is None:
        return configured, f"evaluator.config.{name}"
    if param.get("when") and configured > searched[0]:
        return configured, f"evaluator.config.{name}"
    return searched[0], f"space.{name}.{searched[1]}"


def overlong_problems(config: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
    """An ``overlong_buffer_len`` (the config's or the space's) that can exceed every
    ``max_new_tokens`` a run may have (the config's or the task's default, or the largest
    the space searches): the buffer is the last L_cache tokens before the generation
    limit, so every such run would fail."""
    settings: EntropyRLConfig = validate_config(EntropyRLConfig, config)
    limit, source = generation_limit(settings)
    buffer, path = _reach("overlong_buffer_len", space, settings.overlong_buffer_len)
    if "max_new_tokens" in space:
        limit, tokens_path = _reach("max_new_tokens", space, limit)
        source = "the largest the space searches" if tokens_path.startswith("space.") else source
    if buffer <= limit:
        return []
    return [f"{path}: must be <= max_new_tokens ({limit:g}, {source}): the buffer is the last L_cache tokens "
            f"before the generation limit, so every run with more would fail (got {buffer:g})"]


def value_problems(defaults: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
    """Each GRPO parameter's range ends and choices that the parameter's own rule refuses:
    numbers (:func:`~workers.contract.space_value_problems`), choices that are not numbers
    (:func:`~workers.space_values.choice_problems`: ``aepo: {choices: ["no", "yes"]}``; the
    names of :data:`CHOICES` are checked against their known names instead), and a float
    range for an integer or boolean field (:func:`~workers.space_values.float_range_problems`).
    The rule is :meth:`GRPOConfig.from_params` over the config's ``defaults``, and only a
    refusal naming the parameter counts, not one of another field's. An ``lr`` above AdamW's
    bound is :func:`lr_problems`' (one line that says why)."""
    fields = GRPOConfig.field_names()

    def problem_of(name: str, value: Any) -> str | None:
        if name not in fields or (name == "lr" and _number(value) and value > ADAMW_MAX_LR):  # lr_problems' line
            return None
        try:
            GRPOConfig.from_params({name: value}, defaults)
        except (ValueError, TypeError) as exc:
            return str(exc) if str(exc).startswith(name) else None
        return None

    return rule_problems("entropy_rl", space, problem_of, GRPO_KINDS, skip=CHOICES)


def lr_problems(space: dict[str, dict[str, Any]]) -> list[str]:
    """A searched ``lr`` above AdamW's float32 bound (:data:`~workers.rl.config.ADAMW_MAX_LR`):
    every run there would fail in the optimizer's first step."""
    param = space.get("lr") or {}
    largest = _largest(param, 0.0)
    if largest is None or largest[0] <= ADAMW_MAX_LR:
        return []
    return [f"space.lr.{largest[1]}: must be <= {ADAMW_MAX_LR:.4g} (AdamW's first step is 10·lr, which float32 "
            f"must hold), got {largest[0]:g}"]
