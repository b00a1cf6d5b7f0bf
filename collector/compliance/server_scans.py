"""Server-port scans (DC-1 evidence), applied on ingest in the report's transaction.

``server_scans`` keeps the latest scan of each agent; ``server_hosts`` the LAN hosts found
listening on server ports. A *complete* scan replaces the agent's host list (hosts no longer
listening are removed: the evidence cleared); an incomplete one (time budget reached, no
neighbour table) only adds and refreshes hosts, since absence proves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from collector.db_compliance import server_hosts, server_scans
from contract.report import ServerScan


def _txt(v: str | None) -> str | None:
    return None if v is None else v.replace("\x00", "\ufffd")


def apply_report(c: Connection, *, pd_id: int, agent_pk: int, report_id: str,
                 observations: Sequence[object]) -> int:
    scans = sorted((o for o in observations if isinstance(o, ServerScan)),
                   key=lambda o: o.observed_at)
    for s in scans:
        _apply(c, pd_id, agent_pk, report_id, s)
    return len(scans)


def _apply(c: Connection, pd_id: int, agent_pk: int, rid: str, s: ServerScan) -> None:
    ts = s.observed_at.timestamp()
    prev = c.execute(select(server_scans.c.id, server_scans.c.observed_at)
                     .where(server_scans.c.agent_pk == agent_pk)).first()
    if prev is not None and ts < prev.observed_at:
        return  # older than the scan we hold (a replayed spool)
    values: dict[str, Any] = dict(
        pd_id=pd_id, observed_at=ts, subnets=list(s.subnets), ports=list(s.ports),
        complete=s.complete, error=_txt(s.error), server_mode=s.server_mode,
        local=None if s.local is None else s.local.model_dump(mode="json"),
        counters={k: getattr(s, k) for k in ("candidates", "excluded", "skipped_over_cap",
                                             "scanned", "without_open_ports", "connections",
                                             "timeouts", "duration_s")},
        report_id=rid)
    if prev is None:
        c.execute(insert(server_scans).values(agent_pk=agent_pk, **values))
    else:
        c.execute(update(server_scans).where(server_scans.c.id == prev.id).values(**values))
    known = {r.ip: r.id for r in c.execute(select(server_hosts.c.id, server_hosts.c.ip)
                                           .where(server_hosts.c.agent_pk == agent_pk))}
    seen: set[str] = set()
    for h in s.hosts:
        if h.ip in seen:
            continue
        seen.add(h.ip)
        row = dict(pd_id=pd_id, mac=h.mac, interface=_txt(h.interface),
                   open_ports=sorted(set(h.open_ports)), roles=[r.value for r in h.roles],
                   role=h.role.value, scanned_at=h.scanned_at.timestamp(), last_seen=ts,
                   report_id=rid)
        if h.ip in known:
            c.execute(update(server_hosts).where(server_hosts.c.id == known[h.ip]).values(**row))
        else:
            c.execute(insert(server_hosts).values(agent_pk=agent_pk, ip=h.ip, first_seen=ts,
                                                  **row))
    gone = [i for ip, i in known.items() if ip not in seen]
    if s.complete and gone:
        c.execute(delete(server_hosts).where(server_hosts.c.id.in_(gone)))
