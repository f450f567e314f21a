"""Inputs at the edges, found by trying what a user might write: each is taken as meant or
refused in one line, before anything is written.

- numbers as YAML 1.2 writes them (``1e-5``), which YAML 1.1 reads as strings;
- values no storage keeps (integers past 64 bits, NUL, lone surrogates) and conditions
  that can never hold, refused in the file;
- a measure far outside its range lands in the edge cell;
- ``--top`` and ``--limit`` past SQL's range mean "all"; a measure and a parameter of one
  name get distinct columns;
- the law refuses an "entropy" whose exp overflows, naming it;
- a Ray cluster that cannot serve the campaign (no such address, no GPU) is refused before
  the campaign is written.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from archive.law import LawFitError, fit_law
from archive.layout import CellLayout, MeasureAxis
from search import api
from search.spec import SpecError, load_spec, parse_spec
from tests.conftest import quadratic_spec
from tests.test_edges import assert_one_line_errors, campaign_rows, invoke


def refused(mutate: Any) -> list[str]:
    """The problems of the quadratic campaign changed by ``mutate`` (it must be refused)."""
    spec = quadratic_spec()
    mutate(spec)
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    return info.value.problems


def test_numbers_in_exponent_form_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "sci.yaml"
    text = yaml.safe_dump(quadratic_spec(), sort_keys=False)
    text = text.replace("timeout_s: 30", "timeout_s: 3e1")
    text = text.replace("space:\n", "space:\n  lr: {type: float, low: 1e-5, high: 1.0e-2, log: true}\n", 1)
    path.write_text(text)
    spec = load_spec(path)
    assert spec.resources.timeout_s == 30.0
    lr = spec.space["lr"]
    assert (lr.low, lr.high) == (1e-5, 1e-2)


def test_only_true_and_false_are_booleans(tmp_path: Path) -> None:
    """YAML 1.2's booleans: choices ``[on, off]`` had arrived as ``[True, False]`` (YAML 1.1),
    and ``when: {mode: on}`` matched ``True``."""
    path = tmp_path / "modes.yaml"
    text = yaml.safe_dump(quadratic_spec(), sort_keys=False)
    text = text.replace("space:\n", "space:\n  mode: {type: categorical, choices: [on, off, yes, no, n]}\n"
                                     "  gain: {type: float, low: 0, high: 1, when: {mode: on}}\n"
                                     "  flag: {type: categorical, choices: [true, false]}\n", 1)
    path.write_text(text)
    spec = load_spec(path)
    assert spec.space["mode"].choices == ["on", "off", "yes", "no", "n"]
    assert spec.space["gain"].when == {"mode": "on"}
    assert spec.space["flag"].choices == [True, False]


@pytest.mark.parametrize(("mutate", "line"), [
    (lambda s: s["space"].update(n={"type": "int", "low": 0, "high": 10**23}),
     "space.n.high: must be an integer between -2**63 and 2**63 - 1"),
    (lambda s: s["evaluator"].update(config={"seed": 2**64}), "evaluator.config.seed: must be an integer between"),
    (lambda s: s["space"].update(c={"type": "categorical", "choices": ["a\x00b", "c"]}),
     "space.c.choices.0: must not contain a NUL character"),
    (lambda s: s["space"].update(c={"type": "categorical", "choices": ["\ud800", "c"]}),
     "space.c.choices.0: must not contain a lone surrogate"),
    (lambda s: s["space"].update(c={"type": "categorical", "choices": [1, 2]},
                                 d={"type": "float", "low": 0, "high": 1, "when": {"c": True}}),
     "space.d.when.c: True is not one of [1, 2]"),
    (lambda s: s["space"].update(c={"type": "categorical", "choices": ["x", "y"]},
                                 d={"type": "float", "low": 0, "high": 1, "when": {"c": []}}),
     "space.d.when.c: an empty list: the parameter would never be active"),
])
def test_values_no_storage_keeps_and_conditions_that_never_hold_are_refused(mutate: Any, line: str) -> None:
    problems = refused(mutate)
    assert any(p.startswith(line) for p in problems), problems


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    result = invoke("run", str(tmp_path), "--storage", f"sqlite:///{tmp_path / 'a.db'}")
    assert assert_one_line_errors(result) == [f"error: {tmp_path}: a directory, not a campaign file"]  # named once


def test_a_pipe_or_a_device_is_named_as_one(tmp_path: Path) -> None:
    """``atlas run /dev/zero`` or a named pipe said ``no such file``; they are there."""
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        result = invoke("run", str(path), "--storage", f"sqlite:///{tmp_path / 'a.db'}")
        assert assert_one_line_errors(result) == [
            f"error: {path}: not a regular file (a pipe or a device), not a campaign file"]
    assert not (tmp_path / "a.db").exists()


def test_a_measure_far_outside_its_range_lands_in_the_edge_cell() -> None:
    layout = CellLayout("grid", [MeasureAxis("ma", 0.0, 1.0, 5), MeasureAxis("mb", 0.0, 1.0, 5)])
    far = np.array([[1e20, 1e20], [-1e20, 1e20], [1e18, 0.5], [0.5, -1e300], [1e12, 0.5], [0.3, 0.7]])
    assert layout.index_of(far).tolist() == [24, 4, 22, 10, 22, 8]
    # the proposers' pyribs archive puts them there too (its own index_of wraps 1e12 round)
    assert layout.make_archive(solution_dim=1).index_of(far).tolist() == [24, 4, 22, 10, 22, 8]


def test_top_and_limit_past_sqls_range_mean_all(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    api.run(quadratic_spec(search__budget=10), storage=db, executor="inline")
    huge = str(10**20)
    elites = invoke("elites", "quad", "--storage", db, "--top", huge, "--format", "json")
    assert elites.exit_code == 0, elites.output
    assert len(yaml.safe_load(elites.stdout)) > 0
    failures = invoke("failures", "quad", "--storage", db, "--limit", huge)
    assert failures.exit_code == 0, failures.output


def same_names(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return {"objective": params["a"], "measures": {"a": params["a"], "cell": params["b"]}}


def test_a_measure_named_as_a_parameter_or_column_gets_its_own_label(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    spec = quadratic_spec(search__budget=10, measures=[{"name": "a", "low": 0, "high": 1, "bins": 3},
                                                       {"name": "cell", "low": 0, "high": 1, "bins": 3}])
    spec["evaluator"]["target"] = "tests.test_input_edges:same_names"
    api.run(spec, storage=db, executor="inline")
    result = invoke("elites", "quad", "--storage", db, "--format", "csv")
    header = next(csv.reader(io.StringIO(result.stdout)))
    assert header == ["cell", "evaluation_id", "objective", "measures.a", "measures.cell", "params.a", "b", "seq",
                      "proposer"]
    table = invoke("elites", "quad", "--storage", db)
    assert "measures.a" in table.stdout and "params.a" in table.stdout


def test_the_law_names_an_entropy_whose_exp_overflows() -> None:
    with pytest.raises(LawFitError, match="H reaches 1000, where exp"):
        fit_law([1.0, 500.0, 1000.0], [1.0, 0.5, 0.0], measure="H")


def test_an_address_nothing_answers_at_is_refused_before_writing(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(search__budget=4)))
    result = invoke("run", str(path), "--storage", f"sqlite:///{db}", "--address", "127.0.0.1:1")
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in assert_one_line_errors(result)[0]
    assert campaign_rows(db) == 0


@pytest.mark.usefixtures("ray_cluster")
def test_a_cluster_without_the_resources_asked_for_is_refused_before_writing(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    spec = quadratic_spec(search__budget=4, resources={"timeout_s": 30, "num_gpus": 1})
    with pytest.raises(Exception, match="ask for 1 of 'GPU' each but the Ray cluster has 0"):
        api.run(spec, storage=f"sqlite:///{db}", executor="ray")
    assert campaign_rows(db) == 0 and not db.exists()  # refused before the storage file was made
    spec["resources"]["num_gpus"] = 0  # corrected: the same name runs, no "different spec"
    assert api.run(spec, storage=f"sqlite:///{db}", executor="ray").finished == 4


def test_cma_mae_minimising_without_threshold_min_is_warned() -> None:
    from search.spec import spec_warnings

    def warned(objective: dict[str, str], options: dict[str, Any]) -> bool:
        spec = parse_spec(quadratic_spec(objective=objective, search__algorithm="cma-mae", search__options=options))
        return any(w.startswith("search.options.threshold_min: not set") for w in spec_warnings(spec))

    assert warned({"name": "loss", "direction": "minimize"}, {})
    assert not warned({"name": "loss", "direction": "minimize"}, {"threshold_min": -10.0})
    assert not warned({"name": "score", "direction": "maximize"}, {})
    spec = parse_spec(quadratic_spec(objective={"name": "loss", "direction": "minimize"},
                                     search__algorithm="cma-mae"))
    (line,) = [w for w in spec_warnings(spec) if w.startswith("search.options.threshold_min")]
    assert "a minimised loss below 0;" in line  # not "below -0" (minus the default offset 0.0)


@pytest.mark.parametrize(("mutate", "line"), [
    (lambda s: s.update(archive=None), "archive: must be a mapping (got null)"),
    (lambda s: s["space"].update(y={"low": 0, "high": 1}), "space.y: must name its 'type'"),
    (lambda s: s["space"].update(y={"type": "bool"}),
     "space.y: 'type' must be one of 'float', 'int', 'categorical', not 'bool'"),
])
def test_pydantics_wording_is_the_files(mutate: Any, line: str) -> None:
    assert refused(mutate) == [line]


def test_fail_fast_may_change_when_the_campaign_is_run_again(tmp_path: Path) -> None:
    """The fail-fast error's advice (`search.fail_fast: 0 turns this check off`) works on the
    campaign it stopped: fail_fast is a run limit, like the budget, not part of its identity."""
    from search.scheduler import CampaignFailing

    db = f"sqlite:///{tmp_path / 'a.db'}"
    spec = quadratic_spec(search__budget=12, search__batch_size=2, search__max_in_flight=2, search__fail_fast=3)
    spec["evaluator"]["target"] = "tests.support.evaluators:always_fails"
    with pytest.raises(CampaignFailing):
        api.run(spec, storage=db, executor="inline")
    spec["search"]["fail_fast"] = 0
    assert api.run(spec, storage=db, executor="inline").counts["failed"] == 12
    import archive

    with archive.open(db) as handle:
        assert handle.campaign("quad").record.spec["search"]["fail_fast"] == 0
    spec["search"]["seed"] = 4  # anything else still makes it another campaign
    with pytest.raises(Exception, match=r"different spec \(changed: search.seed\)"):
        api.run(spec, storage=db, executor="inline")


def one_cell(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return {"objective": params["a"], "measures": {"ma": 0.5}}


def test_a_one_measure_map_of_a_single_elite_is_drawn(tmp_path: Path) -> None:
    """pyribs' 1-D heatmap squeezed a single elite's index to 0-d and raised after the run."""
    import archive

    db = f"sqlite:///{tmp_path / 'a.db'}"
    spec = quadratic_spec(search__budget=3, search__algorithm="random",
                          measures=[{"name": "ma", "low": 0, "high": 1, "bins": 4}])
    spec["evaluator"]["target"] = "tests.test_input_edges:one_cell"
    api.run(spec, storage=db, executor="inline")
    with archive.open(db) as handle:
        assert handle.campaign("quad").map(tmp_path / "m.png").stat().st_size > 1000


@pytest.mark.parametrize("choices", [[0, False], [1, True], [1, 1.0]])
def test_choices_python_holds_equal_are_refused(choices: list[Any]) -> None:
    problems = refused(lambda s: s["space"].update(c={"type": "categorical", "choices": choices}))
    assert problems[0].startswith("space.c.choices: choices must be distinct: ")


def test_migrate_says_what_it_did(tmp_path: Path) -> None:
    """A fresh storage's schema is created, not "up to date"; a second run finds it so."""
    from archive.engine import head_revision

    db = f"sqlite:///{tmp_path / 'a.db'}"
    first, second = invoke("migrate", "--storage", db), invoke("migrate", "--storage", db)
    assert first.exit_code == 0 and f"the schema created (revision {head_revision()})" in first.stdout
    assert f"the schema is up to date (revision {head_revision()})" in second.stdout


def test_sqlite_url_options_are_refused_before_writing(tmp_path: Path) -> None:
    """`?mode=ro` was warned about by SQLAlchemy, then ignored, and the run wrote the file."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(search__budget=4)))
    db = tmp_path / "a.db"
    result = invoke("run", str(path), "--storage", f"sqlite:///{db}?mode=ro", "--executor", "inline")
    assert "a SQLite storage takes no URL options (got mode=ro)" in assert_one_line_errors(result)[0]
    assert not db.exists()
