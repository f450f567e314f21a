"""Proposer calls: every prompt and reply of an LLM-guided proposer, for audit and resume.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proposer_calls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("proposer", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("reply", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("usage", sa.JSON),
        sa.Column("outcome", sa.JSON),
        sa.Column("latency_s", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_proposer_calls_campaign_key", "proposer_calls", ["campaign_id", "key"])


def downgrade() -> None:
    op.drop_index("ix_proposer_calls_campaign_key", "proposer_calls")
    op.drop_table("proposer_calls")
