"""Compliance figures from the active violations: per PD (score and per-obligation status) and
per region (share of PDs connected to the intranet, share of PDs whose servers and data are
all in the Pusat Data, counts per obligation). Pure functions over rows, for the API and
period reports.

A PD with no evidence of where its servers and data are (no agent, no server scan, no backup
job, no DC-1 or BAK-1 finding) is not counted as having them in the Pusat Data: it is counted
as unknown (``unknown_pds``), outside the share's numerator."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from collector.compliance import messages
from collector.compliance.messages import Lang
from collector.compliance.profile import Obligation, RegionProfile, SiteCfg


@dataclass(frozen=True)
class ActiveRow:
    pd_id: int
    obligation: str
    status: str          # open | acknowledged | waived
    severity: str
    reason_keys: tuple[str, ...]


# BAK-1 reasons that mean the data is not (shown to be) in the Pusat Data
DATA_OUTSIDE = frozenset({"bak1.destination_outside", "bak1.destination_unknown"})


def obligation_status(rows: Sequence[ActiveRow]) -> str:
    if any(r.status != "waived" and r.severity != "warning" for r in rows):
        return "violation"
    if any(r.status != "waived" for r in rows):
        return "warning"
    if rows:
        return "waived"
    return "compliant"


def pd_compliance(profile: RegionProfile, site: SiteCfg, pd_code: str, pd_name: str,
                  rows: Iterable[ActiveRow], lang: Lang, now: float) -> dict[str, Any]:
    """Score = share of the PD's applicable obligations with no open or acknowledged
    violation (warnings count against it too: they are facts, only not enforced yet;
    a waiver counts as met)."""
    by_ob: dict[str, list[ActiveRow]] = defaultdict(list)
    for r in rows:
        by_ob[r.obligation].append(r)
    exempt = set(site.pd(pd_code).exempt)
    items = []
    met = applicable = 0
    for ob, cfg in profile.obligations.items():
        mine = by_ob.get(ob.value, [])
        status = "exempt" if ob in exempt else obligation_status(mine)
        if status != "exempt":
            applicable += 1
            met += status in ("compliant", "waived")
        items.append({
            "obligation": ob.value, "title": messages.title(ob.value, lang),
            "article": cfg.article, "citation": profile.citation(ob), "status": status,
            "status_text": messages.STATUS[lang].get(status, status),
            "open": sum(r.status == "open" for r in mine),
            "acknowledged": sum(r.status == "acknowledged" for r in mine),
            "waived": sum(r.status == "waived" for r in mine),
            "warnings": sum(r.severity == "warning" for r in mine)})
    return {"pd": pd_code, "name": pd_name, "region": profile.key,
            "regulation": profile.regulation.short, "enforced": profile.enforced_at(now),
            "score": round(100 * met / applicable, 1) if applicable else None,
            "applicable": applicable, "met": met, "obligations": items}


def region_figures(profile: RegionProfile, pds: dict[int, str], pds_with_agents: set[int],
                   rows: Iterable[ActiveRow], lang: Lang, now: float,
                   pds_with_data: set[int] | None = None) -> dict[str, Any]:
    """``pds_with_agents``: PDs with an agent; ``pds_with_data``: PDs with a server scan or
    a backup job (known to the caller; may be omitted). Together with the PDs that have a
    DC-1 or BAK-1 finding they are the PDs whose placement of servers and data is known.

    ``servers_and_data_in_pusat_data``: ``pds``/``share_pct`` count the PDs known to have
    everything in the Pusat Data (share of all PDs); ``unknown_pds``/``unknown_share_pct``
    the PDs with no evidence either way; ``outside_pds`` those with servers or data
    outside."""
    rows = list(rows)
    by_ob: dict[str, list[ActiveRow]] = defaultdict(list)
    for r in rows:
        by_ob[r.obligation].append(r)
    total = len(pds)

    def share(n: int) -> float | None:
        return round(100 * n / total, 1) if total else None

    connected = None
    if Obligation.INTRA_1 in profile.obligations:
        cut = {r.pd_id for r in by_ob.get(Obligation.INTRA_1.value, [])}
        n = sum(1 for pd_id in pds if pd_id in pds_with_agents and pd_id not in cut)
        connected = {"pds": n, "share_pct": share(n)}
    placed = None
    if Obligation.DC_1 in profile.obligations or Obligation.BAK_1 in profile.obligations:
        out = {r.pd_id for r in by_ob.get(Obligation.DC_1.value, [])}
        out |= {r.pd_id for r in by_ob.get(Obligation.BAK_1.value, [])
                if DATA_OUTSIDE & set(r.reason_keys)}
        known = pds_with_agents | (pds_with_data or set()) | {
            r.pd_id for ob in (Obligation.DC_1, Obligation.BAK_1)
            for r in by_ob.get(ob.value, [])}
        n = sum(1 for pd_id in pds if pd_id in known and pd_id not in out)
        unknown = sum(1 for pd_id in pds if pd_id not in known)
        outside = sum(1 for pd_id in pds if pd_id in out)
        placed = {"pds": n, "share_pct": share(n), "unknown_pds": unknown,
                  "unknown_share_pct": share(unknown), "outside_pds": outside}
    per_ob = []
    for ob, _cfg in profile.obligations.items():
        mine = by_ob.get(ob.value, [])
        per_ob.append({
            "obligation": ob.value, "title": messages.title(ob.value, lang),
            "citation": profile.citation(ob),
            "open": sum(r.status == "open" for r in mine),
            "acknowledged": sum(r.status == "acknowledged" for r in mine),
            "waived": sum(r.status == "waived" for r in mine),
            "warnings": sum(r.severity == "warning" for r in mine),
            "pds_affected": len({r.pd_id for r in mine if r.status != "waived"})})
    return {"region": profile.region, "profile": profile.key,
            "regulation": profile.regulation.short, "enforced": profile.enforced_at(now),
            "pds": total, "connected_to_intranet": connected,
            "servers_and_data_in_pusat_data": placed, "obligations": per_ob}
