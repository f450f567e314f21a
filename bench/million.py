"""A 10⁶-evaluation campaign: what ``atlas status``, ``atlas elites`` and ``atlas map`` do,
and the dashboard's first paint, on PostgreSQL and on SQLite (best of 3, ``--repeat``).

    python bench/million.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test [--evals 1000000]
                            [--sqlite /tmp/million.db] [--skip-sqlite] [--refill] [--repeat 3]

The campaign is written straight into the archive's own schema (created by the store's
migrations) in bulk: PostgreSQL by ``COPY``, SQLite by ``executemany``, 50,000 rows a
batch, then its elites (each cell's best done result). Its shape is a live portfolio
campaign: 10 coordinates (an 8-float vector, a categorical, a float active for one choice
only), two measures on a 100 × 100 grid (about 10,000 elites), four proposers taking
turns in batches of 100, 3 % failures with three messages, the last 200 rows pending or
running. A campaign of that name and size already there is reused (``--refill`` writes it
again); on PostgreSQL it lives in the schema ``atlas_million`` (``--schema``), so the
shared database's other schemas are untouched.

Timed, each best of 3 (``--repeat N``: of N):

- in process: each query behind ``atlas status NAME`` (counts and elites, counts by
  proposer, failure messages, exploration entropy), the whole status row, ``atlas elites``'
  rows, ``atlas map``'s figure;
- the real CLI in a subprocess (``python -m search.cli …``, output to a pipe), the CLI's
  start-up alone (``python -c "import search.cli"``: typer and rich) and a read command's
  (that and ``archive`` with the storage's SQLAlchemy dialect and driver): the difference
  is the command's own work, the other imports it makes lazily (NumPy, matplotlib)
  included;
- the dashboard (FastAPI's ``TestClient``, a fresh app per try, started before the clock,
  so nothing is cached): the
  campaign page and the three API views it prefetches (its first paint), then the other
  panels (history, scatter, proposers, failures; one try each, as they take tens of
  seconds at 10⁶).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from _common import best_of

NAME = "million"
PG_SCHEMA = "atlas_million"
BATCH = 50_000
REPEAT = 3  # each timing is the best of REPEAT tries (--repeat)
PROPOSERS = ("map-elites", "cma-me", "bo", "random")
ERRORS = ("ValueError: objective is NaN", "TimeoutError: evaluation ran past 900 s",
          "RuntimeError: CUDA out of memory\nTraceback (most recent call last):\n  File \"eval.py\", line 3")
COLUMNS = ("campaign_id", "seq", "params", "x", "proposer", "proposal", "status", "attempts", "objective",
           "measures", "metrics", "cell", "error", "worker", "created_at", "started_at", "finished_at",
           "finished_seq")
ROOT = Path(__file__).resolve().parents[1]


def spec(evals: int) -> dict[str, Any]:
    return {
        "name": NAME,
        "evaluator": {"kind": "benchmark", "config": {"function": "sphere", "dim": 10}},
        "space": {"x": {"type": "float", "low": -5.0, "high": 5.0, "size": 8},
                  "mode": {"type": "categorical", "choices": ["a", "b", "c"]},
                  "scale": {"type": "float", "low": 0.0, "high": 1.0, "when": {"mode": "a"}}},
        "measures": [{"name": "m0", "low": 0.0, "high": 1.0, "bins": 100},
                     {"name": "m1", "low": 0.0, "high": 1.0, "bins": 100}],
        "search": {"algorithm": "portfolio", "budget": evals + 1000, "batch_size": 100, "max_in_flight": 200,
                   "seed": 0},
    }


# -- the fill ------------------------------------------------------------------
def rows(campaign_id: int, evals: int, start: int, stop: int, rng: np.random.Generator) -> Iterator[tuple]:
    """Rows ``start`` … ``stop - 1`` of the campaign, as tuples of :data:`COLUMNS` (JSON as text)."""
    n = stop - start
    seq = np.arange(start, stop)
    proposer = (seq // 100) % len(PROPOSERS)
    # random proposes uniformly; the others near a moving centre (they explore less)
    centre = rng.random((n, 10))
    spread = np.where(proposer == 3, 1.0, 0.15 + 0.1 * (proposer == 1))[:, None]
    x = np.clip(np.where(spread >= 1.0, rng.random((n, 10)), centre + spread * rng.standard_normal((n, 10))), 0, 1)
    vec = -5.0 + 10.0 * x[:, :8]
    mode = np.minimum((x[:, 8] * 3).astype(int), 2)
    m = np.clip(np.column_stack([x[:, 0] * 0.7 + x[:, 1] * 0.3, x[:, 2] * 0.5 + x[:, 3] * 0.5])
                + 0.02 * rng.standard_normal((n, 2)), 0, 0.999999)
    objective = -(vec ** 2).sum(axis=1) / 8.0
    cell = (m[:, 0] * 100).astype(int) * 100 + (m[:, 1] * 100).astype(int)
    failed = rng.random(n) < 0.03
    unfinished = seq >= evals - 200
    t0 = 1.7e9 + seq * 0.01
    for i in range(n):
        s = int(seq[i])
        params: dict[str, Any] = {"x": [round(float(v), 6) for v in vec[i]], "mode": "abc"[mode[i]]}
        if mode[i] == 0:
            params["scale"] = round(float(x[i, 9]), 6)
        name = PROPOSERS[proposer[i]]
        if unfinished[i]:
            status = "running" if s % 2 else "pending"
            yield (campaign_id, s, json.dumps(params), json.dumps([round(float(v), 6) for v in x[i]]), name,
                   f'{{"batch": {s // 100}}}', status, int(status == "running"), None, None, None, None, None,
                   None, float(t0[i]), None, None, None)
            continue
        fin = s + 1
        if failed[i]:
            yield (campaign_id, s, json.dumps(params), json.dumps([round(float(v), 6) for v in x[i]]), name,
                   f'{{"batch": {s // 100}}}', "failed", 1 + s % 3, None, None, "{}", None,
                   ERRORS[s % len(ERRORS)], f"worker-{s % 16}", float(t0[i]), float(t0[i]) + 1, float(t0[i]) + 2,
                   fin)
            continue
        yield (campaign_id, s, json.dumps(params), json.dumps([round(float(v), 6) for v in x[i]]), name,
               f'{{"batch": {s // 100}}}', "done", 1, float(objective[i]),
               f'{{"m0": {float(m[i, 0])!r}, "m1": {float(m[i, 1])!r}}}',
               f'{{"tokens_per_s": {5000 + 100 * x[i, 0]:.1f}, "wall_s": {1 + x[i, 1]:.3f}}}', int(cell[i]), None,
               f"worker-{s % 16}", float(t0[i]), float(t0[i]) + 1, float(t0[i]) + 2, fin)


def create(url: str, evals: int, refill: bool) -> tuple[int, bool]:
    """The campaign's id, and whether it had to be written (a complete one is reused)."""
    from sqlalchemy import text

    from archive.store import Store
    from search.campaigns import commit_campaign, plan_campaign
    from search.spec import parse_spec

    store = Store(url)
    try:
        record = store.campaign(NAME)
        if record is not None and not refill and store.count_created(record.id) == evals:
            return record.id, False
        if record is not None:
            store.delete_campaign(record.id, force=True)
        record = commit_campaign(store, plan_campaign(store, parse_spec(spec(evals))))
        with store.write() as conn:
            conn.execute(text("UPDATE campaigns SET status = 'running' WHERE id = :c"), {"c": record.id})
        return record.id, True
    finally:
        store.close()


def fill(url: str, evals: int, campaign_id: int) -> None:
    """Write the evaluations in batches, then each cell's elite."""
    rng = np.random.default_rng(0)
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    if dialect == "postgresql":
        import psycopg

        conninfo = url.replace("postgresql+psycopg", "postgresql").split("?")[0]
        schema = url.rsplit("search_path%3D", 1)[1]
        with psycopg.connect(conninfo, options=f"-csearch_path={schema}") as conn:
            for start in range(0, evals, BATCH):
                with conn.cursor().copy(f"COPY evaluations ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                    for row in rows(campaign_id, evals, start, min(evals, start + BATCH), rng):
                        copy.write_row(row)
                conn.commit()
                print(f"  {min(evals, start + BATCH):,} rows", end="\r", flush=True)
            _elites(conn, campaign_id, "%s")
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE evaluations")
            conn.execute("VACUUM ANALYZE elites")
    else:
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        sql = f"INSERT INTO evaluations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        for start in range(0, evals, BATCH):
            conn.executemany(sql, rows(campaign_id, evals, start, min(evals, start + BATCH), rng))
            conn.commit()
            print(f"  {min(evals, start + BATCH):,} rows", end="\r", flush=True)
        _elites(conn, campaign_id, "?")
        conn.commit()
        conn.execute("ANALYZE")
        conn.close()
    print()


def _elites(conn: Any, campaign_id: int, mark: str) -> None:
    """Each cell's best done result as its elite (fitness = objective: maximised)."""
    conn.execute(
        "INSERT INTO elites (campaign_id, cell, evaluation_id, objective, fitness) "
        "SELECT campaign_id, cell, id, objective, objective FROM ("
        " SELECT campaign_id, cell, id, objective, row_number() OVER (PARTITION BY cell ORDER BY objective DESC, id)"
        f" AS r FROM evaluations WHERE campaign_id = {mark} AND status = 'done') best WHERE r = 1",
        (campaign_id,))


# -- the timings ------------------------------------------------------------------

def timed(fn: Callable[[], object]) -> float:
    """The fastest of :data:`REPEAT` timed calls of ``fn``, in seconds."""
    return best_of(fn, REPEAT)


def cli(*args: str) -> Callable[[], None]:
    """Run ``python -m search.cli ARGS`` from the repository, its output to a pipe."""
    env = {**os.environ, "COLUMNS": "120"}

    def go() -> None:
        done = subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"atlas {' '.join(args)}: {done.stderr[-2000:]}")
    return go


def startup(*modules: str) -> Callable[[], None]:
    """Run ``python -c "import search.cli, MODULES"`` from the repository."""
    code = f"import {', '.join(('search.cli', *modules))}"

    def go() -> None:
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return go


def measure(label: str, url: str, work: Path, parts: str) -> dict[str, float]:
    """The timings of one storage, in seconds: ``parts`` of queries, cli, dashboard."""
    out: dict[str, float] = {}
    if "queries" in parts:
        out.update(in_process(label, url, work))
    if "cli" in parts:
        out.update(commands(url, work))
    if "dashboard" in parts:
        out.update(dashboard(url))
    return out


def in_process(label: str, url: str, work: Path) -> dict[str, float]:
    """What the commands do, in this process."""
    import archive
    from search import cli as atlas

    out: dict[str, float] = {}
    with archive.open(url) as handle:
        camp = handle.campaign(NAME)
        out["status: counts + elites"] = timed(camp.stats)
        out["status: by proposer"] = timed(camp.proposer_counts)
        out["status: failures"] = timed(camp.failure_summary)
        out["status: exploration"] = timed(lambda: atlas._exploration(camp))
        out["status (in process)"] = timed(lambda: atlas._status_row(camp, detail=True))
        out["elites (in process)"] = timed(lambda: camp.elites(fields=("measures", "params")))
        out["map (in process)"] = timed(lambda: camp.map(work / f"{label}.png"))
    return out


def commands(url: str, work: Path) -> dict[str, float]:
    """The real command line, one process a command."""
    dialect = ("sqlalchemy.dialects.postgresql.psycopg" if url.startswith("postgresql")
               else "sqlalchemy.dialects.sqlite")
    out = {"python start-up + import search.cli": timed(startup()),
           "… + archive, the dialect and driver (a read command's start-up)": timed(startup("archive", dialect))}
    out["atlas status NAME (subprocess)"] = timed(cli("status", NAME, "--storage", url))
    out["atlas status NAME --json (subprocess)"] = timed(cli("status", NAME, "--json", "--storage", url))
    out["atlas elites NAME (subprocess)"] = timed(cli("elites", NAME, "--storage", url))
    out["atlas elites NAME --format csv (subprocess)"] = timed(cli("elites", NAME, "--format", "csv",
                                                                   "--storage", url))
    out["atlas map NAME (subprocess)"] = timed(cli("map", NAME, "--out", str(work / "cli.png"), "--storage", url))
    return out


def dashboard(url: str) -> dict[str, float]:
    """The campaign page's first paint (the page and the views it prefetches) and its other
    panels, each try on a fresh app (cold: nothing cached)."""
    from fastapi.testclient import TestClient

    from dashboard.app import create_app

    base = f"/api/campaigns/{NAME}"
    first = (f"/campaigns/{NAME}", base, f"{base}/layout", f"{base}/elites")
    rest = (f"{base}/history", f"{base}/scatter", f"{base}/proposers", f"{base}/failures?limit=20")

    def get_all(paths: tuple[str, ...]) -> float:
        """Seconds to answer ``paths`` in turn on a fresh app (started before the clock)."""
        with TestClient(create_app(url)) as client:
            start = time.perf_counter()
            for path in paths:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return time.perf_counter() - start

    def best(paths: tuple[str, ...]) -> float:
        return min(get_all(paths) for _ in range(3))

    get_all(first)  # the app's own imports, once
    out = {"dashboard first paint (page + summary + layout + elites)": best(first)}
    for path in first[1:]:
        out[f"dashboard GET {path.replace(base, '…')}"] = best((path,))
    for path in rest:  # tens of seconds each at 10⁶: one try
        out[f"dashboard GET {path.replace(base, '…')} (one try)"] = get_all((path,))
    return out


def postgres_schema(url: str, schema: str) -> str:
    """``url`` with its search_path on ``schema`` (created if missing)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    engine.dispose()
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (the schema atlas_million is used)")
    parser.add_argument("--schema", default=PG_SCHEMA, help="the PostgreSQL schema the campaign lives in")
    parser.add_argument("--sqlite", default=str(Path(tempfile.gettempdir()) / "atlas-million.db"))
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--evals", type=int, default=1_000_000)
    parser.add_argument("--refill", action="store_true", help="write the campaign again even if it is there")
    parser.add_argument("--parts", default="queries,cli,dashboard", help="what to time: queries, cli, dashboard")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=3, help="each timing is the best of this many tries")
    args = parser.parse_args()
    global REPEAT
    REPEAT = args.repeat
    storages = []
    if args.postgres:
        storages.append(("postgresql", postgres_schema(args.postgres, args.schema)))
    if not args.skip_sqlite:
        storages.append(("sqlite", f"sqlite:///{args.sqlite}"))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in storages:
            start = time.perf_counter()
            campaign_id, new = create(url, args.evals, args.refill)
            if new:
                fill(url, args.evals, campaign_id)
                print(f"{label}: {args.evals:,} evaluations written in {time.perf_counter() - start:.0f} s "
                      f"(load {os.getloadavg()[0]:.2f})", flush=True)
            results[label] = measure(label, url, Path(tmp), args.parts)
            print(f"{label}: measured (load {os.getloadavg()[0]:.2f})", flush=True)
    labels = list(results)
    print(f"\n{args.evals:,} evaluations; best of {REPEAT}, seconds; load average {os.getloadavg()}")
    print(f"| what | {' | '.join(labels)} |")
    print(f"| --- |{' ---: |' * len(labels)}")
    for key in results[labels[0]]:
        print(f"| {key} | {' | '.join(f'{results[lb][key]:.3f}' for lb in labels)} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
