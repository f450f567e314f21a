"""One "did you mean" rule (:mod:`entropy_atlas.names`): the CLI's campaign hints, the
storage backend's, the spec's field and parameter hints and the samplers' all read it."""

from __future__ import annotations

import pytest

from entropy_atlas.names import close_names, closest_name, did_you_mean


def test_names_are_compared_without_case_or_dashes_and_offered_as_known_writes_them() -> None:
    assert closest_name("Top-P", ["top_p", "top_k"]) == "top_p"
    assert closest_name("temprature", ["temperature", "top_p"]) == "temperature"
    assert closest_name("zzz", ["temperature", "top_p"]) is None


def test_the_cutoff_decides_and_a_looser_one_is_the_callers_choice() -> None:
    assert closest_name("sqlit", ["sqlite", "postgresql"]) == "sqlite"  # ratio 0.91
    assert closest_name("postgres", ["sqlite", "postgresql"]) == "postgresql"  # ratio 0.89
    assert closest_name("psql", ["sqlite", "postgresql"]) is None
    assert closest_name("lr_rate", ["lr"]) is None  # ratio 0.44
    assert closest_name("lr_rate", ["lr"], cutoff=0.4) == "lr"


def test_several_close_names_come_closest_first_and_at_most_n() -> None:
    known = ["walk-class2", "walk-clash", "walk-class", "other"]
    assert close_names("walk-clas", known, 3) == ["walk-class", "walk-clash", "walk-class2"]
    assert close_names("walk-clas", known, 1) == ["walk-class"]
    assert close_names("WALK-CLASS", known, 2)[0] == "walk-class"


def test_did_you_mean_offers_another_name_only() -> None:
    assert did_you_mean("choises", ["choices", "low"]) == "; did you mean 'choices'?"
    assert did_you_mean("choices", ["choices", "low"]) == ""
    assert did_you_mean("zzz", ["choices", "low"]) == ""


@pytest.mark.parametrize("value", [None, 3, 0.5, ["top_p"]])
def test_a_value_that_is_not_a_string_gets_no_hint(value: object) -> None:
    assert did_you_mean(value, ["top_p", "3"]) == ""


def test_the_cli_and_the_storage_url_read_the_same_rule() -> None:
    """A campaign asked in another case is offered as stored (difflib on the raw names had
    rated ``WALK-BO`` against ``walk-bo`` at 0 and offered nothing)."""
    from archive.engine import _meant_backend
    from archive.store import known_campaigns_text

    assert known_campaigns_text("WALK-BO", ["walk-bo", "walk-me"]).startswith(": did you mean walk-bo?")
    assert _meant_backend("SQLite3x") == "sqlite"
