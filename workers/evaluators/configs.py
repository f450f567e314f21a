"""Config models of the built-in evaluators: pydantic and torch-free, so a campaign's
``evaluator.config`` is checked before anything runs, and cheaply.

Every model follows :class:`EvaluatorConfig`'s rules:

- an unknown key is refused (``evaluator.config.bogus: is not a known field``);
- numbers are strict: a boolean or a string is not a number, an integer field refuses
  ``2.5`` and ``2.0``; a float field takes integers;
- NaN and ±inf are refused;
- a field left out takes the evaluator's documented default (the models' defaults are
  the evaluators' ``CONFIG_DEFAULTS``; the tests hold them equal).

An evaluator class names its model in ``config_model`` (a third-party evaluator may do
the same): :func:`workers.registry.check` validates a campaign's config with it, and
``setup`` gets the validated instance from :func:`validate_config`. Problems are
``path: reason`` lines under ``evaluator.config``, as the campaign file's own are.

Constants the torch modules own (the task options, the dtypes) are repeated here so this
module imports neither torch nor the model code; the tests hold each copy equal to its
source.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from entropy_atlas.errors import AtlasError
from entropy_atlas.validation import kind_of
from entropy_atlas.validation import message as reason_of

PREFIX = "evaluator.config"

#: ``workers.decoding.tasks.TASK_KEYS``: each task's own options.
TASK_OPTIONS: dict[str, tuple[str, ...]] = {
    "arithmetic": ("digits", "reverse_answer"),
    "continuation": ("prompt_words",),
    "jsonl": ("data", "prompt_field", "answer_field", "match", "answer_regex", "stop_strings"),
}
#: ``workers.decoding.models.DTYPES``: the names of the precisions a model loads in.
DTYPE_NAMES = ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16")
Dtype = Literal["float32", "fp32", "bfloat16", "bf16", "float16", "fp16"]

BENCHMARK_FUNCTIONS = ("sphere", "rastrigin", "arm")

PositiveInt = Annotated[int, Field(ge=1)]
Seed = Annotated[int, Field(ge=0)]
#: A list in the file (a tuple or a list from Python); its items keep the strict rules.
_LAX_CONTAINER = Field(strict=False)


class ConfigError(AtlasError, ValueError):
    """A config that its evaluator's ``config_model`` refuses; ``problems`` are ``path: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))

    def lines(self) -> list[str]:
        return list(self.problems)


def field_problem(field: str, reason: str) -> PydanticCustomError:
    """A validator's error that names the field (below the model) it is about."""
    return PydanticCustomError("field_problem", "{field}: {reason}", {"field": field, "reason": reason})


class EvaluatorConfig(BaseModel):
    """Base of the config models: unknown keys refused, strict and finite numbers, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- problems

def problem_lines(error: ValidationError, prefix: str = PREFIX) -> list[str]:
    """One ``prefix.path: reason`` line per error of ``error`` (each line once)."""
    lines = []
    for err in error.errors():
        parts = [prefix, *(str(p) for p in err["loc"])]
        if err["type"] == "field_problem":
            parts.append(str(err["ctx"]["field"]))
            message = str(err["ctx"]["reason"])
        else:
            message = reason_of(err)
        lines.append(f"{'.'.join(p for p in parts if p)}: {message}")
    return list(dict.fromkeys(lines))


def config_problems(model: type[BaseModel], config: Any, prefix: str = PREFIX) -> list[str]:
    """The problems ``model`` finds in ``config`` (none: it is valid)."""
    if not isinstance(config, Mapping):
        return [f"{prefix}: must be a mapping (got {kind_of(config)})"]
    try:
        model.model_validate(dict(config))
    except ValidationError as exc:
        return problem_lines(exc, prefix)
    return []


def validate_config(model: type[BaseModel], config: Any, prefix: str = PREFIX) -> Any:
    """``config`` as an instance of ``model``; a :class:`ConfigError` naming each problem if it is not valid."""
    if not isinstance(config, Mapping):
        raise ConfigError([f"{prefix}: must be a mapping (got {kind_of(config)})"])
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        raise ConfigError(problem_lines(exc, prefix)) from None


# --------------------------------------------------------------------------- benchmark


class BenchmarkConfig(EvaluatorConfig):
    """``kind: benchmark``: the domain, its dimension, and the names of its two measures."""

    function: str = "sphere"
    dim: int = Field(default=20, ge=2, le=10_000)
    measure_names: Annotated[list[Annotated[str, Field(min_length=1)]], _LAX_CONTAINER,
                             Field(min_length=2, max_length=2)] = ["m0", "m1"]

    @field_validator("function")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in BENCHMARK_FUNCTIONS:
            raise ValueError(f"must be sphere, rastrigin or arm (got {name!r})")
        return name

    @field_validator("measure_names")
    @classmethod
    def _distinct(cls, names: list[str]) -> list[str]:
        if names[0] == names[1]:
            raise ValueError(f"the two measure names must differ (both are {names[0]!r})")
        return names


# --------------------------------------------------------------------------- python


class PythonConfig(EvaluatorConfig):
    """``kind: python`` with a function target: ``batched`` makes it take a list of params."""

    batched: bool = False


# --------------------------------------------------------------------------- decoding tasks


class _TaskOptions(EvaluatorConfig):
    """The options of the arithmetic and jsonl tasks (:data:`TASK_OPTIONS`); each only for its own task."""

    task: str
    digits: PositiveInt | None = None
    reverse_answer: bool | None = None
    data: Annotated[str, Field(min_length=1)] | None = None
    prompt_field: Annotated[str, Field(min_length=1)] | None = None
    answer_field: Annotated[str, Field(min_length=1)] | None = None
    match: Literal["exact", "numeric"] | None = None
    answer_regex: str | None = None
    stop_strings: Annotated[list[str], _LAX_CONTAINER] | None = None

    @field_validator("answer_regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"is not a regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _own_options(self) -> _TaskOptions:
        own = TASK_OPTIONS.get(self.task, ())
        for task, keys in TASK_OPTIONS.items():
            for key in keys:
                if key in self.model_fields_set and key not in own:
                    raise field_problem(key, f"is an option of task {task}, not of task {self.task}")
        if self.task == "jsonl" and self.data is None:
            raise field_problem("data", "is required by task jsonl (a path to a .jsonl file)")
        return self


#: ``vllm.LLM`` arguments the vLLM backend sets from the config, and ``VLLMEngine``'s own
#: keywords that are not ``vllm.LLM``'s (``logprobs``; ``seeded``, for benchmarks only): not in
#: ``vllm_engine``, whose keys ``VLLMEngine`` takes.
VLLM_ENGINE_OWN = frozenset({"model", "dtype", "seed", "logprobs_mode", "max_logprobs", "logits_processors",
                             "logprobs", "seeded"})


class DecodingConfig(_TaskOptions):
    """``kind: decoding`` (see :mod:`workers.evaluators.decoding` for each key)."""

    model: Annotated[str, Field(min_length=1)] = "builtin:arith-tiny"
    task: Literal["arithmetic", "continuation", "jsonl"] = "arithmetic"
    prompt_words: PositiveInt | None = None
    num_prompts: PositiveInt = 16
    samples_per_prompt: PositiveInt = 4
    max_new_tokens: PositiveInt | None = None
    prompt_seed: Seed = 0
    model_seed: Seed = 0
    dtype: Dtype | None = None
    ead_small_model: Annotated[str, Field(min_length=1)] | None = None
    reference_model: Annotated[str, Field(min_length=1)] | None = None
    repetition_n: PositiveInt = 4
    num_threads: PositiveInt | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    batch_configs: bool = True
    #: who decodes: transformers (the reference) or an in-process vLLM engine
    #: (``workers.decoding.vllm_backend``; refused at check time where vLLM is not installed)
    backend: Literal["hf", "vllm"] = "hf"
    #: backend vllm: the k top log-probabilities per token its entropy bounds use (-1: the whole vocabulary)
    vllm_logprobs: Annotated[int, Field(ge=-1)] = 20
    #: backend vllm: more keyword arguments of ``vllm.LLM`` (``attention_backend: TRITON_ATTN``,
    #: ``enforce_eager: true``, ``compilation_config: {mode: 0}`` …), passed as they are
    vllm_engine: dict[str, Any] = Field(default_factory=dict)

    @field_validator("vllm_logprobs")
    @classmethod
    def _not_zero(cls, k: int) -> int:
        if k == 0:
            raise ValueError("must be -1 (the whole vocabulary) or >= 1")
        return k

    @field_validator("vllm_engine")
    @classmethod
    def _not_set_by_the_backend(cls, engine: dict[str, Any]) -> dict[str, Any]:
        taken = sorted(set(engine) & VLLM_ENGINE_OWN)
        if taken:
            raise ValueError(f"{', '.join(taken)} set by the backend itself (use model, dtype, model_seed, "
                             "vllm_logprobs)")
        return engine


# --------------------------------------------------------------------------- activation


DIGITS_EXAMPLES, DIGITS_CLASSES = 1797, 10  # scikit-learn's bundled digits
#: ``workers.activations.training.ADAMW_MAX_LR``: AdamW's first step is lr / (1 − β₁) = 10·lr,
#: which must be a finite float32.
ADAMW_MAX_LR = 3.4e37


def adamw_lr(lr: float | None) -> float | None:
    """``lr`` where AdamW can take it in float32; a ValueError with the reason where it cannot."""
    if lr is not None and lr > ADAMW_MAX_LR:
        raise ValueError(f"must be <= {ADAMW_MAX_LR:.4g} (AdamW's first step is 10·lr, which float32 must hold)")
    return lr


class ActivationConfig(EvaluatorConfig):
    """``kind: activation`` (see :mod:`workers.evaluators.activation` for each key)."""

    dataset: Literal["digits", "cifar10", "cifar100"] = "digits"
    data_dir: str | None = None
    test_size: float = Field(default=0.25, gt=0, lt=1)
    split_seed: Seed = 0
    max_train: PositiveInt | None = None
    max_test: PositiveInt | None = None
    model: Literal["mlp", "vit"] = "mlp"
    hidden: Annotated[list[PositiveInt], _LAX_CONTAINER, Field(min_length=1)] = [128, 128]
    patch_size: PositiveInt = 4
    dim: PositiveInt = 48
    depth: PositiveInt = 2
    heads: PositiveInt = 4
    mlp_ratio: float = Field(default=2.0, gt=0)
    epochs: PositiveInt = 20
    batch_size: PositiveInt = 64
    lr: Annotated[float, Field(gt=0), AfterValidator(adamw_lr)] | None = None
    weight_decay: float = Field(default=1e-4, ge=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: Annotated[float, Field(gt=0)] | None = 1.0
    heldout_size: PositiveInt = 256
    hist_bins: int = Field(default=64, ge=2)
    seeds: PositiveInt | list[int] = 1
    num_threads: PositiveInt | None = 1

    @model_validator(mode="after")
    def _fits_the_data(self) -> ActivationConfig:
        """What setup or every evaluation would refuse, refused with the file: a CIFAR set
        without ``data_dir``; a ViT whose ``dim`` the ``heads`` do not divide, or whose
        ``patch_size`` does not divide the images (digits 8×8, CIFAR 32×32); a digits split
        that leaves a side with fewer examples than its 10 classes (sklearn's stratified split)."""
        if self.dataset != "digits" and self.data_dir is None:
            raise field_problem("data_dir", f"is required by dataset {self.dataset} (a local folder in "
                                            "torchvision's format; nothing is downloaded)")
        if self.model == "vit":
            if self.dim % self.heads:
                raise field_problem("heads", f"must divide dim ({self.dim}); {self.heads} does not")
            side = 8 if self.dataset == "digits" else 32
            if side % self.patch_size:
                raise field_problem("patch_size", f"must divide the image side of {self.dataset} ({side}); "
                                                  f"{self.patch_size} does not")
        if self.dataset == "digits":
            n_test = math.ceil(self.test_size * DIGITS_EXAMPLES)
            if min(n_test, DIGITS_EXAMPLES - n_test) < DIGITS_CLASSES:
                raise field_problem("test_size", f"leaves {min(n_test, DIGITS_EXAMPLES - n_test)} examples on one "
                                                 f"side of the split of digits' {DIGITS_EXAMPLES}; each side needs "
                                                 f"at least one per class ({DIGITS_CLASSES})")
        return self

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> Any:
        if isinstance(value, tuple):
            value = list(value)
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        offsets = (isinstance(value, list) and bool(value)
                   and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
        if not (count or offsets):
            raise ValueError(f"must be a count >= 1 or a non-empty list of integer offsets (got {value!r})")
        return value


# --------------------------------------------------------------------------- entropy_rl


class GRPOFields(EvaluatorConfig):
    """``workers.rl.config.GRPOConfig``'s fields, defaults and bounds (the defaults of every run)."""

    steps: int = Field(default=20, ge=0)
    prompts_per_step: PositiveInt = 8
    group_size: int = Field(default=8, ge=2)
    lr: Annotated[float, Field(gt=0), AfterValidator(adamw_lr)] = 5e-5
    weight_decay: float = Field(default=0.0, ge=0)
    ppo_epochs: PositiveInt = 1
    num_minibatches: PositiveInt = 2
    max_grad_norm: Annotated[float, Field(gt=0)] | None = 1.0
    max_new_tokens: PositiveInt | None = None
    temperature: float = Field(default=1.0, gt=0)
    norm_adv_by_std: bool = True
    adv_eps: float = Field(default=1e-6, ge=0)
    eps_low: Annotated[float, Field(ge=0, le=1)] | None = None
    eps_high: Annotated[float, Field(ge=0)] | None = None
    dual_clip: bool = False
    clip_ratio_c: float = Field(default=3.0, gt=1)
    ref_kl_coef: float = Field(default=0.0, ge=0)
    top_entropy_quantile: float = Field(default=1.0, gt=0, le=1)
    dynamic_sampling: bool = False
    max_gen_batches: PositiveInt = 10
    overlong_buffer_len: int = Field(default=0, ge=0)
    overlong_penalty_factor: float = Field(default=1.0, ge=0)
    loss_mode: Literal["vanilla", "clip_cov", "kl_cov"] = "vanilla"
    clip_cov_ratio: float = Field(default=2e-4, ge=0, le=1)
    clip_cov_lb: float = 1.0
    clip_cov_ub: float = 5.0
    kl_cov_ratio: float = Field(default=2e-4, ge=0, le=1)
    kl_coef: float = Field(default=1.0, ge=0)
    entropy_coef: float = 0.0
    adaptive_entropy: bool = False
    entropy_target: float = Field(default=0.2, ge=0)
    entropy_coef_delta: float = Field(default=0.005, ge=0)
    entropy_coef_min: float = 0.0
    entropy_coef_max: float = 1.0
    aepo: bool = False
    aepo_entropy_target: float = Field(default=0.5, ge=0)
    aepo_temperature_high: float = Field(default=1.2, gt=0)
    aepo_temperature_low: float = Field(default=0.8, gt=0)
    aepo_entropy: Literal["sampled", "exact"] = "sampled"
    aepo_sample_num: int = Field(default=60, ge=0)
    aepo_prompt_fraction: float = Field(default=0.25, gt=0, le=1)
    aepo_adv_threshold: float = 0.05

    @model_validator(mode="after")
    def _ordered(self) -> GRPOFields:
        if not self.clip_cov_ub > self.clip_cov_lb:
            raise field_problem("clip_cov_ub", f"must be > clip_cov_lb ({self.clip_cov_lb})")
        if not self.entropy_coef_max >= self.entropy_coef_min:
            raise field_problem("entropy_coef_max", f"must be >= entropy_coef_min ({self.entropy_coef_min})")
        if not self.aepo_temperature_high >= self.aepo_temperature_low:
            raise field_problem("aepo_temperature_high", "must be >= aepo_temperature_low "
                                f"({self.aepo_temperature_low}): the hot temperature raises a low entropy")
        return self


#: The GRPO fields a config may set (``workers.rl.config.GRPOConfig.field_names()``).
GRPO_FIELDS = frozenset(GRPOFields.model_fields)


class EntropyRLConfig(GRPOFields, _TaskOptions):
    """``kind: entropy_rl`` (see :mod:`workers.evaluators.entropy_rl`); any GRPO field too."""

    model: Annotated[str, Field(min_length=1)] = "builtin:arith-tiny-rl"
    task: Literal["arithmetic", "jsonl"] = "arithmetic"
    num_prompts: PositiveInt = 64
    num_eval_prompts: PositiveInt = 64
    eval_samples: PositiveInt = 4
    eval_temperature: float = Field(default=1.0, gt=0)
    prompt_seed: Seed = 0
    #: the sampling seed of every held-out evaluation: the start's, each trained policy's and
    #: each law checkpoint's (common random numbers, so a gain is the policy's, not the draw's)
    eval_seed: Seed = 0
    model_seed: Seed = 0
    dtype: Dtype | None = "float32"
    num_threads: PositiveInt | None = 1
    eval_data: Annotated[str, Field(min_length=1)] | None = None
    #: checkpoints of the per-run entropy-performance trajectory, spread evenly over the
    #: steps (``workers.rl.trainer.checkpoint_steps``); 0: none recorded
    law_checkpoints: Annotated[int, Field(ge=0)] = 6
    #: held-out prompts each checkpoint validates on: the first ones of the held-out set
    #: (capped by ``num_eval_prompts``), ``eval_samples`` completions each
    law_eval_prompts: PositiveInt = 16

    def grpo_defaults(self) -> dict[str, Any]:
        """The GRPO fields the config sets (the defaults every evaluation starts from)."""
        return {k: getattr(self, k) for k in sorted(self.model_fields_set & GRPO_FIELDS)}
