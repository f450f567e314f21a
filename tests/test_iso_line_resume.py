"""Single-step ``iso_line``'s σ_iso default went from 0.02 to 0.01 (the Iso+LineDD paper's
and pyribs', ../shared/REFERENCE.md §7) with ``map-elites`` checkpoint version 4. A
campaign stored before (checkpoint version 3 or older, or a legacy pickle) with no
``iso_sigma`` option ran at 0.02 and resumes at 0.02, on every later resume too (its
version-4 checkpoints say so in ``iso_sigma_default``); a campaign begun under version 4
runs and resumes at 0.01; an ``iso_sigma`` option is what it says in both."""

from __future__ import annotations

from typing import Any

import pytest

from search.proposers import build_proposer
from search.proposers.base import Proposer
from search.proposers.checkpoint import CheckpointError, dumps, loads
from search.proposers.ribs_emitters import GUIDED_SINCE, ISO_SIGMA_BEFORE_V4, MapElitesProposer
from tests.test_checkpoints import Campaign, FakeHistory, context, legacy

NEW_FIELDS = {4: ("iso_sigma_default",), 5: ("guided",)}  # the fields each version added since 3 (1-3: above)
CURRENT = (MapElitesProposer.checkpoint_version,)  # the version this Entropy Atlas writes


def as_version(state: bytes, version: int) -> bytes:
    """``state`` (this Entropy Atlas' ``map-elites`` checkpoint) as an earlier one wrote it:
    ``version``'s fields only (version 1: no ``variation`` and no bandit either)."""
    saved = loads(state, "map-elites", CURRENT)
    newer = {f for v, added in NEW_FIELDS.items() if v > version for f in added}
    if version < 2:
        newer.add("variation")
    fields = {k: v for k, v in saved.fields.items() if k not in newer}
    if version < GUIDED_SINCE:  # before version 5 every arm was pyribs' IsoLineEmitter
        fields["emitters"] = [{**e, "kind": "IsoLineEmitter"} if "LineEmitter" in e["kind"] else e
                              for e in fields["emitters"]]
    arrays = {k: v for k, v in saved.arrays.items() if version >= 2 or not k.startswith("bandit.")}
    return dumps("map-elites", version, fields, arrays, saved.requires)


def iso_sigmas(p: Proposer) -> list[float]:
    return [float(e.iso_sigma) for e in p.emitters]


def run_then_resume(run_options: dict[str, Any], options: dict[str, Any], version: int | None,
                    steps: int = 4) -> tuple[Campaign, Proposer]:
    """A campaign run under ``run_options`` for ``steps`` batches, its checkpoint written as
    ``version`` (None: as this Entropy Atlas writes it), restored under ``options``."""
    run = Campaign(build_proposer("map-elites", context(run_options)))
    for _ in range(steps):
        run.step()
    state = run.proposer.state()
    resumed = build_proposer("map-elites", context(options))
    resumed.restore(state if version is None else as_version(state, version), FakeHistory(run.finished, []))
    return run, resumed


def go_on_together(run: Campaign, resumed: Proposer, steps: int = 2) -> None:
    """Ask both ``steps`` times: the same children each time; each result told to both."""
    for _ in range(steps):
        a, b = run.proposer.ask(4), resumed.ask(4)
        assert [p.x.tolist() for p in a] == [p.x.tolist() for p in b]
        obs = run.evaluate(a)
        run.proposer.tell(obs)
        resumed.tell(obs)
        run.finished += obs


def resume_again(run: Campaign, resumed: Proposer, options: dict[str, Any]) -> Proposer:
    """``resumed``'s own checkpoint (this version's) restored once more under ``options``."""
    again = build_proposer("map-elites", context(options))
    again.restore(resumed.state(), FakeHistory(run.finished, []))
    return again


@pytest.mark.parametrize("version", [3, 2, 1])
@pytest.mark.parametrize("options", [{"variation": "iso_line"}, {"emitters": 2}, {"line_sigma": 0.3}])
def test_a_campaign_stored_before_version_4_resumes_at_the_step_it_ran_with(options: dict[str, Any],
                                                                            version: int) -> None:
    """The old code ran it at σ_iso 0.02: the resumed emitters are at 0.02 and propose what
    the uninterrupted run does, and so after a second resume from the version-4
    checkpoint the first resume wrote (not halved to 0.01 there)."""
    run, resumed = run_then_resume({**options, "iso_sigma": ISO_SIGMA_BEFORE_V4}, options, version)
    assert iso_sigmas(resumed) == [0.02] * options.get("emitters", 1)
    go_on_together(run, resumed)
    saved = loads(resumed.state(), "map-elites", CURRENT)
    assert saved.version == MapElitesProposer.checkpoint_version and saved.fields["iso_sigma_default"] == 0.02
    again = resume_again(run, resumed, options)
    assert iso_sigmas(again) == [0.02] * options.get("emitters", 1)
    go_on_together(run, again)


def test_a_legacy_pickle_of_iso_line_resumes_at_the_step_it_ran_with() -> None:
    run = Campaign(build_proposer("map-elites", context({"variation": "iso_line", "iso_sigma": 0.02})))
    for _ in range(4):
        run.step()
    resumed = build_proposer("map-elites", context({"variation": "iso_line"}))
    resumed.restore(legacy(random_left=0), FakeHistory(run.finished, []))
    assert iso_sigmas(resumed) == [0.02] and len(resumed.ask(4)) == 4
    assert loads(resumed.state(), "map-elites", CURRENT).fields["iso_sigma_default"] == 0.02


@pytest.mark.parametrize("options", [{"variation": "iso_line"}, {"emitters": 2}])
def test_a_campaign_begun_under_version_4_runs_and_resumes_at_the_reference_step(options: dict[str, Any]) -> None:
    run, resumed = run_then_resume(options, options, None)
    assert iso_sigmas(run.proposer) == iso_sigmas(resumed) == [0.01] * options.get("emitters", 1)
    assert loads(run.proposer.state(), "map-elites", CURRENT).fields["iso_sigma_default"] == 0.01
    go_on_together(run, resumed)
    again = resume_again(run, resumed, options)
    assert iso_sigmas(again) == [0.01] * options.get("emitters", 1)
    go_on_together(run, again)


@pytest.mark.parametrize("version", [None, 3, 1])
def test_an_iso_sigma_option_is_what_it_says_whatever_the_checkpoint(version: int | None) -> None:
    options = {"variation": "iso_line", "iso_sigma": 0.05, "emitters": 2}
    run, resumed = run_then_resume(options, options, version)
    assert iso_sigmas(run.proposer) == iso_sigmas(resumed) == [0.05, 0.05]
    go_on_together(run, resumed)
    assert iso_sigmas(resume_again(run, resumed, options)) == [0.05, 0.05]


def test_other_variations_write_no_iso_sigma_default_and_resume_as_before() -> None:
    for options in ({}, {"variation": "gaussian"}):
        ran = options or {"guided": False}  # the adaptive arms of a version-3 campaign ran unguided
        run, resumed = run_then_resume(ran, options, 3)
        assert "iso_sigma_default" not in loads(run.proposer.state(), "map-elites", CURRENT).fields
        go_on_together(run, resumed)


@pytest.mark.parametrize("bad", ["0.02", 0, -1, True, None])
def test_an_unreadable_iso_sigma_default_is_refused(bad: Any) -> None:
    run = Campaign(build_proposer("map-elites", context({"variation": "iso_line"})))
    run.step()
    saved = loads(run.proposer.state(), "map-elites", CURRENT)
    state = dumps("map-elites", 4, {**saved.fields, "iso_sigma_default": bad}, saved.arrays, saved.requires)
    with pytest.raises(CheckpointError, match=r"has iso_sigma_default .*, not a number > 0"):
        build_proposer("map-elites", context({"variation": "iso_line"})).restore(state, FakeHistory(run.finished, []))
