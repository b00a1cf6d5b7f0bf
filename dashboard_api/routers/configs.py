"""``/api/v1/devices/{name}/configs``: running-config versions of a device and their diffs.

The version list (time, SHA-256, size, masked secrets) is readable by every key of the
device's PD; content and diffs only by admin and engineer keys, since even a masked
configuration tells an attacker a lot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from collector.db_inventory import config_versions
from collector.inventory import config_diff
from collector.store import KeyAuth, Role
from dashboard_api.dependencies import IdPath, Paged, PageDep, Reader, StoreDep, paged, require
from dashboard_api.routers.devices import CodeQ, resolve_device

router = APIRouter(prefix="/api/v1/devices", tags=["configs"])
Engineer = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER)]

VERSION_COLUMNS = (config_versions.c.id, config_versions.c.observed_at,
                   config_versions.c.last_seen, config_versions.c.sha256,
                   config_versions.c.size, config_versions.c.masked_secrets,
                   config_versions.c.ignored_lines, config_versions.c.driver,
                   config_versions.c.report_id)


@router.get("/{name}/configs", response_model=Paged)
def list_configs(name: str, auth: Reader, store: StoreDep, pg: PageDep,
                 pd: CodeQ = None) -> Paged:
    """Config versions of a device, newest first (a version per SHA-256 change)."""
    dev = resolve_device(store, auth, name, pd)
    stmt = (select(*VERSION_COLUMNS).where(config_versions.c.device_id == dev["id"])
            .order_by(config_versions.c.observed_at.desc(), config_versions.c.id.desc()))
    return paged(store, stmt, pg)


def _version(store: Any, device_id: int, version_id: int) -> dict[str, Any]:
    rows = store.rows(select(*VERSION_COLUMNS, config_versions.c.content)
                      .where(config_versions.c.id == version_id,
                             config_versions.c.device_id == device_id))
    if not rows:
        raise HTTPException(404, f"no config version {version_id} for this device")
    return dict(rows[0]._mapping)


def _label(name: str, v: dict[str, Any]) -> str:
    when = datetime.fromtimestamp(v["observed_at"], UTC).isoformat(timespec="seconds")
    return f"{name}@{when} (v{v['id']} {v['sha256'][:12]})"


@router.get("/{name}/configs/diff")
def diff_configs(name: str, auth: Engineer, store: StoreDep,
                 from_id: Annotated[int, Query(alias="from", ge=1, le=2**62)],
                 to_id: Annotated[int, Query(alias="to", ge=1, le=2**62)],
                 pd: CodeQ = None) -> dict[str, Any]:
    """Unified diff between two versions of the device's configuration."""
    dev = resolve_device(store, auth, name, pd)
    old, new = _version(store, dev["id"], from_id), _version(store, dev["id"], to_id)
    text = config_diff(old.pop("content"), new.pop("content"), _label(name, old),
                       _label(name, new))
    lines = text.splitlines()
    return {"device": name, "from": old, "to": new, "diff": text,
            "added": sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++")),
            "removed": sum(1 for ln in lines
                           if ln.startswith("-") and not ln.startswith("---"))}


@router.get("/{name}/configs/{version_id}")
def get_config(name: str, version_id: IdPath, auth: Engineer, store: StoreDep,
               pd: CodeQ = None) -> dict[str, Any]:
    """One config version with its (masked) content."""
    dev = resolve_device(store, auth, name, pd)
    return {"device": name, **_version(store, dev["id"], version_id)}
