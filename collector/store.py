"""The data-access layer: every SQL statement the collector and the dashboard API run.

One :class:`Store` over one SQLAlchemy engine (SQLite file or PostgreSQL). Ingest of a report
is one transaction: the report ledger row, agent/host/probe state, state transitions and the
metric outbox rows commit together or not at all.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Engine, Row, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from collector import backups, inventory
from collector.compliance import server_scans
from collector.db import (
    agents,
    api_keys,
    collector_counters,
    hosts,
    is_sqlite,
    outbox,
    outbox_failed,
    pds,
    probe_targets,
    reports,
    state_transitions,
)
from collector.metrics import report_lines
from contract.report import CODE_PATTERN, Heartbeat, HostFacts, ProbeResult, Report

# statements built once: the ingest hot path only binds values
_SELECT_TARGETS = (select(probe_targets.c.id, probe_targets.c.name, probe_targets.c.state,
                          probe_targets.c.last_checked)
                   .where(probe_targets.c.agent_pk == bindparam("agent_pk")))
_UPDATE_TARGET = (update(probe_targets).where(probe_targets.c.id == bindparam("_id"))
                  .values(state=bindparam("_state"),
                          state_since=func.coalesce(bindparam("_since"),
                                                    probe_targets.c.state_since),
                          resolved=func.coalesce(
                              bindparam("_resolved", type_=JSON(none_as_null=True)),
                              probe_targets.c.resolved),
                          resolved_at=func.coalesce(bindparam("_resolved_at"),
                                                    probe_targets.c.resolved_at)))


_CODE_RE = re.compile(CODE_PATTERN)


def _check_code(value: str, what: str) -> None:
    if not (len(value) <= 64 and _CODE_RE.fullmatch(value)):
        raise StoreError(f"{what} {value!r} is not valid: 1 to 64 letters, digits, '_', '.' "
                         f"or '-', starting with a letter or digit (reports carry it as is)")


class Role(StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"
    PD_VIEWER = "pd-viewer"


AUTH_CACHE_S = 30.0


class StoreError(Exception):
    """A request the store refuses (unknown PD, duplicate name, ...); safe to show."""


@dataclass(frozen=True)
class AgentAuth:
    pk: int
    agent_id: str
    pd_id: int
    pd_code: str


@dataclass(frozen=True)
class KeyAuth:
    name: str
    role: Role
    pd_id: int | None
    pd_code: str | None


@dataclass(frozen=True)
class IngestResult:
    duplicate: bool
    points: int


def secret_hash(secret: str) -> str:
    """Tokens and keys are 256-bit random strings: a plain SHA-256 is the right hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer: serialise writers in-process instead of meeting SQLITE_BUSY.
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite(engine) else contextlib.nullcontext())
        # SQLite: concurrent reports are committed together (one fsync per group)
        self._committer = _GroupCommitter(self) if is_sqlite(engine) else None
        self._auth_cache: dict[str, tuple[float, AgentAuth]] = {}
        # called with (pd_id, report_id) inside the ingest transaction of each applied report
        # (compliance evaluation, which waits for the commit); must be quick and not raise
        self.report_listeners: list[Callable[[int, str], None]] = []

    def close(self) -> None:
        if self._committer is not None:
            self._committer.stop()

    @contextlib.contextmanager
    def tx(self) -> Iterator[Connection]:
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    # --- administration -------------------------------------------------------------------

    def add_pd(self, code: str, name: str) -> None:
        _check_code(code, "PD code")
        if not name.strip() or len(name) > 255:
            raise StoreError("PD name: 1 to 255 characters")
        try:
            with self.tx() as c:
                c.execute(insert(pds).values(code=code, name=name, created_at=time.time()))
        except IntegrityError as e:
            raise StoreError(f"PD {code!r} exists already") from e

    def _pd_id(self, c: Connection, code: str) -> int:
        pd_id = c.execute(select(pds.c.id).where(pds.c.code == code)).scalar()
        if pd_id is None:
            raise StoreError(f"unknown PD {code!r}")
        return int(pd_id)

    def add_agent(self, agent_id: str, pd_code: str) -> str:
        """Register an agent bound to one PD; returns its token (shown once, stored hashed)."""
        _check_code(agent_id, "agent id")
        token = new_secret("spbe_agent")
        try:
            with self.tx() as c:
                c.execute(insert(agents).values(agent_id=agent_id, pd_id=self._pd_id(c, pd_code),
                                                token_hash=secret_hash(token), revoked=False,
                                                created_at=time.time()))
        except IntegrityError as e:
            raise StoreError(f"agent {agent_id!r} exists already") from e
        return token

    def add_api_key(self, name: str, role: Role, pd_code: str | None) -> str:
        if (role is Role.PD_VIEWER) != (pd_code is not None):
            raise StoreError("a pd-viewer key needs --pd; admin and engineer keys take none")
        key = new_secret("spbe_key")
        try:
            with self.tx() as c:
                pd_id = self._pd_id(c, pd_code) if pd_code else None
                c.execute(insert(api_keys).values(name=name, key_hash=secret_hash(key),
                                                  role=role.value, pd_id=pd_id, revoked=False,
                                                  created_at=time.time()))
        except IntegrityError as e:
            raise StoreError(f"API key {name!r} exists already") from e
        return key

    def _update_one(self, table: Any, key: Any, value: str, what: str, **values: Any) -> None:
        with self.tx() as c:
            done = c.execute(update(table).where(key == value).values(**values))
        if done.rowcount == 0:
            raise StoreError(f"unknown {what} {value!r}")
        self._auth_cache.clear()

    def revoke_agent(self, agent_id: str) -> None:
        """The agent's token stops working (within ``AUTH_CACHE_S``); its data stays."""
        self._update_one(agents, agents.c.agent_id, agent_id, "agent", revoked=True)

    def rotate_agent_token(self, agent_id: str) -> str:
        """A new token for the agent (the old one stops working); returns it, shown once."""
        token = new_secret("spbe_agent")
        self._update_one(agents, agents.c.agent_id, agent_id, "agent",
                         token_hash=secret_hash(token), revoked=False)
        return token

    def revoke_api_key(self, name: str) -> None:
        self._update_one(api_keys, api_keys.c.name, name, "API key", revoked=True)

    def list_agents(self) -> list[dict[str, Any]]:
        """Agents with their PD and state; never the token hash."""
        with self.engine.connect() as c:
            rows = c.execute(select(agents.c.agent_id, pds.c.code.label("pd"),
                                    agents.c.revoked, agents.c.created_at,
                                    agents.c.last_seen_at, agents.c.agent_version)
                             .join(pds, pds.c.id == agents.c.pd_id)
                             .order_by(agents.c.agent_id)).all()
        return [dict(r._mapping) for r in rows]

    def list_api_keys(self) -> list[dict[str, Any]]:
        """API keys by name, role and PD; never the key hash."""
        with self.engine.connect() as c:
            rows = c.execute(select(api_keys.c.name, api_keys.c.role,
                                    pds.c.code.label("pd"), api_keys.c.revoked,
                                    api_keys.c.created_at)
                             .outerjoin(pds, pds.c.id == api_keys.c.pd_id)
                             .order_by(api_keys.c.name)).all()
        return [dict(r._mapping) for r in rows]

    def list_pds(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(select(pds.c.code, pds.c.name).order_by(pds.c.code)).all()
        return [dict(r._mapping) for r in rows]

    def agent_by_token(self, token: str) -> AgentAuth | None:
        """The agent a token belongs to. Positive answers are cached for ``AUTH_CACHE_S``
        (a revoked token stops working within that time); unknown tokens are never cached."""
        h = secret_hash(token)
        hit = self._auth_cache.get(h)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        found = self._agent_by_hash(h)
        if found is not None:
            if len(self._auth_cache) > 10_000:
                self._auth_cache.clear()
            self._auth_cache[h] = (time.monotonic() + AUTH_CACHE_S, found)
        return found

    def agent_by_token_cached(self, token: str) -> AgentAuth | None:
        """Cache-only lookup (no I/O), for the event loop's fast path."""
        hit = self._auth_cache.get(secret_hash(token))
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def _agent_by_hash(self, token_hash: str) -> AgentAuth | None:
        with self.engine.connect() as c:
            row = c.execute(
                select(agents.c.id, agents.c.agent_id, agents.c.pd_id, pds.c.code)
                .join(pds, pds.c.id == agents.c.pd_id)
                .where(agents.c.token_hash == token_hash, agents.c.revoked.is_(False))
            ).first()
        return AgentAuth(row[0], row[1], row[2], row[3]) if row else None

    def key_by_secret(self, key: str) -> KeyAuth | None:
        with self.engine.connect() as c:
            row = c.execute(
                select(api_keys.c.name, api_keys.c.role, api_keys.c.pd_id, pds.c.code)
                .outerjoin(pds, pds.c.id == api_keys.c.pd_id)
                .where(api_keys.c.key_hash == secret_hash(key), api_keys.c.revoked.is_(False))
            ).first()
        return KeyAuth(row[0], Role(row[1]), row[2], row[3]) if row else None

    # --- ingest ---------------------------------------------------------------------------

    def ingest(self, agent: AgentAuth, report: Report, received_at: float,
               clock_skew_s: float | None) -> IngestResult:
        """Apply one report atomically; returns once it is durably committed."""
        job = _IngestJob(agent, report, received_at, clock_skew_s)
        if self._committer is not None:
            return self._committer.submit(job).result()
        return self._ingest_alone(job)

    async def ingest_async(self, agent: AgentAuth, report: Report, received_at: float,
                           clock_skew_s: float | None) -> IngestResult:
        job = _IngestJob(agent, report, received_at, clock_skew_s)
        if self._committer is not None:
            return await asyncio.wrap_future(self._committer.submit(job))
        return await asyncio.to_thread(self._ingest_alone, job)

    def _ingest_in(self, c: Connection, job: _IngestJob) -> IngestResult:
        """The whole ingest of one report, inside the caller's transaction or savepoint."""
        report, rid = job.report, str(job.report.report_id)
        if c.execute(select(reports.c.report_id).where(reports.c.report_id == rid)).first():
            return IngestResult(duplicate=True, points=0)
        lines = report_lines(report)
        c.execute(insert(reports).values(
            report_id=rid, agent_pk=job.agent.pk, received_at=job.received_at,
            sent_at=report.sent_at.timestamp(), observations=len(report.observations),
            points=len(lines)))
        self._apply(c, job.agent, report, job.received_at, job.clock_skew_s)
        if lines:
            c.execute(insert(outbox), [{"line": ln, "created_at": job.received_at}
                                       for ln in lines])
        return IngestResult(duplicate=False, points=len(lines))

    def _ingest_alone(self, job: _IngestJob) -> IngestResult:
        rid = str(job.report.report_id)
        try:
            with self.tx() as c:
                return self._ingest_in(c, job)
        except IntegrityError:
            # the same report committed concurrently by another request/collector
            with self.engine.connect() as c:
                if c.execute(select(reports.c.report_id)
                             .where(reports.c.report_id == rid)).first():
                    return IngestResult(duplicate=True, points=0)
            raise

    def _apply(self, c: Connection, agent: AgentAuth, report: Report, received_at: float,
               clock_skew_s: float | None) -> None:
        values: dict[str, Any] = {"last_seen_at": received_at,
                                  "last_report_id": str(report.report_id)}
        if clock_skew_s is not None:
            values["clock_skew_s"] = clock_skew_s
        probes: list[ProbeResult] = []
        for obs in report.observations:
            if isinstance(obs, Heartbeat):
                values.update(agent_version=obs.agent_version, spool_pending=obs.spool_pending,
                              spool_dropped_total=obs.spool_dropped_total,
                              spool_rejected_total=obs.spool_rejected_total)
            elif isinstance(obs, HostFacts):
                self._upsert_host(c, agent, obs)
            elif isinstance(obs, ProbeResult):
                probes.append(obs)
        c.execute(update(agents).where(agents.c.id == agent.pk).values(**values))
        if probes:
            self._apply_probes(c, agent, probes, str(report.report_id))
        inventory.apply_report(c, pd_id=agent.pd_id, agent_pk=agent.pk,
                               report_id=str(report.report_id),
                               observations=report.observations)
        for apply in (backups.apply_report, server_scans.apply_report):
            apply(c, pd_id=agent.pd_id, agent_pk=agent.pk, report_id=str(report.report_id),
                  observations=report.observations)
        for listener in self.report_listeners:
            listener(agent.pd_id, str(report.report_id))

    def _upsert_host(self, c: Connection, agent: AgentAuth, h: HostFacts) -> None:
        ts = h.observed_at.timestamp()
        values = dict(os=h.os, kernel=h.kernel, uptime_s=h.uptime_s, server_mode=h.server_mode,
                      addresses=[a.model_dump() for a in h.addresses],
                      routes=[r.model_dump() for r in h.routes], last_seen=ts)
        done = c.execute(update(hosts).where(hosts.c.agent_pk == agent.pk,
                                             hosts.c.hostname == h.hostname).values(**values))
        if done.rowcount == 0:
            c.execute(insert(hosts).values(pd_id=agent.pd_id, agent_pk=agent.pk,
                                           hostname=h.hostname, first_seen=ts, **values))

    def _apply_probes(self, c: Connection, agent: AgentAuth, probes: list[ProbeResult],
                      rid: str) -> None:
        """Probe state for a whole report: one read, then batched writes (executemany)."""
        known = {r.name: [r.id, r.state, r.last_checked]
                 for r in c.execute(_SELECT_TARGETS, {"agent_pk": agent.pk})}
        updates: list[dict[str, Any]] = []
        changes: list[dict[str, Any]] = []
        for p in sorted(probes, key=lambda o: o.observed_at):
            ts, state = p.observed_at.timestamp(), "up" if p.up else "down"
            common = {"kind": p.probe.value, "address": p.address, "last_rtt_ms": p.rtt_ms,
                      "last_error": p.error}
            resolved = list(p.resolved) or None
            resolved_at = ts if resolved else None
            row = known.get(p.target)
            if row is None:
                inserted = c.execute(insert(probe_targets).values(
                    pd_id=agent.pd_id, agent_pk=agent.pk, name=p.target, state=state,
                    state_since=ts, first_seen=ts, last_checked=ts, resolved=resolved,
                    resolved_at=resolved_at, **common))
                target_id = inserted.inserted_primary_key[0]  # type: ignore[index]
                known[p.target] = [target_id, state, ts]
                changes.append({"target_id": target_id, "state": state, "at": ts,
                                "report_id": rid})
                continue
            if ts < row[2]:
                continue  # older than the state we hold (metrics only)
            since = None
            if state != row[1]:
                since = ts
                changes.append({"target_id": row[0], "state": state, "at": ts, "report_id": rid})
            row[1], row[2] = state, ts
            updates.append({"_id": row[0], "last_checked": ts, "_state": state,
                            "_since": since, "_resolved": resolved,
                            "_resolved_at": resolved_at, **common})
        if updates:
            c.execute(_UPDATE_TARGET, updates)
        if changes:
            c.execute(insert(state_transitions), changes)

    # --- outbox ---------------------------------------------------------------------------

    def outbox_batch(self, limit: int) -> list[tuple[int, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(outbox.c.id, outbox.c.line).order_by(outbox.c.id)
                             .limit(limit)).all()
        return [(r[0], r[1]) for r in rows]

    def outbox_done(self, ids: Sequence[int]) -> None:
        """InfluxDB accepted these lines: drop them and count them (same transaction, so the
        count is exact: a line counted twice would mean a point written twice)."""
        with self.tx() as c:
            deleted = 0
            for chunk in _chunks(ids, 900):
                deleted += c.execute(delete(outbox).where(outbox.c.id.in_(chunk))).rowcount
            self._count(c, "outbox_written", deleted)

    @staticmethod
    def _count(c: Connection, name: str, n: int) -> None:
        if n <= 0:
            return
        done = c.execute(update(collector_counters).where(collector_counters.c.name == name)
                         .values(value=collector_counters.c.value + n))
        if done.rowcount == 0:
            c.execute(insert(collector_counters).values(name=name, value=n))

    def counters(self) -> dict[str, int]:
        with self.engine.connect() as c:
            return {r.name: int(r.value) for r in c.execute(select(collector_counters))}

    def outbox_fail(self, batch: Sequence[tuple[int, str]], error: str) -> None:
        now = time.time()
        with self.tx() as c:
            c.execute(insert(outbox_failed), [{"id": i, "line": ln, "failed_at": now,
                                               "error": error[:2000]} for i, ln in batch])
            for chunk in _chunks([i for i, _ in batch], 900):
                c.execute(delete(outbox).where(outbox.c.id.in_(chunk)))

    def outbox_depth(self) -> tuple[int, int]:
        with self.engine.connect() as c:
            pending = c.execute(select(func.count()).select_from(outbox)).scalar_one()
            failed = c.execute(select(func.count()).select_from(outbox_failed)).scalar_one()
        return int(pending), int(failed)

    # --- queries for the dashboard API ------------------------------------------------------

    def rows(self, stmt: Any) -> Sequence[Row[Any]]:
        with self.engine.connect() as c:
            return c.execute(stmt).all()

    def scalar(self, stmt: Any) -> Any:
        with self.engine.connect() as c:
            return c.execute(stmt).scalar()

    def transitions(self, target_ids: Sequence[int],
                    end: float) -> dict[int, list[tuple[float, str]]]:
        out: dict[int, list[tuple[float, str]]] = {i: [] for i in target_ids}
        for chunk in _chunks(list(target_ids), 900):
            for r in self.rows(select(state_transitions.c.target_id, state_transitions.c.at,
                                      state_transitions.c.state)
                               .where(and_(state_transitions.c.target_id.in_(chunk),
                                           state_transitions.c.at < end))
                               .order_by(state_transitions.c.target_id, state_transitions.c.at,
                                         state_transitions.c.id)):
                out[r.target_id].append((r.at, r.state))
        return out


@dataclass(frozen=True)
class _IngestJob:
    agent: AgentAuth
    report: Report
    received_at: float
    clock_skew_s: float | None


class _GroupCommitter:
    """Group commit for SQLite: one writer thread applies the reports that arrived together,
    each in its own savepoint (a failing report never touches the others), then commits once.
    A caller's future resolves only after that commit, so 2xx still means durably stored."""

    MAX_GROUP = 128

    def __init__(self, store: Store) -> None:
        self.store = store
        self.queue: queue.SimpleQueue[
            tuple[_IngestJob, concurrent.futures.Future[IngestResult]] | None] = \
            queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self.thread.start()

    def submit(self, job: _IngestJob) -> concurrent.futures.Future[IngestResult]:
        fut: concurrent.futures.Future[IngestResult] = concurrent.futures.Future()
        self.queue.put((job, fut))
        return fut

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < self.MAX_GROUP:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self.queue.put(None)
                    break
                group.append(nxt)
            self._commit(group)

    def _commit(self, group: list[tuple[_IngestJob,
                                        concurrent.futures.Future[IngestResult]]]) -> None:
        results: list[IngestResult | BaseException] = []
        try:
            with self.store.tx() as c:
                for job, _ in group:
                    sp = c.begin_nested()
                    try:
                        results.append(self.store._ingest_in(c, job))
                        sp.commit()
                    except Exception as e:
                        sp.rollback()
                        results.append(e)
        except Exception as e:  # the commit itself failed: nobody's report is stored
            for _, fut in group:
                fut.set_exception(e)
            return
        for (_, fut), res in zip(group, results, strict=True):
            if isinstance(res, BaseException):
                fut.set_exception(res)
            else:
                fut.set_result(res)


def _chunks(seq: Sequence[int], n: int) -> Iterator[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]
