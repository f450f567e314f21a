"""``kind: activation``: train a tiny network with a candidate activation, measure it.

Each evaluation builds the activation from ``params`` (see
:mod:`workers.activations.factory`), trains the configured model with it once per
training seed, and returns

- ``objective``: test accuracy in [0, 1], the mean over the training seeds;
- ``measures`` (nats; means over seeds, and over layers where there are several):
  ``post_activation_entropy`` (histogram entropy of the activations' outputs on a
  held-out batch, in [0, log hist_bins]), ``predictive_entropy`` (mean entropy of the
  softmax over the test split, in [0, log classes]), ``post_activation_sparsity`` (the
  fraction of exact zeros in those outputs) and, for the ViT, ``attention_entropy``
  (mean entropy of the attention rows, in [0, log tokens]); :meth:`ActivationEvaluator.check_measures`
  refuses a campaign measure of another name (``attention_entropy`` with the MLP too);
- ``metrics``: the per-seed accuracies and their spread, the training-loss curve (mean
  per epoch over seeds), the per-layer measures, the learned activation parameters (ε,
  c_k, β, slopes; first seed), the parameter count, training and wall time.

Config (all optional)::

    dataset: digits          # digits | cifar10 | cifar100
    data_dir: null           # CIFAR: a local folder in torchvision's format
    test_size: 0.25          # digits: the stratified test fraction
    split_seed: 0            # digits: the split's seed (fixed across evaluations)
    max_train: null          # keep only the first examples (quick CIFAR runs)
    max_test: null
    model: mlp               # mlp | vit
    hidden: [128, 128]       # MLP widths
    patch_size: 4            # ViT: 8x8 digits -> 4 patches, 32x32 CIFAR -> 64 patches
    dim: 48                  # ViT width, blocks, heads and MLP ratio
    depth: 2
    heads: 4
    mlp_ratio: 2.0
    epochs: 20
    batch_size: 64
    lr: null                 # AdamW, cosine decay to 0; null: 0.002 (MLP), 0.005 (ViT)
    weight_decay: 0.0001
    lr_schedule: cosine      # cosine | constant
    grad_clip: 1.0           # max gradient norm, null for none
    heldout_size: 256        # the held-out batch of the post-activation and attention entropies
    hist_bins: 64            # bins of the post-activation histogram
    seeds: 1                 # training runs per evaluation (or a list of offsets)
    num_threads: 1           # torch CPU threads during an evaluation

The config's model is :class:`~workers.evaluators.configs.ActivationConfig`;
:meth:`ActivationEvaluator.check_space` refuses a space parameter whose name is a likely
misspelling of one the evaluator takes (:func:`workers.contract.meant_name`: ``lrr``,
``swish_betta``; ``; did you mean lr?``), an ``activation`` choice that is not a known
activation, an activation number (``crrelu_eps``, ``family_c3``, ``swish_beta`` …)
whose range leaves float32's (|x| > 3.4e38), ``symbolic`` among the activations with no
``expression`` to read (:func:`symbolic_problems`), and a range end or a choice its
parameter's own rule refuses (:func:`value_problems`: ``eafo_tau`` outside (0, 1],
``gelu_approximate: exact``, a float range for ``epochs``). Any other space parameter (a campaign's
``layers``) is taken: searched and stored with each evaluation, left unread by the
training, and :meth:`ActivationEvaluator.space_warnings` says so when the campaign is checked.

``params`` may also set ``lr``, ``weight_decay``, ``epochs`` and ``batch_size`` per
evaluation; other names are left unread, except a likely misspelling of one, which fails
that evaluation as an unknown parameter. Run ``j`` of an evaluation uses seed ``ctx.seed + offset_j`` (offsets
``0 … seeds−1``), so the same params and seed give the same result: on CPU, bit for bit
(deterministic algorithms, a fixed thread count).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Mapping
from typing import Any

import torch

from workers.activations.data import Dataset, load_dataset
from workers.activations.eafo import BASES
from workers.activations.factory import (
    ACTIVATION_KEYS,
    ACTIVATIONS,
    FAMILY_KEYS,
    NUMBER_KEYS,
    activation_factory,
    float32_problem,
)
from workers.activations.symbolic import parse_activation, validate_expression
from workers.activations.training import TrainConfig, adamw_lr_problem, deterministic, train_and_measure
from workers.contract import (
    EvalContext,
    Evaluator,
    Units,
    is_unread,
    measure_problems,
    misspelling_problems,
    unread_warnings,
)
from workers.evaluators.configs import ActivationConfig, validate_config
from workers.space_values import Kind, rule_problems

DATA_KEYS = ("dataset", "data_dir", "test_size", "split_seed", "max_train", "max_test")
TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig))
RUN_KEYS = ("seeds", "num_threads")
CONFIG_KEYS = frozenset((*DATA_KEYS, *TRAIN_KEYS, *RUN_KEYS))
PARAM_TRAIN_KEYS = frozenset({"lr", "weight_decay", "epochs", "batch_size"})
PARAM_KEYS = ACTIVATION_KEYS | PARAM_TRAIN_KEYS
#: The measures every result holds, and the one the ViT's results hold besides.
MEASURES = ("post_activation_entropy", "predictive_entropy", "post_activation_sparsity")
VIT_MEASURES = ("attention_entropy",)
#: Their units: the entropies' (natural logs) are nats; the sparsity, a fraction, and the accuracy have none.
UNITS = Units(measures={"post_activation_entropy": "nats", "predictive_entropy": "nats", "attention_entropy": "nats"})


def _seed_offsets(value: Any) -> list[int]:
    if isinstance(value, bool):
        raise ValueError(f"config seeds must be a count or a list of integers, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"config seeds must be >= 1, got {value}")
        return list(range(value))
    if isinstance(value, list | tuple) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return list(value)
    raise ValueError(f"config seeds must be a count or a non-empty list of integers, got {value!r}")


def _extremes(param: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The numbers a space parameter reaches at its ends, with the key that sets each:
    ``low`` and ``high`` of a float or an int, each numeric choice of a categorical."""
    if param.get("type") == "categorical":
        return [(f"choices.{i}", c) for i, c in enumerate(param.get("choices") or [])
                if isinstance(c, int | float) and not isinstance(c, bool)]
    return [(key, param[key]) for key in ("low", "high")
            if isinstance(param.get(key), int | float) and not isinstance(param.get(key), bool)]


def float32_problems(space: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Numbers the space can reach that float32 cannot hold, one line each, refused with the
    file rather than failing every such evaluation: an activation number beyond 3.4e38 (inf
    in the network) and a learning rate beyond AdamW's :data:`ADAMW_MAX_LR`."""
    rules = {**dict.fromkeys(NUMBER_KEYS, float32_problem), "lr": adamw_lr_problem}
    problems = []
    for name in sorted(set(rules) & set(space)):
        for key, value in _extremes(space[name]):
            reason = rules[name](float(value))
            if reason:
                problems.append(f"space.{name}.{key}: {reason}")
    return problems


def _coerce_train(cfg: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from plain values, numbers cast to the fields' types."""
    ints = ("epochs", "batch_size", "dim", "depth", "heads", "heldout_size", "hist_bins")
    floats = ("lr", "weight_decay", "mlp_ratio")
    out = dict(cfg)
    for key, value in cfg.items():
        if value is None:
            if key not in ("lr", "grad_clip"):  # null means the default
                del out[key]
            continue
        try:
            if key in ints or (key == "patch_size"):
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                out[key] = int(value)
            elif key in floats or key == "grad_clip":
                out[key] = float(value)
            elif key == "hidden":
                out[key] = tuple(int(h) for h in value)
        except (TypeError, ValueError):
            raise ValueError(f"{key} has an invalid value {value!r}") from None
    return TrainConfig(**out)


class ActivationEvaluator(Evaluator):
    """Trains an MLP or a tiny ViT with the candidate activation; accuracy and entropies."""

    max_batch_size = 1
    config_model = ActivationConfig

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        config = dict(config or {})
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise ValueError(f"activation evaluator: unknown config keys {unknown}; known: {sorted(CONFIG_KEYS)}")
        self.config = config
        self.train_defaults = {k: config[k] for k in TRAIN_KEYS if k in config}
        _coerce_train(self.train_defaults)  # refuse a bad config now, not at the first evaluation
        self.seed_offsets = _seed_offsets(config.get("seeds", 1))
        settings: ActivationConfig = validate_config(ActivationConfig, config)
        self.num_threads: int | None = settings.num_threads
        data_kwargs = {k: getattr(settings, k) for k in DATA_KEYS[2:] if getattr(settings, k) is not None}
        self.data = load_dataset(settings.dataset, settings.data_dir, **data_kwargs)
        self._on_device: dict[str, Dataset] = {"cpu": self.data}

    @classmethod
    def check_space(cls, config: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
        """No space parameter named as a likely misspelling of one the evaluator takes
        (:data:`PARAM_KEYS`, :func:`~workers.contract.meant_name`; any other name is taken, see
        :meth:`space_warnings`), every categorical ``activation`` (``eafo_base``) choice a known
        activation (EAFO base), every ``expression`` choice in the symbolic grammar (parsed,
        never evaluated), an ``expression`` parameter wherever ``symbolic`` can be drawn
        (:func:`symbolic_problems`), every activation number the space reaches within
        float32's range (:func:`float32_problems`), and every other range end and choice
        within its parameter's own rule (:func:`value_problems`)."""
        problems = misspelling_problems(space, PARAM_KEYS, "an activation evaluator parameter")
        for name, known, what in (("activation", ACTIVATIONS, "activation"), ("eafo_base", tuple(BASES), "EAFO base")):
            param = space.get(name) or {}
            if param.get("type") == "categorical":
                problems += [f"space.{name}.choices: {choice!r} is not a known {what} (known: {', '.join(known)})"
                             for choice in param.get("choices", [])
                             if not (isinstance(choice, str) and choice.lower() in known)]
        expressions = space.get("expression") or {}
        if expressions.get("type") == "categorical":
            problems += [f"space.expression.choices: {problem}" for choice in expressions.get("choices", [])
                         if (problem := _expression_problem(choice))]
        return problems + symbolic_problems(space) + float32_problems(space) + value_problems(config, space)

    @classmethod
    def check_measures(cls, config: dict[str, Any], measures: list[str]) -> list[str]:
        """Each campaign measure is one the results hold (:data:`MEASURES`, and with
        ``model: vit`` :data:`VIT_MEASURES`): another fails every evaluation as missing."""
        vit = ActivationConfig.model_validate(config).model == "vit"
        returned = MEASURES + VIT_MEASURES if vit else MEASURES
        later = {} if vit else {"attention_entropy": "the MLP has no attention; it is measured with "
                                                     "evaluator.config.model: vit"}
        return measure_problems("activation", measures, returned, unavailable=later)

    @classmethod
    def units(cls, config: dict[str, Any]) -> Units:
        """:data:`UNITS`, whatever the config."""
        return UNITS

    @classmethod
    def space_warnings(cls, config: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
        """One line for each space parameter that the evaluator does not take and that
        :meth:`check_space` took (not a likely misspelling of one): it is searched and
        stored, and the training does not read it."""
        return unread_warnings(space, PARAM_KEYS, "activation", "an activation evaluator parameter", "training")

    def _data_for(self, device: str) -> Dataset:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} was asked for but CUDA is not available")
        if device not in self._on_device:
            self._on_device[device] = self.data.to(device)
        return self._on_device[device]

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        wall_start = time.perf_counter()
        params = {k: v for k, v in params.items() if not is_unread(k, PARAM_KEYS)}  # a campaign's own: unread
        unknown = sorted(set(params) - PARAM_KEYS)
        if unknown:
            raise ValueError(f"activation evaluator: unknown params {unknown}; known: {sorted(PARAM_KEYS)}")
        factory = activation_factory(params)
        cfg = _coerce_train({**self.train_defaults, **{k: params[k] for k in PARAM_TRAIN_KEYS if k in params}})
        device = ctx.device or "cpu"
        data = self._data_for(device)
        seeds = [int(ctx.seed) + offset for offset in self.seed_offsets]
        with deterministic(self.num_threads, device):
            runs = [train_and_measure(factory, data, cfg, seed, device) for seed in seeds]
        return self._result(params, cfg, data, seeds, runs, device, time.perf_counter() - wall_start)

    def _result(
        self,
        params: Mapping[str, Any],
        cfg: TrainConfig,
        data: Dataset,
        seeds: list[int],
        runs: list[Any],
        device: str,
        wall: float,
    ) -> dict[str, Any]:
        accuracies = [r.accuracy for r in runs]
        per_layer_post = [statistics.fmean(v) for v in zip(*(r.post_activation_entropy for r in runs), strict=True)]
        post = statistics.fmean(per_layer_post)
        predictive = statistics.fmean(r.predictive_entropy for r in runs)
        sparsity = statistics.fmean(statistics.fmean(r.post_activation_zero_fraction) for r in runs)
        measures: dict[str, float] = {
            "post_activation_entropy": post,
            "predictive_entropy": predictive,
            "post_activation_sparsity": sparsity,
        }
        metrics: dict[str, Any] = {
            "accuracy_per_seed": accuracies,
            "accuracy_std": statistics.pstdev(accuracies),
            "train_seeds": seeds,
            "loss_curve": [statistics.fmean(v) for v in zip(*(r.loss_curve for r in runs), strict=True)],
            "final_train_loss": statistics.fmean(r.loss_curve[-1] for r in runs),
            "post_activation_entropy_per_layer": per_layer_post,
            "post_activation_entropy_normalized": post / math.log(cfg.hist_bins),
            "predictive_entropy_normalized": predictive / math.log(data.num_classes),
            "activation": str(params.get("activation", "relu")).lower(),
            "activation_params": runs[0].activation_params,
            "num_params": runs[0].num_params,
            "train_seconds": sum(r.train_seconds for r in runs),
            "wall_time_s": wall,
            "model": cfg.model,
            "dataset": data.name,
            "device": device,
        }
        if metrics["activation"] == "symbolic":
            metrics["expression_canonical"] = parse_activation(params["expression"]).canonical
        if runs[0].attention_entropy is not None:
            per_layer_att = [statistics.fmean(v) for v in zip(*(r.attention_entropy for r in runs), strict=True)]
            measures["attention_entropy"] = statistics.fmean(per_layer_att)
            metrics["attention_entropy_per_layer"] = per_layer_att
        return {"objective": statistics.fmean(accuracies), "measures": measures, "metrics": metrics}


def _expression_problem(choice: Any) -> str | None:
    """Why ``choice`` is not a symbolic activation (:func:`validate_expression`), or None."""
    if not isinstance(choice, str):
        return f"{choice!r} is not an expression (a string in x)"
    try:
        validate_expression(choice)
    except ValueError as exc:
        return f"{choice!r}: {exc}"
    return None


#: The activation that reads each activation parameter: its rule is that activation's
#: (:func:`~workers.activations.factory.activation_factory`). ``activation``, ``eafo_base`` and
#: ``expression`` are checked against their known names and grammar instead.
READ_BY: dict[str, str] = {
    "crrelu_eps": "crrelu", "eafo_eps": "eafo", "eafo_sigma": "eafo", "eafo_tau": "eafo", "wafbc_bound": "wafbc",
    "learnable": "relu", "leaky_relu_slope": "leaky_relu", "prelu_init": "prelu", "elu_alpha": "elu",
    "swish_beta": "swish", "gelu_approximate": "gelu", **dict.fromkeys(FAMILY_KEYS, "family"),
}
#: The parameters that take an integer or a boolean (a float range's values are neither).
PARAM_KINDS: dict[str, Kind] = {"epochs": "int", "batch_size": "int", "learnable": "bool"}


def value_problems(config: Mapping[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
    """Each range end and choice that its parameter's own rule refuses, one line per
    parameter for numbers (:func:`~workers.contract.space_value_problems`) and one per choice
    that is not a number (:func:`~workers.space_values.choice_problems`), and a float range for
    an integer or boolean parameter (:func:`~workers.space_values.float_range_problems`).

    The rule of an activation parameter is the factory's, for the activation that reads it
    (:data:`READ_BY`: ``eafo_tau`` in (0, 1], ``eafo_sigma`` and ``wafbc_bound`` in (0, 100],
    ``gelu_approximate`` none or tanh, ``learnable`` a boolean); of ``lr``, ``weight_decay``,
    ``epochs`` and ``batch_size``, :class:`TrainConfig`'s over the config's training
    settings. Only a refusal naming the parameter counts, and a number beyond float32's
    range or AdamW's bound is left to :func:`float32_problems`, which says so once."""
    defaults = {k: config[k] for k in TRAIN_KEYS if k in config}

    def problem_of(name: str, value: Any) -> str | None:
        if _number(value) and ((name in NUMBER_KEYS and float32_problem(float(value)))
                               or (name == "lr" and adamw_lr_problem(float(value)))):
            return None
        try:
            if name in READ_BY:
                activation_factory({"activation": READ_BY[name], name: value})
            elif name in PARAM_TRAIN_KEYS:
                _coerce_train({**defaults, name: value})
            return None
        except (ValueError, TypeError) as exc:
            return str(exc) if str(exc).startswith(name) else None

    return rule_problems("activation", space, problem_of, PARAM_KINDS)


def symbolic_problems(space: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """An ``activation`` that can be ``symbolic`` with no ``expression`` to read: none in the
    space, one whose ``when`` leaves it inactive for ``symbolic``, or one that is not a
    categorical of expressions. Every evaluation drawing ``symbolic`` had failed with
    ``activation 'symbolic' needs an 'expression' in x`` (or the expression's own error)."""
    activation = space.get("activation") or {}
    choices = activation.get("choices") or [] if activation.get("type") == "categorical" else []
    if not any(isinstance(c, str) and c.lower() == "symbolic" for c in choices):
        return []
    expression = space.get("expression")
    if expression is None:
        return ["space.activation.choices: 'symbolic' needs an 'expression' parameter in the space, its expressions "
                "in x (expression: {type: categorical, choices: ['x*sigmoid(x)'], when: {activation: symbolic}}); "
                "every evaluation drawing it would fail"]
    wanted = (expression.get("when") or {}).get("activation")
    if wanted is not None:
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if not any(isinstance(a, str) and a.lower() == "symbolic" for a in allowed):
            return [f"space.expression.when: leaves expression inactive when activation is 'symbolic' (it is active "
                    f"for {wanted!r} only), and every evaluation drawing 'symbolic' would fail for want of it"]
    if expression.get("type") != "categorical":
        return [f"space.expression.type: must be categorical, its choices expressions in x (a {expression.get('type')} "
                "parameter draws numbers, which are not expressions)"]
    return []


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
