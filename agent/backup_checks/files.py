"""``files``: the newest regular file matching a glob is the last backup (dumps, tarballs).

Found: its mtime (last success), size, the number of matching files; optionally its SHA-256,
verified against a ``FILE.sha256`` sidecar (``sha256sum`` format or the bare digest) or only
computed and reported. Hashes are cached per (path, size, mtime), so a file is read once.
A replica glob is looked at the same way; when both copies have a checksum and the same file
name, the DRC copy must hash the same as the primary.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

from agent.backup_checks.base import (
    BackupCheckError,
    CheckContext,
    Finding,
    Integrity,
    Location,
    RepositoryNotFound,
    ToolTimeout,
)
from agent.config import BackupJobCfg, FilesBackupJob
from contract.report import BackupRunStatus, IntegrityStatus, utcnow

SIDECAR = ".sha256"
_GLOB_CHARS = re.compile(r"[*?\[]")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_CHUNK = 1024 * 1024


def static_dir(pattern: str) -> Path:
    """The directory part of a glob before its first wildcard: it must exist."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for p in parts[:-1]:
        if _GLOB_CHARS.search(p):
            break
        fixed.append(p)
    return Path(*fixed) if fixed else Path("/")


def sha256_file(path: str, deadline: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            if time.monotonic() > deadline:
                raise TimeoutError
    return h.hexdigest()


def read_sidecar(path: str) -> str:
    """The digest in ``path`` + ``.sha256``; raises ValueError naming the problem."""
    side = path + SIDECAR
    try:
        text = Path(side).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise ValueError(f"checksum file {side} is missing") from None
    except OSError as e:
        raise ValueError(f"checksum file {side} cannot be read: {e.strerror}") from e
    token = text.split()[0] if text.split() else ""
    if not _HEX64.match(token):
        raise ValueError(f"checksum file {side} does not hold a SHA-256 (64 hex digits)")
    return token.lower()


class FilesCheck:
    type = "files"

    def inspect(self, job: BackupJobCfg, where: Location, ctx: CheckContext) -> Finding:
        assert isinstance(job, FilesBackupJob)
        pattern = where.path or job.path
        base = static_dir(pattern)
        if not base.is_dir():
            raise RepositoryNotFound(f"directory {base} does not exist (glob {pattern})")
        if not os.access(base, os.R_OK | os.X_OK):
            raise BackupCheckError(f"directory {base} is not readable by the agent")
        deadline = time.monotonic() + job.timeout_s
        matches: list[tuple[int, str, int]] = []
        for name in glob.iglob(pattern, recursive=True):
            if time.monotonic() > deadline:
                raise ToolTimeout(f"listing {pattern} took longer than {job.timeout_s:g} s")
            if name.endswith(SIDECAR):
                continue
            try:
                st = os.stat(name)
            except OSError:
                continue  # vanished or unreadable between glob and stat
            if stat.S_ISREG(st.st_mode):
                matches.append((st.st_mtime_ns, name, st.st_size))
        if not matches:
            return Finding(status=BackupRunStatus.NEVER_RUN, item_count=0,
                           failure_reason=f"no file matches {pattern}")
        matches.sort()
        mtime_ns, newest, size = matches[-1]
        at = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
        if size == 0:
            good = [m for m in matches if m[2] > 0]
            return Finding(status=BackupRunStatus.FAILED, item_count=len(matches), size_bytes=0,
                           item_name=os.path.basename(newest), failure_at=at,
                           failure_reason=f"newest backup file {newest} is empty (0 bytes)",
                           error_type="empty",
                           last_success_at=datetime.fromtimestamp(good[-1][0] / 1e9, tz=UTC)
                           if good else None)
        checksum, integrity = self._checksum(job, newest, size, mtime_ns, ctx)
        return Finding(status=BackupRunStatus.SUCCESS, last_success_at=at,
                       item_count=len(matches), size_bytes=size, checksum_sha256=checksum,
                       item_name=os.path.basename(newest), integrity=integrity)

    def _checksum(self, job: FilesBackupJob, path: str, size: int, mtime_ns: int,
                  ctx: CheckContext) -> tuple[str | None, Integrity | None]:
        if job.checksum == "none":
            return None, None
        key = (path, size, mtime_ns)
        with ctx.lock:
            digest = ctx.hashes.get(key)
        if digest is None:
            try:
                digest = sha256_file(path, time.monotonic() + job.timeout_s)
            except TimeoutError:
                return None, Integrity(IntegrityStatus.ERROR, f"hashing {path} took longer "
                                       f"than {job.timeout_s:g} s", utcnow())
            except OSError as e:
                return None, Integrity(IntegrityStatus.ERROR,
                                       f"cannot read {path}: {e.strerror}", utcnow())
            with ctx.lock:
                if len(ctx.hashes) > 4096:
                    ctx.hashes.clear()
                ctx.hashes[key] = digest
        if job.checksum == "compute":
            return digest, None
        try:
            expected = read_sidecar(path)
        except ValueError as e:
            return digest, Integrity(IntegrityStatus.ERROR, str(e), utcnow())
        if expected != digest:
            return digest, Integrity(IntegrityStatus.FAILED,
                                     f"checksum mismatch: {path} has SHA-256 {digest[:16]}…, "
                                     f"{path}{SIDECAR} says {expected[:16]}…", utcnow())
        return digest, Integrity(IntegrityStatus.OK, f"SHA-256 of {path} matches "
                                 f"{os.path.basename(path)}{SIDECAR}", utcnow())

    def verify(self, job: BackupJobCfg, ctx: CheckContext) -> Integrity | None:
        return None  # checksums are verified by inspect, whenever the newest file changes

    def reconcile(self, primary: Finding, replica: Finding) -> Integrity | None:
        """The DRC copy of the newest file must hash the same as the primary."""
        if not (primary.checksum_sha256 and replica.checksum_sha256
                and primary.item_name and primary.item_name == replica.item_name):
            return None
        if primary.checksum_sha256 != replica.checksum_sha256:
            return Integrity(IntegrityStatus.FAILED,
                             f"DRC copy of {primary.item_name} differs from the primary "
                             f"(SHA-256 {replica.checksum_sha256[:16]}… vs "
                             f"{primary.checksum_sha256[:16]}…)", utcnow())
        return Integrity(IntegrityStatus.OK, f"DRC copy of {primary.item_name} matches the "
                         "primary", utcnow())
