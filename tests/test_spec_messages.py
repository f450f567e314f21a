"""How a campaign file's mistakes are told: all at once, with the field or name meant, and
the fix (a newcomer's walkthrough: errors came in rounds, misspellings unlinked, PyYAML's text)."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest

from search.spec import SpecError, load_spec, parse_spec
from tests.conftest import quadratic_spec
from workers import registry

FLOAT = {"type": "float", "low": 0.0, "high": 1.0}


def problems(data: dict) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def lines_of(path: Path) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.lines()


# --------------------------------------------------------------------------- rounds


def test_a_parameter_that_fails_does_not_hold_back_the_cross_field_problems() -> None:
    """Before: only ``space.layers: high (1) must be > low (8)``; the measures' names and the
    condition's value came on the next run."""
    data = quadratic_spec()
    data["space"] = {"opt": {"type": "categorical", "choices": ["sgd", "adam"]},
                     "momentum": {"type": "float", "low": 0.0, "high": 0.99, "when": {"opt": "sgdd"}},
                     "layers": {"type": "int", "low": 8, "high": 1}}
    data["measures"][1]["name"] = "ma"
    assert problems(data) == [
        "space.layers: high (1) must be > low (8)",
        "space.momentum.when.opt: 'sgdd' is not one of ['sgd', 'adam']",
        "measures: names must be distinct"]


def test_conditions_on_a_parameter_that_fails_are_not_judged() -> None:
    """A condition on a parameter refused for its own reason is not called undefined: the
    parameter is there, only wrong."""
    data = quadratic_spec()
    data["space"] = {"n": {"type": "int", "low": 3, "high": 1},
                     "y": {**FLOAT, "when": {"n": 2}},
                     "z": {**FLOAT, "when": {"w": 1}}}
    assert problems(data) == ["space.n: high (1) must be > low (3)",
                              "space.z.when: 'w' must be a parameter defined before it"]


def test_a_measure_that_fails_does_not_hold_back_the_distinct_names() -> None:
    data = quadratic_spec(search__budget=0)
    data["measures"] = [{"name": "ma", "low": 0.0, "high": 1.0, "bins": 0},
                        {"name": "ma", "low": 0.0, "high": 1.0}]
    assert problems(data) == ["measures.0.bins: must be >= 1", "measures: names must be distinct",
                              "search.budget: must be > 0"]


# --------------------------------------------------------------------------- did you mean


def test_a_misspelt_field_is_one_line_naming_the_field_meant() -> None:
    """Before: ``space.opt.choices: is required`` and ``space.opt.choises: is not a known
    field``, unlinked; ``measures: is required`` with ``measure: is not a known field``."""
    data = quadratic_spec()
    data["space"]["opt"] = {"type": "categorical", "choises": ["sgd", "adam"]}
    data["measure"] = data.pop("measures")
    data["search"]["batch-size"] = data["search"].pop("batch_size")
    assert problems(data) == [
        "space.opt.choises: is not a known field; did you mean 'choices'?",
        "measure: is not a known field; did you mean 'measures'?",
        "search.batch-size: is not a known field; did you mean 'batch_size'?"]


def test_a_field_given_beside_its_misspelling_is_not_offered() -> None:
    data = quadratic_spec()
    data["space"]["opt"] = {"type": "categorical", "choices": ["x"], "choises": ["y"]}
    data["objective"]["nmae"] = "x"
    assert problems(data) == ["space.opt.choises: is not a known field",
                              "objective.nmae: is not a known field"]


def test_an_unknown_algorithm_close_to_one_names_it() -> None:
    (line,) = problems(quadratic_spec(search__algorithm="mapelites"))
    assert line.startswith("search.algorithm: unknown algorithm 'mapelites'; one of ")
    assert line.endswith("; did you mean 'map-elites'?")


def test_an_unknown_evaluator_kind_close_to_one_names_it() -> None:
    (line,) = registry.check("benchmrk", {}, None, {})
    assert line.endswith("; did you mean 'benchmark'?")


# --------------------------------------------------------------------------- python evaluators


def test_a_target_without_a_colon_is_told_how_to_write_it() -> None:
    """Before: ``evaluator: kind python needs target: 'package.module:function'``."""
    data = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators.quadratic"})
    assert problems(data) == ["evaluator.target: 'tests.support.evaluators.quadratic' has no ':'; "
                              "write 'tests.support.evaluators:quadratic'"]
    data = quadratic_spec(evaluator={"kind": "python", "target": "a b:c"})
    assert problems(data) == ["evaluator.target: 'a b:c' is not 'package.module:function' (the module on "
                              "PYTHONPATH, ':', then what it defines)"]
    data = quadratic_spec(evaluator={"kind": "benchmark", "target": "m:f"})
    assert problems(data) == ["evaluator.target: is only for kind python (kind is 'benchmark')"]


def test_a_function_targets_config_says_where_settings_go() -> None:
    """Before: ``evaluator.config.hidden: is not a known field``, no word of the rule."""
    assert registry.check("python", {"hidden": 64}, "tests.support.evaluators:quadratic", {"a": FLOAT}) == [
        "evaluator.config.hidden: is not a known field; a function target's config takes only batched (true: it "
        "is called with a list of params); to give your code settings, make target a class: its "
        "setup(config, ctx) gets the config"]


def test_a_missing_attribute_names_the_one_meant() -> None:
    (line,) = registry.check("python", {}, "tests.support.evaluators:quadratik", {})
    assert line == ("evaluator.target: 'tests.support.evaluators' has no attribute 'quadratik' "
                    "(target 'tests.support.evaluators:quadratik'); did you mean 'quadratic'?")


def test_a_module_that_raises_as_it_imports_names_its_own_line(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``importing 'brokenmod:evaluate' raised ZeroDivisionError: division by zero``,
    nowhere said; the innermost frame of the module's own code is named."""
    name = f"atlas_msg_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""\
        import json

        def ratio():
            return 1 / 0

        X = ratio()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert registry.check("python", {}, f"{name}:evaluate", {}) == [
        f"evaluator.target: importing '{name}:evaluate' raised ZeroDivisionError: division by zero "
        f"({name}.py, line 4)"]


# --------------------------------------------------------------------------- YAML


@pytest.mark.parametrize(("text", "line"), [
    ("name: x\nevaluator: {kind: python, target: m:f\nspace:\n  x: 1\n",
     "2:12: not valid YAML: expected ',' or '}', but got ':' (the flow mapping opened at line 2, column 12 is "
     "not closed by line 3, column 6)"),
    ('name: "abc\nspace: 1\n',
     "1:7: not valid YAML: found unexpected end of stream (the quoted string opened at line 1, column 7 is not "
     "closed by line 3, column 1)"),
    ("name: x\nspace:\n\tx: 1\n",
     "3:1: not valid YAML: a tab cannot start a token here; YAML indents with spaces only: replace the tab with "
     "spaces"),
    ("a:\n  b: 1\n- c\n",
     "3:1: not valid YAML: expected <block end>, but found '-' (in the block mapping that starts at line 1, "
     "column 1)"),
    ("name: x\nspace: a\x00\n", "2:9: not valid YAML: character #x0000 is not allowed (special characters are not "
                                "allowed)"),
])
def test_a_yaml_syntax_error_is_one_line_at_its_place(tmp_path: Path, text: str, line: str) -> None:
    """Before: PyYAML's text, ``while parsing a flow mapping in "<unicode string>", line 2,
    column 12: …`` with its excerpt, after ``(file):``."""
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert lines_of(path) == [f"{path}:{line}"]
