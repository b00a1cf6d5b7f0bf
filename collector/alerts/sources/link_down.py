"""Links down: an interface that is administratively up and operationally down.

Only links worth waking someone for: those matching ``alerts.conditions.link_down.interfaces``
("device:interface" globs) or, when none are configured, those with a description (a labelled
port in use, see LAN-4). Interfaces of a device whose last poll failed are skipped (stale; the
device alert covers them). Zone: ``alerts.zones.devices`` is matched against
"device:interface" first (a PD router's WAN port is a WAN link), then the device name.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context, register
from collector.db import agents
from collector.db_inventory import device_interfaces, devices
from contract.report import PollStatus


@register
class LinkDown:
    name = "link_down"
    conditions = (Condition.LINK_DOWN,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        patterns = ctx.cfg.conditions.link_down.interfaces
        rows = conn.execute(
            select(device_interfaces.c.id, device_interfaces.c.name,
                   device_interfaces.c.description, devices.c.pd_id,
                   devices.c.name.label("device"), agents.c.agent_id)
            .join(devices, devices.c.id == device_interfaces.c.device_id)
            .join(agents, agents.c.id == devices.c.agent_pk)
            .where(agents.c.revoked.is_(False),
                   devices.c.last_status != PollStatus.FAILED.value,
                   device_interfaces.c.admin_up.is_(True),
                   device_interfaces.c.oper_up.is_(False))).all()
        out = []
        for r in rows:
            link = f"{r.device}:{r.name}"
            if patterns:
                if not any(fnmatchcase(link, p) for p in patterns):
                    continue
            elif not (r.description or "").strip():
                continue
            pd_code = ctx.pd_codes.get(r.pd_id)
            zones = ctx.cfg.zones
            zone = (zones.device_zone(pd_code, link) if any(
                fnmatchcase(link, p) for p in zones.devices) else
                zones.device_zone(pd_code, r.device))
            out.append(Finding(
                condition=Condition.LINK_DOWN, subject_kind=SubjectKind.LINK,
                subject_ref=str(r.id), subject=link, pd_id=r.pd_id,
                subject_names=Subject(pd_code, agent=r.agent_id, device=r.device),
                zone=zone, since=None,
                details={"agent": r.agent_id, "device": r.device, "interface": r.name,
                         "description": r.description}))
        return out
