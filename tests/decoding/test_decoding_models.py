"""The built-in arithmetic models (the checked-in checkpoint, not retrained) and the model
backends: local directories, clear errors, batched generation with a KV cache."""

from __future__ import annotations

import dataclasses
import inspect
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.decoding.conftest import build_char_model
from workers.decoding import arith, complete
from workers.decoding.generate import Request, generate, left_pad, score
from workers.decoding.models import LanguageModel, ModelNotFoundError, cache_argument, load_model, model_dir
from workers.decoding.samplers import SamplerConfig

CHECKPOINT = arith.PACKAGED_DATA / "arith-tiny"


def test_checked_in_checkpoint_is_small_and_complete() -> None:
    files = {f.name: f.stat().st_size for f in CHECKPOINT.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "train_info.json"} <= set(files)
    assert sum(files.values()) <= 5 * 1024 * 1024
    info = json.loads((CHECKPOINT / "train_info.json").read_text())
    assert info["seed"] == 0 and info["size"] == "tiny"
    assert model_dir("builtin:arith-tiny") == CHECKPOINT  # no training, no cache


def test_tiny_model_reaches_90_percent_greedy_accuracy_on_held_out_problems(tiny: LanguageModel) -> None:
    """All 1,000 held-out problems (never trained on), decoded greedily two ways: a plain
    full forward per step, and the batched KV-cache generation of the evaluator."""
    train, held = arith.heldout_problems()
    assert len(held) == 1000 and not {tuple(x) for x in held} & {tuple(x) for x in train}
    accuracy = arith.greedy_accuracy(tiny.model, held)
    assert accuracy >= 0.9
    prompts = [tiny.encode(arith.prompt_text(a, b)) for a, b in held.tolist()]
    (gen,) = generate(tiny, [Request(SamplerConfig(temperature=0.0), prompts)], 4)
    cached = np.mean([tiny.decode(o) == arith.answer_text(a, b) and s
                      for o, s, (a, b) in zip(gen.outputs, gen.stopped, held.tolist(), strict=True)])
    assert cached == pytest.approx(accuracy)


def test_nano_model_is_the_weaker_one(tiny: LanguageModel, nano: LanguageModel) -> None:
    held = arith.heldout_problems()[1][:300]
    assert nano.num_parameters < tiny.num_parameters / 10
    assert arith.greedy_accuracy(nano.model, held) < arith.greedy_accuracy(tiny.model, held)


def test_training_is_deterministic_for_a_seed() -> None:
    a, _ = arith.train("nano", seed=3, steps=4)
    b, _ = arith.train("nano", seed=3, steps=4)
    c, _ = arith.train("nano", seed=4, steps=4)
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    assert any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(), c.state_dict().values(), strict=True))


def test_missing_checkpoint_is_trained_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A seed that is not checked in is trained on first use into the cache directory
    (here with a short schedule), then reused."""
    monkeypatch.setenv("ENTROPY_ATLAS_CACHE", str(tmp_path))
    monkeypatch.setitem(arith.SIZES, "nano", dataclasses.replace(arith.SIZES["nano"], steps=5, warmup=2))
    calls = []
    real_train = arith.train

    def counting_train(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("seed"))
        return real_train(*args, **kwargs)

    monkeypatch.setattr(arith, "train", counting_train)
    path = arith.builtin_dir("builtin:arith-nano", seed=7)
    assert path == tmp_path / "models" / "arith-nano-seed7"
    assert json.loads((path / "train_info.json").read_text())["steps"] == 5
    assert arith.builtin_dir("builtin:arith-nano", seed=7) == path
    assert calls == [7]
    lm = load_model("builtin:arith-nano", seed=7)
    assert lm.path == path


def test_unknown_builtin_and_missing_directory_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown built-in model 'arith-huge'"):
        load_model("builtin:arith-huge")
    missing = tmp_path / "no" / "such-model"
    with pytest.raises(ModelNotFoundError, match=str(missing)):
        load_model(str(missing))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        load_model(str(tmp_path / "empty"))


def test_a_local_directory_loads_like_the_builtin(tiny: LanguageModel) -> None:
    lm = load_model(str(CHECKPOINT))
    assert lm.dtype == torch.float32 and lm.device.type == "cpu"
    assert complete(lm, ["12+34=", "99+99="], SamplerConfig(temperature=0.0), max_new_tokens=4) == ["64", "891"]


def test_complete_as_docs_write_it_fits_the_model_positions(tiny: LanguageModel) -> None:
    """docs/decoding.md's `complete(lm, ["12+34="], SamplerConfig(temperature=0.0))`, with
    no max_new_tokens, was a ValueError: a default of 32 new tokens after a 6-token prompt
    passed arith-tiny's 32 positions. The default now leaves room for the longest prompt."""
    assert tiny.max_positions == 32
    assert complete(tiny, ["12+34="], SamplerConfig(temperature=0.0)) == ["64"]
    long_prompt = "1+" * 15                                # 30 tokens: room for 2 at most
    assert len(complete(tiny, [long_prompt, "12+34="], SamplerConfig(temperature=0.0))) == 2
    with pytest.raises(ValueError, match="exceeds the model's 32 positions"):
        complete(tiny, ["12+34="], SamplerConfig(temperature=0.0), max_new_tokens=32)


def test_the_kv_cache_goes_by_the_installed_transformers_name(tiny: LanguageModel) -> None:
    """transformers 5.24 takes the KV cache as ``cache`` (``past_key_values`` warns and goes
    in 5.40): the step uses whichever name ``forward`` declares, so cached generation
    neither warns nor breaks on either side of the rename."""
    params = inspect.signature(tiny.model.forward).parameters
    assert cache_argument(tiny.model) == ("cache" if "cache" in params else "past_key_values")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        assert complete(tiny, ["12+34=", "99+99="], SamplerConfig(temperature=0.0), max_new_tokens=4) == ["64", "891"]


def test_cuda_request_without_cuda_is_refused() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        load_model("builtin:arith-tiny", "cuda:0")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_loads_bf16(tiny: LanguageModel) -> None:
    lm = load_model("builtin:arith-tiny", "cuda:0")
    assert lm.dtype == torch.bfloat16
    assert complete(lm, ["12+34="], SamplerConfig(temperature=0.0), max_new_tokens=4) == ["64"]


# ----------------------------------------------------------------------- generation


def test_left_padded_batched_generation_equals_one_prompt_at_a_time(char_lm: LanguageModel) -> None:
    """Prompts of different lengths in one left-padded batch, decoded with the KV cache,
    give the same greedy tokens and log-probabilities as each prompt alone."""
    texts = ["The", "Assert statements are", "x", "Python's import system is a long sentence"]
    ids = [char_lm.encode(t) for t in texts]
    (batched,) = generate(char_lm, [Request(SamplerConfig(temperature=0.0), ids)], 12)
    for row, p in enumerate(ids):
        (alone,) = generate(char_lm, [Request(SamplerConfig(temperature=0.0), [p])], 12)
        assert alone.outputs[0] == batched.outputs[row]
        assert alone.logprob_sum[0] == pytest.approx(batched.logprob_sum[row], abs=1e-4)


def test_cached_generation_matches_transformers_generate(char_lm: LanguageModel) -> None:
    prompt = char_lm.encode("Assert statements are a convenient way")
    (gen,) = generate(char_lm, [Request(SamplerConfig(temperature=0.0), [prompt])], 16)
    ids, mask = left_pad([prompt], char_lm.pad_id)
    hf = char_lm.model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=16,
                                pad_token_id=char_lm.pad_id)
    expected = hf[0, len(prompt):].tolist()
    if char_lm.stop_ids[0] in expected:
        expected = expected[: expected.index(char_lm.stop_ids[0])]
    assert gen.outputs[0] == expected


def test_our_chain_plugs_into_transformers_generate(tiny: LanguageModel) -> None:
    """The processor chain works inside ``model.generate``; top-k = 1 is greedy."""
    ids = torch.tensor([tiny.encode("12+34="), tiny.encode("55+66=")])
    chain = SamplerConfig(sampler="top_k", top_k=1, temperature=1.7).logits_processors()
    out = tiny.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=4,
                              logits_processor=chain, pad_token_id=tiny.pad_id)
    assert [tiny.decode(o) for o in out[:, 6:].tolist()] == ["64", "121"]


def test_score_equals_the_log_probabilities_recorded_while_generating(char_lm: LanguageModel) -> None:
    ids = [char_lm.encode(t) for t in ["The", "Assert statements are"]]
    (gen,) = generate(char_lm, [Request(SamplerConfig(sampler="top_k", top_k=20), ids, seed=3)], 10)
    outputs = [o + ([s] if s is not None else []) for o, s in zip(gen.outputs, gen.stop_tokens, strict=True)]
    scored = score(char_lm, ids, outputs)
    assert [n for _, n in scored] == gen.n_tokens
    assert [s for s, _ in scored] == pytest.approx(gen.logprob_sum, abs=1e-4)


def test_same_seed_same_tokens_other_seed_other_tokens(char_lm: LanguageModel) -> None:
    ids = [char_lm.encode("The")] * 4
    runs = [generate(char_lm, [Request(SamplerConfig(temperature=1.0), ids, seed=s)], 12)[0].outputs
            for s in (1, 1, 2)]
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_generation_refuses_to_run_past_the_models_positions(tiny: LanguageModel) -> None:
    with pytest.raises(ValueError, match="exceeds the model's 32 positions"):
        generate(tiny, [Request(SamplerConfig(), [tiny.encode("12+34=")])], 40)


def test_several_configurations_share_one_batch_without_sharing_randomness(tiny: LanguageModel) -> None:
    """A request's tokens depend on its own seed only, not on what it is batched with."""
    rows = [tiny.encode(arith.prompt_text(a, b)) for a, b in arith.heldout_problems()[1][:16].tolist()]
    hot = SamplerConfig(temperature=4.0)
    (alone,) = generate(tiny, [Request(hot, rows, 11)], 4)
    _, together, _ = generate(tiny, [Request(SamplerConfig(temperature=0.0), rows, 5), Request(hot, rows, 11),
                                     Request(SamplerConfig(sampler="mirostat", temperature=3.0), rows, 2)], 4)
    assert together.outputs == alone.outputs


def test_a_second_random_english_model_is_a_different_model(tmp_path: Path, char_lm: LanguageModel) -> None:
    other = load_model(str(build_char_model(tmp_path / "other", seed=1, n_layer=1)))
    assert other.num_parameters < char_lm.num_parameters
