"""The examples' elite-map axes cover what their runs measure, and no more than twice that.

A value outside a measure's [low, high] is clipped into the edge cell (archive/layout.py), so
an axis narrower than the measured range draws those evaluations at the wrong value: the
entropy_rl example's runs whose entropy bonus blew the entropy up to 2.0-2.2 nats sat in its
1.1-1.2 column. An axis much wider than it leaves most of the map unreachable.

:data:`MEASURED` is the range each example's run spanned (`atlas export`, 2026-12-05, 2 cores):
decoding.yaml at budget 400 (inline), activations.yaml at budget 160 (local Ray, two runs), entropy_rl.yaml
at budget 16 (local Ray). Entropies are nats; the vocabulary of the built-in arithmetic models
has 14 tokens (at most ln 14 = 2.64) and the post-activation histogram 64 bins (ln 64 = 4.16).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from search.spec import load_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MEASURED: dict[str, dict[str, tuple[float, float]]] = {
    "decoding": {"mean_entropy": (0.0, 2.32), "distinct_2": (0.246, 0.982)},
    "activations": {"post_activation_entropy": (2.42, 4.04), "predictive_entropy": (0.114, 0.356)},
    "entropy_rl": {"final_entropy": (0.354, 2.17), "answer_diversity": (0.387, 0.982)},
}
#: The measured span must fill at least this share of the axis.
MIN_SHARE = 0.5


def axis_cases() -> list[pytest.param]:
    return [pytest.param(stem, name, span, id=f"{stem}-{name}")
            for stem, measures in MEASURED.items() for name, span in measures.items()]


@pytest.mark.parametrize(("stem", "name", "span"), axis_cases())
def test_an_examples_axis_holds_every_measured_value(stem: str, name: str, span: tuple[float, float]) -> None:
    measure = {m.name: m for m in load_spec(EXAMPLES / f"{stem}.yaml").measures}[name]
    assert measure.low <= span[0] and span[1] <= measure.high, (
        f"{stem}.yaml: {name} [{measure.low}, {measure.high}] clips the measured {span[0]}..{span[1]}")


@pytest.mark.parametrize(("stem", "name", "span"), axis_cases())
def test_an_examples_axis_is_not_mostly_unreachable(stem: str, name: str, span: tuple[float, float]) -> None:
    measure = {m.name: m for m in load_spec(EXAMPLES / f"{stem}.yaml").measures}[name]
    share = (span[1] - span[0]) / (measure.high - measure.low)
    assert share >= MIN_SHARE, f"{stem}.yaml: the measured {name} fills {share:.0%} of [{measure.low}, {measure.high}]"


def test_the_entropy_rl_example_validates_each_law_checkpoint_on_every_held_out_prompt() -> None:
    """``atlas law entropy-rl`` fits each run over its checkpoints. On the default 16 held-out
    prompts x 4 samples a checkpoint's accuracy has a standard error of about 0.06, as large as
    the whole run's gain: three runs of the example fitted R² 0.29, 0.37, 0.81 there, and 0.57,
    0.86, 0.91 on all 256 (3-6 s more per evaluation of 40-60 s), whose last checkpoint is then
    the objective itself."""
    config = load_spec(EXAMPLES / "entropy_rl.yaml").evaluator.config
    assert config.get("law_eval_prompts") == config["num_eval_prompts"]
