"""Every built-in proposer checks each of its options when it is built: a value of the
wrong type or out of range is an :class:`OptionError` that names the option's path in
the campaign file, never a bare ``ValueError``/``TypeError`` from deep inside a library
(which the command line would show as a traceback) or a failure at the first ask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from entropy_atlas.errors import AtlasError
from search.api import as_spec, checked_proposer
from search.cli import app
from search.proposers import BUILTIN, proposer_class
from search.proposers.base import OptionError
from tests.conftest import quadratic_spec

WRONG = ["abc", -1, 0, 1e9, 2.5, [1, "x"], [], [-1], {"a": 1}, None, True, ""]


def build(algorithm: str, options: dict[str, Any]) -> None:
    base = {"model": "m"} if algorithm.startswith("llm") else {}
    checked_proposer(as_spec(quadratic_spec(search__algorithm=algorithm, search__options={**base, **options})))


@pytest.mark.parametrize("algorithm", sorted(BUILTIN))
def test_a_wrong_option_value_is_refused_by_name_or_taken(algorithm: str) -> None:
    for key in proposer_class(algorithm).option_names:
        for value in WRONG:
            try:
                build(algorithm, {key: value})
            except OptionError as exc:
                assert str(exc).startswith(f"search.options.{key}"), (key, value, str(exc))
            except AtlasError as exc:  # refused with the file (a non-finite number, say)
                assert "search.options" in str(exc), (key, value, str(exc))


REFUSED = [
    ("map-elites", {"x0": [2, 2]}, "search.options.x0: must be 2 numbers in [0, 1]"),
    ("map-elites", {"random_init": -1}, "search.options.random_init: must be an integer >= 0"),
    ("map-elites", {"discount": 0}, "search.options.discount: must be a number > 0 and <= 1"),
    ("map-elites", {"variation": "gauss"}, "search.options.variation: must be one of adaptive, iso_line, gaussian"),
    ("cma-me", {"ranker": "best"}, "search.options.ranker: must be one of imp, 2imp, rd, 2rd, obj, 2obj"),
    ("cma-me", {"restart_rule": 0}, "search.options.restart_rule: must be no_improvement, basic or a number"),
    ("cma-me", {"selection_rule": "top"}, "search.options.selection_rule: must be one of mu, filter"),
    ("cma-mae", {"learning_rate": "fast"}, "search.options.learning_rate: must be a number > 0 and <= 1"),
    ("cma-mae", {"threshold_min": "low"}, "search.options.threshold_min: must be a number"),
    ("bo", {"num_restarts": 0}, "search.options.num_restarts: must be an integer >= 1"),
    ("bo", {"max_fit_points": -1}, "search.options.max_fit_points: must be an integer >= 0"),
    ("mo-bo", {"max_fit_points": 2.5}, "search.options.max_fit_points: must be an integer >= 0"),
    ("qd-bo", {"max_fit_points": "all"}, "search.options.max_fit_points: must be an integer >= 0"),
    ("mo-bo", {"raw_samples": "many"}, "search.options.raw_samples: must be an integer >= 1"),
    ("mo-bo", {"measures": ["zz"]}, "search.options.measures: must be a list of measures, each once, from ma, mb"),
    ("mo-bo", {"measure_directions": {"ma": "maximise"}}, "search.options.measure_directions: must map measures"),
    ("optuna-tpe", {"multivariate": "yes"}, "search.options.multivariate: must be true or false"),
    ("optuna-tpe", {"n_startup_trials": -1}, "search.options.n_startup_trials: must be an integer >= 0"),
    ("optuna-nsga2", {"population_size": 1}, "search.options.population_size: must be an integer >= 2"),
    ("qd-bo", {"kappa": -1}, "search.options.kappa: must be a number >= 0"),
    ("qd-bo", {"sail_batch": 0}, "search.options.sail_batch: must be an integer >= 1"),
    ("llm", {"max_requests": "lots"}, "search.options.max_requests: must be an integer >= 0"),
    ("llm", {"timeout_s": 0}, "search.options.timeout_s: must be a number > 0"),
    ("llm", {"model": 3}, "search.options.model: required"),
    ("portfolio", {"c": "high"}, "search.options.c: must be a number >= 0"),
    ("portfolio", {"members": {"map-elites": {"iso_sigma": -1}}},
     "search.options.members.map-elites.iso_sigma: must be a number > 0 (got -1)"),
    ("portfolio", {"members": {"map-elite": {}}}, "search.options.members.map-elite: unknown algorithm 'map-elite'"),
    ("portfolio", {"members": {"map-elites": {"bogus": 1}}},
     "search.options.members.map-elites: bogus not understood by map-elites"),
]


@pytest.mark.parametrize(("algorithm", "options", "message"), REFUSED,
                         ids=[f"{a}-{next(iter(o))}" for a, o, _ in REFUSED])
def test_an_option_out_of_range_is_refused_naming_its_path(algorithm: str, options: dict, message: str) -> None:
    with pytest.raises(OptionError) as refused:
        build(algorithm, options)
    assert str(refused.value).startswith(message), str(refused.value)


def test_the_command_line_shows_an_option_error_as_one_line_and_creates_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(quadratic_spec(search__options={"x0": [2, 2]})))
    db = tmp_path / "atlas.db"
    result = CliRunner().invoke(app, ["run", str(bad), "--storage", f"sqlite:///{db}", "--executor", "inline"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {bad}: search.options.x0: must be 2 numbers in [0, 1] (a point of the unit cube) (got [2, 2])"]
    assert not db.exists()


SIBLINGS = [  # an option of a sibling algorithm: taken (never read), with a warning
    ("map-elites", {"ranker": "imp"}, ["search.options.ranker: map-elites does not use it; it is ignored"]),
    ("cma-me", {"iso_sigma": "abc", "learning_rate": 0.1},
     ["search.options.iso_sigma: cma-me does not use it; it is ignored",
      "search.options.learning_rate: cma-me does not use it; it is ignored"]),
    ("optuna-cmaes", {"multivariate": "yes"},
     ["search.options.multivariate: optuna-cmaes does not use it; it is ignored"]),
    ("optuna-nsga2", {"n_startup_trials": 5},
     ["search.options.n_startup_trials: optuna-nsga2 does not use it; it is ignored"]),
    ("portfolio", {"members": {"map-elites": {"sigma0": 1}, "random": {}}},
     ["search.options.members.map-elites.sigma0: map-elites does not use it; it is ignored"]),
]


@pytest.mark.parametrize(("algorithm", "options", "warnings"), SIBLINGS, ids=[a for a, _, _ in SIBLINGS])
def test_a_siblings_option_is_taken_with_a_warning(algorithm: str, options: dict, warnings: list[str]) -> None:
    from search.spec import spec_warnings

    spec = as_spec(quadratic_spec(search__algorithm=algorithm, search__options=options))
    assert [w for w in spec_warnings(spec) if w.startswith("search.options")] == warnings
    checked_proposer(spec)  # a stored campaign that names one still resumes


def test_an_option_no_sibling_has_is_still_refused() -> None:
    with pytest.raises(OptionError, match=r"search\.options: ranker not understood by optuna-tpe"):
        build("optuna-tpe", {"ranker": "imp"})


def test_a_misspelt_option_says_the_option_meant() -> None:
    """An unknown option close to a known one names it, by the one "did you mean" rule
    (:mod:`entropy_atlas.names`: case and ``-``/``_`` ignored); several, each with its own;
    one close to none, none (``bogus`` below)."""
    with pytest.raises(OptionError) as one:
        build("map-elites", {"Iso-Sigma": 0.1})
    assert str(one.value).endswith("guided); did you mean 'iso_sigma'?"), one.value
    with pytest.raises(OptionError) as two:
        build("map-elites", {"sigmaa": 0.1, "iso_sigm": 0.02, "bogus": 1})
    assert str(two.value).endswith("guided); did you mean 'iso_sigma' for iso_sigm, 'sigma' for sigmaa?"), two.value
    with pytest.raises(OptionError) as other:
        build("bo", {"num_restart": 5})
    assert "did you mean 'num_restarts'?" in str(other.value)


ALL_AT_ONCE = [  # every bad option of one file, each its own line, in the order they are read
    ("map-elites", {"random_init": -1, "discount": 0, "bogus": 1},
     ["search.options: bogus not understood by map-elites (known: emitters, random_init, x0, variation, sigma, "
      "iso_sigma, line_sigma, sigmas, discount, guided)",
      "search.options.discount: must be a number > 0 and <= 1 (got 0)",
      "search.options.random_init: must be an integer >= 0 (got -1)"]),
    ("bo", {"num_restarts": 0, "raw_samples": "many"},
     ["search.options.num_restarts: must be an integer >= 1 (got 0)",
      "search.options.raw_samples: must be an integer >= 1 (got 'many')"]),
    ("portfolio", {"c": "high", "members": {"map-elites": {"iso_sigma": -1}, "bo": {"num_restarts": 0}}},
     ["search.options.c: must be a number >= 0 (got 'high')",
      "search.options.members.map-elites.iso_sigma: must be a number > 0 (got -1)",
      "search.options.members.bo.num_restarts: must be an integer >= 1 (got 0)"]),
]


@pytest.mark.parametrize(("algorithm", "options", "lines"), ALL_AT_ONCE, ids=[a for a, _, _ in ALL_AT_ONCE])
def test_every_bad_option_is_reported_at_once(algorithm: str, options: dict, lines: list[str]) -> None:
    with pytest.raises(OptionError) as refused:
        build(algorithm, options)
    assert sorted(refused.value.lines) == sorted(lines)


def test_a_check_across_options_waits_for_each_option_to_be_right() -> None:
    """``raw_samples`` below ``num_restarts`` is a check across the two: with ``num_restarts``
    itself refused, the default standing in for it would make a misleading second line."""
    with pytest.raises(OptionError) as refused:
        build("bo", {"num_restarts": -3, "raw_samples": 2})
    assert refused.value.lines == ["search.options.num_restarts: must be an integer >= 1 (got -3)"]
    with pytest.raises(OptionError) as refused:
        build("bo", {"num_restarts": 5, "raw_samples": 2})
    assert [line.split(":")[0] for line in refused.value.lines] == ["search.options.raw_samples"]


def test_the_command_line_shows_every_bad_option_and_creates_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(quadratic_spec(search__options={"x0": [2, 2], "random_init": -1})))
    db = tmp_path / "atlas.db"
    result = CliRunner().invoke(app, ["run", str(bad), "--storage", f"sqlite:///{db}", "--executor", "inline"])
    assert result.exit_code == 2, result.output
    assert sorted(result.stderr.strip().splitlines()) == [
        f"error: {bad}: search.options.random_init: must be an integer >= 0 (got -1)",
        f"error: {bad}: search.options.x0: must be 2 numbers in [0, 1] (a point of the unit cube) (got [2, 2])"]
    assert not db.exists()
