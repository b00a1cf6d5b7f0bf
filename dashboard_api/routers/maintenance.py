"""``/api/v1/maintenance``: maintenance windows that silence alerts (one-off or weekly).

Everyone reads (a pd-viewer only its own PD's windows); admins and engineers create, replace
and delete. Times in requests are ISO 8601 with a time zone; responses give epoch seconds like
the rest of the API, plus ``active_now`` and ``next_start``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from collector.alerts import maintenance
from collector.alerts.config import check_timezone, parse_hhmm
from collector.alerts.maintenance import WEEKDAYS, Scope, WindowKind
from collector.db import pds
from collector.db_alerts import maintenance_windows
from collector.store import KeyAuth, Role, Store
from dashboard_api.dependencies import (
    Paged,
    PageDep,
    Reader,
    StoreDep,
    paged,
    require,
    scope_pd,
)

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"])
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
CodeQ = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
WindowId = Annotated[int, Path(ge=1, le=2**62)]
Engineer = Annotated[KeyAuth, require(Role.ADMIN, Role.ENGINEER)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class WindowIn(BaseModel):
    """A one-off window (``starts_at``..``ends_at``) or a weekly one (``weekdays`` +
    ``start_time``..``end_time`` local time in ``timezone``; an end not after the start crosses
    midnight), for everything, a PD, or an agent/device/target (``subject``, glob) of a PD."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=255)]
    scope: Scope
    pd: Code | None = None
    subject: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    kind: WindowKind
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    weekdays: Annotated[list[Weekday], Field(max_length=7)] = []
    start_time: str | None = None
    end_time: str | None = None
    timezone: str = "Asia/Jakarta"
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    reason: Annotated[str, Field(max_length=2000)] = ""

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @field_validator("start_time", "end_time")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        return None if v is None else parse_hhmm(v).strftime("%H:%M")

    @model_validator(mode="after")
    def _shape(self) -> WindowIn:
        if self.scope is Scope.ALL and (self.pd or self.subject):
            raise ValueError("scope 'all' takes neither pd nor subject")
        if self.scope is Scope.PD and (not self.pd or self.subject):
            raise ValueError("scope 'pd' needs pd and takes no subject")
        if self.scope in (Scope.AGENT, Scope.DEVICE, Scope.TARGET) and not (
                self.pd and self.subject):
            raise ValueError(f"scope {self.scope.value!r} needs pd and subject (a name or glob)")
        if self.kind is WindowKind.ONCE:
            if self.starts_at is None or self.ends_at is None:
                raise ValueError("a one-off window needs starts_at and ends_at")
            if self.ends_at <= self.starts_at:
                raise ValueError("ends_at must be after starts_at")
            if self.weekdays or self.start_time or self.end_time:
                raise ValueError("a one-off window takes no weekdays/start_time/end_time")
        else:
            if not self.weekdays or self.start_time is None or self.end_time is None:
                raise ValueError("a weekly window needs weekdays, start_time and end_time")
            if self.start_time == self.end_time:
                raise ValueError("start_time and end_time must differ")
            if self.starts_at or self.ends_at:
                raise ValueError("a weekly window takes no starts_at/ends_at "
                                 "(use valid_from/valid_until to bound it)")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self

    def columns(self) -> dict[str, Any]:
        def ts(d: datetime | None) -> float | None:
            return None if d is None else d.timestamp()

        days = sorted(set(self.weekdays), key=WEEKDAYS.index)
        return {"name": self.name, "scope": self.scope.value, "pd": self.pd,
                "subject": self.subject, "kind": self.kind.value, "starts_at": ts(self.starts_at),
                "ends_at": ts(self.ends_at), "weekdays": ",".join(days) or None,
                "start_time": self.start_time, "end_time": self.end_time,
                "timezone": self.timezone, "valid_from": ts(self.valid_from),
                "valid_until": ts(self.valid_until), "reason": self.reason}


def _out(item: dict[str, Any], now: float) -> dict[str, Any]:
    w = maintenance.from_row(item)
    item["pd"] = item.pop("pd_code")
    item.pop("pd_id", None)
    item["weekdays"] = item["weekdays"].split(",") if item["weekdays"] else []
    item["active_now"] = w.active(now)
    item["next_start"] = w.next_start(now)
    return item


def _get(store: Store, auth: KeyAuth, window_id: int) -> dict[str, Any]:
    rows = store.rows(maintenance.select_windows().where(maintenance_windows.c.id == window_id))
    item = dict(rows[0]._mapping) if rows else None
    if item is None or (auth.role is Role.PD_VIEWER and item["pd_code"] != auth.pd_code):
        raise HTTPException(404, f"no maintenance window #{window_id}")
    return _out(item, time.time())


@router.get("", response_model=Paged)
def list_windows(auth: Reader, store: StoreDep, pg: PageDep, pd: CodeQ = None,
                 active: Annotated[bool | None, Query(description="active right now")] = None
                 ) -> Paged:
    pd = scope_pd(auth, pd)
    stmt = maintenance.select_windows()
    if pd is not None:
        stmt = stmt.where(pds.c.code == pd)
    now = time.time()
    if active is None:
        result = paged(store, stmt, pg)
        result.items = [_out(i, now) for i in result.items]
        return result
    # "active now" depends on local time rules: filter in Python, then page
    items = [_out(dict(r._mapping), now) for r in store.rows(stmt)]
    items = [i for i in items if i["active_now"] is active]
    return Paged(total=len(items), limit=pg.limit, offset=pg.offset,
                 items=items[pg.offset:pg.offset + pg.limit])


@router.post("", status_code=201)
def create_window(body: WindowIn, auth: Engineer, store: StoreDep) -> dict[str, Any]:
    try:
        window_id = maintenance.create(store, body.columns(), auth.name, time.time())
    except maintenance.MaintenanceError as e:
        raise HTTPException(422, str(e)) from e
    return _get(store, auth, window_id)


@router.get("/{window_id}")
def get_window(window_id: WindowId, auth: Reader, store: StoreDep) -> dict[str, Any]:
    return _get(store, auth, window_id)


@router.put("/{window_id}")
def replace_window(window_id: WindowId, body: WindowIn, auth: Engineer,
                   store: StoreDep) -> dict[str, Any]:
    try:
        maintenance.replace(store, window_id, body.columns(), time.time())
    except maintenance.MaintenanceError as e:
        raise HTTPException(422, str(e)) from e
    except LookupError as e:
        raise HTTPException(404, f"no maintenance window #{window_id}") from e
    return _get(store, auth, window_id)


@router.delete("/{window_id}", status_code=204)
def delete_window(window_id: WindowId, auth: Engineer, store: StoreDep) -> Response:
    try:
        maintenance.remove(store, window_id)
    except LookupError as e:
        raise HTTPException(404, f"no maintenance window #{window_id}") from e
    return Response(status_code=204)
