"""SQL tables of the alert pipeline (mirror of migration ``0003_alerts``).

- ``alerts``: one row per fault episode of a subject and condition. ``open_key`` equals
  ``dedup_key`` while the alert is not resolved and is NULL afterwards; its UNIQUE constraint
  makes the database itself refuse a second open alert for the same subject and condition, so
  several collectors evaluating at once cannot raise twice.
- ``alert_events``: the history: raised, notified / notify_failed (per channel, recipient and
  attempt), acknowledged, escalated, flapping, resolved.
- ``alert_notifications``: the durable delivery queue (one row per message, channel and
  recipient); ``dedup_key`` is UNIQUE so a message is never queued twice.
- ``maintenance_windows``: one-off and weekly windows that silence alerts for a PD, an agent,
  a device or a target (or everything).
- ``alert_pending``: faults in their hold-down whose source cannot tell when they began.
- ``alert_meta``: small named values shared by all collectors (the last digest day).

Times are UTC epoch seconds, as everywhere in the state store.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from collector.db import metadata, state_transitions

alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("dedup_key", String(255), nullable=False, index=True),
    Column("open_key", String(255), unique=True),
    Column("condition", String(32), nullable=False),
    Column("subject_kind", String(16), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("subject_ref", String(64), nullable=False),
    Column("pd_id", Integer, ForeignKey("pds.id")),
    Column("zone", String(8), nullable=False),
    Column("tier", Integer, nullable=False),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),          # open | acknowledged | resolved
    Column("flapping", Boolean, nullable=False),
    Column("flap_count", Integer, nullable=False),
    Column("since", Double, nullable=False),               # when the fault began
    Column("raised_at", Double, nullable=False, index=True),
    Column("first_notified_at", Double),
    Column("acked_at", Double),
    Column("acked_by", String(255)),
    Column("ack_comment", Text),
    Column("escalated_at", Double),
    Column("resolved_at", Double),
    Column("resolved_by", String(255)),
    Column("resolution", String(16)),                      # recovered | manual
    Column("details", JSON, nullable=False),
    Index("ix_alerts_status_pd", "status", "pd_id"),
)

alert_events = Table(
    "alert_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), index=True),
    Column("notification_id", Integer, ForeignKey("alert_notifications.id"), index=True),
    Column("at", Double, nullable=False),
    Column("event", String(16), nullable=False),
    Column("actor", String(255)),
    Column("channel", String(16)),
    Column("recipient", String(255)),
    Column("attempt", Integer),
    Column("ok", Boolean),
    Column("detail", Text),
)

alert_notifications = Table(
    "alert_notifications", metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), index=True),
    Column("dedup_key", String(512), nullable=False, unique=True),
    Column("event", String(16), nullable=False),           # raise | recover | escalate | digest
    Column("channel", String(16), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("recipient_name", String(255), nullable=False),
    Column("tier", Integer, nullable=False),
    Column("language", String(2), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),          # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("claimed_by", String(64)),
    Column("claim_until", Double),
    Column("created_at", Double, nullable=False),
    Column("sent_at", Double),
    Column("last_error", Text),
    Index("ix_alert_notifications_due", "status", "next_attempt_at"),
)

maintenance_windows = Table(
    "maintenance_windows", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("scope", String(16), nullable=False),           # all | pd | agent | device | target
    Column("pd_id", Integer, ForeignKey("pds.id"), index=True),
    Column("subject", String(255)),                        # glob on the agent/device/target name
    Column("kind", String(8), nullable=False),             # once | weekly
    Column("starts_at", Double),                           # once
    Column("ends_at", Double),                             # once
    Column("weekdays", String(32)),                        # weekly: "mon,tue,..."
    Column("start_time", String(5)),                       # weekly: "HH:MM" local
    Column("end_time", String(5)),                         # weekly: "HH:MM" local
    Column("timezone", String(64), nullable=False),
    Column("valid_from", Double),
    Column("valid_until", Double),
    Column("reason", Text, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

alert_pending = Table(
    "alert_pending", metadata,
    Column("key", String(255), primary_key=True),        # a finding's dedup key
    Column("first_seen", Double, nullable=False),
)

alert_meta = Table(
    "alert_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

# flap counting reads the transitions of the last window: index them by time
ix_state_transitions_at = Index("ix_state_transitions_at", state_transitions.c.at)
