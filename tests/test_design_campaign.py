"""DESIGN.md's campaign file, as the design writes it, runs end to end: ``atlas run`` on
SQLite with the inline executor and a small budget (``--budget 8``), every evaluation
done, with one warning for its ``layers`` parameter (searched and stored; the decoding does
not read it). docs/campaigns.md's example (``layers`` and a vector ``w``) runs the same way."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import archive
from search import api
from search.spec import load_yaml
from tests.conftest import ROOT

#: The campaign file of DESIGN.md ("The campaign file"), verbatim.
DESIGN_YAML = """\
name: decoding-tradeoffs            # unique per storage; [a-z0-9._-]
evaluator:
  kind: decoding                    # a registered evaluator, or `python`
  config: {model: builtin:arith-tiny, task: arithmetic, samples_per_prompt: 4}
  # kind: python
  # target: my_pkg.my_module:evaluate   # user code on PYTHONPATH
space:                              # name -> parameter, in order
  temperature: {type: float, low: 0.2, high: 2.0, log: true}
  sampler: {type: categorical, choices: [top_p, min_p, top_h, typical, eta, mirostat]}
  top_p: {type: float, low: 0.5, high: 1.0, when: {sampler: top_p}}
  layers: {type: int, low: 1, high: 8}
objective: {name: accuracy, direction: maximize}
measures:                           # the behaviour descriptors that span the elite map
  - {name: mean_entropy, low: 0.0, high: 4.0, bins: 20}
  - {name: distinct_2, low: 0.0, high: 1.0, bins: 20}
archive: {type: grid}               # or {type: cvt, cells: 1024}
search:
  algorithm: map-elites             # map-elites | cma-me | cma-mae | random | bo | qd-bo | optuna-tpe | optuna-cmaes | optuna-nsga2 | llm | portfolio
  options: {}                       # algorithm-specific
  budget: 500                       # evaluations in total, across resumes
  batch_size: 8                     # candidates asked at a time
  max_in_flight: 16                 # evaluations running at once
  seed: 0
  initial_points:                   # optional: evaluated first, as given (baselines, known configs)
    - {temperature: 1.0, sampler: top_p, top_p: 0.9}
resources: {num_cpus: 1, num_gpus: 0, timeout_s: 900, max_retries: 2}
"""  # noqa: E501 (the file as DESIGN.md writes it)
BUDGET = 8
UNREAD = "not a decoding parameter; the decoding evaluator does not read it (it is searched and stored, with no " \
         "effect on decoding)"


def campaigns_md_example() -> str:
    """The first YAML block of docs/campaigns.md: its campaign file."""
    text = (ROOT / "docs" / "campaigns.md").read_text()
    start = text.index("```yaml\n") + len("```yaml\n")
    return text[start : text.index("```", start)]


def test_designs_campaign_file_runs_to_its_budget_with_every_evaluation_done(tmp_path: Path) -> None:
    """It was refused before anything ran: ``error: design.yaml: space.layers: is not a
    decoding parameter (known: ...)``, exit 2."""
    spec = tmp_path / "design.yaml"
    spec.write_text(DESIGN_YAML)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    done = subprocess.run([sys.executable, "-m", "search.cli", "run", str(spec), "--budget", str(BUDGET),
                           "--executor", "inline", "--storage", url, "--map", str(tmp_path / "map.png")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stderr.splitlines() if "space.layers" in line] == [
        f"warning: space.layers: {UNREAD}"]
    rows = sorted(archive.open(url).campaign("decoding-tradeoffs").evaluations(), key=lambda r: r["seq"])
    assert len(rows) == BUDGET and {r["status"] for r in rows} == {"done"}
    assert rows[0]["proposer"] == "initial"
    assert rows[0]["params"] == {"temperature": 1.0, "sampler": "top_p", "top_p": 0.9, "layers": 5}
    assert all(1 <= r["params"]["layers"] <= 8 for r in rows)  # searched and stored with each evaluation


def test_the_campaigns_md_example_runs_the_same_way(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    data = load_yaml(campaigns_md_example())
    assert set(data["space"]) >= {"layers", "w"}
    spec_said: list[str] = []  # the file's own warnings (else logged on entropy_atlas.spec too)
    with caplog.at_level(logging.WARNING, logger="entropy_atlas"):
        stats = api.run(data, storage=sqlite_url, executor="inline", budget=BUDGET, on_warning=spec_said.append)
    assert stats.finished == BUDGET and stats.counts["done"] == BUDGET
    assert [w.split(":")[0] for w in spec_said] == ["archive"]  # 400 cells, a budget of 8
    assert [r.getMessage() for r in caplog.records if r.name == "entropy_atlas.spec"] == [
        f"space.layers: {UNREAD}", f"space.w: {UNREAD}"]
    rows = archive.open(sqlite_url).campaign(data["name"]).evaluations()
    assert all(len(r["params"]["w"]) == 16 for r in rows)


#: A campaign's own ``layers`` beside each other built-in evaluator's parameters, with the warning it gets.
OTHER_EVALUATORS = {
    "activation": ({"kind": "activation", "config": {"hidden": [8], "epochs": 1, "max_train": 200, "max_test": 100}},
                   {"activation": {"type": "categorical", "choices": ["relu", "elu"]}},
                   ["post_activation_entropy", "predictive_entropy"],
                   "not an activation evaluator parameter; the activation evaluator does not read it (it is "
                   "searched and stored, with no effect on training)"),
    "entropy_rl": ({"kind": "entropy_rl", "config": {"num_prompts": 8, "num_eval_prompts": 8, "eval_samples": 1,
                                                      "steps": 0, "law_checkpoints": 0}},
                   {"temperature": {"type": "float", "low": 0.8, "high": 1.2}},
                   ["final_entropy", "answer_diversity"],
                   "not a GRPO parameter; the entropy_rl evaluator does not read it (it is searched and stored, "
                   "with no effect on training)"),
}


@pytest.mark.parametrize("kind", sorted(OTHER_EVALUATORS))
def test_the_other_built_in_evaluators_take_a_campaigns_own_parameter_as_decoding_does(
        kind: str, sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """``activation`` and ``entropy_rl`` refused ``space.layers: is not … parameter`` before
    anything ran; now, as ``decoding``: one warning, every evaluation done, ``layers`` stored."""
    evaluator, space, measures, line = OTHER_EVALUATORS[kind]
    data = {"name": f"own-{kind}".replace("_", "-"), "evaluator": evaluator,
            "space": {**space, "layers": {"type": "int", "low": 1, "high": 8}},
            "measures": [{"name": m, "low": 0.0, "high": 5.0, "bins": 4} for m in measures],
            "search": {"algorithm": "random", "budget": 3, "batch_size": 3, "seed": 0}}
    spec_said: list[str] = []  # the file's own warnings (else logged on entropy_atlas.spec too)
    with caplog.at_level(logging.WARNING, logger="entropy_atlas"):
        stats = api.run(data, storage=sqlite_url, executor="inline", on_warning=spec_said.append)
    assert stats.counts["done"] == 3, archive.open(sqlite_url).campaign(data["name"]).failed_evaluations()
    assert [w.split(":")[0] for w in spec_said] == ["archive"]  # 16 cells, a budget of 3
    assert [r.getMessage() for r in caplog.records if r.name == "entropy_atlas.spec"] == [f"space.layers: {line}"]
    rows = archive.open(sqlite_url).campaign(data["name"]).evaluations()
    assert all(1 <= r["params"]["layers"] <= 8 for r in rows)
