"""``/api/v1/violations``: compliance violations with their citation, evidence and lifecycle.

Every violation names its obligation and the article of the region's own regulation; the
message is in Bahasa Indonesia (``?lang=en`` for English), times in the region's time zone.
Roles: everyone reads (a pd-viewer only its own PD); admins and engineers acknowledge and
waive (the waiver records the API key's name as who).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, or_, select

from collector.compliance import engine, messages
from collector.compliance.engine import ComplianceService
from collector.compliance.messages import Lang
from collector.compliance.profile import Obligation, Severity
from collector.db import pds
from collector.db_compliance import violation_events, violations
from collector.store import KeyAuth, Role, Store
from dashboard_api.dependencies import (
    Paged,
    PageDep,
    Reader,
    StoreDep,
    contains,
    require,
    scope_pd,
)

router = APIRouter(prefix="/api/v1/violations", tags=["violations"])
CodeQ = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
ViolationId = Annotated[int, Path(ge=1, le=2**62)]
LangQ = Annotated[Literal["id", "en"], Query(description="id (Bahasa Indonesia) or en")]
Engineer = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER)]
PERIODS = {"24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "90d": 90 * 86400.0}
StatusQ = Literal["open", "acknowledged", "waived", "resolved", "active"]

COLUMNS = (violations.c.id, pds.c.code.label("pd"), violations.c.obligation,
           violations.c.subject_kind, violations.c.subject, violations.c.status,
           violations.c.severity, violations.c.region, violations.c.article,
           violations.c.regulation, violations.c.messages, violations.c.evidence,
           violations.c.first_seen, violations.c.last_seen, violations.c.updated_at,
           violations.c.occurrence, violations.c.previous_id, violations.c.acked_at,
           violations.c.acked_by, violations.c.ack_comment, violations.c.waived_at,
           violations.c.waived_by, violations.c.waiver_reason, violations.c.waiver_expires_at,
           violations.c.resolved_at, violations.c.resolution)


def service(request: Request) -> ComplianceService:
    svc: ComplianceService = request.app.state.compliance
    return svc


def region_tz(request: Request) -> ZoneInfo:
    profile = service(request).cfg.profile
    return profile.tz if profile is not None else ZoneInfo("Asia/Jakarta")


def render(item: dict[str, Any], lang: Lang, tz: ZoneInfo) -> dict[str, Any]:
    item["citation"] = f"{item['article']} {item['regulation']}"
    item["title"] = messages.title(item["obligation"], lang)
    item["message"] = messages.render_all(item["messages"] or [], lang, tz)
    try:
        item["severity_text"] = messages.SEVERITY[lang][Severity(item["severity"])]
    except ValueError:
        item["severity_text"] = item["severity"]
    item["status_text"] = messages.STATUS[lang].get(item["status"], item["status"])
    return item


class Ack(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Annotated[str | None, Field(max_length=2000)] = None


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(min_length=5, max_length=2000)]
    expires_at: datetime = Field(description="ISO 8601 with a time zone, or epoch seconds")

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("expires_at needs a time zone, e.g. 2027-01-31T23:59:59+07:00")
        return v


def _query(pd: str | None, obligation: str | None, status: str | None,
           severity: str | None, since: float | None, subject: str | None) -> Any:
    stmt = select(*COLUMNS).join(pds, pds.c.id == violations.c.pd_id)
    if pd is not None:
        stmt = stmt.where(pds.c.code == pd)
    if obligation is not None:
        stmt = stmt.where(violations.c.obligation == obligation)
    if status == "active":
        stmt = stmt.where(violations.c.status.in_(engine.ACTIVE))
    elif status is not None:
        stmt = stmt.where(violations.c.status == status)
    if severity is not None:
        stmt = stmt.where(violations.c.severity == severity)
    if since is not None:
        # active at some time since then: still active, or seen since
        stmt = stmt.where(or_(violations.c.last_seen >= since,
                              violations.c.status.in_(engine.ACTIVE)))
    if subject:
        stmt = stmt.where(contains(violations.c.subject, subject))
    return stmt


@router.get("", response_model=Paged)
def list_violations(request: Request, auth: Reader, store: StoreDep, pg: PageDep,
                    pd: CodeQ = None,
                    obligation: Annotated[Obligation | None, Query()] = None,
                    status: Annotated[StatusQ | None, Query()] = None,
                    severity: Annotated[Severity | None, Query()] = None,
                    period: Annotated[Literal["24h", "7d", "30d", "90d"] | None, Query()]
                    = None,
                    since: Annotated[float | None, Query(description="epoch seconds")] = None,
                    subject: Annotated[str | None, Query(max_length=255)] = None,
                    lang: LangQ = "id") -> Paged:
    pd = scope_pd(auth, pd)
    if since is None and period is not None:
        since = time.time() - PERIODS[period]
    stmt = _query(pd, obligation.value if obligation else None, status,
                  severity.value if severity else None, since, subject)
    stmt = stmt.order_by(violations.c.last_seen.desc(), violations.c.id.desc())
    total = store.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = store.rows(stmt.limit(pg.limit).offset(pg.offset))
    tz = region_tz(request)
    return Paged(total=int(total or 0), limit=pg.limit, offset=pg.offset,
                 items=[render(dict(r._mapping), lang, tz) for r in rows])


def _one(store: Store, vid: int, auth: KeyAuth) -> dict[str, Any]:
    rows = store.rows(select(*COLUMNS).join(pds, pds.c.id == violations.c.pd_id)
                      .where(violations.c.id == vid))
    if not rows:
        raise HTTPException(404, f"no violation {vid}")
    item = dict(rows[0]._mapping)
    if auth.role is Role.PD_VIEWER and item["pd"] != auth.pd_code:
        raise HTTPException(404, f"no violation {vid}")
    return item


@router.get("/{violation_id}")
def get_violation(request: Request, violation_id: ViolationId, auth: Reader, store: StoreDep,
                  lang: LangQ = "id") -> dict[str, Any]:
    """One violation with its history and its earlier occurrences."""
    item = render(_one(store, violation_id, auth), lang, region_tz(request))
    ev = violation_events.c
    item["history"] = [dict(r._mapping) for r in store.rows(
        select(ev.at, ev.event, ev.actor, ev.detail).where(ev.violation_id == violation_id)
        .order_by(ev.at, ev.id))]
    chain: list[dict[str, Any]] = []
    prev = item["previous_id"]
    while prev is not None and len(chain) < 50:
        rows = store.rows(select(violations.c.id, violations.c.first_seen,
                                 violations.c.resolved_at, violations.c.occurrence,
                                 violations.c.previous_id).where(violations.c.id == prev))
        if not rows:
            break
        r = dict(rows[0]._mapping)
        chain.append({k: r[k] for k in ("id", "occurrence", "first_seen", "resolved_at")})
        prev = r["previous_id"]
    item["previous_occurrences"] = chain
    return item


def _act(store: Store, fn: Any) -> None:
    try:
        with store.tx() as c:
            fn(c)
    except engine.NotFound as e:
        raise HTTPException(404, str(e)) from e
    except engine.Conflict as e:
        raise HTTPException(409, str(e)) from e


@router.post("/{violation_id}/ack")
async def ack_violation(request: Request, violation_id: ViolationId, auth: Engineer,
                        store: StoreDep, body: Annotated[Ack | None, Body()] = None,
                        lang: LangQ = "id") -> dict[str, Any]:
    comment = body.comment if body else None
    await run_in_threadpool(_act, store, lambda c: engine.acknowledge(
        c, violation_id, auth.name, comment, time.time()))
    return await run_in_threadpool(get_violation, request, violation_id, auth, store, lang)


@router.post("/{violation_id}/waive")
async def waive_violation(request: Request, violation_id: ViolationId, auth: Engineer,
                          store: StoreDep, body: Annotated[Waiver, Body()],
                          lang: LangQ = "id") -> dict[str, Any]:
    """Record an exception (e.g. DC-1 for a server that must stay in the PD for now): reason,
    who (this API key's name) and expiry; the violation reopens by itself when it expires."""
    max_days = service(request).cfg.max_waiver_days
    await run_in_threadpool(_act, store, lambda c: engine.waive(
        c, violation_id, auth.name, body.reason, body.expires_at.timestamp(), time.time(),
        max_days))
    return await run_in_threadpool(get_violation, request, violation_id, auth, store, lang)
