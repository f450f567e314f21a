"""Reads that stay bounded at 10⁵–10⁶ evaluations (issue #15): exploration entropy from each
proposer's latest runs (the same value as the full computation while a campaign is small,
the latest runs' values and how many runs there are once it is not), the indexes of
migration 0004 on SQLite and PostgreSQL, the plain elite table for long tables, a grid
map drawn without pyribs, and a command line whose start-up imports none of the heavy
libraries."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from archive.exploration import campaign_exploration
from archive.stats import active_coordinates, exploration_of, run_entropies
from archive.store import NewEvaluation, Result, Store
from search import cli as cli_module
from search import cli_tables
from search.campaigns import commit_campaign, plan_campaign
from search.spec import parse_spec
from tests.conftest import ROOT

NEW_INDEXES = {"ix_evaluations_campaign_proposer_status": ["campaign_id", "proposer", "status"],
               "ix_evaluations_campaign_proposer_seq": ["campaign_id", "proposer", "seq"]}
PROPOSERS = ("bo", "map-elites", "random")


def spec() -> dict:
    """Four coordinates: two floats, a categorical and a float active for one choice only."""
    return {
        "name": "scale",
        "evaluator": {"kind": "python", "target": "tests.support.evaluators:quadratic"},
        "space": {"a": {"type": "float", "low": 0.0, "high": 1.0}, "b": {"type": "float", "low": 0.0, "high": 1.0},
                  "mode": {"type": "categorical", "choices": ["p", "q", "r"]},
                  "s": {"type": "float", "low": 0.0, "high": 1.0, "when": {"mode": "p"}}},
        "measures": [{"name": "ma", "low": 0.0, "high": 1.0, "bins": 4},
                     {"name": "mb", "low": 0.0, "high": 1.0, "bins": 4}],
        "search": {"algorithm": "random", "budget": 5000, "batch_size": 10, "seed": 0},
    }


def fill(store: Store, n: int = 1237, seed: int = 0) -> int:
    """A campaign of ``n`` rows from three proposers taking uneven turns (each with a short
    last run), the random one uniform and the others narrower; 90 % recorded."""
    record = commit_campaign(store, plan_campaign(store, parse_spec(spec())))
    rng = np.random.default_rng(seed)
    rows = []
    for seq in range(n):
        proposer = PROPOSERS[int(rng.integers(3))]
        x = rng.random(4) if proposer == "random" else np.clip(0.5 + 0.1 * rng.standard_normal(4), 0, 1)
        mode = "pqr"[min(int(x[2] * 3), 2)]
        params = {"a": float(x[0]), "b": float(x[1]), "mode": mode, **({"s": float(x[3])} if mode == "p" else {})}
        rows.append(NewEvaluation(seq, params, [float(v) for v in x], proposer))
    ids = store.add_pending(record.id, rows)
    store.mark_running(ids)
    results = [Result(eid, "done", float(rng.random()), {"ma": float(rng.random()), "mb": float(rng.random())}, {},
                      cell=int(rng.integers(16))) for eid in ids[: int(0.9 * n)]]
    store.record_results(record.id, results, 1.0)
    return record.id


def filled_elites(storage_url: str) -> list[dict]:
    """The elites of a 300-row campaign :func:`fill` writes, the store closed again."""
    store = Store(storage_url)
    try:
        return store.elites(fill(store, n=300))
    finally:
        store.close()


def fill_and_close(storage_url: str, n: int) -> None:
    """:func:`fill` a campaign of ``n`` rows into ``storage_url`` and close the store."""
    store = Store(storage_url)
    try:
        fill(store, n=n)
    finally:
        store.close()


@pytest.fixture
def filled(storage_url: str) -> Iterator[tuple[Store, int]]:
    store = Store(storage_url)
    try:
        yield store, fill(store)
    finally:
        store.close()


def test_exploration_of_a_small_campaign_is_the_full_computation(filled: tuple[Store, int]) -> None:
    store, cid = filled
    settings = store.campaign("scale").settings
    full = exploration_of(store.evaluations(cid), settings)
    got = campaign_exploration(store, cid, settings)
    assert set(got) == set(PROPOSERS) == set(full)
    for name, e in got.items():
        assert e.runs == full[name].runs > 1 and e.runs_total is None and not e.sampled
        assert e.mean == pytest.approx(full[name].mean, abs=1e-12)
        assert e.std == pytest.approx(full[name].std, abs=1e-12)
        assert e.to_json() == full[name].to_json() or e.to_json() == pytest.approx(full[name].to_json())


def test_exploration_at_scale_uses_the_latest_runs_and_says_how_many(filled: tuple[Store, int]) -> None:
    """With at most ``k`` runs read, each proposer's value is the mean and spread of the
    last ``k`` of the per-run values of the full computation (its short last run left
    out), and ``runs_total`` is how many runs it has."""
    store, cid = filled
    settings = store.campaign("scale").settings
    rows = store.evaluations(cid)
    k = 5
    got = campaign_exploration(store, cid, settings, max_runs=k)
    for name in PROPOSERS:
        mine = [r for r in rows if r["proposer"] == name]
        x = np.array([r["x"] for r in mine], dtype=float)
        active = active_coordinates([r["params"] for r in mine], settings.coordinate_params, 4)
        per_run = run_entropies(x, settings.coordinate_options, active)
        assert len(per_run) == len(mine) // 20 > k and len(mine) % 20  # a short last run to leave out
        e = got[name]
        assert (e.runs, e.runs_total, e.sampled) == (k, len(per_run), True)
        assert e.mean == pytest.approx(float(np.mean(per_run[-k:])), abs=1e-12)
        assert e.std == pytest.approx(float(np.std(per_run[-k:], ddof=1)), abs=1e-12)
        assert e.to_json()["runs_total"] == len(per_run)
        assert f"latest {k} of {len(per_run)} runs of 20" in e.text()


def test_status_json_reports_runs_used_and_total(filled: tuple[Store, int], storage_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """``atlas status NAME --json``: ``runs`` (used) and ``runs_total`` once the campaign is
    past the bound; the table says ``latest K of N runs``."""
    import archive.exploration

    monkeypatch.setattr(archive.exploration, "MAX_RUNS", 4)
    store, cid = filled
    counts = store.proposer_counts(cid)
    runner = CliRunner()
    out = runner.invoke(cli_module.app, ["status", "scale", "--storage", storage_url, "--json"],
                        catch_exceptions=False)
    row = json.loads(out.stdout)
    for name, e in row["exploration"].items():
        assert e["runs"] == 4 and e["runs_total"] == sum(counts[name].values()) // 20
    shown = runner.invoke(cli_module.app, ["status", "scale", "--storage", storage_url], env={"COLUMNS": "160"},
                          terminal_width=160, catch_exceptions=False).stdout
    assert shown.count("latest 4 of") == 3


def _index_columns(url: str) -> dict[str, list[str]]:
    store = Store(url)
    try:
        with store.read() as conn:
            return {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("evaluations")}
    finally:
        store.close()


def test_migration_0004_adds_the_proposer_indexes(storage_url: str) -> None:
    """An archive written at revision 0003 gets both indexes when opened for writing; a new
    one has them from the start."""
    from archive.engine import make_engine
    from tests.support.migrations import migrate_to

    engine = make_engine(storage_url)
    migrate_to(engine, "0003")
    with engine.connect() as conn:
        names = {ix["name"] for ix in inspect(conn).get_indexes("evaluations")}
    engine.dispose()
    assert not names & set(NEW_INDEXES)
    found = _index_columns(storage_url)  # Store(...) migrates to head
    for name, columns in NEW_INDEXES.items():
        assert found[name] == columns


@pytest.mark.postgres
def test_migration_0004_on_postgresql(postgres_url: str) -> None:
    found = _index_columns(postgres_url)
    for name, columns in NEW_INDEXES.items():
        assert found[name] == columns


def test_sqlite_reads_the_latest_points_by_the_index(sqlite_url: str) -> None:
    """The exploration sample's query is a range scan of (campaign_id, proposer, seq), not a
    scan of the table and a sort."""
    from archive import queries
    from archive.queries import EVALUATIONS

    store = Store(sqlite_url)
    try:
        cid = fill(store, n=200)
        e = EVALUATIONS.c
        from sqlalchemy import Text, cast, select

        query = (select(cast(e.x, Text), cast(e.params, Text)).where(e.campaign_id == cid, e.proposer == "bo")
                 .order_by(e.seq.desc()).limit(40).offset(3))
        sql = str(query.compile(dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}))
        with store.read() as conn:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
        assert "ix_evaluations_campaign_proposer_seq" in plan and "TEMP B-TREE" not in plan
        rows = store.evaluations(cid)
        bo = [r for r in rows if r["proposer"] == "bo"]
        got = queries.latest_points(store, cid, "bo", 40, 3)
        assert [json.loads(x) for x, _ in got] == [r["x"] for r in bo[-43:-3]]
    finally:
        store.close()


def test_long_elite_tables_are_plain_text(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the row limit the elite table is plain text with the same header and one line
    per elite, best first; below it, rich's table, which shows the same cells."""
    elites = filled_elites(sqlite_url)
    runner = CliRunner()
    args = ["elites", "scale", "--storage", sqlite_url]
    rich_out = runner.invoke(cli_module.app, args, env={"COLUMNS": "200"}, terminal_width=200,
                             catch_exceptions=False).stdout
    monkeypatch.setattr(cli_tables, "PLAIN_ROWS", 3)
    plain = runner.invoke(cli_module.app, args, env={"COLUMNS": "200"}, terminal_width=200,
                          catch_exceptions=False).stdout
    lines = plain.splitlines()
    assert lines[0].strip() == f"elites of scale ({len(elites)})"
    assert lines[1].split() == rich_out.splitlines()[1].split()  # the same header
    assert set(lines[2]) == {"─"} and len(lines) == 3 + len(elites)
    assert [int(line.split()[0]) for line in lines[3:]] == [e["cell"] for e in elites]
    assert [line.split() for line in lines[3:]] == [line.split() for line in rich_out.splitlines()[3:]]


#: What ``import search.cli`` must not import: every command imports what it needs itself.
NOT_AT_START = ("ribs", "scipy", "matplotlib", "torch", "botorch", "numpy", "sqlalchemy", "alembic", "pydantic",
                "yaml", "archive", "search.api", "search.scheduler", "rich.progress")
#: What no read command imports: SQLAlchemy's ORM (the tables are Core), Alembic (the schema
#: is read at head with one SELECT), pyplot (figures are drawn on Figure + the Agg canvas),
#: the spec models, the scheduler and the live progress bar.
NOT_IN_READS = ("sqlalchemy.orm", "alembic", "matplotlib.pyplot", "ribs", "scipy", "torch", "yaml", "search.api",
                "search.scheduler", "search.spec", "rich.progress")


def python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter in the repository, its output captured."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def imported_by(*args: str) -> set[str]:
    """The modules in ``sys.modules`` after ``atlas ARGS`` ran in a fresh interpreter."""
    code = ("import json, sys, search.cli as c\n"
            "try:\n"
            f"    c.app({list(args)!r}, standalone_mode=False)\n"
            "finally:\n"
            "    sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n")
    done = python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stderr.rsplit("MODULES ", 1)[1]))


def test_cli_start_up_imports_no_command_s_libraries() -> None:
    """``import search.cli`` is typer and rich alone: no storage, array, figure or spec library
    (SQLAlchemy, NumPy, matplotlib, pydantic, …); each command imports its own."""
    code = ("import json, sys, search.cli\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    modules = set(json.loads(done.stdout))
    assert {"typer", "rich.console", "rich.table"} <= modules
    assert not [m for m in NOT_AT_START if m in modules]


def test_read_commands_import_only_what_they_use(sqlite_url: str, tmp_path: Path) -> None:
    """``status``, ``elites`` and ``map`` of a campaign import neither the ORM, Alembic,
    pyplot, pyribs nor the spec models; ``elites`` not even NumPy, and on SQLite no
    command imports the PostgreSQL dialect."""
    store = Store(sqlite_url)
    try:
        fill(store, n=300)
    finally:
        store.close()
    reads = {"status": imported_by("status", "scale", "--storage", sqlite_url),
             "status --json": imported_by("status", "scale", "--json", "--storage", sqlite_url),
             "elites": imported_by("elites", "scale", "--storage", sqlite_url),
             "map": imported_by("map", "scale", "--out", str(tmp_path / "map.png"), "--storage", sqlite_url)}
    for command, modules in reads.items():
        assert not [m for m in NOT_IN_READS if m in modules], command
        assert "sqlalchemy.dialects.postgresql" not in modules, command
    assert all("sqlalchemy" in reads[c] for c in ("status", "status --json", "elites"))
    # map reads in a forked process while this one imports matplotlib (search.forked.read_beside): the
    # process that draws imports no SQLAlchemy
    assert "sqlalchemy" not in reads["map"] and "archive.store" not in reads["map"]
    assert "numpy" not in reads["elites"] and "matplotlib" not in reads["elites"]
    assert "matplotlib" not in reads["status"] and "matplotlib.figure" in reads["map"]


def test_a_map_read_beside_its_drawing_says_what_is_wrong_as_one_read_in_process_would(
        sqlite_url: str, tmp_path: Path) -> None:
    """The forked reader's errors come back as the command's own one-line errors, and with
    another thread running (no fork then) the map is read in process, the same figure."""
    store = Store(sqlite_url)
    try:
        fill(store, n=300)
    finally:
        store.close()
    missing = subprocess.run([sys.executable, "-m", "search.cli", "map", "nosuch", "--out", str(tmp_path / "x.png"),
                              "--storage", sqlite_url], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.startswith("error: no campaign named 'nosuch'")
    assert not (tmp_path / "x.png").exists()
    forked, threaded = tmp_path / "forked.png", tmp_path / "threaded.png"
    code = ("import threading, search.cli as c\n"
            "stop = threading.Event()\n"
            "threading.Thread(target=stop.wait, daemon=True).start()\n"
            f"c.app(['map', 'scale', '--out', {str(threaded)!r}, '--storage', {sqlite_url!r}], standalone_mode=False)\n"
            "import sys; sys.stderr.write('DRAWN ' + str('archive.store' in sys.modules))\n")
    done = python(code)
    assert done.returncode == 0 and done.stderr.endswith("DRAWN True"), done.stderr[-3000:]  # read in process
    imported_by("map", "scale", "--out", str(forked), "--storage", sqlite_url)
    assert forked.read_bytes() == threaded.read_bytes()


def test_a_grid_map_needs_no_pyribs(sqlite_url: str, tmp_path: Path) -> None:
    """``atlas map`` of a 2-D grid draws without importing pyribs (seconds to import) or
    pyplot, and ``import search.cli`` imports none of pyribs, scipy, matplotlib, torch."""
    store = Store(sqlite_url)
    try:
        fill(store, n=300)
    finally:
        store.close()
    out = tmp_path / "map.png"
    code = ("import sys, search.cli as c\n"
            "heavy = [m for m in ('ribs', 'scipy', 'matplotlib', 'torch', 'botorch') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            f"c.app(['map', 'scale', '--out', {str(out)!r}, '--storage', {sqlite_url!r}], standalone_mode=False)\n"
            "assert 'ribs' not in sys.modules and 'matplotlib.pyplot' not in sys.modules\n")
    done = python(code)
    assert done.returncode == 0, done.stderr[-3000:]
    import matplotlib.image as mpimg

    image = mpimg.imread(out)
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert len(np.unique(image.reshape(-1, image.shape[-1])[:, :3].round(2), axis=0)) > 20


def test_json_texts_decode_in_one_call_or_one_by_one() -> None:
    from archive.jsontext import loads_many

    assert loads_many(['{"a": [1, 2.5]}', None, "3", '"x"', "NaN"])[:4] == [{"a": [1, 2.5]}, None, 3, "x"]
    assert loads_many(['{"a": 1}', "{not json", "[1]"]) == [{"a": 1}, None, [1]]  # one bad text spoils none
    assert loads_many(["1, 2", "3"]) == [None, 3]  # a text that would split the array is decoded alone
    assert loads_many([]) == []
    big = 2**70  # beyond orjson's integers: json reads the array instead, the same values
    nan, huge = loads_many(['{"v": NaN}', str(big)])
    assert math.isnan(nan["v"]) and huge == big
    texts = ['{"k": [0.1, 1e-300, 1.7976931348623157e308, -0.0, "é\\u00e9"]}', '{"b": true}']
    assert loads_many(texts) == [json.loads(t) for t in texts]


def test_elites_decode_their_json_columns(filled: tuple[Store, int]) -> None:
    store, cid = filled
    elites = store.elites(cid)
    by_id = {r["id"]: r for r in store.evaluations(cid)}
    assert elites and [e["cell"] for e in store.elites(cid, top=3)] == [e["cell"] for e in elites[:3]]
    for e in elites:
        row = by_id[e["evaluation_id"]]
        assert (e["measures"], e["params"], e["x"], e["seq"], e["proposer"]) == (
            row["measures"], row["params"], row["x"], row["seq"], row["proposer"])


def test_the_scripts_head_read_without_alembic_is_alembics() -> None:
    from archive.engine import _scripts, script_head

    assert script_head() == _scripts().get_current_head()


def test_a_read_at_head_imports_no_alembic(sqlite_url: str) -> None:
    """Read commands open an archive at head without importing Alembic; one behind head is
    still refused with the reason (the full check)."""
    Store(sqlite_url).close()
    code = ("import sys, archive\n"
            f"archive.open({sqlite_url!r}).close()\n"
            "assert 'alembic' not in sys.modules, 'alembic imported'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    from sqlalchemy import create_engine

    from archive.errors import StorageError

    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    engine.dispose()
    with pytest.raises(StorageError, match="schema revision 0003"):
        Store(sqlite_url, readonly=True)


def test_the_map_title_from_the_elites_is_the_stats_title(storage_url: str, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """``map`` takes its title's figures (cells filled, QD-score, best) from the elites it
    draws instead of counting every row: the same title as from :meth:`stats`."""
    import archive
    import archive.figures
    from archive.figures import map_title

    fill_and_close(storage_url, n=300)
    seen: list[str] = []
    real = archive.figures.elite_map_figure
    monkeypatch.setattr(archive.figures, "elite_map_figure",
                        lambda layout, settings, elites, title, *args, **kwargs: seen.append(title) or real(
                            layout, settings, elites, title, *args, **kwargs))
    with archive.open(storage_url) as handle:
        camp = handle.campaign("scale")
        camp.map(tmp_path / "map.png")
        assert seen == [map_title("scale", camp.stats())]


def test_stats_from_counts_by_proposer_are_the_stats(filled: tuple[Store, int]) -> None:
    store, cid = filled
    assert store.stats(cid, 16, 0.5, store.proposer_counts(cid)) == store.stats(cid, 16, 0.5)


def test_an_elite_map_is_drawn_once(storage_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``savefig`` draws the map once: ``tight_layout`` leaves no layout engine behind (its
    placeholder would make ``savefig`` draw the whole figure once more, unrendered)."""
    from matplotlib.figure import Figure

    import archive

    fill_and_close(storage_url, n=300)
    draws: list[object] = []
    draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, renderer: draws.append(renderer) or draw(self, renderer))
    with archive.open(storage_url) as handle:
        handle.campaign("scale").map(tmp_path / "map.png")
    assert len(draws) == 1 and (tmp_path / "map.png").stat().st_size > 1000


def test_elites_with_fewer_fields_are_the_same_elites(filled: tuple[Store, int]) -> None:
    """``Store.elites(fields=…)`` reads only those of the evaluation's fields (the map: its
    measures), the same values in the same order as the full read."""
    store, cid = filled
    full = store.elites(cid)
    keys = ("cell", "evaluation_id", "objective", "fitness")
    for fields in (("measures",), ("params", "measures"), ("proposer",), ()):
        lean = store.elites(cid, fields=fields)
        assert [set(e) for e in lean] == [{*keys, *fields}] * len(full)
        assert lean == [{k: e[k] for k in (*keys, *fields)} for e in full]
    assert store.elites(cid, top=3, fields=("x",)) == [{k: e[k] for k in (*keys, "x")} for e in full[:3]]
    with pytest.raises(ValueError, match="error"):
        store.elites(cid, fields=("error",))


def test_a_narrow_plain_elite_table_shares_one_params_column(sqlite_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the row limit on a console too narrow for a column per parameter, the plain table
    has one ``params`` column of ``name=value`` text, each row's as rich's table has it."""
    elites = filled_elites(sqlite_url)
    monkeypatch.setattr(cli_tables, "PLAIN_ROWS", 3)
    out = CliRunner().invoke(cli_module.app, ["elites", "scale", "--storage", sqlite_url], env={"COLUMNS": "60"},
                             terminal_width=60, catch_exceptions=False).stdout
    lines = out.splitlines()
    assert lines[1].split()[-1] == "params" and len(lines) == 3 + len(elites)
    start = lines[1].index("params")
    assert [line[start:] for line in lines[3:]] == [cli_tables.params_text(e["params"]) for e in elites]
