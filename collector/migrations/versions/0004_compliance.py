"""Compliance: violations and their history, backup jobs and history, server-port scans,
the registered inventory (ASSET-1).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "violations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("obligation", sa.String(length=16), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=512), nullable=False),
        sa.Column("open_key", sa.String(length=540), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("article", sa.String(length=255), nullable=False),
        sa.Column("regulation", sa.String(length=255), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("acked_at", sa.Double(), nullable=True),
        sa.Column("acked_by", sa.String(length=255), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.Column("waived_at", sa.Double(), nullable=True),
        sa.Column("waived_by", sa.String(length=255), nullable=True),
        sa.Column("waiver_reason", sa.Text(), nullable=True),
        sa.Column("waiver_expires_at", sa.Double(), nullable=True),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.ForeignKeyConstraint(["previous_id"], ["violations.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pd_id", "open_key", name="uq_violations_pd_open_key"),
    )
    op.create_index("ix_violations_status_pd", "violations", ["status", "pd_id"])
    op.create_index("ix_violations_key", "violations", ["pd_id", "obligation", "subject"])
    op.create_index("ix_violations_last_seen", "violations", ["last_seen"])

    op.create_table(
        "violation_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("violation_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["violation_id"], ["violations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_violation_events_violation_id", "violation_events", ["violation_id"])

    op.create_table(
        "backup_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_type", sa.String(length=64), nullable=True),
        sa.Column("last_success_at", sa.Double(), nullable=True),
        sa.Column("last_failure_at", sa.Double(), nullable=True),
        sa.Column("last_failure_reason", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("prev_size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("prev_success_at", sa.Double(), nullable=True),
        sa.Column("duration_s", sa.Double(), nullable=True),
        sa.Column("item_count", sa.BigInteger(), nullable=True),
        sa.Column("checksum_sha256", sa.String(length=64), nullable=True),
        sa.Column("expected_interval_s", sa.Double(), nullable=True),
        sa.Column("destination", sa.String(length=255), nullable=True),
        sa.Column("destination_ips", sa.JSON(), nullable=False),
        sa.Column("destination_error", sa.Text(), nullable=True),
        sa.Column("replica", sa.JSON(), nullable=True),
        sa.Column("replica_last_success_at", sa.Double(), nullable=True),
        sa.Column("integrity", sa.String(length=16), nullable=False),
        sa.Column("integrity_checked_at", sa.Double(), nullable=True),
        sa.Column("integrity_message", sa.Text(), nullable=True),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("observed_at", sa.Double(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_pk", "job", name="uq_backup_jobs_agent_job"),
    )
    op.create_index("ix_backup_jobs_pd", "backup_jobs", ["pd_id"])

    op.create_table(
        "backup_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_success_at", sa.Double(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("item_count", sa.BigInteger(), nullable=True),
        sa.Column("checksum_sha256", sa.String(length=64), nullable=True),
        sa.Column("replica_last_success_at", sa.Double(), nullable=True),
        sa.Column("integrity", sa.String(length=16), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["backup_jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "observed_at", name="uq_backup_history_job_time"),
    )

    op.create_table(
        "server_scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.Double(), nullable=False),
        sa.Column("subnets", sa.JSON(), nullable=False),
        sa.Column("ports", sa.JSON(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("server_mode", sa.Boolean(), nullable=False),
        sa.Column("local", sa.JSON(), nullable=True),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_pk"),
    )

    op.create_table(
        "server_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.Column("interface", sa.String(length=255), nullable=True),
        sa.Column("open_ports", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("scanned_at", sa.Double(), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("agent_pk", "ip", name="uq_server_hosts_agent_ip"),
    )
    op.create_index("ix_server_hosts_pd", "server_hosts", ["pd_id"])

    op.create_table(
        "registered_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("vendor", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("serial", sa.String(length=255), nullable=True),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.Column("mgmt_address", sa.String(length=64), nullable=True),
        sa.Column("asset_tag", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pd_id", "name", name="uq_registered_devices_pd_name"),
    )


def downgrade() -> None:
    op.drop_table("registered_devices")
    op.drop_index("ix_server_hosts_pd", table_name="server_hosts")
    op.drop_table("server_hosts")
    op.drop_table("server_scans")
    op.drop_table("backup_history")
    op.drop_index("ix_backup_jobs_pd", table_name="backup_jobs")
    op.drop_table("backup_jobs")
    op.drop_index("ix_violation_events_violation_id", table_name="violation_events")
    op.drop_table("violation_events")
    op.drop_index("ix_violations_last_seen", table_name="violations")
    op.drop_index("ix_violations_key", table_name="violations")
    op.drop_index("ix_violations_status_pd", table_name="violations")
    op.drop_table("violations")
