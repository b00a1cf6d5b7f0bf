"""Compliance status: per PD (score and each obligation with the region's article), region
figures, the loaded region profile, an on-demand evaluation, and the registered inventory the
ASSET-1 rule compares the network with."""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import delete, insert, select

from collector.compliance import messages, summary
from collector.compliance.engine import ACTIVE, ComplianceService
from collector.compliance.profile import RegionProfile
from collector.db import agents, pds
from collector.db_compliance import backup_jobs, registered_devices, server_scans, violations
from collector.store import KeyAuth, Role, Store
from dashboard_api.dependencies import Reader, StoreDep, require, scope_pd

router = APIRouter(prefix="/api/v1", tags=["compliance"])
PdCode = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
LangQ = Annotated[Literal["id", "en"], Query(description="id (Bahasa Indonesia) or en")]
Engineer = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER)]


def _service(request: Request) -> ComplianceService:
    svc: ComplianceService = request.app.state.compliance
    return svc


def _profile(request: Request) -> RegionProfile:
    profile = _service(request).cfg.profile
    if profile is None:
        raise HTTPException(409, "no region profile configured (compliance.region_profile "
                                 "in the collector config)")
    return profile


def _active(store: Store, pd_id: int | None = None) -> list[summary.ActiveRow]:
    v = violations.c
    stmt = select(v.pd_id, v.obligation, v.status, v.severity, v.messages).where(
        v.status.in_(ACTIVE))
    if pd_id is not None:
        stmt = stmt.where(v.pd_id == pd_id)
    return [summary.ActiveRow(r.pd_id, r.obligation, r.status, r.severity,
                              tuple(str(m.get("key", "")) for m in r.messages or []))
            for r in store.rows(stmt)]


def _pd(store: Store, code: str) -> Any:
    rows = store.rows(select(pds.c.id, pds.c.code, pds.c.name).where(pds.c.code == code))
    if not rows:
        raise HTTPException(404, f"no PD {code!r}")
    return rows[0]


@router.get("/pds/{code}/compliance")
def pd_compliance(request: Request, code: PdCode, auth: Reader, store: StoreDep,
                  lang: LangQ = "id") -> dict[str, Any]:
    """The PD's score and the status of each obligation of the region, with its article."""
    scope_pd(auth, code)
    profile = _profile(request)
    pd = _pd(store, code)
    return summary.pd_compliance(profile, _service(request).cfg.site, pd.code, pd.name,
                                 _active(store, pd.id), lang, time.time())


@router.get("/compliance/region")
def region(request: Request, auth: Reader, store: StoreDep,
           lang: LangQ = "id") -> dict[str, Any]:
    """Region figures: share of PDs connected to the intranet, share of PDs whose servers and
    data are all in the Pusat Data, violations per obligation. A pd-viewer gets its own PD's
    compliance instead (region figures describe every PD)."""
    profile = _profile(request)
    if auth.role is Role.PD_VIEWER:
        raise HTTPException(403, "region figures cover every PD; use "
                                 f"/api/v1/pds/{auth.pd_code}/compliance")
    all_pds = {r.id: r.code for r in store.rows(select(pds.c.id, pds.c.code))}
    # an agent counts once it has reported (a registered agent that never did shows nothing)
    with_agents = {r[0] for r in store.rows(select(agents.c.pd_id).where(
        agents.c.revoked.is_(False), agents.c.last_seen_at.is_not(None)).distinct())}
    with_data = {r[0] for t in (backup_jobs, server_scans)
                 for r in store.rows(select(t.c.pd_id).distinct())}
    return summary.region_figures(profile, all_pds, with_agents, _active(store), lang,
                                  time.time(), pds_with_data=with_data)


@router.get("/compliance/profile")
def profile(request: Request, auth: Reader) -> dict[str, Any]:
    """The region profile in force: regulation, enforcement start, each obligation's article
    and parameters, and which parts of the site model are configured."""
    p = _profile(request)
    site = _service(request).cfg.site
    return {
        "key": p.key, "region": p.region, "regulation": p.regulation.model_dump(mode="json"),
        "timezone": p.timezone, "enforcement_start": p.enforcement_start,
        "enforced": p.enforced_at(time.time()), "enforcement_note": p.enforcement_note,
        "portal_domain": p.portal_domain,
        "obligations": [{"obligation": ob.value, "title": messages.title(ob.value, "id"),
                         "title_en": messages.title(ob.value, "en"), "article": cfg.article,
                         "citation": p.citation(ob),
                         "params": p.params(ob).model_dump(mode="json")}
                        for ob, cfg in p.obligations.items()],
        "references": {k.value: v for k, v in p.references.items()},
        "site": {"pusat_data_subnets": len(site.pusat_data_subnets),
                 "drc_subnets": len(site.drc_subnets),
                 "intranet_gateways": len(site.intranet_gateways),
                 "public_allocation": len(site.public_allocation),
                 "indonesia_prefixes": len(site.indonesia_networks),
                 "pds": len(site.pds)}}


@router.post("/compliance/evaluate")
async def evaluate(request: Request, auth: Engineer,
                   pd: Annotated[str | None, Query(max_length=64)] = None) -> dict[str, Any]:
    """Evaluate now (every PD, or one) instead of waiting for the next scheduled pass."""
    _profile(request)
    svc = _service(request)
    assert svc.engine is not None
    pd_ids = None
    if pd is not None:
        pd_ids = [_pd(svc.store, pd).id]
    stats = await run_in_threadpool(svc.engine.evaluate, None, pd_ids)
    return {"findings": stats.findings, "opened": stats.opened, "refreshed": stats.refreshed,
            "resolved": stats.resolved, "waivers_expired": stats.waivers_expired,
            "seconds": round(stats.seconds, 4), "errors": stats.errors}


# --- registered inventory (ASSET-1) --------------------------------------------------------

_MAC = re.compile(r"^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$|^[0-9a-f]{4}(\.[0-9a-f]{4}){2}$")


class RegisteredDevice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=255)]
    category: Annotated[str | None, Field(max_length=32)] = None   # router, switch, ap, ...
    vendor: Annotated[str | None, Field(max_length=255)] = None
    model: Annotated[str | None, Field(max_length=255)] = None
    serial: Annotated[str | None, Field(max_length=255)] = None
    mac: Annotated[str | None, Field(max_length=17)] = None
    mgmt_address: Annotated[str | None, Field(max_length=64)] = None
    asset_tag: Annotated[str | None, Field(max_length=255)] = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        if v is None:
            return v
        low = v.strip().lower()
        if not _MAC.match(low):
            raise ValueError("not a MAC address (aa:bb:cc:dd:ee:ff)")
        hexes = re.sub(r"[^0-9a-f]", "", low)
        return ":".join(hexes[i:i + 2] for i in range(0, 12, 2))

    @field_validator("mgmt_address")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            return str(ipaddress.ip_address(v.strip()))
        except ValueError as e:
            raise ValueError("not an IP address") from e


class RegisteredInventory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    devices: Annotated[list[RegisteredDevice], Field(max_length=20_000)]

    @field_validator("devices")
    @classmethod
    def _unique(cls, v: list[RegisteredDevice]) -> list[RegisteredDevice]:
        seen: set[str] = set()
        for d in v:
            if d.name in seen:
                raise ValueError(f"device name {d.name!r} is listed twice")
            seen.add(d.name)
        return v


_REG_COLS = (registered_devices.c.name, registered_devices.c.category,
             registered_devices.c.vendor, registered_devices.c.model, registered_devices.c.serial,
             registered_devices.c.mac, registered_devices.c.mgmt_address,
             registered_devices.c.asset_tag, registered_devices.c.updated_at,
             registered_devices.c.updated_by)


@router.get("/pds/{code}/registered-devices")
def get_registered(code: PdCode, auth: Reader, store: StoreDep) -> dict[str, Any]:
    """The PD's registered ICT inventory (as reported to the regional asset system)."""
    scope_pd(auth, code)
    pd = _pd(store, code)
    rows = store.rows(select(*_REG_COLS).where(registered_devices.c.pd_id == pd.id)
                      .order_by(registered_devices.c.name))
    return {"pd": pd.code, "devices": [dict(r._mapping) for r in rows]}


@router.put("/pds/{code}/registered-devices")
async def put_registered(code: PdCode, auth: Engineer, store: StoreDep,
                         body: Annotated[RegisteredInventory, Body()]) -> dict[str, Any]:
    """Replace the PD's registered inventory (e.g. an export of the asset system)."""
    def run() -> dict[str, Any]:
        pd = _pd(store, code)
        now = time.time()
        with store.tx() as c:
            c.execute(delete(registered_devices).where(registered_devices.c.pd_id == pd.id))
            if body.devices:
                c.execute(insert(registered_devices), [
                    {**d.model_dump(), "pd_id": pd.id, "updated_at": now,
                     "updated_by": auth.name} for d in body.devices])
        return {"pd": pd.code, "devices": len(body.devices), "updated_at": now,
                "updated_by": auth.name}
    return await run_in_threadpool(run)
