"""Topology per PD (JSON graph and LAN diagram), its approved baseline, and the changes
discovered against it (``/api/v1/pds/{code}/topology...``, ``/api/v1/changes``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from collector import inventory
from collector.db import pds
from collector.db_inventory import topology_baselines, topology_changes
from collector.diagram import DiagramError, DiagramUnavailable, render_svg, to_dot
from collector.inventory import ChangeStatus, ChangeType
from collector.store import KeyAuth, Role, Store
from dashboard_api.dependencies import (
    IdPath,
    Paged,
    PageDep,
    Reader,
    StoreDep,
    paged,
    require,
    scope_pd,
)
from dashboard_api.routers.devices import CodeQ

router = APIRouter(prefix="/api/v1", tags=["topology"])
Engineer = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER)]


class Lang(StrEnum):
    ID = "id"
    EN = "en"


def _pd(store: Store, auth: KeyAuth, code: str) -> inventory.PdRef:
    scope_pd(auth, code)
    with store.engine.connect() as c:
        try:
            return inventory.pd_by_code(c, code)
        except inventory.NotFoundError as e:
            raise HTTPException(404, str(e)) from None


def _baseline_summary(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "approved_at": row.approved_at, "approved_by": row.approved_by}


def _topology(store: Store, pd: inventory.PdRef, hosts: bool
              ) -> tuple[dict[str, Any], dict[str, Any] | None, float]:
    now = time.time()
    with store.engine.connect() as c:
        graph = inventory.current_topology(c, pd.id, now).to_dict(hosts=hosts)
        base = _baseline_summary(inventory.latest_baseline(c, pd.id))
    return graph, base, now


@router.get("/pds/{code}/topology")
def get_topology(code: str, auth: Reader, store: StoreDep, hosts: bool = True
                 ) -> dict[str, Any]:
    """The discovered topology of a PD: nodes (devices, unregistered LLDP neighbours, hosts
    per port, the intranet uplink) and links (one per cable)."""
    pd = _pd(store, auth, code)
    graph, base, now = _topology(store, pd, hosts)
    return {"pd": {"code": pd.code, "name": pd.name}, "generated_at": now, "baseline": base,
            **graph}


@router.get("/pds/{code}/topology.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}},
                       503: {"description": "Graphviz dot is not installed"}})
def get_topology_svg(code: str, auth: Reader, store: StoreDep, lang: Lang = Lang.ID,
                     hosts: bool = True) -> Response:
    """The PD's LAN diagram (SVG, Graphviz): title with PD name and date, devices with model
    and management address, port labels, legend."""
    pd = _pd(store, auth, code)
    graph, base, now = _topology(store, pd, hosts)
    dot = to_dot(graph, pd.code, pd.name, datetime.fromtimestamp(now, UTC), lang=lang.value,
                 baseline=base)
    try:
        svg = render_svg(dot)
    except DiagramUnavailable as e:
        raise HTTPException(503, str(e)) from None
    except DiagramError as e:
        raise HTTPException(500, str(e)) from None
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
    return Response(svg, media_type="image/svg+xml", headers={
        "Content-Disposition": f'inline; filename="lan-{pd.code}-{stamp}.svg"',
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff"})


@router.get("/pds/{code}/topology/baseline")
def get_baseline(code: str, auth: Reader, store: StoreDep) -> dict[str, Any]:
    """The PD's approved baseline topology (the last approval)."""
    pd = _pd(store, auth, code)
    with store.engine.connect() as c:
        row = inventory.latest_baseline(c, pd.id)
    if row is None:
        raise HTTPException(404, f"PD {pd.code!r} has no approved baseline yet")
    return {"pd": pd.code, **(_baseline_summary(row) or {}), **row.graph}


@router.post("/pds/{code}/topology/baseline", status_code=201)
def approve_baseline(code: str, auth: Engineer, store: StoreDep) -> dict[str, Any]:
    """Approve the current topology as the PD's submitted baseline; later differences become
    changes. Open changes of the previous baseline are closed as superseded."""
    scope_pd(auth, code)
    try:
        with store.tx() as c:
            return inventory.approve_baseline(c, code, auth.name, time.time())
    except inventory.NotFoundError as e:
        raise HTTPException(404, str(e)) from None
    except inventory.ConflictError as e:
        raise HTTPException(409, str(e)) from None


CHANGE_COLUMNS = (
    topology_changes.c.id, pds.c.code.label("pd"), topology_changes.c.change_type.label("type"),
    topology_changes.c.summary, topology_changes.c.detail, topology_changes.c.evidence,
    topology_changes.c.first_seen, topology_changes.c.last_seen, topology_changes.c.report_id,
    topology_changes.c.status, topology_changes.c.resolution, topology_changes.c.resolved_at,
    topology_changes.c.resolved_report_id, topology_changes.c.acknowledged,
    topology_changes.c.acked_at, topology_changes.c.acked_by, topology_changes.c.ack_note,
    topology_changes.c.baseline_id, topology_baselines.c.approved_by.label("baseline_by"),
)


def _changes(store: Store, pg: Any, pd: str | None, type_: ChangeType | None,
             acknowledged: bool | None, status: ChangeStatus | None) -> Paged:
    stmt = (select(*CHANGE_COLUMNS).join(pds, pds.c.id == topology_changes.c.pd_id)
            .join(topology_baselines,
                  topology_baselines.c.id == topology_changes.c.baseline_id)
            .order_by(topology_changes.c.first_seen.desc(), topology_changes.c.id.desc()))
    if pd:
        stmt = stmt.where(pds.c.code == pd)
    if type_:
        stmt = stmt.where(topology_changes.c.change_type == type_.value)
    if acknowledged is not None:
        stmt = stmt.where(topology_changes.c.acknowledged.is_(acknowledged))
    if status:
        stmt = stmt.where(topology_changes.c.status == status.value)
    result = paged(store, stmt, pg)
    for item in result.items:
        item["summary_en"] = (item.get("detail") or {}).get("summary_en")
    return result


TypeQ = Annotated[ChangeType | None, Query(alias="type")]


@router.get("/pds/{code}/changes", response_model=Paged)
def list_pd_changes(code: str, auth: Reader, store: StoreDep, pg: PageDep,
                    type_: TypeQ = None, acknowledged: bool | None = None,
                    status: ChangeStatus | None = None) -> Paged:
    """Topology changes of one PD against its baseline, newest first."""
    pd = _pd(store, auth, code)
    return _changes(store, pg, pd.code, type_, acknowledged, status)


@router.get("/changes", response_model=Paged)
def list_changes(auth: Reader, store: StoreDep, pg: PageDep, pd: CodeQ = None,
                 type_: TypeQ = None, acknowledged: bool | None = None,
                 status: ChangeStatus | None = None) -> Paged:
    """Topology changes of every PD the key may read, newest first."""
    return _changes(store, pg, scope_pd(auth, pd), type_, acknowledged, status)


@router.get("/changes/{change_id}")
def get_change(change_id: IdPath, auth: Reader, store: StoreDep) -> dict[str, Any]:
    rows = store.rows(select(*CHANGE_COLUMNS).join(pds, pds.c.id == topology_changes.c.pd_id)
                      .join(topology_baselines,
                            topology_baselines.c.id == topology_changes.c.baseline_id)
                      .where(topology_changes.c.id == change_id))
    if not rows:
        raise HTTPException(404, f"no change {change_id}")
    item = dict(rows[0]._mapping)
    scope_pd(auth, item["pd"])
    item["summary_en"] = (item.get("detail") or {}).get("summary_en")
    return item


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(min_length=1, max_length=2000)]


@router.post("/changes/{change_id}/ack")
def ack_change(change_id: IdPath, body: AckBody, auth: Engineer, store: StoreDep
               ) -> dict[str, Any]:
    """Acknowledge a change with a note (who and when are recorded)."""
    try:
        with store.tx() as c:
            return inventory.ack_change(c, change_id, auth.name, body.note, time.time())
    except inventory.NotFoundError as e:
        raise HTTPException(404, str(e)) from None
    except inventory.ConflictError as e:
        raise HTTPException(409, str(e)) from None
