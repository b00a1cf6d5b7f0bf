"""WEB-1: every PD website must be a subdomain of (or under) the regional portal.

The PD websites are the ones registered in the site model. Violation when a website's host
name is not the portal domain or a subdomain of it, and when it is unavailable: HTTP probes of
the website (by any agent; the best vantage point counts) show more downtime this calendar
month than ``sla_target_pct`` allows for the whole month (as DC-2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity, address_host
from collector.compliance.rules._common import downtime, month_window
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind
from collector.compliance.state import Target
from collector.db import probe_targets


class Web1Params(Params):
    check_availability: bool = True
    sla_target_pct: Annotated[float, Field(gt=0, le=100)] = 99.5
    stale_after_minutes: Annotated[float, Field(gt=0)] = 15.0


def under_portal(host: str, portal: str) -> bool:
    return host == portal or host.endswith("." + portal)


class Web1:
    obligation: ClassVar[Obligation] = Obligation.WEB_1
    default_severity: ClassVar[Severity] = Severity.MINOR
    Params: ClassVar[type[BaseModel]] = Web1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Web1Params)
        portal = (ctx.profile.portal_domain or "").lower()
        st = ctx.state
        sites = [(pd_id, w) for pd_id, pd in st.pds.items()
                 if ctx.applies(self.obligation, pd_id) for w in ctx.site.pd(pd.code).websites]
        if not sites:
            return
        probes: dict[str, list[Target]] = {}
        if params.check_availability:
            hosts = {w.host for _, w in sites}
            # every agent's HTTP probes, whichever PD it belongs to
            for tg in st.targets_where(probe_targets.c.kind == "http"):
                host = (address_host(tg.address) or "").lower().rstrip(".")
                if host in hosts:
                    probes.setdefault(host, []).append(tg)
        start, end, month = month_window(ctx.now, ctx.profile.tz)
        wanted = [tg.id for ts in probes.values() for tg in ts]
        history = st.transitions(wanted, start) if wanted else {}
        budget = (1 - params.sla_target_pct / 100) * (end - start)
        for pd_id, w in sites:
            reasons: list[Reason] = []
            ev: dict[str, Any] = {"website": str(w.url), "host": w.host, "portal": portal}
            if not under_portal(w.host, portal):
                reasons.append(Reason("web1.outside_portal", {"website": w.host,
                                                              "portal": portal}))
            mine = probes.get(w.host, [])
            if mine:
                stale = params.stale_after_minutes * 60
                dts = [(downtime(history[tg.id], start, min(ctx.now, tg.last_checked + stale)),
                        tg) for tg in mine]
                dt, tg = min(dts, key=lambda x: x[0].down_s)
                ev.update({"month": month, "probe": tg.name, "probe_address": tg.address,
                           "downtime_s": round(dt.down_s, 1), "budget_s": round(budget, 1),
                           "sla_target_pct": params.sla_target_pct})
                if dt.down_s > budget:
                    ev["outages"] = dt.outages
                    reasons.append(Reason("web1.unavailable", {
                        "website": w.host, "month": month, "sla": params.sla_target_pct,
                        "max_pct": round(100 * (1 - dt.down_s / (end - start)), 3)}))
            if reasons:
                yield Finding(pd_id, SubjectKind.WEBSITE, f"website:{w.host}", tuple(reasons),
                              ev)
