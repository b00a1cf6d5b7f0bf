"""``restic``: the snapshots of a restic repository (``restic snapshots --json``).

Found: the newest snapshot's time (last success), the number of snapshots, and the newest
snapshot's size and file count (its ``summary`` on restic >= 0.17, else ``restic stats
--json <id>``, cached per snapshot since snapshots never change). Reads use ``--no-lock`` so
monitoring never blocks or is blocked by a running backup. The password goes to restic as
``RESTIC_PASSWORD_FILE`` (secret file) or ``RESTIC_PASSWORD`` in the child's environment
only; the repository as ``RESTIC_REPOSITORY``. Integrity: ``restic check`` (plus
``check_args``, e.g. ``--read-data-subset=5%``) on the job's ``check_interval_s``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent.backup_checks.base import (
    AuthFailed,
    BackupCheckError,
    BadOutput,
    CheckContext,
    Finding,
    Integrity,
    Location,
    RepositoryLocked,
    RepositoryNotFound,
    secret_value,
)
from agent.backup_checks.process import ToolOutput, child_env, run_tool, scrub, summarize
from agent.backup_checks.timeparse import parse_time
from agent.config import BackupJobCfg, ResticBackupJob
from contract.report import BackupRunStatus, IntegrityStatus, utcnow

log = logging.getLogger(__name__)
PACKAGE = "restic"


class _Env:
    def __init__(self, job: ResticBackupJob, where: Location, ctx: CheckContext) -> None:
        ref = where.password or job.password
        pw = secret_value(ref, f"backup job {job.name}: {where.role} password")
        extra = dict(job.env)
        self.secrets = [pw]
        for name, sref in job.secret_env.items():
            value = secret_value(sref, f"backup job {job.name}: secret_env {name}")
            extra[name] = value
            self.secrets.append(value)
        extra["RESTIC_REPOSITORY"] = where.repository or job.repository
        if ref.file is not None:
            extra["RESTIC_PASSWORD_FILE"] = str(ref.file)
        else:
            extra["RESTIC_PASSWORD"] = pw
        self.env = child_env(extra)
        cache = (job.cache_dir / where.role if job.cache_dir
                 else ctx.cache_dir("restic", job.name, where.role))
        self.cache_args = ["--cache-dir", str(cache)]


def _fail(out: ToolOutput, what: str, secrets: Sequence[str]) -> BackupCheckError:
    msg = summarize(out.stderr, secrets) or "no error output"
    low = out.stderr.lower()
    if "wrong password" in low or "no key found" in low:
        return AuthFailed(f"restic {what}: wrong password or no key found ({msg})")
    if ("is there a repository at the following location" in low
            or "repository does not exist" in low or "unable to open config file" in low):
        return RepositoryNotFound(f"restic {what}: no repository at this location ({msg})")
    if "unable to create lock" in low or "already locked" in low:
        return RepositoryLocked(f"restic {what}: repository is locked ({msg})")
    return BackupCheckError(f"restic {what} exited with status {out.returncode}: {msg}")


def _json(out: ToolOutput, what: str, secrets: Sequence[str]) -> Any:
    try:
        return json.loads(out.stdout)
    except ValueError as e:
        start = scrub(out.stdout[:80], secrets).strip() or "(empty)"
        raise BadOutput(f"restic {what}: output is not JSON ({e}); it starts with "
                        f"{start!r}") from e


def parse_snapshots(data: Any) -> list[tuple[datetime, str, dict[str, Any]]]:
    """(time, id, snapshot) of each snapshot, oldest first; BadOutput names the problem."""
    if not isinstance(data, list):
        raise BadOutput(f"restic snapshots --json: expected a JSON list of snapshots, got "
                        f"{type(data).__name__}")
    out = []
    for i, snap in enumerate(data):
        if not isinstance(snap, dict) or not isinstance(snap.get("id"), str):
            raise BadOutput(f"restic snapshots --json: snapshot #{i} has no id")
        try:
            at = parse_time(snap.get("time"))
        except ValueError as e:
            raise BadOutput(f"restic snapshots --json: snapshot #{i}: {e}") from e
        out.append((at, snap["id"], snap))
    out.sort(key=lambda t: t[0])
    return out


def _num(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 else None


class ResticCheck:
    type = "restic"

    def inspect(self, job: BackupJobCfg, where: Location, ctx: CheckContext) -> Finding:
        assert isinstance(job, ResticBackupJob)
        e = _Env(job, where, ctx)
        argv = [job.binary, "snapshots", "--json", "--no-lock", "-q", *e.cache_args]
        if job.snapshot_host:
            argv += ["--host", job.snapshot_host]
        for t in job.tags:
            argv += ["--tag", t]
        for p in job.paths:
            argv += ["--path", p]
        out = run_tool(argv, env=e.env, timeout=job.timeout_s, secrets=e.secrets,
                       package=PACKAGE)
        if out.returncode != 0:
            raise _fail(out, "snapshots", e.secrets)
        snaps = parse_snapshots(_json(out, "snapshots --json", e.secrets))
        if not snaps:
            return Finding(status=BackupRunStatus.NEVER_RUN, item_count=0,
                           failure_reason="the repository holds no snapshot")
        at, sid, snap = snaps[-1]
        size, _files, duration = self._size(job, e, sid, snap, ctx)
        return Finding(status=BackupRunStatus.SUCCESS, last_success_at=at,
                       item_count=len(snaps), size_bytes=size, duration_s=duration,
                       item_name=sid[:64])

    def _size(self, job: ResticBackupJob, e: _Env, sid: str, snap: dict[str, Any],
              ctx: CheckContext) -> tuple[int | None, int | None, float | None]:
        summary = snap.get("summary")
        if isinstance(summary, dict):  # restic >= 0.17
            duration = None
            with contextlib.suppress(ValueError):
                duration = max(0.0, (parse_time(summary.get("backup_end"))
                                     - parse_time(summary.get("backup_start"))).total_seconds())
            return (_num(summary.get("total_bytes_processed")),
                    _num(summary.get("total_files_processed")), duration)
        key = f"restic:{e.env['RESTIC_REPOSITORY']}:{sid}"
        with ctx.lock:
            cached = ctx.stats.get(key)
        if cached is not None:
            return cached
        argv = [job.binary, "stats", "--json", "--no-lock", "-q", *e.cache_args, sid]
        try:
            out = run_tool(argv, env=e.env, timeout=job.timeout_s, secrets=e.secrets,
                           package=PACKAGE)
            if out.returncode != 0:
                raise _fail(out, "stats", e.secrets)
            data = _json(out, "stats --json", e.secrets)
        except BackupCheckError as err:  # the size is a detail: the snapshot is still there
            log.warning("backup job %s: size unknown: %s", job.name, err.reason)
            return None, None, None
        if not isinstance(data, dict):
            log.warning("backup job %s: restic stats --json: not a JSON object", job.name)
            return None, None, None
        result = (_num(data.get("total_size")), _num(data.get("total_file_count")), None)
        with ctx.lock:
            if len(ctx.stats) > 4096:
                ctx.stats.clear()
            ctx.stats[key] = result
        return result

    def verify(self, job: BackupJobCfg, ctx: CheckContext) -> Integrity | None:
        assert isinstance(job, ResticBackupJob)
        if not job.integrity_check:
            return None
        primary = Location(role="primary", repository=job.repository)
        try:
            e = _Env(job, primary, ctx)
            out = run_tool([job.binary, "check", "-q", *job.check_args], env=e.env,
                           timeout=job.check_timeout_s, secrets=e.secrets, package=PACKAGE)
            if out.returncode == 0:
                return Integrity(IntegrityStatus.OK, "restic check: no errors were found",
                                 utcnow())
            err = _fail(out, "check", e.secrets)
        except BackupCheckError as ex:
            return Integrity(IntegrityStatus.ERROR, f"check could not run: {ex.reason}",
                             utcnow())
        if isinstance(err, AuthFailed | RepositoryNotFound | RepositoryLocked):
            return Integrity(IntegrityStatus.ERROR, f"check could not run: {err.reason}",
                             utcnow())
        return Integrity(IntegrityStatus.FAILED, err.reason, utcnow())

    def reconcile(self, primary: Finding, replica: Finding) -> Integrity | None:
        return None
