"""Backup jobs (BAK-1, BAK-2): one :class:`~contract.report.BackupStatus` per configured job.

Each job is looked at by its check type (:mod:`agent.backup_checks`): the primary location,
then the replica (DRC copy) the same way; destination and replica hosts are resolved to IP
addresses with a bounded wait, so the collector can match them against Pusat Data and DRC
subnets. Jobs run concurrently (bounded), each in a thread with an overall time limit; one
failing job is a ``failed`` observation, never a reason to skip the others.

What a look cannot see is remembered in the agent's backup database beside the spool: the
newest good backup seen (still reported while the repository cannot be read), the last
failure, and the result of the slow integrity checks (``restic check``/``borg check``), which
run in background threads on each job's ``check_interval_s`` and are reported by the next
collection.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

from agent import backup_checks
from agent.backup_checks.base import (
    BackupCheck,
    BackupCheckError,
    CheckContext,
    Finding,
    Integrity,
    Location,
    locations,
)
from agent.backup_checks.resolve import RESOLVE_TIMEOUT_S, host_from_location, resolve
from agent.backup_checks.store import BackupStore, JobState, StoreError, store_path
from agent.collectors import AgentContext, Obs, register
from agent.config import AgentConfig, BackupJobCfg
from contract.report import (
    BackupJobType,
    BackupReplica,
    BackupRunStatus,
    BackupStatus,
    IntegrityStatus,
    utcnow,
)

log = logging.getLogger(__name__)
MAX_CONCURRENT = 4
RETRY_ERRORED_CHECK_S = 3600.0  # an integrity check that could not run is retried sooner
_SEVERITY = {IntegrityStatus.FAILED: 3, IntegrityStatus.ERROR: 2, IntegrityStatus.OK: 1,
             IntegrityStatus.NOT_RUN: 0}


def make_context(cfg: AgentConfig) -> CheckContext:
    return CheckContext(state_dir=cfg.spool.path.parent / "backup-cache",
                        store=BackupStore(store_path(cfg)))


def _inspect(check: BackupCheck, job: BackupJobCfg, where: Location,
             ctx: CheckContext) -> tuple[Finding | None, BackupCheckError | None]:
    try:
        return check.inspect(job, where, ctx), None
    except BackupCheckError as e:
        return None, e


def _load_state(ctx: CheckContext, job: str) -> JobState:
    try:
        return ctx.store.load_state(job)
    except StoreError as e:
        log.warning("backup job %s: remembered state unavailable: %s", job, e)
        return JobState()


def _worst(results: list[tuple[str, Integrity | None]]) -> Integrity | None:
    """The most severe of several integrity results, its message prefixed by its copy."""
    found = [(prefix, r) for prefix, r in results if r is not None]
    if not found:
        return None
    prefix, worst = max(found, key=lambda pr: _SEVERITY[pr[1].status])
    msg = f"{prefix}{worst.message}" if worst.message else None
    return Integrity(worst.status, msg[:1024] if msg else None, worst.checked_at)


def _destination(declared: str | None, finding: Finding | None,
                 location: str | None) -> str | None:
    host = declared or (finding.destination if finding else None) or host_from_location(location)
    return host if host and len(host) <= 255 else None


def _replica(check: BackupCheck, job: BackupJobCfg, where: Location, ctx: CheckContext,
             state: JobState, resolve_timeout: float) -> tuple[BackupReplica, Finding | None]:
    finding, err = _inspect(check, job, where, ctx)
    declared = job.replica.destination if job.replica else None
    dest = _destination(declared, finding, where.repository)
    ips, dest_err = resolve(dest, resolve_timeout) if dest else ([], None)
    last: datetime | None
    error: str | None = None
    error_type: str | None = None
    if err is not None:
        last, error, error_type = state.replica_last_success_at, err.reason, err.error_type
    elif finding is None or finding.status != BackupRunStatus.SUCCESS:
        last = finding.last_success_at if finding else None
        error = (finding.failure_reason if finding else None) or "the replica holds no backup"
        error_type = (finding.error_type if finding else None) or "no_backup"
    else:
        last = finding.last_success_at
    replica = BackupReplica(destination=dest, destination_ips=ips, destination_error=dest_err,
                            last_success_at=last,
                            item_count=finding.item_count if finding else None,
                            size_bytes=finding.size_bytes if finding else None,
                            error=error[:1024] if error else None, error_type=error_type)
    return replica, finding


def check_job(job: BackupJobCfg, ctx: CheckContext,
              resolve_timeout: float = RESOLVE_TIMEOUT_S) -> BackupStatus:
    """Look at one job (primary, replica, destinations) and build its observation."""
    now = utcnow()
    check = backup_checks.get(job.type)
    primary, replica_loc = locations(job)
    state = _load_state(ctx, job.name)
    finding, err = _inspect(check, job, primary, ctx)

    failure_at, reason = state.last_failure_at, state.last_failure_reason
    error_type: str | None = None
    if err is not None:
        status, error_type, failure_at, reason = (BackupRunStatus.FAILED, err.error_type, now,
                                                  err.reason)
        last_success = state.last_success_at
    else:
        assert finding is not None
        status, error_type = finding.status, finding.error_type
        last_success = finding.last_success_at
        if finding.status == BackupRunStatus.NEVER_RUN and state.last_success_at is not None:
            # it had backups before: they are gone (deleted, rotated away, forgotten)
            status, error_type, failure_at = BackupRunStatus.FAILED, "no_backup", now
            reason = (f"{finding.failure_reason or 'no backup found'}; a backup from "
                      f"{state.last_success_at:%Y-%m-%d %H:%M} UTC was seen before")
            last_success = state.last_success_at
        elif finding.failure_at is not None or finding.status == BackupRunStatus.FAILED:
            failure_at, reason = finding.failure_at or now, finding.failure_reason
        elif finding.status == BackupRunStatus.NEVER_RUN:
            reason = finding.failure_reason

    dest = _destination(job.destination, finding, primary.repository)
    ips, dest_err = resolve(dest, resolve_timeout) if dest else ([], None)

    replica: BackupReplica | None = None
    replica_finding: Finding | None = None
    if replica_loc is not None:
        replica, replica_finding = _replica(check, job, replica_loc, ctx, state, resolve_timeout)
        if (job.replica is None and replica_finding is not None
                and replica_finding.status == BackupRunStatus.NEVER_RUN):
            replica = None  # an undeclared replica that holds nothing is no replica

    inline = _worst([
        ("", finding.integrity if finding else None),
        ("replica: ", replica_finding.integrity if replica_finding else None),
        ("", check.reconcile(finding, replica_finding)
         if finding and replica_finding else None)])
    integrity = inline or Integrity(state.integrity, state.integrity_message,
                                    state.integrity_checked_at)

    changes: dict[str, Any] = {}
    if last_success is not None and status != BackupRunStatus.NEVER_RUN:
        changes["last_success_at"] = last_success
    if status == BackupRunStatus.FAILED and failure_at is not None:
        changes.update(last_failure_at=failure_at, last_failure_reason=reason)
    if replica is not None and replica.last_success_at is not None:
        changes["replica_last_success_at"] = replica.last_success_at
    if changes:
        try:
            ctx.store.update_state(job.name, **changes)
        except StoreError as e:
            log.warning("backup job %s: cannot remember state: %s", job.name, e)

    return BackupStatus(
        observed_at=now, job=job.name, type=BackupJobType(job.type), status=status,
        error_type=error_type if status != BackupRunStatus.SUCCESS else None,
        last_success_at=last_success, last_failure_at=failure_at,
        last_failure_reason=reason[:1024] if reason else None,
        size_bytes=finding.size_bytes if finding else None,
        duration_s=finding.duration_s if finding else None,
        item_count=finding.item_count if finding else None,
        checksum_sha256=finding.checksum_sha256 if finding else None,
        expected_interval_s=job.expected_interval_s,
        destination=dest, destination_ips=ips, destination_error=dest_err,
        replica=replica, integrity=integrity.status,
        integrity_checked_at=integrity.checked_at,
        integrity_message=integrity.message[:1024] if integrity.message else None)


def failed_status(job: BackupJobCfg, reason: str, error_type: str) -> BackupStatus:
    now = utcnow()
    return BackupStatus(observed_at=now, job=job.name, type=BackupJobType(job.type),
                        status=BackupRunStatus.FAILED, error_type=error_type,
                        last_failure_at=now, last_failure_reason=reason[:1024],
                        expected_interval_s=job.expected_interval_s,
                        destination=job.destination)


def _guard_s(job: BackupJobCfg) -> float:
    """Overall limit of one job's look: primary and replica, two commands each, and DNS."""
    return job.timeout_s * 4 + RESOLVE_TIMEOUT_S * 2 + 10


def integrity_due(job: BackupJobCfg, state: JobState, now: datetime) -> bool:
    if not getattr(job, "integrity_check", False):
        return False
    interval = float(getattr(job, "check_interval_s", 0.0))
    if state.integrity_checked_at is None:
        return True
    if state.integrity == IntegrityStatus.ERROR:
        interval = min(interval, RETRY_ERRORED_CHECK_S)
    return now - state.integrity_checked_at >= timedelta(seconds=interval)


class BackupsCollector:
    name = "backups"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg = cfg
        self.check_ctx = make_context(cfg)
        self._threads: dict[str, threading.Thread] = {}
        self._threads_lock = threading.Lock()

    def interval_s(self) -> float:
        return self.cfg.intervals.backups_s

    async def collect(self) -> list[Obs]:
        sem = asyncio.Semaphore(MAX_CONCURRENT)

        async def one(job: BackupJobCfg) -> BackupStatus:
            async with sem:
                try:
                    return await asyncio.wait_for(
                        asyncio.to_thread(check_job, job, self.check_ctx), _guard_s(job))
                except TimeoutError:
                    return failed_status(job, f"the check did not finish within "
                                              f"{_guard_s(job):g} s", "timeout")
                except Exception as e:  # isolation boundary: one job never stops the others
                    log.exception("backup job %s: check crashed", job.name)
                    return failed_status(job, f"the check crashed: {type(e).__name__}",
                                         "internal")

        results: list[Obs] = list(await asyncio.gather(*(one(j) for j in self.cfg.backups)))
        self.start_due_integrity_checks()
        return results

    # --- integrity checks in the background ----------------------------------------------

    def start_due_integrity_checks(self) -> list[str]:
        """Start the integrity checks that are due and not already running; their names."""
        started: list[str] = []
        now = utcnow()
        for job in self.cfg.backups:
            with self._threads_lock:
                running = self._threads.get(job.name)
                if running is not None and running.is_alive():
                    continue
                if not integrity_due(job, _load_state(self.check_ctx, job.name), now):
                    continue
                t = threading.Thread(target=self._run_integrity, args=(job,), daemon=True,
                                     name=f"backup-check-{job.name}")
                self._threads[job.name] = t
                t.start()
            started.append(job.name)
        return started

    def _run_integrity(self, job: BackupJobCfg) -> None:
        try:
            result = backup_checks.get(job.type).verify(job, self.check_ctx)
        except Exception as e:  # isolation boundary
            log.exception("backup job %s: integrity check crashed", job.name)
            result = Integrity(IntegrityStatus.ERROR, f"the check crashed: {type(e).__name__}",
                               utcnow())
        if result is None:
            return
        log.info("backup job %s: integrity %s", job.name, result.status.value)
        try:
            self.check_ctx.store.update_state(
                job.name, integrity=result.status, integrity_checked_at=result.checked_at or
                utcnow(), integrity_message=result.message[:1024] if result.message else None)
        except StoreError as e:
            log.warning("backup job %s: cannot store integrity result: %s", job.name, e)

    def join_integrity(self, timeout: float) -> bool:
        """Wait for running integrity checks; True when none is left running."""
        with self._threads_lock:
            threads = list(self._threads.values())
        for t in threads:
            t.join(timeout)
        return not any(t.is_alive() for t in threads)


@register("backups")
def _factory(cfg: AgentConfig, ctx: AgentContext) -> BackupsCollector:
    return BackupsCollector(cfg, ctx)
