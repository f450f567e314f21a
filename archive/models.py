"""SQLAlchemy 2 models of the archive.

- ``campaigns``: one row a campaign; the spec, its hash, status, the scheduler's lease,
  and the cell layout (CVT centroids) so a resume uses the same cells.
- ``evaluations``: the append-only log. A row is written before its work is dispatched;
  a result is recorded once (``finished_seq`` numbers results in the order recorded).
- ``elites``: (campaign, cell) -> the evaluation with the best objective in that cell.
- ``checkpoints``: the proposer's serialised state, one row per campaign and proposer.
- ``proposer_calls``: each prompt and reply of a model-backed proposer (audit, resume);
  the evaluations it produced carry its ``key`` in ``proposal.call``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("pending", "running", "done", "failed")
FINISHED = ("done", "failed")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="created")
    layout: Mapped[dict[str, Any]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # archive.records.CampaignSettings
    lease_holder: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Evaluation(Base):
    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "seq", name="uq_evaluations_campaign_seq"),
        Index("ix_evaluations_campaign_status", "campaign_id", "status"),
        Index("ix_evaluations_campaign_finished", "campaign_id", "finished_seq"),
        Index("ix_evaluations_campaign_proposer_status", "campaign_id", "proposer", "status"),  # migration 0004
        Index("ix_evaluations_campaign_proposer_seq", "campaign_id", "proposer", "seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    x: Mapped[list[Any]] = mapped_column(JSON)
    proposer: Mapped[str] = mapped_column(String(64))
    proposal: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    objective: Mapped[float | None] = mapped_column(Float, nullable=True)
    measures: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    cell: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Elite(Base):
    __tablename__ = "elites"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    cell: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"))
    objective: Mapped[float] = mapped_column(Float)
    fitness: Mapped[float] = mapped_column(Float)


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("campaign_id", "proposer", name="uq_checkpoints_campaign_proposer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    proposer: Mapped[str] = mapped_column(String(64))
    state: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)


class ProposerCall(Base):
    __tablename__ = "proposer_calls"
    __table_args__ = (Index("ix_proposer_calls_campaign_key", "campaign_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    proposer: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
