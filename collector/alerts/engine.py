"""The alert engine: evaluation, dedup, flapping, maintenance, routing and escalation.

Each cycle reads the SQL state only (sources, open alerts, maintenance windows), so any number
of collectors may run it at once; every write that must happen once is guarded by the
database:

- raise: INSERT into ``alerts`` with ``open_key`` UNIQUE (one open alert per subject and
  condition); the loser of a race gets an IntegrityError and does nothing;
- resolve / escalate / acknowledge: conditional UPDATEs (``WHERE status ...``) whose row
  count tells the single winner, who then writes the history and queues the messages;
- messages: ``alert_notifications.dedup_key`` UNIQUE.

Flap suppression: a fault must last ``hold_down_s`` before it is alerted (a recovery within
the hold-down cancels it silently); a subject with ``flap_threshold`` down-onsets within
``flap_window_s`` gets one alert marked flapping that stays open until it is stable.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from collector.alerts import digest, maintenance, messages, routing
from collector.alerts.config import AlertsCfg, ChannelName, Condition, Severity
from collector.alerts.model import AlertInfo, Event, Finding, Status, Subject
from collector.alerts.routing import Recipient
from collector.alerts.sources import Context, Source, load_builtin
from collector.alerts.sqlutil import event_row, insert_ignore
from collector.compliance.profile import RegionProfile
from collector.db import pds
from collector.db_alerts import alert_events, alert_notifications, alert_pending, alerts
from collector.store import Store

log = logging.getLogger(__name__)


class AlertError(Exception):
    """A request about an alert that cannot be done; safe to show."""


class AlertNotFound(AlertError):
    pass


class AlertConflict(AlertError):
    pass


@dataclass
class EvalStats:
    raised: int = 0
    resolved: int = 0
    escalated: int = 0
    silenced: int = 0
    pending: int = 0
    errors: list[str] = field(default_factory=list)


def _condition(value: str) -> Condition | None:
    """A stored condition name (None for one this version does not know)."""
    try:
        return Condition(value)
    except ValueError:
        return None


def _digest(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:32]


class AlertEngine:
    def __init__(self, store: Store, cfg: AlertsCfg, *, sources: Sequence[Source] | None = None,
                 wake: threading.Event | None = None,
                 profile: RegionProfile | None = None) -> None:
        self.store, self.cfg, self.profile = store, cfg, profile
        self.sources = list(sources) if sources is not None else list(load_builtin())
        self.wake = wake or threading.Event()    # set when messages were queued
        self.last_error: str | None = None
        self.last_run_at: float | None = None

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.evaluate()
                if digest.maybe_queue(self.store, self.cfg, time.time()):
                    self.wake.set()
                self.last_error = None
            except Exception as e:  # keep evaluating whatever happens; the state is in SQL
                self.last_error = f"{type(e).__name__}: {e}"
                log.exception("alert evaluation failed")
            stop.wait(self.cfg.evaluate_interval_s)

    # --- one evaluation -----------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> EvalStats:
        now = time.time() if now is None else now
        stats = EvalStats()
        with self.store.engine.connect() as c:
            pd_rows = c.execute(select(pds.c.id, pds.c.code, pds.c.name)).all()
            pd_info = {r.id: (r.code, r.name) for r in pd_rows}
            ctx = Context(self.cfg, now, {r.id: r.code for r in pd_rows}, self.profile)
            windows = maintenance.load(c)
            findings: dict[str, Finding] = {}
            covered: set[Condition] = set()
            for src in self.sources:
                wanted = [cd for cd in src.conditions if self.cfg.conditions.get(cd).enabled]
                if not wanted:
                    continue
                try:
                    found = src.findings(c, ctx)
                except Exception as e:
                    stats.errors.append(f"{src.name}: {type(e).__name__}: {e}")
                    log.exception("alert source %s failed; its alerts stay as they are",
                                  src.name)
                    continue
                covered.update(wanted)
                for f in found:
                    if f.condition in wanted:
                        findings[f.key] = f
            open_rows = {r.open_key: r for r in
                         c.execute(select(alerts).where(alerts.c.open_key.is_not(None))).all()}
            pending = {r.key: r.first_seen for r in c.execute(select(alert_pending)).all()}

        new_pending: list[dict[str, Any]] = []
        for key, f in findings.items():
            row = open_rows.get(key)
            if row is not None:
                self._refresh(row, f, now)
                continue
            # the hold-down runs from the fault's start, or from when the engine first saw it
            # (sources without history), or from a manual resolve of the previous alert
            first_seen = pending.get(key)
            since = f.since if f.since is not None else (first_seen or now)
            hold_start = max(since, first_seen or since)
            hold = self.cfg.hold_down(f.condition)
            if not f.flapping and not (f.active and now - hold_start >= hold):
                stats.pending += 1
                if f.since is None and first_seen is None:
                    new_pending.append({"key": key, "first_seen": now})
                continue
            if maintenance.silencing(windows, f.subject_names, now) is not None:
                stats.silenced += 1
                continue
            if self._raise(f, since, now, pd_info):
                stats.raised += 1

        resolved: set[int] = set()
        for key, row in open_rows.items():
            if key in findings or _condition(row.condition) not in covered:
                continue
            if self._resolve(row, now, pd_info):
                stats.resolved += 1
                resolved.add(row.id)

        stale = [k for k in pending if k not in findings
                 and _condition(k.split(":", 1)[0]) in covered]
        if new_pending or stale:
            with self.store.tx() as c:
                insert_ignore(c, alert_pending, new_pending)
                if stale:
                    c.execute(delete(alert_pending).where(alert_pending.c.key.in_(stale)))

        for row in open_rows.values():
            if row.id in resolved or row.status != Status.OPEN.value or row.tier != 1 \
                    or row.escalated_at is not None:
                continue
            if now - row.raised_at < self._escalate_after(row):
                continue
            subject = Subject.from_details(pd_info.get(row.pd_id, (None, None))[0], row.details)
            if maintenance.silencing(windows, subject, now) is not None:
                continue
            if self._escalate(row, now, pd_info):
                stats.escalated += 1
        self.last_run_at = now
        return stats

    # --- transitions ------------------------------------------------------------------------

    def _raise(self, f: Finding, since: float, now: float,
               pd_info: dict[int, tuple[str, str]]) -> bool:
        pd_code, pd_name = pd_info.get(f.pd_id, (None, None)) if f.pd_id else (None, None)
        severity = f.severity or self.cfg.severity(f.condition)
        tier, note = routing.tier_for(self.cfg, f.zone, pd_code)
        details = {**f.details, **f.subject_names.as_details()}
        if note:
            details["routing_note"] = note
        values = dict(dedup_key=f.key, open_key=f.key, condition=f.condition.value,
                      subject_kind=f.subject_kind.value, subject=f.subject[:255],
                      subject_ref=f.subject_ref, pd_id=f.pd_id, zone=f.zone.value, tier=tier,
                      severity=severity.value, status=Status.OPEN.value, flapping=f.flapping,
                      flap_count=f.flap_count, since=since, raised_at=now, details=details)
        try:
            with self.store.tx() as c:
                alert_id = int(c.execute(insert(alerts).values(**values))
                               .inserted_primary_key[0])  # type: ignore[index]
                c.execute(delete(alert_pending).where(alert_pending.c.key == f.key))
                c.execute(insert(alert_events).values(**event_row(
                    alert_id, now, "raised", detail=f"tier {tier}, zone {f.zone.value}"
                    + (", flapping" if f.flapping else ""))))
                info = AlertInfo(id=alert_id, condition=f.condition,
                                 subject_kind=f.subject_kind, subject=f.subject,
                                 pd_code=pd_code, pd_name=pd_name, zone=f.zone, tier=tier,
                                 severity=severity, status=Status.OPEN, since=since,
                                 raised_at=now, flapping=f.flapping, flap_count=f.flap_count,
                                 details=details)
                queued = self._enqueue(c, info, Event.RAISE,
                                       routing.recipients(self.cfg, tier, pd_code, severity), now)
        except IntegrityError:
            log.debug("alert %s was raised by another collector", f.key)
            return False
        log.info("alert #%d raised: %s (tier %d, %d messages)", alert_id, f.key, tier, queued)
        if queued:
            self.wake.set()
        return True

    def _refresh(self, row: Any, f: Finding, now: float) -> None:
        """Keep an open alert's flapping mark and details current (no message)."""
        details = {**f.details, **f.subject_names.as_details()}
        if "routing_note" in (row.details or {}):
            details["routing_note"] = row.details["routing_note"]
        became_flapping = f.flapping and not row.flapping
        if not became_flapping and f.flap_count <= row.flap_count and details == row.details:
            return
        with self.store.tx() as c:
            c.execute(update(alerts).where(alerts.c.id == row.id, alerts.c.resolved_at.is_(None))
                      .values(flapping=bool(row.flapping or f.flapping),
                              flap_count=max(row.flap_count, f.flap_count), details=details))
            if became_flapping:
                c.execute(insert(alert_events).values(**event_row(
                    row.id, now, "flapping", detail=f"{f.flap_count} down-onsets")))

    def _resolve(self, row: Any, now: float, pd_info: dict[int, tuple[str, str]]) -> bool:
        with self.store.tx() as c:
            done = c.execute(update(alerts)
                             .where(alerts.c.id == row.id,
                                    alerts.c.status != Status.RESOLVED.value)
                             .values(status=Status.RESOLVED.value, open_key=None,
                                     resolved_at=now, resolution="recovered"))
            if done.rowcount != 1:
                return False
            c.execute(insert(alert_events).values(**event_row(row.id, now, "resolved",
                                                              detail="recovered")))
            fresh = c.execute(select(alerts).where(alerts.c.id == row.id)).one()
            info = AlertInfo.from_row(fresh, *pd_info.get(row.pd_id, (None, None)))
            # a recipient whose alert message is still being retried gets the recovery after it
            waiting = {(r.channel, r.recipient): r.next_attempt_at for r in c.execute(
                select(alert_notifications.c.channel, alert_notifications.c.recipient,
                       alert_notifications.c.next_attempt_at)
                .where(alert_notifications.c.alert_id == row.id,
                       alert_notifications.c.status == "pending")).all()}
            queued = self._enqueue(c, info, Event.RECOVER, self._notified(c, row.id), now,
                                   not_before=waiting)
        log.info("alert #%d resolved (recovered), %d messages", row.id, queued)
        if queued:
            self.wake.set()
        return True

    def _escalate(self, row: Any, now: float, pd_info: dict[int, tuple[str, str]]) -> bool:
        with self.store.tx() as c:
            done = c.execute(update(alerts)
                             .where(alerts.c.id == row.id,
                                    alerts.c.status == Status.OPEN.value,
                                    alerts.c.escalated_at.is_(None))
                             .values(escalated_at=now, tier=2))
            if done.rowcount != 1:
                return False
            c.execute(insert(alert_events).values(**event_row(
                row.id, now, "escalated",
                detail=f"not acknowledged within {self._escalate_after(row):g} s")))
            fresh = c.execute(select(alerts).where(alerts.c.id == row.id)).one()
            info = AlertInfo.from_row(fresh, *pd_info.get(row.pd_id, (None, None)))
            queued = self._enqueue(c, info, Event.ESCALATE,
                                   routing.recipients(self.cfg, 2, info.pd_code, info.severity),
                                   now)
        log.info("alert #%d escalated to Tier 2, %d messages", row.id, queued)
        if queued:
            self.wake.set()
        return True

    def _escalate_after(self, row: Any) -> float:
        """The escalation time of an alert row (its condition's, else its severity's, else the
        global ``escalate_after_s``)."""
        try:
            severity = Severity(row.severity)
        except ValueError:
            return self.cfg.escalate_after_s
        return self.cfg.escalate_after(_condition(row.condition), severity)

    @staticmethod
    def _notified(c: Connection, alert_id: int) -> list[Recipient]:
        """Everyone who was sent the alert or its escalation (they get the recovery)."""
        rows = c.execute(select(alert_notifications.c.channel, alert_notifications.c.recipient,
                                alert_notifications.c.recipient_name,
                                alert_notifications.c.tier, alert_notifications.c.language)
                         .where(alert_notifications.c.alert_id == alert_id,
                                alert_notifications.c.event.in_(
                                    [Event.RAISE.value, Event.ESCALATE.value]))
                         .order_by(alert_notifications.c.id)).all()
        seen: dict[tuple[str, str], Recipient] = {}
        for r in rows:
            seen.setdefault((r.channel, r.recipient), Recipient(
                r.recipient_name, ChannelName(r.channel), r.recipient, r.tier, r.language))
        return list(seen.values())

    def _enqueue(self, c: Connection, info: AlertInfo, event: Event,
                 recipients: Iterable[Recipient], now: float,
                 not_before: dict[tuple[str, str], float] | None = None) -> int:
        tz = self.cfg.zone_info()
        dash = str(self.cfg.dashboard_url) if self.cfg.dashboard_url else None
        texts: dict[str, messages.Rendered] = {}
        rows = []
        payload = {**info.payload(), "event": event.value}
        for r in recipients:
            if r.language not in texts:
                texts[r.language] = messages.render(
                    event, info, r.language, tz, now=now,
                    escalate_after_s=self.cfg.escalate_after(info.condition, info.severity),
                    flap_window_s=self.cfg.flap_window_s, dashboard_url=dash)
            text = texts[r.language]
            rows.append(dict(
                alert_id=info.id,
                dedup_key=f"a{info.id}:{event.value}:{r.channel.value}:{_digest(r.address)}",
                event=event.value, channel=r.channel.value, recipient=r.address,
                recipient_name=r.name[:255], tier=r.tier, language=r.language,
                title=text.title, body=text.body, payload=payload, status="pending",
                attempts=0, created_at=now, next_attempt_at=max(
                    now, (not_before or {}).get((r.channel.value, r.address), now))))
        insert_ignore(c, alert_notifications, rows)
        return len(rows)


# --- lifecycle operations for the API ---------------------------------------------------------

def acknowledge(store: Store, alert_id: int, who: str, comment: str | None,
                now: float | None = None) -> None:
    """Open -> acknowledged (stops escalation). Acknowledging twice is a no-op."""
    now = time.time() if now is None else now
    with store.tx() as c:   # the conditional UPDATE first: it takes the write lock at once
        done = c.execute(update(alerts).where(alerts.c.id == alert_id,
                                              alerts.c.status == Status.OPEN.value)
                         .values(status=Status.ACKNOWLEDGED.value, acked_at=now, acked_by=who,
                                 ack_comment=comment))
        if done.rowcount == 1:
            c.execute(insert(alert_events).values(**event_row(alert_id, now, "acknowledged",
                                                              actor=who, detail=comment)))
            return
        status = c.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()
    if status is None:
        raise AlertNotFound(f"no alert #{alert_id}")
    if status == Status.RESOLVED.value:
        raise AlertConflict(f"alert #{alert_id} is resolved already")


def resolve(store: Store, alert_id: int, who: str, comment: str | None,
            now: float | None = None) -> None:
    """Close an alert by hand. If its fault is still there, the engine raises a new alert
    after a new hold-down: a resolved alert means "the fault is gone"."""
    now = time.time() if now is None else now
    with store.tx() as c:
        done = c.execute(update(alerts).where(alerts.c.id == alert_id,
                                              alerts.c.status != Status.RESOLVED.value)
                         .values(status=Status.RESOLVED.value, open_key=None, resolved_at=now,
                                 resolved_by=who, resolution="manual"))
        if done.rowcount == 1:
            key = c.execute(select(alerts.c.dedup_key).where(alerts.c.id == alert_id)).scalar()
            c.execute(insert(alert_events).values(**event_row(alert_id, now, "resolved",
                                                              actor=who, detail=comment)))
            # a fault still present is alerted again only after a new hold-down
            c.execute(delete(alert_pending).where(alert_pending.c.key == key))
            c.execute(insert(alert_pending).values(key=key, first_seen=now))
            return
        status = c.execute(select(alerts.c.status).where(alerts.c.id == alert_id)).scalar()
    if status is None:
        raise AlertNotFound(f"no alert #{alert_id}")
    raise AlertConflict(f"alert #{alert_id} is resolved already")
