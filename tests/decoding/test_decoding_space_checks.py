"""The decoding evaluator's campaign check (``DecodingEvaluator.check_space`` /
``space_warnings``) on what a user's walk-through found it let pass: a sampler-specific
parameter searched where no sampler reads it, a model that does not exist, a sampler
typo without a suggestion, and the distinct-2 of samples that agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from search.cli import app
from search.spec import SpecError, parse_spec
from tests.conftest import ROOT
from workers import registry
from workers.decoding.measures import distinct_n
from workers.decoding.samplers import PARAMETER_READERS, SAMPLERS, TRUNCATIONS, Sampler, SamplerConfig

FLOAT = {"type": "float", "low": 0.1, "high": 0.9}
TAU = {"type": "float", "low": 0.5, "high": 3.0}
BUILTINS = "builtin:arith-tiny, builtin:arith-nano, builtin:arith-tiny-rl"


def choices(*names: str, **extra: Any) -> dict[str, Any]:
    return {"type": "categorical", "choices": list(names), **extra}


def campaign(tmp_path: Path, name: str, config: dict[str, Any], space: dict[str, Any]) -> Path:
    """A two-evaluation decoding campaign file."""
    spec = {"name": name, "evaluator": {"kind": "decoding", "config": {"num_prompts": 2, "samples_per_prompt": 2,
                                                                         "num_threads": 1, **config}},
            "space": space, "objective": {"name": "accuracy", "direction": "maximize"},
            "measures": [{"name": "mean_entropy", "low": 0.0, "high": 2.4, "bins": 4}],
            "search": {"algorithm": "random", "budget": 2, "batch_size": 2}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(path: Path, db: Path) -> tuple[int, list[str]]:
    """``atlas run`` inline: its exit code and its non-blank stderr lines."""
    result = CliRunner().invoke(app, ["run", str(path), "--executor", "inline", "--storage", f"sqlite:///{db}"],
                                catch_exceptions=False)
    assert "Traceback" not in result.output
    return result.exit_code, [line for line in result.stderr.splitlines() if line.strip()]


# --------------------------------------------------------------------------- 1. parameters no sampler reads


def test_a_parameter_its_when_never_lets_a_reader_see_is_refused_naming_who_reads_it() -> None:
    """The walk-through's file: ``top_h`` under ``when: {sampler: top_p}`` and ``mirostat_tau``
    under ``[top_k]`` ran without a word (top_h stored on top_p rows, with no effect)."""
    space = {"sampler": choices("top_p", "top_k", "mirostat"), "top_h": {**FLOAT, "when": {"sampler": "top_p"}},
             "mirostat_tau": {**TAU, "when": {"sampler": ["top_k"]}}}
    assert registry.review("decoding", {}, None, space) == ([
        "space.top_h: read only by sampler top_h, but searched only under sampler top_p (its when): it has no effect "
        "in any evaluation; condition it on a sampler that reads it (when: {sampler: top_h}) or remove it",
        "space.mirostat_tau: read only by samplers mirostat, mirostat_v2, but searched only under sampler top_k (its "
        "when): it has no effect in any evaluation; condition it on a sampler that reads it (when: {sampler: "
        "mirostat}) or remove it"], [])


def test_a_when_that_names_a_reader_and_others_warns_once_naming_the_others() -> None:
    space = {"sampler": choices("top_p", "top_h", "mirostat"),
             "top_h": {**FLOAT, "when": {"sampler": ["top_p", "top_h"]}},
             "mirostat_tau": {**TAU, "when": {"sampler": ["mirostat", "top_p"]}}}
    assert registry.review("decoding", {}, None, space) == ([], [
        "space.top_h: read only by sampler top_h, but also searched under sampler top_p (its when), where it has no "
        "effect",
        "space.mirostat_tau: read only by samplers mirostat, mirostat_v2, but also searched under sampler top_p (its "
        "when), where it has no effect"])


def test_a_mirostat_campaign_without_a_sampler_needs_the_defaults_sampler(tmp_path: Path) -> None:
    """Only ``temperature`` and ``mirostat_tau`` in the space: it ran with sampler ``none``, τ
    read by nothing. Now refused before anything is written, saying both ways to fix it; with
    ``evaluator.config.defaults: {sampler: mirostat}`` it is taken as it stands."""
    space = {"temperature": {"type": "float", "low": 0.5, "high": 2.0}, "mirostat_tau": TAU}
    path, db = campaign(tmp_path, "miro", {}, space), tmp_path / "atlas.db"
    code, lines = run(path, db)
    assert code == 2 and lines == [
        f"error: {path}: space.mirostat_tau: read only by samplers mirostat, mirostat_v2, but the space has no "
        "sampler parameter and every evaluation uses sampler none (the default: evaluator.config.defaults sets no "
        "sampler): it is never read; set evaluator.config.defaults: {sampler: mirostat} or add a sampler parameter "
        "to the space"]
    assert not db.exists()
    assert registry.review("decoding", {"defaults": {"sampler": "mirostat"}}, None, space) == ([], [])
    (line,) = registry.check("decoding", {"defaults": {"sampler": "top_p"}}, None, space)
    assert "every evaluation uses sampler top_p (evaluator.config.defaults.sampler)" in line


def test_an_unconditioned_parameter_is_refused_only_where_no_sampler_choice_reads_it() -> None:
    """``order`` beside ``none`` and ``top_p`` shapes the top_p rows: taken silently, as DESIGN.md's
    space of every parameter unconditioned is; ``top_h`` beside top_p and top_k: never read."""
    assert registry.review("decoding", {}, None, {"sampler": choices("none", "top_p", "mirostat"),
                                                  "order": choices("hf", "llama.cpp")}) == ([], [])
    (line,) = registry.check("decoding", {}, None, {"sampler": choices("top_p", "top_k"), "top_h": FLOAT})
    assert line == ("space.top_h: read only by sampler top_h, but searched under samplers top_p, top_k (space."
                    "sampler's choices): it has no effect in any evaluation; add top_h to space.sampler.choices or "
                    "remove it")


@pytest.mark.parametrize("config, ead_sampler, refused", [
    ({}, None, True),                                           # ead steps with none: top_p never read
    ({"defaults": {"ead_sampler": "top_p"}}, None, False),
    ({}, choices("none", "top_p"), False),
    ({}, choices("none", "min_p"), True)])
def test_ead_reads_a_truncations_parameter_through_its_step_sampler(config: dict, ead_sampler: Any,
                                                                     refused: bool) -> None:
    space = {"sampler": choices("ead", "none"), "top_p": {**FLOAT, "when": {"sampler": "ead"}},
             **({"ead_sampler": ead_sampler} if ead_sampler else {})}
    found = registry.check("decoding", config, None, space)
    assert found == ([
        "space.top_p: read only by sampler top_p (or ead, where its ead_sampler is top_p), but searched only under "
        "sampler ead (its when): it has no effect in any evaluation; condition it on a sampler that reads it (when: "
        "{sampler: top_p}) or remove it"] if refused else [])


def test_the_examples_and_designs_spaces_raise_nothing() -> None:
    spec = parse_spec(yaml.safe_load((ROOT / "examples" / "decoding.yaml").read_text()))
    space = spec.model_dump(mode="json")["space"]
    assert registry.review("decoding", dict(spec.evaluator.config), None, space) == ([], [])


STEPS = 3
#: Two values of each parameter that a sampler reading it tells apart on random logits.
VALUES: dict[str, tuple[Any, Any]] = {
    "top_k": (3, 20), "top_p": (0.3, 0.95), "min_p": (0.02, 0.3), "typical_p": (0.3, 0.95),
    "epsilon_cutoff": (0.001, 0.03), "eta_cutoff": (0.001, 0.03), "top_h": (0.2, 0.9),
    "top_h_variant": ("paper", "hf"), "mirostat_tau": (1.0, 4.0), "mirostat_eta": (0.0, 1.0),
    "mirostat_m": (2, 50), "order": ("hf", "llama.cpp"), "min_tokens_to_keep": (1, 6)}


def _steps(config: SamplerConfig, logits: torch.Tensor) -> list[torch.Tensor]:
    """What STEPS sampling steps draw and sample from (Mirostat's μ moves between them)."""
    sampler, gen, out = Sampler(config), torch.Generator().manual_seed(0), []
    for _ in range(STEPS):
        step = sampler(logits, generator=gen)
        out += [step.tokens, step.sampling_entropy, sampler.warp(logits)]
    return out


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "ead"])
def test_a_sampler_that_the_readers_table_says_leaves_a_parameter_unread_does(sampler: str) -> None:
    """The check refuses on :data:`PARAMETER_READERS`; where a parameter changes what a
    sampler draws, the table must name that sampler among its readers (so the check never
    refuses a parameter that has an effect). Each sampler's own parameter does change it."""
    logits = torch.randn(8, 40, generator=torch.Generator().manual_seed(1)) * 3
    assert set(VALUES) == set(PARAMETER_READERS) - {"ead_threshold", "ead_window", "ead_min_run", "ead_sampler"}
    for name, (a, b) in VALUES.items():
        base = {"sampler": sampler, "temperature": 1.7}
        first = _steps(SamplerConfig.from_params({**base, name: a}), logits)
        second = _steps(SamplerConfig.from_params({**base, name: b}), logits)
        differs = any(not torch.equal(x, y) for x, y in zip(first, second, strict=True))
        if differs:
            assert sampler in PARAMETER_READERS[name], (name, sampler)
        own = {"typical": "typical_p", "epsilon": "epsilon_cutoff", "eta": "eta_cutoff"}.get(sampler, sampler)
        if name == own or (sampler.startswith("mirostat") and name == "mirostat_tau"):
            assert differs, (name, sampler)
    assert set(PARAMETER_READERS["order"]) == set(TRUNCATIONS)


# --------------------------------------------------------------------------- 2. a model that is not there


def test_a_missing_model_is_named_before_the_ead_check(tmp_path: Path) -> None:
    """It was reported as EAD's want of a small model (``'ead' needs
    evaluator.config.ead_small_model (a model that shares /tmp/x/nomodel's tokenizer)``)."""
    missing = tmp_path / "nomodel"
    space = {"sampler": choices("top_p", "ead")}
    assert registry.check("decoding", {"model": str(missing)}, None, space) == [
        f"evaluator.config.model: model directory '{missing}' does not exist (model: a local Hugging Face causal LM "
        f"directory, or one of {BUILTINS}; nothing is downloaded)"]
    missing.mkdir()
    assert registry.check("decoding", {"model": str(missing), "ead_small_model": "builtin:arith-nano"}, None,
                          space) == [f"evaluator.config.model: '{missing}' is not a Hugging Face model directory "
                                     "(no config.json in it)"]
    (missing / "config.json").write_text("{}")
    assert registry.check("decoding", {"model": str(missing), "ead_small_model": "builtin:arith-nano",
                                       "reference_model": "builtin:arith-big"}, None, space) == [
        f"evaluator.config.reference_model: unknown built-in model 'arith-big' (built-in: {BUILTINS})"]


def test_an_unknown_built_in_model_is_refused_with_the_file_before_anything_is_written(tmp_path: Path) -> None:
    """It failed at setup: ``error: campaign 'typo4': evaluator setup failed: …``, without the file."""
    path, db = campaign(tmp_path, "typo4", {"model": "builtin:arith-small"},
                        {"temperature": {"type": "float", "low": 0.5, "high": 2.0}}), tmp_path / "atlas.db"
    code, lines = run(path, db)
    assert code == 2 and lines == [f"error: {path}: evaluator.config.model: unknown built-in model "
                                   f"'arith-small' (built-in: {BUILTINS})"]
    assert not db.exists()


# --------------------------------------------------------------------------- 3. sampler typos


def test_a_sampler_typo_is_offered_the_name_meant() -> None:
    found = registry.check("decoding", {}, None, {"sampler": choices("top_p", "mirostat-v2", "Top-K")})
    known = ", ".join(SAMPLERS)
    assert found == [
        f"space.sampler.choices: 'mirostat-v2' is not a known sampler (known: {known}); did you mean 'mirostat_v2'?",
        f"space.sampler.choices: 'Top-K' is not a known sampler (known: {known}); did you mean 'top_k'?"]
    with pytest.raises(ValueError, match=r"got 'mirostat-v2'; did you mean 'mirostat_v2'\?$"):
        SamplerConfig.from_params({"sampler": "mirostat-v2"})
    (line,) = registry.check("decoding", {"defaults": {"sampler": "Mirostat"}}, None, {})
    assert line.startswith("evaluator.config.defaults: sampler must be one of") and line.endswith(
        "did you mean 'mirostat'?")


def test_a_when_that_names_the_right_sampler_puts_the_mistyped_choice_first(tmp_path: Path) -> None:
    """The typo only in ``space.sampler.choices``: the error pointed at
    ``space.mirostat_tau.when.sampler`` alone, the one line that was right."""
    space = {"sampler": choices("top_p", "mirostat-v2"), "mirostat_tau": {**TAU, "when": {"sampler": "mirostat_v2"}}}
    path, db = campaign(tmp_path, "typo", {}, space), tmp_path / "atlas.db"
    code, lines = run(path, db)
    assert code == 2 and lines == [
        f"error: {path}: space.sampler.choices: 'mirostat-v2' is not a known sampler (known: {', '.join(SAMPLERS)}); "
        "did you mean 'mirostat_v2'?",
        f"error: {path}: space.mirostat_tau.when.sampler: 'mirostat_v2' is not one of ['top_p', 'mirostat-v2']"]
    assert not db.exists()
    right_choices = {"sampler": choices("top_p", "mirostat_v2"),
                     "mirostat_tau": {**TAU, "when": {"sampler": "mirostat-v2"}}}  # the typo in the when: it alone
    with pytest.raises(SpecError) as info:
        parse_spec(yaml.safe_load(campaign(tmp_path, "typo2", {}, right_choices).read_text()))
    assert info.value.problems == ["space.mirostat_tau.when.sampler: 'mirostat-v2' is not one of ['top_p', "
                                   "'mirostat_v2']"]


# --------------------------------------------------------------------------- 4. distinct-2 of agreeing samples


def test_distinct_2_of_agreeing_samples_is_a_quarter_only_where_the_answer_repeats_no_bigram() -> None:
    """Greedy T = 0.1 on the example's 32 problems gave 0.2461, not the 0.25 the page said:
    92+19 = 111, whose two bigrams are one, gives 1/8; (31 · 1/4 + 1/8) / 32 = 0.24609375."""
    assert distinct_n([[[2, 1]] * 4], 2) == 0.25
    assert distinct_n([[[1, 1, 1]] * 4], 2) == 0.125
    assert distinct_n([[[2, 1]] * 4] * 31 + [[[1, 1, 1]] * 4], 2) == 0.24609375
    page = (ROOT / "docs" / "decoding.md").read_text()
    assert "distinct-2 is 0.25 when a problem's 4 samples agree" not in " ".join(page.split())
    assert "repeats no bigram" in page
