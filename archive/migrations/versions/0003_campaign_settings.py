"""Campaign settings: what every reader needs (objective, direction, qd_offset, budget,
measures, …) as one typed record written with the campaign, filled in for old rows.

Revision ID: 0003
Revises: 0002
"""

import json

import sqlalchemy as sa
from alembic import op

from archive.records import CampaignSettings

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("settings", sa.JSON, nullable=True))
    conn = op.get_bind()
    campaigns = sa.table("campaigns", sa.column("id", sa.Integer), sa.column("spec", sa.JSON),
                         sa.column("settings", sa.JSON))
    for cid, spec in conn.execute(sa.select(campaigns.c.id, campaigns.c.spec)).all():
        spec = json.loads(spec) if isinstance(spec, str) else spec
        settings = CampaignSettings.from_spec(spec).to_json()
        conn.execute(campaigns.update().where(campaigns.c.id == cid).values(settings=settings))


def downgrade() -> None:
    op.drop_column("campaigns", "settings")
