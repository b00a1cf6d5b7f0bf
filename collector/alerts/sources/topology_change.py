"""Unacknowledged LAN topology changes of a PD (LAN-3): one alert per PD while any is open.

New changes while the alert is open do not raise again; it clears when every change is
acknowledged or resolved.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context, register
from collector.db_inventory import topology_changes

_SHOWN = 5


@register
class TopologyChange:
    name = "topology_change"
    conditions = (Condition.TOPOLOGY_CHANGE,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        open_changes = (topology_changes.c.status == "open",
                        topology_changes.c.acknowledged.is_(False))
        rows = conn.execute(
            select(topology_changes.c.pd_id, func.count().label("n"),
                   func.min(topology_changes.c.first_seen).label("first"))
            .where(*open_changes).group_by(topology_changes.c.pd_id)).all()
        out = []
        for r in rows:
            pd_code = ctx.pd_codes.get(r.pd_id)
            summaries = conn.execute(
                select(topology_changes.c.summary).where(
                    topology_changes.c.pd_id == r.pd_id, *open_changes)
                .order_by(topology_changes.c.first_seen).limit(_SHOWN)).scalars().all()
            out.append(Finding(
                condition=Condition.TOPOLOGY_CHANGE, subject_kind=SubjectKind.PD,
                subject_ref=str(r.pd_id), subject=pd_code or str(r.pd_id), pd_id=r.pd_id,
                subject_names=Subject(pd_code), zone=ctx.cfg.zones.pd_zone(pd_code),
                since=float(r.first),
                details={"changes": int(r.n), "summaries": list(summaries)}))
        return out
