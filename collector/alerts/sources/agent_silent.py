"""An agent silent for ``agent_silent_intervals`` report intervals (INTRA-1 evidence).

The agent is the PD's host: its silence is a fault on the PD side (zone of the PD).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context, register
from collector.db import agents


@register
class AgentSilent:
    name = "agent_silent"
    conditions = (Condition.AGENT_SILENT,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        limit = ctx.cfg.agent_report_interval_s * ctx.cfg.agent_silent_intervals
        rows = conn.execute(
            select(agents.c.id, agents.c.agent_id, agents.c.pd_id, agents.c.last_seen_at)
            .where(agents.c.revoked.is_(False), agents.c.last_seen_at.is_not(None),
                   agents.c.last_seen_at < ctx.now - limit)).all()
        out = []
        for r in rows:
            pd_code = ctx.pd_codes.get(r.pd_id)
            out.append(Finding(
                condition=Condition.AGENT_SILENT, subject_kind=SubjectKind.AGENT,
                subject_ref=str(r.id), subject=r.agent_id, pd_id=r.pd_id,
                subject_names=Subject(pd_code, agent=r.agent_id),
                zone=ctx.cfg.zones.pd_zone(pd_code), since=float(r.last_seen_at),
                details={"last_seen_at": r.last_seen_at, "silent_after_s": limit}))
        return out
