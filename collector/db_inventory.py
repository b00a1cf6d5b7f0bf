"""SQL tables of the network inventory (mirror of migration ``0002_inventory``).

- ``devices``: one row per polled device per PD (facts, last poll status, and the latest
  addresses/routes/ARP/FDB tables as JSON).
- ``device_interfaces``: the latest interface table of each device.
- ``lldp_neighbors``: the latest LLDP neighbour rows of each device.
- ``topology_baselines``: topologies approved by an engineer as a PD's submitted diagram.
- ``topology_changes``: differences between the discovered topology and the baseline.
- ``config_versions``: running configurations, a new row only when the SHA-256 changes.

Times are UTC epoch seconds, as everywhere in the state store.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from collector.db import metadata

devices = Table(
    "devices", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("hostname", String(255)),
    Column("mgmt_address", String(255), nullable=False),
    Column("driver", String(64), nullable=False),
    Column("vendor", String(255)),
    Column("model", String(255)),
    Column("serial", String(255)),
    Column("os_version", String(255)),
    Column("sys_object_id", String(255)),
    Column("sys_description", Text),
    Column("location", String(255)),
    Column("contact", String(255)),
    Column("uptime_s", Double),
    Column("role", String(32)),
    Column("addresses", JSON, nullable=False),
    Column("routes", JSON, nullable=False),
    Column("arp", JSON, nullable=False),
    Column("fdb", JSON, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double),          # last poll the device answered (ok or partial)
    Column("last_poll_at", Double, nullable=False),
    Column("last_status", String(16), nullable=False),
    Column("last_error_type", String(64)),
    Column("last_error", Text),
    Column("last_duration_s", Double),
    Column("last_report_id", String(36), nullable=False),
    UniqueConstraint("pd_id", "name", name="uq_devices_pd_name"),
    Index("ix_devices_name", "name"),
)

device_interfaces = Table(
    "device_interfaces", metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("if_index", Integer),
    Column("description", String(255), nullable=False),
    Column("type", String(255)),
    Column("mac", String(17)),
    Column("mtu", Integer),
    Column("speed_mbps", Double),
    Column("admin_up", Boolean),
    Column("oper_up", Boolean),
    Column("in_octets", BigInteger),
    Column("out_octets", BigInteger),
    Column("in_errors", BigInteger),
    Column("out_errors", BigInteger),
    Column("in_discards", BigInteger),
    Column("out_discards", BigInteger),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("device_id", "name", name="uq_device_interfaces_device_name"),
)

lldp_neighbors = Table(
    "lldp_neighbors", metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False, index=True),
    Column("local_port", String(255), nullable=False),
    Column("remote_chassis_id", String(255), nullable=False),
    Column("remote_port_id", String(255), nullable=False),
    Column("remote_port_description", String(255), nullable=False),
    Column("remote_system_name", String(255), nullable=False),
    Column("remote_system_description", Text, nullable=False),
    Column("remote_mgmt_address", String(64)),
    Column("remote_capabilities", JSON, nullable=False),
    Column("observed_at", Double, nullable=False),
    Column("report_id", String(36), nullable=False),
)

topology_baselines = Table(
    "topology_baselines", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False, index=True),
    Column("approved_at", Double, nullable=False),
    Column("approved_by", String(255), nullable=False),
    Column("graph", JSON, nullable=False),
)

topology_changes = Table(
    "topology_changes", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("baseline_id", Integer, ForeignKey("topology_baselines.id"), nullable=False),
    Column("change_type", String(32), nullable=False),
    Column("change_key", String(1024), nullable=False),
    # == change_key while the change is open, NULL once resolved: at most one open change per
    # key and PD, enforced by the database even with several collectors.
    Column("open_key", String(1024)),
    Column("summary", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("report_id", String(36), nullable=False),
    Column("status", String(16), nullable=False),       # open | resolved
    Column("resolution", String(32)),                   # restored | superseded
    Column("resolved_at", Double),
    Column("resolved_report_id", String(36)),
    Column("acknowledged", Boolean, nullable=False),
    Column("acked_at", Double),
    Column("acked_by", String(255)),
    Column("ack_note", Text),
    UniqueConstraint("pd_id", "open_key", name="uq_topology_changes_pd_open_key"),
)

config_versions = Table(
    "config_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False, index=True),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("masked_secrets", Integer, nullable=False),
    Column("ignored_lines", Integer, nullable=False),
    Column("driver", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("observed_at", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("report_id", String(36), nullable=False),
)
