"""The unit-cube encoding: round trips, conditions, integer and categorical cells."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from search.space import SearchSpace
from search.spec import parse_spec
from tests.conftest import quadratic_spec


def make_space() -> SearchSpace:
    data = quadratic_spec()
    data["space"] = {
        "temperature": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
        "sampler": {"type": "categorical", "choices": ["top_p", "min_p", "none"]},
        "top_p": {"type": "float", "low": 0.5, "high": 1.0, "when": {"sampler": "top_p"}},
        "min_p": {"type": "float", "low": 0.01, "high": 0.3, "when": {"sampler": ["min_p"]}},
        "layers": {"type": "int", "low": 1, "high": 8},
        "width": {"type": "int", "low": 16, "high": 1024, "log": True},
        "w": {"type": "float", "low": -1.0, "high": 1.0, "size": 3},
    }
    return SearchSpace(parse_spec(data).space)


SPACE = make_space()


@given(st.lists(st.floats(0, 1), min_size=SPACE.dim, max_size=SPACE.dim))
@settings(max_examples=200, deadline=None)
def test_decode_is_valid_and_encode_round_trips(u: list[float]) -> None:
    params = SPACE.decode(np.array(u))
    values, problems = SPACE.coerce(params)
    assert problems == []
    assert values == params
    again = SPACE.decode(SPACE.encode(params))
    assert again["sampler"] == params["sampler"] and again["layers"] == params["layers"]
    assert again["width"] == params["width"]
    assert np.isclose(again["temperature"], params["temperature"])
    assert np.allclose(again["w"], params["w"])


def test_conditions_leave_inactive_parameters_out() -> None:
    x = np.full(SPACE.dim, 0.5)
    slot = next(s for s in SPACE.slots if s.name == "sampler")
    x[slot.start] = 0.1  # first of three choices: top_p
    params = SPACE.decode(x)
    assert "top_p" in params and "min_p" not in params
    x[slot.start] = 0.9  # none
    params = SPACE.decode(x)
    assert "top_p" not in params and "min_p" not in params


def test_a_child_of_an_inactive_parent_is_inactive() -> None:
    """``SearchSpace.is_active``: a parameter is active when every condition's parent is
    active and matches (docs/campaigns.md, conditions). In a chain a → b (when a = x) → c
    (when b = u), a = y leaves b out, and so c, though c's own condition names only b."""
    data = quadratic_spec()
    data["space"] = {
        "a": {"type": "categorical", "choices": ["x", "y"]},
        "b": {"type": "categorical", "choices": ["u", "v"], "when": {"a": "x"}},
        "c": {"type": "float", "low": 0.0, "high": 1.0, "when": {"b": "u"}},
    }
    space = SearchSpace(parse_spec(data).space)
    assert not space.is_active("c", {"a": "y"})
    assert space.is_active("c", {"a": "x", "b": "u"})
    rows = space.decode_many(np.random.default_rng(0).uniform(size=(200, space.dim)))
    assert any(row["a"] == "y" for row in rows) and any("c" in row for row in rows)
    assert all(("b" in row) == (row["a"] == "x") and ("c" in row) == (row.get("b") == "u") for row in rows)
    _, problems = space.coerce({"a": "y", "c": 0.5})
    assert any(p.startswith("c: not active here") for p in problems)


def test_every_integer_gets_an_equal_share_of_the_cube() -> None:
    slot = next(s for s in SPACE.slots if s.name == "layers")
    x = np.full(SPACE.dim, 0.5)
    seen = []
    for u in np.linspace(0, 1, 8001):
        x[slot.start] = u
        seen.append(SPACE.decode(x)["layers"])
    counts = np.bincount(seen)[1:]
    assert len(counts) == 8 and counts.min() >= 990


def test_an_integer_encodes_to_the_centre_of_its_share() -> None:
    """u(v) = (v − low + 1/2) / n for a linear int (search/space.py's module docstring):
    1 … 4 encode to 0.125, 0.375, 0.625 and 0.875, the centres of their quarters, not
    their edges (which decode to the same integers, so a round trip cannot tell)."""
    from search.params import IntParam

    space = SearchSpace({"k": IntParam(type="int", low=1, high=4)})
    assert [float(space.encode({"k": v})[0]) for v in (1, 2, 3, 4)] == [0.125, 0.375, 0.625, 0.875]


def test_coerce_repairs_or_reports() -> None:
    point = {"temperature": "1.5", "sampler": "TOP_P", "top_p": 3.0, "layers": 2.6, "width": 64,
             "w": [0, 0, 0], "bogus": 1}
    _, problems = SPACE.coerce(point)
    assert any(p.startswith("bogus: unknown parameter") for p in problems)
    repaired, problems = SPACE.coerce(point, repair=True)
    assert problems == []
    assert repaired["sampler"] == "top_p" and repaired["top_p"] == 1.0 and repaired["layers"] == 3
    assert repaired["temperature"] == 1.5


def test_inactive_parameter_given_is_a_problem_without_repair() -> None:
    point = SPACE.decode(np.full(SPACE.dim, 0.1))
    point["min_p"] = 0.1
    _, problems = SPACE.coerce(point)
    assert any(p.startswith("min_p: not active here") for p in problems)


@given(st.lists(st.lists(st.floats(-0.5, 1.5), min_size=SPACE.dim, max_size=SPACE.dim), min_size=1, max_size=20))
@settings(max_examples=100, deadline=None)
def test_decode_many_is_decode_of_each_row(rows: list[list[float]]) -> None:
    xs = np.array(rows)
    assert SPACE.decode_many(xs) == [SPACE.decode(x) for x in xs]
    inactive = [p for p in SPACE.decode_many(xs) if p["sampler"] != "top_p"]
    assert all("top_p" not in p for p in inactive)  # conditions hold row by row


def test_a_log_float_at_the_cube_s_faces_is_its_bound_exactly() -> None:
    """exp(ln 0.1) is 0.10000000000000002: a log float at u = 0 or 1 had a bound's value
    plus a rounding error, shown and exported so and grouped apart from the bound itself."""
    data = quadratic_spec()
    data["space"] = {"temperature": {"type": "float", "low": 0.1, "high": 4.0, "log": True},
                     "v": {"type": "float", "low": 0.3, "high": 3.0, "log": True, "size": 2}}
    space = SearchSpace(parse_spec(data).space)
    low = space.decode(np.zeros(space.dim))
    high = space.decode(np.ones(space.dim))
    assert low == {"temperature": 0.1, "v": [0.3, 0.3]}
    assert high == {"temperature": 4.0, "v": [3.0, 3.0]}
    assert space.decode_many(np.zeros((2, space.dim))) == [low, low]


def test_an_unknown_key_close_to_a_parameter_offers_it() -> None:
    """A space key misspelt (``entropy_coeff``) left every initial point's ``entropy_coef``
    refused as unknown with the list alone, pointing nowhere near the typo."""
    data = quadratic_spec()
    data["space"] = {"entropy_coeff": {"type": "float", "low": 0.0, "high": 0.01},
                     "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}
    space = SearchSpace(parse_spec(data).space)
    problems = space.check_points([{"entropy_coef": 0.001, "lr": 0.001}], "search.initial_points")
    assert problems == ["search.initial_points.0.entropy_coef: unknown parameter (known: entropy_coeff, lr); "
                        "did you mean entropy_coeff?"]
    assert space.coerce({"zeta": 1, "lr": 0.001})[1] == ["zeta: unknown parameter (known: entropy_coeff, lr)"]
