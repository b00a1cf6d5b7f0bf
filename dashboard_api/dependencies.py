"""Shared dependencies: API-key authentication, role checks, PD scoping, pagination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from pydantic import BaseModel
from sqlalchemy import Select, func, select

from collector.config import CollectorConfig
from collector.influx import V1Client
from collector.store import KeyAuth, Role, Store

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="API key from `spbe-collector apikey add`")


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_config(request: Request) -> CollectorConfig:
    cfg: CollectorConfig = request.app.state.config
    return cfg


def get_influx(request: Request) -> V1Client:
    client: V1Client = request.app.state.influx_query
    return client


async def current_key(request: Request,
                      key: Annotated[str | None, Security(api_key_header)]) -> KeyAuth:
    auth = await run_in_threadpool(get_store(request).key_by_secret, key) if key else None
    if auth is None:
        raise HTTPException(401, "missing or unknown API key (header X-API-Key)")
    return auth


def require(*roles: Role) -> Any:
    async def dep(auth: Annotated[KeyAuth, Depends(current_key)]) -> KeyAuth:
        if auth.role not in roles:
            raise HTTPException(403, f"role {auth.role.value} may not do this")
        return auth
    return Depends(dep)


Reader = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER, Role.PD_VIEWER)]
StoreDep = Annotated[Store, Depends(get_store)]


def scope_pd(auth: KeyAuth, requested: str | None) -> str | None:
    """The PD code a query is limited to: a pd-viewer sees only its own PD."""
    if auth.role is Role.PD_VIEWER:
        if requested is not None and requested != auth.pd_code:
            raise HTTPException(403, f"this key may only read PD {auth.pd_code!r}")
        return auth.pd_code
    return requested


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def page(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
         offset: Annotated[int, Query(ge=0)] = 0) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page)]


class Paged(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[dict[str, Any]]


# bounded parameters: an absurd value is a 422, never an overflow deeper down
EpochQ = Annotated[float | None, Query(ge=0, le=7.3e9, allow_inf_nan=False,
                                       description="epoch seconds")]
IdPath = Annotated[int, Path(ge=1, le=2**62)]


def like_escape(value: str) -> str:
    """Escape LIKE wildcards so user text matches literally (use with ``escape="\\"``)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column: Any, text: str) -> Any:
    """Case-insensitive "column contains text", wildcards in ``text`` taken literally."""
    return column.ilike(f"%{like_escape(text)}%", escape="\\")


def paged(store: Store, stmt: Select[Any], pg: Page) -> Paged:
    total = store.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = store.rows(stmt.limit(pg.limit).offset(pg.offset))
    return Paged(total=int(total or 0), limit=pg.limit, offset=pg.offset,
                 items=[dict(r._mapping) for r in rows])
