"""The agent's small durable backup database, a SQLite file beside the spool.

Two tables:

- ``reports``: results that backup scripts push (``spbe-agent backup-report``), read by the
  ``reported`` check. Committed with ``synchronous=FULL`` before the command returns; the
  newest :data:`KEEP_REPORTS` per job are kept.
- ``job_state``: what the checks remember between collections: the newest good backup seen
  (reported even while the repository cannot be read), the last failure, the replica's age,
  and the last integrity check result (run in the background, read by the next collection).

One connection per operation: the CLI, the collector and the integrity threads may all use it
at the same time; ``BEGIN IMMEDIATE`` serialises the writers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agent.config import AgentConfig
from contract.report import IntegrityStatus

KEEP_REPORTS = 500
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job TEXT NOT NULL,
    reported_at REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('success', 'failure')),
    size_bytes INTEGER,
    duration_s REAL,
    destination TEXT,
    replica TEXT,
    checksum TEXT,
    message TEXT
);
CREATE INDEX IF NOT EXISTS reports_job_time ON reports(job, reported_at);
CREATE TABLE IF NOT EXISTS job_state (job TEXT PRIMARY KEY, state TEXT NOT NULL);
"""


class StoreError(Exception):
    """The backup database cannot be opened, read or written."""


class JobState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure_reason: str | None = None
    replica_last_success_at: datetime | None = None
    integrity: IntegrityStatus = IntegrityStatus.NOT_RUN
    integrity_checked_at: datetime | None = None
    integrity_message: str | None = None


@dataclass(frozen=True)
class PushedResult:
    """One result a backup script reported."""

    job: str
    status: Literal["success", "failure"]
    reported_at: datetime
    size_bytes: int | None = None
    duration_s: float | None = None
    destination: str | None = None
    replica: str | None = None
    checksum: str | None = None
    message: str | None = None


class BackupStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"backup database {self.path}: cannot open: {e}") from e
        try:
            if not self._ready:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                self._ready = True
            db.execute("PRAGMA synchronous=FULL")
            yield db
        except sqlite3.Error as e:
            raise StoreError(f"backup database {self.path}: {e}") from e
        finally:
            db.close()

    # --- pushed results ------------------------------------------------------------------

    def add_report(self, r: PushedResult) -> int:
        with self._conn() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT INTO reports(job, reported_at, status, size_bytes, duration_s, "
                    "destination, replica, checksum, message) VALUES (?,?,?,?,?,?,?,?,?)",
                    (r.job, r.reported_at.timestamp(), r.status, r.size_bytes, r.duration_s,
                     r.destination, r.replica, r.checksum, r.message))
                rid = int(cur.lastrowid or 0)
                db.execute("DELETE FROM reports WHERE job = ? AND id NOT IN (SELECT id FROM "
                           "reports WHERE job = ? ORDER BY reported_at DESC, id DESC LIMIT ?)",
                           (r.job, r.job, KEEP_REPORTS))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return rid

    def _one(self, sql: str, args: tuple[Any, ...]) -> PushedResult | None:
        with self._conn() as db:
            row = db.execute(
                "SELECT job, status, reported_at, size_bytes, duration_s, destination, replica, "
                "checksum, message FROM reports WHERE " + sql
                + " ORDER BY reported_at DESC, id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        return PushedResult(job=row[0], status=row[1],
                            reported_at=datetime.fromtimestamp(row[2], tz=UTC),
                            size_bytes=row[3], duration_s=row[4], destination=row[5],
                            replica=row[6], checksum=row[7], message=row[8])

    def last_report(self, job: str, status: str | None = None,
                    with_replica: bool = False) -> PushedResult | None:
        sql, args = "job = ?", [job]
        if status:
            sql += " AND status = ?"
            args.append(status)
        if with_replica:
            sql += " AND replica IS NOT NULL"
        return self._one(sql, tuple(args))

    def count_reports(self, job: str, status: str = "success") -> int:
        with self._conn() as db:
            row = db.execute("SELECT count(*) FROM reports WHERE job = ? AND status = ?",
                             (job, status)).fetchone()
        return int(row[0])

    # --- remembered state ----------------------------------------------------------------

    def load_state(self, job: str) -> JobState:
        with self._conn() as db:
            row = db.execute("SELECT state FROM job_state WHERE job = ?", (job,)).fetchone()
        if row is None:
            return JobState()
        try:
            return JobState.model_validate_json(row[0])
        except ValidationError:
            return JobState()  # unreadable state is forgotten, not fatal

    def update_state(self, job: str, **changes: Any) -> JobState:
        """Change some fields of a job's state atomically (other writers keep theirs)."""
        with self._conn() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT state FROM job_state WHERE job = ?", (job,)).fetchone()
                try:
                    old = JobState.model_validate_json(row[0]) if row else JobState()
                except ValidationError:
                    old = JobState()
                new = old.model_copy(update=changes)
                new = JobState.model_validate(new.model_dump())
                db.execute("INSERT INTO job_state(job, state) VALUES (?, ?) ON CONFLICT(job) "
                           "DO UPDATE SET state = excluded.state", (job, new.model_dump_json()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return new


def store_path(cfg: AgentConfig) -> Path:
    """The backup database of an agent: ``backups.sqlite`` beside its spool."""
    return cfg.spool.path.parent / "backups.sqlite"
