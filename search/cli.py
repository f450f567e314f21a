"""The ``atlas`` command line (typer + rich)."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from entropy_atlas.errors import AtlasError, OutputPathError
from entropy_atlas.wording import count
from search.cli_help import AtlasTyper
from search.cli_tables import (
    bound_cell,
    campaign_table,
    campaigns_table,
    cell_text,
    column_labels,
    elites_table,
    failure_counts_table,
    failure_row,
    failures_table,
    floor_caption,
    law_groups_table,
    law_table,
    model_calls_table,
    param_columns,
    proposers_table,
    qd_offset_warning,
    qd_text,
)
from search.consoles import HintWords, OutputLost, console, err, escape, guarded_streams, hinted, lost_output_code
from search.printable import printable

if TYPE_CHECKING:  # what a command needs it imports itself: each pays only for its own
    from archive.records import Stats

app = AtlasTyper(add_completion=False, no_args_is_help=True,  # help as users read it: search/cli_help.py
                 help="Entropy Atlas: map how entropy settings trade performance against entropy.")

StorageOpt = Annotated[
    str | None, typer.Option("--storage", help="SQLAlchemy URL (default: $ATLAS_STORAGE or sqlite:///atlas.db)")
]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="ray or inline")]
AddressOpt = Annotated[
    str | None, typer.Option("--address", help="an existing Ray cluster (default: start Ray locally)")
]


class _StorageFrom:
    """Where this command's storage URL came from: ``env`` is it where that was
    ``$ATLAS_STORAGE`` (no ``--storage`` given), so that :func:`_errors` says so of an error
    about the URL itself (:class:`~archive.errors.StorageURLError`)."""

    env: str | None = None


def _storage(storage: str | None) -> str:
    """``--storage``, else ``$ATLAS_STORAGE``, else the default. An empty ``--storage ''`` is
    refused: it had meant the default without a word (``no campaigns in this storage``)."""
    from entropy_atlas.settings import default_storage  # not search.api's: that imports the scheduler (0.5 s)

    _StorageFrom.env = None if storage is not None else (os.environ.get("ATLAS_STORAGE") or None)
    if storage == "":
        from archive.errors import StorageURLError

        raise StorageURLError("--storage is empty: give a storage URL (sqlite:///FILE or postgresql+psycopg://"
                              "USER@HOST/DB), or leave --storage out for the default ($ATLAS_STORAGE, else "
                              "sqlite:///atlas.db)")
    return storage or default_storage()


def _error_lines(exc: AtlasError) -> list[str]:
    """``exc``'s lines, the first naming ``$ATLAS_STORAGE`` where the error is about the
    storage URL and that URL came from the variable (:class:`_StorageFrom`)."""
    from archive.errors import StorageURLError

    lines = exc.lines()
    if isinstance(exc, StorageURLError) and _StorageFrom.env is not None and not lines[0].startswith("ATLAS_STORAGE="):
        from archive.engine import from_atlas_storage

        lines[0] = from_atlas_storage(_StorageFrom.env, lines[0])
    return lines


@contextmanager
def _errors() -> Iterator[None]:
    """Turn an :class:`AtlasError` (anything a user can fix) into ``error:`` lines, exit 2."""
    try:
        yield
    except AtlasError as exc:
        for line in _error_lines(exc):
            err.print(f"[bold red]error:[/] {escape(hinted(line))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _at_least(flag: str, value: int | None, minimum: int) -> int | None:
    """``flag``'s ``value``: below ``minimum`` refused as one ``error:`` line, exit 2 (what
    typer's own ``min=`` would draw as a box); past what SQL's LIMIT takes (2**63 - 1),
    that (it means "all" either way)."""
    if value is not None and value < minimum:
        err.print(f"[bold red]error:[/] {flag} must be >= {minimum}, not {value}", highlight=False)
        raise typer.Exit(2)
    return None if value is None else min(value, 2**63 - 1)


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(hinted(message))}", highlight=False, soft_wrap=True)


def _read(storage: str | None, name: str | None = None, *, writes: bool = False) -> Any:
    """The storage opened read-only: read commands create, migrate and write nothing. A
    storage file that does not exist holds no campaign ``name`` either, and says so. The
    first look of a command that ``writes`` (``delete``) brings an archive at an older
    schema revision up, as its write would."""
    import archive
    from archive.engine import missing_hint, parse_storage_url, sqlite_file
    from archive.errors import SchemaBehind

    url = _storage(storage)
    path = sqlite_file(parse_storage_url(url))
    if name is not None and path is not None and not path.exists():
        raise archive.CampaignNotFound(f"no campaign named {name!r}: the storage file {path} does not exist; "
                                       f"{missing_hint(path)}")
    try:
        return archive.open(url, readonly=True)
    except SchemaBehind:
        if not writes:
            raise
        return archive.open(url, readonly=False)


def strict_json(value: Any, indent: int | None = None) -> str:
    """``value`` as JSON that every parser reads (RFC 8259): a number past the float range
    (a QD-score summed to infinity) as ``null``, where ``json.dumps`` wrote ``Infinity``."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class _ProgressView:
    """What ``run`` and ``resume`` show: while the run starts (the storage opened, the
    proposer built, the workers started and their evaluators set up) a spinner that leaves nothing behind, so that an
    error found then stands alone; from the first report on, a live bar of evaluations
    done of the budget, QD-score, coverage and best. Off a terminal (a log file, a pipe),
    where rich would draw that bar once, at the end, cut to 80 columns, the same figures
    are plain lines: :data:`STARTING` as the run starts (Ray's start and the evaluators'
    setup take 10–25 s, of which a log had said nothing), then one every
    ``ATLAS_PROGRESS_EVERY_S`` (30 s), so that a log shows how a long run goes, and the last
    when the run ends. A warning printed while the spinner or the bar is shown is a line of
    its own above it (:class:`search.consoles._Console`)."""

    STARTING = "starting: the storage, the proposer, the workers and their setup"

    def __init__(self, budget: int) -> None:
        from entropy_atlas import settings

        self.budget = budget
        self.starting = console.status(self.STARTING)
        self.progress: Any = None
        self.task: Any = None
        self.every_s = None if console.is_terminal else settings.progress_every_s()
        self.began = self.said_at = 0.0  # when the first report came, and when a plain line was last written
        self.last: Stats | None = None  # the latest report, for the plain line the run ends with

    def __enter__(self) -> _ProgressView:
        if self.every_s is not None:  # off a terminal, where the spinner draws nothing
            console.print(self.STARTING, highlight=False)
        self.starting.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.starting.stop()
        if self.progress is not None:
            self.progress.stop()
        elif self.last is not None:
            console.print(self._line(self.last), highlight=False)

    def __call__(self, s: Stats) -> None:
        if self.last is None and self.progress is None:
            self.starting.stop()
            self.began = self.said_at = time.monotonic()
            if self.every_s is None:
                self._start_bar()
        if self.every_s is None:
            best = "—" if s.best_objective is None else f"{s.best_objective:.4g}"
            self.progress.update(self.task, completed=s.finished, qd=qd_text(s.qd_score),
                                 cov=f"{s.coverage:.1%}", best=best, failed=s.counts["failed"])
            return
        self.last = s
        now = time.monotonic()
        if now - self.said_at >= self.every_s and s.finished < self.budget:
            self.said_at = now
            console.print(self._line(s), highlight=False)

    def _line(self, s: Stats) -> str:
        """``evaluating 120/400  QD 1234  cov 30.0%  best 0.9  failed 0  0:01:02``."""
        best = "—" if s.best_objective is None else f"{s.best_objective:.4g}"
        elapsed = int(time.monotonic() - self.began)
        return (f"evaluating {s.finished}/{self.budget}  QD {qd_text(s.qd_score)}  cov {s.coverage:.1%}  best {best}  "
                f"failed {s.counts['failed']}  {elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}")

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("QD {task.fields[qd]}  cov {task.fields[cov]}  best {task.fields[best]}  "
                       "failed {task.fields[failed]}"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.task = self.progress.add_task("evaluating", total=self.budget, qd="—", cov="—", best="—", failed=0)
        self.progress.start()


def _default_map(storage: str, name: str) -> Path:
    """Where ``atlas run`` writes the map when ``--map`` is not given: ``atlas-maps/NAME.png``
    for the default storage, else under a folder named after the storage (two storages'
    campaigns of one name never overwrite each other's map)."""
    from archive.engine import DEFAULT_STORAGE
    from archive.figures import MAPS_DIR, default_map_path

    return MAPS_DIR / f"{name}.png" if storage == DEFAULT_STORAGE else default_map_path(storage, name)


def _execute(action: Callable[[Callable[[Stats], None]], Stats], budget: int, name: str,
             storage: str, map_out: Path | None) -> None:
    with _stoppable(_RunStop(storage, name, budget)):
        with _ProgressView(budget) as view:
            stats = action(view)
        _summary(name, stats, storage, map_out)


class _Stopped:
    """Whether this command has said why it stopped (:func:`_stoppable`), for
    :func:`_run_app` to say it where nothing did."""

    said = False




@contextmanager
def _resume_words(name: str | None = None, storage: str | None = None) -> Iterator[type[HintWords]]:
    """:class:`~search.consoles.HintWords` for the block (the command), cleared after it:
    with ``name``, a read command's campaign and its ``--storage`` (:func:`_note_storage_words`)."""
    try:
        if name is not None or storage:
            _note_storage_words(name, storage)
        yield HintWords
    finally:
        HintWords.clear()


def _storage_words(storage: str | None) -> str:
    """`` --storage URL`` (its password hidden) where a ``--storage`` was given, else ``""``."""
    if not storage:
        return ""
    import shlex

    from archive.engine import shown_url

    return f" --storage {shlex.quote(shown_url(storage))}"


def _note_storage_words(name: str | None, storage: str | None) -> None:
    """What :class:`~search.consoles.HintWords` adds to each printed `` `atlas COMMAND NAME` ``
    of campaign ``name`` where a read command was given ``storage``."""
    HintWords.name, HintWords.storage, HintWords.run_flags = name, _storage_words(storage), ""


def _note_resume_flags(name: str, storage: str | None, url: str, executor: str, address: str | None) -> None:
    """What :class:`~search.consoles.HintWords` adds to campaign ``name``'s printed hints:
    ``--storage`` (where one was given) to each `` `atlas COMMAND NAME` ``, and ``--executor``
    where not Ray and ``--address`` where given to its `` `atlas resume NAME` `` lines, so that
    a resume copied from an error runs as the command that printed it did."""
    import shlex

    flags = [*(("--executor", executor) if executor != "ray" else ()), *(("--address", address) if address else ())]
    HintWords.name, HintWords.storage = name, _storage_words(url if storage else None)
    HintWords.run_flags = "".join(f" {shlex.quote(str(f))}" for f in flags)


def _say_stopped(detail: str) -> None:
    """The one line an interrupted command ends with: ``stopped`` and what it kept."""
    err.print(f"[yellow]stopped[/]{escape(hinted(detail))}", highlight=False, soft_wrap=True)
    _Stopped.said = True


@contextmanager
def _stoppable(kept: Callable[[], str]) -> Iterator[None]:
    """A Ctrl-C (SIGINT) or SIGTERM anywhere in the block stops the command as the
    scheduler's loop stops (:mod:`entropy_atlas.interrupts`: each raises
    :class:`KeyboardInterrupt`, a write held until its transaction ends): one line,
    ``stopped`` and what ``kept()`` says was kept, exit 130, no traceback. Where typer
    caught the interrupt it had exited 130 without a word, and a SIGTERM had killed the
    command without one. An unexpected error that came of the interrupt is the stop too
    (a ``KeyboardInterrupt`` inside a compiled module's import comes back as ``ImportError:
    initialization failed``; that had printed a traceback, exit 1); an :class:`AtlasError`
    stays the error it is. A second interrupt while ``kept()`` looks (it may read the
    storage) leaves the line without its detail. The handlers before are put back."""
    from entropy_atlas import interrupts

    outermost = signal.getsignal(signal.SIGINT) is not interrupts.interrupt
    if outermost:
        interrupts.clear()
    previous = {signum: signal.signal(signum, interrupts.interrupt) for signum in interrupts.HELD}
    try:
        try:
            yield
        except (AtlasError, typer.Exit, typer.Abort):  # said as they are (a takeover found by the stop, ...)
            raise
        except Exception:
            if not interrupts.requested():
                raise
            raise KeyboardInterrupt from None
    except KeyboardInterrupt:
        try:
            detail = kept()
        except KeyboardInterrupt:
            detail = ""
        _say_stopped(detail)
        raise typer.Exit(130) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if outermost:  # acted on: not left for a later run in this process (the API's, a test's) to find
            interrupts.clear()


NOTHING_WRITTEN = "; nothing was written"


class _RunStop:
    """What an interrupted ``run`` or ``resume`` kept, told by the campaign's record once
    its name and storage are known: nothing before that; nothing of a campaign that was
    never written; a campaign that had finished at the ``budget`` this command runs to
    (the interrupt cut its summary); else a campaign to resume, with how many evaluations
    it kept of how many and how many written ones the resume runs again (``stopped after 10
    of 100 evaluations (2 to run again)``, read from the storage once the run stopped: the
    progress line above it may show an earlier count), and ``--budget`` where the raise this
    command was to write is not stored yet (it had said the campaign finished)."""

    def __init__(self, storage: str | None = None, name: str | None = None, budget: int | None = None) -> None:
        self.storage = storage
        self.name = name
        self.budget = budget  # None: the campaign's own

    def __call__(self) -> str:
        if self.storage is None or self.name is None:
            return f" while starting{NOTHING_WRITTEN}"
        found = _campaign_record(self.storage, self.name)
        if found is None:
            return " before the campaign was written; nothing to resume"
        status, stored_budget, finished, unfinished = found
        raise_ = f" --budget {self.budget}" if self.budget is not None and stored_budget < self.budget else ""
        if status == "finished" and not raise_:  # the interrupt came after the run's last write
            return (f" after the campaign finished; `atlas status {self.name}` and "
                    f"`atlas map {self.name} --out FILE` show it")
        kept = f" after {finished} of {count(self.budget if raise_ else stored_budget, 'evaluation')}"
        again = f" ({unfinished} to run again)" if unfinished else ""
        return f"{kept}{again}; continue with `atlas resume {self.name}{raise_}`"


class _ReadStop:
    """What an interrupted read command kept: nothing (it opened the storage read-only). An
    output file it had begun to write (:meth:`writing`) is removed again. One it was
    rewriting is whole either way (outputs are put in place once complete:
    :func:`archive.outputs.replacing`): the earlier file, or the new one where the
    interrupt came after it was put in place."""

    def __init__(self) -> None:
        self.out: Path | None = None
        self.existed = False

    @contextmanager
    def writing(self, out: Path) -> Iterator[None]:
        """:func:`archive.outputs.writing`, with ``out`` noted for an interrupt meanwhile."""
        from archive.outputs import writing

        self.out, self.existed = out, out.exists()
        with writing(out):
            yield
        self.out = None

    def __call__(self) -> str:
        out, self.out = self.out, None
        if out is None or not out.exists():
            return NOTHING_WRITTEN
        if not self.existed:
            with contextlib.suppress(OSError):
                out.unlink()
                return NOTHING_WRITTEN
        return f"; {out} is whole: the earlier file, or this command's where it was already in place"


def _campaign_record(storage: str, name: str) -> tuple[str, int, int, int] | None:
    """Campaign ``name``'s recorded status and budget in ``storage``, with its evaluations
    finished and those written and not finished (None: it holds no such campaign, or cannot
    be read)."""
    import archive

    try:
        with archive.open(storage, readonly=True) as handle:
            record = handle.store.campaign(name)
            if record is None:
                return None
            s = handle.campaign(name).stats()
            return (record.status, record.settings.budget, s.finished,
                    s.counts.get("pending", 0) + s.counts.get("running", 0))
    except Exception:
        return None


def _say_summary(name: str, stats: Stats) -> None:
    """The run's summary line, ``NAME: 30 evaluations (0 failed), 30/100 cells filled
    (30.0%), QD-score -62.5599, best 3.2``. On a terminal narrower than the line it is
    broken only after a ``, `` (:func:`_lines_at_commas`): rich had broken it at any space,
    ``QD-score`` at one line's end and its value on the next. Off a terminal, one line."""
    from rich.cells import cell_len

    best = "—" if stats.best_objective is None else f"{stats.best_objective:.6g}"
    parts = [f"{name}: {stats.finished} evaluations ({stats.counts['failed']} failed)",
             f"{stats.elites}/{stats.cells} cells filled ({stats.coverage:.1%})",
             f"QD-score {qd_text(stats.qd_score)}", f"best {best}"]
    lines = [escape(line) for line in _lines_at_commas([printable(p) for p in parts],
                                                        console.width if console.is_terminal else None, cell_len)]
    shown = escape(name)  # the first line's start: the name, in colour
    console.print(f"[bold green]{shown}[/]{lines[0][len(shown):]}", *lines[1:], sep="\n", highlight=False,
                  soft_wrap=True)


def _lines_at_commas(parts: list[str], width: int | None, measure: Callable[[str], int] = len) -> list[str]:
    """``parts`` joined by ``, ``, as lines of at most ``width`` cells (``measure``'s) where
    they fit, each broken after a comma; a part wider than ``width`` is a line of its own
    (the terminal wraps it). ``width`` None: one line."""
    lines: list[str] = []
    for i, part in enumerate(parts):
        ends = "," if i < len(parts) - 1 else ""  # the comma a line ends with where another part follows
        if lines and (width is None or measure(f"{lines[-1]} {part}{ends}") <= width):
            lines[-1] += f" {part}{ends}"
        else:
            lines.append(part + ends)
    return lines


def _summary(name: str, stats: Stats, storage: str, map_out: Path | None) -> None:
    """The run's summary line and its map; then, where elites lie outside the map's axes,
    one warning saying so (:func:`archive.outside.run_warning`), from the map's own elites."""
    import archive

    _say_summary(name, stats)
    from archive.outputs import writing
    from archive.outside import Outside, outside_axes, run_warning

    out = map_out or _default_map(storage, name)
    found, kind, data = Outside(), "grid", None
    try:  # the run is complete: a map that cannot be written (a full disk) is a warning, exit 0
        with archive.open(storage, readonly=True) as handle, writing(out):
            camp = handle.campaign(name)
            data = camp.map_data()
            found, kind = outside_axes(data.layout.axes, data.elites), data.layout.kind
            if map_out is None:  # atlas-maps/…, a folder of Entropy Atlas's naming, is made (a --map one must exist)
                out.parent.mkdir(parents=True, exist_ok=True)
            path = camp.map(out, data)
    except OutputPathError as exc:
        _warn(f"{exc}; the run is complete and stored: `atlas map {name} --out FILE` draws its map")
    else:
        console.print(f"elite map: {path.resolve()}")
    if found:
        _warn(run_warning(found, kind, name))
    if data is not None and (below := qd_offset_warning([e["fitness"] for e in data.elites], data.settings)):
        _warn(below)


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
    stop = _RunStop()
    with _resume_words(), _stoppable(stop), _errors():  # from the start: the imports and checks take seconds
        from archive.outputs import FIGURE_SUFFIXES, check_output
        from search import api

        try:
            loaded = api.as_spec(spec)
        except AtlasError as exc:
            raise _name_for_file(exc, spec, storage, executor, address) from None
        if name is not None or budget is not None:
            loaded = loaded.with_overrides(name=name, budget=budget, source=str(spec))
        url = _storage(storage)
        stop.storage, stop.name, stop.budget = url, loaded.name, loaded.search.budget
        _note_resume_flags(loaded.name, storage, url, executor, address)
        if (finished := _finished_as_planned(url, loaded, str(spec), budget)) is not None:
            _say_finished(loaded.name, finished)  # as resume says it: nothing to run, no Ray, no map drawn again
            return
        check_output(map_out or _default_map(url, loaded.name), FIGURE_SUFFIXES, url,  # before the run, not after
                     new_folders=map_out is None,  # atlas-maps/… is made; a --map folder must exist
                     what=None if map_out is None else "--map")
        _execute(lambda p: api.run(loaded, storage=url, executor=executor, address=address, progress=p,
                                   budget=budget, source=str(spec), on_warning=_warn,  # budget: named if refused
                                   cli_words=True),
                 loaded.search.budget, loaded.name, url, map_out)


@app.command()
def resume(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    storage: StorageOpt = None,
    address: AddressOpt = None,
    executor: ExecutorOpt = "ray",
    budget: Annotated[int | None, typer.Option(help="a new budget: above the stored one to run more, below it "
                                                   "(not below what was created) to stop sooner")] = None,
    map_out: Annotated[Path | None, typer.Option("--map", help="where to write the elite map PNG")] = None,
) -> None:
    """Continue a stopped or killed campaign: nothing lost, nothing recorded twice."""
    stop = _RunStop()
    with _resume_words(), _stoppable(stop), _errors():
        from archive.outputs import FIGURE_SUFFIXES, check_output
        from search import api

        url = _storage(storage)
        stop.storage, stop.name, stop.budget = url, name, budget
        _note_resume_flags(name, storage, url, executor, address)
        check_output(map_out or _default_map(url, name), FIGURE_SUFFIXES, url, new_folders=map_out is None,
                     what=None if map_out is None else "--map")
        try:
            done = api.completion(url, name, budget)  # one read-only open: complete or not, and the stored budget
        except AtlasError as exc:
            raise _file_for_name(exc, name, storage, url, executor, address) from None
        total = done.budget
        if done.complete:
            _say_finished(name, done)
            return
        _execute(lambda p: api.resume(name, storage=url, executor=executor, address=address, budget=budget,
                                      progress=p, on_warning=_warn, cli_words=True),  # a lowered budget: warned
                 total, name, url, map_out)


def _name_for_file(exc: AtlasError, spec: Path, storage: str | None, executor: str,
                   address: str | None) -> AtlasError:
    """``atlas run NAME``'s error where ``spec`` is no file but a campaign of that name is in
    the storage: ``exc`` with ``a campaign named NAME exists: `atlas resume NAME` `` added
    (one read-only look); else ``exc`` as it is. It had said ``no such file`` alone."""
    from search.spec import SpecError

    if spec.exists() or not isinstance(exc, SpecError) or len(exc.problems) != 1:
        return exc
    try:
        url = _storage(storage)
    except AtlasError:
        return exc
    if _campaign_record(url, str(spec)) is None:
        return exc
    _note_resume_flags(str(spec), storage, url, executor, address)
    return SpecError([f"{exc.said_once(exc.problems[0])}; a campaign named {spec} exists: `atlas resume {spec}`"],
                     exc.source)


def _file_for_name(exc: AtlasError, name: str, storage: str | None, url: str, executor: str,
                   address: str | None) -> AtlasError:
    """``atlas resume FILE``'s error where ``name`` is no campaign of the storage but a
    campaign file (or names one: ``….yaml``): which campaign the file holds and the resume
    that runs it, or that resume takes a campaign's name; else ``exc`` as it is. It had said
    ``no campaign named 'bo.yaml'`` and listed the others. Read-only, no workers."""
    from archive.errors import CampaignNotFound

    path = Path(name)
    if not isinstance(exc, CampaignNotFound) or not (path.is_file() or path.suffix in (".yaml", ".yml", ".json")):
        return exc
    run_it = f"`atlas run {name}{_storage_words(url if storage else None)}` runs "
    try:
        from search import api

        campaign = api.as_spec(path).name if path.is_file() else None
    except AtlasError:
        campaign = None
    if campaign is None:
        return CampaignNotFound(f"{exc.lines()[0]}; resume takes a campaign's NAME ({run_it}a campaign file)")
    _note_resume_flags(campaign, storage, url, executor, address)
    if _campaign_record(url, campaign) is None:
        return CampaignNotFound(f"{name} is a campaign file; its campaign {campaign} is not in this storage: "
                                f"{run_it}it")
    return CampaignNotFound(f"{name} is a campaign file; its campaign is {campaign}: `atlas resume {campaign}`")


def _say_finished(name: str, done: Any) -> None:
    """The line ``run`` and ``resume`` say of a campaign finished at the budget they run
    to (``done``: :class:`search.api.Completion`), with what raises it; exit 0."""
    console.print(escape(hinted(_finished_text(name, done.finished, done.budget))), highlight=False)


def _finished_text(name: str, finished: int, budget: int) -> str:
    """What ``run``, ``resume`` and ``check`` say of campaign ``name`` finished at ``budget``."""
    return (f"campaign {name} is already finished: {finished} of {budget} evaluations; "
            f"raise the budget to go on (`atlas resume {name} --budget N`)")


def _finished_as_planned(url: str, loaded: Any, source: str, budget: int | None) -> Any:
    """Where storage ``url`` holds campaign ``loaded.name`` finished at the budget ``atlas
    run`` runs it to, and the file may continue it (:func:`search.campaigns.plan_campaign`
    agrees), what :func:`search.api.completion_in` read of it; else None, for the run to go on
    (and refuse what it refuses, as it always did). A look of its own, one read-only open;
    the plan (which may build the proposer) only for a campaign found finished: ``run`` of
    a finished campaign had started Ray, shown ``evaluating 300/300`` and drawn its map again,
    where ``resume`` said it was finished."""
    import archive
    from search import api
    from search.campaigns import plan_campaign

    try:
        with archive.open(url, readonly=True) as handle:
            if handle.store.campaign(loaded.name) is None:
                return None
            done = api.completion_in(handle.store, loaded.name, loaded.search.budget)
            if not done.complete:
                return None
            plan_campaign(handle.store, loaded, source=source,
                          budget_source=source if budget is None else f"{source} with --budget {budget}")
    except Exception:  # the run says what is wrong, as it did
        return None
    return done


@app.command()
def check(
    specs: Annotated[list[Path], typer.Argument(help="the campaign files (YAML), one or more")],
    storage: StorageOpt = None,
    name: Annotated[str | None, typer.Option(help="override the file's name (one file only)")] = None,
    budget: Annotated[int | None, typer.Option(help="override the files' budget")] = None,
    setup: Annotated[bool, typer.Option("--setup", help="also set the evaluator up once, here (a model that "
                                                        "cannot be loaded); it may take seconds")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Check campaign files as atlas run would, against the storage they would run on, and say what each run would
    do: it writes nothing and starts no workers.

    Exit 0 where every run would start (a campaign another scheduler is running now is said in a line); exit 2, with
    each refused run's own error lines, where any would be refused.

    \f
    Each file is checked on its own, in the order given, by :func:`_check_one`; the
    summaries of several are separated by a blank line (``--json``: a list of the reports of
    the files that passed, one object where one file is given). ``--name`` names one
    campaign: it is refused with several files."""
    if name is not None and len(specs) > 1:
        err.print(f"[bold red]error:[/] --name names one campaign, and {len(specs)} files were given", highlight=False)
        raise typer.Exit(2)
    reports: list[dict[str, Any]] = []
    refused = False
    for spec in specs:
        try:
            report = _check_one(spec, storage, name, budget, setup)
        except typer.Exit as exc:
            if exc.exit_code != 2:  # an interrupt stops them all
                raise
            refused = True
            continue
        if reports and not as_json:
            console.print()  # a blank line between two files' summaries
        reports.append(report)
        if not as_json:
            for line in report["lines"]:
                console.print(escape(line), highlight=False)
    if as_json and reports:
        shown = [{k: v for k, v in r.items() if k != "lines"} for r in reports]
        console.print_json(strict_json(shown if len(specs) > 1 else shown[0]), ensure_ascii=True)
    if refused:
        raise typer.Exit(2)


def _check_one(spec: Path, storage: str | None, name: str | None, budget: int | None, setup: bool) -> dict[str, Any]:
    """One file of ``atlas check``: its report as a dict (the file as given in ``file``, the
    summary's ``lines``), its warnings and refusal printed as ``run`` prints them (exit 2).

    The checks are :func:`search.api.check`'s, :func:`search.api.run`'s own, in its order,
    after the file is read as ``run`` reads it (a campaign's name given for the file says
    so: :func:`_name_for_file`). The elite map's default path is checked where ``run``
    checks it: after the look for a campaign finished at this budget
    (:func:`_finished_as_planned`), before the storage's campaign and the file's warnings,
    so a path that cannot be written is the run's one line. The warnings are ``warning:``
    lines, as ``run`` prints them (for a finished campaign as well, where ``run`` says only
    that it is finished)."""
    with _resume_words(), _stoppable(lambda: NOTHING_WRITTEN), _errors():
        import dataclasses

        from archive.outputs import FIGURE_SUFFIXES, check_output
        from search import api

        try:
            loaded = api.as_spec(spec)
        except AtlasError as exc:
            raise _name_for_file(exc, spec, storage, "ray", None) from None
        if name is not None or budget is not None:
            loaded = loaded.with_overrides(name=name, budget=budget, source=str(spec))
        url = _storage(storage)
        _note_resume_flags(loaded.name, storage, url, "ray", None)
        if _finished_as_planned(url, loaded, str(spec), budget) is None:  # run checks the map here, and only then
            check_output(_default_map(url, loaded.name), FIGURE_SUFFIXES, url, new_folders=True)
        report = api.check(loaded, storage=url, budget=budget, setup=setup, source=str(spec), on_warning=_warn,
                           cli_words=True)
        lines = [hinted(line) for line in _check_lines(report, _new_file(url))]
        return {"file": str(spec), **dataclasses.asdict(report), "lines": lines}


def _new_file(url: str) -> bool:
    """Whether ``url`` is a SQLite file that is not there yet (a run creates it)."""
    from archive.engine import parse_storage_url, sqlite_file

    path = sqlite_file(parse_storage_url(url))
    return path is not None and not path.exists()


def _check_lines(report: Any, new_file: bool = False) -> list[str]:
    """``atlas check``'s summary of ``report`` (:class:`search.api.CheckReport`): the
    campaign, its map and evaluator; the storage and what the run does there (``new_file``:
    a SQLite file it creates); who runs it now, where a scheduler does; the setup, where run."""
    r = report
    kind = "grid" if r.archive == "grid" else "CVT"
    lines = [f"{r.name}: {r.algorithm}, {count(r.budget, 'evaluation')} in batches of {r.batch_size} "
             f"({r.max_in_flight} in flight)",
             f"{count(r.cells, f'{kind} cell')} over {' × '.join(r.measures)}, evaluator {r.evaluator}"]
    if r.campaign == "new":
        state = "a new campaign" + ("; the run creates the file" if new_file else "")
    elif r.campaign == "continues":
        state = f"continues campaign {r.name}: {r.done} of {r.budget} evaluations done, {r.to_run} to run"
    elif r.campaign == "unknown":
        state = ("an archive at an older schema revision, which the run brings up to this version first "
                 "(`atlas migrate --storage URL` does it alone); check again after that for the campaign it may hold")
    else:
        state = _finished_text(r.name, r.done, r.budget)
    lines.append(f"{r.storage}: {state}")
    if r.held_by is not None:
        lines.append(f"campaign {r.name} is being run now by {r.held_by}; a run is refused until it stops")
    if r.setup:
        lines.append("the evaluator's setup succeeded")
    return lines


@app.command()
def submit(
    spec: Annotated[Path, typer.Argument(help="the campaign file (YAML)")],
    address: Annotated[str, typer.Option("--address", help="the job server http://HEAD:8265, or the GCS HEAD:6379")],
    storage: StorageOpt = None,
    name: Annotated[str | None, typer.Option(help="override the file's name")] = None,
    budget: Annotated[int | None, typer.Option(help="override the file's budget")] = None,
    wait_: Annotated[bool, typer.Option("--wait", help="block until the job ends")] = False,
    python: Annotated[str, typer.Option(help="the Python on the cluster that has entropy-atlas installed")] = "python",
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE for the job's environment")] = None,
) -> None:
    """Run the scheduler on a Ray cluster as a Ray job; prints the job id."""
    stop = _SubmitStop(address)
    with _stoppable(stop), _errors():
        from search import api, jobs

        loaded = api.as_spec(spec)
        if name is not None or budget is not None:
            loaded = loaded.with_overrides(name=name, budget=budget, source=str(spec))
        api.check_campaign(loaded, str(spec), evaluator=False)  # a refused option fails here, not on the cluster
        env_vars = _job_env(env)
        python = jobs.job_python(python, _local_address(address))
        url = _job_storage(_storage(storage), address)
        if (warning := jobs.password_warning(url)) is not None:
            _warn(warning)
        _warn_unshipped_target(loaded, spec, env_vars)
        stop.name = loaded.name
        job_id = jobs.submit(loaded, address, url, env_vars=env_vars, python=python, on_retry=_warn)
        stop.job_id = job_id
        console.print(job_id, markup=False, highlight=False)
        if wait_:
            _wait_for_job(address, job_id)


class _SubmitStop:
    """What an interrupted ``atlas submit`` left: nothing before it sent the job; once it
    had, a job that may run (sent, no answer yet) or runs (its id printed) on the cluster,
    and how to find it: an interrupt does not stop a job."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.name: str | None = None  # the campaign's, once the job is being sent
        self.job_id: str | None = None  # once the job server took it

    def __call__(self) -> str:
        if self.name is None:
            return "; nothing was submitted"
        logs = f"`atlas logs {self.name} --address {self.address}`"
        if self.job_id is None:
            return f"; the job may have been submitted before the interrupt: {logs} shows it if so"
        return f"; job {self.job_id} was submitted and goes on running on the cluster: {logs} shows it"


def _job_env(env: list[str] | None) -> dict[str, str]:
    """``--env KEY=VALUE`` items as a dict; one that is not KEY=VALUE an ``error:`` line, exit 2."""
    env_vars = {}
    for item in env or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            err.print(f"[bold red]error:[/] --env {escape(repr(item))} is not KEY=VALUE", highlight=False)
            raise typer.Exit(2)
        env_vars[key] = value
    return env_vars


def _local_address(address: str) -> bool:
    return "127.0.0.1" in address or "localhost" in address


def _job_storage(url: str, address: str) -> str:
    """The storage URL the job gets (:func:`search.jobs.job_storage`: parsed here, a bad one
    refused; a relative SQLite path made absolute from here), saying which file a SQLite
    job writes, and warning where that file is on another machine's disk."""
    from search import jobs

    job_url, path = jobs.job_storage(url)
    if path is None:
        return job_url
    if not _local_address(address):
        _warn(f"a SQLite file is only visible to a scheduler on this machine; the job writes {path} on the node "
              "that runs it; use --storage postgresql+psycopg://… on a cluster")
    elif job_url != url:
        err.print(f"storage: {escape(job_url)} (the relative path of {escape(url)}, from this directory)",
                  highlight=False, soft_wrap=True)
    return job_url


def _warn_unshipped_target(loaded: Any, spec: Path, env_vars: dict[str, str]) -> None:
    """Warn, naming the module, when the python target is importable here from no installed
    package (a file beside the spec): only the campaign file is uploaded. Not when the job
    is given a ``PYTHONPATH``."""
    from search import jobs

    module = None if "PYTHONPATH" in env_vars else jobs.unshipped_module(loaded, [Path.cwd(), spec.parent])
    if module is not None:
        _warn(f"evaluator.target: module {module!r} is importable here but is not an installed package; only the "
              f"campaign file is uploaded, so the cluster must be able to import {module!r} (install it on the "
              "nodes, or pass --env PYTHONPATH=…)")


def _wait_for_job(address: str, job_id: str) -> None:
    """Wait for the job to end, however long, printing each status it passes through; the
    log's tail on stderr and exit 1 if it did not succeed."""
    from search import jobs

    final = jobs.wait(address, job_id, on_status=lambda s: console.print(f"job {job_id}: {s}", markup=False,
                                                                        highlight=False))
    console.print(f"job {job_id}: {final}", markup=False, highlight=False)
    if final != "SUCCEEDED":
        err.print(jobs.job_log(address, job_id)[-4000:], markup=False, highlight=False)
        raise typer.Exit(1)


@app.command()
def logs(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    address: Annotated[str, typer.Option("--address", help="the job server http://HEAD:8265, or the GCS HEAD:6379")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="follow until the job ends")] = False,
    storage: StorageOpt = None,
) -> None:
    """The log of the campaign's latest Ray job; with --follow, each line as the job writes it.

    With --storage (or $ATLAS_STORAGE set), the latest of its jobs that writes that storage.

    \f
    The storage is :func:`_storage`'s, as every other command's: an empty ``--storage`` is
    refused, and an error about a URL from ``$ATLAS_STORAGE`` names the variable (it had been
    read raw here, and its errors did not)."""
    from search import jobs

    try:
        with _stoppable(lambda: ""), _errors():  # Ctrl-C ends a --follow: exit 130
            url = _storage(storage) if storage is not None or os.environ.get("ATLAS_STORAGE") else None
            for chunk in jobs.logs(address, name, follow=follow, storage=url):
                sys.stdout.write(chunk)
                sys.stdout.flush()
    except LookupError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="one campaign (default: list them all)")] = None,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Campaigns, or one campaign's progress, QD-score, coverage, best, proposers and most
    common failures."""
    with _resume_words(name, storage), _stoppable(_ReadStop()), _errors(), _read(storage, name) as handle:
        camps = [handle.campaign(name)] if name else handle.campaigns()
        rows = [_status_row(camp, detail=name is not None) for camp in camps]
        if name and (below := qd_offset_warning([e["fitness"] for e in camps[0].elites(fields=())],
                                                camps[0].settings)):
            _warn(below)
        if as_json:  # one campaign's an object, as law's and failures' are; the list's a list
            console.print_json(strict_json(rows[0] if name else rows), ensure_ascii=True)
            return
        if not rows:
            console.print("no campaigns in this storage")
            return
        if name is None:
            console.print(campaigns_table(rows))
            return
        table = campaign_table(rows[0])
        for line in _outside_lines(rows[0], camps[0].layout.kind):
            table.add_row("outside the map", escape(line))
        console.print(table)
        if rows[0]["proposers"]:
            console.print(proposers_table(rows[0]))
        if rows[0]["model_calls"]:
            console.print(model_calls_table(rows[0]["model_calls"]))
        if rows[0]["failures"]:
            console.print(failure_counts_table(rows[0]["failures"], title="most common failures"))


#: an elite's keys in ``atlas elites --format json`` (and CSV's columns, measures and
#: parameters spread out), in this order: those of ``atlas export``'s elites; ``seq`` and
#: ``proposer``, as ``camp.elites()`` and the dashboard give them, after the rest
ELITE_KEYS = ("cell", "evaluation_id", "objective", "measures", "params", "seq", "proposer")


@app.command()
def elites(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    storage: StorageOpt = None,
    top: Annotated[int | None, typer.Option(help="only the K best")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
) -> None:
    """The elite table, best first (--format csv: full precision, vectors as JSON lists)."""
    top = _at_least("--top", top, 1)
    if fmt not in ("table", "json", "csv"):
        err.print(f"[bold red]error:[/] --format must be table, json or csv, not {fmt!r}")
        raise typer.Exit(2)
    with _resume_words(name, storage), _stoppable(_ReadStop()), _errors(), _read(storage, name) as handle:
        camp = handle.campaign(name)
        rows = [{k: e[k] for k in ELITE_KEYS} for e in camp.elites(top=top, fields=ELITE_KEYS[3:])]
        if fmt == "json":
            sys.stdout.write(strict_json(rows, indent=2) + "\n")
            return
        if not rows and fmt == "table":
            console.print(escape(_no_elites_text(name, camp.stats())), highlight=False)
            return
        measure_names = camp.layout.measure_names
        param_names = param_columns(camp.settings.params, rows)  # the space's, whatever --top shows
        if fmt == "csv":
            _elites_csv(rows, measure_names, param_names)
            return
        shown = elites_table(f"elites of {name} ({len(rows)})", rows, camp.objective_name, measure_names,
                              param_names, units=camp.settings.units)
        if isinstance(shown, str):
            sys.stdout.write(shown)
        else:
            console.print(shown)


def _no_elites_text(name: str, s: Stats) -> str:
    """``atlas elites NAME``'s one line where the campaign has no elite, saying why:
    ``NAME: no elites (24 evaluations, all failed: see `atlas failures NAME`)``, or none
    finished yet. Its table had been laid out from no rows: a traceback, exit 1."""
    failed = s.counts["failed"]
    if not s.finished:
        why = "no evaluation finished yet"
    elif failed == s.finished:
        why = f"{count(s.finished, 'evaluation')}, all failed: see `atlas failures {name}`"
    else:
        why = f"{count(s.finished, 'evaluation')}, {failed} failed" + (
            f": see `atlas failures {name}`" if failed else "")
    return hinted(f"{name}: no elites ({why})")


def _elites_csv(rows: list[dict[str, Any]], measure_names: list[str], param_names: list[str]) -> None:
    """The elites as CSV on stdout, every digit, under the names ``--format json`` and
    ``atlas export`` give them: ``cell,evaluation_id,objective`` (the objective's column had
    been headed by its name, ``score``), then the measures and parameters (a name two
    columns share written ``measures.NAME``/``params.NAME``: :func:`column_labels`), then
    ``seq,proposer``; a parameter's column as ``atlas export`` writes it (:func:`archive.export.json_column`:
    where its values mix kinds, such as the choices ``"1"``, ``1`` and ``false``, or are
    lists, each value's JSON text; else each value exact, :func:`cell_text`), so every
    value parses back as the value it was."""
    import csv

    from archive.export import json_column, json_text

    columns = []
    for p in param_names:
        values = [r["params"].get(p) for r in rows]
        columns.append([json_text(v) or "" for v in values] if json_column(values)
                       else [cell_text(v, exact=True) for v in values])
    writer = csv.writer(sys.stdout)
    fixed, last = ["cell", "evaluation_id", "objective"], ["seq", "proposer"]
    writer.writerow([*fixed, *column_labels([*fixed, *last], measure_names, param_names), *last])
    for i, r in enumerate(rows):
        writer.writerow([r["cell"], r["evaluation_id"], cell_text(r["objective"], exact=True),
                         *[cell_text(r["measures"].get(m), exact=True) for m in measure_names],
                         *[column[i] for column in columns], r["seq"], r["proposer"]])


def _exploration(camp: Any, counts: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """Each proposer's exploration entropy (:func:`archive.exploration.campaign_exploration`:
    Iron Mind's normalised sampling entropy per run of 20 of its evaluations in ``seq``
    order, over the active parameters only; the mean and spread over its latest 100 runs at
    most, with how many runs it has), the figure the dashboard shows: proposer ->
    :class:`archive.stats.Exploration`. ``counts``: :meth:`CampaignHandle.proposer_counts`,
    when already read."""
    from archive.exploration import campaign_exploration

    return campaign_exploration(camp.store, camp.record.id, camp.settings, counts)


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    out: Annotated[Path, typer.Option("--out", help="FILE.json, FILE.csv or FILE.parquet")],
    storage: StorageOpt = None,
) -> None:
    """All evaluations and elites of a campaign, to JSON, CSV or Parquet."""
    from archive.outputs import EXPORT_SUFFIXES, check_output

    stop = _ReadStop()
    with _stoppable(stop), _errors(), _read(storage, name) as handle:
        check_output(out, EXPORT_SUFFIXES, _storage(storage), what="--out")
        with stop.writing(out):
            path = handle.campaign(name).export(out)
    console.print(f"wrote {path}")


@app.command("map")
def map_(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    out: Annotated[Path, typer.Option("--out", help="the figure (PNG, SVG or PDF)")] = Path("map.png"),
    storage: StorageOpt = None,
) -> None:
    """The elite map as a heatmap (grid) or Voronoi plot (CVT)."""
    from archive.outputs import FIGURE_SUFFIXES, check_output

    stop = _ReadStop()
    with _stoppable(stop), _errors():
        check_output(out, FIGURE_SUFFIXES, _storage(storage), what="--out")
        from search.forked import read_beside

        data = read_beside(functools.partial(_map_data, storage, name),
                           functools.partial(import_module, "archive.figures"))
        from archive.figures import draw_map

        with stop.writing(out):
            path = draw_map(out, data)
    console.print(f"wrote {path}")


def _map_data(storage: str | None, name: str) -> Any:
    """A campaign's :class:`archive.records.MapData`, read (a function of its own: a forked
    reader runs it: :func:`search.forked.read_beside`)."""
    with _read(storage, name) as handle:
        return handle.campaign(name).map_data()


@app.command()
def front(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    out: Annotated[Path, typer.Option("--out", help="the figure (PNG, SVG or PDF)")] = Path("front.png"),
    storage: StorageOpt = None,
    minimize: Annotated[list[str] | None, typer.Option(
        "--minimize", help="a measure whose front is drawn minimised (repeat for several); the others as the "
                           "search gave them (mo-bo's measure_directions), else maximised")] = None,
) -> None:
    """Objective against each measure with the Pareto front (directions from mo-bo's options, or --minimize)."""
    from archive.outputs import FIGURE_SUFFIXES, check_output

    stop = _ReadStop()
    with _stoppable(stop), _errors(), _read(storage, name) as handle:
        check_output(out, FIGURE_SUFFIXES, _storage(storage), what="--out")
        camp = handle.campaign(name)
        with stop.writing(out):
            path = camp.front(out, minimize=minimize or (), cli_words=True)
    console.print(f"wrote {path}")


@app.command()
def law(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    measure: Annotated[str | None, typer.Option(
        "--measure", help="the cross-configuration fit's entropy measure H (default: final_entropy, else the "
                          "first measure)")] = None,
    mode: Annotated[str | None, typer.Option(
        "--mode", help="per-run (each run over its checkpoints, the paper's use), pooled (all runs' checkpoints) "
                       "or cross-configuration (final values across evaluations); default: per-run when the "
                       "evaluations have trajectories, else cross-configuration")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="also draw the points and the curve (PNG, SVG or PDF)")]
    = None,
    by: Annotated[str | None, typer.Option(
        "--by", help="fit the law apart for each value of this parameter (e.g. a categorical one), pooled or "
                     "cross-configuration; a float parameter is cut into 2 to 4 ranges of its values; "
                     "evaluations without it form the group (unset)")] = None,
    storage: StorageOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Fit the entropy-performance law R = -a*exp(H) + b per run, pooled or across configurations.

    The table's title says which of the three was fitted. A warning says when H is not named
    as an entropy, when a < 0 (R rises with H, so -a + b is a floor, not a ceiling), when
    R² < 0.3, when the points look like mixed regimes (try --by then), or when the ceiling of
    an accuracy (unit fraction) lies outside [0, 1].
    With --by PARAM: one row per value of PARAM, or per range of a float PARAM's values (a group
    of fewer than 3 points, or one that cannot be fitted, listed with why), the ungrouped fit
    last, and with --out a figure with each group in its own colour.

    \f
    In JSON: ``mode``, ``warnings`` and, with ``--by``, ``groups``. Mixed regimes are
    :func:`archive.law.mixed_regimes`'s; the grouped figure is
    :func:`archive.law_groups.groups_figure`'s. The text above the form feed is the command's
    ``--help``, in plain words (:mod:`search.cli_help`)."""
    stop = _ReadStop()
    with _stoppable(stop), _errors(), _read(storage, name) as handle:
        from archive.law import PER_RUN
        from archive.law_figures import law_figure, runs_figure
        from archive.law_groups import groups_figure
        from archive.outputs import FIGURE_SUFFIXES, check_output

        if out is not None:
            check_output(out, FIGURE_SUFFIXES, _storage(storage), what="--out")
        camp = handle.campaign(name)
        reading = camp.law(measure, mode, by)
        path = None
        if out is not None:
            title = f"{name} ({reading.mode}): R = −a·exp(H) + b"
            with stop.writing(out):
                if reading.by is not None:
                    path = groups_figure(reading, out, title=title)
                else:
                    path = (runs_figure(reading, out, title=title) if reading.fit is None
                            else law_figure(reading.fit, out, title=title))
    doc = reading.to_dict()
    warnings = doc.pop("warnings")  # the reading's own (archive.law.LawReading.warnings), printed and last in JSON
    for warning in warnings:
        _warn(warning)
    if as_json:
        console.print_json(strict_json({**doc, "figure": str(path) if path else None,
                                        "warnings": warnings}), ensure_ascii=True)
        return
    if reading.by is not None:
        console.print(law_groups_table(name, reading))
        if path is not None:
            console.print(f"wrote {path}")
        return
    if reading.mode == PER_RUN:
        table = law_table(f"entropy-performance law of {name}, per-run ({len(reading.runs)} runs, each over "
                          f"its checkpoints): {reading.objective} = −a·exp({reading.measure}) + b")
        for col in ("evaluation", "a", "b", "ceiling −a + b", "R²", "n"):
            table.add_column(col, justify="right")
        for run in reading.runs:
            f = run.fit
            table.add_row(str(run.evaluation_id), f"{f.a:.4g}", f"{f.b:.4g}", bound_cell(f), f"{f.r2:.3f}",
                          str(f.n))
        table.caption = floor_caption([r.fit for r in reading.runs])
        med = reading.median()
        table.add_section()
        table.add_row("median", f"{med['a']:.4g}", f"{med['b']:.4g}", f"{med['ceiling']:.4g}", f"{med['r2']:.3f}",
                      f"{med['n']:g}")
        console.print(table)
        if path is not None:
            console.print(f"wrote {path}")
        return
    fit = reading.fit
    assert fit is not None
    what = "evaluations" if reading.mode != "pooled" else "checkpoints"
    table = law_table(f"entropy-performance law of {name}, {reading.mode}: "
                      f"{fit.objective} = −a·exp({fit.measure}) + b")
    for col in ("", "estimate", "95% CI"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row("a", f"{fit.a:.6g}", f"[{fit.a_ci[0]:.4g}, {fit.a_ci[1]:.4g}]")
    table.add_row("b", f"{fit.b:.6g}", f"[{fit.b_ci[0]:.4g}, {fit.b_ci[1]:.4g}]")
    table.add_row(f"{fit.bound} −a + b (H = 0{', a < 0' if fit.bound == 'floor' else ''})", f"{fit.ceiling:.6g}",
                  f"[{fit.ceiling_ci[0]:.4g}, {fit.ceiling_ci[1]:.4g}]")
    table.caption = floor_caption([fit])
    table.add_row("R²", f"{fit.r2:.4f}", "")
    table.add_row(what, str(fit.n), "")
    console.print(table)
    if path is not None:
        console.print(f"wrote {path}")


@app.command("dashboard")
def dashboard_(
    storage: StorageOpt = None,
    host: Annotated[str, typer.Option("--host", help="address to bind (127.0.0.1: this machine only)")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port (0: any free port)")] = 8787,
    poll: Annotated[float, typer.Option("--poll", help="seconds between a page's checks of a running campaign")] = 2.0,
    allow_host: Annotated[list[str] | None, typer.Option(
        "--allow-host", help="a Host name the dashboard answers besides this machine's (DNS-rebinding guard)")] = None,
) -> None:
    """A read-only web dashboard of the archive: elite maps, progress, fronts, proposers."""
    from dashboard.cli import serve

    with _errors():
        serve(_storage(storage), host=host, port=port, poll_s=poll, allow_hosts=allow_host or ())


@app.command()
def migrate(storage: StorageOpt = None) -> None:
    """Bring a storage's schema up to this version (read commands never do it themselves)."""
    from archive.engine import head_revision
    from archive.store import Store

    with _errors():
        url = _storage(storage)
        store = Store(url)
        found = store.found_revision
        store.close()
    head = head_revision()
    said = ("the schema created" if found is None else "the schema is up to date" if found == head
            else f"the schema upgraded from revision {found}")
    console.print(f"{url}: {said} (revision {head})", highlight=False, soft_wrap=True)


@app.command()
def failures(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    storage: StorageOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="at most K evaluations and K messages")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """The failed evaluations, latest first, and how many failed with each message, most common first.

    Each evaluation with its id, seq, attempts, proposer, the error's first line and params."""
    limit = _at_least("--limit", limit, 1) or limit
    if fmt not in ("table", "json"):
        err.print(f"[bold red]error:[/] --format must be table or json, not {escape(repr(fmt))}")
        raise typer.Exit(2)
    with _stoppable(_ReadStop()), _errors(), _read(storage, name) as handle:
        camp = handle.campaign(name)
        total = camp.stats().counts["failed"]
        counts = [{"message": m, "count": n} for m, n in camp.failure_summary(limit)]
        failed = [failure_row(ev) for ev in camp.failed_evaluations(limit)]
        space = camp.settings.params
    if fmt == "json":
        doc = {"campaign": name, "failed": total, "messages": counts, "evaluations": failed}
        sys.stdout.write(strict_json(doc, indent=2) + "\n")
        return
    if not total:
        console.print(f"{name}: no failed evaluations", highlight=False)
        return
    console.print(failures_table(f"failed evaluations of {name} (latest {len(failed)} of {total})", failed, space))
    console.print(failure_counts_table(counts, title="failures by message"))


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="the campaign's name")],
    storage: StorageOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    force: Annotated[bool, typer.Option("--force", help="delete even while a scheduler holds its lease")] = False,
) -> None:
    """Delete a campaign with all its evaluations, elites, checkpoints and proposer calls, after asking.

    One transaction; --yes deletes without asking. Refused while a live scheduler holds the
    campaign's lease, unless --force. Exit status 1 when the answer is no (nothing deleted);
    2 when there is no answer to read (standard input closed: a script without --yes); 130 on
    a Ctrl-C at the question."""
    import archive

    with _errors(), _read(storage, name, writes=True) as handle:
        camp = handle.campaign(name)
        if not force:
            _refuse_live_lease(camp)
        created = camp.stats().created
    if not yes and not _confirmed(f"delete campaign {name!r} and its {count(created, 'evaluation')}?"):
        err.print(f"nothing deleted: campaign {escape(name)} is kept", highlight=False)
        raise typer.Exit(1)
    with _errors(), archive.open(_storage(storage), readonly=False) as handle:
        counts = _delete(handle.campaign(name), force)
    console.print(f"deleted campaign {name}: {_deleted_text(counts)}", highlight=False)


def _status_row(camp: Any, detail: bool) -> dict[str, Any]:
    """One campaign's line of ``atlas status`` (``detail``: with proposers, exploration
    entropy, the most common failures, ``outside_axes``, the elites measured outside the
    map's axes (:meth:`CampaignHandle.outside_axes`), and ``model_calls``, what each
    model-backed proposer's calls came to (:func:`search.model_calls.model_call_rows`, a
    list, empty where none called a model); else those are ``None``)."""
    if not detail:
        counts, s, failures, exploration = None, camp.stats(), None, _exploration_fields(camp, None)
    else:
        from concurrent.futures import ThreadPoolExecutor

        # The failures' query reads other rows (the failed ones' errors) on a connection of its
        # own while the counts, stats and exploration are read: on PostgreSQL the server runs
        # both at once, and the scan of the errors no longer adds to the others.
        with ThreadPoolExecutor(max_workers=1) as pool:
            found = pool.submit(camp.failure_summary)
            counts = camp.proposer_counts()
            s = camp.stats(counts)  # the counts by status are the sums of those by proposer
            exploration = _exploration_fields(camp, counts)
            failures = [{"message": m, "count": n} for m, n in found.result()]
    status = camp.record.live_status()
    outside = camp.outside_axes().to_json() if detail else None
    if detail:
        from search.model_calls import model_call_rows

        model_calls = model_call_rows(camp)
    else:
        model_calls = None
    return {
        "name": camp.name, "status": status, "budget": camp.budget,
        "finished": s.finished, "done": s.counts["done"], "failed": s.counts["failed"],
        **_unfinished_fields(s.counts, live=status == "running"), "elites": s.elites,
        "cells": s.cells, "coverage": s.coverage, "qd_score": s.qd_score,
        "best": s.best_objective, "best_evaluation_id": s.best_evaluation_id,
        "algorithm": camp.settings.algorithm,
        "proposers": None if counts is None else {  # by the totals' rule: in flight only while a run holds it
            proposer: _proposer_fields(c, live=status == "running") for proposer, c in counts.items()},
        **exploration,
        "failures": failures,
        "outside_axes": outside,
        "model_calls": model_calls,
    }


def _outside_lines(row: dict[str, Any], kind: str) -> list[str]:
    """``atlas status NAME``'s lines on the elites outside the map's axes, one per measure
    that has some (:func:`archive.outside.measure_text`), from its row's ``outside_axes``."""
    from archive.outside import OutsideAxis, measure_text

    found = row.get("outside_axes") or {}
    return [measure_text(OutsideAxis(**m), kind) for m in found.get("measures", [])]


def _proposer_fields(counts: dict[str, int], live: bool) -> dict[str, int]:
    """One proposer's counts in ``atlas status NAME --json`` (every status a key of them,
    0 where it has none: :func:`archive.starts.counts_by_proposer`), as the campaign's own:
    ``done``, ``failed`` and :func:`_unfinished_fields`'s."""
    return {"done": counts["done"], "failed": counts["failed"], **_unfinished_fields(counts, live)}


def _unfinished_fields(counts: dict[str, int], live: bool) -> dict[str, int]:
    """The evaluations written and not finished, as a reader should see them
    (:func:`archive.records.unfinished_split`, the one rule the handle's ``unfinished()``
    follows too): in flight only while a run holds the campaign, else all ``pending``."""
    from archive.records import unfinished_split

    return unfinished_split(counts, live)


def _exploration_fields(camp: Any, counts: dict[str, dict[str, int]] | None) -> dict[str, Any]:
    """``exploration``: proposer -> ``{mean, std, runs, run_length}`` (``runs``: the runs
    used), with ``runs_total`` (the runs the proposer has) where only its latest 100 were used;
    ``exploration_entropy``: proposer -> the mean alone (what it always held). Both ``None``
    without ``counts`` (the campaigns' list, no detail)."""
    if counts is None:
        return {"exploration_entropy": None, "exploration": None}
    found = _exploration(camp, counts)
    return {"exploration_entropy": {name: e.mean for name, e in found.items()},
            "exploration": {name: e.to_json() for name, e in found.items()}}


def _confirmed(question: str) -> bool:
    """The user's answer to ``question`` (``[y/N]``: ``y`` or ``yes``; ``n``, ``no`` or just
    Enter); any other answer is asked again after one line saying what to answer (typer's
    ``Error: invalid input``, capitalised unlike every other line, had said neither). A closed
    standard input (click's ``Abort`` of an ``EOFError``) one ``error:`` line, exit 2, where
    it had read as a Ctrl-C (``stopped``, exit 130)."""
    try:
        while True:
            given = typer.prompt(question, default="n", show_default=False, prompt_suffix=" [y/N]: ").strip()
            if given.lower() in ("y", "yes"):
                return True
            if given.lower() in ("n", "no", ""):
                return False
            err.print(f"please answer y (yes) or n (no), not {escape(repr(given))}", highlight=False, soft_wrap=True)
    except typer.Abort as exc:
        if not isinstance(exc.__context__, EOFError):
            raise
        console.print()  # ends the question's line
        err.print("[bold red]error:[/] no answer (standard input is closed); nothing deleted; pass --yes to delete "
                  "without asking", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _refuse_live_lease(camp: Any) -> None:
    """A :class:`LeaseConflict` while a scheduler holds the campaign's unexpired lease."""
    from archive.errors import LeaseConflict
    from entropy_atlas.holders import holder_text

    if camp.lease_is_live():
        raise LeaseConflict(f"campaign {camp.name!r} is being run by {holder_text(camp.record.lease_holder)}; "
                            f"stop that scheduler first, or pass --force")


def _delete(camp: Any, force: bool) -> dict[str, int]:
    """Delete ``camp`` (the store checks the lease again, inside its transaction)."""
    from archive.errors import LeaseConflict

    try:
        return camp.delete(force=force)
    except LeaseConflict as exc:
        raise LeaseConflict(f"{exc}; stop that scheduler first, or pass --force") from None


def _deleted_text(counts: dict[str, int]) -> str:
    """``60 evaluations, 13 elites, 1 checkpoint, 0 proposer calls``."""
    nouns = {"evaluations": "evaluation", "elites": "elite", "checkpoints": "checkpoint",
             "proposer_calls": "proposer call"}
    return ", ".join(count(counts.get(table, 0), noun) for table, noun in nouns.items())


def main() -> None:  # pragma: no cover - console entry point
    """``atlas``: the command, then the interpreter's exit without its last full garbage
    collection (``gc.freeze`` moves every object out of its reach). By then all of a
    command's objects are garbage the process's end frees anyway, and with SQLAlchemy, NumPy
    and matplotlib loaded that collection alone took 0.15–0.2 s of every command. ``atexit``
    handlers (Ray's shutdown, temporary directories) still run."""
    _show_library_warnings()
    try:
        code = _run_app()
        _leave_threads_behind(code)
        sys.exit(code)
    finally:
        gc.freeze()


class _WarningLines(logging.Handler):
    """Entropy Atlas' own loggers' warnings (an LLM's fallback, a worker's failed teardown)
    as the command's other warnings read: ``warning: …``, one line, printable; Python's
    last-resort handler had printed the bare message."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _warn(printable(record.getMessage()))
        except Exception:
            self.handleError(record)


def _show_library_warnings() -> None:
    """Route WARNING and above of the ``entropy_atlas`` loggers to :class:`_WarningLines`,
    and Python's warnings (NumPy's overflow, pyribs', BoTorch's, Optuna's) to
    :func:`_python_warning_line`: each one line as the command's own, where Python printed
    the file, the line and its source over several."""
    logger = logging.getLogger("entropy_atlas")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)
    warnings.showwarning = _python_warning_line


def _python_warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                         file: Any = None, line: str | None = None) -> None:
    """``warning: Category: message (file.py:line)``, printable, on one line (Python's
    filters still decide which warnings show, and how often)."""
    text = " ".join(str(message).split())
    _warn(printable(f"{category.__name__}: {text} ({Path(filename).name}:{lineno})"))


def _leave_threads_behind(code: int, grace_s: float = 2.0) -> None:
    """Exit now with ``code`` where threads that are not daemons outlive the command (an
    inline evaluator started one and left it running), after ``grace_s`` for them to end
    and a warning naming them: the interpreter would wait on them for ever. Exit handlers
    are skipped then (the run has shut its Ray and storage down already)."""
    import time

    deadline = time.monotonic() + grace_s
    for thread in _leftover_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = _leftover_threads()
    if not left:
        return
    names = ", ".join(t.name for t in left[:5]) + (" …" if len(left) > 5 else "")
    err.print(f"[yellow]warning:[/] {len(left)} thread{'' if len(left) == 1 else 's'} that Entropy Atlas did not "
              f"start still running ({escape(names)}); exiting without waiting for "
              f"{'it' if len(left) == 1 else 'them'}", highlight=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _leftover_threads() -> list[Any]:
    """Live threads other than the main one that the interpreter would wait for at exit."""
    import threading

    return [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]


def _run_app() -> int:
    """The command's exit code (:func:`_command_code`), where its output was lost (a reader
    that closed the pipe, a full disk: :func:`search.consoles.lost_output_code`) the loss's,
    whichever command it was."""
    with guarded_streams() as streams:
        try:
            code = _command_code()
            sys.stdout.flush()  # what is still buffered is lost here, not at the interpreter's exit
        except OutputLost:
            code = 1  # lost_output_code says which
        lost = lost_output_code(*streams)
    return code if lost is None else lost


def _command_code() -> int:
    """The command's exit code; a usage error (an unknown option, ``--limit abc``) as one
    ``error:`` line with exit code 2, where typer would draw a box around it; a Ctrl-C that
    no command's :func:`_stoppable` told of (as the arguments are read, at ``delete``'s
    prompt) as ``stopped``, exit 130, where typer exited 130 without a word."""
    try:  # typer 0.2x carries its own copy of click
        from typer._click.exceptions import UsageError
    except ImportError:  # pragma: no cover - a typer on the released click
        from click.exceptions import UsageError

    _Stopped.said = False
    try:
        code = app(standalone_mode=False)
    except UsageError as exc:
        where = f" (`{exc.ctx.command_path} --help` lists what it takes)" if exc.ctx is not None else ""
        err.print(f"[bold red]error:[/] {escape(exc.format_message())}{escape(where)}", highlight=False,
                  soft_wrap=True)
        return 2
    except typer.Abort:  # a prompt's Ctrl-C, on a typer that raises it
        code = 130
    if code == 130 and not _Stopped.said:  # a Ctrl-C where no command handles it: typer exits 130 without a word
        _say_stopped("")
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    main()
