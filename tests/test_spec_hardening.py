"""The campaign loader's hardening: repeated keys, alias bombs, encodings and sizes,
non-finite numbers, booleans posing as numbers, the elite map's and the timeout's bounds,
and the warnings of a valid but doubtful spec."""

from __future__ import annotations

import math
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from search import spec as spec_module
from search.spec import SpecError, load_spec, load_yaml, parse_spec, spec_warnings
from tests.conftest import quadratic_spec


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def file_problems(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "c.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return info.value.problems


def quad_yaml(**overrides: Any) -> str:
    return yaml.safe_dump(quadratic_spec(**overrides), sort_keys=False)


# --------------------------------------------------------------------------- the YAML reader


def test_a_repeated_key_is_refused_with_its_name_and_line(tmp_path: Path) -> None:
    text = quad_yaml() + "search: {budget: 5}\n"
    line = text.count("\n")
    found = file_problems(tmp_path, text)
    assert len(found) == 1
    assert f"line {line}: duplicate key 'search'" in found[0] and "first given on line" in found[0]
    assert file_problems(tmp_path, "name: a\nsearch: {budget: 1, budget: 2}\n") == [
        "(file): line 2: duplicate key 'budget' (first given on line 2)"]


def test_a_repeated_key_nested_deep_is_refused(tmp_path: Path) -> None:
    text = "space:\n  a: {type: float, low: 0.0, high: 1.0}\n  b:\n    type: float\n    low: 0.0\n    low: 0.5\n"
    assert file_problems(tmp_path, text) == ["(file): line 6: duplicate key 'low' (first given on line 5)"]


def test_merge_keys_still_override_without_being_repeats() -> None:
    text = "base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n"
    assert load_yaml(text) == yaml.safe_load(text) == {"base": {"x": 1, "y": 2}, "c": {"x": 3, "y": 2}}


def billion_laughs(levels: int = 9, width: int = 10, indent: str = "") -> str:
    """The classic alias bomb: level k holds ``width`` aliases of level k-1 (width**levels leaves)."""
    lines = [f"{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for k in range(1, levels):
        lines.append(f"{indent}l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def campaign_with_bomb(levels: int = 9) -> str:
    """A valid campaign whose free-form ``search.options`` hides an alias bomb."""
    text = quad_yaml(search__options={"bomb": "BOMB"})
    assert "    bomb: BOMB\n" in text
    return text.replace("    bomb: BOMB\n", billion_laughs(levels, indent="    "))


def test_an_alias_bomb_is_refused_quickly_in_little_memory(tmp_path: Path) -> None:
    bomb = billion_laughs()
    assert len(bomb.encode()) < 1024  # a 1 KB file that expands to 10**9 strings
    tracemalloc.start()
    began = time.perf_counter()
    try:
        found = file_problems(tmp_path, campaign_with_bomb())
        seconds = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seconds < 2.0
    assert peak < 50 * 1024 * 1024
    assert len(found) == 1 and "aliases expanded" in found[0]
    assert "aliases expanded" in file_problems(tmp_path, bomb)[0]


def test_an_alias_bomb_within_the_alias_limit_is_refused_too(tmp_path: Path) -> None:
    text = campaign_with_bomb(levels=7)  # 60 aliases, 10**7 nodes expanded
    assert text.count("*") <= spec_module.MAX_ALIASES
    assert "aliases expanded" in file_problems(tmp_path, text)[0]


def test_too_many_aliases_are_refused(tmp_path: Path) -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * (spec_module.MAX_ALIASES + 1)) + "]\n"
    assert file_problems(tmp_path, text) == [
        f"(file): line 2: more than {spec_module.MAX_ALIASES} aliases (*name); write the values out"]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    assert file_problems(tmp_path, "a: &a [1, *a]\n") == [
        "(file): line 1: an alias refers to a node that contains it"]


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    text = quad_yaml().replace("space:\n", "bounds: &unit {low: 0.0, high: 1.0}\nspace:\n", 1)
    data = load_yaml(text)
    assert data["bounds"] == {"low": 0.0, "high": 1.0}
    path = tmp_path / "ok.yaml"
    path.write_text("x: &x {type: float, low: 0.0, high: 1.0}\n" + quad_yaml())
    assert load_yaml(path.read_text())["x"]["type"] == "float"


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    found = file_problems(tmp_path, quad_yaml().encode() + b"# caf\xe9\n")
    assert len(found) == 1 and found[0].startswith("(file): not UTF-8 text (byte 0xe9")


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + quad_yaml().encode())
    assert load_spec(path).name == "quad"


def test_a_file_over_the_size_limit_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.truncate(spec_module.MAX_FILE_BYTES + 1)
    began = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert time.perf_counter() - began < 2.0
    assert info.value.problems[0].startswith("(file): larger than 10 MB")


def test_deep_nesting_is_a_spec_error(tmp_path: Path) -> None:
    assert file_problems(tmp_path, "a: " + "[" * 3000 + "]" * 3000 + "\n") == ["(file): nested too deeply"]


# --------------------------------------------------------------------------- NaN and infinity


@pytest.mark.parametrize(("overrides", "path"), [
    ({"archive": {"qd_offset": math.nan}}, "archive.qd_offset"),
    ({"resources": {"timeout_s": math.inf}}, "resources.timeout_s"),
    ({"search__options": {"sigma0": -math.inf}}, "search.options.sigma0"),
    ({"search__initial_points": [{"a": 0.5, "b": math.nan}]}, "search.initial_points.0.b"),
    ({"evaluator": {"kind": "python", "target": "tests.support.evaluators:quadratic",
                    "config": {"scale": [1.0, math.inf]}}}, "evaluator.config.scale.1"),
    ({"resources": {"custom": {"a100": math.nan}}}, "resources.custom.a100"),
])
def test_non_finite_numbers_are_named_wherever_they_are(overrides: dict[str, Any], path: str) -> None:
    assert problems(quadratic_spec(**overrides)) == [f"{path}: must be a finite number"]


def test_non_finite_choices_and_bounds_are_named_once() -> None:
    data = quadratic_spec()
    data["space"]["c"] = {"type": "categorical", "choices": ["a", math.nan]}
    data["measures"][0]["high"] = math.inf
    assert problems(data) == ["space.c.choices.1: must be a finite number", "measures.0.high: must be a finite number"]


def test_yaml_nan_and_inf_spellings_are_refused(tmp_path: Path) -> None:
    text = quad_yaml().replace("timeout_s: 30", "timeout_s: .inf")
    assert file_problems(tmp_path, text) == ["resources.timeout_s: must be a finite number"]
    text = quad_yaml(archive={"qd_offset": 0.5}).replace("qd_offset: 0.5", "qd_offset: .NaN")
    assert file_problems(tmp_path, text) == ["archive.qd_offset: must be a finite number"]
    text = quad_yaml(search__options={"sigma0": 0.5}).replace("sigma0: 0.5", "sigma0: -.inf")
    assert file_problems(tmp_path, text) == ["search.options.sigma0: must be a finite number"]


def test_the_string_nan_is_not_a_number() -> None:
    assert problems(quadratic_spec(archive={"qd_offset": "nan"})) == [
        "archive.qd_offset: must be a number (got a string)"]


# --------------------------------------------------------------------------- strict numbers


@pytest.mark.parametrize(("overrides", "line"), [
    ({"search__budget": True}, "search.budget: must be an integer (got a boolean)"),
    ({"search__seed": True}, "search.seed: must be an integer (got a boolean)"),
    ({"search__batch_size": True}, "search.batch_size: must be an integer (got a boolean)"),
    ({"resources": {"max_retries": False}}, "resources.max_retries: must be an integer (got a boolean)"),
    ({"resources": {"num_cpus": True}}, "resources.num_cpus: must be a number (got a boolean)"),
    ({"archive": {"qd_offset": False}}, "archive.qd_offset: must be a number (got a boolean)"),
    ({"search__budget": "60"}, "search.budget: must be an integer (got a string)"),
    ({"search__budget": 60.5}, "search.budget: must be an integer (got 60.5)"),
])
def test_booleans_and_strings_are_not_numbers(overrides: dict[str, Any], line: str) -> None:
    assert problems(quadratic_spec(**overrides)) == [line]


def test_booleans_are_not_bins_bounds_sizes_or_cells() -> None:
    data = quadratic_spec()
    data["measures"][0]["bins"] = False
    data["space"]["n"] = {"type": "int", "low": True, "high": 4}
    data["space"]["v"] = {"type": "float", "low": 0.0, "high": 1.0, "size": True}
    assert problems(data) == ["space.n.low: must be an integer (got a boolean)",
                              "space.v.size: must be an integer (got a boolean)",
                              "measures.0.bins: must be an integer (got a boolean)"]
    assert problems(quadratic_spec(archive={"type": "cvt", "cells": True})) == [
        "archive.cells: must be an integer (got a boolean)"]


def test_floats_take_integers_and_a_stored_spec_parses_again() -> None:
    data = quadratic_spec(resources={"num_cpus": 2, "timeout_s": 30, "memory_mb": 512})
    data["space"]["a"] = {"type": "float", "low": 0, "high": 1}
    data["measures"][0].update(low=0, high=1)
    spec = parse_spec(data)
    assert spec.resources.num_cpus == 2.0 and spec.space["a"].high == 1.0
    again = parse_spec(spec.model_dump(mode="json"))
    assert again == spec and again.spec_hash() == spec.spec_hash()


def test_a_cross_check_names_its_field_not_the_file() -> None:
    data = quadratic_spec()
    data["measures"][1]["name"] = "ma"
    assert problems(data) == ["measures: names must be distinct"]


# --------------------------------------------------------------------------- bounds


def test_a_grid_of_more_than_a_million_cells_is_refused() -> None:
    data = quadratic_spec()
    data["measures"][0]["bins"] = 1000
    data["measures"][1]["bins"] = 1001
    assert problems(data) == [
        "measures: a grid of 1000 x 1001 = 1001000 cells is too large (the product of the bins must be "
        "<= 1000000; use fewer bins or a cvt archive)"]
    data["measures"][1]["bins"] = 1000
    assert parse_spec(data).measures[1].bins == 1000


def test_cvt_cells_and_samples_are_bounded() -> None:
    assert problems(quadratic_spec(archive={"type": "cvt", "cells": 1_000_000})) == [
        "archive.cells: must be <= 100000"]
    assert problems(quadratic_spec(archive={"type": "cvt", "cells": 100, "samples": 2_000_000})) == [
        "archive.samples: must be <= 1000000"]
    assert problems(quadratic_spec(archive={"type": "cvt", "cells": 5000, "samples": 1000})) == [
        "archive.samples: must be >= cells (5000); k-means needs a sample per cell"]


def test_cvt_samples_default_to_at_least_the_cells() -> None:
    assert parse_spec(quadratic_spec(archive={"type": "cvt", "cells": 100})).archive.samples == 25_000
    assert parse_spec(quadratic_spec(archive={"type": "cvt", "cells": 100_000})).archive.samples == 100_000


@pytest.mark.parametrize(("timeout", "line"), [
    (1e12, "resources.timeout_s: must be <= 2592000.0"),
    (1e-7, "resources.timeout_s: must be >= 0.01"),
    (0, "resources.timeout_s: must be >= 0.01"),
])
def test_the_timeout_is_bounded(timeout: float, line: str) -> None:
    assert problems(quadratic_spec(resources={"timeout_s": timeout})) == [line]


def test_a_batch_past_a_million_is_refused() -> None:
    """A batch is asked (and a CMA-ES generation allocated) at once: cma-me with
    ``batch_size: 10**9`` had hung in its first ask."""
    search = {"algorithm": "cma-me", "budget": 20, "batch_size": 10**9, "max_in_flight": 10**9}
    assert problems(quadratic_spec(search=search)) == ["search.batch_size: must be <= 1000000"]
    search.update(batch_size=10**6, max_in_flight=10**6)
    assert parse_spec(quadratic_spec(search=search)).search.batch_size == 10**6


def test_more_than_a_million_in_flight_is_refused_where_the_budget_allows_them() -> None:
    """The first turn asks for ``max_in_flight`` evaluations before it writes one: with
    ``budget`` and ``max_in_flight`` 10**9 ``atlas run`` held 1.2 GB after 30 s with 0 rows,
    and went on growing. A budget within the bound bounds it already."""
    search = {"algorithm": "random", "budget": 10**9, "batch_size": 2, "max_in_flight": 10**9}
    assert problems(quadratic_spec(search=search)) == [
        "search.max_in_flight: must be <= 1000000 (got 1000000000): every evaluation in flight is asked for and "
        "held at once"]
    for fine in ({"max_in_flight": 10**6}, {"budget": 10**6}, {"budget": 50, "max_in_flight": 2**63 - 1}):
        assert parse_spec(quadratic_spec(search={**search, **fine})).search.algorithm == "random"


def test_the_timeout_bounds_themselves_are_fine() -> None:
    assert parse_spec(quadratic_spec(resources={"timeout_s": 0.01})).resources.timeout_s == 0.01
    assert parse_spec(quadratic_spec(resources={"timeout_s": 2_592_000})).resources.timeout_s == 2_592_000


# --------------------------------------------------------------------------- warnings


def test_a_plain_spec_has_no_warnings() -> None:
    assert spec_warnings(parse_spec(quadratic_spec())) == []


@pytest.mark.parametrize("width, moved", [(1e-7, "every point (or more than one cell)"), (2e-5, "5% of the points")])
def test_a_grid_measure_too_narrow_for_pyribs_epsilon_is_a_warning(width: float, moved: str) -> None:
    """A measure in [0, 1e-7], 4 bins: every elite landed in the top cell without a word
    (pyribs adds its epsilon, 1e-6, in the measure's units before dividing by the range)."""
    from archive.layout import CellLayout, MeasureAxis

    layout = CellLayout("grid", [MeasureAxis("ma", 0.0, width, 4)])
    if width < 1e-6:
        assert layout.index_of([[0.0], [width * 0.3], [width * 0.6]]).tolist() == [3, 3, 3]
    spec = parse_spec(quadratic_spec(measures=[{"name": "ma", "low": 0.0, "high": width, "bins": 4},
                                               {"name": "mb", "low": 0.0, "high": 1.0, "bins": 4}]))
    assert [w for w in spec_warnings(spec) if w.startswith("measures.")] == [
        f"measures.0: a range of {width:.3g} is too narrow for the grid: its cells are found as pyribs finds them, "
        f"⌊(bins·(m − low) + 1e-06) / (high − low)⌋, which moves {moved} up a cell; scale ma (or its range) to a "
        "width of 0.0001 or more"]
    wide = parse_spec(quadratic_spec(measures=[{"name": "ma", "low": 0.0, "high": 1e-4, "bins": 4}]))
    cvt = parse_spec(quadratic_spec(archive={"type": "cvt", "cells": 4, "samples": 100},
                                    measures=[{"name": "ma", "low": 0.0, "high": width}]))
    assert not [w for w in spec_warnings(wide) + spec_warnings(cvt) if w.startswith("measures.")]


def test_more_initial_points_than_the_budget_is_a_warning() -> None:
    points = [{"a": i / 20, "b": 0.5} for i in range(12)]
    spec = parse_spec(quadratic_spec(search__budget=10, search__batch_size=5, search__initial_points=points,
                                     measures=[{"name": "ma", "low": 0.0, "high": 1.0, "bins": 2},
                                               {"name": "mb", "low": 0.0, "high": 1.0, "bins": 2}]))
    assert spec_warnings(spec) == [
        "search.initial_points: 12 points but the budget is 10; only the first 10 are evaluated"]


def test_doubtful_batches_cells_bins_and_repeated_points_are_warnings() -> None:
    spec = parse_spec(quadratic_spec(
        search__budget=20, search__batch_size=32, search__max_in_flight=16,
        search__initial_points=[{"a": 0.5, "b": 0.5}, {"a": 0.1, "b": 0.2}, {"b": 0.5, "a": 0.5}],
        measures=[{"name": "ma", "low": 0.0, "high": 1.0, "bins": 50},
                  {"name": "mb", "low": 0.0, "high": 1.0, "bins": 1}]))
    assert spec_warnings(spec) == [
        "search.initial_points.2: the same as search.initial_points.0; it is evaluated twice",
        "search.batch_size: 32 but max_in_flight is 16; at most 16 are asked at a time",
        "archive: 50 cells but the budget is 20 evaluations; at most 40% of the map can be filled",
        "measures.1.bins: 1 bin; mb separates nothing on the map",
    ]
    cvt = parse_spec(quadratic_spec(search__budget=20, search__batch_size=30, search__max_in_flight=40,
                                    archive={"type": "cvt", "cells": 200}))
    assert spec_warnings(cvt) == [
        "search.batch_size: 30 is more than the budget (20)",
        "archive: 200 cells but the budget is 20 evaluations; at most 10% of the map can be filled",
    ]
