"""DC-1: every PD must place its data and/or servers in the Pusat Data (colocation).

Server-class hosts: agents in server mode (their own addresses, from host facts) and LAN hosts
a PD agent's server-port scan found listening on a server port of a role in ``server_roles``
(not the PD's polled network devices nor the PD's own agent hosts: matched within the same
PD only, as private LAN ranges repeat across PDs, so a pass over one PD and a pass over every
PD judge a scanned host alike). Violation for such a host with no address in a Pusat Data (or
DRC) subnet. A documented exception is a waiver with an expiry
(``POST /api/v1/violations/{id}/waive``). Needs ``site.pusat_data_subnets``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules._common import (
    host_addresses,
    in_pusat_data_or_drc,
    usable_addresses,
)
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Dc1Params(Params):
    server_roles: tuple[str, ...] = ("database", "directory", "mail")
    exempt_mandiri_tik: bool = False
    stale_after_hours: Annotated[float, Field(gt=0)] = 48.0


class Dc1:
    obligation: ClassVar[Obligation] = Obligation.DC_1
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Dc1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Dc1Params)
        site, st = ctx.site, ctx.state
        if not site.pusat_data_subnets:
            return

        def placed(addr: str) -> bool:
            return in_pusat_data_or_drc(addr, site)

        def judged(pd_id: int) -> bool:
            pd = st.pds.get(pd_id)
            if pd is None or not ctx.applies(self.obligation, pd_id):
                return False
            return not (params.exempt_mandiri_tik and site.pd(pd.code).mandiri_tik)

        stale = ctx.now - params.stale_after_hours * 3600
        agents = st.agents_by_pk
        # per PD: the same private address in two PDs is two machines
        host_addrs: dict[int, set[str]] = defaultdict(set)
        for h in st.hosts:
            usable = usable_addresses(host_addresses(h))
            host_addrs[h.pd_id].update(usable)
            if not h.server_mode or h.last_seen < stale or not judged(h.pd_id):
                continue
            if not usable or any(placed(a) for a in usable):
                continue
            agent = agents.get(h.agent_pk)
            yield Finding(
                h.pd_id, SubjectKind.HOST, f"host:{h.hostname}",
                (Reason("dc1.server_host", {"host": h.hostname,
                                            "addresses": ", ".join(usable)}),),
                {"host": h.hostname, "agent": agent.agent_id if agent else None,
                 "server_mode": True, "addresses": usable, "seen_at": h.last_seen,
                 "report_id": agent.last_report_id if agent else None})
        infra: dict[int, set[str]] = defaultdict(set)
        for d in st.devices:
            infra[d.pd_id].add(d.mgmt_address)
            infra[d.pd_id].update(str(a.get("address", "")) for a in d.addresses or [])
        roles = set(params.server_roles)
        for s in st.server_hosts:
            if s.last_seen < stale or not judged(s.pd_id) or placed(s.ip):
                continue
            if s.ip in infra[s.pd_id] or s.ip in host_addrs[s.pd_id] \
                    or not roles & set(s.roles):
                continue
            agent = agents.get(s.agent_pk)
            yield Finding(
                s.pd_id, SubjectKind.SERVER, f"server:{s.ip}",
                (Reason("dc1.lan_server", {"ip": s.ip, "role": s.role,
                                           "ports": ", ".join(str(p) for p in s.open_ports)}),),
                {"ip": s.ip, "mac": s.mac, "open_ports": s.open_ports, "roles": s.roles,
                 "found_by": agent.agent_id if agent else None, "scanned_at": s.scanned_at,
                 "first_seen": s.first_seen, "report_id": s.report_id})
