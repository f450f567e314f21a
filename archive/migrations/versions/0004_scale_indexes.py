"""Indexes for campaigns of 10⁵–10⁶ evaluations (issue #15): reads by proposer.

- ``ix_evaluations_campaign_proposer_status`` on ``(campaign_id, proposer, status)``: the
  counts by proposer and status (``atlas status NAME``, the dashboard's proposers) come
  from an index-only scan instead of a scan of the whole table;
- ``ix_evaluations_campaign_proposer_seq`` on ``(campaign_id, proposer, seq)``: a
  proposer's latest evaluations in ``seq`` order (the bounded sample of exploration
  entropy, :mod:`archive.exploration`) are one backward range scan.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_evaluations_campaign_proposer_status": ["campaign_id", "proposer", "status"],
    "ix_evaluations_campaign_proposer_seq": ["campaign_id", "proposer", "seq"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "evaluations", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, "evaluations")
