"""Registered devices whose last poll failed (nothing usable: timeout, auth, refused).

The inventory keeps no poll history, so the hold-down starts when the engine first sees the
failure (``since=None``); the last time the device answered is in the details.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context, register
from collector.db import agents
from collector.db_inventory import devices
from contract.report import PollStatus


@register
class DevicePollFailed:
    name = "device_poll_failed"
    conditions = (Condition.DEVICE_POLL_FAILED,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        rows = conn.execute(
            select(devices.c.id, devices.c.pd_id, devices.c.name, devices.c.mgmt_address,
                   devices.c.driver, devices.c.last_seen, devices.c.last_error_type,
                   devices.c.last_error, agents.c.agent_id)
            .join(agents, agents.c.id == devices.c.agent_pk)
            .where(agents.c.revoked.is_(False),
                   devices.c.last_status == PollStatus.FAILED.value)).all()
        out = []
        for r in rows:
            pd_code = ctx.pd_codes.get(r.pd_id)
            out.append(Finding(
                condition=Condition.DEVICE_POLL_FAILED, subject_kind=SubjectKind.DEVICE,
                subject_ref=str(r.id), subject=r.name, pd_id=r.pd_id,
                subject_names=Subject(pd_code, agent=r.agent_id, device=r.name),
                zone=ctx.cfg.zones.device_zone(pd_code, r.name), since=None,
                details={"agent": r.agent_id, "device": r.name, "address": r.mgmt_address,
                         "driver": r.driver, "error_type": r.last_error_type,
                         "error": r.last_error, "last_answered_at": r.last_seen}))
        return out
