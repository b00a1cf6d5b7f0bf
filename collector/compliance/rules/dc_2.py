"""DC-2: the Pusat Data guarantees colocation, server security and server up-time.

Services: the probe targets of the Dinas' own agents (PDs with ``dinas: true`` in the site
model) that are in the Pusat Data (address in its subnets, or named like
``site.pusat_data_targets``; ``only_pusat_data: false`` drops that condition) and whose name
matches ``services``. Their availability is measured per calendar month
in the region's time zone. Violation as soon as the month's downtime exceeds what the SLA
target allows for the whole month (the month can no longer reach the target); a new month
starts clean, so the violation resolves then and stays in the history.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules._common import downtime, month_window
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind

Pct = Annotated[float, Field(gt=0, le=100)]


class Dc2Params(Params):
    sla_target_pct: Pct = 99.5
    services: tuple[str, ...] = ("*",)
    only_pusat_data: bool = True
    service_sla: dict[str, Pct] = Field(default_factory=dict)  # name glob -> target
    stale_after_minutes: Annotated[float, Field(gt=0)] = 15.0

    def target_for(self, name: str) -> float:
        for pattern, pct in self.service_sla.items():
            if fnmatch.fnmatchcase(name, pattern):
                return pct
        return self.sla_target_pct


class Dc2:
    obligation: ClassVar[Obligation] = Obligation.DC_2
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Dc2Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Dc2Params)
        st = ctx.state
        dinas = {pd_id for pd_id, pd in st.pds.items()
                 if ctx.site.pd(pd.code).dinas and ctx.applies(self.obligation, pd_id)}
        if not dinas:
            return
        targets = [t for t in st.targets if t.pd_id in dinas and any(
            fnmatch.fnmatchcase(t.name, p) for p in params.services) and (
            not params.only_pusat_data or ctx.site.is_pusat_data_target(t.name, t.address))]
        if not targets:
            return
        start, end, month = month_window(ctx.now, ctx.profile.tz)
        history = st.transitions([t.id for t in targets], start)
        stale = params.stale_after_minutes * 60
        agents = st.agents_by_pk
        for t in targets:
            until = min(ctx.now, t.last_checked + stale)
            dt = downtime(history[t.id], start, until)
            sla = params.target_for(t.name)
            budget = (1 - sla / 100) * (end - start)
            if dt.down_s <= budget:
                continue
            agent = agents.get(t.agent_pk)
            name = f"{agent.agent_id if agent else t.agent_pk}/{t.name}"
            best = 100 * (1 - dt.down_s / (end - start))
            yield Finding(
                t.pd_id, SubjectKind.SERVICE, f"service:{name}",
                (Reason("dc2.sla_breach", {"service": t.name, "month": month,
                                           "max_pct": round(best, 3), "sla": sla,
                                           "down_min": round(dt.down_s / 60, 1),
                                           "budget_min": round(budget / 60, 1)}),),
                {"service": t.name, "address": t.address, "kind": t.kind, "month": month,
                 "month_start": start, "month_end": end, "sla_target_pct": sla,
                 "downtime_s": round(dt.down_s, 1), "budget_s": round(budget, 1),
                 "availability_so_far_pct": round(100 * (1 - dt.down_s / dt.known_s), 4)
                 if dt.known_s else None,
                 "availability_max_pct": round(best, 4), "outages": dt.outages})
