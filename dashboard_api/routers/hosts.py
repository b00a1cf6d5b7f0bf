"""``/api/v1/hosts``: hosts that run an agent, with their facts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from collector.db import agents, hosts, pds
from dashboard_api.dependencies import Paged, PageDep, Reader, StoreDep, contains, paged, scope_pd

router = APIRouter(prefix="/api/v1/hosts", tags=["hosts"])


@router.get("", response_model=Paged)
def list_hosts(auth: Reader, store: StoreDep, pg: PageDep,
               pd: Annotated[str | None, Query(max_length=64)] = None,
               hostname: Annotated[str | None, Query(max_length=255)] = None,
               server_mode: bool | None = None) -> Paged:
    pd = scope_pd(auth, pd)
    stmt = (select(hosts.c.hostname, pds.c.code.label("pd"), agents.c.agent_id, hosts.c.os,
                   hosts.c.kernel, hosts.c.uptime_s, hosts.c.server_mode, hosts.c.addresses,
                   hosts.c.routes, hosts.c.first_seen, hosts.c.last_seen)
            .join(pds, pds.c.id == hosts.c.pd_id).join(agents, agents.c.id == hosts.c.agent_pk)
            .order_by(pds.c.code, hosts.c.hostname))
    if pd:
        stmt = stmt.where(pds.c.code == pd)
    if hostname:
        stmt = stmt.where(contains(hosts.c.hostname, hostname))
    if server_mode is not None:
        stmt = stmt.where(hosts.c.server_mode.is_(server_mode))
    return paged(store, stmt, pg)
