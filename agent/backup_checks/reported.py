"""``reported``: results that the backup script pushes itself.

The script ends with e.g. ``spbe-agent backup-report --job simpeg-db --status success
--size 734003200 --duration 312 --destination backup.pusatdata.local --replica
drc.kotabogor.go.id --checksum <sha256>``; the result is committed to the agent's backup
database (:mod:`agent.backup_checks.store`) and this check reads the newest ones:
last run status, last success (size, duration, checksum, destination), last failure and its
message. The replica's age is the newest successful report that names a ``--replica``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import datetime

from agent.backup_checks.base import BackupCheckError, CheckContext, Finding, Integrity, Location
from agent.backup_checks.store import BackupStore, PushedResult, StoreError, store_path
from agent.config import AgentConfig, BackupJobCfg, ReportedBackupJob
from contract.report import BackupRunStatus, utcnow

_HOST = re.compile(r"^[^\s/@]{1,255}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class ReportArgs:
    """What ``spbe-agent backup-report`` was given, before validation."""

    job: str
    status: str
    size: int | None = None
    duration: float | None = None
    destination: str | None = None
    replica: str | None = None
    checksum: str | None = None
    message: str | None = None


def make_result(a: ReportArgs, now: datetime | None = None) -> PushedResult:
    """Validate a pushed result; ValueError says which argument is wrong."""
    if a.status not in ("success", "failure"):
        raise ValueError(f"--status must be success or failure, not {a.status!r}")
    if a.size is not None and a.size < 0:
        raise ValueError("--size must be a number of bytes >= 0")
    if a.duration is not None and not 0 <= a.duration < 10 * 365 * 86400:
        raise ValueError("--duration must be seconds >= 0")
    for opt, host in (("--destination", a.destination), ("--replica", a.replica)):
        if host is not None and not _HOST.match(host):
            raise ValueError(f"{opt} must be a host name or IP address, not {host[:80]!r}")
    if a.checksum is not None and not _SHA256.match(a.checksum):
        raise ValueError("--checksum must be a SHA-256 (64 hex digits)")
    if a.message is not None and len(a.message) > 1024:
        raise ValueError("--message is longer than 1024 characters")
    return PushedResult(job=a.job, status="success" if a.status == "success" else "failure",
                        reported_at=now or utcnow(), size_bytes=a.size, duration_s=a.duration,
                        destination=a.destination, replica=a.replica,
                        checksum=a.checksum.lower() if a.checksum else None,
                        message=a.message or None)


class ReportedCheck:
    type = "reported"

    def inspect(self, job: BackupJobCfg, where: Location, ctx: CheckContext) -> Finding:
        assert isinstance(job, ReportedBackupJob)
        try:
            if where.role == "replica":
                return self._replica(job, ctx)
            last = ctx.store.last_report(job.name)
            ok = ctx.store.last_report(job.name, "success")
            bad = ctx.store.last_report(job.name, "failure")
            count = ctx.store.count_reports(job.name)
        except StoreError as e:
            raise BackupCheckError(str(e)) from e
        if last is None:
            return Finding(status=BackupRunStatus.NEVER_RUN, item_count=0,
                           failure_reason="no result reported yet (spbe-agent backup-report)")
        return Finding(
            status=BackupRunStatus.SUCCESS if last.status == "success" else BackupRunStatus.FAILED,
            last_success_at=ok.reported_at if ok else None, item_count=count,
            size_bytes=ok.size_bytes if ok else None, duration_s=ok.duration_s if ok else None,
            checksum_sha256=ok.checksum if ok else None,
            failure_at=bad.reported_at if bad else None,
            failure_reason=(bad.message or "the backup script reported failure") if bad else None,
            error_type="reported" if last.status == "failure" else None,
            destination=(ok or last).destination)

    def _replica(self, job: ReportedBackupJob, ctx: CheckContext) -> Finding:
        rep: PushedResult | None = ctx.store.last_report(job.name, "success", with_replica=True)
        if rep is None:
            return Finding(status=BackupRunStatus.NEVER_RUN,
                           failure_reason="no result with --replica reported yet")
        return Finding(status=BackupRunStatus.SUCCESS, last_success_at=rep.reported_at,
                       size_bytes=rep.size_bytes, checksum_sha256=rep.checksum,
                       destination=rep.replica)

    def verify(self, job: BackupJobCfg, ctx: CheckContext) -> Integrity | None:
        return None

    def reconcile(self, primary: Finding, replica: Finding) -> Integrity | None:
        return None


def cmd_backup_report(cfg: AgentConfig, args: ReportArgs) -> int:
    """``spbe-agent backup-report``: validate and durably record one pushed result."""
    jobs = {j.name: j for j in cfg.backups if isinstance(j, ReportedBackupJob)}
    if args.job not in jobs:
        valid = ", ".join(sorted(jobs)) or "(none configured)"
        print(f"backup-report: {args.job!r} is not a backup job of type reported in the "
              f"config; valid: {valid}", file=sys.stderr)
        return 2
    try:
        result = make_result(args)
    except ValueError as e:
        print(f"backup-report: {e}", file=sys.stderr)
        return 2
    path = store_path(cfg)
    try:
        rid = BackupStore(path).add_report(result)
    except StoreError as e:
        print(f"backup-report: {e}", file=sys.stderr)
        return 1
    print(f"recorded {result.status} of backup job {result.job} (#{rid} in {path})")
    return 0
