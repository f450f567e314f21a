"""Fixtures of the decoding tests: the checked-in arithmetic models, and a small English
character-level GPT-2 built (random weights, no download) in a temporary directory."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import torch

from workers.decoding.models import LanguageModel, load_model


@pytest.fixture(scope="session")
def tiny() -> LanguageModel:
    return load_model("builtin:arith-tiny", "cpu")


@pytest.fixture(scope="session")
def nano() -> LanguageModel:
    return load_model("builtin:arith-nano", "cpu")


def build_char_model(path: Path, seed: int = 0, n_layer: int = 2) -> Path:
    """A random GPT-2 over printable ASCII (one character, one token) saved as an
    ordinary Hugging Face model directory."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - set("\x0b\x0c\r"))
    vocab = {c: i for i, c in enumerate(chars)}
    vocab["<eos>"] = len(vocab)
    vocab["<unk>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(vocab), n_positions=256, n_embd=32, n_layer=n_layer, n_head=2,
                        eos_token_id=vocab["<eos>"], pad_token_id=vocab["<eos>"], bos_token_id=vocab["<eos>"])
    GPT2LMHeadModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def char_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_char_model(tmp_path_factory.mktemp("char-gpt2") / "model")


@pytest.fixture(scope="session")
def char_lm(char_model_dir: Path) -> LanguageModel:
    return load_model(str(char_model_dir), "cpu")
