"""Every example campaign is a valid file, and runs: each is loaded, cut to a few evaluations
(and, for the evaluators that train or sample, to tiny sizes), and run inline on SQLite;
most of its evaluations must be ``done``. An example that asks a language model asks the
chat-completions server on loopback of ``tests/support/chat_server.py`` instead."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import archive
from search import api
from search.proposers import proposer_class
from search.spec import load_spec, spec_warnings
from tests.support.chat_server import ChatServer
from workers import registry

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
BUDGET = 8
#: Evaluator settings that keep one evaluation well under a second (the rest as the example has it).
TINY: dict[str, dict[str, Any]] = {
    "decoding": {"num_prompts": 4, "samples_per_prompt": 2},
    "activation": {"epochs": 1},
    "entropy_rl": {"steps": 2, "prompts_per_step": 2, "group_size": 2, "num_prompts": 8, "num_eval_prompts": 8,
                   "eval_samples": 1},
}
#: Examples that take more than ~20 s even so (none does at the sizes of TINY: about 2 s each).
SLOW: set[str] = set()


def example_params() -> list[Any]:
    return [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else []) for p in EXAMPLES]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.evaluator.kind in registry.available()
    assert proposer_class(spec.search.algorithm) is not None


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_warns_only_that_its_budget_cannot_fill_the_map(path: Path) -> None:
    """A shipped example is run as written: the only warning it may print is that its map
    has more cells than its budget (a campaign of costly evaluations). activations.yaml
    asked batches of 8 with 4 in flight, a warning on every run of it."""
    assert [w for w in spec_warnings(load_spec(path)) if not w.startswith("archive: ")] == []


def space_model(messages: list[dict[str, str]]) -> str:
    """A model that reads ``search_space`` from the prompt's data block and answers as many
    in-bounds configurations as asked (inactive conditional parameters are dropped by the proposer)."""
    prompt = messages[-1]["content"]
    data = json.loads(prompt[prompt.index("<data>") + 6 : prompt.index("</data>")])
    n = int(re.search(r"exactly (\d+)", prompt).group(1))
    rng = np.random.default_rng(abs(hash(prompt)) % 2**32)
    return json.dumps([{p["name"]: in_bounds(p, rng) for p in data["search_space"]} for _ in range(n)])


def in_bounds(param: dict[str, Any], rng: np.random.Generator) -> Any:
    """A random value of one parameter as ``SearchSpace.describe`` states it."""
    if "choices" in param:
        return param["choices"][int(rng.integers(len(param["choices"])))]
    if param.get("type") == "int":
        return int(rng.integers(param["low"], param["high"] + 1))
    values = [round(float(v), 4) for v in rng.uniform(param["low"], param["high"], param.get("size", 1))]
    return values if param.get("size", 1) > 1 else values[0]


@pytest.fixture(scope="module")
def model_server() -> Iterator[ChatServer]:
    with ChatServer(space_model) as server:
        yield server


def llm_options(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The options of every LLM proposer of ``spec``: its own, or its portfolio members'."""
    search = spec["search"]
    options = search.setdefault("options", {})
    if search["algorithm"].startswith("llm"):
        return [options]
    if search["algorithm"] != "portfolio":
        return []
    members = options.get("members") or {}
    return [opts for name, opts in members.items() if name.startswith("llm") and opts is not None]


def small(path: Path, server: ChatServer) -> dict[str, Any]:
    """The example at ``path`` cut to :data:`BUDGET` evaluations and tiny evaluator sizes, its
    language model (if any) the loopback server."""
    spec = yaml.safe_load(path.read_text())
    spec["search"]["budget"] = BUDGET
    spec["evaluator"].setdefault("config", {}).update(TINY.get(spec["evaluator"]["kind"], {}))
    for options in llm_options(spec):
        options.update(base_url=server.url, timeout_s=10, max_retries=0)
    return spec


@pytest.mark.parametrize("path", example_params())
def test_example_runs(path: Path, tmp_path: Path, model_server: ChatServer) -> None:
    spec = small(path, model_server)
    asked = len(model_server.requests)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    stats = api.run(spec, storage=url, executor="inline")
    rows = archive.open(url).campaign(spec["name"]).evaluations()
    statuses = Counter(r["status"] for r in rows)
    errors = Counter((r["error"] or "?").strip().splitlines()[-1] for r in rows if r["status"] == "failed")
    assert stats.finished == len(rows) == BUDGET
    assert statuses["done"] >= 0.75 * BUDGET, dict(errors)
    assert stats.elites >= 1
    if llm_options(yaml.safe_load(path.read_text())):  # the model was asked, and its candidates evaluated
        assert len(model_server.requests) > asked
        assert any(r["proposer"].startswith("llm") and not r["proposer"].endswith("-fallback")
                   and r["status"] == "done" for r in rows)
