"""Campaign file validation: every bad field is named with its path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from search.cli import app
from search.spec import SpecError, load_spec, parse_spec
from tests.conftest import quadratic_spec


def problems(data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def test_valid_spec_parses_with_defaults() -> None:
    spec = parse_spec(quadratic_spec())
    assert spec.search.budget == 60
    assert spec.archive.type == "grid"
    assert spec.resources.max_retries == 2
    assert spec.objective.direction == "maximize"


def test_budget_must_be_positive() -> None:
    assert problems(quadratic_spec(search__budget=0)) == ["search.budget: must be > 0"]


def test_resources_name_what_is_wrong() -> None:
    assert problems(quadratic_spec(resources={"custom": {"CPU": 1}})) == [
        "resources.custom: 'CPU' is not a custom resource name (use num_cpus, num_gpus, memory_mb)"]
    assert problems(quadratic_spec(resources={"custom": {"a100": 0}})) == [
        "resources.custom: a100: the amount must be > 0"]
    assert problems(quadratic_spec(resources={"memory_mb": -1})) == ["resources.memory_mb: must be > 0.0"]


def test_unknown_field_is_named() -> None:
    data = quadratic_spec()
    data["search"]["budgett"] = 3
    assert "search.budgett: is not a known field" in problems(data)


def test_bad_name_and_missing_section() -> None:
    data = quadratic_spec(name="Has Spaces")
    del data["measures"]
    found = problems(data)
    assert any(p.startswith("name: must match") for p in found)
    assert "measures: is required" in found


def test_log_scale_needs_positive_low() -> None:
    data = quadratic_spec()
    data["space"]["t"] = {"type": "float", "low": 0.0, "high": 2.0, "log": True}
    assert any("space.t" in p and "log scale needs low > 0" in p for p in problems(data))


def test_high_must_exceed_low() -> None:
    data = quadratic_spec()
    data["space"]["a"] = {"type": "float", "low": 1.0, "high": 0.5}
    assert any(p.startswith("space.a") and "must be > low" in p for p in problems(data))


def test_a_float_range_or_a_measure_range_of_zero_width_is_refused() -> None:
    """``search.params.check_bounds``: a float's and a measure's range need high > low,
    strictly (a float low + u (high − low) of width 0 is a constant; a measure's cell
    ⌊bins·(m − low) / (high − low)⌋ would divide by 0), named by its field; an int's
    low == high is one value, allowed."""
    data = quadratic_spec()
    data["space"]["a"] = {"type": "float", "low": 1.0, "high": 1.0}
    assert problems(data) == ["space.a: high (1.0) must be > low (1.0)"]
    data = quadratic_spec()
    data["measures"][1].update(low=2.0, high=2.0)
    assert problems(data) == ["measures.1: high (2.0) must be > low (2.0)"]
    data = quadratic_spec()
    data["space"]["a"] = {"type": "int", "low": 3, "high": 3}
    assert parse_spec(data).space["a"].low == 3


def test_a_measure_of_zero_width_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """``atlas run`` with a measure whose low == high: one line naming the field, exit 2, and
    no storage file is created."""
    data = quadratic_spec()
    data["measures"][0].update(low=1.0, high=1.0)
    spec = tmp_path / "zero.yaml"
    spec.write_text(yaml.safe_dump(data))
    db = tmp_path / "atlas.db"
    result = CliRunner().invoke(app, ["run", str(spec), "--storage", f"sqlite:///{db}"])
    assert result.exit_code == 2
    assert "measures.0: high (1.0) must be > low (1.0)" in result.output
    assert not db.exists()


def test_condition_must_name_an_earlier_parameter_and_a_real_choice() -> None:
    data = quadratic_spec()
    data["space"] = {
        "top_p": {"type": "float", "low": 0.5, "high": 1.0, "when": {"sampler": "top_p"}},
        "sampler": {"type": "categorical", "choices": ["top_p", "min_p"]},
    }
    assert any("must be a parameter defined before it" in p for p in problems(data))
    data["space"] = {
        "sampler": {"type": "categorical", "choices": ["top_p", "min_p"]},
        "top_p": {"type": "float", "low": 0.5, "high": 1.0, "when": {"sampler": "top_k"}},
    }
    assert any("'top_k' is not one of" in p for p in problems(data))


def test_a_condition_on_a_numeric_parent_must_be_able_to_hold() -> None:
    """An int parent's value an integer in its range (``true`` is not 1); no condition on
    a float or a vector, which never equals one value."""
    data = quadratic_spec()
    cases = {
        "true": ({"type": "int", "low": 0, "high": 1}, True, "True is not an integer in [0, 1]"),
        "out of range": ({"type": "int", "low": 0, "high": 1}, 7, "7 is not an integer in [0, 1]"),
        "a fraction": ({"type": "int", "low": 0, "high": 3}, [1, 2.5], "2.5 is not an integer in [0, 3]"),
        "a float": ({"type": "float", "low": 0.0, "high": 1.0}, 0.5, "a float parameter is continuous"),
        "a vector": ({"type": "float", "low": 0.0, "high": 1.0, "size": 2}, 0.5, "a float parameter is continuous"),
    }
    for case, (parent, value, reason) in cases.items():
        data["space"] = {"n": parent, "y": {"type": "float", "low": 0.0, "high": 1.0, "when": {"n": value}}}
        assert any(p.startswith("space.y.when.n") and reason in p for p in problems(data)), case
    data["space"] = {"n": {"type": "int", "low": 0, "high": 3}, "y": {"type": "float", "low": 0.0, "high": 1.0,
                                                                      "when": {"n": [1, 2.0]}}}
    parse_spec(data)


def test_every_problem_across_the_space_and_the_measures_is_reported_at_once() -> None:
    """They came one at a time (the first ``when`` naming a later parameter; fixed, the next;
    then a name that is not an identifier; …), each needing another run to show."""
    data = quadratic_spec()
    data["space"] = {"c": {"type": "categorical", "choices": ["x", "y"], "when": {"c": "x"}},
                     "d": {"type": "float", "low": 0.0, "high": 1.0, "when": {"e": "x"}},
                     "e": {"type": "categorical", "choices": ["x", "y"], "when": {"d": 0.5}},
                     "my-x": {"type": "float", "low": 0.0, "high": 1.0}}
    data["measures"] = [{"name": "m", "low": 0.0, "high": 1.0, "bins": 4000}] * 2
    assert problems(data) == [
        "measures: names must be distinct",
        "measures: a grid of 4000 x 4000 = 16000000 cells is too large (the product of the bins must be <= 1000000; "
        "use fewer bins or a cvt archive)",
        "space.c.when: 'c' must be a parameter defined before it",
        "space.d.when: 'e' must be a parameter defined before it",
        "space.e.when.d: a float parameter is continuous and never equals one value: condition on an int or a "
        "categorical",
        "space.my-x: a parameter name is an ASCII identifier (letters a-z and A-Z, digits and _, not starting with a "
        "digit)"]
    data["space"] = {"a": {"type": "float", "low": 0.0, "high": 1.0, "when": {"z": 1}}}
    data["measures"] = [{"name": "m", "low": 0.0, "high": 1.0, "bins": 4}]
    assert problems(data) == ["space.a.when: 'z' must be a parameter defined before it"]  # one alone, as before


def test_unknown_algorithm_and_cvt_without_cells() -> None:
    data = quadratic_spec(archive={"type": "cvt"})
    data["search"]["algorithm"] = "hill-climb"
    found = problems(data)
    assert any(p.startswith("search.algorithm: unknown algorithm 'hill-climb'") for p in found)
    assert any(p.startswith("archive") and "needs cells" in p for p in found)


def test_initial_points_are_checked_against_the_space() -> None:
    data = quadratic_spec()
    data["search"]["initial_points"] = [{"a": 0.5, "b": 2.0}, {"a": 0.1, "c": 1}]
    found = problems(data)
    assert "search.initial_points.0.b: 2.0 is outside [0.0, 1.0]" in found
    assert any(p.startswith("search.initial_points.1.c: unknown parameter") for p in found)


def test_python_kind_needs_a_target() -> None:
    data = quadratic_spec(evaluator={"kind": "python"})
    assert problems(data) == ["evaluator.target: kind python needs a target 'package.module:function' (a module on "
                              "PYTHONPATH, ':', then the function or class it defines)"]


def test_files_bad_yaml_and_missing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(quadratic_spec()))
    assert load_spec(good).name == "quad"


def test_spec_hash_ignores_budget_only() -> None:
    base = parse_spec(quadratic_spec())
    assert base.spec_hash() == parse_spec(quadratic_spec(search__budget=999)).spec_hash()
    assert base.spec_hash() != parse_spec(quadratic_spec(search__seed=4)).spec_hash()


@pytest.mark.parametrize("name", [".", "..", "...", ".hidden", "-x"])
def test_a_name_may_not_start_with_a_dot_or_a_dash(name: str) -> None:
    """A name is a file name too (the map's: ``..`` is a parent folder, and matplotlib took
    ``...png`` for a name without a suffix) and an argument (``atlas resume -x`` is an option)."""
    assert any(p.startswith("name: must match") and repr(name) in p for p in problems(quadratic_spec(name=name)))
    assert parse_spec(quadratic_spec(name="a..b-c_d.e")).name == "a..b-c_d.e"
