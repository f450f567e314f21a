"""The archive as a Python API: ``archive.open(storage).campaign(name)``.

Rules:

- A storage is a URL (``sqlite:///atlas.db``, ``postgresql+psycopg://…``), or a
  :class:`pathlib.Path`, taken as a SQLite file's path (:func:`storage_url`); anything
  else is a ``TypeError`` naming the argument, as is any argument of the wrong type
  (a campaign's name, ``top``, ``limit``, ``fields``, ``status``, a law's ``measure``,
  ``mode`` and ``by``, an output's ``path``, ``force``, …), where it had been a bare error
  from the internals (``'<' not supported …``, ``fields="params"`` read letter by letter,
  ``'int' object has no attribute 'strip'``, ``expected str, bytes or os.PathLike object``).
  A str that names nothing known stays the reader's ``ValueError`` (a status) or
  :class:`~archive.law.LawFitError` (a law's mode).
- A closed handle (``close()``, or the end of its ``with``) reads nothing: every read of it
  and of the campaigns opened from it is a :class:`~archive.errors.StorageError` (``the
  archive handle of … is closed``), where it had opened the pool again and read on. A
  SQLite file removed under an open handle is the error ``archive.open`` gives for a missing
  file (``cannot open storage …: the file … does not exist``), where a pooled connection
  had served the removed file's rows (:func:`check_open`).
- A :class:`CampaignHandle` reads the campaign it was opened on, or nothing: every read
  first checks, in the same snapshot as its data, that the campaign row of its id still
  has its name and creation time. One deleted since raises
  :class:`~archive.errors.CampaignNotFound` (``campaign 'h1' was deleted``), where it had
  read empty results, then, once SQLite reused the id, another campaign's rows under its
  own name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from archive.engine import first_line, missing_file, shown_url
from archive.errors import CampaignNotFound, StorageError, UnknownMeasure
from archive.layout import CellLayout
from archive.models import STATUSES, Campaign
from archive.outputs import EXPORT_SUFFIXES, FIGURE_SUFFIXES, check_output
from archive.outside import Outside, outside_axes
from archive.records import CampaignRecord, CampaignSettings, MapData, Stats, scheduler_is_live, unfinished_split
from archive.store import ELITE_FIELDS, Store
from entropy_atlas.validation import a_type

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def storage_url(storage: object, argument: str = "storage") -> str:
    """``storage`` as a URL: a ``str`` as it is, a :class:`pathlib.Path` (or another path-like
    object of a str: ``os.PathLike[str]``) as the SQLite file it names (``sqlite:///`` and the
    path, escaped: a ``?`` in it had begun the URL's options, a ``%41`` been read as ``A``);
    anything else a ``TypeError`` naming ``argument``."""
    if isinstance(storage, os.PathLike) and isinstance(path := os.fspath(storage), str):
        return f"sqlite:///{quote(path)}"
    if not isinstance(storage, str):
        raise TypeError(f"{argument}: must be a storage URL (a str: sqlite:///FILE or postgresql+psycopg://"
                        f"USER@HOST/DB) or a SQLite file's path (a pathlib.Path), got {shown_value(storage)}")
    return storage


def campaign_name(name: object) -> str:
    """``name`` when it is a str; else a ``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(f"name: must be a campaign's name (a str), got {shown_value(name)}")
    return name


def row_limit(argument: str, value: object) -> int | None:
    """``value`` when it is an integer or None (a bool is neither); else a ``TypeError``
    naming ``argument`` (a negative one is refused by the store, with a ``ValueError``)."""
    if value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        return None if value is None else int(value)
    raise TypeError(f"{argument}: must be an integer or None, got {shown_value(value)}")


def elite_fields(fields: object) -> tuple[str, ...]:
    """``fields`` as a tuple of names: a list or tuple (or other sequence) of str, never a
    str itself (which was read letter by letter); names not of an elite are the store's to refuse."""
    if isinstance(fields, str | bytes) or not isinstance(fields, Sequence | set | frozenset):
        hint = f"; for one field: fields=({fields!r},)" if isinstance(fields, str) else ""
        raise TypeError(f"fields: must be a sequence of field names (of {', '.join(ELITE_FIELDS)}), got "
                        f"{shown_value(fields)}{hint}")
    names = tuple(fields)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"fields: each must be a field name (a str), got {shown_value(name)}")
    return names


def measure_names(argument: str, value: object) -> list[str]:
    """``value`` as a list of measures' names: a str is one name, an iterable of str several;
    else a ``TypeError`` naming ``argument`` (names that are no measure are the caller's to refuse)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{argument}: must be a measure's name (a str) or several (a list of str), "
                        f"got {shown_value(value)}")
    names = list(value)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{argument}: each must be a measure's name (a str), got {shown_value(name)}")
    return names


def optional_str(argument: str, value: object, what: str) -> str | None:
    """``value`` when it is a str or None; else a ``TypeError`` naming ``argument`` as
    ``what`` (a str that names nothing known is the reader's to refuse, as before)."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{argument}: must be {what} (a str) or None, got {shown_value(value)}")


def output_path(value: object, argument: str = "path") -> Path:
    """``value`` as the :class:`~pathlib.Path` of a file to write: a str or a path-like
    object (a :class:`pathlib.Path`); else a ``TypeError`` naming ``argument``, where
    ``Path(3)`` had said ``expected str, bytes or os.PathLike object, not int``."""
    if isinstance(value, str | os.PathLike):
        with contextlib.suppress(TypeError):  # a path-like object of bytes: refused below
            return Path(value)
    raise TypeError(f"{argument}: must be a file's path (a str or pathlib.Path), got {shown_value(value)}")


def flag(argument: str, value: object) -> bool:
    """``value`` when it is True or False; else a ``TypeError`` naming ``argument`` (a
    ``force="no"`` had been read as true)."""
    if not isinstance(value, bool):
        raise TypeError(f"{argument}: must be True or False, got {shown_value(value)}")
    return value


def check_open(store: Store) -> None:
    """A :class:`StorageError` where ``store`` is closed (its handle's ``close()``: a read had
    silently opened its pool again), or is a SQLite file no longer at its path (removed
    since it was opened: a read had served the removed file's rows from a pooled
    connection, or leaked ``unable to open database file``), as ``archive.open`` says it."""
    if store.closed:
        raise StorageError(f"the archive handle of {shown_url(store.url)} is closed; open it again with "
                           f"archive.open(URL)")
    if store.file is not None and (problem := missing_file(shown_url(store.url), store.file)) is not None:
        raise problem


def _check_map_data(data: object) -> None:
    """A ``TypeError`` where ``data`` (of :meth:`CampaignHandle.map`) is neither None nor a :class:`MapData`."""
    if data is not None and not isinstance(data, MapData):
        raise TypeError(f"data: must be map_data()'s MapData or None, got {shown_value(data)}")


def shown_value(value: object) -> str:
    """``value`` as a message shows it: a short repr and its type."""
    text = repr(value)
    return f"{text[:60] + '…' if len(text) > 60 else text} ({a_type(value)})"


class CampaignHandle:
    """Read one campaign: progress, elites, evaluations, exports and its map. Every read
    raises :class:`CampaignNotFound` once the campaign is deleted (:meth:`reading`)."""

    def __init__(self, store: Store, record: CampaignRecord) -> None:
        self.store = store
        self.record = record
        self.layout = CellLayout.from_json(record.layout)

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def spec(self) -> dict[str, Any]:
        return self.record.spec

    @property
    def settings(self) -> CampaignSettings:
        return self.record.settings

    @property
    def maximize(self) -> bool:
        return self.settings.maximize

    @property
    def objective_name(self) -> str:
        return self.settings.objective

    @property
    def budget(self) -> int:
        return self.settings.budget

    @property
    def qd_offset(self) -> float:
        return self.settings.qd_offset

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """One snapshot of the store (:meth:`Store.snapshot`) in which the campaign is first
        checked to be this handle's still (:meth:`_check_present`); the reads inside it see
        the same moment, so none reads the rows of a campaign deleted (or made anew under a
        reused id) since the check. A closed handle, or one whose file is gone, reads nothing
        (:func:`check_open`); a database error on the way is a one-line :class:`StorageError`
        (it had leaked as SQLAlchemy's ``OperationalError`` with its ``Background on this error``)."""
        check_open(self.store)
        try:
            with self.store.snapshot():
                self._check_present()
                yield
        except DBAPIError as exc:
            raise StorageError(f"storage {shown_url(self.store.url)}: {first_line(exc)}") from None

    def _check_present(self) -> None:
        """Raise :class:`CampaignNotFound` unless the campaign row of this handle's id still
        has its name and creation time: one primary-key read."""
        with self.store.read() as conn:
            row = conn.execute(select(Campaign.name, Campaign.created_at)
                               .where(Campaign.id == self.record.id)).first()
        if row is None or row[0] != self.record.name or float(row[1]) != float(self.record.created_at):
            raise CampaignNotFound(f"campaign {self.name!r} was deleted")

    def refresh(self) -> CampaignHandle:
        """The campaign's row read again (its status, lease, spec); :class:`CampaignNotFound`
        where it was deleted, even when another campaign now has its name."""
        check_open(self.store)
        record = self.store.campaign(self.name)
        if record is None or record.id != self.record.id or record.created_at != self.record.created_at:
            raise CampaignNotFound(f"campaign {self.name!r} was deleted")
        self.record = record
        return self

    @property
    def status(self) -> str:
        """The campaign's status as ``atlas status`` shows it, read now
        (:func:`archive.records.live_status`): ``running`` while a live scheduler holds it,
        ``interrupted`` where the row says ``running`` but its scheduler died without a word
        (``kill -9``, a crash, a lapsed lease), else the row's own (``stopped``, ``failed``,
        ``finished``, ``created``). ``record.status`` is the row as written (and as read when
        the handle was opened): a killed run's stays ``running``."""
        return self.refresh().record.live_status()

    def unfinished(self) -> dict[str, int]:
        """The evaluations written and not finished as ``atlas status`` (and its ``--json``)
        splits them, with the status read at the same moment
        (:func:`archive.records.unfinished_split`): ``running`` and ``in_flight`` while a
        scheduler holds the campaign, else all ``pending``, waiting for a resume (the rows a
        killed run left ``running`` included, which :meth:`stats`' ``counts`` still show as
        ``running``)."""
        with self.reading():
            record = self.store.campaign(self.name)
            counts = self.store.stats(self.record.id, 0).counts
        live = record is not None and record.live_status() == "running"
        return unfinished_split(counts, live)

    def stats(self, by_proposer: dict[str, dict[str, int]] | None = None) -> Stats:
        """:meth:`Store.stats` (``by_proposer``: :meth:`proposer_counts`, when read already).
        Its ``counts`` are the rows' statuses as written: rows a killed run left ``running``
        stay so until a resume; :meth:`unfinished` splits them as ``atlas status`` does, and
        :attr:`status` says whether a scheduler holds the campaign."""
        if by_proposer is not None and not isinstance(by_proposer, Mapping):
            raise TypeError(f"by_proposer: must be proposer_counts()'s mapping or None, got {shown_value(by_proposer)}")
        with self.reading():
            return self.store.stats(self.record.id, self.layout.cells, self.qd_offset, by_proposer)

    def elites(self, top: int | None = None, fields: Sequence[str] = ELITE_FIELDS) -> list[dict[str, Any]]:
        """:meth:`Store.elites`: best first, at most ``top`` (an integer; None: all), with the
        evaluation's ``fields`` (a sequence of names, all by default)."""
        top, fields = row_limit("top", top), elite_fields(fields)
        with self.reading():
            return self.store.elites(self.record.id, top=top, fields=fields)

    def evaluations(self, status: str | None = None) -> list[dict[str, Any]]:
        """The campaign's evaluations in sequence order, those of ``status`` alone if given
        (a str; one that is no status is the store's ``ValueError``)."""
        status = optional_str("status", status, f"one of {', '.join(STATUSES)}")
        with self.reading():
            return self.store.evaluations(self.record.id, status=status)

    def proposer_counts(self) -> dict[str, dict[str, int]]:
        """For each proposer, how many of its evaluations are in each status."""
        with self.reading():
            return self.store.proposer_counts(self.record.id)

    def model_calls(self) -> list[dict[str, Any]]:
        """:meth:`Store.call_summary`: for each proposer that called a model, its calls,
        answered, failed, tokens, latest error and median latency, by proposer's name;
        empty where none did."""
        with self.reading():
            return self.store.call_summary(self.record.id)

    def checkpoint(self, proposer: str | None = None) -> bytes | None:
        """The stored checkpoint of ``proposer`` (default: the campaign's algorithm), as
        bytes (:mod:`search.proposers.checkpoint` reads them); None where there is none."""
        proposer = optional_str("proposer", proposer, "a proposer's name")
        with self.reading():
            return self.store.load_checkpoint(self.record.id, proposer or self.settings.algorithm)

    def export(self, path: str | Path) -> Path:
        """All evaluations and elites to ``.json``, ``.csv`` or ``.parquet`` (:mod:`archive.export`)."""
        from archive.export import EVALUATION_FIELDS, JSON_FIELDS, ExportData, export_campaign, gc_paused

        path = output_path(path)
        check_open(self.store)  # before any file is written
        if path.is_dir() or path.suffix.lower() in EXPORT_SUFFIXES:  # another suffix: export_campaign names the formats
            check_output(path, EXPORT_SUFFIXES, self.store.url)
        with gc_paused(), self.reading():  # the rows and the elites of one moment
            data = ExportData(self.name, self.spec, self.refresh().record.live_status(),
                              self.store.evaluation_texts(self.record.id, EVALUATION_FIELDS, JSON_FIELDS),
                              self.store.elite_cells(self.record.id), self.record.layout)
            return export_campaign(data, path)

    def map_data(self) -> MapData:
        """The elite map's data (:class:`archive.records.MapData`), read without drawing: the
        elites best first, measures alone, and the title's figures (cells filled, QD-score,
        best) from :meth:`Store.stats` over the elites table alone (no evaluation counted;
        its exactly rounded fitness sum: a plain ``sum`` here had said 0 where 1e308 and
        -1e308 cancel), both read at one moment. A map of no elite counts the evaluations
        too, so that it can say how many failed (:func:`archive.figures.empty_note`)."""
        with self.reading():
            elites = self.store.elites(self.record.id, fields=("measures",))
            stats = self.store.stats(self.record.id, self.layout.cells, self.qd_offset,
                                     by_proposer={} if elites else None)
        return MapData(self.name, self.layout, self.settings, elites, stats)

    def outside_axes(self) -> Outside:
        """The elites measured outside the map's axes, per measure (:func:`archive.outside.outside_axes`):
        read from the elites alone, one row per cell at most."""
        with self.reading():
            elites = self.store.elites(self.record.id, fields=("measures",))
        return outside_axes(self.layout.axes, elites)

    def map(self, path: str | Path, data: MapData | None = None) -> Path:
        """Write the elite map (:meth:`map_figure`) of ``data`` (default: :meth:`map_data`,
        read now) to ``path``, PNG, SVG or PDF by its suffix; ``path`` checked as the command
        line checks it (:func:`archive.outputs.check_output`). Returns ``path``."""
        from archive.figures import save

        path = output_path(path)
        _check_map_data(data)
        check_output(path, FIGURE_SUFFIXES, self.store.url)
        save(self.map_figure(data), path)
        return path

    def map_figure(self, data: MapData | None = None) -> Figure:
        """The elite map (:func:`archive.figures.map_figure`) of ``data`` (default:
        :meth:`map_data`, read now) as a :class:`matplotlib.figure.Figure`, written nowhere:
        a notebook shows it as a cell's last value (``camp.map_figure()``), and
        ``fig.savefig(...)`` writes it. It is drawn on matplotlib's object API (the Agg
        canvas, never ``pyplot``): no figure is added to ``pyplot``'s figures, no backend
        is set, and it is freed with its last reference. :meth:`map` writes the same figure
        to a file."""
        from archive.figures import map_figure

        _check_map_data(data)
        return map_figure(self.map_data() if data is None else data)

    def front(self, path: str | Path, minimize: str | Iterable[str] = (), *, cli_words: bool = False) -> Path:
        """Write :meth:`front_figure` (``minimize`` and ``cli_words`` as there) to ``path``,
        PNG, SVG or PDF by its suffix, checked as the command line checks it
        (:func:`archive.outputs.check_output`) once ``minimize`` is. Returns ``path``."""
        from archive.figures import save

        settings = self._front_settings(minimize, cli_words)
        path = output_path(path)
        check_output(path, FIGURE_SUFFIXES, self.store.url)
        save(self._front_figure(settings), path)
        return path

    def front_figure(self, minimize: str | Iterable[str] = (), *, cli_words: bool = False) -> Figure:
        """Objective against each measure with its Pareto front (:func:`archive.figures.pareto_front_figure`)
        as a :class:`matplotlib.figure.Figure`, written nowhere (drawn as :meth:`map_figure`
        is: no ``pyplot`` state; :meth:`front` writes it to a file),
        each measure in the direction the search gave it (``mo-bo``'s ``measure_directions``),
        else maximised; ``minimize`` names measures to minimise in this figure whatever the
        search said (an entropy where lower is the aim): one name (a str, which had been read
        letter by letter) or several. A name that is not a measure of the campaign is
        :class:`~archive.errors.UnknownMeasure`, naming the measures and the argument as Python's
        (``minimize='zz'``; ``cli_words``: as ``atlas front``'s flag, ``--minimize zz``). With no
        done evaluation, each measure's axis spans its range and the figure says how many
        failed."""
        return self._front_figure(self._front_settings(minimize, cli_words))

    def _front_settings(self, minimize: str | Iterable[str], cli_words: bool) -> CampaignSettings:
        """The campaign's settings with the measures ``minimize`` names minimised (checked:
        :meth:`front_figure`)."""
        minimize = measure_names("minimize", minimize)
        unknown = [m for m in minimize if m not in self.settings.measures]
        if unknown:
            given = f"--minimize {unknown[0]}" if cli_words else f"minimize={unknown[0]!r}"
            raise UnknownMeasure(f"{given}: not a measure of campaign {self.name!r} "
                                 f"(measures: {', '.join(self.settings.measures)})")
        return dataclasses.replace(self.settings, measure_directions={
            **self.settings.measure_directions, **dict.fromkeys(minimize, "minimize")})

    def _front_figure(self, settings: CampaignSettings) -> Figure:
        from archive.figures import pareto_front_figure

        rows = self.evaluations(status="done")
        failed = None if rows else self.stats().counts["failed"]
        return pareto_front_figure(self.name, settings, rows, measure_axes=self.layout.axes, failed=failed)

    def law(self, measure: str | None = None, mode: str | None = None, by: str | None = None) -> Any:
        """The entropy-performance law R = −a·exp(H) + b over the done evaluations, an
        :class:`archive.law.LawReading` in ``mode``: ``per-run`` (each run's fit over its
        checkpoints, training entropy vs validation accuracy: the paper's use), ``pooled``
        (one fit over all runs' checkpoints) or ``cross-configuration`` (one fit over the
        final objective vs ``measure``, default ``final_entropy``; its ``.fit`` is the
        :class:`~archive.law.LawFit`). ``None``: ``per-run`` when trajectories exist and
        no ``measure`` is named, else ``cross-configuration``. ``by``, a parameter's name,
        adds one fit per value of it (``.groups``, :func:`archive.law_groups.grouped_law`; ``pooled``
        or ``cross-configuration`` only, ``pooled`` the default where ``per-run`` would be);
        the spec's space names the categorical parameters the mixed-regime warning suggests.
        Its ``warnings`` are what ``atlas law`` prints (:func:`archive.law.reading_warnings`)."""
        from archive.law import MODES, campaign_law
        from archive.law_groups import grouped_law

        by = optional_str("by", by, "a parameter's name")
        measure = optional_str("measure", measure, "a measure's name")
        mode = optional_str("mode", mode, f"one of {', '.join(MODES)}")
        space = self.spec.get("space") if isinstance(self.spec, dict) else None
        done = self.evaluations(status="done")
        if by is None:
            return campaign_law(self.name, self.settings, done, measure, mode, space)
        return grouped_law(self.name, self.settings, done, by, measure, mode, space)

    def failure_summary(self, limit: int = 5) -> list[tuple[str, int]]:
        """The ``limit`` most common failure messages (an error's first line) and their
        counts, most common first."""
        limit = row_limit("limit", limit)
        with self.reading():
            return self.store.failure_summary(self.record.id, limit=limit)

    def failed_evaluations(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Failed evaluations, the latest first, at most ``limit`` (an integer; None: all)."""
        limit = row_limit("limit", limit)
        with self.reading():
            return self.store.failed_evaluations(self.record.id, limit=limit)

    def lease_is_live(self, now: float | None = None) -> bool:
        """Whether a scheduler holds the campaign's lease, it has not expired, and its holder
        is not a process of this host that is gone (:func:`~archive.records.scheduler_is_live`);
        ``now``: a Unix time (a number), or None for the present."""
        if now is not None and (isinstance(now, bool) or not isinstance(now, numbers.Real)):
            raise TypeError(f"now: must be a Unix time (a number) or None, got {shown_value(now)}")
        return scheduler_is_live(self.record.lease_holder, self.record.lease_expires, now)

    def delete(self, force: bool = False) -> dict[str, int]:
        """Delete the campaign and all its rows (refused while its lease is live, unless
        ``force``); the counts deleted, by table. Needs a storage opened for writing
        (``archive.open(URL, readonly=False)``; a read-only handle's is a :class:`StorageError`
        saying so, before any write). A
        campaign deleted already is :class:`CampaignNotFound`, never another campaign that
        took its id since (checked just before the delete's own transaction)."""
        force = flag("force", force)
        check_open(self.store)
        self._check_present()
        if self.store.readonly:  # had been the database's "attempt to write a readonly database"
            raise StorageError(f"cannot delete campaign {self.name!r}: this handle is read-only; open it with "
                               f"archive.open({shown_url(self.store.url)!r}, readonly=False)")
        return self.store.delete_campaign(self.record.id, force=force)


class ArchiveHandle:
    """A storage, opened read-only by default (nothing created, nothing migrated); with
    ``readonly=False`` it is created and migrated as a campaign run would. ``storage``: a
    URL, or a :class:`pathlib.Path` of a SQLite file (:func:`storage_url`)."""

    def __init__(self, storage: str | os.PathLike[str], readonly: bool = True) -> None:
        readonly = flag("readonly", readonly)
        self.store = Store(storage_url(storage), readonly=readonly)

    def campaigns(self) -> list[CampaignHandle]:
        """A handle of each campaign in the storage; a closed handle's is a :class:`StorageError`."""
        check_open(self.store)
        return [CampaignHandle(self.store, r) for r in self.store.campaigns()]

    def campaign(self, name: str) -> CampaignHandle:
        """The campaign called ``name`` (a str); :class:`CampaignNotFound` naming the known ones."""
        name = campaign_name(name)
        check_open(self.store)
        return CampaignHandle(self.store, self.store.require_campaign(name))

    def close(self) -> None:
        """Close the storage's connections; every read of this handle, or of a campaign's
        opened from it, is then a :class:`StorageError` (closing twice does nothing more)."""
        self.store.close()

    def __enter__(self) -> ArchiveHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
