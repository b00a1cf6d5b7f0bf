"""Helpers shared by several rules (not a rule): routes and addresses of a PD's devices and
agent hosts, which hosts sit in the Pusat Data or DRC (colocated: not part of the PD's own
network), month windows and downtime from probe state transitions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.compliance.profile import SiteCfg, is_public, parse_ip
from collector.compliance.state import Host, State
from collector.uptime import Transition, availability

DEFAULT_ROUTES = frozenset({"0.0.0.0/0", "::/0", "default"})


@dataclass(slots=True)
class Node:
    """A device polled by an agent, or an agent's own host, with its layer-3 facts."""

    kind: str                 # "device" | "host"
    name: str
    pd_id: int
    role: str | None
    addresses: tuple[tuple[str, str | None], ...]   # (address, interface)
    routes: tuple[dict[str, Any], ...]
    seen_at: float | None
    report_id: str | None

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.name}"

    def evidence(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "role": self.role,
                "seen_at": self.seen_at, "report_id": self.report_id}


def usable_addresses(addresses: Sequence[str]) -> list[str]:
    """The IP addresses that say where a host is (not loopback, link-local or unparsable)."""
    return [a for a in addresses if (ip := parse_ip(a)) is not None
            and not (ip.is_loopback or ip.is_link_local)]


def in_pusat_data_or_drc(addr: str, site: SiteCfg) -> bool:
    return site.in_pusat_data(addr) or site.in_drc(addr)


def is_colocated(addresses: Sequence[str], site: SiteCfg) -> bool:
    """True when one of the usable addresses lies in a Pusat Data or DRC subnet: the host is
    in the Pusat Data (as DC-1 counts it), not in the PD's own network."""
    return any(in_pusat_data_or_drc(a, site) for a in usable_addresses(addresses))


def host_addresses(h: Host) -> list[str]:
    return [str(a.get("address", "")) for a in h.addresses or []]


def colocated_server_agents(state: State, site: SiteCfg) -> set[int]:
    """Agents (pk) that run in server mode on a host in the Pusat Data or DRC, judged on the
    host the agent reported last: a PD's colocated server, not a PD-side agent."""
    latest: dict[int, Host] = {}
    for h in state.hosts:
        seen = latest.get(h.agent_pk)
        if seen is None or h.last_seen > seen.last_seen:
            latest[h.agent_pk] = h
    return {pk for pk, h in latest.items()
            if h.server_mode and is_colocated(host_addresses(h), site)}


def pd_nodes(state: State) -> dict[int, list[Node]]:
    hit: dict[int, list[Node]] | None = state.memo.get("pd_nodes")
    if hit is not None:
        return hit
    out: dict[int, list[Node]] = defaultdict(list)
    for d in state.devices:
        if d.last_seen is None:
            continue  # never answered: no facts
        addrs = [(d.mgmt_address, None)] if parse_ip(d.mgmt_address) else []
        addrs += [(str(a.get("address", "")), a.get("interface")) for a in d.addresses or []]
        out[d.pd_id].append(Node("device", d.name, d.pd_id, d.role, tuple(addrs),
                                 tuple(d.routes or []), d.last_seen, d.last_report_id))
    agent_report = {a.pk: a.last_report_id for a in state.agents}
    for h in state.hosts:
        if h.last_seen < state.now - state.device_forget_s:
            continue  # an agent host that no longer reports
        addrs = [(str(a.get("address", "")), a.get("interface")) for a in h.addresses or []]
        out[h.pd_id].append(Node("host", h.hostname, h.pd_id, "server" if h.server_mode
                                 else "host", tuple(addrs), tuple(h.routes or []),
                                 h.last_seen, agent_report.get(h.agent_pk)))
    state.memo["pd_nodes"] = out
    return out


def own_addresses(nodes: Sequence[Node]) -> dict[str, Node]:
    return {a: n for n in nodes for a, _ in n.addresses if a}


def outside_routes(node: Node, site: SiteCfg, own: dict[str, Node],
                   intranet: dict[str, bool] | None = None) -> list[dict[str, Any]]:
    """Default routes whose next hop is neither a Jaringan Intra gateway nor another device
    of the same PD (which forwards toward the intranet itself). Needs ``intranet_gateways``;
    without them nothing can be judged and nothing is returned. ``intranet`` memoises the
    gateway check over a pass."""
    if not site.intranet_gateways:
        return []
    out = []
    for r in node.routes:
        if r.get("destination") not in DEFAULT_ROUTES:
            continue
        gw = r.get("gateway")
        if not gw:
            continue
        g = str(gw)
        if g in own:
            continue
        ok = intranet.get(g) if intranet is not None else None
        if ok is None:
            ok = site.is_intranet_gateway(g)
            if intranet is not None:
                intranet[g] = ok
        if ok:
            continue
        out.append({"destination": r.get("destination"), "gateway": gw,
                    "interface": r.get("interface")})
    return out


def foreign_public(node: Node, site: SiteCfg) -> list[dict[str, Any]]:
    """Public addresses on the node that are not in Dinas' allocation."""
    return [{"address": a, "interface": i} for a, i in node.addresses
            if is_public(a) and not site.in_public_allocation(a)]


@dataclass(frozen=True)
class Paths:
    """A node's ways to the internet that bypass the Jaringan Intra (NET-1, NET-2)."""

    node: Node
    routes: list[dict[str, Any]]      # default routes not via the intranet nor the PD itself
    public: list[dict[str, Any]]      # public addresses outside Dinas' allocation


def internet_paths(state: State, site: SiteCfg) -> dict[int, tuple[list[Node], list[Paths]]]:
    """Per PD: its nodes, and those with a path to the internet of their own (computed once
    per pass for both rules). An agent host in the Pusat Data or DRC (:func:`is_colocated`)
    is on Dinas' network, not the PD's: it never counts as a path."""
    hit: dict[int, tuple[list[Node], list[Paths]]] | None = state.memo.get("internet_paths")
    if hit is not None:
        return hit
    out: dict[int, tuple[list[Node], list[Paths]]] = {}
    intranet: dict[str, bool] = {}
    for pd_id, nodes in pd_nodes(state).items():
        own = own_addresses(nodes)
        paths = []
        for n in nodes:
            if n.kind == "host" and is_colocated([a for a, _ in n.addresses], site):
                continue
            routes = outside_routes(n, site, own, intranet)
            public = foreign_public(n, site)
            if routes or public:
                paths.append(Paths(n, routes, public))
        out[pd_id] = (nodes, paths)
    state.memo["internet_paths"] = out
    return out


# --- availability ---------------------------------------------------------------------------

def month_window(now: float, tz: ZoneInfo) -> tuple[float, float, str]:
    """Start and end (epoch) of the calendar month containing ``now`` in ``tz``, "YYYY-MM"."""
    local = datetime.fromtimestamp(now, tz)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = start.replace(year=start.year + 1, month=1) if start.month == 12 \
        else start.replace(month=start.month + 1)
    return start.timestamp(), nxt.timestamp(), f"{start.year:04d}-{start.month:02d}"


@dataclass(frozen=True)
class Downtime:
    down_s: float
    known_s: float
    outages: list[dict[str, Any]]


def downtime(transitions: Sequence[Transition], start: float, end: float,
             max_outages: int = 20) -> Downtime:
    """Down and known seconds in [start, end) from time-ordered transitions (the first may
    be before ``start``: the state in force then), as the uptime API counts them
    (:func:`collector.uptime.availability`), with the outages (from, to, report)."""
    a = availability(transitions, start, end)
    state: str | None = None
    outages: list[dict[str, Any]] = []
    for t in transitions:
        at = max(t.at, start)
        if at >= end:
            break
        if t.state == "down" and state != "down":
            outages.append({"from": at, "to": None, "report_id": t.report_id})
        elif t.state != "down" and state == "down" and outages:
            outages[-1]["to"] = at
        state = t.state
    return Downtime(a.down_s, a.known_s, outages[-max_outages:])
