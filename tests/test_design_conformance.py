"""DESIGN.md's statements, checked as it writes them: the command table (each command, its
arguments and options, and ``--storage`` on every command), the algorithms the campaign
file names, the decoding parameters and config keys, the evaluator contract's example
run verbatim as a ``kind: python`` target, the export example's shape, and the archive's
tables and columns as a run leaves them in SQLite (WAL mode). The campaign file's own
example is ``tests/test_design_campaign.py``'s."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

import archive
from search import api, cli
from search.proposers import algorithm_problem
from workers import registry

#: DESIGN.md's command table: each command's arguments (in order) and the options it names.
COMMANDS: dict[str, tuple[list[str], set[str]]] = {
    "run": (["spec"], {"--storage", "--address", "--executor", "--name", "--budget"}),
    "resume": (["name"], set()),
    "submit": (["spec"], {"--address"}),
    "status": (["name"], set()),
    "elites": (["name"], {"--top", "--format"}),
    "export": (["name"], {"--out"}),
    "map": (["name"], {"--out"}),
}

#: ``search.algorithm``'s choices, as the campaign file's comment lists them.
ALGORITHMS = ["map-elites", "cma-me", "cma-mae", "random", "bo", "qd-bo", "optuna-tpe", "optuna-cmaes",
              "optuna-nsga2", "llm", "portfolio"]

#: The samplers and decoding parameters DESIGN.md names (transformers' GenerationConfig names).
SAMPLERS = ["none", "top_k", "top_p", "min_p", "typical", "epsilon", "eta", "top_h", "mirostat", "mirostat_v2", "ead"]
DECODING_SPACE: dict[str, dict[str, Any]] = {
    "sampler": {"type": "categorical", "choices": SAMPLERS},
    "temperature": {"type": "float", "low": 0.5, "high": 1.5},
    "top_k": {"type": "int", "low": 1, "high": 20},
    "top_p": {"type": "float", "low": 0.5, "high": 1.0},
    "min_p": {"type": "float", "low": 0.01, "high": 0.3},
    "typical_p": {"type": "float", "low": 0.2, "high": 1.0},
    "epsilon_cutoff": {"type": "float", "low": 0.0001, "high": 0.01},
    "eta_cutoff": {"type": "float", "low": 0.0001, "high": 0.01},
    "top_h": {"type": "float", "low": 0.1, "high": 1.0},
    "mirostat_tau": {"type": "float", "low": 1.0, "high": 5.0},
    "mirostat_eta": {"type": "float", "low": 0.05, "high": 0.5},
    "ead_threshold": {"type": "float", "low": 0.1, "high": 2.0},
    "ead_window": {"type": "int", "low": 1, "high": 4},
}
DECODING_CONFIG = {"model": "builtin:arith-tiny", "task": "arithmetic", "num_prompts": 4, "samples_per_prompt": 2,
                   "max_new_tokens": 8}

#: The evaluator contract's example (DESIGN.md, "The evaluator contract"), verbatim.
CONTRACT_EXAMPLE = '''\
def evaluate(params: dict, ctx) -> dict:
    # ctx.seed: int, ctx.device: "cpu" | "cuda:0", ctx.workdir: a scratch path
    return {"objective": 0.93,
            "measures": {"mean_entropy": 1.7, "distinct_2": 0.41},
            "metrics": {"tokens_per_s": 5120.0}}     # anything else worth keeping
'''

#: ``atlas export NAME --out run.json``'s example (DESIGN.md, "The command line"), verbatim.
EXPORT_EXAMPLE = """\
{"campaign": {"name": "…", "spec": {}, "status": "finished"},
 "evaluations": [{"id": 1, "seq": 0, "params": {}, "status": "done", "objective": 0.9,
                  "measures": {}, "metrics": {}, "cell": 17, "proposer": "map-elites",
                  "attempts": 1, "error": null}],
 "elites": [{"cell": 17, "evaluation_id": 1, "objective": 0.9, "measures": {}, "params": {}}]}
"""

#: DESIGN.md's data model: each table and the columns it names.
TABLES = {
    "campaigns": {"name", "spec", "spec_hash", "status", "lease_holder", "lease_expires"},
    "evaluations": {"campaign_id", "seq", "params", "x", "proposer", "status", "attempts", "objective", "measures",
                    "metrics", "cell", "error", "worker", "created_at", "started_at", "finished_at"},
    "elites": {"campaign_id", "cell", "evaluation_id", "objective"},
    "checkpoints": {"campaign_id", "proposer", "state"},
}

BUDGET = 3


def _params(command: str) -> tuple[list[str], set[str]]:
    """A command's arguments, in order, and every option string it takes."""
    group = typer.main.get_command(cli.app)
    params = group.commands[command].params  # type: ignore[attr-defined]
    args = [p.name for p in params if p.param_type_name == "argument"]
    opts = {o for p in params if p.param_type_name == "option" for o in p.opts}
    return args, opts


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_of_the_table_takes_its_arguments_and_options(command: str) -> None:
    args, opts = _params(command)
    want_args, want_opts = COMMANDS[command]
    assert args == want_args and want_opts <= opts


def test_status_takes_its_name_as_optional_and_submit_requires_its_address() -> None:
    group = typer.main.get_command(cli.app)
    status = {p.name: p for p in group.commands["status"].params}  # type: ignore[attr-defined]
    submit = {p.name: p for p in group.commands["submit"].params}  # type: ignore[attr-defined]
    assert not status["name"].required and submit["address"].required


@pytest.mark.parametrize("command", [
    c for c in sorted(typer.main.get_command(cli.app).commands)])  # type: ignore[attr-defined]
def test_every_command_takes_storage(command: str) -> None:
    """"Every command takes ``--storage``" (DESIGN.md, "The command line")."""
    assert "--storage" in _params(command)[1]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_the_campaign_file_names_is_available(algorithm: str) -> None:
    assert algorithm_problem(algorithm) is None


def test_the_decoding_parameters_and_config_keys_design_names_are_accepted() -> None:
    """Every sampler, every parameter by its GenerationConfig name and every config key,
    with the measures of DESIGN.md's campaign: no problem, and no parameter warned of as unread."""
    measures = ["mean_entropy", "distinct_2"]
    problems, warnings = registry.review("decoding", DECODING_CONFIG, None, DECODING_SPACE, measures)
    assert problems == [] and warnings == []


@pytest.fixture(scope="module")
def contract_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A campaign whose evaluator is the contract's example, verbatim, run to its budget:
    (its SQLite URL, its folder)."""
    folder = tmp_path_factory.mktemp("design-contract")
    (folder / "design_contract_example.py").write_text(CONTRACT_EXAMPLE)
    sys.path.insert(0, str(folder))
    spec = {"name": "design-contract",
            "evaluator": {"kind": "python", "target": "design_contract_example:evaluate"},
            "space": {"temperature": {"type": "float", "low": 0.2, "high": 2.0, "log": True}},
            "objective": {"name": "accuracy", "direction": "maximize"},
            "measures": [{"name": "mean_entropy", "low": 0.0, "high": 4.0, "bins": 20},
                         {"name": "distinct_2", "low": 0.0, "high": 1.0, "bins": 20}],
            "search": {"algorithm": "random", "budget": BUDGET, "batch_size": BUDGET}}
    url = f"sqlite:///{folder / 'atlas.db'}"
    try:
        api.run(spec, storage=url, executor="inline")
        yield url, folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("design_contract_example", None)


def test_the_evaluator_contracts_example_runs_as_a_python_target(contract_run: tuple[str, Path]) -> None:
    url, _ = contract_run
    rows = archive.open(url).campaign("design-contract").evaluations()
    assert len(rows) == BUDGET and {r["status"] for r in rows} == {"done"}
    assert {(r["objective"], r["measures"]["mean_entropy"], r["measures"]["distinct_2"]) for r in rows} == {
        (0.93, 1.7, 0.41)}
    assert all(r["metrics"]["tokens_per_s"] == 5120.0 for r in rows)


def _keys(example: Any, got: Any, path: str = "") -> list[str]:
    """The keys of ``example``'s objects, at any depth, that ``got`` lacks (lists: their first item)."""
    missing: list[str] = []
    if isinstance(example, dict) and example:
        for key, value in example.items():
            if not isinstance(got, dict) or key not in got:
                missing.append(f"{path}{key}")
            else:
                missing += _keys(value, got[key], f"{path}{key}.")
    elif isinstance(example, list) and example:
        if not isinstance(got, list) or not got:
            return [f"{path}[]"]
        missing += _keys(example[0], got[0], f"{path}[0].")
    return missing


def test_export_to_json_writes_the_examples_object(contract_run: tuple[str, Path]) -> None:
    """``atlas export NAME --out run.json``: one object with every key of DESIGN.md's
    example, at each level, of the same JSON types."""
    url, folder = contract_run
    out = folder / "run.json"
    done = subprocess.run([sys.executable, "-m", "search.cli", "export", "design-contract", "--out", str(out),
                           "--storage", url], cwd=folder, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    example, got = json.loads(EXPORT_EXAMPLE), json.loads(out.read_text())
    assert list(got) == list(example) and _keys(example, got) == []
    assert got["campaign"]["status"] == "finished" and got["campaign"]["spec"]["name"] == "design-contract"
    row, elite = got["evaluations"][0], got["elites"][0]
    assert {k: type(row[k]) for k in example["evaluations"][0]} == {
        k: type(v) for k, v in example["evaluations"][0].items()}
    assert {k: type(elite[k]) for k in example["elites"][0]} == {k: type(v) for k, v in example["elites"][0].items()}


def test_the_archive_has_designs_tables_and_columns_in_wal_mode(contract_run: tuple[str, Path]) -> None:
    """As a run leaves the SQLite file (its migrations applied), not as the models declare it."""
    _, folder = contract_run
    with sqlite3.connect(folder / "atlas.db") as conn:
        columns = {table: {row[1] for row in conn.execute(f"PRAGMA table_info({table})")} for table in TABLES}
        (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
        unique = [conn.execute(f"PRAGMA index_info({idx[1]})").fetchall()
                  for idx in conn.execute("PRAGMA index_list(campaigns)") if idx[2]]
        version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {t: sorted(want - columns[t]) for t, want in TABLES.items()} == {t: [] for t in TABLES}
    assert mode == "wal" and len(version) == 1
    assert [[col[2] for col in index] for index in unique] == [["name"]]  # campaigns: name (unique)

