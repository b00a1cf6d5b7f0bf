"""Alert sources: one module per kind of fault, each reading the SQL state store.

This is the extension point for new kinds of alerts. A source is a :class:`Source`; it reads
the current state (never in-process memory, so any number of collectors agree) and returns a
:class:`~collector.alerts.model.Finding` for every subject that is faulty or flapping *now*.
The engine does the rest: hold-down, dedup, maintenance, routing, escalation and resolution
(an open alert whose condition a source covers is resolved when the source stops reporting it).

To add one::

    # collector/alerts/sources/backup_overdue.py
    @register
    class BackupOverdue:
        name = "backup_overdue"
        conditions = (Condition.BACKUP_OVERDUE,)
        def findings(self, conn, ctx): ...

and list the module in :func:`load_builtin`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection

from collector.alerts.config import AlertsCfg, Condition
from collector.alerts.model import Finding
from collector.compliance.profile import RegionProfile


@dataclass(frozen=True)
class Context:
    """What a source may use besides the database connection; ``profile`` is the region
    profile of the compliance engine when one is configured (its BAK-1/BAK-2 parameters)."""

    cfg: AlertsCfg
    now: float
    pd_codes: dict[int, str]
    profile: RegionProfile | None = None


class Source(Protocol):
    name: str
    conditions: tuple[Condition, ...]

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        """Every subject that is faulty or flapping at ``ctx.now``."""
        ...


REGISTRY: dict[str, Source] = {}
S = TypeVar("S", bound=type)


def register(cls: S) -> S:
    """Class decorator: instantiate and register a source; names and conditions are unique."""
    src: Source = cls()
    if src.name in REGISTRY:
        raise ValueError(f"alert source {src.name!r} is registered twice")
    for other in REGISTRY.values():
        both = set(other.conditions) & set(src.conditions)
        if both:
            raise ValueError(f"alert sources {other.name!r} and {src.name!r} both cover "
                             f"{sorted(c.value for c in both)}")
    REGISTRY[src.name] = src
    return cls


def get(name: str) -> Source:
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown alert source {name!r}; valid: {valid}") from None


def load_builtin() -> Sequence[Source]:
    """Import the built-in source modules (they register themselves); return all sources."""
    from collector.alerts.sources import (  # noqa: F401
        agent_silent,
        backup_failed,
        backup_overdue,
        device_poll_failed,
        drc_stale,
        link_down,
        probe_down,
        topology_change,
        violation,
    )

    return list(REGISTRY.values())


def skew_of(clock_skew_s: float | None) -> float:
    """Agent clock minus collector clock (as measured at ingest); 0 when unknown."""
    return clock_skew_s or 0.0
