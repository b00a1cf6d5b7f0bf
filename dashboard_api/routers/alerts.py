"""``/api/v1/alerts``: the alert log (INC-1 evidence: raise and notify times, time-to-notify),
acknowledge (stops escalation, ALERT-1) and resolve.

Roles: everyone reads (a pd-viewer only its own PD); admins and engineers acknowledge and
resolve any alert. A pd-viewer is its PD's Tier 1 service desk: it may acknowledge the alerts
routed to its Tier 1 (its own PD's LAN faults, also after they were escalated), not Tier 2's
(WAN, intranet and Pusat Data faults, or a LAN fault of a PD without Tier 1 contacts): those
answer 403. In what a pd-viewer reads, the Tier 2 team's addresses (emails, chat IDs, phone
numbers, webhook hosts) and delivery errors are replaced by ``[redacted]``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collector.alerts import engine
from collector.alerts.config import Condition, Severity, Zone
from collector.alerts.model import Status
from collector.alerts.sqlutil import display_recipient
from collector.db import pds
from collector.db_alerts import alert_events, alert_notifications, alerts
from collector.store import KeyAuth, Role, Store
from dashboard_api.dependencies import (
    Paged,
    PageDep,
    Reader,
    StoreDep,
    paged,
    require,
    scope_pd,
)

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
CodeQ = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
AlertId = Annotated[int, Path(ge=1, le=2**62)]
Engineer = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER)]
REDACTED = "[redacted]"

COLUMNS = (alerts.c.id, alerts.c.dedup_key.label("key"), alerts.c.condition,
           alerts.c.subject_kind, alerts.c.subject, pds.c.code.label("pd"), alerts.c.zone,
           alerts.c.tier, alerts.c.severity, alerts.c.status, alerts.c.flapping,
           alerts.c.flap_count, alerts.c.since, alerts.c.raised_at, alerts.c.first_notified_at,
           alerts.c.acked_at, alerts.c.acked_by, alerts.c.ack_comment, alerts.c.escalated_at,
           alerts.c.resolved_at, alerts.c.resolved_by, alerts.c.resolution, alerts.c.details)


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Annotated[str | None, Field(max_length=2000)] = None


def _base() -> Any:
    return select(*COLUMNS).outerjoin(pds, pds.c.id == alerts.c.pd_id)


def _decorate(item: dict[str, Any]) -> dict[str, Any]:
    """Derived times: raise -> first successful notification (INC-1), fault -> notification,
    raise -> acknowledgement (ALERT-1)."""
    notified, raised = item["first_notified_at"], item["raised_at"]
    item["time_to_notify_s"] = None if notified is None else round(notified - raised, 3)
    item["fault_to_notify_s"] = (None if notified is None
                                 else round(notified - item["since"], 3))
    item["time_to_ack_s"] = (None if item["acked_at"] is None
                             else round(item["acked_at"] - raised, 3))
    return item


@router.get("", response_model=Paged)
def list_alerts(auth: Reader, store: StoreDep, pg: PageDep, pd: CodeQ = None,
                status: Status | None = None, severity: Severity | None = None,
                condition: Condition | None = None,
                since: Annotated[float | None, Query(
                    description="raised at or after (epoch seconds)")] = None) -> Paged:
    """Alerts, newest first; ``time_to_notify_s`` is the INC-1 measure."""
    pd = scope_pd(auth, pd)
    stmt = _base().order_by(alerts.c.raised_at.desc(), alerts.c.id.desc())
    if pd is not None:
        stmt = stmt.where(pds.c.code == pd)
    if status is not None:
        stmt = stmt.where(alerts.c.status == status.value)
    if severity is not None:
        stmt = stmt.where(alerts.c.severity == severity.value)
    if condition is not None:
        stmt = stmt.where(alerts.c.condition == condition.value)
    if since is not None:
        stmt = stmt.where(alerts.c.raised_at >= since)
    result = paged(store, stmt, pg)
    for item in result.items:
        _decorate(item)
    return result


def _one(store: Store, auth: KeyAuth, alert_id: int) -> dict[str, Any]:
    rows = store.rows(_base().where(alerts.c.id == alert_id))
    item = dict(rows[0]._mapping) if rows else None
    if item is None or (auth.role is Role.PD_VIEWER and item["pd"] != auth.pd_code):
        raise HTTPException(404, f"no alert #{alert_id}")
    return item


def _tier1_owned(item: dict[str, Any]) -> bool:
    """Whether an alert was routed to its PD's Tier 1 (a LAN fault of a PD with Tier 1
    contacts). Such an alert keeps being the PD's after an escalation (tier 2 since then); the
    engine escalates Tier 1 alerts only, so ``escalated_at`` tells one apart."""
    return item["zone"] == Zone.LAN.value and (item["tier"] == 1
                                               or item["escalated_at"] is not None)


def _check_may_acknowledge(auth: KeyAuth, item: dict[str, Any]) -> None:
    if auth.role is Role.PD_VIEWER and not _tier1_owned(item):
        why = (f"zone {item['zone']}: a WAN, intranet or Pusat Data fault"
               if item["zone"] != Zone.LAN.value
               else f"PD {item['pd']} has no Tier 1 contact, so it went to Tier 2 directly")
        raise HTTPException(403, f"alert #{item['id']} is a Tier 2 alert ({why}); only the "
                                 "Tier 2 team (an engineer or admin key) may acknowledge it")


def _detail(store: Store, auth: KeyAuth, alert_id: int) -> dict[str, Any]:
    item = _decorate(_one(store, auth, alert_id))
    item["history"] = [dict(r._mapping) for r in store.rows(
        select(alert_events.c.at, alert_events.c.event, alert_events.c.actor,
               alert_events.c.channel, alert_events.c.recipient, alert_events.c.attempt,
               alert_events.c.ok, alert_events.c.detail, alert_events.c.notification_id)
        .where(alert_events.c.alert_id == alert_id)
        .order_by(alert_events.c.at, alert_events.c.id))]
    notes = []
    for r in store.rows(select(alert_notifications.c.id, alert_notifications.c.event,
                               alert_notifications.c.channel, alert_notifications.c.recipient,
                               alert_notifications.c.recipient_name, alert_notifications.c.tier,
                               alert_notifications.c.status, alert_notifications.c.attempts,
                               alert_notifications.c.created_at, alert_notifications.c.sent_at,
                               alert_notifications.c.last_error, alert_notifications.c.title)
                        .where(alert_notifications.c.alert_id == alert_id)
                        .order_by(alert_notifications.c.id)):
        n = dict(r._mapping)
        n["recipient"] = display_recipient(n["channel"], n["recipient"])
        notes.append(n)
    item["notifications"] = notes
    if auth.role is Role.PD_VIEWER:
        _redact_tier2(item)
    return item


def _redact_tier2(item: dict[str, Any]) -> None:
    """A pd-viewer sees that and when the Tier 2 team was told, not its addresses: the
    recipient of Tier 2 messages and of their delivery attempts, and their errors and attempt
    details (an SMTP or gateway error may quote the address), become ``[redacted]``."""
    tier2: set[int] = set()
    for n in item["notifications"]:
        if n["tier"] != 1:
            tier2.add(n["id"])
            n["recipient"] = REDACTED
            if n["last_error"] is not None:
                n["last_error"] = REDACTED
    for h in item["history"]:
        if h["notification_id"] in tier2:
            h["recipient"] = REDACTED if h["recipient"] is not None else None
            h["detail"] = REDACTED if h["detail"] is not None else None


@router.get("/{alert_id}")
def get_alert(alert_id: AlertId, auth: Reader, store: StoreDep) -> dict[str, Any]:
    """One alert with its full history (raise, each notification attempt, acknowledge,
    escalate, resolve) and its messages."""
    return _detail(store, auth, alert_id)


def _apply(op: Any, store: Store, alert_id: int, who: str, note: Note | None) -> None:
    try:
        op(store, alert_id, who, note.comment if note else None, time.time())
    except engine.AlertNotFound as e:
        raise HTTPException(404, str(e)) from e
    except engine.AlertConflict as e:
        raise HTTPException(409, str(e)) from e


@router.post("/{alert_id}/ack")
async def acknowledge(alert_id: AlertId, auth: Reader, store: StoreDep,
                      note: Annotated[Note | None, Body()] = None) -> dict[str, Any]:
    """Acknowledge: the responsible tier has taken the alert; it is not escalated. A pd-viewer
    key may acknowledge its PD's Tier 1 alerts only (403 for a Tier 2 alert)."""
    item = await run_in_threadpool(_one, store, auth, alert_id)  # 404 outside a viewer's PD
    _check_may_acknowledge(auth, item)   # zone never changes, tier only 1 -> 2 on escalation
    await run_in_threadpool(_apply, engine.acknowledge, store, alert_id, auth.name, note)
    return await run_in_threadpool(_detail, store, auth, alert_id)


@router.post("/{alert_id}/resolve")
async def resolve(alert_id: AlertId, auth: Engineer, store: StoreDep,
                  note: Annotated[Note | None, Body()] = None) -> dict[str, Any]:
    """Close by hand. A fault that is still present is alerted again after the hold-down."""
    await run_in_threadpool(_apply, engine.resolve, store, alert_id, auth.name, note)
    return await run_in_threadpool(_detail, store, auth, alert_id)
