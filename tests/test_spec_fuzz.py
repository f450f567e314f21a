"""Fuzzing the campaign loader: any malformed file is a SpecError that names a path,
never a traceback, and nothing is written to storage."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search.spec import SpecError, load_spec, parse_spec
from tests.conftest import quadratic_spec

BASE = quadratic_spec()
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), st.text(max_size=20),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += paths(v, (*prefix, i))
    return out


ALL_PATHS = [p for p in paths(BASE) if p]


@st.composite
def mutated(draw: st.DrawFn) -> dict:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            if draw(st.booleans()):
                node[path[-1]] = draw(LEAVES)
            elif isinstance(node, dict):
                node.pop(path[-1], None)
        except (KeyError, IndexError, TypeError):
            continue
    return data


@given(mutated())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_malformed_specs_fail_cleanly(data: dict) -> None:
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        assert exc.problems and all(":" in p for p in exc.problems)
        return
    assert spec.search.budget > 0  # whatever survived validation is a usable spec


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_arbitrary_text_files_fail_cleanly(tmp_path_factory: Any, text: str) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "c.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except SpecError as exc:
        assert exc.problems
    else:  # pragma: no cover - random text is never a whole campaign
        raise AssertionError("random text parsed as a campaign")


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
