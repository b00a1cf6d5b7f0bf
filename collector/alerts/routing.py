"""Routing by responsibility (INTRA-2, ALERT-1).

A fault on a PD's LAN (zone ``lan``) belongs to the PD: its Tier 1 contacts. WAN, intranet
and Pusat Data faults (zones ``wan``/``dc``) belong to the Dinas: the Tier 2 team. A LAN fault
of a PD without Tier 1 contacts goes to Tier 2 at once rather than to nobody. Unacknowledged
Tier 1 alerts are escalated to Tier 2 by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.alerts.config import AlertsCfg, ChannelName, Contact, Severity, Zone


@dataclass(frozen=True)
class Recipient:
    name: str
    channel: ChannelName
    address: str
    tier: int
    language: str


def tier_for(cfg: AlertsCfg, zone: Zone, pd_code: str | None) -> tuple[int, str | None]:
    """(tier, note): the tier that owns a fault first, and why it is not the obvious one."""
    if zone is not Zone.LAN:
        return 2, None
    if pd_code and cfg.tier1.get(pd_code):
        return 1, None
    return 2, "no_tier1_contact"


def contacts(cfg: AlertsCfg, tier: int, pd_code: str | None) -> list[Contact]:
    if tier == 1:
        return list(cfg.tier1.get(pd_code or "", []))
    return list(cfg.tier2)


def expand(cfg: AlertsCfg, people: list[Contact], tier: int,
           severity: Severity | None = None,
           channels: set[ChannelName] | None = None) -> list[Recipient]:
    out = []
    for c in people:
        if severity is not None and severity.rank < c.min_severity.rank:
            continue
        for ch, address in c.addresses():
            if channels is None or ch in channels:
                out.append(Recipient(c.name, ch, address, tier, c.language or cfg.language))
    return out


def recipients(cfg: AlertsCfg, tier: int, pd_code: str | None,
               severity: Severity) -> list[Recipient]:
    return expand(cfg, contacts(cfg, tier, pd_code), tier, severity)
