"""Network inventory: devices, interfaces, LLDP neighbours, topology baselines and changes,
config versions.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("agent_pk", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=True),
        sa.Column("mgmt_address", sa.String(length=255), nullable=False),
        sa.Column("driver", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("serial", sa.String(length=255), nullable=True),
        sa.Column("os_version", sa.String(length=255), nullable=True),
        sa.Column("sys_object_id", sa.String(length=255), nullable=True),
        sa.Column("sys_description", sa.Text(), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("contact", sa.String(length=255), nullable=True),
        sa.Column("uptime_s", sa.Double(), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("arp", sa.JSON(), nullable=False),
        sa.Column("fdb", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=True),
        sa.Column("last_poll_at", sa.Double(), nullable=False),
        sa.Column("last_status", sa.String(length=16), nullable=False),
        sa.Column("last_error_type", sa.String(length=64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_duration_s", sa.Double(), nullable=True),
        sa.Column("last_report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["agent_pk"], ["agents.id"]),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pd_id", "name", name="uq_devices_pd_name"),
    )
    op.create_index("ix_devices_name", "devices", ["name"], unique=False)
    op.create_table(
        "device_interfaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("if_index", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=True),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.Column("mtu", sa.Integer(), nullable=True),
        sa.Column("speed_mbps", sa.Double(), nullable=True),
        sa.Column("admin_up", sa.Boolean(), nullable=True),
        sa.Column("oper_up", sa.Boolean(), nullable=True),
        sa.Column("in_octets", sa.BigInteger(), nullable=True),
        sa.Column("out_octets", sa.BigInteger(), nullable=True),
        sa.Column("in_errors", sa.BigInteger(), nullable=True),
        sa.Column("out_errors", sa.BigInteger(), nullable=True),
        sa.Column("in_discards", sa.BigInteger(), nullable=True),
        sa.Column("out_discards", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("device_id", "name", name="uq_device_interfaces_device_name"),
    )
    op.create_table(
        "lldp_neighbors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("local_port", sa.String(length=255), nullable=False),
        sa.Column("remote_chassis_id", sa.String(length=255), nullable=False),
        sa.Column("remote_port_id", sa.String(length=255), nullable=False),
        sa.Column("remote_port_description", sa.String(length=255), nullable=False),
        sa.Column("remote_system_name", sa.String(length=255), nullable=False),
        sa.Column("remote_system_description", sa.Text(), nullable=False),
        sa.Column("remote_mgmt_address", sa.String(length=64), nullable=True),
        sa.Column("remote_capabilities", sa.JSON(), nullable=False),
        sa.Column("observed_at", sa.Double(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lldp_neighbors_device_id", "lldp_neighbors", ["device_id"],
                    unique=False)
    op.create_table(
        "topology_baselines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("approved_at", sa.Double(), nullable=False),
        sa.Column("approved_by", sa.String(length=255), nullable=False),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_topology_baselines_pd_id", "topology_baselines", ["pd_id"],
                    unique=False)
    op.create_table(
        "topology_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pd_id", sa.Integer(), nullable=False),
        sa.Column("baseline_id", sa.Integer(), nullable=False),
        sa.Column("change_type", sa.String(length=32), nullable=False),
        sa.Column("change_key", sa.String(length=1024), nullable=False),
        sa.Column("open_key", sa.String(length=1024), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=32), nullable=True),
        sa.Column("resolved_at", sa.Double(), nullable=True),
        sa.Column("resolved_report_id", sa.String(length=36), nullable=True),
        sa.Column("acknowledged", sa.Boolean(), nullable=False),
        sa.Column("acked_at", sa.Double(), nullable=True),
        sa.Column("acked_by", sa.String(length=255), nullable=True),
        sa.Column("ack_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["baseline_id"], ["topology_baselines.id"]),
        sa.ForeignKeyConstraint(["pd_id"], ["pds.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pd_id", "open_key", name="uq_topology_changes_pd_open_key"),
    )
    op.create_table(
        "config_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("masked_secrets", sa.Integer(), nullable=False),
        sa.Column("ignored_lines", sa.Integer(), nullable=False),
        sa.Column("driver", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.Double(), nullable=False),
        sa.Column("last_seen", sa.Double(), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_config_versions_device_id", "config_versions", ["device_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_config_versions_device_id", table_name="config_versions")
    op.drop_table("config_versions")
    op.drop_table("topology_changes")
    op.drop_index("ix_topology_baselines_pd_id", table_name="topology_baselines")
    op.drop_table("topology_baselines")
    op.drop_index("ix_lldp_neighbors_device_id", table_name="lldp_neighbors")
    op.drop_table("lldp_neighbors")
    op.drop_table("device_interfaces")
    op.drop_index("ix_devices_name", table_name="devices")
    op.drop_table("devices")
