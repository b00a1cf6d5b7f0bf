"""``/api/v1/probes``: probe targets with their current state (SQL), latest values and
history (InfluxDB, InfluxQL)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from collector.db import agents, pds, probe_targets
from collector.influx import InfluxError, V1Client, quote_literal
from contract.report import ProbeKind
from dashboard_api.dependencies import (
    EpochQ,
    Paged,
    PageDep,
    Reader,
    StoreDep,
    get_influx,
    paged,
    scope_pd,
)

router = APIRouter(prefix="/api/v1/probes", tags=["probes"])
CodeQ = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
InfluxDep = Annotated[V1Client, Depends(get_influx)]


@router.get("", response_model=Paged)
def list_probes(auth: Reader, store: StoreDep, pg: PageDep, pd: CodeQ = None,
                agent: CodeQ = None, kind: ProbeKind | None = None,
                state: Annotated[str | None, Query(pattern="^(up|down)$")] = None) -> Paged:
    """Every probe target with its current state and since when; ``resolved``: the addresses
    its host name last resolved to (and ``resolved_at``)."""
    pd = scope_pd(auth, pd)
    stmt = (select(probe_targets.c.name.label("target"), pds.c.code.label("pd"),
                   agents.c.agent_id.label("agent"), probe_targets.c.kind,
                   probe_targets.c.address, probe_targets.c.state, probe_targets.c.state_since,
                   probe_targets.c.last_checked, probe_targets.c.last_rtt_ms,
                   probe_targets.c.last_error, probe_targets.c.resolved,
                   probe_targets.c.resolved_at)
            .join(pds, pds.c.id == probe_targets.c.pd_id)
            .join(agents, agents.c.id == probe_targets.c.agent_pk)
            .order_by(pds.c.code, agents.c.agent_id, probe_targets.c.name))
    for col, value in ((pds.c.code, pd), (agents.c.agent_id, agent),
                       (probe_targets.c.kind, kind.value if kind else None),
                       (probe_targets.c.state, state)):
        if value is not None:
            stmt = stmt.where(col == value)
    return paged(store, stmt, pg)


def _where(pd: str | None, agent: str | None, target: str | None) -> list[str]:
    return [f"{tag} = {quote_literal(v)}" for tag, v in
            (("pd", pd), ("agent", agent), ("target", target)) if v is not None]


def _rows(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for s in series:
        tags = s.get("tags", {})
        for values in s.get("values", []):
            row = dict(zip(s["columns"], values, strict=False))
            row.update(tags)
            row["time"] = row["time"] / 1e9
            out.append(row)
    return out


async def _query(influx: V1Client, q: str) -> list[dict[str, Any]]:
    try:
        return _rows(await run_in_threadpool(influx.query, q))
    except InfluxError as e:
        raise HTTPException(503, f"metrics store unavailable: {e}") from e


@router.get("/latest")
async def latest(auth: Reader, influx: InfluxDep, pd: CodeQ = None, agent: CodeQ = None,
                 target: CodeQ = None) -> list[dict[str, Any]]:
    """The most recent measurement of every probe series (from InfluxDB)."""
    pd = scope_pd(auth, pd)
    cond = [*_where(pd, agent, target), "time > now() - 7d"]
    q = (f"SELECT * FROM probe WHERE {' AND '.join(cond)} "
         "GROUP BY pd, agent, target, probe ORDER BY time DESC LIMIT 1")
    return await _query(influx, q)


@router.get("/history")
async def history(auth: Reader, influx: InfluxDep, target: CodeQ, pd: CodeQ = None,
                  agent: CodeQ = None,
                  start: EpochQ = None,
                  end: EpochQ = None,
                  interval_s: Annotated[int | None, Query(ge=1, le=86400,
                                                          description="aggregate per bucket")]
                  = None) -> list[dict[str, Any]]:
    """Measurements of one target over time; raw, or averaged per ``interval_s`` bucket."""
    if target is None:
        raise HTTPException(422, "query parameter 'target' is required")
    pd = scope_pd(auth, pd)
    end = end if end is not None else time.time()
    start = start if start is not None else end - 3600
    if start >= end:
        raise HTTPException(422, "start must be before end")
    cond = [*_where(pd, agent, target), f"time >= {int(start * 1e9)}", f"time < {int(end * 1e9)}"]
    if interval_s:
        q = (f"SELECT mean(up) AS availability, mean(rtt_ms) AS rtt_ms, "
             f"mean(loss_pct) AS loss_pct FROM probe WHERE {' AND '.join(cond)} "
             f"GROUP BY time({interval_s}s), pd, agent, target fill(none)")
    else:
        q = (f"SELECT up, rtt_ms, loss_pct, status_code, tls_days_left FROM probe "
             f"WHERE {' AND '.join(cond)} GROUP BY pd, agent, target LIMIT 10000")
    return await _query(influx, q)
