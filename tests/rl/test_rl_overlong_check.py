"""DAPO's overlong buffer longer than the generation limit is refused with the campaign file.

Before, ``overlong_buffer_len: 50`` on the arithmetic task (max_new_tokens 4) passed the
check, the campaign was written, and every evaluation failed in ``GRPOTrainer``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.decoding.models import load_model
from workers.decoding.tasks import ArithmeticTask, JsonlTask
from workers.evaluators.configs import EntropyRLConfig
from workers.evaluators.entropy_rl import generation_limit
from workers.registry import check

TAIL = "the buffer is the last L_cache tokens before the generation limit, so every run with more would fail"


def problems(config: dict[str, Any], space: dict[str, dict[str, Any]] | None = None) -> list[str]:
    return check("entropy_rl", config, None, space or {})


def test_a_configured_buffer_longer_than_the_tasks_default_is_refused() -> None:
    assert problems({"overlong_buffer_len": 50}) == [
        "evaluator.config.overlong_buffer_len: must be <= max_new_tokens (4, the arithmetic task's default, "
        f"digits + 2): {TAIL} (got 50)"]
    assert problems({"overlong_buffer_len": 50, "max_new_tokens": 8}) == [
        f"evaluator.config.overlong_buffer_len: must be <= max_new_tokens (8, max_new_tokens of the config): "
        f"{TAIL} (got 50)"]
    assert problems({"overlong_buffer_len": 4}) == []
    assert problems({"overlong_buffer_len": 5, "digits": 3}) == []  # 3 digits: 5 tokens


def test_a_searched_buffer_longer_than_every_limit_is_refused() -> None:
    buffer = {"overlong_buffer_len": {"type": "int", "low": 0, "high": 50}}
    assert problems({}, buffer) == [
        "space.overlong_buffer_len.high: must be <= max_new_tokens (4, the arithmetic task's default, "
        f"digits + 2): {TAIL} (got 50)"]
    assert problems({}, {"overlong_buffer_len": {"type": "categorical", "choices": [0, 2, 8]}}) == [
        "space.overlong_buffer_len.choices: must be <= max_new_tokens (4, the arithmetic task's default, "
        f"digits + 2): {TAIL} (got 8)"]
    assert problems({"max_new_tokens": 64}, buffer) == []
    tokens = {"max_new_tokens": {"type": "int", "low": 2, "high": 16}}
    assert problems({}, {**buffer, **tokens}) == [
        f"space.overlong_buffer_len.high: must be <= max_new_tokens (16, the largest the space searches): "
        f"{TAIL} (got 50)"]


def test_a_buffer_that_fits_some_searched_limit_is_left_to_the_run() -> None:
    """A searched max_new_tokens that can reach the configured buffer: the runs where it
    does not fail alone (GRPOTrainer's message), the others are valid."""
    tokens = {"max_new_tokens": {"type": "int", "low": 16, "high": 32}}
    assert problems({"overlong_buffer_len": 8}, tokens) == []
    assert problems({"overlong_buffer_len": 20}, tokens) == []


def test_the_limit_is_the_tasks_default_max_new_tokens(tmp_path: Path) -> None:
    lm = load_model("builtin:arith-nano", dtype="float32")
    for digits in (None, 1, 3):
        settings = EntropyRLConfig.model_validate({} if digits is None else {"digits": digits})
        task = ArithmeticTask(lm, 4, digits=digits or 2)
        assert generation_limit(settings)[0] == task.default_max_new_tokens
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "answer": "2"}) + "\n")
    settings = EntropyRLConfig.model_validate({"task": "jsonl", "data": str(data)})
    assert generation_limit(settings)[0] == JsonlTask(lm, data).default_max_new_tokens


@pytest.mark.parametrize("where", ["config", "space"])
def test_atlas_run_refuses_it_before_writing_anything(tmp_path: Path, where: str) -> None:
    spec = {
        "name": "overlong",
        "evaluator": {"kind": "entropy_rl", "config": {"steps": 1}},
        "space": {"lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}},
        "measures": [{"name": "final_entropy", "low": 0.0, "high": 3.0, "bins": 2},
                     {"name": "answer_diversity", "low": 0.0, "high": 1.0, "bins": 2}],
        "search": {"algorithm": "random", "budget": 2, "batch_size": 1},
    }
    if where == "config":
        spec["evaluator"]["config"]["overlong_buffer_len"] = 50
    else:
        spec["space"]["overlong_buffer_len"] = {"type": "int", "low": 0, "high": 50}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    done = subprocess.run([sys.executable, "-m", "search.cli", "run", "c.yaml", "--executor", "inline"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_AUTH_MODE": "disabled", "ATLAS_STORAGE": "sqlite:///atlas.db"})
    assert done.returncode == 2, done.stderr
    assert "overlong_buffer_len" in done.stderr and "must be <= max_new_tokens (4" in done.stderr
    assert "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]
