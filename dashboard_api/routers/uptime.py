"""``/api/v1/uptime``: availability per probe target and period, from state transitions."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import select

from collector.config import CollectorConfig
from collector.db import agents, pds, probe_targets
from collector.uptime import availability, load_transitions
from dashboard_api.dependencies import (
    EpochQ,
    Paged,
    PageDep,
    Reader,
    StoreDep,
    get_config,
    paged,
    scope_pd,
)

router = APIRouter(prefix="/api/v1/uptime", tags=["uptime"])
PERIODS = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
MIN_GRACE_S = 900.0  # 15 probe intervals at the agent's default 60 s; DC-2's default too


def default_grace(cfg: CollectorConfig) -> float:
    """How long a target's last observation is trusted: 15 minutes, or three times
    ``agent_offline_after_s`` where agents are configured to report less often."""
    return max(MIN_GRACE_S, 3 * cfg.agent_offline_after_s)


@router.get("", response_model=Paged)
def uptime(auth: Reader, store: StoreDep, pg: PageDep,
           cfg: Annotated[CollectorConfig, Depends(get_config)],
           pd: Annotated[str | None, Query(max_length=64)] = None,
           agent: Annotated[str | None, Query(max_length=64)] = None,
           target: Annotated[str | None, Query(max_length=64)] = None,
           period: Annotated[str, Query(pattern="^(24h|7d|30d)$")] = "24h",
           start: EpochQ = None,
           end: EpochQ = None,
           grace_s: Annotated[float | None, Query(
               ge=0, le=7 * 86400, allow_inf_nan=False,
               description="seconds a target's last observation is trusted (default: "
                           "max(900, 3 x agent_offline_after_s))")] = None) -> Paged:
    """Availability per probe target in [``start``, ``end``) (default: the last ``period``).

    A target's state is known from its first observation until its last observation
    (``last_checked``) plus ``grace_s``; outside that the state is **unknown** and counts
    neither as up nor as down (an agent that went silent does not keep its targets "up").
    ``grace_s`` defaults to max(900 s, 3 x ``agent_offline_after_s``).

    Items (one per target, ordered by PD, agent, target; ``limit``/``offset`` pagination):
    ``pd``, ``agent``, ``target``, ``kind``, ``state`` (last recorded state), ``start``,
    ``end``; ``up_s``, ``down_s``, ``unknown_s`` (they add up to ``end - start``);
    ``availability_pct`` = up / (up + down), null when nothing is known; ``coverage_pct`` =
    (up + down) / period; ``outages``: transitions to down inside the period;
    ``last_checked``: the target's last observation; ``known_until``: ``last_checked`` +
    grace, after which its state is unknown; ``stale``: true when ``known_until`` < ``end``.
    """
    pd = scope_pd(auth, pd)
    now = time.time()
    end = min(end if end is not None else now, now)
    start = start if start is not None else end - PERIODS[period]
    if start >= end:
        raise HTTPException(422, "start must be before end")
    grace = default_grace(cfg) if grace_s is None else grace_s
    stmt = (select(probe_targets.c.id, pds.c.code.label("pd"),
                   agents.c.agent_id.label("agent"), probe_targets.c.name.label("target"),
                   probe_targets.c.kind, probe_targets.c.state, probe_targets.c.last_checked)
            .join(pds, pds.c.id == probe_targets.c.pd_id)
            .join(agents, agents.c.id == probe_targets.c.agent_pk)
            .order_by(pds.c.code, agents.c.agent_id, probe_targets.c.name, probe_targets.c.id))
    for col, value in ((pds.c.code, pd), (agents.c.agent_id, agent),
                       (probe_targets.c.name, target)):
        if value is not None:
            stmt = stmt.where(col == value)
    result = paged(store, stmt, pg)
    history = load_transitions(store, [item["id"] for item in result.items], start, end)
    items = []
    for item in result.items:
        hist = history[item.pop("id")]
        last = max([item["last_checked"], *(at for at, _ in hist[-1:])])
        known_until = last + grace
        a = availability(hist, start, end, known_until)
        pct = a.availability_pct
        items.append({**item, "start": start, "end": end,
                      "availability_pct": None if pct is None else round(pct, 4),
                      "coverage_pct": round(a.coverage_pct(start, end), 4),
                      "up_s": round(a.up_s, 3), "down_s": round(a.down_s, 3),
                      "unknown_s": round(a.unknown_s, 3), "outages": a.outages,
                      "known_until": known_until, "stale": known_until < end})
    result.items = items
    return result
