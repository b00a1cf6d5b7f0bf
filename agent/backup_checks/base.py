"""What every backup check type shares: where a copy lives, what a look at it found, errors.

A check type (``files``, ``restic``, ``borg``, ``reported``) implements :class:`BackupCheck`.
``inspect`` is the cheap look (newest snapshot, size, count) done every collection;
``verify`` is the slow integrity check (``restic check``, ``borg check``) run on its own
interval. Both raise :class:`BackupCheckError` (never anything else for an expected failure);
the collector turns that into a ``failed`` observation and goes on with the next job.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from agent.config import BackupJobCfg, SecretRef
from contract.configfile import ConfigError
from contract.report import BackupRunStatus, IntegrityStatus

if TYPE_CHECKING:
    from agent.backup_checks.store import BackupStore

Role = Literal["primary", "replica"]


class BackupCheckError(Exception):
    """A backup location could not be read. ``reason`` is safe to report (no secrets)."""

    error_type = "tool_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:1024]


class ToolMissing(BackupCheckError):
    error_type = "tool_missing"


class ToolTimeout(BackupCheckError):
    error_type = "timeout"


class AuthFailed(BackupCheckError):
    error_type = "auth"


class RepositoryNotFound(BackupCheckError):
    error_type = "not_found"


class RepositoryLocked(BackupCheckError):
    error_type = "locked"


class BadOutput(BackupCheckError):
    error_type = "bad_output"


class SecretUnavailable(BackupCheckError):
    error_type = "config"


@dataclass(frozen=True)
class Location:
    """One copy of a job's backups: the primary or its DRC replica."""

    role: Role
    repository: str | None = None       # restic / borg
    path: str | None = None             # files: glob
    password: SecretRef | None = None   # restic / borg (replica may override the job's)

    @property
    def label(self) -> str:
        return "replica" if self.role == "replica" else "repository"


@dataclass(frozen=True)
class Integrity:
    status: IntegrityStatus
    message: str | None = None
    checked_at: datetime | None = None


@dataclass(frozen=True)
class Finding:
    """What one look at one location found.

    ``last_success_at`` is the newest good backup this look saw (None: unknown, e.g. the
    check failed); ``failure_at``/``failure_reason`` describe the newest failure when the
    location records failures (reported jobs) or the newest backup is bad (an empty file).
    """

    status: BackupRunStatus
    last_success_at: datetime | None = None
    item_count: int | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    checksum_sha256: str | None = None
    item_name: str | None = None           # newest file / snapshot id / archive name
    failure_at: datetime | None = None
    failure_reason: str | None = None
    error_type: str | None = None
    destination: str | None = None         # when the location itself says (reported jobs)
    integrity: Integrity | None = None     # when the look verifies too (files checksums)


@dataclass
class CheckContext:
    """Shared, long-lived state of the backup checks of one agent."""

    state_dir: Path                        # caches of restic/borg, beside the spool
    store: BackupStore
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (path, size, mtime_ns) -> sha256; snapshot/archive id -> (size, count, duration)
    hashes: dict[tuple[str, int, int], str] = field(default_factory=dict)
    stats: dict[str, tuple[int | None, int | None, float | None]] = field(default_factory=dict)

    def cache_dir(self, tool: str, job: str, role: Role) -> Path:
        d = self.state_dir / tool / job / role
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        return d


class BackupCheck(Protocol):
    type: str

    def inspect(self, job: BackupJobCfg, where: Location, ctx: CheckContext) -> Finding:
        """Look at one location. Raises :class:`BackupCheckError` when it cannot be read."""
        ...

    def verify(self, job: BackupJobCfg, ctx: CheckContext) -> Integrity | None:
        """The slow integrity check of the primary location; None if the type has none or
        the job does not ask for it. Never raises: a check that cannot run is ``error``."""
        ...

    def reconcile(self, primary: Finding, replica: Finding) -> Integrity | None:
        """Compare the DRC copy with the primary where the type can (file checksums)."""
        ...


def secret_value(ref: SecretRef, what: str) -> str:
    try:
        return ref.value(what)
    except ConfigError as e:
        raise SecretUnavailable(str(e)) from e


def locations(job: BackupJobCfg) -> tuple[Location, Location | None]:
    """The primary location of a job and its replica (None when no replica is declared;
    a reported job's replica is whatever its reports name with ``--replica``)."""
    repo = getattr(job, "repository", None)
    path = getattr(job, "path", None)
    primary = Location(role="primary", repository=repo, path=path)
    r = job.replica
    if r is None:
        return primary, (Location(role="replica") if job.type == "reported" else None)
    return primary, Location(role="replica", repository=r.repository, path=r.path,
                             password=r.password)
