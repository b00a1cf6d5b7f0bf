"""DC-3: the Pusat Data and hosting must be inside Indonesian jurisdiction.

Violation for a backup job whose destination or DRC copy resolves to a public address outside
the configured Indonesian prefix list (``site.indonesia_prefixes[_file]``; Dinas' own public
allocation counts as Indonesian), and for a registered PD website hosted on such an address
(``hosting_addresses`` in the site model, a literal IP in its URL, or the addresses its host
name resolved to when one of the PD's agents probed it over HTTP or TCP). Private addresses are
inside the regional network. Needs the prefix list; without it nothing is judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel

from collector.compliance.profile import (
    Obligation,
    Severity,
    address_host,
    is_public,
    parse_ip,
)
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind
from collector.compliance.state import Agent, Target


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
            seen = _observed_hosting(st.targets, agents)
            for pd_id, pd in st.pds.items():
                if not ctx.applies(self.obligation, pd_id):
                    continue
                for w in site.pd(pd.code).websites:
                    addrs = [str(a) for a in w.hosting_addresses]
                    if parse_ip(w.host) is not None:
                        addrs.append(w.host)
                    probes = seen.get((pd_id, w.host), [])
                    addrs += [a for pr in probes for a in pr["resolved"] if a not in addrs]
                    bad = [a for a in addrs if abroad(a)]
                    if bad:
                        yield Finding(
                            pd_id, SubjectKind.WEBSITE, f"website:{w.host}",
                            tuple(Reason("dc3.website_abroad", {"website": w.host,
                                                                "address": a}) for a in bad),
                            {"website": str(w.url), "hosting_addresses": addrs,
                             "outside": bad,
                             "source": "site model" + (" and probes" if probes else ""),
                             "probes": probes})


def _observed_hosting(targets: list[Target], agents: dict[int, Agent]
                      ) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """Per (PD, host name): the probes of the PD's agents (HTTP or TCP) that resolved it,
    with the addresses they last saw and when. Only the PD's own agents count, so that a
    pass over one PD (after its report) judges from the same evidence as the full pass."""
    out: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for t in targets:
        if not t.resolved:
            continue
        host = _host_of(t.kind, t.address)
        if not host:
            continue
        agent = agents.get(t.agent_pk)
        out.setdefault((t.pd_id, host), []).append({
            "agent": agent.agent_id if agent else None, "target": t.name, "kind": t.kind,
            "resolved": [str(a) for a in t.resolved], "resolved_at": t.resolved_at})
    return out


def _host_of(kind: str, address: str) -> str | None:
    host = address_host(address) if kind in ("http", "tcp") else None
    return host.lower().rstrip(".") if host else None
