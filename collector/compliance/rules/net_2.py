"""NET-2: security devices on the PD LAN, especially where it faces the internet.

An internet path is a device or agent host with a default route that does not lead to the
Jaringan Intra (see NET-1) or with a public address. Violation for such a path when neither
the device itself nor its next hop is a device of the PD with a firewall role (``role`` as the
driver reports it; ``firewall_roles``). Traffic through the intranet is protected by Dinas'
firewalls (the WAN part of the article) and is not judged here, nor is an agent host with an
address in a Pusat Data or DRC subnet (a colocated server: it sits behind Dinas' firewalls).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydantic import BaseModel

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules._common import internet_paths, own_addresses
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Net2Params(Params):
    firewall_roles: tuple[str, ...] = ("firewall",)


class Net2:
    obligation: ClassVar[Obligation] = Obligation.NET_2
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Net2Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Net2Params)
        fw = set(params.firewall_roles)
        for pd_id, (nodes, paths) in internet_paths(ctx.state, ctx.site).items():
            pd = ctx.state.pds.get(pd_id)
            if pd is None or not paths or not ctx.applies(self.obligation, pd_id) \
                    or ctx.site.pd(pd.code).dinas:
                continue
            own = own_addresses(nodes)
            firewalls = sorted({n.name for n in nodes if n.role in fw})
            for p in paths:
                n = p.node
                if n.role in fw:
                    continue
                via = [str(r["gateway"]) for r in p.routes]
                if via and not p.public and all(
                        (hop := own.get(g)) is not None and hop.role in fw for g in via):
                    continue
                yield Finding(
                    pd_id, SubjectKind.DEVICE if n.kind == "device" else SubjectKind.HOST,
                    n.subject,
                    (Reason("net2.no_firewall", {
                        "node": n.name,
                        "via": ", ".join(via + [a["address"] for a in p.public])}),),
                    {**n.evidence(), "internet_routes": p.routes, "public_addresses": p.public,
                     "firewalls_in_pd": firewalls})
