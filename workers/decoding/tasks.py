"""Tasks: the prompts a decoding configuration is evaluated on, and how outputs score.

``arithmetic``
    Additions ``aa+bb=`` drawn (by ``prompt_seed``, without replacement) from the
    held-out split of :mod:`workers.decoding.arith` for two-digit operands, uniformly
    otherwise. Objective: exact-match accuracy. The expected answer is written reversed
    (least significant digit first) for the built-in arithmetic models, normally for any
    other model (``reverse_answer`` overrides); the output is cut at its first newline
    and stripped before the comparison.
``continuation``
    Open-ended continuation of English passages from the documentation that ships with
    Python (``pydoc_data.topics``): prose paragraphs of at least 12 words (indented code
    and underlines skipped), the first ``prompt_words`` words of each. Objective:
    coherence, the mean log-likelihood per generated token (nats, stop token included)
    under a reference model, by default the generating model itself at temperature 1.
``jsonl``
    The user's file: one JSON object per line with a prompt and a reference answer
    (``prompt_field``/``answer_field``, default ``prompt``/``answer``). ``match: exact``
    compares stripped strings (after cutting at any of ``stop_strings``); ``match:
    numeric`` extracts a number from the output and from the reference, GSM8K style (the
    number after ``####`` if present, else the last number; or the first group of
    ``answer_regex``) and compares them as numbers (commas ignored).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from workers.decoding import arith
from workers.decoding.models import LanguageModel

TASKS = ("arithmetic", "continuation", "jsonl")
NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


@dataclasses.dataclass
class Item:
    """One prompt and what a correct output is (``None`` for open-ended tasks)."""

    prompt: str
    prompt_ids: list[int]
    reference: str | None = None


class Task:
    """A list of items, an objective name and a per-output score."""

    name = "task"
    objective = "accuracy"

    def __init__(self, items: list[Item], default_max_new_tokens: int) -> None:
        if not items:
            raise ValueError(f"task {self.name} has no prompts")
        self.items = items
        self.default_max_new_tokens = default_max_new_tokens

    def correct(self, item: Item, output: str) -> bool:
        """Whether ``output`` answers ``item`` (tasks with a reference only)."""
        raise NotImplementedError


# --------------------------------------------------------------------------- arithmetic


class ArithmeticTask(Task):
    """Generated additions with exact-match accuracy."""

    name = "arithmetic"
    objective = "accuracy"

    def __init__(self, lm: LanguageModel, num_prompts: int, prompt_seed: int = 0, digits: int = 2,
                 reverse_answer: bool | None = None) -> None:
        if digits < 1:
            raise ValueError(f"digits must be >= 1, got {digits}")
        self.digits = digits
        self.reverse = lm.is_builtin_arith if reverse_answer is None else bool(reverse_answer)
        rng = np.random.default_rng(prompt_seed)
        if digits == 2:
            pool = arith.heldout_problems(digits)[1]
        else:
            pool = rng.integers(0, 10**digits, size=(max(4 * num_prompts, 64), 2))
        if num_prompts > len(pool):
            raise ValueError(f"num_prompts {num_prompts} exceeds the {len(pool)} held-out problems")
        chosen = pool[rng.choice(len(pool), num_prompts, replace=False)]
        items = []
        for a, b in chosen.tolist():
            text = arith.prompt_text(a, b, digits)
            items.append(Item(text, lm.encode(text), arith.answer_text(a, b, self.reverse)))
        super().__init__(items, default_max_new_tokens=digits + 2)

    def correct(self, item: Item, output: str) -> bool:
        return output.split("\n", 1)[0].strip() == item.reference


# --------------------------------------------------------------------------- continuation


def pydoc_paragraphs(min_words: int = 12) -> list[str]:
    """Prose paragraphs of Python's bundled documentation topics, whitespace-normalised,
    in a fixed order (topics sorted by name, paragraphs in reading order)."""
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[key]):
            lines = block.split("\n")
            if any(line.startswith((" ", "\t")) for line in lines):  # code, lists, quoted output
                continue
            if any(re.fullmatch(r"[*=\-~^]{3,}", line.strip()) for line in lines):  # headings
                continue
            words = block.split()
            if len(words) >= min_words:
                out.append(" ".join(words))
    return out


class ContinuationTask(Task):
    """Continue English passages; objective: coherence under a reference model."""

    name = "continuation"
    objective = "coherence"

    def __init__(self, lm: LanguageModel, num_prompts: int, prompt_seed: int = 0, prompt_words: int = 24) -> None:
        if prompt_words < 1:
            raise ValueError(f"prompt_words must be >= 1, got {prompt_words}")
        paragraphs = pydoc_paragraphs()
        if num_prompts > len(paragraphs):
            raise ValueError(f"num_prompts {num_prompts} exceeds the {len(paragraphs)} pydoc paragraphs")
        rng = np.random.default_rng(prompt_seed)
        chosen = [paragraphs[i] for i in rng.choice(len(paragraphs), num_prompts, replace=False)]
        prompts = [" ".join(p.split()[:prompt_words]) for p in chosen]
        bad = next((p for p in prompts if not lm.covers(p)), None)
        if bad is not None:
            raise ValueError(f"task continuation needs a model whose tokenizer covers English text; {lm.spec}'s "
                             f"tokenizer cannot encode {bad[:40]!r}… (builtin arithmetic models know only "
                             f"digits, '+' and '=')")
        super().__init__([Item(p, lm.encode(p)) for p in prompts], default_max_new_tokens=32)


# --------------------------------------------------------------------------- jsonl


def extract_number(text: str, pattern: str | None = None) -> float | None:
    """The numeric answer in ``text``: ``pattern``'s first group (or whole match), else the
    number after ``####``, else the last number; commas dropped. None if there is none."""
    if pattern:
        match = re.search(pattern, text)
        if not match:
            return None
        found = match.group(1) if match.groups() else match.group(0)
    else:
        after = text.split("####", 1)[1] if "####" in text else text
        numbers = re.findall(NUMBER, after)
        if not numbers:
            return None
        found = numbers[0] if "####" in text else numbers[-1]
    try:
        return float(found.replace(",", "").strip())
    except ValueError:
        return None


class JsonlTask(Task):
    """The user's prompts and reference answers."""

    name = "jsonl"
    objective = "accuracy"

    def __init__(self, lm: LanguageModel, path: str | Path, num_prompts: int | None = None,
                 prompt_field: str = "prompt", answer_field: str = "answer", match: str = "exact",
                 answer_regex: str | None = None, stop_strings: list[str] | None = None) -> None:
        if match not in ("exact", "numeric"):
            raise ValueError(f"match must be exact or numeric, got {match!r}")
        file = Path(path).expanduser()
        if not file.is_file():
            raise FileNotFoundError(f"jsonl task data {str(file)!r} does not exist")
        if answer_regex is not None:
            re.compile(answer_regex)
        self.match = match
        self.answer_regex = answer_regex
        self.stop_strings = list(stop_strings or [])
        items = []
        with file.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{file}:{lineno}: not JSON: {exc}") from None
                if not isinstance(record, dict) or prompt_field not in record or answer_field not in record:
                    raise ValueError(f"{file}:{lineno}: needs fields {prompt_field!r} and {answer_field!r}")
                prompt = str(record[prompt_field])
                items.append(Item(prompt, lm.encode(prompt), str(record[answer_field])))
                if num_prompts is not None and len(items) >= num_prompts:
                    break
        super().__init__(items, default_max_new_tokens=32)

    def correct(self, item: Item, output: str) -> bool:
        for stop in self.stop_strings:
            output = output.split(stop, 1)[0]
        assert item.reference is not None
        if self.match == "exact":
            return output.strip() == item.reference.strip()
        got = extract_number(output, self.answer_regex)
        want = extract_number(item.reference)
        if want is None:
            raise ValueError(f"reference answer {item.reference!r} holds no number")
        return got is not None and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


TASK_KEYS = {
    "arithmetic": ("digits", "reverse_answer"),
    "continuation": ("prompt_words",),
    "jsonl": ("data", "prompt_field", "answer_field", "match", "answer_regex", "stop_strings"),
}


def build_task(name: str, lm: LanguageModel, num_prompts: int | None, prompt_seed: int,
               options: Mapping[str, Any]) -> Task:
    """The task ``name`` with its own ``options`` (see :data:`TASK_KEYS`)."""
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {name!r}")
    opts = {k: v for k, v in options.items() if v is not None}
    if name == "arithmetic":
        return ArithmeticTask(lm, num_prompts or 16, prompt_seed, **opts)
    if name == "continuation":
        return ContinuationTask(lm, num_prompts or 16, prompt_seed, **opts)
    if "data" not in opts:
        raise ValueError("task jsonl needs config data: a path to a .jsonl file")
    return JsonlTask(lm, opts.pop("data"), num_prompts, **opts)
