"""Initial schema: PDs, agents, API keys, report ledger, hosts, probe targets, transitions, outbox.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('outbox_failed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.Column('failed_at', sa.Double(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('pds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code')
    )
    op.create_table('agents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=False),
    sa.Column('pd_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.Column('last_seen_at', sa.Double(), nullable=True),
    sa.Column('last_report_id', sa.String(length=36), nullable=True),
    sa.Column('agent_version', sa.String(length=64), nullable=True),
    sa.Column('clock_skew_s', sa.Double(), nullable=True),
    sa.Column('spool_pending', sa.Integer(), nullable=True),
    sa.Column('spool_dropped_total', sa.Integer(), nullable=True),
    sa.Column('spool_rejected_total', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['pd_id'], ['pds.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('pd_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['pd_id'], ['pds.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash'),
    sa.UniqueConstraint('name')
    )
    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pd_id', sa.Integer(), nullable=False),
    sa.Column('agent_pk', sa.Integer(), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('os', sa.String(length=255), nullable=False),
    sa.Column('kernel', sa.String(length=255), nullable=False),
    sa.Column('uptime_s', sa.Double(), nullable=False),
    sa.Column('server_mode', sa.Boolean(), nullable=False),
    sa.Column('addresses', sa.JSON(), nullable=False),
    sa.Column('routes', sa.JSON(), nullable=False),
    sa.Column('first_seen', sa.Double(), nullable=False),
    sa.Column('last_seen', sa.Double(), nullable=False),
    sa.ForeignKeyConstraint(['agent_pk'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['pd_id'], ['pds.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_pk', 'hostname', name='uq_hosts_agent_hostname')
    )
    op.create_table('probe_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pd_id', sa.Integer(), nullable=False),
    sa.Column('agent_pk', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('address', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('state_since', sa.Double(), nullable=False),
    sa.Column('first_seen', sa.Double(), nullable=False),
    sa.Column('last_checked', sa.Double(), nullable=False),
    sa.Column('last_rtt_ms', sa.Double(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['agent_pk'], ['agents.id'], ),
    sa.ForeignKeyConstraint(['pd_id'], ['pds.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('agent_pk', 'name', name='uq_probe_targets_agent_name')
    )
    op.create_table('reports',
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.Column('agent_pk', sa.Integer(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('sent_at', sa.Double(), nullable=False),
    sa.Column('observations', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['agent_pk'], ['agents.id'], ),
    sa.PrimaryKeyConstraint('report_id')
    )
    op.create_table('state_transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('report_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['target_id'], ['probe_targets.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_state_transitions_target_id'), 'state_transitions', ['target_id'],
                    unique=False)
