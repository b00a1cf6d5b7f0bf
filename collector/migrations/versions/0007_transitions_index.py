"""Index state_transitions on (target_id, at): the state at a period's start is the last
transition before it, looked up per target (uptime, DC-2, WEB-1).

Revision ID: 0007
Revises: 0006
"""
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_index("ix_state_transitions_target_at", "state_transitions", ["target_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_state_transitions_target_at", table_name="state_transitions")
