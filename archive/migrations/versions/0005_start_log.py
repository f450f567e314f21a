"""The start log (issue #15): ``evaluation_starts``, one row per start the inline executor
logged before running its evaluation and the scheduler has not yet charged on the row
(:mod:`archive.starts`).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluation_starts",
        sa.Column("evaluation_id", sa.Integer, sa.ForeignKey("evaluations.id", ondelete="CASCADE"),
                  primary_key=True, autoincrement=False),
        sa.Column("campaign_id", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
    )


def downgrade() -> None:
    """The logged starts are charged on their rows first, as the scheduler would have."""
    op.execute(
        "UPDATE evaluations SET status = 'running', attempts = attempts + 1, "
        "started_at = (SELECT s.started_at FROM evaluation_starts s WHERE s.evaluation_id = evaluations.id), "
        "worker = (SELECT s.worker FROM evaluation_starts s WHERE s.evaluation_id = evaluations.id) "
        "WHERE id IN (SELECT evaluation_id FROM evaluation_starts) AND status IN ('pending', 'running')"
    )
    op.drop_table("evaluation_starts")
