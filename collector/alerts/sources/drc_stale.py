"""Backup jobs whose DRC copy is missing or older than the RPO (BAK-2 evidence), from
``backup_jobs``.

Missing: the job has no replica configured, or the replica holds no readable copy. Stale: its
newest copy is older than the RPO: the region profile's BAK-2 ``rpo_days`` when a profile
with BAK-2 is configured, else ``alerts.conditions.drc_stale.rpo_days`` (7 days). Since: the
moment the copy became older than the RPO; for a missing copy, when the engine first saw it.
Routing: by the replica's destination (see :mod:`collector.alerts.sources._backup`).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, SubjectKind
from collector.alerts.sources import Context, _backup, register
from collector.compliance.profile import Obligation
from collector.compliance.rules.bak_2 import Bak2Params


def rpo_s(ctx: Context) -> float:
    profile = ctx.profile
    if profile is not None and Obligation.BAK_2 in profile.obligations:
        p = profile.params(Obligation.BAK_2)
        if isinstance(p, Bak2Params):
            return p.rpo_days * 86400
    return ctx.cfg.conditions.drc_stale.rpo_days * 86400


@register
class DrcStale:
    name = "drc_stale"
    conditions = (Condition.DRC_STALE,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        rpo = rpo_s(ctx)
        out = []
        for r in _backup.jobs(conn):
            rep = r.replica if isinstance(r.replica, dict) else None
            last = _backup.at(r, r.replica_last_success_at) if rep is not None else None
            if last is not None and ctx.now - last <= rpo:
                continue
            pd_code = ctx.pd_codes.get(r.pd_id)
            error = _backup.clip(str(rep.get("error"))) if rep and rep.get("error") else None
            out.append(Finding(
                condition=Condition.DRC_STALE, subject_kind=SubjectKind.BACKUP,
                subject_ref=str(r.id), subject=_backup.name(r), pd_id=r.pd_id,
                subject_names=_backup.subject(r, pd_code),
                zone=_backup.replica_zone(ctx.cfg.zones, pd_code, r),
                since=None if last is None else last + rpo,
                details={"job": r.job, "replica": "stale" if last is not None
                         else "missing" if rep is None else "empty",
                         "replica_destination": rep.get("destination") if rep else None,
                         "replica_last_success_at": last, "rpo_s": rpo, "error": error}))
        return out
