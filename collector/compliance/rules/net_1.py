"""NET-1: internet access, public IPs and bandwidth are controlled by Dinas only.

Violation for a device or agent host of a PD (not the Dinas itself) that holds a public
address outside Dinas' allocation (``site.public_allocation``), or whose default route does
not lead to the Jaringan Intra: its next hop is neither an intranet gateway
(``site.intranet_gateways``) nor another device of the same PD (an unauthorised ISP uplink).
The route check needs ``intranet_gateways``; without them only addresses are judged. An
agent host with an address in a Pusat Data or DRC subnet (e.g. a PD's server colocated in the
Pusat Data, routed via a Pusat Data gateway) is on Dinas' network and is not judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules._common import internet_paths
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Net1Params(Params):
    check_default_routes: bool = True
    check_public_addresses: bool = True


class Net1:
    obligation: ClassVar[Obligation] = Obligation.NET_1
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Net1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Net1Params)
        for pd_id, (_nodes, paths) in internet_paths(ctx.state, ctx.site).items():
            pd = ctx.state.pds.get(pd_id)
            if pd is None or not ctx.applies(self.obligation, pd_id) \
                    or ctx.site.pd(pd.code).dinas:
                continue
            for p in paths:
                n = p.node
                routes = p.routes if params.check_default_routes else []
                public = p.public if params.check_public_addresses else []
                reasons = [Reason("net1.default_route", {
                    "node": n.name, "gateway": r["gateway"], "interface": r["interface"] or "-"})
                    for r in routes]
                reasons += [Reason("net1.public_address", {
                    "node": n.name, "address": a["address"], "interface": a["interface"] or "-"})
                    for a in public]
                if reasons:
                    kind = SubjectKind.DEVICE if n.kind == "device" else SubjectKind.HOST
                    yield Finding(pd_id, kind, n.subject, tuple(reasons),
                                  {**n.evidence(), "outside_default_routes": routes,
                                   "foreign_public_addresses": public})
