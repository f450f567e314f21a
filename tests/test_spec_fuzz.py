"""Fuzzing the campaign loader: any malformed file is a SpecError that names a path,
never a traceback, and nothing is written to storage. Example counts stay modest: the
whole file runs in seconds."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from search.spec import YAML12_EXPONENT_FLOAT, SpecError, load_spec, load_yaml, parse_spec
from tests.conftest import quadratic_spec
from tests.support.spec_mutations import mutations, paths

BASE = quadratic_spec()
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


ALL_PATHS = [p for p in paths(BASE) if p]


def at(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


NUMBER_PATHS = [p for p in ALL_PATHS if type(at(BASE, p)) in (int, float)]


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def replaced(path: tuple, value: Any) -> dict:
    data = copy.deepcopy(BASE)
    at(data, path[:-1])[path[-1]] = value
    return data


def mutated() -> st.SearchStrategy[dict]:
    return mutations(BASE, LEAVES)


@given(mutated())
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_malformed_specs_fail_cleanly(data: dict) -> None:
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        assert exc.problems and all(":" in p for p in exc.problems)
        return
    assert spec.search.budget > 0  # whatever survived validation is a usable spec


@given(st.text(max_size=200))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_text_files_fail_cleanly(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "c.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except SpecError as exc:
        assert exc.problems
    else:  # pragma: no cover - random text is never a whole campaign
        raise AssertionError("random text parsed as a campaign")


@given(st.sampled_from(ALL_PATHS), st.sampled_from([math.nan, math.inf, -math.inf]))
@settings(max_examples=60, deadline=None)
def test_a_non_finite_number_anywhere_is_named_at_its_path(path: tuple, value: float) -> None:
    try:
        parse_spec(replaced(path, value))
    except SpecError as exc:
        assert f"{dotted(path)}: must be a finite number" in exc.problems
    else:
        raise AssertionError(f"{value} at {dotted(path)} was accepted")


@given(st.sampled_from(NUMBER_PATHS), st.booleans())
@settings(max_examples=40, deadline=None)
def test_a_boolean_never_passes_for_a_number(path: tuple, value: bool) -> None:
    try:
        parse_spec(replaced(path, value))
    except SpecError as exc:
        assert any(p.startswith(f"{dotted(path)}: must be") and "(got a boolean)" in p for p in exc.problems)
    else:
        raise AssertionError(f"{value} at {dotted(path)} was accepted")


YAML_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def exponent_floats(data: Any) -> list[str]:
    """The strings in ``data`` (keys too) that YAML 1.2 reads as numbers and YAML 1.1 as text."""
    if isinstance(data, str):
        return [data] if YAML12_EXPONENT_FLOAT.match(data) else []
    if isinstance(data, dict):
        return [s for k, v in data.items() for s in exponent_floats(k) + exponent_floats(v)]
    if isinstance(data, list):
        return [s for v in data for s in exponent_floats(v)]
    return []


@given(YAML_DATA, st.booleans())
@settings(max_examples=100, deadline=None)
def test_the_loader_reads_what_safe_load_reads(data: Any, flow: bool) -> None:
    """The same as ``yaml.safe_load``, but for YAML 1.2's exponent floats (below)."""
    assume(not exponent_floats(data))
    text = yaml.safe_dump(data, default_flow_style=flow)
    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(("text", "number"), [("1e5", 1e5), ("1e-5", 1e-5), ("-2E+2", -200.0), (".5e3", 500.0),
                                              ("1.0e5", 1e5), ("1_000e1", 10000.0)])
def test_the_loader_reads_yaml_1_2_exponents_as_numbers(text: str, number: float) -> None:
    assert yaml.safe_load(f"x: {text}") == {"x": text}  # YAML 1.1: a string
    assert load_yaml(f"x: {text}") == {"x": number}
    assert load_yaml(f"x: '{text}'") == {"x": text}  # quoted: still a string


def test_yaml_with_python_tags_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo hacked']\n")
    try:
        load_spec(path)
    except SpecError as exc:
        assert "not valid YAML" in exc.problems[0]
    else:
        raise AssertionError("a python tag was accepted")
    assert yaml.safe_dump(BASE)  # the base spec itself round-trips
