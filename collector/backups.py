"""Backup monitoring, collector side: ``BackupStatus`` observations applied on ingest.

One ``backup_jobs`` row per agent and job holds the latest state (what BAK-1, BAK-2 and DC-3
read, and what ``/api/v1/backups`` shows); ``backup_history`` gets a row whenever what the job
reports changes (a new backup, a run outcome, the replica's newest copy, the integrity
result), so the history stays small although agents report every few minutes.

Everything runs in the caller's connection: a report's backup state commits together with
the report ledger row, or not at all. An observation older than the state held (a replayed
spool) only adds history.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from collector.db_compliance import backup_history, backup_jobs
from contract.report import BackupStatus


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _txt(value: str | None) -> str | None:
    """Text as the database can hold it (PostgreSQL refuses NUL characters)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


def apply_report(c: Connection, *, pd_id: int, agent_pk: int, report_id: str,
                 observations: Sequence[object]) -> int:
    """Apply a report's backup observations; returns how many there were."""
    obs = sorted((o for o in observations if isinstance(o, BackupStatus)),
                 key=lambda o: o.observed_at)
    for o in obs:
        _apply(c, pd_id, agent_pk, report_id, o)
    return len(obs)


def _state(o: BackupStatus) -> dict[str, Any]:
    replica = o.replica
    return dict(
        type=o.type.value, status=o.status.value, error_type=_txt(o.error_type),
        last_success_at=_ts(o.last_success_at), last_failure_at=_ts(o.last_failure_at),
        last_failure_reason=_txt(o.last_failure_reason), size_bytes=o.size_bytes,
        duration_s=o.duration_s, item_count=o.item_count, checksum_sha256=o.checksum_sha256,
        expected_interval_s=o.expected_interval_s, destination=_txt(o.destination),
        destination_ips=_json(list(o.destination_ips)),
        destination_error=_txt(o.destination_error),
        replica=None if replica is None else _json(replica.model_dump(mode="json")),
        replica_last_success_at=None if replica is None else _ts(replica.last_success_at),
        integrity=o.integrity.value, integrity_checked_at=_ts(o.integrity_checked_at),
        integrity_message=_txt(o.integrity_message))


_FINGERPRINT = ("status", "last_success_at", "size_bytes", "item_count", "checksum_sha256",
                "replica_last_success_at", "integrity")


def _apply(c: Connection, pd_id: int, agent_pk: int, rid: str, o: BackupStatus) -> None:
    ts = o.observed_at.timestamp()
    state = _state(o)
    row = c.execute(select(backup_jobs.c.id, backup_jobs.c.observed_at,
                           backup_jobs.c.last_success_at, backup_jobs.c.size_bytes,
                           backup_jobs.c.prev_size_bytes, backup_jobs.c.prev_success_at)
                    .where(backup_jobs.c.agent_pk == agent_pk, backup_jobs.c.job == o.job)
                    ).first()
    if row is None:
        res = c.execute(insert(backup_jobs).values(
            pd_id=pd_id, agent_pk=agent_pk, job=o.job, first_seen=ts, observed_at=ts,
            report_id=rid, prev_size_bytes=None, prev_success_at=None, **state))
        job_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    else:
        job_id = int(row.id)
        if ts >= row.observed_at:
            prev_size, prev_at = row.prev_size_bytes, row.prev_success_at
            new = state["last_success_at"]
            if new is not None and row.last_success_at is not None \
                    and new != row.last_success_at:
                # a newer backup than the one we held: that one becomes "the previous run"
                prev_size, prev_at = row.size_bytes, row.last_success_at
            c.execute(update(backup_jobs).where(backup_jobs.c.id == job_id).values(
                pd_id=pd_id, observed_at=ts, report_id=rid, prev_size_bytes=prev_size,
                prev_success_at=prev_at, **state))
    _history(c, job_id, ts, rid, state)


def _history(c: Connection, job_id: int, ts: float, rid: str, state: dict[str, Any]) -> None:
    last = c.execute(select(*(backup_history.c[k] for k in _FINGERPRINT),
                            backup_history.c.observed_at)
                     .where(backup_history.c.job_id == job_id,
                            backup_history.c.observed_at <= ts)
                     .order_by(backup_history.c.observed_at.desc()).limit(1)).first()
    if last is not None:
        if last.observed_at == ts:
            return
        if all(getattr(last, k) == state[k] for k in _FINGERPRINT):
            return
    c.execute(insert(backup_history).values(job_id=job_id, observed_at=ts, report_id=rid,
                                            **{k: state[k] for k in _FINGERPRINT}))
