"""``/api/v1/uptime``: availability per probe target and period, from state transitions.

Availability = time up / time with a known state within the period. Before a target's first
observation its state is unknown, and unknown time counts neither way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from collector.db import agents, pds, probe_targets
from dashboard_api.dependencies import EpochQ, Reader, StoreDep, scope_pd

router = APIRouter(prefix="/api/v1/uptime", tags=["uptime"])
PERIODS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def availability(transitions: Sequence[tuple[float, str]], start: float,
                 end: float) -> tuple[float, float]:
    """(seconds up, seconds known) in [start, end) from time-ordered (at, state) transitions."""
    up = known = 0.0
    state: str | None = None
    cursor = start
    for at, new_state in transitions:
        if at <= start:
            state = new_state
            continue
        if at >= end:
            break
        if state is not None:
            known += at - cursor
            up += at - cursor if state == "up" else 0
        state, cursor = new_state, at
    if state is not None:
        known += end - cursor
        up += end - cursor if state == "up" else 0
    return up, known


@router.get("")
def uptime(auth: Reader, store: StoreDep,
           pd: Annotated[str | None, Query(max_length=64)] = None,
           agent: Annotated[str | None, Query(max_length=64)] = None,
           target: Annotated[str | None, Query(max_length=64)] = None,
           period: Annotated[str, Query(pattern="^(24h|7d|30d)$")] = "24h",
           start: EpochQ = None,
           end: EpochQ = None) -> list[dict[str, Any]]:
    pd = scope_pd(auth, pd)
    now = time.time()
    end = min(end if end is not None else now, now)
    start = start if start is not None else end - PERIODS[period]
    if start >= end:
        raise HTTPException(422, "start must be before end")
    stmt = (select(probe_targets.c.id, probe_targets.c.name, pds.c.code, agents.c.agent_id,
                   probe_targets.c.kind, probe_targets.c.state)
            .join(pds, pds.c.id == probe_targets.c.pd_id)
            .join(agents, agents.c.id == probe_targets.c.agent_pk)
            .order_by(pds.c.code, agents.c.agent_id, probe_targets.c.name))
    for col, value in ((pds.c.code, pd), (agents.c.agent_id, agent),
                       (probe_targets.c.name, target)):
        if value is not None:
            stmt = stmt.where(col == value)
    targets = store.rows(stmt)
    history = store.transitions([t.id for t in targets], end)
    out = []
    for t in targets:
        up, known = availability(history[t.id], start, end)
        down_events = sum(1 for at, s in history[t.id] if s == "down" and start <= at < end)
        out.append({"pd": t.code, "agent": t.agent_id, "target": t.name, "kind": t.kind,
                    "state": t.state, "start": start, "end": end,
                    "availability_pct": round(100 * up / known, 4) if known else None,
                    "up_s": round(up, 3), "down_s": round(known - up, 3),
                    "unknown_s": round(end - start - known, 3), "outages": down_events})
    return out
