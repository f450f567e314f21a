"""What the read commands show and the archive operations behind them: failure summaries
(``atlas status NAME``, ``atlas failures``), ``atlas delete``, exact ``atlas elites --format
csv``, tables that keep long names whole at 80 columns, ``atlas law`` warnings, and where
``atlas run`` puts its map."""

from __future__ import annotations

import csv
import io
import json
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from archive.errors import CampaignNotFound, LeaseConflict
from archive.figures import default_map_path, storage_tag
from archive.law import fit_law, law_warnings
from archive.models import Checkpoint, Elite, Evaluation, ProposerCall
from archive.store import NewEvaluation, Result, Store, failure_group
from search import api, cli_tables
from search import cli as cli_module
from tests.conftest import quadratic_spec

LONG = "quickstart-long-name-2026"
FLAKY = {"kind": "python", "target": "tests.support.evaluators:flaky"}


@pytest.fixture
def store(storage_url: str) -> Store:
    s = Store(storage_url)
    yield s
    s.close()


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line's console at 80 columns, whatever terminal runs the tests."""
    monkeypatch.setattr(cli_module.console, "_width", 80)


def atlas(*args: str, input: str | None = None) -> Any:
    """Run ``atlas ARGS`` in this process at 80 columns; stdout and stderr kept apart."""
    return CliRunner().invoke(cli_module.app, list(args), input=input, env={"COLUMNS": "80"},
                              terminal_width=80, catch_exceptions=False)


def opened(url: str) -> closing[Store]:
    """A writable store, closed on leaving the ``with``."""
    return closing(Store(url))


def new_campaign(store: Store, name: str = "c") -> int:
    return store.create_campaign(name, {"search": {"budget": 10}}, "hash", {"kind": "grid"}).id


def pending(store: Store, cid: int, n: int, start: int = 0) -> list[int]:
    return store.add_pending(cid, [NewEvaluation(start + i, {"i": start + i}, [0.5], "test") for i in range(n)])


def rows_of(store: Store, table: Any, cid: int) -> int:
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(table).where(table.c.campaign_id == cid)).scalar_one()


# -- the store -----------------------------------------------------------------------------
def test_failure_summary_counts_first_lines_most_common_first(store: Store) -> None:
    cid = new_campaign(store)
    errors = ["RuntimeError: boom\nTraceback (a)\n  line 1", "ValueError: bad x", "RuntimeError: boom\nTraceback (b)",
              "RuntimeError: boom", None, "ValueError: bad x\n"]
    ids = pending(store, cid, len(errors) + 1)
    store.record_results(cid, [Result(i, "failed", error=e) for i, e in zip(ids, errors, strict=False)]
                         + [Result(ids[-1], "done", 1.0, {"m": 0.1}, {}, cell=0)], 1.0)
    assert store.failure_summary(cid) == [("RuntimeError: boom", 3), ("ValueError: bad x", 2), ("", 1)]
    assert store.failure_summary(cid, limit=1) == [("RuntimeError: boom", 3)]
    assert store.failure_summary(new_campaign(store, "other")) == []


def test_failed_evaluations_come_latest_first(store: Store) -> None:
    cid = new_campaign(store)
    ids = pending(store, cid, 4)
    store.record_results(cid, [Result(ids[0], "failed", error="e0"), Result(ids[1], "done", 1.0, {"m": 0.1}, {}, 0),
                               Result(ids[2], "failed", error="e2")], 1.0)
    assert [r["error"] for r in store.failed_evaluations(cid)] == ["e2", "e0"]
    assert [r["seq"] for r in store.failed_evaluations(cid, limit=1)] == [2]


def filled_campaign(store: Store, name: str) -> int:
    """A campaign with rows in every table that refers to it."""
    cid = new_campaign(store, name)
    calls = [{"proposer": "llm", "key": f"{name}-k", "request": {"p": 1}, "status": "ok"}]
    ids = store.add_pending(cid, [NewEvaluation(i, {"i": i}, [0.5], "llm") for i in range(3)],
                            checkpoint=("llm", b"state"), calls=calls)
    store.record_results(cid, [Result(ids[0], "done", 1.0, {"m": 0.1}, {}, cell=0),
                               Result(ids[1], "done", 2.0, {"m": 0.9}, {}, cell=4),
                               Result(ids[2], "failed", error="boom")], 1.0)
    return cid


def test_delete_campaign_removes_its_rows_in_every_table_and_nothing_else(store: Store) -> None:
    gone, kept = filled_campaign(store, "gone"), filled_campaign(store, "kept")
    counts = store.delete_campaign(gone)
    assert counts == {"elites": 2, "proposer_calls": 1, "checkpoints": 1, "evaluations": 3, "campaigns": 1}
    assert store.campaign("gone") is None and store.campaign("kept") is not None
    for model in (Evaluation, Elite, Checkpoint, ProposerCall):
        assert rows_of(store, model.__table__, gone) == 0
        assert rows_of(store, model.__table__, kept) > 0
    with pytest.raises(CampaignNotFound):
        store.delete_campaign(gone)


def test_delete_campaign_refuses_a_live_lease_unless_forced(store: Store) -> None:
    cid = filled_campaign(store, "busy")
    assert store.acquire_lease(cid, "host:123:abc", ttl_s=60) is None
    with pytest.raises(LeaseConflict, match="by scheduler pid 123 on host host "):  # the holder host:123:abc
        store.delete_campaign(cid)
    assert store.campaign("busy") is not None and rows_of(store, Evaluation.__table__, cid) == 3
    assert store.delete_campaign(cid, force=True)["evaluations"] == 3

    stale = filled_campaign(store, "stale")  # a lease that expired is nobody's
    assert store.acquire_lease(stale, "host:9:dead", ttl_s=-1) is None
    assert store.delete_campaign(stale)["campaigns"] == 1


# -- failures on the command line ---------------------------------------------------------------
@pytest.fixture
def flaky_url(tmp_path: Path) -> str:
    """A finished campaign (``LONG``) whose evaluator fails three ways, and a clean one."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(name=LONG, evaluator=FLAKY, search__budget=40), storage=url, executor="inline")
    api.run(quadratic_spec(name="clean", search__budget=10), storage=url, executor="inline")
    return url


def expected_failures(url: str, name: str) -> dict[str, int]:
    """Failure messages counted in Python from the full errors (what SQL must agree with)."""
    out: dict[str, int] = {}
    with opened(url) as s:
        rec = s.campaign(name)
        for ev in s.evaluations(rec.id, status="failed"):
            line = failure_group(ev["error"])
            out[line] = out.get(line, 0) + 1
    return out


def test_status_shows_the_most_common_failures(flaky_url: str, narrow: None) -> None:
    expected = expected_failures(flaky_url, LONG)
    assert len(expected) >= 2 and any(line.startswith("RuntimeError: boom") for line in expected)
    shown = atlas("status", LONG, "--storage", flaky_url)
    assert shown.exit_code == 0, shown.stderr
    assert "most common failures" in shown.stdout
    for line, n in expected.items():
        assert any(line in row and row.split()[0] == str(n) for row in shown.stdout.splitlines()), line

    row = json.loads(atlas("status", LONG, "--storage", flaky_url, "--json").stdout)
    assert {f["message"]: f["count"] for f in row["failures"]} == expected
    counts = [f["count"] for f in row["failures"]]
    assert counts == sorted(counts, reverse=True)
    clean = json.loads(atlas("status", "clean", "--storage", flaky_url, "--json").stdout)
    assert clean["failures"] == []
    assert "most common failures" not in atlas("status", "clean", "--storage", flaky_url).stdout


def test_atlas_failures_lists_failed_evaluations_and_counts(flaky_url: str, narrow: None) -> None:
    expected = expected_failures(flaky_url, LONG)
    total = sum(expected.values())
    doc = json.loads(atlas("failures", LONG, "--storage", flaky_url, "--format", "json").stdout)
    assert doc["failed"] == total and {m["message"]: m["count"] for m in doc["messages"]} == expected
    assert len(doc["evaluations"]) == min(total, 20)
    first = doc["evaluations"][0]
    assert set(first) == {"id", "seq", "attempts", "proposer", "message", "error", "params"}
    assert first["message"] == first["error"].split("\n", 1)[0] and set(first["params"]) == {"a", "b"}
    seqs = [e["seq"] for e in doc["evaluations"]]
    assert seqs == sorted(seqs, reverse=True)

    limited = json.loads(atlas("failures", LONG, "--storage", flaky_url, "--format", "json",
                               "--limit", "1").stdout)
    assert len(limited["evaluations"]) == 1 and len(limited["messages"]) == 1
    assert limited["messages"][0]["count"] == max(expected.values())

    table = atlas("failures", LONG, "--storage", flaky_url)
    assert table.exit_code == 0 and LONG in table.stdout and "failures by message" in table.stdout
    assert f"(latest {min(total, 20)} of {total})" in table.stdout
    assert str(first["id"]) in table.stdout and "map-elites" in table.stdout

    assert "clean: no failed evaluations" in atlas("failures", "clean", "--storage", flaky_url).stdout
    bad = atlas("failures", LONG, "--storage", flaky_url, "--format", "csv")
    assert bad.exit_code == 2 and "--format must be table or json" in bad.stderr


# -- rows written and not finished ---------------------------------------------------------------
def test_a_stopped_campaigns_unfinished_rows_are_pending_not_in_flight(tmp_path: Path, narrow: None) -> None:
    """After a Ctrl-C, `atlas status NAME` said `4 in flight` and `--json` `"running": 4` for
    rows `pending` with 0 attempts and no run holding the campaign. Now they are `pending`
    with what to do; while a live run holds it, the same rows are in flight and `running`
    counts only the rows running."""
    import os
    import socket
    import time

    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10, search__batch_size=3, search__max_in_flight=3), storage=url,
            executor="inline")
    with opened(url) as s:
        cid = s.require_campaign("quad").id
        s.update_campaign(cid, status="stopped")
        ids = s.add_pending(cid, [NewEvaluation(seq=s.next_seq(cid) + i, params={"a": 0.5, "b": 0.5}, x=[0.5, 0.5],
                                                proposer="map-elites") for i in range(4)])
        s.mark_running(ids[:1])  # as a killed run leaves it
    shown = atlas("status", "quad", "--storage", url)
    assert shown.exit_code == 0, shown.stderr
    text = " ".join(shown.stdout.split())  # as read, however the table wraps it
    assert "".join(f"0 failed; 4 pending (`atlas resume quad --storage {url}` runs them)".split()) in "".join(
        text.split()) and "in flight" not in text  # the storage the campaign is in (a long path folds)
    row = json.loads(atlas("status", "quad", "--storage", url, "--json").stdout)
    assert (row["running"], row["in_flight"], row["pending"]) == (0, 0, 4)
    by_proposer = row["proposers"]["map-elites"]  # it had said pending 3, running 1 beside the totals' 4 pending
    assert (by_proposer["running"], by_proposer["in_flight"], by_proposer["pending"]) == (0, 0, 4)
    assert "4 pending" in atlas("status", "--storage", url).stdout

    live = f"{socket.gethostname()}:{os.getpid()}:live"  # this process: a live scheduler
    with opened(url) as s:
        s.update_campaign(cid, status="running", lease_holder=live, lease_expires=time.time() + 600)
        s.mark_running(ids[:1])
    shown = atlas("status", "quad", "--storage", url)
    text = " ".join(shown.stdout.split())
    assert "0 failed; 4 in flight" in text and "pending" not in text
    row = json.loads(atlas("status", "quad", "--storage", url, "--json").stdout)
    assert (row["status"], row["running"], row["in_flight"], row["pending"]) == ("running", 1, 4, 0)
    by_proposer = row["proposers"]["map-elites"]
    assert (by_proposer["running"], by_proposer["in_flight"], by_proposer["pending"]) == (1, 4, 0)
    assert "map-elites 10 0 4" in " ".join(shown.stdout.split())  # the table's in-flight column


# -- delete on the command line -------------------------------------------------------------
def test_atlas_delete_asks_then_deletes_everything_of_the_campaign(flaky_url: str) -> None:
    kept = atlas("delete", LONG, "--storage", flaky_url, input="n\n")
    assert kept.exit_code == 1 and "delete campaign" in kept.stdout
    with opened(flaky_url) as s:
        assert s.campaign(LONG) is not None
        evaluations = s.count_created(s.campaign(LONG).id)

    done = atlas("delete", LONG, "--storage", flaky_url, input="y\n")
    assert done.exit_code == 0, done.stderr
    assert f"deleted campaign {LONG}: {evaluations} evaluations" in done.stdout
    with opened(flaky_url) as s:
        assert s.campaign(LONG) is None and s.campaign("clean") is not None
        with s.read() as conn:
            assert conn.execute(select(func.count()).select_from(Evaluation)).scalar_one() == 10

    missing = atlas("delete", LONG, "--storage", flaky_url, "--yes")
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: ") and repr(LONG) in missing.stderr


def test_atlas_delete_refuses_a_live_scheduler_unless_forced(flaky_url: str) -> None:
    with opened(flaky_url) as s:
        cid = s.campaign("clean").id
        assert s.acquire_lease(cid, "node-7:4242:run", ttl_s=300) is None
    refused = atlas("delete", "clean", "--storage", flaky_url, "--yes")
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert "by scheduler pid 4242 on host node-7;" in refused.stderr  # the holder as a person reads it
    with opened(flaky_url) as s:
        assert s.campaign("clean") is not None
    forced = atlas("delete", "clean", "--storage", flaky_url, "--yes", "--force")
    assert forced.exit_code == 0 and "deleted campaign clean: 10 evaluations" in forced.stdout


def test_atlas_delete_takes_a_killed_schedulers_campaign_at_once(flaky_url: str) -> None:
    """Right after a ``kill -9``, `atlas status` said `stopped` but `atlas delete` refused
    for up to 30 s (the lease's TTL), naming the dead process as the one running it."""
    import socket

    dead = f"{socket.gethostname()}:999999999:deadbeef"  # a process of this host that does not exist
    with opened(flaky_url) as s:
        assert s.acquire_lease(s.campaign("clean").id, dead, ttl_s=300) is None
    deleted = atlas("delete", "clean", "--storage", flaky_url, "--yes")
    assert deleted.exit_code == 0, deleted.stderr
    assert "deleted campaign clean: 10 evaluations" in deleted.stdout


# -- elites as CSV: exact values ------------------------------------------------------------
def test_elites_csv_keeps_full_precision_and_whole_vectors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    space = {"a": {"type": "float", "low": 0.0, "high": 1.0}, "b": {"type": "float", "low": 0.0, "high": 1.0},
             "v": {"type": "float", "low": 0.0, "high": 1.0, "size": 6}}
    api.run(quadratic_spec(name="vec", space=space, search__budget=20), storage=url, executor="inline")
    exact = json.loads(atlas("elites", "vec", "--storage", url, "--format", "json").stdout)
    table = list(csv.DictReader(io.StringIO(atlas("elites", "vec", "--storage", url, "--format", "csv").stdout)))
    assert list(table[0]) == ["cell", "evaluation_id", "objective", "ma", "mb", "a", "b", "v", "seq", "proposer"]
    assert len(table) == len(exact) > 0
    for row, want in zip(table, exact, strict=True):
        assert float(row["objective"]) == want["objective"]
        assert float(row["ma"]) == want["measures"]["ma"]
        assert float(row["a"]) == want["params"]["a"]
        assert json.loads(row["v"]) == want["params"]["v"] and len(want["params"]["v"]) == 6


# -- 80 columns -------------------------------------------------------------------------------
def test_long_names_are_whole_at_80_columns(flaky_url: str, narrow: None) -> None:
    for args in (("status",), ("status", LONG), ("elites", LONG), ("failures", LONG)):
        shown = atlas(*args, "--storage", flaky_url)
        assert shown.exit_code == 0, (args, shown.stderr)
        assert LONG in shown.stdout, args
        assert "quick…" not in shown.stdout and "…\n" not in shown.stdout, args
        assert max(map(len, shown.stdout.splitlines())) <= 80, args
    listing = atlas("status", "--storage", flaky_url).stdout
    assert all(word in listing for word in ("status", "failed", "coverage", "best"))


def test_atlas_status_shows_coverage_to_one_decimal(tmp_path: Path) -> None:
    """``atlas status`` (the list) and ``atlas status NAME`` show coverage as a percentage
    with one decimal (``32.0%``, not ``32%``). No doc states the format; this pins the
    one the command prints (``search.cli_tables``: the list's coverage column and the
    campaign's ``cells`` line), which tells 12.5% from 12%."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    stats = api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    shown = f"{stats.coverage:.1%}"
    assert 0 < stats.coverage < 1 and shown.endswith(".0%")  # 25 cells: a whole percentage, still one decimal
    listing = atlas("status", "--storage", url).stdout
    assert shown in listing.split()
    assert f"{stats.elites} of {stats.cells} filled ({shown})" in atlas("status", "quad", "--storage", url).stdout


def test_elite_parameters_share_a_column_when_narrow(tmp_path: Path, narrow: None) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    space = {f"p{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(12)}
    space.update(a={"type": "float", "low": 0.0, "high": 1.0}, b={"type": "float", "low": 0.0, "high": 1.0})
    api.run(quadratic_spec(name="wide", space=space, search__budget=10), storage=url, executor="inline")
    shown = atlas("elites", "wide", "--storage", url).stdout
    assert "params" in shown and "p11=" in shown
    assert max(map(len, shown.splitlines())) <= 80 and "…" not in shown


ENTROPY = "mean_token_entropy_over_all_generated_continuations_nats"
DISTINCT = "distinct_2_over_all_generated_continuations"
HUGE = "entropy_of_" + "x" * 289  # a 300-character measure name


def named_measures(params: dict[str, Any], first: str) -> dict[str, Any]:
    """The quadratic's objective over measures ``first`` and :data:`DISTINCT`: (a, b)."""
    a, b = float(params["a"]), float(params["b"])
    return {"objective": 1 - (a - 0.3) ** 2 - (b - 0.6) ** 2, "measures": {first: a, DISTINCT: b}}


def long_measures(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return named_measures(params, ENTROPY)


def huge_measures(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return named_measures(params, HUGE)


def long_measure_campaign(url: str, name: str, first: str, target: str) -> None:
    spec = quadratic_spec(name=name, search__budget=30,
                          evaluator={"kind": "python", "target": f"tests.test_cli_outputs:{target}"},
                          measures=[{"name": first, "low": 0.0, "high": 1.0, "bins": 4},
                                    {"name": DISTINCT, "low": 0.0, "high": 1.0, "bins": 4}])
    api.run(spec, storage=url, executor="inline")


def header_of(lines: list[str], rule: int, end: int) -> str:
    """The header of the right-aligned column that ends at ``end``: its folded pieces above
    the rule (line ``rule``), top to bottom, joined."""
    pieces = []
    for line in lines[:rule]:
        token = line[:end].rsplit(" ", 1)[-1] if len(line) >= end and line[end:end + 1] in ("", " ") else ""
        pieces.append(token)
    return "".join(pieces)


def shown_elites(out: str) -> tuple[list[str], int, list[list[str]]]:
    """The output's lines, the index of the rule under the header, and each row's cells (a
    line of fewer than five, the rest of a ``params`` cell that wrapped, joined to its row's)."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line and set(line) == {"─"})
    rows: list[list[str]] = []
    for line in lines[rule + 1:]:
        cells = line.split()
        if len(cells) >= 5:
            rows.append(cells)
        elif cells:
            rows[-1] += cells
    return lines, rule, rows


@pytest.mark.parametrize("plain", [False, True], ids=["rich", "plain"])
@pytest.mark.parametrize("first, target", [(ENTROPY, "long_measures"), (HUGE, "huge_measures")],
                         ids=["long", "300-characters"])
def test_long_measure_names_fold_and_every_number_stays_whole_at_80_columns(
        tmp_path: Path, narrow: None, monkeypatch: pytest.MonkeyPatch, plain: bool, first: str, target: str) -> None:
    """Measures named at length had left, at 80 columns, only the two measure columns (cell,
    eval, objective and the parameters squeezed to nothing by rich), and a 300-character name
    an objective of ``0.…`` under ``co…``. Headers now fold onto more lines; every number of
    every row is whole, in rich's table and in the plain one (past ``PLAIN_ROWS`` rows)."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    long_measure_campaign(url, "longm", first, target)
    if plain:
        monkeypatch.setattr(cli_tables, "PLAIN_ROWS", 2)
    exact = json.loads(atlas("elites", "longm", "--storage", url, "--top", "3", "--format", "json").stdout)
    shown = atlas("elites", "longm", "--storage", url, "--top", "3")
    assert shown.exit_code == 0, shown.stderr
    lines, rule, rows = shown_elites(shown.stdout)
    assert max(map(len, lines)) <= 80 and "…" not in shown.stdout
    assert len(rows) == len(exact) == 3
    for cells, want in zip(rows, exact, strict=True):
        assert cells[:5] == [str(want["cell"]), str(want["evaluation_id"]), f"{want['objective']:.6g}",
                             f"{want['measures'][first]:.4g}", f"{want['measures'][DISTINCT]:.4g}"]
        assert " ".join(cells[5:]) in (f"{want['params']['a']:.4g} {want['params']['b']:.4g}",
                                       f"a={want['params']['a']:.4g}, b={want['params']['b']:.4g}")
    data = lines[rule + 1]
    ends = [data.index(cell, start) + len(cell) for cell, start in
            zip(rows[0][:5], [0, *[data.index(c) + len(c) for c in rows[0][:4]]], strict=True)]
    assert [header_of(lines, rule, end) for end in ends] == ["cell", "eval", "score", first, DISTINCT]


def test_a_table_no_folding_fits_runs_past_the_console_with_nothing_cut(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """At 30 columns not even headers folded to 8 characters fit: the rows run past the
    console, whole, rather than rich squeezing the numbers to nothing."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    long_measure_campaign(url, "longm", ENTROPY, "long_measures")
    monkeypatch.setattr(cli_module.console, "_width", 30)
    exact = json.loads(atlas("elites", "longm", "--storage", url, "--top", "2", "--format", "json").stdout)
    _, _, rows = shown_elites(atlas("elites", "longm", "--storage", url, "--top", "2").stdout)
    assert [cells[:3] for cells in rows] == [[str(e["cell"]), str(e["evaluation_id"]), f"{e['objective']:.6g}"]
                                             for e in exact]


CHOICES = ["a", "1", 1, 2.5, False, "false"]


def each_choice(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """Each of :data:`CHOICES` in a cell of its own (``1`` and ``"1"`` apart)."""
    i = next(j for j, v in enumerate(CHOICES) if type(v) is type(params["c"]) and v == params["c"])
    return {"objective": float(i), "measures": {"ma": i / 6 + 0.01, "mb": 0.5}}


def run_choice_campaign(url: str) -> None:
    """Campaign ``cat`` into ``url``: one evaluation of each of :data:`CHOICES`, each an elite
    of a cell of its own (:func:`each_choice`)."""
    spec = quadratic_spec(name="cat", search__budget=6, search__batch_size=6,
                          search__initial_points=[{"c": c} for c in CHOICES],
                          evaluator={"kind": "python", "target": "tests.test_cli_outputs:each_choice"},
                          space={"c": {"type": "categorical", "choices": CHOICES}},
                          measures=[{"name": "ma", "low": 0.0, "high": 1.0, "bins": 6},
                                    {"name": "mb", "low": 0.0, "high": 1.0, "bins": 5}])
    api.run(spec, storage=url, executor="inline")


def test_elites_csv_keeps_choices_of_mixed_types_apart_as_export_does(tmp_path: Path) -> None:
    """``"1"`` and ``1``, ``"false"`` and ``false`` had been written alike (``1``, ``false``):
    a column that mixes kinds is each value's JSON text, by ``atlas export``'s own rule, and
    parses back to the values stored."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    run_choice_campaign(url)
    exact = json.loads(atlas("elites", "cat", "--storage", url, "--format", "json").stdout)
    table = list(csv.DictReader(io.StringIO(atlas("elites", "cat", "--storage", url, "--format", "csv").stdout)))
    got = [json.loads(row["c"]) for row in table]
    assert [(type(v), v) for v in got] == [(type(e["params"]["c"]), e["params"]["c"]) for e in exact]
    assert sorted(map(repr, got)) == sorted(map(repr, CHOICES))
    import archive

    with archive.open(url) as handle:
        path = handle.campaign("cat").export(tmp_path / "run.csv")
    with path.open(newline="") as fh:
        exported = {int(r["id"]): r["params.c"] for r in csv.DictReader(fh)}
    assert [row["c"] for row in table] == [exported[int(row["evaluation_id"])] for row in table]


# -- atlas law warnings -----------------------------------------------------------------------
def test_law_warnings_name_a_non_entropy_measure_and_a_weak_fit() -> None:
    rng = np.random.default_rng(0)
    h = rng.uniform(0.05, 1.6, 40)
    good = fit_law(h, -0.3 * np.exp(h) + 0.9, measure="mean_entropy")
    assert law_warnings(good) == []
    (name_warning,) = law_warnings(fit_law(h, -0.3 * np.exp(h) + 0.9, measure="distinct_2"))
    assert "'distinct_2'" in name_warning and "entropy" in name_warning
    weak = fit_law(h, rng.normal(0.5, 0.1, 40), measure="final_entropy")
    (r2_warning,) = law_warnings(weak)
    assert weak.r2 < 0.3 and "R²" in r2_warning and "explains little" in r2_warning


def test_atlas_law_prints_warnings_on_stderr_and_in_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=30), storage=url, executor="inline")
    shown = atlas("law", "quad", "--storage", url, "--measure", "ma")
    assert shown.exit_code == 0, shown.stderr
    assert "warning: the measure 'ma' does not look like an entropy" in shown.stderr
    assert "warning" not in shown.stdout
    doc = json.loads(atlas("law", "quad", "--storage", url, "--measure", "ma", "--json").stdout)
    assert any("'ma'" in w for w in doc["warnings"])
    assert any("R²" in w for w in doc["warnings"]) == (doc["r2"] < 0.3)


# -- where maps go ------------------------------------------------------------------------------
def test_default_map_path_is_keyed_by_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    here = default_map_path("sqlite:///atlas.db", "quick")
    assert here.parent.parent == Path("atlas-maps") and here.name == "quick.png"
    assert here.parent.name.startswith("sqlite-atlas-") and len(here.parent.name.rsplit("-", 1)[1]) == 8
    assert default_map_path(f"sqlite:///{tmp_path / 'atlas.db'}", "quick") == here  # the same file
    assert default_map_path("sqlite:///other.db", "quick").parent != here.parent

    pg = storage_tag("postgresql+psycopg://ann:s3cret@db.example:5432/atlas")
    assert pg.startswith("postgresql-db-example-atlas-") and "s3cret" not in pg
    assert pg == storage_tag("postgresql+psycopg://ann:other-password@db.example:5432/atlas")
    assert pg != storage_tag("postgresql+psycopg://ann:s3cret@db.example:5432/atlas2")


def test_status_shows_exploration_per_run_of_20(flaky_url: str, narrow: None) -> None:
    """Each proposer's exploration entropy per run of 20 (``archive.stats.exploration_of``),
    as ``mean ± std (k runs of 20)`` and, with ``--json``, ``{mean, std, runs, run_length}``."""
    import archive
    from archive.stats import Exploration, exploration_of

    with archive.open(flaky_url) as handle:
        camp = handle.campaign(LONG)
        expected = exploration_of(camp.evaluations(), camp.settings)
    assert expected and any(e.runs for e in expected.values())
    row = json.loads(atlas("status", LONG, "--storage", flaky_url, "--json").stdout)
    assert row["exploration"] == {name: e.to_json() for name, e in expected.items()}
    assert row["exploration_entropy"] == {name: e.mean for name, e in expected.items()}
    for e in row["exploration"].values():
        assert set(e) == {"mean", "std", "runs", "run_length"} and e["run_length"] == 20
    shown = atlas("status", LONG, "--storage", flaky_url).stdout
    for e in expected.values():
        assert Exploration(**e.to_json()).text() in shown


def test_library_warnings_read_as_the_commands_own(capsys: pytest.CaptureFixture[str]) -> None:
    """A warning logged by Entropy Atlas (an LLM's fallback, a worker's failed teardown)
    had been printed bare by Python's last-resort handler, escape codes and all."""
    import logging

    from search import cli

    logger = logging.getLogger("entropy_atlas")
    cli._show_library_warnings()
    cli._show_library_warnings()  # once only
    try:
        logging.getLogger("entropy_atlas.llm").warning("endpoint %s gave \x1b[31mred\x1b[0m", "x")
        logging.getLogger("entropy_atlas.llm").info("not shown")
    finally:
        handlers = [h for h in logger.handlers if isinstance(h, cli._WarningLines)]
        for handler in handlers:
            logger.removeHandler(handler)
    assert len(handlers) == 1
    assert capsys.readouterr().err.splitlines() == ["warning: endpoint x gave \\x1b[31mred\\x1b[0m"]


def test_python_warnings_read_as_the_commands_own(capsys: pytest.CaptureFixture[str]) -> None:
    """NumPy's, pyribs', BoTorch's warnings had printed as Python prints them: the file,
    the line, the category, then the source line, over several lines."""
    import warnings

    from search import cli

    with warnings.catch_warnings():  # puts Python's own showwarning back
        warnings.simplefilter("always")
        cli._show_library_warnings()
        warnings.warn("overflow encountered\nin multiply", RuntimeWarning, stacklevel=1)
    assert capsys.readouterr().err.splitlines() == [
        "warning: RuntimeWarning: overflow encountered in multiply (test_cli_outputs.py:"
        f"{test_python_warnings_read_as_the_commands_own.__code__.co_firstlineno + 10})"]


def test_an_interrupt_after_the_campaign_finished_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Ctrl-C that lands after the run's last write (while the summary or map is drawn) had
    said "stopped; continue with `atlas resume quad`", whose resume then said "already finished"."""
    import typer

    from search import cli

    url = f"sqlite:///{tmp_path / 'a.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    capsys.readouterr()  # the set-up run's warnings (a batch and a map larger than its budget) aside

    def interrupted(_view: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(typer.Exit) as stopped:
        cli._execute(interrupted, 6, "quad", url, None)
    assert stopped.value.exit_code == 130
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("stopped after the campaign finished; `atlas status quad`")
    assert "atlas resume" not in err
