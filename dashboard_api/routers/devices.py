"""``/api/v1/devices``: the network inventory (list, detail with interfaces, CSV export)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from sqlalchemy import Select, func, select

from collector.db import agents, pds
from collector.db_inventory import config_versions, device_interfaces, devices, lldp_neighbors
from collector.store import KeyAuth, Role, Store
from dashboard_api.dependencies import (
    Paged,
    PageDep,
    Reader,
    StoreDep,
    like_escape,
    paged,
    scope_pd,
)

router = APIRouter(prefix="/api/v1", tags=["devices"])
CodeQ = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class DeviceStatus(StrEnum):
    OK = "ok"
    PARTIAL = "partial"
    FAILED = "failed"
    UNKNOWN = "unknown"  # known from a config backup only, never polled


LIST_COLUMNS = (
    devices.c.name, pds.c.code.label("pd"), agents.c.agent_id.label("agent"),
    devices.c.hostname, devices.c.vendor, devices.c.model, devices.c.serial,
    devices.c.os_version, devices.c.mgmt_address, devices.c.role, devices.c.driver,
    devices.c.location, devices.c.uptime_s, devices.c.first_seen, devices.c.last_seen,
    devices.c.last_poll_at, devices.c.last_status, devices.c.last_error_type,
    devices.c.last_error,
)


def device_query(auth: KeyAuth, pd: str | None, vendor: str | None, role: str | None,
                 status: DeviceStatus | None, q: str | None) -> Select[Any]:
    pd = scope_pd(auth, pd)
    stmt = (select(*LIST_COLUMNS).join(pds, pds.c.id == devices.c.pd_id)
            .join(agents, agents.c.id == devices.c.agent_pk)
            .order_by(pds.c.code, devices.c.name))
    if pd:
        stmt = stmt.where(pds.c.code == pd)
    if vendor:
        stmt = stmt.where(func.lower(devices.c.vendor) == vendor.lower())
    if role:
        stmt = stmt.where(func.lower(devices.c.role) == role.lower())
    if status:
        stmt = stmt.where(devices.c.last_status == status.value)
    if q:
        pattern = f"%{like_escape(q)}%"
        stmt = stmt.where(devices.c.name.ilike(pattern, escape="\\")
                          | devices.c.hostname.ilike(pattern, escape="\\")
                          | devices.c.mgmt_address.ilike(pattern, escape="\\")
                          | devices.c.serial.ilike(pattern, escape="\\")
                          | devices.c.model.ilike(pattern, escape="\\"))
    return stmt


VendorQ = Annotated[str | None, Query(max_length=255)]
RoleQ = Annotated[str | None, Query(max_length=32)]
SearchQ = Annotated[str | None, Query(max_length=255, description="name, hostname, management "
                                                                 "address, serial or model "
                                                                 "contains")]


@router.get("/devices", response_model=Paged)
def list_devices(auth: Reader, store: StoreDep, pg: PageDep, pd: CodeQ = None,
                 vendor: VendorQ = None, role: RoleQ = None, status: DeviceStatus | None = None,
                 q: SearchQ = None) -> Paged:
    """Every inventoried device with its facts and last poll status."""
    return paged(store, device_query(auth, pd, vendor, role, status, q), pg)


CSV_FIELDS = ("pd", "name", "hostname", "vendor", "model", "serial", "os_version",
              "mgmt_address", "role", "agent", "driver", "location", "first_seen", "last_seen",
              "last_status", "last_error")


def csv_cell(value: Any) -> str:
    """A cell as text; times as ISO 8601 UTC; formulas defused with a leading quote."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(CSV_FORMULA_PREFIXES):
        return "'" + text
    return text


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


@router.get("/devices.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
def export_devices_csv(auth: Reader, store: StoreDep, pd: CodeQ = None, vendor: VendorQ = None,
                       role: RoleQ = None, status: DeviceStatus | None = None,
                       q: SearchQ = None) -> Response:
    """The inventory as CSV for the regional asset system (same filters as the list)."""
    rows = store.rows(device_query(auth, pd, vendor, role, status, q))
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for r in rows:
        m = dict(r._mapping)
        m["first_seen"], m["last_seen"] = _iso(m["first_seen"]), _iso(m["last_seen"])
        w.writerow([csv_cell(m.get(f)) for f in CSV_FIELDS])
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="spbe-devices-{stamp}.csv"'})


def resolve_device(store: Store, auth: KeyAuth, name: str, pd: str | None) -> dict[str, Any]:
    """The one device called ``name`` this key may read (404 none, 403 other PD, 409 several).
    """
    wanted = scope_pd(auth, pd)
    rows = store.rows(select(devices.c.id, devices.c.name, pds.c.code.label("pd"))
                      .join(pds, pds.c.id == devices.c.pd_id).where(devices.c.name == name))
    mine = [r for r in rows if wanted is None or r.pd == wanted]
    if not mine:
        if rows and auth.role is Role.PD_VIEWER:
            raise HTTPException(403, f"this key may only read PD {auth.pd_code!r}")
        raise HTTPException(404, f"no device {name!r}" + (f" in PD {wanted!r}" if wanted else ""))
    if len(mine) > 1:
        codes = ", ".join(sorted(r.pd for r in mine))
        raise HTTPException(409, f"device name {name!r} exists in PDs {codes}; add ?pd=CODE")
    return dict(mine[0]._mapping)


@router.get("/devices/{name}")
def get_device(name: str, auth: Reader, store: StoreDep, pd: CodeQ = None) -> dict[str, Any]:
    """One device: facts, addresses, routes, interfaces and LLDP neighbours."""
    ref = resolve_device(store, auth, name, pd)
    row = store.rows(select(*LIST_COLUMNS, devices.c.sys_object_id, devices.c.sys_description,
                            devices.c.contact, devices.c.last_duration_s,
                            devices.c.last_report_id, devices.c.addresses, devices.c.routes,
                            devices.c.arp, devices.c.fdb)
                     .join(pds, pds.c.id == devices.c.pd_id)
                     .join(agents, agents.c.id == devices.c.agent_pk)
                     .where(devices.c.id == ref["id"]))[0]
    out = dict(row._mapping)
    out["arp_entries"] = len(out.pop("arp") or [])
    out["fdb_entries"] = len(out.pop("fdb") or [])
    ifaces = store.rows(select(device_interfaces).where(device_interfaces.c.device_id
                                                        == ref["id"])
                        .order_by(device_interfaces.c.if_index, device_interfaces.c.name))
    out["interfaces"] = [{k: v for k, v in i._mapping.items() if k not in ("id", "device_id")}
                         for i in ifaces]
    neigh = store.rows(select(lldp_neighbors).where(lldp_neighbors.c.device_id == ref["id"])
                       .order_by(lldp_neighbors.c.local_port, lldp_neighbors.c.id))
    out["lldp_neighbors"] = [{k: v for k, v in n._mapping.items()
                              if k not in ("id", "device_id")} for n in neigh]
    out["config_versions"] = int(store.scalar(
        select(func.count()).select_from(config_versions)
        .where(config_versions.c.device_id == ref["id"])) or 0)
    return out
