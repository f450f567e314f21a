"""The ``atlas`` command line (typer + rich)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from archive.store import Stats, StorageError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Entropy Atlas: map how entropy settings trade performance against entropy.")
console = Console()
err = Console(stderr=True)

StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="SQLAlchemy URL (default: $ATLAS_STORAGE or sqlite:///atlas.db)")
]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="ray or inline")]
AddressOpt = Annotated[
    str | None, typer.Option("--address", help="an existing Ray cluster (default: start Ray locally)")
]


def _storage(storage: str | None) -> str:
    from search.api import default_storage

    return storage or default_storage()


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the errors a user can fix into a clear message and exit code 2."""
    from search.campaigns import CampaignConflict, CampaignNotFound
    from search.proposers import OptionError, ProposerNotAvailable
    from search.scheduler import CampaignBusy, LeaseLost
    from search.spec import SpecError
    from workers.registry import EvaluatorNotFound

    try:
        yield
    except SpecError as exc:
        err.print(f"[bold red]error:[/] {exc.source} is not valid:")
        for problem in exc.problems:
            err.print(f"  {problem}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except (CampaignConflict, CampaignNotFound, CampaignBusy, LeaseLost, StorageError, OptionError,
            ProposerNotAvailable, EvaluatorNotFound, KeyError, ValueError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _ProgressView:
    """A live bar: evaluations done of the budget, QD-score, coverage and best."""

    def __init__(self, budget: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("QD {task.fields[qd]}  cov {task.fields[cov]}  best {task.fields[best]}  "
                       "failed {task.fields[failed]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.task = self.progress.add_task("evaluating", total=budget, qd="—", cov="—", best="—", failed=0)

    def __call__(self, s: Stats) -> None:
        best = "—" if s.best_objective is None else f"{s.best_objective:.4g}"
        self.progress.update(self.task, completed=s.finished, qd=f"{s.qd_score:.4g}",
                             cov=f"{s.coverage:.1%}", best=best, failed=s.counts["failed"])


def _execute(action: Callable[[Callable[[Stats], None]], Stats], budget: int, name: str,
             storage: str, map_out: Path | None) -> None:
    view = _ProgressView(budget)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        with view.progress:
            stats = action(view)
    except KeyboardInterrupt:
        err.print(f"[yellow]stopped[/]; continue with `atlas resume {name}`")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    _summary(name, stats, storage, map_out)


def _summary(name: str, stats: Stats, storage: str, map_out: Path | None) -> None:
    import archive

    best = "—" if stats.best_objective is None else f"{stats.best_objective:.6g}"
    console.print(
        f"[bold green]{name}[/]: {stats.finished} evaluations ({stats.counts['failed']} failed), "
        f"{stats.elites}/{stats.cells} cells filled ({stats.coverage:.1%}), "
        f"QD-score {stats.qd_score:.6g}, best {best}"
    )
    out = map_out or Path("atlas-maps") / f"{name}.png"
    with archive.open(storage) as handle:
        path = handle.campaign(name).map(out)
    console.print(f"elite map: {path.resolve()}")


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="the campaign file (YAML)")],
    storage: StorageOpt = None,
    address: AddressOpt = None,
    executor: ExecutorOpt = "ray",
    name: Annotated[str | None, typer.Option(help="override the file's name")] = None,
    budget: Annotated[int | None, typer.Option(help="override the file's budget")] = None,
    map_out: Annotated[Path | None, typer.Option("--map", help="where to write the elite map PNG")] = None,
) -> None:
    """Create the campaign (or continue it if the same spec exists) and run it to budget."""
    from search import api

    with _errors():
        loaded = api.as_spec(spec)
        if name is not None or budget is not None:
            loaded = loaded.with_overrides(name=name, budget=budget)
        url = _storage(storage)
        _execute(lambda p: api.run(loaded, storage=url, executor=executor, address=address, progress=p),
                 loaded.search.budget, loaded.name, url, map_out)


@app.command()
def resume(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    storage: StorageOpt = None,
    address: AddressOpt = None,
    executor: ExecutorOpt = "ray",
    budget: Annotated[int | None, typer.Option(help="raise the budget")] = None,
    map_out: Annotated[Path | None, typer.Option("--map", help="where to write the elite map PNG")] = None,
) -> None:
    """Continue a stopped or killed campaign: nothing lost, nothing recorded twice."""
    from search import api
    from search.campaigns import stored_spec

    with _errors():
        url = _storage(storage)
        import archive

        with archive.open(url) as handle:
            _, spec = stored_spec(handle.store, name)
        total = budget or spec.search.budget
        _execute(lambda p: api.resume(name, storage=url, executor=executor, address=address,
                                      budget=budget, progress=p), total, name, url, map_out)


@app.command()
def submit(
    spec: Annotated[Path, typer.Argument(help="the campaign file (YAML)")],
    address: Annotated[str, typer.Option("--address", help="the Ray job server, http://HEAD:8265")],
    storage: StorageOpt = None,
    name: Annotated[str | None, typer.Option(help="override the file's name")] = None,
    budget: Annotated[int | None, typer.Option(help="override the file's budget")] = None,
    wait_: Annotated[bool, typer.Option("--wait", help="block until the job ends")] = False,
    python: Annotated[str, typer.Option(help="the Python on the cluster that has entropy-atlas installed")] = "python",
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE for the job's environment")] = None,
) -> None:
    """Run the scheduler on a Ray cluster as a Ray job; prints the job id."""
    from search import api, jobs

    with _errors():
        loaded = api.as_spec(spec)
        if name is not None or budget is not None:
            loaded = loaded.with_overrides(name=name, budget=budget)
        url = _storage(storage)
        if url.startswith("sqlite") and "127.0.0.1" not in address and "localhost" not in address:
            err.print("[yellow]warning:[/] a SQLite file is only visible to a scheduler on this machine; "
                      "use --storage postgresql+psycopg://… on a cluster")
        env_vars = {}
        for item in env or []:
            key, sep, value = item.partition("=")
            if not sep or not key:
                err.print(f"[bold red]error:[/] --env {item!r} is not KEY=VALUE")
                raise typer.Exit(2)
            env_vars[key] = value
        try:
            job_id = jobs.submit(loaded, address, url, env_vars=env_vars, python=python)
        except ConnectionError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
        console.print(job_id)
        if wait_:
            final = jobs.wait(address, job_id)
            console.print(f"job {job_id}: {final}")
            if final != "SUCCEEDED":
                for chunk in jobs.logs(address, loaded.name):
                    err.print(chunk[-4000:], markup=False, highlight=False)
                raise typer.Exit(1)


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    address: Annotated[str, typer.Option("--address", help="the Ray job server, http://HEAD:8265")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="follow until the job ends")] = False,
) -> None:
    """The log of the campaign's latest Ray job."""
    from search import jobs

    try:
        for chunk in jobs.logs(address, name, follow=follow):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except (LookupError, ConnectionError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="one campaign (default: list them all)")] = None,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Campaigns, or one campaign's progress, QD-score, coverage, best and proposers."""
    import archive

    with _errors(), archive.open(_storage(storage)) as handle:
        camps = [handle.campaign(name)] if name else handle.campaigns()
        rows = []
        for camp in camps:
            s = camp.stats()
            rows.append({
                "name": camp.name, "status": camp.record.status, "budget": camp.budget,
                "finished": s.finished, "done": s.counts["done"], "failed": s.counts["failed"],
                "running": s.counts["running"] + s.counts["pending"], "elites": s.elites,
                "cells": s.cells, "coverage": s.coverage, "qd_score": s.qd_score,
                "best": s.best_objective, "best_evaluation_id": s.best_evaluation_id,
                "algorithm": camp.spec["search"]["algorithm"],
                "proposers": camp.proposer_counts() if name else None,
                "exploration_entropy": _exploration(camp) if name else None,
            })
        if as_json:
            console.print_json(json.dumps(rows))
            return
        if not rows:
            console.print("no campaigns in this storage")
            return
        table = Table(title="campaigns" if not name else f"campaign {name}")
        for col in ("name", "algorithm", "status", "finished/budget", "failed", "in flight",
                    "coverage", "QD-score", "best"):
            table.add_column(col, justify="right" if col not in ("name", "algorithm", "status") else "left")
        for r in rows:
            table.add_row(r["name"], r["algorithm"], r["status"], f"{r['finished']}/{r['budget']}",
                          str(r["failed"]), str(r["running"]), f"{r['elites']}/{r['cells']} ({r['coverage']:.1%})",
                          f"{r['qd_score']:.6g}", "—" if r["best"] is None else f"{r['best']:.6g}")
        console.print(table)
        if name and rows[0]["proposers"]:
            ptable = Table(title="evaluations by proposer")
            for col in ("proposer", "done", "failed", "pending/running", "exploration entropy"):
                ptable.add_column(col)
            entropy = rows[0]["exploration_entropy"] or {}
            for proposer, counts in sorted(rows[0]["proposers"].items()):
                ptable.add_row(proposer, str(counts.get("done", 0)), str(counts.get("failed", 0)),
                               str(counts.get("pending", 0) + counts.get("running", 0)),
                               f"{entropy[proposer]:.3f}" if proposer in entropy else "—")
            console.print(ptable)


@app.command()
def elites(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    storage: StorageOpt = None,
    top: Annotated[int | None, typer.Option(help="only the K best")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """The elite table, best first."""
    import archive

    if fmt not in ("table", "json", "csv"):
        err.print(f"[bold red]error:[/] --format must be table, json or csv, not {fmt!r}")
        raise typer.Exit(2)
    with _errors(), archive.open(_storage(storage)) as handle:
        camp = handle.campaign(name)
        rows = [{k: e[k] for k in ("cell", "evaluation_id", "objective", "measures", "params")}
                for e in camp.elites(top=top)]
        if fmt == "json":
            sys.stdout.write(json.dumps(rows, indent=1) + "\n")
            return
        measure_names = camp.layout.measure_names
        param_names = sorted({k for r in rows for k in r["params"]})
        if fmt == "csv":
            import csv

            writer = csv.writer(sys.stdout)
            writer.writerow(["cell", "evaluation_id", camp.objective_name, *measure_names, *param_names])
            for r in rows:
                writer.writerow([r["cell"], r["evaluation_id"], r["objective"],
                                 *[r["measures"].get(m) for m in measure_names],
                                 *[_cell_text(r["params"].get(p)) for p in param_names]])
            return
        table = Table(title=f"elites of {name} ({len(rows)})")
        for col in ("cell", "eval", camp.objective_name, *measure_names, *param_names):
            table.add_column(col)
        for r in rows:
            table.add_row(str(r["cell"]), str(r["evaluation_id"]), f"{r['objective']:.6g}",
                          *[f"{r['measures'].get(m, float('nan')):.4g}" for m in measure_names],
                          *[_cell_text(r["params"].get(p)) for p in param_names])
        console.print(table)


def _exploration(camp: Any) -> dict[str, float]:
    """Iron Mind's normalised sampling entropy of each proposer's evaluations."""
    from search.exploration import exploration_entropy
    from search.space import SearchSpace
    from search.spec import parse_spec

    spec = parse_spec(camp.spec, source=f"stored spec of {camp.name}")
    return exploration_entropy(SearchSpace(spec.space), camp.evaluations())


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value[:4]) + (
            ", …]" if len(value) > 4 else "]")
    return str(value)


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    out: Annotated[Path, typer.Option("--out", help="FILE.json, FILE.csv or FILE.parquet")],
    storage: StorageOpt = None,
) -> None:
    """All evaluations and elites of a campaign, to JSON, CSV or Parquet."""
    import archive

    with _errors(), archive.open(_storage(storage)) as handle:
        path = handle.campaign(name).export(out)
    console.print(f"wrote {path}")


@app.command("map")
def map_(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    out: Annotated[Path, typer.Option("--out", help="the figure (PNG, SVG or PDF)")] = Path("map.png"),
    storage: StorageOpt = None,
) -> None:
    """The elite map as a heatmap (grid) or Voronoi plot (CVT)."""
    import archive

    with _errors(), archive.open(_storage(storage)) as handle:
        path = handle.campaign(name).map(out)
    console.print(f"wrote {path}")


@app.command()
def front(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    out: Annotated[Path, typer.Option("--out", help="the figure (PNG, SVG or PDF)")] = Path("front.png"),
    storage: StorageOpt = None,
) -> None:
    """Objective against each measure with the Pareto front (directions from mo-bo's options)."""
    import archive
    from archive.figures import pareto_front

    with _errors(), archive.open(_storage(storage)) as handle:
        camp = handle.campaign(name)
        directions = camp.spec["search"].get("options", {}).get("measure_directions", {})
        path = pareto_front(camp, out, directions)
    console.print(f"wrote {path}")


@app.command()
def law(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    measure: Annotated[str | None, typer.Option(
        "--measure", help="the entropy measure H (default: final_entropy, else the first measure)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="also draw the points and the curve (PNG, SVG or PDF)")]
    = None,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Fit the entropy-performance law R = -a*exp(H) + b over the done evaluations."""
    import archive
    from archive.law import law_figure

    with _errors(), archive.open(_storage(storage)) as handle:
        camp = handle.campaign(name)
        fit = camp.law(measure)
        path = law_figure(fit, out, title=f"{name}: R = −a·exp(H) + b") if out is not None else None
    if as_json:
        console.print_json(json.dumps({**fit.to_dict(), "figure": str(path) if path else None}))
        return
    table = Table(title=f"entropy-performance law of {name}: {fit.objective} = −a·exp({fit.measure}) + b")
    for col in ("", "estimate", "95% CI"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row("a", f"{fit.a:.6g}", f"[{fit.a_ci[0]:.4g}, {fit.a_ci[1]:.4g}]")
    table.add_row("b", f"{fit.b:.6g}", f"[{fit.b_ci[0]:.4g}, {fit.b_ci[1]:.4g}]")
    table.add_row("ceiling −a + b (H = 0)", f"{fit.ceiling:.6g}",
                  f"[{fit.ceiling_ci[0]:.4g}, {fit.ceiling_ci[1]:.4g}]")
    table.add_row("R²", f"{fit.r2:.4f}", "")
    table.add_row("evaluations", str(fit.n), "")
    console.print(table)
    if path is not None:
        console.print(f"wrote {path}")


@app.command("dashboard")
def dashboard_(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port (0: any free port)")] = 8787,
    poll: Annotated[float, typer.Option("--poll", help="seconds between a page's checks of a running campaign")] = 2.0,
) -> None:
    """A read-only web dashboard of the archive: elite maps, progress, fronts, proposers."""
    from search.dashboard.cli import DashboardError, dashboard

    try:
        with _errors():
            dashboard(_storage(storage), host=host, port=port, poll_s=poll)
    except DashboardError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
