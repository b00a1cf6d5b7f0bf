"""``borg``: the archives of a borg repository (``borg list --json``, ``borg info --json``).

Found: the newest archive's start (last success), the number of archives, and the newest
archive's original size, file count and duration (``borg info --json REPO::ARCHIVE``, cached
per archive id). Reads use ``--bypass-lock`` so a running ``borg create`` neither blocks nor is
blocked by monitoring. The repository goes to borg as ``BORG_REPO``, the passphrase as
``BORG_PASSCOMMAND="cat FILE"`` (secret file) or ``BORG_PASSPHRASE`` (secret env), in the
child's environment only. Cache and security directories are per job and copy (beside the
spool), so a rsync'd DRC copy with the same repository id is never mistaken for a replay
attack on the primary. Errors are read from ``--log-json`` (message ids such as
``PassphraseWrong``). Integrity: ``borg check`` (plus ``check_args``) on its own interval.
"""

from __future__ import annotations

import json
import logging
import shlex
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
from agent.config import BackupJobCfg, BorgBackupJob
from contract.report import BackupRunStatus, IntegrityStatus, utcnow

log = logging.getLogger(__name__)
PACKAGE = "borgbackup"
_AUTH = {"PassphraseWrong", "NoPassphraseFailure", "PasscommandFailure", "PasswordRetriesExceeded"}
_NOT_FOUND = {"Repository.DoesNotExist", "Repository.InvalidRepository",
              "Repository.ParentPathDoesNotExist", "Archive.DoesNotExist"}
_LOCKED = {"LockTimeout", "LockFailed", "LockError", "Repository.ObjectNotFound.Locked"}


class _Env:
    def __init__(self, job: BorgBackupJob, where: Location, ctx: CheckContext) -> None:
        extra = dict(job.env)
        self.secrets: list[str] = []
        for name, sref in job.secret_env.items():
            value = secret_value(sref, f"backup job {job.name}: secret_env {name}")
            extra[name] = value
            self.secrets.append(value)
        ref = where.password or job.passphrase
        if ref is not None:
            pw = secret_value(ref, f"backup job {job.name}: {where.role} passphrase")
            self.secrets.append(pw)
            if ref.file is not None:
                extra["BORG_PASSCOMMAND"] = shlex.join(["cat", str(ref.file)])
            else:
                extra["BORG_PASSPHRASE"] = pw
        base = (job.cache_dir / where.role if job.cache_dir
                else ctx.cache_dir("borg", job.name, where.role))
        extra.update(BORG_REPO=where.repository or job.repository,
                     BORG_CACHE_DIR=str(base / "cache"),
                     BORG_SECURITY_DIR=str(base / "security"),
                     BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
                     BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                     BORG_DISPLAY_PASSPHRASE="no")
        self.env = child_env(extra)


def log_messages(stderr: str) -> tuple[list[str], set[str]]:
    """ERROR/CRITICAL messages (else warnings, else raw lines) and message ids from
    ``--log-json`` stderr."""
    errors: list[str] = []
    warnings: list[str] = []
    raw: list[str] = []
    ids: set[str] = set()
    for line in stderr.splitlines():
        line = line.strip()
        if not line:
            continue
        try:  # a JSON record may follow a prompt on the same line ("Enter passphrase ...: {")
            rec = json.loads(line[line.index("{"):]) if "{" in line else None
        except ValueError:
            rec = None
        if not isinstance(rec, dict):
            raw.append(line)
            continue
        if isinstance(rec.get("msgid"), str):
            ids.add(rec["msgid"])
        msg = str(rec.get("message", "")).strip()
        if not msg or rec.get("type") != "log_message":
            continue
        level = rec.get("levelname")
        (errors if level in ("ERROR", "CRITICAL") else
         warnings if level == "WARNING" else raw).append(msg)
    return errors or warnings or raw, ids


def _fail(out: ToolOutput, what: str, secrets: Sequence[str]) -> BackupCheckError:
    msgs, ids = log_messages(out.stderr)
    msg = summarize("\n".join(msgs), secrets) or "no error output"
    if ids & _AUTH:
        return AuthFailed(f"borg {what}: wrong or missing passphrase ({msg})")
    if ids & _NOT_FOUND:
        return RepositoryNotFound(f"borg {what}: no repository at this location ({msg})")
    if ids & _LOCKED:
        return RepositoryLocked(f"borg {what}: repository is locked ({msg})")
    return BackupCheckError(f"borg {what} exited with status {out.returncode}: {msg}")


def _json(out: ToolOutput, what: str, secrets: Sequence[str]) -> dict[str, Any]:
    try:
        data = json.loads(out.stdout)
    except ValueError as e:
        start = scrub(out.stdout[:80], secrets).strip() or "(empty)"
        raise BadOutput(f"borg {what}: output is not JSON ({e}); it starts with "
                        f"{start!r}") from e
    if not isinstance(data, dict):
        raise BadOutput(f"borg {what}: expected a JSON object, got {type(data).__name__}")
    return data


def parse_archives(data: dict[str, Any]) -> list[tuple[datetime, str, str]]:
    """(start, name, id) of each archive, oldest first; BadOutput names the problem."""
    archives = data.get("archives")
    if not isinstance(archives, list):
        raise BadOutput("borg list --json: no 'archives' list in the output")
    out = []
    for i, a in enumerate(archives):
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise BadOutput(f"borg list --json: archive #{i} has no name")
        try:
            at = parse_time(a.get("start") or a.get("time"), naive_is_local=True)
        except ValueError as e:
            raise BadOutput(f"borg list --json: archive {a['name'][:64]!r}: {e}") from e
        out.append((at, a["name"], str(a.get("id", a["name"]))))
    out.sort(key=lambda t: t[0])
    return out


def _num(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 else None


class BorgCheck:
    type = "borg"

    def inspect(self, job: BackupJobCfg, where: Location, ctx: CheckContext) -> Finding:
        assert isinstance(job, BorgBackupJob)
        e = _Env(job, where, ctx)
        argv = [job.binary, "--log-json", "--bypass-lock", "list", "--json"]
        if job.glob_archives:
            argv += ["--glob-archives", job.glob_archives]
        out = run_tool(argv, env=e.env, timeout=job.timeout_s, secrets=e.secrets,
                       package=PACKAGE)
        if out.returncode not in (0, 1):  # 1 = finished with warnings
            raise _fail(out, "list", e.secrets)
        archives = parse_archives(_json(out, "list --json", e.secrets))
        if not archives:
            return Finding(status=BackupRunStatus.NEVER_RUN, item_count=0,
                           failure_reason="the repository holds no archive")
        at, name, aid = archives[-1]
        size, _files, duration = self._info(job, e, name, aid, ctx)
        return Finding(status=BackupRunStatus.SUCCESS, last_success_at=at,
                       item_count=len(archives), size_bytes=size, duration_s=duration,
                       item_name=name[:255])

    def _info(self, job: BorgBackupJob, e: _Env, name: str, aid: str,
              ctx: CheckContext) -> tuple[int | None, int | None, float | None]:
        key = f"borg:{e.env['BORG_REPO']}:{aid}"
        with ctx.lock:
            cached = ctx.stats.get(key)
        if cached is not None:
            return cached
        argv = [job.binary, "--log-json", "--bypass-lock", "info", "--json", "::" + name]
        try:
            out = run_tool(argv, env=e.env, timeout=job.timeout_s, secrets=e.secrets,
                           package=PACKAGE)
            if out.returncode not in (0, 1):
                raise _fail(out, "info", e.secrets)
            data = _json(out, "info --json", e.secrets)
            archives = data.get("archives")
            if not isinstance(archives, list) or not archives or not isinstance(
                    archives[0], dict):
                raise BadOutput("borg info --json: no archive in the output")
        except BackupCheckError as err:  # the size is a detail: the archive is still there
            log.warning("backup job %s: size unknown: %s", job.name, err.reason)
            return None, None, None
        a = archives[0]
        raw_stats = a.get("stats")
        stats: dict[str, Any] = raw_stats if isinstance(raw_stats, dict) else {}
        dur = a.get("duration")
        result = (_num(stats.get("original_size")), _num(stats.get("nfiles")),
                  float(dur) if isinstance(dur, int | float) and dur >= 0 else None)
        with ctx.lock:
            if len(ctx.stats) > 4096:
                ctx.stats.clear()
            ctx.stats[key] = result
        return result

    def verify(self, job: BackupJobCfg, ctx: CheckContext) -> Integrity | None:
        assert isinstance(job, BorgBackupJob)
        if not job.integrity_check:
            return None
        primary = Location(role="primary", repository=job.repository)
        try:
            e = _Env(job, primary, ctx)
            out = run_tool([job.binary, "--log-json", "--lock-wait", "60", "check",
                            *job.check_args], env=e.env, timeout=job.check_timeout_s,
                           secrets=e.secrets, package=PACKAGE)
            if out.returncode == 0:
                return Integrity(IntegrityStatus.OK, "borg check: no problems found", utcnow())
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
