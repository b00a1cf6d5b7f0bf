"""Probe targets down (and flapping), from ``probe_targets`` and ``state_transitions``.

Zones: a target is in the zone its name matches in ``alerts.zones.targets``, else its PD's
zone. A WAN or Pusat Data target that is down while the same agent's LAN targets are all up is
a WAN fault (Dinas Tier 2); when a LAN target of that agent is down too, the PD's LAN is the
likely cause and the fault stays with the PD (zone ``lan``, Tier 1).

Flapping: a target whose down-onsets within ``flap_window_s`` reach ``flap_threshold`` is
flapping; it yields a finding even while it is up, so the one alert stays open until it is
stable again.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.config import Condition, Zone
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context, register, skew_of
from collector.db import agents, probe_targets, state_transitions

# agent clocks may be off by this much (the collector refuses nothing for skew); widen the
# index range scan by it and filter exactly per agent afterwards
_SKEW_MARGIN_S = 3600.0


@register
class ProbeDown:
    name = "probe_down"
    conditions = (Condition.PROBE_DOWN,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        cfg = ctx.cfg
        window_start = ctx.now - cfg.flap_window_s
        onsets: dict[int, list[float]] = defaultdict(list)
        for t in conn.execute(
                select(state_transitions.c.target_id, state_transitions.c.at)
                .where(state_transitions.c.at >= window_start - _SKEW_MARGIN_S,
                       state_transitions.c.state == "down")).all():
            onsets[t.target_id].append(float(t.at))

        candidates = set(onsets)
        rows = conn.execute(
            select(probe_targets.c.id, probe_targets.c.pd_id, probe_targets.c.name,
                   probe_targets.c.kind, probe_targets.c.address, probe_targets.c.state,
                   probe_targets.c.state_since, probe_targets.c.last_error,
                   probe_targets.c.agent_pk, agents.c.agent_id, agents.c.clock_skew_s)
            .join(agents, agents.c.id == probe_targets.c.agent_pk)
            .where(agents.c.revoked.is_(False))
            .where((probe_targets.c.state == "down") | probe_targets.c.id.in_(candidates)
                   if candidates else probe_targets.c.state == "down")).all()

        # which agents see a LAN target down (then their WAN/DC target faults are LAN faults)
        lan_down: set[int] = set()
        zones: dict[int, Zone] = {}
        for r in rows:
            zones[r.id] = cfg.zones.target_zone(ctx.pd_codes.get(r.pd_id), r.name)
            if r.state == "down" and zones[r.id] is Zone.LAN:
                lan_down.add(r.agent_pk)
        pd_lan_targets = self._agents_with_lan_targets(conn, ctx, {r.agent_pk for r in rows})

        out = []
        for r in rows:
            skew = skew_of(r.clock_skew_s)
            recent = [at - skew for at in onsets.get(r.id, ()) if at - skew >= window_start]
            flaps = len(recent)
            flapping = flaps >= cfg.flap_threshold
            down = r.state == "down"
            if not down and not flapping:
                continue
            pd_code = ctx.pd_codes.get(r.pd_id)
            zone = zones[r.id]
            details = {"agent": r.agent_id, "target": r.name, "kind": r.kind,
                       "address": r.address, "error": r.last_error if down else None,
                       "target_zone": zone.value}
            if zone is not Zone.LAN:
                if r.agent_pk in lan_down:
                    zone = Zone.LAN
                    details["note"] = "lan_also_down"
                elif r.agent_pk in pd_lan_targets:
                    details["note"] = "lan_fine"
            out.append(Finding(
                condition=Condition.PROBE_DOWN, subject_kind=SubjectKind.TARGET,
                subject_ref=str(r.id), subject=r.name, pd_id=r.pd_id,
                subject_names=Subject(pd_code, agent=r.agent_id, target=r.name), zone=zone,
                since=float(r.state_since) - skew if down else min(recent), active=down,
                flap_count=flaps, flapping=flapping, details=details))
        return out

    @staticmethod
    def _agents_with_lan_targets(conn: Connection, ctx: Context, agent_pks: set[int]) -> set[int]:
        if not agent_pks:
            return set()
        out = set()
        for r in conn.execute(select(probe_targets.c.agent_pk, probe_targets.c.pd_id,
                                     probe_targets.c.name)
                              .where(probe_targets.c.agent_pk.in_(agent_pks))).all():
            if ctx.cfg.zones.target_zone(ctx.pd_codes.get(r.pd_id), r.name) is Zone.LAN:
                out.add(r.agent_pk)
        return out
