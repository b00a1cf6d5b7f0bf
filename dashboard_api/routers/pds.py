"""``/api/v1/pds``: the Perangkat Daerah and their agents' health at a glance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from collector.db import pds
from dashboard_api.dependencies import Paged, PageDep, Reader, StoreDep, contains, paged, scope_pd

router = APIRouter(prefix="/api/v1/pds", tags=["pds"])


@router.get("", response_model=Paged)
def list_pds(auth: Reader, store: StoreDep, pg: PageDep,
             q: Annotated[str | None, Query(max_length=64, description="code or name contains")]
             = None) -> Paged:
    stmt = select(pds.c.code, pds.c.name, pds.c.created_at).order_by(pds.c.code)
    pd = scope_pd(auth, None)
    if pd:
        stmt = stmt.where(pds.c.code == pd)
    if q:
        stmt = stmt.where(contains(pds.c.code, q) | contains(pds.c.name, q))
    return paged(store, stmt, pg)


@router.get("/{code}")
def get_pd(code: str, auth: Reader, store: StoreDep) -> dict[str, object]:
    scope_pd(auth, code)
    row = store.rows(select(pds.c.code, pds.c.name, pds.c.created_at).where(pds.c.code == code))
    if not row:
        raise HTTPException(404, f"no PD {code!r}")
    return dict(row[0]._mapping)
