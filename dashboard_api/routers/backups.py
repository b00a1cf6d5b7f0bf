"""``/api/v1/backups``: backup jobs as the agents see them (BAK-1, BAK-2 evidence): last
success and its age, size, destination, the DRC copy's age, integrity; and each job's
history."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from sqlalchemy import func, select

from collector.db import agents, pds
from collector.db_compliance import backup_history, backup_jobs
from collector.store import Role
from dashboard_api.dependencies import Paged, PageDep, Reader, StoreDep, scope_pd

router = APIRouter(prefix="/api/v1/backups", tags=["backups"])
CodeQ = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
b = backup_jobs.c
COLUMNS = (b.id, pds.c.code.label("pd"), agents.c.agent_id.label("agent"), b.job, b.type,
           b.status, b.error_type, b.last_success_at, b.last_failure_at, b.last_failure_reason,
           b.size_bytes, b.prev_size_bytes, b.duration_s, b.item_count, b.checksum_sha256,
           b.expected_interval_s, b.destination, b.destination_ips, b.destination_error,
           b.replica, b.replica_last_success_at, b.integrity, b.integrity_checked_at,
           b.integrity_message, b.first_seen, b.observed_at, b.report_id)


def _decorate(item: dict[str, Any], now: float) -> dict[str, Any]:
    last, rep = item["last_success_at"], item["replica_last_success_at"]
    item["age_s"] = round(now - last, 1) if last is not None else None
    item["replica_age_s"] = round(now - rep, 1) if rep is not None else None
    replica = item["replica"] or None
    item["replica_destination"] = replica.get("destination") if replica else None
    return item


@router.get("", response_model=Paged)
def list_backups(auth: Reader, store: StoreDep, pg: PageDep, pd: CodeQ = None,
                 agent: CodeQ = None, job: CodeQ = None,
                 status: Annotated[Literal["success", "failed", "never_run"] | None, Query()]
                 = None,
                 integrity: Annotated[Literal["ok", "failed", "error", "not_run"] | None,
                                      Query()] = None) -> Paged:
    pd = scope_pd(auth, pd)
    stmt = (select(*COLUMNS).join(pds, pds.c.id == b.pd_id)
            .join(agents, agents.c.id == b.agent_pk)
            .order_by(pds.c.code, agents.c.agent_id, b.job))
    for col, value in ((pds.c.code, pd), (agents.c.agent_id, agent), (b.job, job),
                       (b.status, status), (b.integrity, integrity)):
        if value is not None:
            stmt = stmt.where(col == value)
    total = store.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    now = time.time()
    rows = store.rows(stmt.limit(pg.limit).offset(pg.offset))
    return Paged(total=int(total or 0), limit=pg.limit, offset=pg.offset,
                 items=[_decorate(dict(r._mapping), now) for r in rows])


@router.get("/{job_id}/history", response_model=Paged)
def job_history(job_id: Annotated[int, Path(ge=1, le=2**62)], auth: Reader, store: StoreDep,
                pg: PageDep) -> Paged:
    """What the job reported over time: a row per change (new backup, outcome, replica,
    integrity), newest first."""
    owner = store.rows(select(pds.c.code).join(backup_jobs, backup_jobs.c.pd_id == pds.c.id)
                       .where(backup_jobs.c.id == job_id))
    if not owner or (auth.role is Role.PD_VIEWER and owner[0].code != auth.pd_code):
        raise HTTPException(404, f"no backup job {job_id}")
    h = backup_history.c
    stmt = (select(h.observed_at, h.status, h.last_success_at, h.size_bytes, h.item_count,
                   h.checksum_sha256, h.replica_last_success_at, h.integrity, h.report_id)
            .where(h.job_id == job_id).order_by(h.observed_at.desc()))
    total = store.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = store.rows(stmt.limit(pg.limit).offset(pg.offset))
    return Paged(total=int(total or 0), limit=pg.limit, offset=pg.offset,
                 items=[dict(r._mapping) for r in rows])
