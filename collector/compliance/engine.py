"""The compliance engine: evaluate the rules, keep the violations and their lifecycle.

Evaluation runs on ingest (for the PD of each report, right after the report is committed)
and on a schedule (every PD, every ``evaluate_interval_s``; time-based conditions such as an
overdue backup or a silent agent need it, and it repairs anything an ingest evaluation
missed). One pass: read the state of the PDs (:class:`~collector.compliance.state.State`), run
every rule of the region profile, then reconcile the findings with the stored violations in
one transaction:

- a finding with no active violation opens one (linked to the previous, resolved occurrence
  of the same PD, obligation and subject, if any);
- a finding with an active violation refreshes its ``last_seen``, evidence and severity;
- an active violation no finding reports any more is resolved (evidence cleared);
- a waiver past its expiry returns the violation to ``open``.

Lifecycle: open -> acknowledged -> resolved, or waived (reason, who, expiry) from open or
acknowledged; a waived violation is resolved when its evidence clears and re-opened when the
waiver expires. Severity is ``warning`` before the region's enforcement start.

Several collectors may evaluate at once: the active occurrence is unique in the database
(``open_key``), the loser of an insert race treats the row as existing, and transitions are
conditional updates whose row count names the single winner (who writes the history).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from collector.compliance.profile import (
    ComplianceCfg,
    Obligation,
    RegionProfile,
    Severity,
    SiteCfg,
)
from collector.compliance.rules import REGISTRY, Context, Finding, Rule
from collector.compliance.state import State
from collector.db import reports
from collector.db_compliance import violation_events, violations
from collector.store import Store

log = logging.getLogger(__name__)

ACTIVE = ("open", "acknowledged", "waived")


class ComplianceError(Exception):
    """A request about a violation that cannot be done; the message is safe to show."""


class NotFound(ComplianceError):
    pass


class Conflict(ComplianceError):
    pass


@dataclass
class EvalStats:
    findings: int = 0
    opened: int = 0
    refreshed: int = 0
    resolved: int = 0
    waivers_expired: int = 0
    conflicts: int = 0          # opened meanwhile by another collector
    seconds: float = 0.0
    reconcile_seconds: float = 0.0
    rule_seconds: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _norm(value: Any) -> Any:
    """JSON as the database gives it back (tuples -> lists, keys -> str, floats kept)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def open_key(obligation: str, subject: str) -> str:
    return f"{obligation}|{subject}"[:540]


def _event(vid: int, at: float, event: str, actor: str | None = None,
           detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"violation_id": vid, "at": at, "event": event, "actor": actor, "detail": detail}


class ComplianceEngine:
    def __init__(self, store: Store, profile: RegionProfile, site: SiteCfg, *,
                 rules: Mapping[Obligation, Rule] | None = None) -> None:
        self.store, self.profile, self.site = store, profile, site
        registry = REGISTRY if rules is None else rules
        self.rules = {ob: registry[ob] for ob in profile.obligations if ob in registry}
        self._cache: dict[str, Any] = {}

    # --- evaluation ---------------------------------------------------------------------

    def severity(self, obligation: Obligation, now: float) -> Severity:
        if not self.profile.enforced_at(now):
            return Severity.WARNING
        cfg = self.profile.obligations[obligation]
        return cfg.severity or self.rules[obligation].default_severity

    def findings(self, conn: Connection, now: float, pd_ids: Iterable[int] | None = None,
                 obligations: Iterable[Obligation] | None = None,
                 stats: EvalStats | None = None) -> dict[Obligation, list[Finding]]:
        """Run the rules; a rule that fails is logged and left out (its violations are then
        neither opened nor resolved by this pass)."""
        stats = stats if stats is not None else EvalStats()
        state = State(conn, now, pd_ids)
        ctx = Context(now, self.profile, self.site, state, self._cache)
        wanted = set(obligations) if obligations is not None else set(self.rules)
        out: dict[Obligation, list[Finding]] = {}
        for ob, rule in self.rules.items():
            if ob not in wanted:
                continue
            t0 = time.perf_counter()
            try:
                found = list(rule.evaluate(ctx, self.profile.params(ob)))
            except Exception as e:  # one broken rule must not stop the others
                log.exception("compliance rule %s failed", ob.value)
                stats.errors[ob.value] = f"{type(e).__name__}: {e}"[:500]
                continue
            finally:
                stats.rule_seconds[ob.value] = round(time.perf_counter() - t0, 6)
            seen: dict[tuple[int, str], Finding] = {}
            for f in found:
                if f.pd_id in state.pds:
                    seen.setdefault((f.pd_id, f.subject), f)
            out[ob] = list(seen.values())
            stats.findings += len(out[ob])
        return out

    def evaluate(self, now: float | None = None, pd_ids: Iterable[int] | None = None,
                 obligations: Iterable[Obligation] | None = None) -> EvalStats:
        """One pass over ``pd_ids`` (None: every PD): rules, then reconciliation."""
        now = time.time() if now is None else now
        scope = None if pd_ids is None else frozenset(pd_ids)
        stats = EvalStats()
        t0 = time.perf_counter()
        with self.store.engine.connect() as conn:
            found = self.findings(conn, now, scope, obligations, stats)
        t1 = time.perf_counter()
        with self.store.tx() as c:
            self._reconcile(c, now, found, scope, stats,
                            full=scope is None and obligations is None)
            if scope is None:
                self._expire_waivers(c, now, stats)
        stats.reconcile_seconds = time.perf_counter() - t1
        stats.seconds = time.perf_counter() - t0
        return stats

    def _reconcile(self, c: Connection, now: float, found: dict[Obligation, list[Finding]],
                   scope: frozenset[int] | None, stats: EvalStats, *, full: bool) -> None:
        v = violations.c
        judged = [ob.value for ob in found]
        cond = [v.status.in_(ACTIVE)]
        if scope is not None:
            cond.append(v.pd_id.in_(sorted(scope)))
        if not full:
            cond.append(v.obligation.in_(judged))
        active = {(r.pd_id, r.obligation, r.subject): r for r in c.execute(
            select(v.id, v.pd_id, v.obligation, v.subject, v.status, v.severity, v.evidence,
                   v.messages).where(and_(*cond)))}
        new_rows: list[dict[str, Any]] = []
        refresh: list[dict[str, Any]] = []
        seen: list[int] = []
        events: list[dict[str, Any]] = []
        for ob, items in found.items():
            sev = self.severity(ob, now).value
            cfg = self.profile.obligations[ob]
            for f in items:
                raw_msgs = [r.to_json() for r in f.reasons]
                row = active.pop((f.pd_id, ob.value, f.subject), None)
                if row is None:
                    ev, msgs = _norm(f.evidence), _norm(raw_msgs)
                    new_rows.append(dict(
                        pd_id=f.pd_id, obligation=ob.value, subject_kind=f.subject_kind.value,
                        subject=f.subject[:512], open_key=open_key(ob.value, f.subject),
                        status="open", severity=sev, region=self.profile.key,
                        article=cfg.article, regulation=self.profile.regulation.short,
                        messages=msgs, evidence=ev, first_seen=now, last_seen=now,
                        updated_at=now, occurrence=1, previous_id=None))
                    continue
                seen.append(row.id)
                values: dict[str, Any] = {}
                # compare as built first; normalise (tuples -> lists ...) only when different
                if (row.messages != raw_msgs and row.messages != _norm(raw_msgs)) or (
                        row.evidence != f.evidence and row.evidence != _norm(f.evidence)):
                    values.update(evidence=_norm(f.evidence), messages=_norm(raw_msgs),
                                  updated_at=now)
                if row.severity != sev:
                    values.update(severity=sev, updated_at=now)
                    events.append(_event(row.id, now, "severity_changed",
                                         detail={"from": row.severity, "to": sev}))
                if values:
                    refresh.append({"_id": row.id, **values})
        for i in range(0, len(seen), 500):
            c.execute(update(violations).where(violations.c.id.in_(seen[i:i + 500]))
                      .values(last_seen=now))
        stats.refreshed += len(seen)
        if refresh:
            self._refresh(c, refresh)
        if new_rows:
            self._link_previous(c, new_rows)
            self._insert_new(c, new_rows, events, stats, now)
        for (_pd, ob_value, _subject), row in active.items():
            known = ob_value in judged or (full and ob_value not in
                                           {o.value for o in self.rules})
            if not known:
                continue  # its rule failed this pass: neither open nor resolve
            resolution = "cleared" if ob_value in judged else "not_applicable"
            done = c.execute(update(violations).where(
                violations.c.id == row.id, violations.c.status.in_(ACTIVE)).values(
                status="resolved", open_key=None, resolved_at=now, resolution=resolution,
                updated_at=now))
            if done.rowcount:
                stats.resolved += 1
                events.append(_event(row.id, now, "resolved", detail={
                    "resolution": resolution, "previous_status": row.status}))
        if events:
            c.execute(insert(violation_events), events)

    def _refresh(self, c: Connection, rows: list[dict[str, Any]]) -> None:
        # one executemany per distinct column set
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(sorted(k for k in r if k != "_id")), []).append(r)
        for cols, items in groups.items():
            stmt = (update(violations).where(violations.c.id == bindparam("_id"))
                    .values({k: bindparam(k) for k in cols}))
            c.execute(stmt, items)

    def _link_previous(self, c: Connection, rows: list[dict[str, Any]]) -> None:
        """A returning violation is a new occurrence linked to the last resolved one."""
        v = violations.c
        pd_set = sorted({r["pd_id"] for r in rows})
        keys = {(r["pd_id"], r["obligation"], r["subject"]): r for r in rows}
        last: dict[tuple[int, str, str], tuple[int, int]] = {}
        subjects = sorted({k[2] for k in keys})
        narrow = [v.subject.in_(subjects)] if len(subjects) <= 500 else []
        for chunk in range(0, len(pd_set), 500):
            for r in c.execute(select(v.pd_id, v.obligation, v.subject, v.id, v.occurrence)
                               .where(v.pd_id.in_(pd_set[chunk:chunk + 500]),
                                      v.status == "resolved",
                                      v.obligation.in_(sorted({k[1] for k in keys})), *narrow)
                               .order_by(v.id)):
                k = (r.pd_id, r.obligation, r.subject)
                if k in keys:
                    last[k] = (r.id, r.occurrence)
        for k, (vid, occ) in last.items():
            keys[k]["previous_id"] = vid
            keys[k]["occurrence"] = occ + 1

    def _insert_new(self, c: Connection, rows: list[dict[str, Any]],
                    events: list[dict[str, Any]], stats: EvalStats, now: float) -> None:
        def opened(vid: int, r: dict[str, Any]) -> None:
            stats.opened += 1
            events.append(_event(vid, now, "opened", detail={
                "severity": r["severity"], "occurrence": r["occurrence"],
                "previous_id": r["previous_id"]}))

        stmt = insert(violations).returning(violations.c.id, violations.c.open_key,
                                            violations.c.pd_id)
        try:
            with c.begin_nested():
                got = c.execute(stmt, rows).all()
        except IntegrityError:
            got = []
            # another collector opened some of these at the same time: one by one
            for r in rows:
                try:
                    with c.begin_nested():
                        got += c.execute(stmt, [r]).all()
                except IntegrityError:
                    stats.conflicts += 1
                    c.execute(update(violations).where(
                        violations.c.pd_id == r["pd_id"],
                        violations.c.open_key == r["open_key"]).values(last_seen=now))
        by_key = {(r["pd_id"], r["open_key"]): r for r in rows}
        for vid, key, pd_id in got:
            opened(int(vid), by_key[(pd_id, key)])

    def _expire_waivers(self, c: Connection, now: float, stats: EvalStats) -> None:
        v = violations.c
        due = c.execute(select(v.id, v.waived_by, v.waiver_expires_at)
                        .where(v.status == "waived", v.waiver_expires_at <= now)).all()
        events = []
        for r in due:
            done = c.execute(update(violations).where(v.id == r.id, v.status == "waived")
                             .values(status="open", updated_at=now))
            if done.rowcount:
                stats.waivers_expired += 1
                events.append(_event(r.id, now, "waiver_expired", detail={
                    "waived_by": r.waived_by, "expired_at": r.waiver_expires_at}))
        if events:
            c.execute(insert(violation_events), events)


# --- lifecycle actions (API) --------------------------------------------------------------

def _get(c: Connection, vid: int) -> Any:
    row = c.execute(select(violations.c.id, violations.c.status, violations.c.pd_id)
                    .where(violations.c.id == vid)).first()
    if row is None:
        raise NotFound(f"no violation {vid}")
    return row


def acknowledge(c: Connection, vid: int, by: str, comment: str | None, now: float) -> None:
    row = _get(c, vid)
    if row.status != "open":
        raise Conflict(f"violation {vid} is {row.status}; only an open violation can be "
                       "acknowledged")
    done = c.execute(update(violations).where(violations.c.id == vid,
                                              violations.c.status == "open")
                     .values(status="acknowledged", acked_at=now, acked_by=by,
                             ack_comment=comment, updated_at=now))
    if not done.rowcount:
        raise Conflict(f"violation {vid} changed meanwhile; try again")
    c.execute(insert(violation_events).values(**_event(vid, now, "acknowledged", by,
                                                       {"comment": comment})))


def waive(c: Connection, vid: int, by: str, reason: str, expires_at: float, now: float,
          max_days: float) -> None:
    if expires_at <= now:
        raise Conflict("expires_at must be in the future")
    if expires_at - now > max_days * 86400:
        raise Conflict(f"a waiver may last at most {max_days:g} days")
    row = _get(c, vid)
    if row.status not in ACTIVE:
        raise Conflict(f"violation {vid} is {row.status}; only an active violation can be "
                       "waived")
    done = c.execute(update(violations).where(violations.c.id == vid,
                                              violations.c.status.in_(ACTIVE))
                     .values(status="waived", waived_at=now, waived_by=by,
                             waiver_reason=reason, waiver_expires_at=expires_at,
                             updated_at=now))
    if not done.rowcount:
        raise Conflict(f"violation {vid} changed meanwhile; try again")
    c.execute(insert(violation_events).values(**_event(vid, now, "waived", by, {
        "reason": reason, "expires_at": expires_at, "previous_status": row.status})))


# --- the background service -------------------------------------------------------------

class ComplianceService:
    """Evaluation threads of the collector: on ingest (PDs of committed reports, gathered for
    ``ingest_delay_s``) and the scheduled full pass. With no region profile it does nothing
    (backups and server scans are stored by ingest regardless)."""

    PENDING_GIVE_UP_S = 60.0

    def __init__(self, store: Store, cfg: ComplianceCfg) -> None:
        self.store, self.cfg = store, cfg
        profile = cfg.profile
        self.engine = ComplianceEngine(store, profile, cfg.site) if profile else None
        # report_id -> [pd_id, queued at, next check at] (monotonic)
        self._pending: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_full: EvalStats | None = None
        self.last_full_at: float | None = None
        self.last_error: str | None = None
        self.passes = 0

    def report_applied(self, pd_id: int, report_id: str) -> None:
        """Store listener, called inside the ingest transaction: only remembers the report;
        the PD is evaluated once the report is visible as committed."""
        if self.engine is None or not self.cfg.evaluate_on_ingest:
            return
        with self._lock:
            t = time.monotonic()
            self._pending[report_id] = [pd_id, t, t + self.cfg.ingest_delay_s]
        self._wake.set()

    def start(self, stop: threading.Event) -> None:
        if self.engine is None:
            return
        self._thread = threading.Thread(target=self.run, args=(stop,), name="compliance",
                                        daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def run(self, stop: threading.Event) -> None:
        assert self.engine is not None
        next_full = time.monotonic()
        failures = 0
        while not stop.is_set():
            now_m = time.monotonic()
            wait = max(0.0, next_full - now_m)
            with self._lock:
                due = min((p[2] for p in self._pending.values()), default=None)
            if due is not None:
                wait = min(wait, max(0.0, due - now_m))
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            if stop.is_set():
                break
            try:
                if time.monotonic() >= next_full:
                    self.last_full = self.engine.evaluate()
                    self.last_full_at = time.time()
                    next_full = time.monotonic() + self.cfg.evaluate_interval_s
                else:
                    self._evaluate_pending()
                self.passes += 1
                failures, self.last_error = 0, None
            except Exception as e:  # keep evaluating whatever happens; the next pass repairs
                failures += 1
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("compliance evaluation failed")
                stop.wait(min(60.0, 0.5 * 2 ** min(failures, 7)))

    def _evaluate_pending(self) -> None:
        assert self.engine is not None
        now_m = time.monotonic()
        with self._lock:
            ready = {rid: p[0] for rid, p in self._pending.items() if p[2] <= now_m}
        if not ready:
            return
        committed: set[str] = set()
        ids = sorted(ready)
        with self.store.engine.connect() as c:
            for i in range(0, len(ids), 500):
                committed |= {r[0] for r in c.execute(
                    select(reports.c.report_id).where(reports.c.report_id.in_(ids[i:i + 500])))}
        with self._lock:
            for rid in ready:
                p = self._pending.get(rid)
                if p is None:
                    continue
                if rid in committed or now_m - p[1] > self.PENDING_GIVE_UP_S:
                    del self._pending[rid]  # evaluated, or rolled back: never committed
                else:
                    p[2] = now_m + max(0.2, self.cfg.ingest_delay_s)  # not committed yet
        pd_ids = {ready[rid] for rid in committed}
        if pd_ids:
            self.engine.evaluate(pd_ids=pd_ids)
