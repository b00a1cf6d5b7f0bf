"""``/api/v1/agents``: last seen, online/offline, clock skew, spool health."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from collector.config import CollectorConfig
from collector.db import agents, pds
from dashboard_api.dependencies import (
    Paged,
    PageDep,
    Reader,
    StoreDep,
    get_config,
    paged,
    scope_pd,
)

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


class AgentStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@router.get("", response_model=Paged)
def list_agents(auth: Reader, store: StoreDep, pg: PageDep,
                cfg: Annotated[CollectorConfig, Depends(get_config)],
                pd: Annotated[str | None, Query(max_length=64)] = None,
                status: AgentStatus | None = None) -> Paged:
    pd = scope_pd(auth, pd)
    cutoff = time.time() - cfg.agent_offline_after_s
    stmt = (select(agents.c.agent_id, pds.c.code.label("pd"), agents.c.last_seen_at,
                   agents.c.agent_version, agents.c.clock_skew_s, agents.c.spool_pending,
                   agents.c.spool_dropped_total, agents.c.spool_rejected_total,
                   agents.c.revoked)
            .join(pds, pds.c.id == agents.c.pd_id).order_by(agents.c.agent_id))
    if pd:
        stmt = stmt.where(pds.c.code == pd)
    if status is AgentStatus.ONLINE:
        stmt = stmt.where(agents.c.last_seen_at >= cutoff)
    elif status is AgentStatus.OFFLINE:
        stmt = stmt.where((agents.c.last_seen_at < cutoff) | agents.c.last_seen_at.is_(None))
    result = paged(store, stmt, pg)
    for item in result.items:
        _decorate(item, cutoff, cfg.clock_skew_max_s)
    return result


def _decorate(item: dict[str, Any], cutoff: float, skew_max: float) -> None:
    seen = item["last_seen_at"]
    item["status"] = (AgentStatus.ONLINE if seen is not None and seen >= cutoff
                      else AgentStatus.OFFLINE).value
    skew = item["clock_skew_s"]
    item["clock_skew_ok"] = None if skew is None else abs(skew) <= skew_max
