"""Backup jobs with no good backup for longer than their interval x factor, or never run
(BAK-1 evidence), from ``backup_jobs``.

The interval is the job's ``expected_interval_s`` (its configured schedule), else a default;
the factor and the default come from the region profile's BAK-1 parameters when a profile
with BAK-1 is configured, else from ``alerts.conditions.backup_overdue``. A job that never
produced a good backup is overdue once it has been known for that long (a new job gets its
first interval). A job whose last run failed is left to ``backup_failed`` (one alert per
fault) unless that condition is disabled. Since: the moment the job became overdue.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, SubjectKind
from collector.alerts.sources import Context, _backup, register
from collector.compliance.profile import Obligation
from collector.compliance.rules.bak_1 import Bak1Params


def limits(ctx: Context) -> tuple[float, float]:
    """(factor, default interval in seconds)."""
    profile = ctx.profile
    if profile is not None and Obligation.BAK_1 in profile.obligations:
        p = profile.params(Obligation.BAK_1)
        if isinstance(p, Bak1Params):
            return p.overdue_factor, p.default_interval_hours * 3600
    cfg = ctx.cfg.conditions.backup_overdue
    return cfg.factor, cfg.default_interval_s


@register
class BackupOverdue:
    name = "backup_overdue"
    conditions = (Condition.BACKUP_OVERDUE,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        factor, default_interval = limits(ctx)
        failed_alerted = ctx.cfg.conditions.backup_failed.enabled
        out = []
        for r in _backup.jobs(conn):
            if r.status == "failed" and failed_alerted:
                continue
            interval = float(r.expected_interval_s or default_interval)
            limit = interval * factor
            last = _backup.at(r, r.last_success_at)
            start = float(r.first_seen) if last is None else last
            if ctx.now - start <= limit:
                continue
            pd_code = ctx.pd_codes.get(r.pd_id)
            out.append(Finding(
                condition=Condition.BACKUP_OVERDUE, subject_kind=SubjectKind.BACKUP,
                subject_ref=str(r.id), subject=_backup.name(r), pd_id=r.pd_id,
                subject_names=_backup.subject(r, pd_code),
                zone=_backup.job_zone(ctx.cfg.zones, pd_code, r), since=start + limit,
                details={"job": r.job, "never_run": last is None, "last_success_at": last,
                         "interval_s": interval, "limit_s": limit,
                         "destination": r.destination}))
        return out
