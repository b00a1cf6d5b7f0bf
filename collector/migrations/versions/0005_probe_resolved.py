"""Probe targets keep the addresses their host name last resolved to (DC-3: where a PD
website is really hosted, as the agent saw it).

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("probe_targets") as batch:
        batch.add_column(sa.Column("resolved", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("probe_targets") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("resolved")
