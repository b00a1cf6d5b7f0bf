"""SQL tables of compliance and backup monitoring (mirror of migration ``0004_compliance``).

- ``violations``: one row per occurrence of a violation of one obligation by one subject of
  one PD. ``open_key`` = ``"<obligation>|<subject>"`` while the occurrence is active (open,
  acknowledged or waived) and NULL once resolved, so the database itself keeps at most one
  active occurrence per (PD, obligation, subject) even with several collectors. A violation
  that comes back after resolution is a new row whose ``previous_id`` is the last one.
- ``violation_events``: the history of each occurrence (opened, acknowledged, waived, waiver
  expired, severity changed, resolved).
- ``backup_jobs``: the latest state of each backup job (agent + job), ``backup_history``: a row
  per change of what the job reported (new backup, run outcome, replica, integrity).
- ``server_scans`` / ``server_hosts``: the latest server-port scan of each agent and the LAN
  hosts it found listening on server ports (DC-1).
- ``registered_devices``: the PD's registered ICT inventory (ASSET-1), as reported to the
  regional asset system; maintained through the API.

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

violations = Table(
    "violations", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("obligation", String(16), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("open_key", String(540)),
    Column("status", String(16), nullable=False),        # open|acknowledged|waived|resolved
    Column("severity", String(16), nullable=False),      # warning|minor|major|critical
    Column("region", String(32), nullable=False),
    Column("article", String(255), nullable=False),
    Column("regulation", String(255), nullable=False),
    Column("messages", JSON, nullable=False),            # [{"key": ..., "params": {...}}]
    Column("evidence", JSON, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("occurrence", Integer, nullable=False),
    Column("previous_id", Integer, ForeignKey("violations.id")),
    Column("acked_at", Double),
    Column("acked_by", String(255)),
    Column("ack_comment", Text),
    Column("waived_at", Double),
    Column("waived_by", String(255)),
    Column("waiver_reason", Text),
    Column("waiver_expires_at", Double),
    Column("resolved_at", Double),
    Column("resolution", String(32)),                    # cleared | not_applicable
    UniqueConstraint("pd_id", "open_key", name="uq_violations_pd_open_key"),
    Index("ix_violations_status_pd", "status", "pd_id"),
    Index("ix_violations_key", "pd_id", "obligation", "subject"),
    Index("ix_violations_last_seen", "last_seen"),
)

violation_events = Table(
    "violation_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("violation_id", Integer, ForeignKey("violations.id"), nullable=False, index=True),
    Column("at", Double, nullable=False),
    Column("event", String(32), nullable=False),
    Column("actor", String(255)),
    Column("detail", JSON),
)

backup_jobs = Table(
    "backup_jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False),
    Column("job", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_type", String(64)),
    Column("last_success_at", Double),
    Column("last_failure_at", Double),
    Column("last_failure_reason", Text),
    Column("size_bytes", BigInteger),
    Column("prev_size_bytes", BigInteger),      # of the backup before last_success_at
    Column("prev_success_at", Double),
    Column("duration_s", Double),
    Column("item_count", BigInteger),
    Column("checksum_sha256", String(64)),
    Column("expected_interval_s", Double),
    Column("destination", String(255)),
    Column("destination_ips", JSON, nullable=False),
    Column("destination_error", Text),
    Column("replica", JSON),                     # BackupReplica as JSON, NULL: none configured
    Column("replica_last_success_at", Double),
    Column("integrity", String(16), nullable=False),
    Column("integrity_checked_at", Double),
    Column("integrity_message", Text),
    Column("first_seen", Double, nullable=False),
    Column("observed_at", Double, nullable=False),
    Column("report_id", String(36), nullable=False),
    UniqueConstraint("agent_pk", "job", name="uq_backup_jobs_agent_job"),
    Index("ix_backup_jobs_pd", "pd_id"),
)

backup_history = Table(
    "backup_history", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("backup_jobs.id"), nullable=False),
    Column("observed_at", Double, nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_success_at", Double),
    Column("size_bytes", BigInteger),
    Column("item_count", BigInteger),
    Column("checksum_sha256", String(64)),
    Column("replica_last_success_at", Double),
    Column("integrity", String(16), nullable=False),
    Column("report_id", String(36), nullable=False),
    UniqueConstraint("job_id", "observed_at", name="uq_backup_history_job_time"),
)

server_scans = Table(
    "server_scans", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False, unique=True),
    Column("observed_at", Double, nullable=False),
    Column("subnets", JSON, nullable=False),
    Column("ports", JSON, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("error", Text),
    Column("server_mode", Boolean, nullable=False),
    Column("local", JSON),
    Column("counters", JSON, nullable=False),
    Column("report_id", String(36), nullable=False),
)

server_hosts = Table(
    "server_hosts", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("agent_pk", Integer, ForeignKey("agents.id"), nullable=False),
    Column("ip", String(64), nullable=False),
    Column("mac", String(17)),
    Column("interface", String(255)),
    Column("open_ports", JSON, nullable=False),
    Column("roles", JSON, nullable=False),
    Column("role", String(32), nullable=False),
    Column("scanned_at", Double, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("report_id", String(36), nullable=False),
    UniqueConstraint("agent_pk", "ip", name="uq_server_hosts_agent_ip"),
    Index("ix_server_hosts_pd", "pd_id"),
)

registered_devices = Table(
    "registered_devices", metadata,
    Column("id", Integer, primary_key=True),
    Column("pd_id", Integer, ForeignKey("pds.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("category", String(32)),
    Column("vendor", String(255)),
    Column("model", String(255)),
    Column("serial", String(255)),
    Column("mac", String(17)),
    Column("mgmt_address", String(64)),
    Column("asset_tag", String(255)),
    Column("updated_at", Double, nullable=False),
    Column("updated_by", String(255), nullable=False),
    UniqueConstraint("pd_id", "name", name="uq_registered_devices_pd_name"),
)
