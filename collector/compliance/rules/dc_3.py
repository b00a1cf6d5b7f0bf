"""DC-3: the Pusat Data and hosting must be inside Indonesian jurisdiction.

Violation for a backup job whose destination or DRC copy resolves to a public address outside
the configured Indonesian prefix list (``site.indonesia_prefixes[_file]``; Dinas' own public
allocation counts as Indonesian), and for a registered PD website hosted on such an address
(``hosting_addresses`` in the site model, or a literal IP in its URL). Private addresses are
inside the regional network. Needs the prefix list; without it nothing is judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel

from collector.compliance.profile import Obligation, Severity, is_public, parse_ip
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Dc3Params(Params):
    check_backups: bool = True
    check_websites: bool = True


class Dc3:
    obligation: ClassVar[Obligation] = Obligation.DC_3
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Dc3Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Dc3Params)
        site, st = ctx.site, ctx.state
        if not site.indonesia_networks:
            return

        def abroad(addr: str) -> bool:
            return is_public(addr) and site.in_indonesia(addr) is False

        agents = st.agents_by_pk
        if params.check_backups:
            for b in st.backups:
                if not ctx.applies(self.obligation, b.pd_id):
                    continue
                found: list[dict[str, Any]] = [
                    {"role": "destination", "host": b.destination, "address": ip}
                    for ip in b.destination_ips if abroad(ip)]
                rep = b.replica or {}
                found += [{"role": "replica", "host": rep.get("destination"), "address": ip}
                          for ip in rep.get("destination_ips") or [] if abroad(str(ip))]
                if not found:
                    continue
                agent = agents.get(b.agent_pk)
                name = f"{agent.agent_id if agent else b.agent_pk}/{b.job}"
                yield Finding(
                    b.pd_id, SubjectKind.BACKUP, f"backup:{name}",
                    tuple(Reason("dc3.backup_abroad", {"job": b.job, "host": f["host"] or "-",
                                                       "address": f["address"]})
                          for f in found),
                    {"job": b.job, "agent": agent.agent_id if agent else None,
                     "outside": found, "observed_at": b.observed_at, "report_id": b.report_id})
        if params.check_websites:
            for pd_id, pd in st.pds.items():
                if not ctx.applies(self.obligation, pd_id):
                    continue
                for w in site.pd(pd.code).websites:
                    addrs = [str(a) for a in w.hosting_addresses]
                    if parse_ip(w.host) is not None:
                        addrs.append(w.host)
                    bad = [a for a in addrs if abroad(a)]
                    if bad:
                        yield Finding(
                            pd_id, SubjectKind.WEBSITE, f"website:{w.host}",
                            tuple(Reason("dc3.website_abroad", {"website": w.host,
                                                                "address": a}) for a in bad),
                            {"website": str(w.url), "hosting_addresses": addrs,
                             "outside": bad, "source": "site model"})
