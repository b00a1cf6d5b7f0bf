"""Backup jobs whose last run failed, or whose integrity check found damage (BAK-1/BAK-2
evidence), from ``backup_jobs`` as stored by ingest.

One alert per job while either is true; it clears when a later report shows a good run and
no damage. Since: the failed run (or the failed check), on the collector's clock. Routing: see
:mod:`collector.alerts.sources._backup`.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from collector.alerts.config import Condition
from collector.alerts.model import Finding, SubjectKind
from collector.alerts.sources import Context, _backup, register
from collector.db_compliance import backup_jobs


@register
class BackupFailed:
    name = "backup_failed"
    conditions = (Condition.BACKUP_FAILED,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        b = backup_jobs.c
        out = []
        for r in _backup.jobs(conn, (b.status == "failed") | (b.integrity == "failed")):
            pd_code = ctx.pd_codes.get(r.pd_id)
            run_failed, damaged = r.status == "failed", r.integrity == "failed"
            starts = []
            if run_failed:
                starts.append(_backup.at(r, r.last_failure_at or r.observed_at))
            if damaged:
                starts.append(_backup.at(r, r.integrity_checked_at or r.observed_at))
            error = " | ".join(e for e in (
                _backup.clip(r.last_failure_reason) if run_failed else None,
                _backup.clip(r.integrity_message) if damaged else None) if e)
            out.append(Finding(
                condition=Condition.BACKUP_FAILED, subject_kind=SubjectKind.BACKUP,
                subject_ref=str(r.id), subject=_backup.name(r), pd_id=r.pd_id,
                subject_names=_backup.subject(r, pd_code),
                zone=_backup.job_zone(ctx.cfg.zones, pd_code, r),
                since=min(s for s in starts if s is not None),
                details={"job": r.job, "run_failed": run_failed, "integrity_failed": damaged,
                         "error_type": r.error_type if run_failed else None,
                         "error": error or None, "destination": r.destination,
                         "last_success_at": _backup.at(r, r.last_success_at)}))
        return out
