"""The initial schema: campaigns, evaluations, elites, checkpoints.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("layout", sa.JSON, nullable=False),
        sa.Column("lease_holder", sa.String(200)),
        sa.Column("lease_expires", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("x", sa.JSON, nullable=False),
        sa.Column("proposer", sa.String(64), nullable=False),
        sa.Column("proposal", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("objective", sa.Float),
        sa.Column("measures", sa.JSON),
        sa.Column("metrics", sa.JSON),
        sa.Column("cell", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("worker", sa.String(200)),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("finished_seq", sa.Integer),
        sa.UniqueConstraint("campaign_id", "seq", name="uq_evaluations_campaign_seq"),
    )
    op.create_index("ix_evaluations_campaign_status", "evaluations", ["campaign_id", "status"])
    op.create_index("ix_evaluations_campaign_finished", "evaluations", ["campaign_id", "finished_seq"])
    op.create_table(
        "elites",
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("cell", sa.Integer, primary_key=True),
        sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("evaluations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("objective", sa.Float, nullable=False),
        sa.Column("fitness", sa.Float, nullable=False),
    )
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("proposer", sa.String(64), nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("campaign_id", "proposer", name="uq_checkpoints_campaign_proposer"),
    )


def downgrade() -> None:
    op.drop_table("checkpoints")
    op.drop_table("elites")
    op.drop_index("ix_evaluations_campaign_finished", "evaluations")
    op.drop_index("ix_evaluations_campaign_status", "evaluations")
    op.drop_table("evaluations")
    op.drop_table("campaigns")
