"""The local Hugging Face backend of the LLM proposer, held in a Ray actor: a tiny
GPT-2 built and saved by the test (no download) answers; its gibberish is audited and the
campaign falls back to mutation and finishes."""

from __future__ import annotations

from pathlib import Path

import pytest

import archive
from search import api
from tests.conftest import quadratic_spec

pytestmark = pytest.mark.ray


def tiny_model(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    chars = list(" abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789[]{}\":,.-_<>/\n'()=!?*`#")
    vocab = {c: i for i, c in enumerate(["<unk>", "<eos>", *chars])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<eos>").save_pretrained(path)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=4096, n_embd=32, n_layer=1, n_head=2)
                    ).save_pretrained(path)
    return path


def test_local_model_in_a_ray_actor(sqlite_url: str, tmp_path: Path, ray_cluster: None) -> None:
    model = tiny_model(tmp_path / "tiny")
    spec = quadratic_spec(search__algorithm="llm", search__budget=8, search__batch_size=4, search__max_in_flight=4,
                          search__options={"backend": "hf", "model": str(model), "max_tokens": 24})
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 8
    camp = archive.open(sqlite_url).campaign("quad")
    calls = camp.store.calls(camp.record.id)
    assert len(calls) == 2 and all(c["status"] == "ok" and c["usage"]["completion_tokens"] > 0 for c in calls)
    assert all(c["request"]["backend"] == "hf" for c in calls)


def test_missing_model_directory_is_a_clear_error(sqlite_url: str, tmp_path: Path, ray_cluster: None) -> None:
    spec = quadratic_spec(search__algorithm="llm", search__budget=4, search__batch_size=4,
                          search__options={"backend": "hf", "model": str(tmp_path / "absent")})
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 4  # the batch falls back to mutation
    camp = archive.open(sqlite_url).campaign("quad")
    (call,) = camp.store.calls(camp.record.id)
    assert call["status"] == "error" and "no model directory at" in call["error"] and "absent" in call["error"]
