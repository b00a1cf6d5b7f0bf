"""Maintenance windows: one-off or weekly ("RRULE-lite": weekdays + local time range + time
zone), scoped to everything, a PD, or an agent/device/target (glob on its name) of a PD.

A weekly window whose end time is not after its start time crosses midnight: "sat 22:00-02:00"
covers Saturday 22:00 to Sunday 02:00 local time. While a window matches a fault, no alert is
raised and no escalation happens; once it ends, a fault still present is alerted normally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from collector.alerts.config import parse_hhmm
from collector.alerts.model import Subject
from collector.db import pds
from collector.db_alerts import maintenance_windows
from collector.store import Store

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Scope(StrEnum):
    ALL = "all"
    PD = "pd"
    AGENT = "agent"
    DEVICE = "device"
    TARGET = "target"


class WindowKind(StrEnum):
    ONCE = "once"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Window:
    id: int
    name: str
    scope: Scope
    pd_code: str | None
    subject: str | None
    kind: WindowKind
    timezone: str
    starts_at: float | None = None
    ends_at: float | None = None
    weekdays: tuple[int, ...] = ()
    start_time: dtime | None = None
    end_time: dtime | None = None
    valid_from: float | None = None
    valid_until: float | None = None

    def active(self, now: float) -> bool:
        if self.valid_from is not None and now < self.valid_from:
            return False
        if self.valid_until is not None and now >= self.valid_until:
            return False
        if self.kind is WindowKind.ONCE:
            return (self.starts_at is not None and self.ends_at is not None
                    and self.starts_at <= now < self.ends_at)
        assert self.start_time is not None and self.end_time is not None
        local = datetime.fromtimestamp(now, ZoneInfo(self.timezone))
        t, day = local.time().replace(tzinfo=None), local.weekday()
        if self.start_time < self.end_time:
            return day in self.weekdays and self.start_time <= t < self.end_time
        # crosses midnight: the evening of a listed day, or the early hours of the next day
        return ((day in self.weekdays and t >= self.start_time)
                or ((day - 1) % 7 in self.weekdays and t < self.end_time))

    def matches(self, s: Subject) -> bool:
        if self.scope is Scope.ALL:
            return True
        if s.pd_code != self.pd_code:
            return False
        if self.scope is Scope.PD:
            return True
        name = {Scope.AGENT: s.agent, Scope.DEVICE: s.device, Scope.TARGET: s.target}[self.scope]
        return name is not None and self.subject is not None and fnmatchcase(name, self.subject)

    def next_start(self, now: float) -> float | None:
        """When the window next begins after ``now`` (None: never again)."""
        if self.kind is WindowKind.ONCE:
            return self.starts_at if self.starts_at is not None and self.starts_at > now else None
        assert self.start_time is not None
        tz = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(now, tz)
        for d in range(0, 8):
            day = (local + timedelta(days=d)).date()
            if day.weekday() not in self.weekdays:
                continue
            start = datetime.combine(day, self.start_time, tz).timestamp()
            if start > now and (self.valid_until is None or start < self.valid_until):
                return max(start, self.valid_from or start)
        return None


def from_row(r: Mapping[Any, Any]) -> Window:
    """A window from a row of :func:`select_windows` (as a mapping)."""
    days = tuple(WEEKDAYS.index(d) for d in (r["weekdays"] or "").split(",") if d)
    return Window(
        id=r["id"], name=r["name"], scope=Scope(r["scope"]), pd_code=r["pd_code"],
        subject=r["subject"], kind=WindowKind(r["kind"]), timezone=r["timezone"],
        starts_at=r["starts_at"], ends_at=r["ends_at"], weekdays=days,
        start_time=parse_hhmm(r["start_time"]) if r["start_time"] else None,
        end_time=parse_hhmm(r["end_time"]) if r["end_time"] else None,
        valid_from=r["valid_from"], valid_until=r["valid_until"])


def select_windows() -> Any:
    return (select(maintenance_windows, pds.c.code.label("pd_code"))
            .outerjoin(pds, pds.c.id == maintenance_windows.c.pd_id)
            .order_by(maintenance_windows.c.id))


def load(conn: Connection) -> list[Window]:
    return [from_row(r._mapping) for r in conn.execute(select_windows()).all()]


def silencing(windows: Sequence[Window], subject: Subject, now: float) -> Window | None:
    """The first window that is active now and covers ``subject``."""
    for w in windows:
        if w.matches(subject) and w.active(now):
            return w
    return None


# --- data access for the API --------------------------------------------------------------------

class MaintenanceError(Exception):
    """A maintenance-window request that cannot be done; safe to show."""


def _pd_id(conn: Connection, code: str | None) -> int | None:
    if code is None:
        return None
    pd_id = conn.execute(select(pds.c.id).where(pds.c.code == code)).scalar()
    if pd_id is None:
        raise MaintenanceError(f"unknown PD {code!r}")
    return int(pd_id)


def create(store: Store, values: dict[str, Any], who: str, now: float) -> int:
    """``values``: the table's columns, with ``pd`` (a code) instead of ``pd_id``."""
    with store.tx() as c:
        row = {k: v for k, v in values.items() if k != "pd"}
        row.update(pd_id=_pd_id(c, values.get("pd")), created_by=who, created_at=now,
                   updated_at=now)
        return int(c.execute(insert(maintenance_windows).values(**row))
                   .inserted_primary_key[0])  # type: ignore[index]


def replace(store: Store, window_id: int, values: dict[str, Any], now: float) -> None:
    with store.tx() as c:
        row = {k: v for k, v in values.items() if k != "pd"}
        row.update(pd_id=_pd_id(c, values.get("pd")), updated_at=now)
        done = c.execute(update(maintenance_windows)
                         .where(maintenance_windows.c.id == window_id).values(**row))
        if done.rowcount != 1:
            raise LookupError(window_id)


def remove(store: Store, window_id: int) -> None:
    with store.tx() as c:
        done = c.execute(delete(maintenance_windows).where(maintenance_windows.c.id == window_id))
        if done.rowcount != 1:
            raise LookupError(window_id)
