"""``map-elites``' variation options: which variation each selects, that the chosen one
reads them (``sigma`` is gaussian's step), that every option it does not use is warned
about, and that campaigns stored when ``sigma`` alone selected ``iso_line`` still resume."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from ribs.emitters import GaussianEmitter, IsoLineEmitter

from search.proposers import build_proposer
from search.proposers.checkpoint import loads
from search.proposers.ribs_emitters import ISO_SIGMA_BEFORE_V4, MapElitesProposer, default_variation
from search.spec import parse_spec, spec_warnings
from tests.conftest import quadratic_spec
from tests.test_checkpoints import Campaign, FakeHistory, context, legacy, split_and_resume
from tests.test_iso_line_resume import CURRENT, as_version, go_on_together


def children(options: dict[str, Any], steps: int = 3) -> list[list[float]]:
    """The points ``map-elites`` under ``options`` asks after ``steps`` batches (seed 0)."""
    run = Campaign(build_proposer("map-elites", context(options)))
    for _ in range(steps):
        run.step()
    return [p.x.tolist() for p in run.proposer.ask(4)]


# -- which variation the options select --------------------------------------------------
@pytest.mark.parametrize("options, variation", [
    ({}, "adaptive"), ({"sigmas": [0.1]}, "adaptive"), ({"discount": 0.5}, "adaptive"),
    ({"sigma": 0.1}, "gaussian"), ({"sigma": 0.1, "emitters": 2}, "gaussian"),
    ({"iso_sigma": 0.1}, "iso_line"), ({"line_sigma": 0.1}, "iso_line"), ({"emitters": 2}, "iso_line"),
    ({"sigma": 0.1, "iso_sigma": 0.1}, "iso_line"), ({"sigma": 0.1, "variation": "adaptive"}, "adaptive"),
])
def test_the_step_options_select_the_variation_whose_step_they_are(options: dict[str, Any], variation: str) -> None:
    if "variation" not in options:
        assert default_variation(options) == variation
    assert build_proposer("map-elites", context(options)).variation == variation


@pytest.mark.parametrize("options", [{"variation": "iso_line"}, {"emitters": 2}])
def test_iso_line_without_step_options_takes_the_reference_steps(options: dict[str, Any]) -> None:
    """../shared/REFERENCE.md §7 (Iso+LineDD): σ_iso = 0.01, σ_line = 0.2, the defaults of
    pymap_elites and of pyribs' IsoLineEmitter: single-step ``iso_line`` with neither
    ``iso_sigma`` nor ``line_sigma`` builds every emitter with those two steps."""
    import inspect

    p = build_proposer("map-elites", context(options))
    assert p.variation == "iso_line" and [type(e) for e in p.emitters] == [IsoLineEmitter] * options.get("emitters", 1)
    assert {(float(e.iso_sigma), float(e.line_sigma)) for e in p.emitters} == {(0.01, 0.2)}
    pyribs = inspect.signature(IsoLineEmitter).parameters
    assert (pyribs["iso_sigma"].default, pyribs["line_sigma"].default) == (0.01, 0.2)


def test_sigma_alone_is_gaussians_step_and_changes_the_children() -> None:
    """``{sigma: 0.1}`` and ``{sigma: 0.5}`` once both ran iso_line at its defaults (the
    same children for the same seed); now each is a GaussianEmitter of that σ."""
    for sigma in (0.1, 0.5):
        p = build_proposer("map-elites", context({"sigma": sigma}))
        assert [type(e) for e in p.emitters] == [GaussianEmitter]
        assert float(p.emitters[0].sigma) == sigma
    small, large = children({"sigma": 0.1}), children({"sigma": 0.5})
    assert small != large
    assert small == children({"variation": "gaussian", "sigma": 0.1})
    assert small != children({"variation": "iso_line"})


def test_a_step_option_that_selects_iso_line_is_read() -> None:
    assert children({"sigma": 0.1, "iso_sigma": 0.1}) == children({"iso_sigma": 0.1})  # sigma: ignored, warned
    assert children({"iso_sigma": 0.1}) != children({"iso_sigma": 0.3})


# -- every option the variation does not use: one warning -----------------------------------
def _warning(key: str, variation: str, users: str) -> str:
    return f"search.options.{key}: the {variation} variation does not use it ({users}); it is ignored"


@pytest.mark.parametrize("options, warnings", [
    ({"variation": "gaussian", "iso_sigma": 0.1}, [_warning("iso_sigma", "gaussian", "only iso_line does")]),
    ({"variation": "gaussian", "line_sigma": 0.1},
     [_warning("line_sigma", "gaussian", "only iso_line and adaptive do")]),
    ({"variation": "adaptive", "iso_sigma": 0.3}, [_warning("iso_sigma", "adaptive", "only iso_line does")]),
    ({"variation": "adaptive", "sigma": 0.3}, [_warning("sigma", "adaptive", "only gaussian does")]),
    ({"variation": "adaptive", "emitters": 2}, [_warning("emitters", "adaptive", "only iso_line and gaussian do")]),
    ({"variation": "iso_line", "sigma": 0.3}, [_warning("sigma", "iso_line", "only gaussian does")]),
    ({"sigma": 0.1, "iso_sigma": 0.1}, [_warning("sigma", "iso_line", "only gaussian does")]),
    ({"sigma": 0.1, "sigmas": [0.1], "discount": 0.5},
     [_warning("sigmas", "gaussian", "only adaptive does"), _warning("discount", "gaussian", "only adaptive does")]),
    ({"variation": "iso_line", "sigmas": [0.3]}, [_warning("sigmas", "iso_line", "only adaptive does")]),
    ({}, []), ({"sigma": 0.1}, []), ({"sigma": 0.1, "emitters": 2}, []),
    ({"iso_sigma": 0.1, "line_sigma": 0.3, "emitters": 2}, []),
    ({"variation": "adaptive", "sigmas": [0.1], "line_sigma": 0.3, "discount": 0.5}, []),
    ({"variation": "adapt", "sigma": 1}, []),  # refused when built, not warned about
])
def test_each_option_the_variation_does_not_use_is_warned_about(options: dict[str, Any],
                                                                  warnings: list[str]) -> None:
    assert MapElitesProposer.option_warnings(options) == warnings


def test_the_warning_reaches_the_campaign_file_check() -> None:
    spec = quadratic_spec()
    spec["search"].update(algorithm="map-elites", options={"variation": "gaussian", "iso_sigma": 0.1})
    assert _warning("iso_sigma", "gaussian", "only iso_line does") in spec_warnings(parse_spec(spec))
    spec["search"].update(algorithm="portfolio", options={"members": {"map-elites": {"sigma": 0.1,
                                                                                     "iso_sigma": 0.1}}})
    assert ("search.options.members.map-elites.sigma: the iso_line variation does not use it (only gaussian "
            "does); it is ignored") in spec_warnings(parse_spec(spec))


def test_cma_me_and_cma_mae_warn_about_map_elites_step_options() -> None:
    for name in ("cma-me", "cma-mae"):
        got = build_proposer(name, context({"sigma": 0.1})).option_warnings({"sigma": 0.1, "iso_sigma": 0.1})
        assert got == [f"search.options.{k}: {name} does not use it; it is ignored" for k in ("sigma", "iso_sigma")]


# -- stored campaigns resume --------------------------------------------------------------
def _old_sigma_campaign(steps: int = 4) -> Campaign:
    """A ``{sigma: 0.5}`` campaign as the code before wrote it: iso_line at its defaults then
    (σ_iso 0.02, :data:`ISO_SIGMA_BEFORE_V4`; its checkpoint of version 3 or older)."""
    run = Campaign(build_proposer("map-elites", context({"variation": "iso_line", "iso_sigma": ISO_SIGMA_BEFORE_V4})))
    for _ in range(steps):
        run.step()
    return run


@pytest.mark.parametrize("version", [3, 1])
def test_a_checkpoint_of_sigma_alone_under_iso_line_resumes_as_iso_line(
        version: int, caplog: pytest.LogCaptureFixture) -> None:
    """Its checkpoint says iso_line (version 1: the default then): it goes on exactly as the
    uninterrupted iso_line run, at the steps it ran with (σ_iso 0.02), with a warning, not
    refused as another variation."""
    caplog.set_level(logging.WARNING, "entropy_atlas.checkpoint")
    run = _old_sigma_campaign()
    assert loads(run.proposer.state(), "map-elites", CURRENT).fields["variation"] == "iso_line"
    state = as_version(run.proposer.state(), version)
    resumed = build_proposer("map-elites", context({"sigma": 0.5}))
    resumed.restore(state, FakeHistory(run.finished, []))
    assert resumed.variation == "iso_line" and [type(e) for e in resumed.emitters] == [IsoLineEmitter]
    assert float(resumed.emitters[0].iso_sigma) == ISO_SIGMA_BEFORE_V4
    go_on_together(run, resumed)
    assert loads(resumed.state(), "map-elites", CURRENT).fields["variation"] == "iso_line"
    again = build_proposer("map-elites", context({"sigma": 0.5}))  # from the version-4 checkpoint it wrote
    again.restore(resumed.state(), FakeHistory(run.finished, []))
    assert again.variation == "iso_line" and float(again.emitters[0].iso_sigma) == ISO_SIGMA_BEFORE_V4
    go_on_together(run, again)
    assert any("resumed as iso_line at its default steps (iso_sigma 0.02, line_sigma 0.2)" in r.getMessage()
               for r in caplog.records)


def test_a_legacy_pickle_of_sigma_alone_resumes_as_iso_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "entropy_atlas.checkpoint")
    run = _old_sigma_campaign()
    resumed = build_proposer("map-elites", context({"sigma": 0.5}))
    resumed.restore(legacy(random_left=0), FakeHistory(run.finished, []))
    assert resumed.variation == "iso_line" and [type(e) for e in resumed.emitters] == [IsoLineEmitter]
    assert float(resumed.emitters[0].iso_sigma) == ISO_SIGMA_BEFORE_V4 and len(resumed.ask(4)) == 4
    assert any("resumed as iso_line" in r.getMessage() for r in caplog.records)


def test_a_new_sigma_campaign_resumes_exactly_as_gaussian(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "entropy_atlas.checkpoint")
    run, resumed, in_flight = split_and_resume("map-elites", {"sigma": 0.5})
    assert resumed.variation == "gaussian" and isinstance(resumed.emitters[0], GaussianEmitter)
    for p in (run.proposer, resumed):
        p.tell(in_flight)
    a, b = run.proposer.ask(4), resumed.ask(4)
    assert np.array_equal([p.x for p in a], [p.x for p in b])
    assert not caplog.records
