"""What the backup sources share (not a source): the jobs to judge, their names and zones.

Routing (INTRA-2): a backup job is the PD's own (zone of the PD, normally ``lan``: PD Tier 1)
unless one of its destination names or addresses matches an ``alerts.zones.targets`` pattern
of the Pusat Data/WAN side (e.g. ``pusat-data*`` or ``10.10.*``): then the Dinas Tier 2 owns
it. The DRC copy is judged by the replica's destination the same way (the job's destination
when it has no replica).

Times the agent reports (last success, last failure, replica copy) are on the agent's clock
and are moved to the collector's by the skew measured at ingest. A job the agent stopped
reporting while the agent goes on reporting (removed from its config) is not judged after
:data:`RETIRED_AFTER_S`, as in BAK-1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.config import Zone, ZonesCfg
from collector.alerts.model import Subject
from collector.alerts.sources import skew_of
from collector.db import agents
from collector.db_compliance import backup_jobs

RETIRED_AFTER_S = 48 * 3600.0


def jobs(conn: Connection, *where: Any) -> list[Any]:
    """Backup jobs of non-revoked agents that are still reported, with ``agent_id`` and
    ``skew`` (agent clock minus collector clock)."""
    b = backup_jobs.c
    rows = conn.execute(
        select(b.id, b.pd_id, b.job, b.status, b.error_type, b.last_success_at,
               b.last_failure_at, b.last_failure_reason, b.expected_interval_s, b.destination,
               b.destination_ips, b.replica, b.replica_last_success_at, b.integrity,
               b.integrity_checked_at, b.integrity_message, b.first_seen, b.observed_at,
               agents.c.agent_id, agents.c.clock_skew_s, agents.c.last_seen_at)
        .join(agents, agents.c.id == b.agent_pk)
        .where(agents.c.revoked.is_(False), *where).order_by(b.id)).all()
    out = []
    for r in rows:
        skew = skew_of(r.clock_skew_s)
        if r.last_seen_at is not None and r.observed_at - skew < r.last_seen_at - RETIRED_AFTER_S:
            continue
        out.append(r)
    return out


def name(r: Any) -> str:
    """``"<agent>/<job>"``: a job is named per agent (as in BAK-1's violation subjects)."""
    return f"{r.agent_id}/{r.job}"


def subject(r: Any, pd_code: str | None) -> Subject:
    return Subject(pd_code, agent=r.agent_id)


def at(r: Any, ts: float | None) -> float | None:
    """An agent-reported time on the collector's clock."""
    return None if ts is None else float(ts) - skew_of(r.clock_skew_s)


def zone(zones: ZonesCfg, pd_code: str | None, destination: str | None,
         ips: Sequence[str] | None) -> Zone:
    names = ([destination] if destination else []) + [str(i) for i in ips or []]
    return zones.backup_zone(pd_code, names)


def job_zone(zones: ZonesCfg, pd_code: str | None, r: Any) -> Zone:
    return zone(zones, pd_code, r.destination, r.destination_ips)


def replica_zone(zones: ZonesCfg, pd_code: str | None, r: Any) -> Zone:
    rep = r.replica
    if not isinstance(rep, dict):
        return job_zone(zones, pd_code, r)
    return zone(zones, pd_code, rep.get("destination"), rep.get("destination_ips"))


def clip(text: str | None, n: int = 500) -> str | None:
    return text[:n] if text else None
