"""The vLLM backend (workers/decoding/vllm_backend.py).

Tested for real here (no vLLM needed): the SamplingParams mapping of every sampler name;
the logits-processor path on real logits of ``builtin:arith-tiny`` against the HF
sampler chain; the claim of which native combinations equal the HF chain, against a
model of vLLM's sampler order; the entropy bounds on the built-in model's distributions;
the refusals (vLLM missing, Mirostat, EAD) from the API to ``atlas run``.

Skipped where vLLM does not install (the reason is in each skip): loading the processor
class into vLLM's interface and HF-vs-vLLM accuracy on the built-in model.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import yaml
from transformers.generation.logits_process import (
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from workers import registry
from workers.decoding import vllm_backend as vb
from workers.decoding.models import LanguageModel
from workers.decoding.samplers import SAMPLERS, Sampler, SamplerConfig, entropy_nats

NO_VLLM = "vllm is not installed here (its wheel pins a CUDA torch that would replace the project's CPU torch)"

#: One configuration per sampler name, with a non-trivial parameter.
CONFIGS: dict[str, SamplerConfig] = {
    "none": SamplerConfig(temperature=0.8),
    "top_k": SamplerConfig(sampler="top_k", top_k=3, temperature=0.7),
    "top_p": SamplerConfig(sampler="top_p", top_p=0.6, temperature=1.3),
    "min_p": SamplerConfig(sampler="min_p", min_p=0.2, temperature=0.9),
    "typical": SamplerConfig(sampler="typical", typical_p=0.5, temperature=1.2),
    "epsilon": SamplerConfig(sampler="epsilon", epsilon_cutoff=0.05, temperature=1.5),
    "eta": SamplerConfig(sampler="eta", eta_cutoff=0.05, temperature=1.5),
    "top_h": SamplerConfig(sampler="top_h", top_h=0.4, temperature=1.4),
    "mirostat": SamplerConfig(sampler="mirostat", mirostat_tau=2.0),
    "mirostat_v2": SamplerConfig(sampler="mirostat_v2", mirostat_tau=2.0),
    "ead": SamplerConfig(sampler="ead", ead_threshold=1.0),
}


@pytest.fixture(scope="module")
def logits(tiny: LanguageModel) -> torch.Tensor:
    """Real next-token logits of the built-in model: every prefix of a few additions
    (confident and uncertain positions alike), fp32, (rows, 14)."""
    from workers.decoding.generate import left_pad

    texts = ["12+34=", "57+68=", "99+1=", "3+40=", "80+80="]
    prefixes = [tiny.encode(t)[:n] for t in texts for n in range(1, len(tiny.encode(t)) + 1)]
    ids, mask = left_pad(prefixes, tiny.pad_id)
    from workers.decoding.models import position_ids_from_mask

    out, _ = tiny.step(ids, mask, position_ids_from_mask(mask))
    # a few hotter copies so that truncations keep several tokens
    return torch.cat([out, out / 3.0, out / 8.0])


# --------------------------------------------------------------------------- the mapping


def test_every_sampler_name_is_native_processed_or_refused() -> None:
    assert set(CONFIGS) == set(SAMPLERS)
    assert set(vb.NATIVE_RULES) | set(vb.PROCESSOR_RULES) | set(vb.REFUSED) | {"none"} == set(SAMPLERS)
    for name, config in CONFIGS.items():
        if name in vb.REFUSED:
            with pytest.raises(vb.VLLMUnsupported, match=f"^sampler {name} is not available with backend vllm: "):
                vb.sampling_params_kwargs(config, 8)
            continue
        kw = vb.sampling_params_kwargs(config, 8, seed=5, stop_token_ids=[12], logprobs=4)
        assert kw["temperature"] == config.temperature and kw["max_tokens"] == 8 and kw["seed"] == 5
        assert kw["stop_token_ids"] == [12] and kw["logprobs"] == 4
        if name in vb.PROCESSOR_RULES:
            assert (kw["top_k"], kw["top_p"], kw["min_p"]) == (0, 1.0, 0.0)
            assert SamplerConfig.from_params(kw["extra_args"][vb.EXTRA_ARG]) == config
        else:
            assert "extra_args" not in kw
    assert vb.sampling_params_kwargs(CONFIGS["none"], 3)["top_k"] == 0
    assert vb.sampling_params_kwargs(CONFIGS["top_k"], 3)["top_k"] == 3
    assert vb.sampling_params_kwargs(CONFIGS["top_p"], 3)["top_p"] == 0.6
    assert vb.sampling_params_kwargs(CONFIGS["min_p"], 3)["min_p"] == 0.2
    assert vb.sampling_params_kwargs(SamplerConfig(temperature=0.0), 3)["temperature"] == 0.0  # vLLM's greedy
    # an EAD step rule is irrelevant: EAD itself is refused
    with pytest.raises(vb.VLLMUnsupported, match="one vLLM engine serves one model"):
        vb.sampling_params_kwargs(SamplerConfig(sampler="ead", ead_sampler="top_p"), 3)
    with pytest.raises(ValueError, match="max_tokens"):
        vb.sampling_params_kwargs(CONFIGS["none"], 0)


def test_combinations_and_orders_vllm_would_change_go_through_the_processor() -> None:
    native = [SamplerConfig(sampler=("top_k", "top_p"), top_k=5, top_p=0.8, temperature=0.7),
              SamplerConfig(sampler=("top_k", "min_p"), top_k=5, min_p=0.1, temperature=0.7),
              SamplerConfig(sampler="top_k", order="llama.cpp", temperature=0.5),
              SamplerConfig(sampler="top_p", order="llama.cpp", temperature=1.0)]
    processed = [SamplerConfig(sampler=("top_p", "min_p"), temperature=0.7),
                 SamplerConfig(sampler="top_p", order="llama.cpp", temperature=0.5),
                 SamplerConfig(sampler="min_p", order="llama.cpp", temperature=2.0),
                 SamplerConfig(sampler=("top_k", "typical")),
                 SamplerConfig(sampler="top_p", min_tokens_to_keep=3)]
    assert all(vb.is_native(c) for c in native)
    assert not any(vb.is_native(c) for c in processed)
    for c in processed:
        assert vb.EXTRA_ARG in vb.sampling_params_kwargs(c, 4)["extra_args"]


def vllm_native_order(config: SamplerConfig, logits: torch.Tensor) -> torch.Tensor:
    """A model of vLLM's V1 sampler on native parameters (temperature, then min-p, then
    top-k, then top-p, each on what the previous left), from transformers' warpers."""
    kw = vb.sampling_params_kwargs(config, 1)
    scores = logits.clone()
    if kw["temperature"] > 0:
        scores = TemperatureLogitsWarper(kw["temperature"])(None, scores)
    if kw["min_p"] > 0:
        scores = MinPLogitsWarper(kw["min_p"])(None, scores)
    if kw["top_k"] > 0:
        scores = TopKLogitsWarper(kw["top_k"])(None, scores)
    if kw["top_p"] < 1:
        scores = TopPLogitsWarper(kw["top_p"])(None, scores)
    return scores


def test_native_mapping_gives_the_hf_distribution_and_the_excluded_combination_does_not(
        logits: torch.Tensor) -> None:
    grid = [SamplerConfig(sampler="top_k", top_k=k, temperature=t) for k in (1, 2, 5) for t in (0.5, 1.0, 2.0)]
    grid += [SamplerConfig(sampler="top_p", top_p=p, temperature=t) for p in (0.3, 0.7, 0.95) for t in (0.5, 2.0)]
    grid += [SamplerConfig(sampler="min_p", min_p=p, temperature=t) for p in (0.05, 0.3) for t in (0.5, 2.0)]
    grid += [SamplerConfig(sampler=("top_k", "top_p"), top_k=4, top_p=0.7, temperature=1.5),
             SamplerConfig(sampler=("top_k", "min_p"), top_k=4, min_p=0.1, temperature=1.5),
             SamplerConfig(sampler="top_k", top_k=3, order="llama.cpp", temperature=0.6)]
    for config in grid:
        assert vb.is_native(config)
        hf = torch.softmax(Sampler(config).warp(logits), -1)
        torch.testing.assert_close(torch.softmax(vllm_native_order(config, logits), -1), hf, atol=1e-6, rtol=0)
    # top-p with min-p: vLLM renormalises after min-p before top-p, so the kept sets differ somewhere
    both = SamplerConfig(sampler=("top_p", "min_p"), top_p=0.5, min_p=0.3, temperature=2.0)
    assert not vb.is_native(both)
    differs = torch.isfinite(Sampler(both).warp(logits)) != torch.isfinite(vllm_native_order(both, logits))
    assert bool(differs.any())


# --------------------------------------------------------------------------- the processor


PROCESSED = [CONFIGS[n] for n in vb.PROCESSOR_RULES] + [
    SamplerConfig(sampler="top_h", top_h=0.7, top_h_variant="hf", temperature=0.6),
    SamplerConfig(sampler="typical", typical_p=0.3, order="llama.cpp", temperature=0.5),
    SamplerConfig(sampler="top_h", top_h=0.3, order="llama.cpp", temperature=1.7),
    SamplerConfig(sampler=("top_p", "min_p"), top_p=0.5, min_p=0.3, temperature=2.0),
    SamplerConfig(sampler="min_p", min_p=0.2, order="llama.cpp", temperature=0.4),
    SamplerConfig(sampler="epsilon", epsilon_cutoff=0.1, temperature=0.0),
    SamplerConfig(sampler="typical", typical_p=0.2, order="llama.cpp", temperature=0.0),
]


def vllm_after_processor(config: SamplerConfig, processed: torch.Tensor) -> torch.Tensor:
    """What vLLM samples from after a non-argmax-invariant processor returned ``processed``:
    softmax(processed / T), or a point mass on its argmax at T = 0 (greedy)."""
    if config.temperature == 0.0:
        return torch.nn.functional.one_hot(processed.argmax(-1), processed.shape[-1]).float()
    return torch.softmax(processed / config.temperature, -1)


@pytest.mark.parametrize("index", range(len(PROCESSED)))
def test_processor_path_equals_the_hf_sampler_on_real_logits(logits: torch.Tensor, index: int) -> None:
    config = PROCESSED[index]
    hf_scores = Sampler(config).warp(logits)
    processed = vb.apply_rules(config, logits)
    assert torch.equal(torch.isfinite(processed), torch.isfinite(hf_scores))
    assert torch.equal(processed[torch.isfinite(processed)], logits[torch.isfinite(processed)])  # kept: untouched
    torch.testing.assert_close(vllm_after_processor(config, processed), torch.softmax(hf_scores, -1),
                               atol=1e-6, rtol=0)


class Params:
    """Stands in for vllm.SamplingParams: only ``extra_args`` is read."""

    def __init__(self, config: SamplerConfig | None) -> None:
        self.extra_args = vb.sampling_params_kwargs(config, 4).get("extra_args") if config else None


class Direction:
    def __init__(self, name: str) -> None:
        self.name = name


def test_row_rules_follow_adds_removes_moves_and_swaps(logits: torch.Tensor) -> None:
    rules = vb.RowRules()
    a, b, c = PROCESSED[0], PROCESSED[2], PROCESSED[7]
    rules.update(added=[(0, Params(a), None, []), (1, Params(None), None, []), (2, Params(b), None, []),
                        (3, Params(c), None, [])])
    assert set(rules.rows) == {0, 2, 3}
    rules.update(removed=[3])
    rules.update(moved=[(2, 1, Direction("UNIDIRECTIONAL")), (0, 1, Direction("SWAP"))])
    assert rules.rows == {0: b, 1: a}
    rules.update(added=[(3, Params(c), None, [])], moved=[(3, 2, Direction("UNIDIRECTIONAL"))])
    assert rules.rows == {0: b, 1: a, 2: c}
    batch = logits[:4].clone()
    out = rules.apply(batch.clone())
    for row, config in ((0, b), (1, a), (2, c)):
        torch.testing.assert_close(out[row : row + 1], vb.apply_rules(config, logits[row : row + 1]))
    assert torch.equal(out[3], logits[3])  # a native row is left alone
    rules.update(added=[(1, Params(None), None, [])])  # a native request replaces row 1
    assert set(rules.rows) == {0, 2}


def test_a_refused_configuration_is_refused_by_the_processor_too() -> None:
    extra = {vb.EXTRA_ARG: CONFIGS["mirostat"].to_dict()}
    with pytest.raises(vb.VLLMUnsupported, match=r"^sampler mirostat is not available with backend vllm"):
        vb.config_of(extra)
    assert vb.config_of(None) is None and vb.config_of({"other": 1}) is None


# --------------------------------------------------------------------------- entropy


def test_entropy_bounds_bracket_the_exact_entropy_of_the_built_in_model(logits: torch.Tensor) -> None:
    vocab = logits.shape[-1]
    for scores in (logits, logits / 0.5):
        logp = torch.log_softmax(scores.double(), -1)
        exact = -(logp.exp() * logp).sum(-1)  # double; entropy_nats (the HF measure) agrees to float32
        torch.testing.assert_close(entropy_nats(scores).double(), exact, atol=1e-5, rtol=0)
        top = logp.sort(-1, descending=True).values
        widths = []
        for k in range(1, vocab + 1):
            bounds = vb.entropy_bounds(top[:, :k], vocab)
            assert bool((bounds.lower <= exact + 1e-9).all()), k
            assert bool((bounds.upper >= exact - 1e-9).all()), k
            assert bool((bounds.known <= exact + 1e-9).all())
            widths.append(float((bounds.upper - bounds.lower).max()))
        final = vb.entropy_bounds(top, vocab)
        torch.testing.assert_close(final.lower, exact, atol=1e-9, rtol=0)
        torch.testing.assert_close(final.upper, exact, atol=1e-9, rtol=0)
        assert bool(final.exact.all())
        assert widths[-1] == 0.0 and widths[0] > widths[-2]


def test_entropy_bounds_are_exact_when_k_covers_the_kept_set(logits: torch.Tensor) -> None:
    vocab = logits.shape[-1]
    config = SamplerConfig(sampler="top_k", top_k=3, temperature=1.3)
    scores = Sampler(config).warp(logits)  # what vLLM's processed log-probabilities describe
    logq = torch.log_softmax(scores.double(), -1)
    exact = -(logq.exp() * logq.nan_to_num(neginf=0.0)).sum(-1)
    top = logq.sort(-1, descending=True).values
    for k in (3, 4, 8):
        bounds = vb.entropy_bounds(top[:, :k].float(), vocab)  # vLLM's values are float32
        assert bool(bounds.exact.all())
        torch.testing.assert_close(bounds.lower, exact, atol=1e-5, rtol=0)
    bounds = vb.entropy_bounds(top[:, :2], vocab)  # k below the kept set: bounded, still bracketing
    assert bool((bounds.lower <= exact + 1e-9).all() and (bounds.upper >= exact - 1e-9).all())


def test_entropy_bounds_on_large_random_vocabularies() -> None:
    gen = torch.Generator().manual_seed(0)
    vocab = 5000
    scores = torch.randn(64, vocab, generator=gen, dtype=torch.float64) * torch.linspace(0.5, 6, 64).unsqueeze(-1)
    logp = torch.log_softmax(scores, -1)
    exact = -(logp.exp() * logp).sum(-1)
    top = logp.sort(-1, descending=True).values
    for k in (1, 5, 20, 200, vocab):
        b = vb.entropy_bounds(top[:, :k], vocab)
        assert bool((b.lower <= exact + 1e-9).all() and (b.upper >= exact - 1e-9).all()), k
    # the capped lower bound beats the tail-as-one-outcome bound
    b = vb.entropy_bounds(top[:, :20], vocab)
    one_outcome = b.known - b.tail_mass * torch.log(b.tail_mass)
    assert bool((b.lower >= one_outcome - 1e-12).all()) and bool((b.lower > one_outcome + 1e-6).any())


def test_top_logprobs_of_a_vllm_position_keeps_the_top_k() -> None:
    class Logprob:
        def __init__(self, logprob: float, rank: int) -> None:
            self.logprob, self.rank = logprob, rank

    position = {7: Logprob(-3.0, 5), 1: Logprob(-0.2, 1), 2: Logprob(-2.0, 2)}  # top 2 and the sampled 5th
    assert vb.top_logprobs_of(position, 2) == [-0.2, -2.0]
    assert vb.top_logprobs_of({1: -0.5, 2: -1.5}, 2) == [-0.5, -1.5]


def test_decode_output_counts_like_the_hf_generation() -> None:
    completion = SimpleNamespace(token_ids=[3, 4, 12], finish_reason="stop", stop_reason=None,
                                 logprobs=[{3: 0.0}, {4: math.log(0.5), 5: math.log(0.5)}, {12: 0.0}])
    row = vb.decode_output(completion, {12}, 14, 2)
    assert row["output"] == [3, 4] and row["stopped"] and row["stop_token"] == 12 and row["n_tokens"] == 3
    assert row["h_lower"] == pytest.approx(math.log(2)) and row["h_upper"] == pytest.approx(math.log(2))
    assert row["exact"] == 3 and row["kept"] == 4


class _Logprob:
    def __init__(self, logprob: float, rank: int) -> None:
        self.logprob, self.rank = logprob, rank


class _FlatLogprobs:
    """vLLM's FlatLogprobs layout: per position, the sampled token then the top k by rank."""

    def __init__(self, positions: list[list[tuple[int, float, int]]]) -> None:
        self.start_indices: list[int] = []
        self.end_indices: list[int] = []
        self.token_ids: list[int] = []
        self.logprobs: list[float] = []
        self.ranks: list[int] = []
        for entries in positions:
            self.start_indices.append(len(self.logprobs))
            for token, logprob, rank in entries:
                self.token_ids.append(token)
                self.logprobs.append(logprob)
                self.ranks.append(rank)
            self.end_indices.append(len(self.logprobs))

    def __len__(self) -> int:
        return len(self.start_indices)

    def __getitem__(self, i: int) -> dict[int, _Logprob]:
        span = range(self.start_indices[i], self.end_indices[i])
        return {self.token_ids[j]: _Logprob(self.logprobs[j], self.ranks[j]) for j in span}


def _positions(k: int, count: int, vocab: int, seed: int) -> list[list[tuple[int, float, int]]]:
    """``count`` positions of a softmax over ``vocab`` tokens: the sampled token, then the top k."""
    draw = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        logq = torch.log_softmax(torch.randn(vocab, generator=draw) * 2, -1)
        order = torch.argsort(logq, descending=True)
        sampled = int(torch.multinomial(logq.exp(), 1, generator=draw))
        rank = int((order == sampled).nonzero()) + 1
        out.append([(sampled, float(logq[sampled]), rank)]
                   + [(int(t), float(logq[t]), r + 1) for r, t in enumerate(order[:k])])
    return out


def test_flat_logprobs_give_the_bounds_of_the_per_position_dicts() -> None:
    positions = _positions(k=5, count=40, vocab=30, seed=0)
    flat = vb.top_logprob_rows(_FlatLogprobs(positions), 5)
    dicts = vb.top_logprob_rows([{t: _Logprob(v, r) for t, v, r in entries} for entries in positions], 5)
    assert len(flat) == 1 and flat[0].shape == (40, 5)
    torch.testing.assert_close(flat[0], dicts[0], rtol=0, atol=0)
    completion = SimpleNamespace(token_ids=[e[0][0] for e in positions], finish_reason="length", stop_reason=None,
                                 logprobs=_FlatLogprobs(positions))
    row = vb.decode_output(completion, set(), 30, 5)
    per_token = [vb.entropy_bounds(torch.tensor([vb.top_logprobs_of({t: _Logprob(v, r) for t, v, r in e}, 5)]), 30)
                 for e in positions]
    assert row["h_lower"] == pytest.approx(sum(float(b.lower[0]) for b in per_token))
    assert row["h_upper"] == pytest.approx(sum(float(b.upper[0]) for b in per_token))
    assert row["exact"] == 0 and math.isnan(row["kept"]) and row["n_tokens"] == 40


def test_a_flat_layout_other_than_sampled_then_ranked_is_read_position_by_position() -> None:
    positions = _positions(k=3, count=6, vocab=12, seed=1)
    positions[2] = positions[2][1:]  # one position without the sampled entry
    positions[4] = [positions[4][0], *reversed(positions[4][1:])]  # one out of rank order
    rows = vb.top_logprob_rows(_FlatLogprobs(positions), 3)
    expected = [sorted((v for v, r in {t: (v, r) for t, v, r in e}.values() if r <= 3), reverse=True)
                for e in positions]
    assert len(rows) == 1
    torch.testing.assert_close(rows[0], torch.tensor(expected, dtype=torch.float64))


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def without_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vb, "vllm_available", lambda: False)


def test_the_engine_says_in_one_line_that_vllm_is_missing(without_vllm: None) -> None:
    with pytest.raises(vb.VLLMNotInstalled) as info:
        vb.VLLMEngine("builtin:arith-tiny")
    assert "\n" not in str(info.value) and str(info.value).startswith("vllm is not installed")


def test_backend_is_checked_before_anything_runs(without_vllm: None) -> None:
    from workers.evaluators.configs import DecodingConfig, config_problems

    assert config_problems(DecodingConfig, {"backend": "vllm", "vllm_logprobs": -1}) == []
    assert config_problems(DecodingConfig, {"backend": "sglang"}) == [
        "evaluator.config.backend: must be 'hf' or 'vllm' (got 'sglang')"]
    assert config_problems(DecodingConfig, {"vllm_logprobs": 0}) == [
        "evaluator.config.vllm_logprobs: must be -1 (the whole vocabulary) or >= 1"]
    space = {"sampler": {"type": "categorical", "choices": ["top_p", "mirostat", "ead"]}}
    found = registry.check("decoding", {"backend": "vllm", "defaults": {"sampler": "mirostat_v2"}}, None, space)
    assert found == [
        f"evaluator.config.backend: {vb.missing_reason()}",
        f"space.sampler.choices: 'mirostat' is not available with backend vllm: {vb.REFUSED['mirostat']}",
        f"space.sampler.choices: 'ead' is not available with backend vllm: {vb.REFUSED['ead']}",
        f"evaluator.config.defaults.sampler: 'mirostat_v2' is not available with backend vllm: "
        f"{vb.REFUSED['mirostat_v2']}",
    ]
    assert registry.check("decoding", {"backend": "hf"}, None, space) == []


def test_vllm_engine_arguments_are_checked_and_the_backends_own_are_refused() -> None:
    from workers.evaluators.configs import DecodingConfig, config_problems

    engine = {"attention_backend": "TRITON_ATTN", "enforce_eager": True, "gpu_memory_utilization": 0.3}
    assert config_problems(DecodingConfig, {"backend": "vllm", "vllm_engine": engine}) == []
    assert DecodingConfig.model_validate({"vllm_engine": engine}).vllm_engine == engine
    assert config_problems(DecodingConfig, {"vllm_engine": {"seed": 3, "dtype": "float16"}}) == [
        "evaluator.config.vllm_engine: dtype, seed set by the backend itself (use model, dtype, model_seed, "
        "vllm_logprobs)"]
    assert config_problems(DecodingConfig, {"vllm_engine": {"seeded": False, "logprobs": 5}}) == [
        "evaluator.config.vllm_engine: logprobs, seeded set by the backend itself (use model, dtype, model_seed, "
        "vllm_logprobs)"]  # VLLMEngine's own keywords: a campaign's sequences stay seeded
    assert config_problems(DecodingConfig, {"vllm_engine": {"compilation_config": {"mode": 0}}}) == []
    (problem,) = config_problems(DecodingConfig, {"vllm_engine": ["enforce_eager"]})
    assert problem.startswith("evaluator.config.vllm_engine: "), problem


def test_atlas_run_refuses_a_vllm_campaign_without_vllm(tmp_path: Path, without_vllm: None) -> None:
    from typer.testing import CliRunner

    from search.cli import app

    spec: dict[str, Any] = yaml.safe_load((Path(__file__).parents[2] / "examples" / "decoding.yaml").read_text())
    spec["evaluator"]["config"]["backend"] = "vllm"
    spec["space"]["sampler"]["choices"] = [c for c in spec["space"]["sampler"]["choices"] if c not in vb.REFUSED]
    for name in ("mirostat_tau", "ead_threshold"):
        spec["space"].pop(name)
    spec["search"]["initial_points"] = [p for p in spec["search"]["initial_points"] if p["sampler"] not in vb.REFUSED]
    path = tmp_path / "vllm.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    db = tmp_path / "atlas.db"
    result = CliRunner().invoke(app, ["run", str(path), "--storage", f"sqlite:///{db}", "--executor", "inline"],
                                catch_exceptions=False)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {path}: evaluator.config.backend: {vb.missing_reason()}"], result.stderr
    assert "Traceback" not in result.output
    assert not db.exists()


# --------------------------------------------------------------------------- with vLLM


@pytest.mark.skipif(not vb.vllm_available(), reason=NO_VLLM)
def test_the_processor_class_implements_vllms_interface() -> None:
    from vllm.v1.sample.logits_processor import LogitsProcessor

    from workers.decoding.vllm_logitsprocs import AtlasRulesLogitsProcessor

    assert issubclass(AtlasRulesLogitsProcessor, LogitsProcessor)
    proc = AtlasRulesLogitsProcessor(None, torch.device("cpu"), False)
    assert proc.is_argmax_invariant() is False


@pytest.mark.skipif(not vb.vllm_available(), reason=NO_VLLM)
@pytest.mark.parametrize("params", [{"sampler": "none", "temperature": 0.0}, {"sampler": "top_p", "top_p": 0.8},
                                    {"sampler": "typical", "typical_p": 0.5, "temperature": 1.5},
                                    {"sampler": "top_h", "top_h": 0.3, "temperature": 2.0}])
def test_hf_and_vllm_give_the_same_accuracy_within_sampling_noise(params: dict[str, Any]) -> None:
    """Accuracy on 64 prompts x 8 samples: |acc_hf - acc_vllm| within 4 standard errors of
    the difference of two independent proportions (exact equality at temperature 0)."""
    from workers.contract import EvalContext
    from workers.evaluators.decoding import DecodingEvaluator

    device = "cuda" if torch.cuda.is_available() else "cpu"
    # e.g. {"attention_backend": "TRITON_ATTN"} on a machine without vLLM's FlashAttention kernels
    engine = json.loads(os.environ.get("ATLAS_TEST_VLLM_ENGINE", "{}"))
    accuracy = {}
    for backend in ("hf", "vllm"):
        ev = DecodingEvaluator()
        ev.setup({"backend": backend, "num_prompts": 64, "samples_per_prompt": 8, "dtype": "float32",
                  **({"vllm_engine": engine} if backend == "vllm" else {})},
                 EvalContext(seed=0, device=device))
        (result,) = ev.evaluate_batch([params], EvalContext(seed=1, device=device))
        ev.teardown()
        assert "error" not in result, result
        accuracy[backend] = result["objective"]
    n = 64 * 8
    pooled = (accuracy["hf"] + accuracy["vllm"]) / 2
    noise = 4 * math.sqrt(max(2 * pooled * (1 - pooled) / n, 1e-12))
    if params.get("temperature") == 0.0:
        assert accuracy["hf"] == accuracy["vllm"]
    assert abs(accuracy["hf"] - accuracy["vllm"]) <= noise, accuracy


class _Asked(Exception):
    """Raised by the stand-in engine once it has the requests (nothing to decode after)."""


def _stand_in_vllm(asked: list[Any]) -> SimpleNamespace:
    """A vLLM with the engine's surface (``LLM``, ``SamplingParams``) that records what
    the backend asks of it: for the request-building path, which needs no GPU."""

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: 14))

        def generate(self, prompts: list[Any], params: list[Any], use_tqdm: bool = False) -> list[Any]:
            asked.extend(params)
            raise _Asked

    return SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw)


@pytest.mark.parametrize("seeded", [True, False])
def test_sequences_are_seeded_one_by_one_unless_asked_not_to_be(monkeypatch: pytest.MonkeyPatch,
                                                                seeded: bool) -> None:
    from workers.decoding.generate import Request
    from workers.decoding.samplers import SamplerConfig

    asked: list[Any] = []
    monkeypatch.setattr(vb, "require_vllm", lambda: _stand_in_vllm(asked))
    engine = vb.VLLMEngine("unused", seeded=seeded)
    config = SamplerConfig.from_params({"sampler": "top_p", "top_p": 0.9, "temperature": 1.0})
    with pytest.raises(_Asked):
        engine.generate([Request(config, [[1, 2], [3], [4]], seed=7), Request(config, [[5]], seed=8)], 4, [13])
    seeds = [p["seed"] for p in asked]
    if seeded:
        assert seeds == [vb.row_seed(7, 0), vb.row_seed(7, 1), vb.row_seed(7, 2), vb.row_seed(8, 0)]
        assert len(set(seeds)) == 4
    else:
        assert seeds == [None] * 4
