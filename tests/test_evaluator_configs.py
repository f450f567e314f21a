"""Evaluator config models and ``registry.check``: a campaign's evaluator section is
refused before anything runs, with ``path: reason`` lines, and the models keep the
evaluators' documented defaults."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from search.spec import evaluator_problems, load_spec, parse_spec
from tests.conftest import ROOT, quadratic_spec
from workers import registry
from workers.contract import EvalContext
from workers.evaluators.benchmark import BenchmarkEvaluator
from workers.evaluators.configs import (
    DTYPE_NAMES,
    GRPO_FIELDS,
    TASK_OPTIONS,
    ActivationConfig,
    BenchmarkConfig,
    ConfigError,
    DecodingConfig,
    EntropyRLConfig,
    GRPOFields,
    PythonConfig,
    config_problems,
)
from workers.registry import FunctionEvaluator

FLOAT = {"type": "float", "low": 0.0, "high": 1.0}
EXAMPLES = ROOT / "examples"


def space_of(path: Path) -> tuple[str, dict[str, Any], str | None, dict[str, dict[str, Any]], list[str]]:
    spec = load_spec(path)
    return (spec.evaluator.kind, dict(spec.evaluator.config), spec.evaluator.target,
            spec.model_dump(mode="json")["space"], [m.name for m in spec.measures])


# --------------------------------------------------------------------------- benchmark


def test_benchmark_config_defaults_and_problems() -> None:
    assert BenchmarkConfig().model_dump() == {"function": "sphere", "dim": 20, "measure_names": ["m0", "m1"]}
    assert config_problems(BenchmarkConfig, {"function": "arm", "dim": 4, "measure_names": ["x", "y"]}) == []
    assert config_problems(BenchmarkConfig, {"dim": 1, "bogus": 3}) == [
        "evaluator.config.dim: must be >= 2", "evaluator.config.bogus: is not a known field"]
    assert config_problems(BenchmarkConfig, {"dim": True, "function": "ackley"}) == [
        "evaluator.config.function: must be sphere, rastrigin or arm (got 'ackley')",
        "evaluator.config.dim: must be an integer (got a boolean)"]
    assert config_problems(BenchmarkConfig, {"dim": "10", "measure_names": ["m"]}) == [
        "evaluator.config.dim: must be an integer (got a string)",
        "evaluator.config.measure_names: must have at least 2 item(s)"]


def test_benchmark_setup_uses_the_validated_config() -> None:
    ev = BenchmarkEvaluator()
    ev.setup({"function": "rastrigin", "dim": 4, "measure_names": ("p", "q")}, EvalContext())
    assert (ev.function, ev.dim, ev.measure_names) == ("rastrigin", 4, ["p", "q"])
    with pytest.raises(ConfigError, match=r"evaluator\.config\.dim: must be an integer \(got 4\.5\)"):
        BenchmarkEvaluator().setup({"dim": 4.5}, EvalContext())


def test_benchmark_space_must_give_dim_coordinates() -> None:
    assert registry.check("benchmark", {"dim": 3}, None, {"x": {**FLOAT, "size": 3}}) == []
    assert registry.check("benchmark", {"dim": 2}, None, {"x0": FLOAT, "x1": FLOAT}) == []
    assert registry.check("benchmark", {"dim": 3}, None, {"x": {**FLOAT, "size": 2}}) == [
        "space.x.size: is 2, but evaluator.config.dim is 3"]
    assert registry.check("benchmark", {"dim": 2}, None, {"theta": {**FLOAT, "size": 2}}) == [
        "space: the benchmark needs a float x with size 2 (evaluator.config.dim), or x0 … x1; x0, x1 missing"]
    mode = {"type": "categorical", "choices": ["on", "off"]}
    assert registry.check("benchmark", {"dim": 2}, None, {"mode": mode, "x": {**FLOAT, "size": 2, "when": {
        "mode": "on"}}}) == ["space.x.when: a benchmark coordinate is always needed; it cannot be conditional"]
    assert registry.check("benchmark", {"dim": 2}, None, {"mode": mode, "x0": FLOAT, "x1": {**FLOAT, "when": {
        "mode": "on"}}}) == ["space.x1.when: a benchmark coordinate is always needed; it cannot be conditional"]


# --------------------------------------------------------------------------- python


def test_a_measure_the_benchmark_never_returns_is_refused_with_the_file(tmp_path: Path) -> None:
    """Before: `kind: benchmark` with a third measure `m2` was taken, and its first 20
    evaluations failed with `measure 'm2' is missing (returned: ['m0', 'm1'])`, after the
    campaign and its storage were written."""
    from typer.testing import CliRunner

    from search.cli import app

    db = tmp_path / "atlas.db"
    spec = {"name": "three", "evaluator": {"kind": "benchmark", "config": {"function": "sphere", "dim": 4}},
            "space": {"x": {"type": "float", "low": -5.0, "high": 5.0, "size": 4}},
            "measures": [{"name": n, "low": -10.0, "high": 10.0, "bins": 4} for n in ("m0", "M1", "m2")],
            "search": {"algorithm": "map-elites", "budget": 40, "batch_size": 10}}
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(spec))
    done = CliRunner().invoke(app, ["run", str(path), "--executor", "inline", "--storage", f"sqlite:///{db}"],
                              catch_exceptions=False)
    assert done.exit_code == 2
    returns = "it returns two, named by evaluator.config.measure_names: m0, m1"
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {path}: measures.1.name: 'M1' is not a measure the benchmark evaluator returns ({returns}); "
        "did you mean m1?",
        f"error: {path}: measures.2.name: 'm2' is not a measure the benchmark evaluator returns ({returns})"]
    assert not db.exists()
    space = {"x": {**FLOAT, "size": 2}}
    assert registry.check("benchmark", {"dim": 2, "measure_names": ["a", "b"]}, None, space, ["b", "a"]) == []
    assert registry.check("benchmark", {"dim": 2, "measure_names": ["a", "b"]}, None, space, ["a", "m1"]) == [
        "measures.1.name: 'm1' is not a measure the benchmark evaluator returns (it returns two, named by "
        "evaluator.config.measure_names: a, b)"]


def test_a_measure_a_built_in_evaluator_never_returns_is_refused_naming_the_one_meant() -> None:
    """The decoding, activation and entropy_rl evaluators return fixed measures; a campaign
    measure of another name failed every evaluation as missing. Now it is refused with the
    file, a close name offered (`mean_entropie`); the ViT's `attention_entropy` with the MLP,
    and with `backend: vllm` the entropies vLLM does not measure, say why."""
    temperature = {"temperature": {"type": "float", "low": 0.1, "high": 1.5}}
    assert registry.check("decoding", {}, None, temperature, ["mean_entropy", "distinct_2", "ead_compute_saved"]) == []
    found = registry.check("decoding", {}, None, temperature, ["mean_entropie", "distinct_2", "accuracy"])
    assert [line.split(":")[0] for line in found] == ["measures.0.name", "measures.2.name"]
    assert found[0].startswith("measures.0.name: 'mean_entropie' is not a measure the decoding evaluator returns "
                               "(it returns mean_entropy, model_entropy, ") and found[0].endswith(
        "; did you mean mean_entropy?")
    vllm = registry.check("decoding", {"backend": "vllm"}, None, temperature, ["mean_entropy", "model_entropy"])
    assert "measures.1.name: 'model_entropy' is not measured by the decoding evaluator here: backend vllm does not " \
           "measure it (vLLM gives only the top log-probabilities); use backend hf, or mean_entropy" in vllm

    lr = {"lr": {"type": "float", "low": 0.001, "high": 0.01}}
    assert registry.check("activation", {}, None, lr, ["post_activation_entropy", "predictive_entropy"]) == []
    assert registry.check("activation", {"model": "vit"}, None, lr, ["attention_entropy", "predictive_entropy"]) == []
    assert registry.check("activation", {}, None, lr, ["attention_entropy", "Predictive-Entropy"]) == [
        "measures.0.name: 'attention_entropy' is not measured by the activation evaluator here: the MLP has no "
        "attention; it is measured with evaluator.config.model: vit",
        "measures.1.name: 'Predictive-Entropy' is not a measure the activation evaluator returns (it returns "
        "post_activation_entropy, predictive_entropy, post_activation_sparsity); did you mean predictive_entropy?"]

    coef = {"entropy_coef": {"type": "float", "low": 0.0, "high": 0.01}}
    assert registry.check("entropy_rl", {}, None, coef, ["final_entropy", "answer_diversity"]) == []
    assert registry.check("entropy_rl", {}, None, coef, ["final_entropy", "entropy_retaned"]) == [
        "measures.1.name: 'entropy_retaned' is not a measure the entropy_rl evaluator returns (it returns "
        "final_entropy, entropy_retained, answer_diversity); did you mean entropy_retained?"]


def test_a_class_target_may_check_the_campaigns_measures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check_measures(config, measures)`` gets the measures' names; its lines come with
    ``check_space``'s; one that raises is a problem line."""
    name = write_module(tmp_path, monkeypatch, """
        from workers.contract import Evaluator, measure_problems

        class Mine(Evaluator):
            @classmethod
            def check_space(cls, config, space):
                return [f"space.{n}: not mine" for n in space if n != "a"]

            @classmethod
            def check_measures(cls, config, measures):
                return measure_problems("mine", measures, ("h", "d"))

        class Broken(Evaluator):
            @classmethod
            def check_measures(cls, config, measures):
                raise KeyError("oops")
    """)
    assert registry.check("python", {}, f"{name}:Mine", {"a": FLOAT}, ["d", "h"]) == []
    assert registry.check("python", {}, f"{name}:Mine", {"a": FLOAT, "b": FLOAT}, ["h", "x"]) == [
        "space.b: not mine", "measures.1.name: 'x' is not a measure the mine evaluator returns (it returns h, d)"]
    assert registry.check("python", {}, f"{name}:Broken", {"a": FLOAT}, ["h"]) == [
        "evaluator: Broken.check_measures failed: KeyError: 'oops'"]


def test_python_config_is_batched_only() -> None:
    assert PythonConfig().batched is False
    assert FunctionEvaluator.config_model is PythonConfig
    target = "tests.support.evaluators:quadratic"
    assert registry.check("python", {"batched": True}, target, {"a": FLOAT}) == []
    assert registry.check("python", {"batched": "yes"}, target, {"a": FLOAT}) == [
        "evaluator.config.batched: must be a boolean (got a string)"]
    assert registry.check("python", {"batch": True}, target, {"a": FLOAT}) == [
        "evaluator.config.batch: is not a known field; did you mean 'batched'?"]
    with pytest.raises(ConfigError, match="batched: must be a boolean"):
        registry.build("python", {"batched": 1}, target)


def test_unimportable_or_missing_targets_are_problem_lines() -> None:
    assert registry.check("python", {}, "no_such_module_xyz:f", {}) == [
        "evaluator.target: cannot import 'no_such_module_xyz' for target 'no_such_module_xyz:f': "
        "No module named 'no_such_module_xyz'"]
    assert registry.check("python", {}, "tests.support.evaluators:missing", {}) == [
        "evaluator.target: 'tests.support.evaluators' has no attribute 'missing' "
        "(target 'tests.support.evaluators:missing')"]
    assert registry.check("python", {}, "tests.support.evaluators:math", {}) == [
        "evaluator.target: 'tests.support.evaluators:math' is neither a class nor a function"]


def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> str:
    name = f"atlas_check_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_target_module_that_raises_is_a_problem_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_module(tmp_path, monkeypatch, "raise RuntimeError('needs a GPU driver')\n")
    assert registry.check("python", {}, f"{name}:evaluate", {}) == [
        f"evaluator.target: importing '{name}:evaluate' raised RuntimeError: needs a GPU driver "
        f"({tmp_path / name}.py, line 1)"]


def test_a_class_target_brings_its_own_config_model_and_space_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = write_module(tmp_path, monkeypatch, """
        from pydantic import Field
        from workers.contract import Evaluator
        from workers.evaluators.configs import EvaluatorConfig

        class Config(EvaluatorConfig):
            width: int = Field(default=3, ge=1)

        class Mine(Evaluator):
            config_model = Config

            @classmethod
            def check_space(cls, config, space):
                return [f"space.{n}: not mine" for n in space if n != "a"]

        class Broken(Evaluator):
            @classmethod
            def check_space(cls, config, space):
                raise KeyError("oops")

        class Free(Evaluator):
            pass
    """)
    assert registry.check("python", {"width": 2}, f"{name}:Mine", {"a": FLOAT}) == []
    assert registry.check("python", {"width": 0, "batched": True}, f"{name}:Mine", {"a": FLOAT}) == [
        "evaluator.config.width: must be >= 1", "evaluator.config.batched: is not a known field"]
    assert registry.check("python", {}, f"{name}:Mine", {"a": FLOAT, "b": FLOAT}) == ["space.b: not mine"]
    assert registry.check("python", {}, f"{name}:Broken", {"a": FLOAT}) == [
        "evaluator: Broken.check_space failed: KeyError: 'oops'"]
    assert registry.check("python", {"anything": [1, 2]}, f"{name}:Free", {"a": FLOAT}) == []


def test_a_class_target_may_warn_of_what_its_space_asks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``space_warnings(config, space)`` lines come back as the review's warnings, only for
    a campaign with no problem; one that raises is a warning saying so (the campaign is valid)."""
    name = write_module(tmp_path, monkeypatch, """
        from workers.contract import Evaluator

        class Warns(Evaluator):
            @classmethod
            def check_space(cls, config, space):
                return [f"space.{n}: refused" for n in space if n == "bad"]

            @classmethod
            def space_warnings(cls, config, space):
                return [f"space.{n}: unread" for n in space if n != "a"]

        class BrokenWarnings(Evaluator):
            @classmethod
            def space_warnings(cls, config, space):
                raise KeyError("oops")
    """)
    assert registry.review("python", {}, f"{name}:Warns", {"a": FLOAT, "b": FLOAT}) == ([], ["space.b: unread"])
    assert registry.check("python", {}, f"{name}:Warns", {"a": FLOAT, "b": FLOAT}) == []
    assert registry.warnings("python", {}, f"{name}:Warns", {"a": FLOAT, "b": FLOAT}) == ["space.b: unread"]
    assert registry.review("python", {}, f"{name}:Warns", {"b": FLOAT, "bad": FLOAT}) == (["space.bad: refused"], [])
    assert registry.review("python", {}, f"{name}:BrokenWarnings", {"a": FLOAT}) == (
        [], ["evaluator: BrokenWarnings.space_warnings failed: KeyError: 'oops'"])


# --------------------------------------------------------------------------- the registry


def test_an_unknown_kind_is_a_problem_line_naming_the_registered_ones() -> None:
    (line,) = registry.check("benchmrk", {}, None, {})
    assert line.startswith("evaluator.kind: no evaluator named 'benchmrk' (registered: ")
    assert "benchmark" in line and "decoding" in line


def test_checking_benchmark_and_python_does_not_import_torch() -> None:
    code = ("import sys; from workers import registry; "
            "assert registry.check('benchmark', {'dim': 2}, None, {'x0': {}, 'x1': {}}) == []; "
            "assert registry.check('python', {}, 'tests.support.evaluators:quadratic', {}) == []; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_evaluator_problems_of_a_spec() -> None:
    assert evaluator_problems(parse_spec(quadratic_spec())) == []
    bad = parse_spec(quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:quadratic",
                                               "config": {"batched": 1}}))
    assert evaluator_problems(bad) == ["evaluator.config.batched: must be a boolean (got 1)"]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_passes_the_check(path: Path) -> None:
    assert registry.check(*space_of(path)) == []


# --------------------------------------------------------------------------- decoding


def test_decoding_config_defaults_are_the_evaluators() -> None:
    from workers.decoding.models import DTYPES
    from workers.decoding.tasks import TASK_KEYS
    from workers.evaluators.decoding import CONFIG_DEFAULTS

    assert TASK_OPTIONS == TASK_KEYS
    assert set(DTYPE_NAMES) == set(DTYPES)
    fields = DecodingConfig().model_dump()
    assert {k: fields[k] for k in CONFIG_DEFAULTS} == CONFIG_DEFAULTS
    assert set(fields) == set(CONFIG_DEFAULTS) | {k for keys in TASK_KEYS.values() for k in keys}


def test_decoding_config_problems() -> None:
    good = {"model": "builtin:arith-tiny", "task": "arithmetic", "num_prompts": 32, "samples_per_prompt": 4,
            "digits": 2, "dtype": "bf16", "defaults": {"order": "llama.cpp"}}
    assert config_problems(DecodingConfig, good) == []
    assert config_problems(DecodingConfig, {"num_prompts": True, "samples_per_prompt": 0, "modle": "x"}) == [
        "evaluator.config.num_prompts: must be an integer (got a boolean)",
        "evaluator.config.samples_per_prompt: must be >= 1",
        "evaluator.config.modle: is not a known field"]
    assert config_problems(DecodingConfig, {"task": "summarise"}) == [
        "evaluator.config.task: must be 'arithmetic', 'continuation' or 'jsonl' (got 'summarise')"]
    assert config_problems(DecodingConfig, {"task": "jsonl"}) == [
        "evaluator.config.data: is required by task jsonl (a path to a .jsonl file)"]
    assert config_problems(DecodingConfig, {"task": "jsonl", "data": "qa.jsonl", "digits": 3}) == [
        "evaluator.config.digits: is an option of task arithmetic, not of task jsonl"]
    assert config_problems(DecodingConfig, {"task": "jsonl", "data": "qa.jsonl", "answer_regex": "(\\d+"}) == [
        "evaluator.config.answer_regex: is not a regular expression: missing ), unterminated subpattern at "
        "position 0"]
    assert config_problems(DecodingConfig, {"dtype": "float8"})[0].startswith("evaluator.config.dtype: must be")


def test_decoding_space_sampler_choices_must_be_known() -> None:
    from workers.decoding.samplers import SAMPLERS

    space = {"sampler": {"type": "categorical", "choices": ["top_p", "foo", "min_p"]},
             "top_p": {**FLOAT, "low": 0.1}}  # top_p 0 is refused (its rule is (0, 1])
    assert registry.check("decoding", {}, None, space) == [
        f"space.sampler.choices: 'foo' is not a known sampler (known: {', '.join(SAMPLERS)})"]
    assert set(SAMPLERS) == {"none", "top_k", "top_p", "min_p", "typical", "epsilon", "eta", "top_h", "mirostat",
                             "mirostat_v2", "ead"}


def test_decoding_space_names_defaults_and_ead_are_checked(tmp_path: Path) -> None:
    mine, small = tmp_path / "mine", tmp_path / "small"  # the models must exist (the check looks)
    for folder in (mine, small):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    space = {"sampler": {"type": "categorical", "choices": ["ead", "top_p"]},
             "order": {"type": "categorical", "choices": ["hf", "sideways"]}, "top_pp": FLOAT}
    found = registry.check("decoding", {"model": str(mine), "defaults": {"temperature": -1.0}}, None, space)
    assert found[0].startswith("space.top_pp: is not a decoding parameter (known: ")
    assert found[1:] == [
        "space.order.choices: 'sideways' is not a known order (known: hf, llama.cpp)",
        f"space.sampler.choices: 'ead' needs evaluator.config.ead_small_model (a model that shares {mine}'s "
        "tokenizer)",
        "evaluator.config.defaults: temperature must be >= 0 (0 = greedy), got -1.0",
    ]
    assert registry.check("decoding", {"model": str(mine), "ead_small_model": str(small)}, None,
                          {"sampler": {"type": "categorical", "choices": ["ead"]}}) == []


@pytest.mark.parametrize("name, meant", [("top_pp", "top_p"), ("temprature", "temperature"), ("min_pp", "min_p"),
                                         ("TopP", "top_p"), ("Temperature", "temperature"),
                                         ("epsilon", "epsilon_cutoff"), ("typical", "typical_p")])
def test_a_likely_misspelt_decoding_parameter_is_refused_naming_the_one_meant(name: str, meant: str) -> None:
    found, warned = registry.review("decoding", {}, None, {name: FLOAT})
    assert len(found) == 1 and found[0].startswith(f"space.{name}: is not a decoding parameter (known: ")
    assert found[0].endswith(f"; did you mean {meant}?") and warned == []


def test_a_space_parameter_the_decoding_does_not_read_is_taken_with_a_warning() -> None:
    """DESIGN.md's campaign searches ``layers`` beside the decoding parameters: it was
    refused (``space.layers: is not a decoding parameter``); it is taken, searched and
    stored, and the check warns once for each such name that the decoding does not read it."""
    space = {"temperature": FLOAT, "layers": {"type": "int", "low": 1, "high": 8},
             "w": {"type": "float", "low": -1.0, "high": 1.0, "size": 16}}
    assert registry.check("decoding", {"model": "builtin:arith-tiny"}, None, space) == []
    assert registry.warnings("decoding", {"model": "builtin:arith-tiny"}, None, space) == [
        f"space.{name}: not a decoding parameter; the decoding evaluator does not read it (it is searched and "
        "stored, with no effect on decoding)" for name in ("layers", "w")]


def test_decoding_defaults_are_checked_whatever_the_sampler_they_come_with() -> None:
    """A default is used by any sampler the space offers: ``top_p: 5.0`` beside the default
    sampler ``none`` had been taken, and then every ``top_p`` evaluation failed. (``top_k``, a
    good default, is among the choices: a default no sampler reads is refused on its own.)"""
    space = {"sampler": {"type": "categorical", "choices": ["none", "top_p", "mirostat", "top_k"]}}
    assert registry.check("decoding", {"defaults": {"top_p": 5.0, "mirostat_tau": -1, "top_k": 2.0}}, None, space) == [
        "evaluator.config.defaults: top_p must be in (0, 1], got 5.0",
        "evaluator.config.defaults: mirostat_tau must be > 0, got -1.0"]


def test_decoding_ranges_and_choices_are_checked_against_each_parameters_rule() -> None:
    """A range reaching past a parameter's rule fails every evaluation drawn past it: it is
    refused with the file, naming the range and the rule."""
    space = {"sampler": {"type": "categorical", "choices": ["top_p", "top_k", "ead", "min_p"]},
             "top_p": {"type": "float", "low": 0.5, "high": 1.5},
             "top_k": {"type": "float", "low": 0.0, "high": 1.0},
             "ead_min_run": {"type": "float", "low": 1e19, "high": 1e20},
             "temperature": {"type": "categorical", "choices": [0.5, -1.0]},
             "min_p": {"type": "float", "low": 0.0, "high": 1.0}}
    assert registry.check("decoding", {}, None, space) == [
        "space.top_p: the range [0.5, 1.5] reaches values the decoding evaluator refuses (top_p must be in (0, 1], "
        "got 1.5)",
        "space.top_k: the range [0.0, 1.0] reaches values the decoding evaluator refuses (top_k must be >= 1, got 0)",
        "space.ead_min_run: the range [1e+19, 1e+20] reaches values the decoding evaluator refuses (ead_min_run must "
        "be in [1, 1000000], got 10000000000000000000)",
        "space.temperature.choices: -1.0 is refused by the decoding evaluator (temperature must be >= 0 (0 = greedy), "
        "got -1.0)"]


def test_a_good_decoding_spec_passes() -> None:
    assert registry.check(*space_of(EXAMPLES / "decoding.yaml")) == []


# --------------------------------------------------------------------------- activation


def test_activation_config_matches_the_evaluator() -> None:
    from workers.activations.training import TrainConfig
    from workers.evaluators.activation import CONFIG_KEYS

    assert set(ActivationConfig.model_fields) == set(CONFIG_KEYS)
    defaults = ActivationConfig().model_dump()
    for field in dataclasses.fields(TrainConfig):
        expected = list(field.default) if isinstance(field.default, tuple) else field.default
        assert defaults[field.name] == expected, field.name
    assert (defaults["dataset"], defaults["test_size"], defaults["seeds"], defaults["num_threads"]) == (
        "digits", 0.25, 1, 1)


def test_activation_config_problems() -> None:
    assert config_problems(ActivationConfig, {"hidden": (32, 32), "epochs": 3, "seeds": [0, 5]}) == []
    assert config_problems(ActivationConfig, {"epoch": 3, "hidden": [0], "lr": "fast"}) == [
        "evaluator.config.hidden.0: must be >= 1",
        "evaluator.config.lr: must be a number (got a string)",
        "evaluator.config.epoch: is not a known field"]
    assert config_problems(ActivationConfig, {"seeds": True, "model": "cnn", "hist_bins": 1}) == [
        "evaluator.config.model: must be 'mlp' or 'vit' (got 'cnn')",
        "evaluator.config.hist_bins: must be >= 2",
        "evaluator.config.seeds: must be a count >= 1 or a non-empty list of integer offsets (got True)"]


@pytest.mark.parametrize(("config", "line"), [
    ({"model": "vit", "dim": 10, "heads": 4}, "evaluator.config.heads: must divide dim (10); 4 does not"),
    ({"model": "vit", "patch_size": 3}, "evaluator.config.patch_size: must divide the image side of digits (8)"),
    ({"model": "vit", "patch_size": 16}, "evaluator.config.patch_size: must divide the image side of digits (8)"),
    ({"dataset": "cifar10"}, "evaluator.config.data_dir: is required by dataset cifar10"),
    ({"test_size": 0.001}, "evaluator.config.test_size: leaves 2 examples on one side"),
    ({"test_size": 0.999}, "evaluator.config.test_size: leaves 1 examples on one side"),
])
def test_activation_configs_the_data_cannot_serve_are_refused_with_the_file(config: dict, line: str) -> None:
    """Each once passed the check and then failed every evaluation (heads, patch_size) or the
    setup after the campaign was written (data_dir, test_size)."""
    (problem,) = config_problems(ActivationConfig, config)
    assert problem.startswith(line), problem


def test_activation_configs_the_data_can_serve_pass() -> None:
    for config in ({"model": "vit", "dim": 48, "heads": 4, "patch_size": 4}, {"model": "vit", "patch_size": 8},
                   {"dataset": "cifar100", "data_dir": "/data", "model": "vit", "patch_size": 16},
                   {"test_size": 0.01}, {"model": "mlp", "patch_size": 3}):
        assert config_problems(ActivationConfig, config) == [], config


def test_activation_space_is_checked() -> None:
    space = {"activation": {"type": "categorical", "choices": ["relu", "GELU", "relo"]}, "lrr": FLOAT}
    found = registry.check("activation", {"epochs": 2}, None, space)
    assert found[0].startswith("space.lrr: is not an activation evaluator parameter (known: ")
    assert found[1].startswith("space.activation.choices: 'relo' is not a known activation (known: relu, ")
    assert len(found) == 2


@pytest.mark.parametrize("kind, name, meant, what", [
    ("activation", "lrr", "lr", "an activation evaluator parameter"),
    ("activation", "swish_betta", "swish_beta", "an activation evaluator parameter"),
    ("activation", "Learnable", "learnable", "an activation evaluator parameter"),
    ("entropy_rl", "entropy_coeff", "entropy_coef", "a GRPO parameter"),
    ("entropy_rl", "Group-Size", "group_size", "a GRPO parameter"),
    ("entropy_rl", "temprature", "temperature", "a GRPO parameter")])
def test_a_likely_misspelt_activation_or_grpo_parameter_is_refused_naming_the_one_meant(
        kind: str, name: str, meant: str, what: str) -> None:
    """The decoding evaluator's rule (``workers.contract.meant_name``): refused, now naming the one meant."""
    found, warned = registry.review(kind, {}, None, {name: FLOAT})
    assert len(found) == 1 and found[0].startswith(f"space.{name}: is not {what} (known: ")
    assert found[0].endswith(f"; did you mean {meant}?") and warned == []


@pytest.mark.parametrize("kind, config, space, line", [
    ("activation", {"epochs": 1}, {"activation": {"type": "categorical", "choices": ["relu", "gelu"]}},
     "not an activation evaluator parameter; the activation evaluator does not read it (it is searched and stored, "
     "with no effect on training)"),
    ("entropy_rl", {"steps": 1}, {"lr": {"type": "float", "low": 1e-4, "high": 1e-3}},
     "not a GRPO parameter; the entropy_rl evaluator does not read it (it is searched and stored, with no effect on "
     "training)")])
def test_a_space_parameter_the_activation_or_grpo_evaluator_does_not_read_is_taken_with_a_warning(
        kind: str, config: dict, space: dict, line: str) -> None:
    """Both refused any name they do not read (``space.layers: is not an activation evaluator
    parameter``), where the decoding evaluator takes it with a warning: now all three alike."""
    space = {**space, "layers": {"type": "int", "low": 1, "high": 8},
             "w": {"type": "float", "low": -1.0, "high": 1.0, "size": 16}}
    assert registry.review(kind, config, None, space) == ([], [f"space.{name}: {line}" for name in ("layers", "w")])


# --------------------------------------------------------------------------- entropy_rl


def test_entropy_rl_config_matches_the_evaluator() -> None:
    from workers.decoding.tasks import TASK_KEYS
    from workers.evaluators.entropy_rl import CONFIG_DEFAULTS, TASKS
    from workers.rl.config import GRPOConfig

    assert GRPOConfig.field_names() == GRPO_FIELDS
    assert GRPOFields().model_dump() == dataclasses.asdict(GRPOConfig())
    assert set(EntropyRLConfig.model_fields) == (set(CONFIG_DEFAULTS) | GRPO_FIELDS
                                                 | {k for t in TASKS for k in TASK_KEYS[t]})
    dumped = EntropyRLConfig().model_dump()
    assert {k: dumped[k] for k in CONFIG_DEFAULTS} == CONFIG_DEFAULTS
    assert EntropyRLConfig.model_validate({"steps": 3, "lr": 1}).grpo_defaults() == {"lr": 1.0, "steps": 3}


def test_entropy_rl_config_problems() -> None:
    assert config_problems(EntropyRLConfig, {"num_prompts": 16, "steps": 30, "group_size": 4}) == []
    assert config_problems(EntropyRLConfig, {"group_size": 1, "aepo": 1, "loss_mode": "ppo"}) == [
        "evaluator.config.group_size: must be >= 2",
        "evaluator.config.loss_mode: must be 'vanilla', 'clip_cov' or 'kl_cov' (got 'ppo')",
        "evaluator.config.aepo: must be a boolean (got 1)"]
    assert config_problems(EntropyRLConfig, {"clip_cov_lb": 6.0}) == [
        "evaluator.config.clip_cov_ub: must be > clip_cov_lb (6.0)"]
    assert config_problems(EntropyRLConfig, {"task": "continuation"}) == [
        "evaluator.config.task: must be 'arithmetic' or 'jsonl' (got 'continuation')"]
    assert config_problems(EntropyRLConfig, {"prompt_words": 5}) == [
        "evaluator.config.prompt_words: is not a known field"]


def test_entropy_rl_space_is_checked() -> None:
    space = {"loss_mode": {"type": "categorical", "choices": ["vanilla", "ppo"]}, "entropy_coeff": FLOAT}
    found = registry.check("entropy_rl", {"steps": 2}, None, space)
    assert found[0].startswith("space.entropy_coeff: is not a GRPO parameter (known: ")
    assert found[1:] == ["space.loss_mode.choices: 'ppo' is not a loss mode (known: vanilla, clip_cov, kl_cov)"]


def test_grpo_ranges_and_choices_are_checked_against_each_fields_rule() -> None:
    """``eps_low`` in [1.5, 2] had been taken: the campaign written, every evaluation failed."""
    space = {"eps_low": {"type": "float", "low": 1.5, "high": 2.0},
             "group_size": {"type": "int", "low": 1, "high": 8},
             "entropy_coef": {"type": "float", "low": -1.0, "high": 1.0},
             "clip_ratio_c": {"type": "categorical", "choices": [0.5, 3.0]}}
    assert registry.check("entropy_rl", {}, None, space) == [
        "space.eps_low: the range [1.5, 2.0] reaches values the entropy_rl evaluator refuses (eps_low must be in "
        "[0, 1] or null, got 1.5)",
        "space.group_size: the range [1, 8] reaches values the entropy_rl evaluator refuses (group_size must be >= 2 "
        "(advantages are relative to the group), got 1)",
        "space.clip_ratio_c.choices: 0.5 is refused by the entropy_rl evaluator (clip_ratio_c must be > 1, got 0.5)"]


def test_symbolic_expression_choices_are_parsed_with_the_file() -> None:
    """Each choice is parsed (never evaluated): a refused one had been found only when drawn."""
    space = {"activation": {"type": "categorical", "choices": ["symbolic"]},
             "expression": {"type": "categorical", "choices": ["x*sigmoid(x)", "__import__('os')", "x/0+", 3]}}
    found = registry.check("activation", {}, None, space)
    assert [line.split(":")[0] for line in found] == ["space.expression.choices"] * 3
    assert "call of '__import__' is not allowed" in found[0] and "invalid syntax" in found[1]
    assert found[2] == "space.expression.choices: 3 is not an expression (a string in x)"
