"""The archive's tables, in SQLAlchemy Core.

- ``campaigns``: one row a campaign; the spec, its hash, status, the scheduler's lease,
  and the cell layout (CVT centroids) so a resume uses the same cells.
- ``evaluations``: the append-only log. A row is written before its work is dispatched;
  a result is recorded once (``finished_seq`` numbers results in the order recorded).
- ``elites``: (campaign, cell) -> the evaluation with the best objective in that cell.
- ``checkpoints``: the proposer's serialised state, one row per campaign and proposer.
- ``evaluation_starts``: starts logged before their evaluation runs and not yet charged on
  its row (:mod:`archive.starts`): while a row is here, its evaluation counts as started.
- ``proposer_calls``: each prompt and reply of a model-backed proposer (audit, resume);
  the evaluations it produced carry its ``key`` in ``proposal.call``.

Plain :class:`~sqlalchemy.Table` objects: nothing maps them to classes (no session ever
loads an object), and importing ``sqlalchemy.orm`` and declaring mapped classes was about
a sixth of every command's start-up. :class:`Model` keeps the short spelling the readers
use: ``Evaluation.status`` is the column, ``Evaluation.__table__`` the table.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

STATUSES = ("pending", "running", "done", "failed")
FINISHED = ("done", "failed")

metadata = MetaData()


class Model:
    """A table's columns as attributes (``Evaluation.campaign_id``), the table as
    ``__table__`` and its name as ``__tablename__``; SQLAlchemy takes it wherever it takes
    the table (``update(Campaign)``, ``select_from(Evaluation)``, ``join(Evaluation, …)``)."""

    def __init__(self, table: Table) -> None:
        self.__table__ = table
        self.__tablename__ = table.name

    def __getattr__(self, name: str) -> Column:
        try:
            return self.__table__.c[name]
        except KeyError:
            raise AttributeError(f"table {self.__tablename__!r} has no column {name!r}") from None

    def __clause_element__(self) -> Table:
        return self.__table__

    def __repr__(self) -> str:
        return f"Model({self.__tablename__})"


def _campaign_fk() -> ForeignKey:
    return ForeignKey("campaigns.id", ondelete="CASCADE")


Campaign = Model(Table(
    "campaigns", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), unique=True, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("spec_hash", String(64), nullable=False),
    Column("status", String(16), default="created", nullable=False),
    Column("layout", JSON, nullable=False),
    Column("settings", JSON, nullable=True),  # archive.records.CampaignSettings
    Column("lease_holder", String(200), nullable=True),
    Column("lease_expires", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
))

Evaluation = Model(Table(
    "evaluations", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, _campaign_fk(), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("params", JSON, nullable=False),
    Column("x", JSON, nullable=False),
    Column("proposer", String(64), nullable=False),
    Column("proposal", JSON, nullable=False),
    Column("status", String(16), default="pending", nullable=False),
    Column("attempts", Integer, default=0, nullable=False),
    Column("objective", Float, nullable=True),
    Column("measures", JSON, nullable=True),
    Column("metrics", JSON, nullable=True),
    Column("cell", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("worker", String(200), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("finished_seq", Integer, nullable=True),
    UniqueConstraint("campaign_id", "seq", name="uq_evaluations_campaign_seq"),
    Index("ix_evaluations_campaign_status", "campaign_id", "status"),
    Index("ix_evaluations_campaign_finished", "campaign_id", "finished_seq"),
    Index("ix_evaluations_campaign_proposer_status", "campaign_id", "proposer", "status"),  # migration 0004
    Index("ix_evaluations_campaign_proposer_seq", "campaign_id", "proposer", "seq"),
))

EvaluationStart = Model(Table(
    "evaluation_starts", metadata,  # migration 0005; see archive.starts
    Column("evaluation_id", Integer, ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("campaign_id", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("worker", String(200), nullable=True),
))

Elite = Model(Table(
    "elites", metadata,
    Column("campaign_id", Integer, _campaign_fk(), primary_key=True),
    Column("cell", Integer, primary_key=True),
    Column("evaluation_id", Integer, ForeignKey("evaluations.id", ondelete="CASCADE"), nullable=False),
    Column("objective", Float, nullable=False),
    Column("fitness", Float, nullable=False),
))

Checkpoint = Model(Table(
    "checkpoints", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, _campaign_fk(), nullable=False),
    Column("proposer", String(64), nullable=False),
    Column("state", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("campaign_id", "proposer", name="uq_checkpoints_campaign_proposer"),
))

ProposerCall = Model(Table(
    "proposer_calls", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Integer, _campaign_fk(), nullable=False),
    Column("proposer", String(64), nullable=False),
    Column("key", String(64), nullable=False),
    Column("request", JSON, nullable=False),
    Column("reply", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("error", Text, nullable=True),
    Column("usage", JSON, nullable=True),
    Column("outcome", JSON, nullable=True),
    Column("latency_s", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_proposer_calls_campaign_key", "campaign_id", "key"),
))

# what a proposer hands over as a call (search.proposals.checked_calls), read off the table:
# its fields but the id and the campaign; those it must give (created_at the store stamps);
# its text fields and their widths (None: Text); its JSON fields (json.dumps: no NaN on PostgreSQL)
_CALL_COLUMNS = [c for c in ProposerCall.__table__.columns if c.name not in ("id", "campaign_id")]
CALL_FIELDS = tuple(c.name for c in _CALL_COLUMNS)
CALL_REQUIRED = tuple(c.name for c in _CALL_COLUMNS if not c.nullable and c.name != "created_at")
CALL_TEXTS: dict[str, int | None] = {c.name: getattr(c.type, "length", None) for c in _CALL_COLUMNS
                                     if isinstance(c.type, String)}
CALL_JSON = tuple(c.name for c in _CALL_COLUMNS if isinstance(c.type, JSON))
