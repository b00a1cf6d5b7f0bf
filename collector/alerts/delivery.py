"""The durable notification queue (``alert_notifications``) and its workers.

Worker threads (``delivery.workers``) claim one due message at a time with a conditional
UPDATE (a lease that expires, so a crashed collector's claims are taken over), send it through
its channel with the channel's timeout, and record the attempt in ``alert_events``. A failure is
retried with exponential back-off until ``max_attempts`` (or at once marked failed when the
channel says retrying cannot help). A slow or broken channel holds at most
``delivery.max_per_channel`` workers (half of them by default), never the engine or ingest, so
the other channels' messages keep going out.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, or_, select, update

from collector.alerts import channels as channels_mod
from collector.alerts.channels import Channel, DeliveryError, Message
from collector.alerts.config import AlertsCfg, ChannelName
from collector.alerts.model import Event
from collector.alerts.sqlutil import display_recipient, event_row
from collector.db_alerts import alert_events, alert_notifications, alerts
from collector.store import Store

log = logging.getLogger(__name__)
CLAIM_BATCH = 8


class Dispatcher:
    def __init__(self, store: Store, cfg: AlertsCfg,
                 channels: Mapping[ChannelName, Channel] | None = None, *,
                 wake: threading.Event | None = None, instance: str | None = None) -> None:
        self.store, self.cfg = store, cfg
        self.channels = dict(channels) if channels is not None else channels_mod.build(
            cfg.channels)
        self.wake = wake or threading.Event()
        self.instance = instance or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.sent_total = 0
        self.failed_attempts_total = 0
        self._busy: dict[str, int] = {}    # channel -> messages being sent by this process
        self._busy_lock = threading.Lock()

    def _lease_s(self, channel: str) -> float:
        ch_cfg = getattr(self.cfg.channels, channel, None)
        timeout: float = getattr(ch_cfg, "timeout_s", 10.0)
        return 2 * float(timeout) + 30

    def backoff(self, attempt: int) -> float:
        d = self.cfg.delivery
        base = min(d.backoff_max_s, d.backoff_initial_s * 2.0 ** min(attempt - 1, 30))
        return base * random.uniform(1.0, 1.1)

    def claim(self, now: float | None = None) -> Any | None:
        """Take one due message (or None); several workers/collectors never take the same.
        The caller sends it and then calls :meth:`release`."""
        now = time.time() if now is None else now
        due = (alert_notifications.c.status == "pending",
               alert_notifications.c.next_attempt_at <= now,
               or_(alert_notifications.c.claim_until.is_(None),
                   alert_notifications.c.claim_until < now))
        with self._busy_lock:   # claims of this process one at a time: the busy counts hold
            row = self._claim(now, due)
            if row is not None:
                self._busy[row.channel] = self._busy.get(row.channel, 0) + 1
            return row

    def _claim(self, now: float, due: tuple[Any, ...]) -> Any | None:
        limit = self.cfg.delivery.channel_limit()
        full = [ch for ch, n in self._busy.items() if n >= limit]
        where = (*due, alert_notifications.c.channel.notin_(full)) if full else due
        with self.store.engine.connect() as c:
            rows = c.execute(select(alert_notifications.c.id, alert_notifications.c.channel)
                             .where(*where)
                             .order_by(alert_notifications.c.next_attempt_at,
                                       alert_notifications.c.id)
                             .limit(CLAIM_BATCH)).all()
        for r in rows:
            with self.store.tx() as c:
                won = c.execute(update(alert_notifications)
                                .where(alert_notifications.c.id == r.id, *due)
                                .values(claimed_by=self.instance,
                                        claim_until=now + self._lease_s(r.channel))).rowcount
                if won == 1:
                    return c.execute(select(alert_notifications)
                                     .where(alert_notifications.c.id == r.id)).one()
        return None

    def deliver_once(self, now: float | None = None) -> bool:
        """Claim and send one due message; False when none was due."""
        row = self.claim(now)
        if row is None:
            return False
        try:
            self._send(row)
        finally:
            self.release(row)
        return True

    def release(self, row: Any) -> None:
        with self._busy_lock:
            self._busy[row.channel] -= 1

    def _send(self, row: Any) -> None:
        t0 = time.monotonic()
        error: str | None = None
        permanent = False
        try:
            channel = self.channels.get(ChannelName(row.channel))
            if channel is None:
                raise DeliveryError(f"channel {row.channel} is not configured (any more)")
            channel.send(Message(notification_id=row.id, event=row.event, title=row.title,
                                 body=row.body, language=row.language,
                                 payload=dict(row.payload or {})), row.recipient)
        except DeliveryError as e:
            error, permanent = str(e), e.permanent
        except Exception as e:  # a channel bug must not kill the worker: record and retry
            log.exception("channel %s crashed", row.channel)
            error = f"{type(e).__name__}: {e}"
        self.record(row, error, permanent, time.time(), time.monotonic() - t0)

    def record(self, row: Any, error: str | None, permanent: bool, now: float,
               duration_s: float) -> None:
        attempt = row.attempts + 1
        shown = display_recipient(row.channel, row.recipient)
        with self.store.tx() as c:
            if error is None:
                c.execute(update(alert_notifications).where(alert_notifications.c.id == row.id)
                          .values(status="sent", attempts=attempt, sent_at=now, last_error=None,
                                  claimed_by=None, claim_until=None))
                c.execute(insert(alert_events).values(**event_row(
                    row.alert_id, now, "notified", notification_id=row.id, channel=row.channel,
                    recipient=shown, attempt=attempt, ok=True,
                    detail=f"{row.event}; {duration_s:.3f} s")))
                if row.alert_id is not None and row.event == Event.RAISE.value:
                    c.execute(update(alerts).where(alerts.c.id == row.alert_id,
                                                   alerts.c.first_notified_at.is_(None))
                              .values(first_notified_at=now))
            else:
                final = permanent or attempt >= self.cfg.delivery.max_attempts
                c.execute(update(alert_notifications).where(alert_notifications.c.id == row.id)
                          .values(status="failed" if final else "pending", attempts=attempt,
                                  next_attempt_at=now if final else now + self.backoff(attempt),
                                  last_error=error[:2000], claimed_by=None, claim_until=None))
                c.execute(insert(alert_events).values(**event_row(
                    row.alert_id, now, "notify_failed", notification_id=row.id,
                    channel=row.channel, recipient=shown, attempt=attempt, ok=False,
                    detail=f"{row.event}; {error}" + ("; giving up" if final else ""))))
        if error is None:
            self.sent_total += 1
            log.info("notification %d (%s, %s) sent to %s", row.id, row.event, row.channel, shown)
        else:
            self.failed_attempts_total += 1
            log.warning("notification %d (%s) to %s failed (attempt %d): %s", row.id,
                        row.channel, shown, attempt, error)

    # --- worker threads -----------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run ``delivery.workers`` workers until ``stop`` is set."""
        threads = [threading.Thread(target=self._worker, args=(stop,), daemon=True,
                                    name=f"alert-delivery-{i}")
                   for i in range(self.cfg.delivery.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _worker(self, stop: threading.Event) -> None:
        poll = self.cfg.delivery.poll_interval_s
        while not stop.is_set():
            try:
                if self.deliver_once():
                    continue
            except Exception:  # the database may be busy or away: wait and go on
                log.exception("alert delivery worker error")
            if self.wake.wait(poll):
                self.wake.clear()
