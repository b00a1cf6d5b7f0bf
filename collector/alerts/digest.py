"""The daily digest: once a day at ``digest.local_time`` (``alerts.timezone``), one summary per
recipient of the alerts of the last 24 hours and those still open: a PD's Tier 1 contacts get
their PD's alerts, the Tier 2 team gets all. An address listed in several groups (a technician
serving two PDs, a Tier 2 member also listed as a PD's Tier 1) gets one digest covering them all.

Exactly once per day even with several collectors: the day is claimed with a conditional
UPDATE of ``alert_meta`` (the winner queues the messages in the same transaction). The first
start only records the day, so the first digest goes out at the next configured time.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from collector.alerts import messages, routing
from collector.alerts.config import AlertsCfg, ChannelName, parse_hhmm
from collector.alerts.model import AlertInfo, Event
from collector.alerts.routing import Recipient
from collector.alerts.sqlutil import insert_ignore
from collector.db import pds
from collector.db_alerts import alert_meta, alert_notifications, alerts
from collector.store import Store

log = logging.getLogger(__name__)
META_KEY = "digest_last_day"


def due_period(cfg: AlertsCfg, now: float) -> tuple[str, float, float]:
    """(day, start, end) of the latest digest that is due at ``now``."""
    tz = cfg.zone_info()
    local = datetime.fromtimestamp(now, tz)
    at = parse_hhmm(cfg.digest.local_time)
    end_local = datetime.combine(local.date(), at, tz)
    if local < end_local:
        end_local -= timedelta(days=1)
    end = end_local.timestamp()
    return end_local.date().isoformat(), end - 86400, end


def maybe_queue(store: Store, cfg: AlertsCfg, now: float) -> int:
    """Queue today's digests if they are due and not queued yet; returns messages queued."""
    if not cfg.digest.enabled:
        return 0
    day, start, end = due_period(cfg, now)
    with store.engine.connect() as c:
        last = c.execute(select(alert_meta.c.value).where(alert_meta.c.key == META_KEY)).scalar()
    if last is None:
        with store.tx() as c:
            insert_ignore(c, alert_meta, [{"key": META_KEY, "value": day}])
        return 0
    if last >= day:
        return 0
    with store.tx() as c:
        won = c.execute(update(alert_meta).where(alert_meta.c.key == META_KEY,
                                                 alert_meta.c.value == last)
                        .values(value=day)).rowcount == 1
        if not won:
            return 0
        n = _queue(c, cfg, day, start, end, now)
    log.info("daily digest %s queued: %d messages", day, n)
    return n


@dataclass
class _Reader:
    """One digest recipient (a channel and address) and every group it is listed in."""

    first: Recipient                   # its first listing: name and language
    pds: list[str] = field(default_factory=list)
    tier2: bool = False

    @property
    def scope(self) -> str:
        return "Tier 2" if self.tier2 else ", ".join(self.pds)


def _readers(cfg: AlertsCfg) -> list[_Reader]:
    """The digest recipients, one per (channel, address) however many groups list it: a
    technician serving two PDs gets both PDs' alerts in one digest; someone also in Tier 2
    gets the Tier 2 digest (all alerts)."""
    channels = set(cfg.digest.channels)
    groups: list[tuple[str | None, list[Recipient]]] = [
        (pd, routing.expand(cfg, [p for p in people if p.digest], 1, channels=channels))
        for pd, people in cfg.tier1.items()]
    groups.append((None, routing.expand(cfg, [p for p in cfg.tier2 if p.digest], 2,
                                        channels=channels)))
    out: dict[tuple[ChannelName, str], _Reader] = {}
    for pd_code, recipients in groups:
        for rc in recipients:
            reader = out.setdefault((rc.channel, rc.address), _Reader(rc))
            if pd_code is None:
                reader.tier2 = True
            elif pd_code not in reader.pds:
                reader.pds.append(pd_code)
    return list(out.values())


def _queue(c: Any, cfg: AlertsCfg, day: str, start: float, end: float, now: float) -> int:
    pd_rows = c.execute(select(pds.c.id, pds.c.code, pds.c.name)).all()
    pd_info = {r.id: (r.code, r.name) for r in pd_rows}
    rows = c.execute(select(alerts).where(
        alerts.c.raised_at < end,
        or_(alerts.c.raised_at >= start, alerts.c.resolved_at.is_(None),
            alerts.c.resolved_at >= start)).order_by(alerts.c.raised_at)).all()
    infos = [(AlertInfo.from_row(r, *pd_info.get(r.pd_id, (None, None))), r) for r in rows]
    tz = cfg.zone_info()
    out = []
    for reader in _readers(cfg):
        rc = reader.first
        mine = [(a, r) for a, r in infos if reader.tier2 or a.pd_code in reader.pds]
        if not mine and cfg.digest.skip_empty:
            continue
        ttn = [r.first_notified_at - r.raised_at for _, r in mine
               if r.first_notified_at is not None]
        mean = sum(ttn) / len(ttn) if ttn else None
        text = messages.render_digest([a for a, _ in mine], rc.language, tz, start=start,
                                      end=end, scope=reader.scope, mean_ttn_s=mean)
        key = hashlib.sha256(rc.address.encode()).hexdigest()[:32]
        out.append(dict(
            alert_id=None, dedup_key=f"digest:{day}:{rc.channel.value}:{key}",
            event=Event.DIGEST.value, channel=rc.channel.value, recipient=rc.address,
            recipient_name=rc.name[:255], tier=2 if reader.tier2 else 1,
            language=rc.language, title=text.title, body=text.body,
            payload={"event": "digest", "day": day, "scope": reader.scope,
                     "alerts": [a.id for a, _ in mine]},
            status="pending", attempts=0, next_attempt_at=now, created_at=now))
    # one row per (channel, address) above; ON CONFLICT DO NOTHING keeps a day that is queued
    # again (its claim lost) from failing the whole transaction
    insert_ignore(c, alert_notifications, out)
    return len(out)
