"""Durable on-disk spool: every report is committed here before it is shipped.

SQLite in WAL mode with ``synchronous=FULL``: a report the spool has accepted survives a crash,
``kill -9`` or power loss. Reports leave the spool only when the collector acknowledged them
(or rejected them for good, then they are moved to ``rejected`` and counted). The spool is
bounded by size and age; what is dropped to respect the bound is dropped oldest first and
counted, and the count travels in the next heartbeat.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    report_id TEXT PRIMARY KEY,       -- UUIDv7: text order is time order
    created_at REAL NOT NULL,
    body BLOB NOT NULL,               -- gzip'd JSON, exactly what is sent
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS rejected (
    report_id TEXT PRIMARY KEY,
    rejected_at REAL NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class SpoolItem:
    report_id: str
    body: bytes
    attempts: int


@dataclass(frozen=True)
class SpoolStats:
    pending: int
    pending_bytes: int
    dropped_total: int
    rejected_total: int


class Spool:
    def __init__(self, path: Path, *, max_bytes: int, max_age_s: float,
                 max_rejected_bytes: int = 64 * 1024 * 1024) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._lock = threading.Lock()
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.max_rejected_bytes = max_rejected_bytes
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, report_id: str, body: bytes) -> None:
        """Commit one report durably, then enforce the bounds (oldest dropped first)."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute("INSERT OR IGNORE INTO spool(report_id, created_at, body) "
                            "VALUES (?, ?, ?)", (report_id, time.time(), body))
                self._enforce_bounds(cur, keep=report_id)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _enforce_bounds(self, cur: sqlite3.Cursor, keep: str) -> None:
        dropped = cur.execute("DELETE FROM spool WHERE created_at < ? AND report_id != ?",
                              (time.time() - self.max_age_s, keep)).rowcount
        dropped += self._drop_oldest(cur, "spool", "report_id", self.max_bytes, keep)
        if dropped:
            self._bump(cur, "dropped", dropped)

    @staticmethod
    def _drop_oldest(cur: sqlite3.Cursor, table: str, order: str, max_bytes: int,
                     keep: str) -> int:
        """Delete ``table``'s oldest rows (by ``order``) until its bodies fit ``max_bytes``,
        never ``keep``; returns how many went."""
        total = cur.execute(f"SELECT COALESCE(SUM(LENGTH(body)), 0) FROM {table}").fetchone()[0]
        dropped = 0
        while total > max_bytes:
            row = cur.execute(f"SELECT report_id, LENGTH(body) FROM {table} "
                              f"WHERE report_id != ? ORDER BY {order} LIMIT 1", (keep,)).fetchone()
            if row is None:
                break
            cur.execute(f"DELETE FROM {table} WHERE report_id = ?", (row[0],))
            total -= row[1]
            dropped += 1
        return dropped

    @staticmethod
    def _bump(cur: sqlite3.Cursor, name: str, n: int) -> None:
        cur.execute("INSERT INTO counters(name, value) VALUES (?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, n))

    def peek(self, limit: int) -> list[SpoolItem]:
        """The oldest ``limit`` reports, in creation order."""
        with self._lock:
            rows = self._db.execute("SELECT report_id, body, attempts FROM spool "
                                    "ORDER BY report_id LIMIT ?", (limit,)).fetchall()
        return [SpoolItem(r[0], r[1], r[2]) for r in rows]

    def ack(self, report_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM spool WHERE report_id = ?", (report_id,))

    def attempt_failed(self, report_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE spool SET attempts = attempts + 1 WHERE report_id = ?",
                             (report_id,))

    def reject(self, report_id: str, status: int, reason: str) -> None:
        """The collector refused this report for good: keep it aside, count it, stop retrying."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute("INSERT OR REPLACE INTO rejected(report_id, rejected_at, status, "
                            "reason, body) SELECT report_id, ?, ?, ?, body FROM spool "
                            "WHERE report_id = ?", (time.time(), status, reason[:2000], report_id))
                cur.execute("DELETE FROM spool WHERE report_id = ?", (report_id,))
                self._bump(cur, "rejected", 1)
                self._bound_rejected(cur, keep=report_id)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _bound_rejected(self, cur: sqlite3.Cursor, keep: str) -> None:
        dropped = self._drop_oldest(cur, "rejected", "rejected_at, report_id",
                                    self.max_rejected_bytes, keep)
        if dropped:
            self._bump(cur, "rejected_dropped", dropped)

    def rejected(self) -> list[dict[str, object]]:
        """Reports set aside: id, when, the collector's status and reason, size."""
        with self._lock:
            rows = self._db.execute("SELECT report_id, rejected_at, status, reason, "
                                    "LENGTH(body) FROM rejected ORDER BY report_id").fetchall()
        return [{"report_id": r[0], "rejected_at": r[1], "status": r[2], "reason": r[3],
                 "bytes": r[4]} for r in rows]

    def requeue(self, report_ids: list[str] | None = None) -> int:
        """Put reports set aside back in the spool (all when ``report_ids`` is None), with
        their attempts reset; returns how many."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                ids = ([r[0] for r in cur.execute("SELECT report_id FROM rejected")]
                       if report_ids is None else report_ids)
                moved = 0
                for rid in ids:
                    moved += cur.execute(
                        "INSERT OR IGNORE INTO spool(report_id, created_at, body) "
                        "SELECT report_id, ?, body FROM rejected WHERE report_id = ?",
                        (time.time(), rid)).rowcount
                    cur.execute("DELETE FROM rejected WHERE report_id = ?", (rid,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        return moved

    def stats(self) -> SpoolStats:
        with self._lock:
            pending, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM spool").fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return SpoolStats(pending, size, counters.get("dropped", 0), counters.get("rejected", 0))
