"""A sampler parameter fixed in ``evaluator.config.defaults`` that no sampler of the campaign
reads (``defaults: {sampler: top_p, top_h: 0.5}``, ``defaults: {mirostat_tau: 5}`` with no
Mirostat anywhere) had been taken without a word: the rule the space's parameters are held
to (:mod:`workers.decoding.space_reads`) now holds for the defaults too. And a mistyped
``ead_sampler`` default beside an ``ead`` choice is refused with the name meant, as the
space's choices are, not found by each EAD evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.decoding.test_decoding_space_checks import FLOAT, campaign, choices, run
from workers import registry
from workers.decoding.samplers import SAMPLERS, TRUNCATIONS

TEMPERATURE = {"type": "float", "low": 0.5, "high": 2.0}


def test_a_default_no_sampler_reads_is_refused_with_the_file_before_anything_is_written(tmp_path: Path) -> None:
    path, db = campaign(tmp_path, "toph", {"defaults": {"sampler": "top_p", "top_h": 0.5}},
                        {"temperature": TEMPERATURE}), tmp_path / "atlas.db"
    code, lines = run(path, db)
    assert code == 2 and lines == [
        f"error: {path}: evaluator.config.defaults.top_h: read only by sampler top_h, but the space has no sampler "
        "parameter and every evaluation uses sampler top_p (evaluator.config.defaults.sampler): it is never read; "
        "remove it, or set evaluator.config.defaults: {sampler: top_h}"]
    assert not db.exists()


def test_a_mirostat_default_with_no_mirostat_anywhere_is_refused_and_taken_beside_one() -> None:
    space = {"temperature": TEMPERATURE}
    assert registry.review("decoding", {"defaults": {"mirostat_tau": 5}}, None, space) == ([
        "evaluator.config.defaults.mirostat_tau: read only by samplers mirostat, mirostat_v2, but the space has no "
        "sampler parameter and every evaluation uses sampler none (the default: evaluator.config.defaults sets no "
        "sampler): it is never read; remove it, or set evaluator.config.defaults: {sampler: mirostat}"], [])
    with_choices = {**space, "sampler": choices("top_p", "top_k")}
    assert registry.review("decoding", {"defaults": {"mirostat_tau": 5}}, None, with_choices) == ([
        "evaluator.config.defaults.mirostat_tau: read only by samplers mirostat, mirostat_v2, but the evaluations "
        "use only samplers top_p, top_k (space.sampler's choices): it has no effect in any evaluation; add mirostat "
        "to space.sampler.choices or remove it from evaluator.config.defaults"], [])
    # a reader among the samplers: the default shapes its rows, taken silently (as an unconditioned space parameter)
    assert registry.review("decoding", {"defaults": {"mirostat_tau": 5}}, None,
                           {**space, "sampler": choices("top_p", "mirostat_v2")}) == ([], [])
    assert registry.review("decoding", {"defaults": {"sampler": "mirostat", "mirostat_tau": 5}}, None, space) == (
        [], [])


def test_a_conditional_sampler_lets_the_default_sampler_read_the_default() -> None:
    """Where ``space.sampler`` is itself conditional, the default sampler runs the evaluations
    it is inactive in: a default it reads is taken."""
    space = {"mode": choices("a", "b"), "sampler": choices("top_p", when={"mode": "a"})}
    config = {"defaults": {"sampler": "top_h", "top_h": 0.5}}
    assert registry.review("decoding", config, None, space)[0] == []
    (line,) = registry.check("decoding", {"defaults": {"top_h": 0.5}}, None, space)
    assert line.startswith("evaluator.config.defaults.top_h: read only by sampler top_h, but the evaluations use "
                           "only samplers top_p, none (space.sampler's choices)")


@pytest.mark.parametrize("config, sampler, refused", [
    ({"defaults": {"top_p": 0.95}}, choices("ead"), True),                                  # ead steps with none
    ({"defaults": {"top_p": 0.95, "ead_sampler": "top_p"}}, choices("ead"), False),
    ({"defaults": {"top_p": 0.95}}, choices("ead", "none"), True),
    ({"defaults": {"top_p": 0.95, "ead_sampler": "top_p"}}, choices("none", "top_k"), True)])  # ead_sampler too
def test_ead_reads_a_truncations_default_through_its_step_sampler(config: dict, sampler: dict,
                                                                   refused: bool) -> None:
    found = registry.check("decoding", config, None, {"sampler": sampler})
    if not refused:
        assert found == []
        return
    assert found[0].startswith("evaluator.config.defaults.top_p: read only by sampler top_p")
    assert "ead_sampler" not in config["defaults"] or found[1].startswith(
        "evaluator.config.defaults.ead_sampler: read only by sampler ead, but the evaluations use only samplers "
        "none, top_k")


def test_a_default_the_space_searches_is_left_to_the_spaces_own_line() -> None:
    """The space's value stands in the default's place where it is drawn: only the space's line."""
    space = {"sampler": choices("top_p", "top_k"), "top_h": {**FLOAT, "when": {"sampler": "top_p"}}}
    found = registry.check("decoding", {"defaults": {"top_h": 0.5}}, None, space)
    assert [line.split(":")[0] for line in found] == ["space.top_h"]


def test_a_sampler_value_in_the_defaults_gets_the_name_meant() -> None:
    """``sampler: mirostat_v3`` is refused with the close name, as a space choice is; a mistyped
    ``ead_sampler`` beside an ``ead`` choice had been taken (checked only where the default
    sampler is ead) and each EAD evaluation failed."""
    (line,) = registry.check("decoding", {"defaults": {"sampler": "mirostat_v3"}}, None, {"temperature": TEMPERATURE})
    assert line == (f"evaluator.config.defaults: sampler must be one of {', '.join(SAMPLERS)}; got 'mirostat_v3'; "
                    "did you mean 'mirostat_v2'?")
    assert registry.check("decoding", {"defaults": {"ead_sampler": "top_kk"}}, None,
                          {"sampler": choices("ead", "top_p")}) == [
        f"evaluator.config.defaults: ead_sampler must be one of none, {', '.join(TRUNCATIONS)}; got 'top_kk'; "
        "did you mean 'top_k'?"]
