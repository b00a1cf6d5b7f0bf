"""Network inventory: device observations and config snapshots applied on ingest, the
discovered topology of each PD, its comparison with the approved baseline, config versions.

Everything that writes takes the caller's connection, so ingest commits the inventory, the
topology changes it implies and the report ledger row in one transaction. The topology is built
by pure functions (:func:`build_topology`, :func:`diff_graphs`) over plain data, so it can be
tested without a database.

Topology of a PD:

- nodes: devices polled by the PD's agents (``managed``), LLDP neighbours not in the inventory
  (``unmanaged``), devices of another PD seen as neighbour or default gateway (``external``,
  e.g. the data-centre router), the intranet next hop when it is no known device (``uplink``),
  and ARP-learnt hosts summarised per device and port (``hosts``; located on a switch access
  port through the FDB when possible);
- links: LLDP links (one per cable, whichever end reported it), the uplink (default route next
  hop, or the LLDP link toward the external device), and the host summaries.

The baseline and the changes only consider device nodes (managed, unmanaged, external) and
LLDP/uplink links; host summaries move too often to be a topology change.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.engine import Connection

from collector.db import pds
from collector.db_inventory import (
    config_versions,
    device_interfaces,
    devices,
    lldp_neighbors,
    topology_baselines,
    topology_changes,
)
from contract.report import ConfigSnapshot, DeviceObservation, PollStatus

DEVICE_STALE_S = 3 * 86400.0  # a device nobody polled for this long has left the topology
DEFAULT_ROUTES = frozenset({"0.0.0.0/0", "::/0", "default"})
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
_FACTS = ("hostname", "vendor", "model", "serial", "os_version", "sys_object_id",
          "sys_description", "location", "contact", "uptime_s", "role")
_COUNTERS = ("in_octets", "out_octets", "in_errors", "out_errors", "in_discards",
             "out_discards")
_NO_HOST_MACS = frozenset({"ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"})


class InventoryError(Exception):
    """A request the inventory refuses; the message is safe to show."""


class NotFoundError(InventoryError):
    pass


class ConflictError(InventoryError):
    pass


class NodeKind(StrEnum):
    MANAGED = "managed"
    UNMANAGED = "unmanaged"
    EXTERNAL = "external"
    UPLINK = "uplink"
    HOSTS = "hosts"


class LinkKind(StrEnum):
    LLDP = "lldp"
    UPLINK = "uplink"
    HOSTS = "hosts"


class ChangeType(StrEnum):
    DEVICE_ADDED = "device_added"
    DEVICE_REMOVED = "device_removed"
    LINK_ADDED = "link_added"
    LINK_REMOVED = "link_removed"
    PORT_MOVED = "port_moved"


class ChangeStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


_ORDER = {k: i for i, k in enumerate(NodeKind)}
DEVICE_KINDS = frozenset({NodeKind.MANAGED, NodeKind.UNMANAGED, NodeKind.EXTERNAL})
DIFF_LINK_KINDS = frozenset({LinkKind.LLDP, LinkKind.UPLINK})


# --- plain data the topology is built from -------------------------------------------------

@dataclass(frozen=True)
class Iface:
    name: str
    index: int | None = None
    mac: str | None = None


@dataclass(frozen=True)
class Neighbor:
    """One LLDP row as a device reported it."""

    local_port: str
    remote_system_name: str = ""
    remote_chassis_id: str = ""
    remote_port_id: str = ""
    remote_port_description: str = ""
    remote_mgmt_address: str | None = None
    observed_at: float = 0.0
    report_id: str = ""

    def evidence(self, device: str) -> dict[str, Any]:
        return {"device": device, "local_port": self.local_port,
                "remote_system_name": self.remote_system_name,
                "remote_chassis_id": self.remote_chassis_id,
                "remote_port_id": self.remote_port_id,
                "remote_port_description": self.remote_port_description,
                "remote_mgmt_address": self.remote_mgmt_address,
                "observed_at": self.observed_at, "report_id": self.report_id}


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    pd: str
    mgmt_address: str = ""
    last_poll_at: float = 0.0
    hostname: str | None = None
    vendor: str | None = None
    model: str | None = None
    role: str | None = None
    status: str = "ok"
    addresses: tuple[str, ...] = ()
    interfaces: tuple[Iface, ...] = ()
    routes: tuple[dict[str, Any], ...] = ()
    arp: tuple[dict[str, Any], ...] = ()
    fdb: tuple[dict[str, Any], ...] = ()
    lldp: tuple[Neighbor, ...] = ()


@dataclass
class Node:
    id: str
    kind: NodeKind
    label: str
    vendor: str | None = None
    model: str | None = None
    mgmt_address: str | None = None
    role: str | None = None
    status: str | None = None
    pd: str | None = None
    hosts: int = 0
    host_sample: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "label": self.label,
                "vendor": self.vendor, "model": self.model, "mgmt_address": self.mgmt_address,
                "role": self.role, "status": self.status, "pd": self.pd, "hosts": self.hosts,
                "host_sample": self.host_sample}


@dataclass
class Link:
    a: str
    a_port: str
    b: str
    b_port: str
    kind: LinkKind
    evidence: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return link_key(self.a, self.a_port, self.b, self.b_port)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "a": self.a, "a_port": self.a_port, "b": self.b,
                "b_port": self.b_port, "kind": self.kind.value, "evidence": self.evidence}


@dataclass
class Topology:
    nodes: dict[str, Node] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    uplinks: list[dict[str, Any]] = field(default_factory=list)

    def add_node(self, node: Node) -> Node:
        return self.nodes.setdefault(node.id, node)

    def to_dict(self, *, hosts: bool = True) -> dict[str, Any]:
        nodes = [n for n in self.nodes.values() if hosts or n.kind is not NodeKind.HOSTS]
        links = [lk for lk in self.links if hosts or lk.kind is not LinkKind.HOSTS]
        return {"nodes": [n.to_dict() for n in sorted(nodes, key=lambda n: (_ORDER[n.kind],
                                                                            n.id))],
                "links": [lk.to_dict() for lk in sorted(links, key=lambda lk: lk.key)],
                "uplinks": self.uplinks}


def link_key(a: str, a_port: str, b: str, b_port: str) -> str:
    """The identity of a link, the same whichever end is named first."""
    ends = sorted([[a, a_port], [b, b_port]])
    return json.dumps(ends, ensure_ascii=False, separators=(",", ":"))


def mac_norm(value: str | None) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from the usual spellings (dashes, dots, none, upper case)."""
    if not value:
        return None
    hexes = re.sub(r"[\s:.\-]", "", value).lower()
    if len(hexes) != 12 or not re.fullmatch(r"[0-9a-f]{12}", hexes):
        return None
    return ":".join(hexes[i:i + 2] for i in range(0, 12, 2))


# --- building the topology -----------------------------------------------------------------

def _name_keys(name: str | None) -> list[str]:
    if not name:
        return []
    low = name.strip().lower()
    return [low, low.split(".", 1)[0]] if "." in low else [low]


def _addrs(d: DeviceInfo) -> list[str]:
    """A device's addresses that identify it: no loopback, link-local or unspecified ones,
    which many devices share."""
    out = []
    for a in (d.mgmt_address, *d.addresses):
        try:
            ip = ipaddress.ip_address(a)
        except ValueError:
            if a:
                out.append(a)  # a host name as management address
            continue
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            out.append(a)
    return out


class _Index:
    """Find the inventory device an LLDP row or an address points at."""

    def __init__(self, devs: Iterable[DeviceInfo]) -> None:
        self.by_name: dict[str, DeviceInfo] = {}
        self.by_addr: dict[str, DeviceInfo] = {}
        self.by_mac: dict[str, DeviceInfo] = {}
        for d in devs:
            for key in (*_name_keys(d.name), *_name_keys(d.hostname)):
                self.by_name.setdefault(key, d)
            for addr in _addrs(d):
                self.by_addr.setdefault(addr, d)
            for i in d.interfaces:
                if i.mac:
                    self.by_mac.setdefault(i.mac, d)

    def find(self, n: Neighbor) -> DeviceInfo | None:
        if n.remote_mgmt_address and n.remote_mgmt_address in self.by_addr:
            return self.by_addr[n.remote_mgmt_address]
        for key in _name_keys(n.remote_system_name):
            if key in self.by_name:
                return self.by_name[key]
        mac = mac_norm(n.remote_chassis_id)
        return self.by_mac.get(mac) if mac else None


def _port_label(n: Neighbor) -> str:
    """The best name for the remote port when the remote device is not in the inventory."""
    pid, desc = n.remote_port_id.strip(), n.remote_port_description.strip()
    if desc and (not pid or mac_norm(pid) or pid.isdigit()):
        return desc
    return pid or desc


def _resolve_port(dev: DeviceInfo, n: Neighbor) -> tuple[str, bool]:
    """Map the remote port of an LLDP row to one of ``dev``'s interfaces (name, confirmed)."""
    by_name = {i.name.lower(): i.name for i in dev.interfaces}
    pid, desc = n.remote_port_id.strip(), n.remote_port_description.strip()
    if pid.lower() in by_name:
        return by_name[pid.lower()], True
    mac = mac_norm(pid)
    if mac:
        owners = [i.name for i in dev.interfaces if i.mac == mac]
        if len(owners) == 1:
            return owners[0], True
    if desc.lower() in by_name:
        return by_name[desc.lower()], True
    if pid.isascii() and pid.isdigit() and len(pid) < 10:
        owners = [i.name for i in dev.interfaces if i.index == int(pid)]
        if len(owners) == 1:
            return owners[0], True
    return _port_label(n), False


def _unmanaged_id(n: Neighbor) -> str:
    name = n.remote_system_name.strip()
    if name:
        return name
    return f"chassis:{mac_norm(n.remote_chassis_id) or n.remote_chassis_id.strip() or '?'}"


def external_id(d: DeviceInfo) -> str:
    return f"{d.pd}:{d.name}"


@dataclass
class _Acc:
    ports: dict[str, str]
    confirmed: dict[str, bool]
    kind: LinkKind
    evidence: list[dict[str, Any]]


def _merge_links(halves: list[tuple[str, str, str, str, bool, LinkKind, dict[str, Any]]]
                 ) -> list[Link]:
    """One link per cable: exact matches on both ends first, then halves whose port on one end
    agrees and whose other end was only guessed (the remote port could not be resolved)."""
    exact: dict[str, _Acc] = {}
    for a, a_port, b, b_port, b_conf, kind, row in halves:
        key = link_key(a, a_port, b, b_port)
        acc = exact.get(key)
        if acc is None:
            acc = exact[key] = _Acc({a: a_port, b: b_port}, {a: False, b: False}, kind, [])
        acc.confirmed[a] = True
        acc.confirmed[b] = acc.confirmed[b] or b_conf
        if kind is LinkKind.UPLINK:
            acc.kind = LinkKind.UPLINK
        acc.evidence.append(row)
    groups: dict[frozenset[str], list[_Acc]] = defaultdict(list)
    for acc in exact.values():
        groups[frozenset(acc.ports)].append(acc)
    out: list[Link] = []
    for pair, accs in groups.items():
        merged = True
        while merged:
            merged = False
            for i in range(len(accs)):
                for j in range(i + 1, len(accs)):
                    m = _try_merge(pair, accs[i], accs[j])
                    if m is not None:
                        accs[i] = m
                        del accs[j]
                        merged = True
                        break
                if merged:
                    break
        for acc in accs:
            a, b = sorted(acc.ports)
            out.append(Link(a, acc.ports[a], b, acc.ports[b], acc.kind, acc.evidence))
    return out


def _try_merge(pair: frozenset[str], x: _Acc, y: _Acc) -> _Acc | None:
    for same in pair:
        (other,) = pair - {same}
        if x.ports[same] != y.ports[same]:
            continue
        if x.confirmed[other] and y.confirmed[other]:
            continue  # two confirmed ports: really two links (e.g. behind a hub)
        port = x.ports[other] if x.confirmed[other] else y.ports[other]
        kind = LinkKind.UPLINK if LinkKind.UPLINK in (x.kind, y.kind) else x.kind
        return _Acc({same: x.ports[same], other: port},
                    {same: x.confirmed[same] or y.confirmed[same],
                     other: x.confirmed[other] or y.confirmed[other]},
                    kind, x.evidence + y.evidence)
    return None


def build_topology(devs: Sequence[DeviceInfo], external: Sequence[DeviceInfo] = (), *,
                   now: float, stale_after_s: float = DEVICE_STALE_S) -> Topology:
    """The discovered topology of one PD from its devices (and known devices of other PDs)."""
    live = sorted((d for d in devs if now - d.last_poll_at <= stale_after_s),
                  key=lambda d: d.name)
    topo = Topology()
    for d in live:
        topo.add_node(Node(d.name, NodeKind.MANAGED, d.name, d.vendor, d.model,
                           d.mgmt_address or None, d.role, d.status, d.pd))
    local, ext = _Index(live), _Index(external)
    halves: list[tuple[str, str, str, str, bool, LinkKind, dict[str, Any]]] = []
    for d in live:
        for n in d.lldp:
            peer = local.find(n)
            kind = LinkKind.LLDP
            if peer is not None:
                if peer.name == d.name:
                    continue  # a device seeing itself (loop or shared chassis): not a link
                b_id = peer.name
                port, conf = _resolve_port(peer, n)
            elif (x := ext.find(n)) is not None:
                b_id, kind = external_id(x), LinkKind.UPLINK
                topo.add_node(Node(b_id, NodeKind.EXTERNAL, x.name, x.vendor, x.model,
                                   x.mgmt_address or None, x.role, x.status, x.pd))
                port, conf = _resolve_port(x, n)
            else:
                b_id = _unmanaged_id(n)
                topo.add_node(Node(b_id, NodeKind.UNMANAGED, n.remote_system_name.strip()
                                   or b_id, mgmt_address=n.remote_mgmt_address))
                port, conf = _port_label(n), False
            halves.append((d.name, n.local_port, b_id, port, conf, kind, n.evidence(d.name)))
    topo.links = _merge_links(halves)
    _add_uplinks(topo, live, ext)
    _add_hosts(topo, live, external)
    return topo


def _add_uplinks(topo: Topology, live: Sequence[DeviceInfo], ext: _Index) -> None:
    """The way out of the PD: each default route whose next hop is not one of the PD's own
    devices. Its peer is, in this order: a neighbour node with that management address, a
    device of another PD holding the address, the LLDP neighbour on the route's interface,
    else an ``uplink`` node standing for the intranet."""
    internal = {a for d in live for a in _addrs(d)}
    for d in live:
        for r in d.routes:
            gw = r.get("gateway")
            if r.get("destination") not in DEFAULT_ROUTES or not gw or gw in internal:
                continue
            port = str(r.get("interface") or "")
            peer = next((n for n in topo.nodes.values()
                         if n.kind is not NodeKind.MANAGED and n.mgmt_address == gw), None)
            if peer is None and (x := ext.by_addr.get(gw)) is not None:
                peer = topo.add_node(Node(external_id(x), NodeKind.EXTERNAL, x.name, x.vendor,
                                          x.model, x.mgmt_address or None, x.role, x.status,
                                          x.pd))
            if peer is None and port:
                on_port = [lk.b if lk.a == d.name else lk.a for lk in topo.links
                           if (d.name, port) in ((lk.a, lk.a_port), (lk.b, lk.b_port))]
                outside = [topo.nodes[n] for n in on_port
                           if topo.nodes[n].kind is not NodeKind.MANAGED]
                peer = outside[0] if len(outside) == 1 else None
            if peer is None:
                peer = topo.add_node(Node(f"uplink:{gw}", NodeKind.UPLINK, "Intranet",
                                          mgmt_address=gw))
            topo.uplinks.append({"device": d.name, "interface": port or None, "next_hop": gw,
                                 "peer": peer.id})
            existing = [lk for lk in topo.links if {lk.a, lk.b} == {d.name, peer.id}]
            if existing:
                for lk in existing:
                    lk.kind = LinkKind.UPLINK
                continue
            a, b = sorted([(d.name, port), (peer.id, "")])
            topo.links.append(Link(a[0], a[1], b[0], b[1], LinkKind.UPLINK,
                                   [{"device": d.name, "route": dict(r)}]))


def _add_hosts(topo: Topology, live: Sequence[DeviceInfo],
               external: Sequence[DeviceInfo]) -> None:
    infra_ips = {a for d in (*live, *external) for a in _addrs(d)}
    infra_ips |= {n.mgmt_address for n in topo.nodes.values() if n.mgmt_address}
    infra_ips |= {str(u["next_hop"]) for u in topo.uplinks}
    infra_macs = {i.mac for d in live for i in d.interfaces if i.mac} | _NO_HOST_MACS
    for d in live:
        for n in d.lldp:
            if (m := mac_norm(n.remote_chassis_id)) is not None:
                infra_macs.add(m)
    link_ports = {(lk.a, lk.a_port) for lk in topo.links} | {(lk.b, lk.b_port)
                                                              for lk in topo.links}
    located: dict[str, tuple[str, str]] = {}
    for d in live:
        for e in d.fdb:
            port, mac = e.get("port"), e.get("mac")
            if port and mac and (d.name, port) not in link_ports:
                located.setdefault(mac, (d.name, str(port)))
    groups: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for d in live:
        for e in d.arp:
            ip, mac = str(e.get("ip", "")), str(e.get("mac", ""))
            if not mac or ip in infra_ips or mac in infra_macs:
                continue
            where = located.get(mac) or (d.name, str(e.get("interface") or ""))
            groups[where].setdefault(mac, ip)
    for (dev, port), hosts in sorted(groups.items()):
        node = topo.add_node(Node(f"hosts:{dev}:{port}", NodeKind.HOSTS, f"{len(hosts)} host",
                                  hosts=len(hosts), host_sample=sorted(hosts.values())[:5]))
        topo.links.append(Link(dev, port, node.id, "", LinkKind.HOSTS))


# --- comparing with the baseline -----------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    type: ChangeType
    key: str
    summary: str      # Bahasa Indonesia
    summary_en: str
    detail: dict[str, Any]
    evidence: dict[str, Any]


def _end(node: str, port: str) -> str:
    return f"{node} {port}".strip()


def _link_text(lk: dict[str, Any]) -> str:
    return f"{_end(lk['a'], lk['a_port'])} — {_end(lk['b'], lk['b_port'])}"


def _bounded(key: str) -> str:
    if len(key) <= 1000:
        return key
    return key[:900] + "#" + hashlib.sha256(key.encode()).hexdigest()


def diff_graphs(base: dict[str, Any], cur: dict[str, Any]) -> list[Finding]:
    """Differences of the current topology from the baseline (both as ``Topology.to_dict``)."""
    b_nodes = {n["id"]: n for n in base.get("nodes", []) if n["kind"] in DEVICE_KINDS}
    c_nodes = {n["id"]: n for n in cur.get("nodes", []) if n["kind"] in DEVICE_KINDS}
    b_links = {lk["key"]: lk for lk in base.get("links", []) if lk["kind"] in DIFF_LINK_KINDS}
    c_links = {lk["key"]: lk for lk in cur.get("links", []) if lk["kind"] in DIFF_LINK_KINDS}
    added_nodes = sorted(c_nodes.keys() - b_nodes.keys())
    removed_nodes = sorted(b_nodes.keys() - c_nodes.keys())
    out: list[Finding] = []
    for nid in added_nodes:
        n = c_nodes[nid]
        links = [lk for lk in c_links.values() if nid in (lk["a"], lk["b"])]
        out.append(Finding(
            ChangeType.DEVICE_ADDED, _bounded(f"device_added|{nid}"),
            f"Perangkat baru terdeteksi: {nid}", f"New device detected: {nid}",
            {"node": n, "links": [_strip(lk) for lk in links]},
            {"lldp": [row for lk in links for row in lk["evidence"]]}))
    for nid in removed_nodes:
        n = b_nodes[nid]
        links = [lk for lk in b_links.values() if nid in (lk["a"], lk["b"])]
        out.append(Finding(
            ChangeType.DEVICE_REMOVED, _bounded(f"device_removed|{nid}"),
            f"Perangkat hilang dari topologi: {nid}", f"Device gone from the topology: {nid}",
            {"node": n, "links": [_strip(lk) for lk in links]},
            {"baseline_lldp": [row for lk in links for row in lk["evidence"]]}))
    moved_nodes = set(added_nodes) | set(removed_nodes)

    def _implied(lk: dict[str, Any]) -> bool:  # covered by a device added/removed finding
        return lk["a"] in moved_nodes or lk["b"] in moved_nodes

    removed = [b_links[k] for k in sorted(b_links.keys() - c_links.keys())
               if not _implied(b_links[k])]
    added = [c_links[k] for k in sorted(c_links.keys() - b_links.keys())
             if not _implied(c_links[k])]
    for old, new in _pair_moves(removed, added):
        removed.remove(old)
        added.remove(new)
        key = _bounded(f"port_moved|{old['key']}|{new['key']}")
        out.append(Finding(
            ChangeType.PORT_MOVED, key,
            f"Port berpindah: {_link_text(old)} menjadi {_link_text(new)}",
            f"Port moved: {_link_text(old)} is now {_link_text(new)}",
            {"from": _strip(old), "to": _strip(new)},
            {"lldp": new["evidence"], "baseline_lldp": old["evidence"]}))
    for lk in removed:
        out.append(Finding(
            ChangeType.LINK_REMOVED, _bounded(f"link_removed|{lk['key']}"),
            f"Link terputus: {_link_text(lk)}", f"Link removed: {_link_text(lk)}",
            {"link": _strip(lk)}, {"baseline_lldp": lk["evidence"]}))
    for lk in added:
        out.append(Finding(
            ChangeType.LINK_ADDED, _bounded(f"link_added|{lk['key']}"),
            f"Link baru: {_link_text(lk)}", f"New link: {_link_text(lk)}",
            {"link": _strip(lk)}, {"lldp": lk["evidence"]}))
    return out


def _strip(lk: dict[str, Any]) -> dict[str, Any]:
    return {k: lk[k] for k in ("key", "a", "a_port", "b", "b_port", "kind")}


def _pair_moves(removed: list[dict[str, Any]], added: list[dict[str, Any]]
                ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Removed and added links between the same two nodes are one link on other ports;
    links that keep one end's port are paired first."""
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    free = list(added)
    for strict in (True, False):
        for old in removed:
            if any(old is p[0] for p in pairs):
                continue
            for new in free:
                if {old["a"], old["b"]} != {new["a"], new["b"]}:
                    continue
                if strict and not ({(old["a"], old["a_port"]), (old["b"], old["b_port"])}
                                   & {(new["a"], new["a_port"]), (new["b"], new["b_port"])}):
                    continue
                pairs.append((old, new))
                free.remove(new)
                break
    return pairs


# --- ingest --------------------------------------------------------------------------------

def _txt(value: Any) -> Any:
    """Text as the database can hold it (PostgreSQL refuses NUL characters)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _txt(v) for k, v in values.items()}


def _jsonable(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [_clean(i.model_dump(mode="json")) for i in items]


def _bounded_int(v: int | None, limit: int) -> int | None:
    return v if v is not None and v <= limit else None


def apply_report(c: Connection, *, pd_id: int, agent_pk: int, report_id: str,
                 observations: Sequence[object]) -> None:
    """Apply a report's device observations and config snapshots in the caller's
    transaction, then record the topology changes they cause."""
    devs = sorted((o for o in observations if isinstance(o, DeviceObservation)),
                  key=lambda o: o.observed_at)
    cfgs = sorted((o for o in observations if isinstance(o, ConfigSnapshot)),
                  key=lambda o: o.observed_at)
    for d in devs:
        _apply_device(c, pd_id, agent_pk, report_id, d)
    for s in cfgs:
        _apply_config(c, pd_id, agent_pk, report_id, s)
    if devs:
        refresh_changes(c, pd_id, report_id, max(d.observed_at.timestamp() for d in devs))


def _apply_device(c: Connection, pd_id: int, agent_pk: int, rid: str,
                  o: DeviceObservation) -> None:
    ts = o.observed_at.timestamp()
    row = c.execute(select(devices.c.id, devices.c.last_poll_at)
                    .where(devices.c.pd_id == pd_id, devices.c.name == o.device)).first()
    if row is not None and ts < row.last_poll_at:
        return  # older than the state we hold (a replayed spool): metrics only
    values: dict[str, Any] = dict(
        agent_pk=agent_pk, mgmt_address=o.mgmt_address, driver=o.driver, last_poll_at=ts,
        last_status=o.status.value, last_error_type=o.error_type, last_error=o.error,
        last_duration_s=o.duration_s, last_report_id=rid)
    answered = o.status is not PollStatus.FAILED
    full = o.status is PollStatus.OK  # partial: keep what this poll could not read
    if answered:
        values["last_seen"] = ts
        values.update({k: getattr(o, k) for k in _FACTS if getattr(o, k) is not None})
        if full or o.addresses:
            values["addresses"] = _jsonable(o.addresses)
        if full or o.routes:
            values["routes"] = _jsonable(o.routes)
        if full or o.arp:
            values["arp"] = _jsonable(o.arp)
        if full or o.fdb:
            values["fdb"] = _jsonable(o.fdb)
    values = _clean(values)
    if row is None:
        for k in ("addresses", "routes", "arp", "fdb"):
            values.setdefault(k, [])
        res = c.execute(insert(devices).values(pd_id=pd_id, name=o.device, first_seen=ts,
                                               **values))
        device_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    else:
        device_id = int(row.id)
        c.execute(update(devices).where(devices.c.id == device_id).values(**values))
    if answered and (full or o.interfaces):
        c.execute(device_interfaces.delete().where(device_interfaces.c.device_id == device_id))
        rows, seen = [], set()
        for i in o.interfaces:
            if not i.name or i.name in seen:
                continue  # nameless or repeated rows from a confused device: first one wins
            seen.add(i.name)
            rows.append(_clean(dict(
                device_id=device_id, name=i.name, if_index=_bounded_int(i.index, _INT32_MAX),
                description=i.description, type=i.type, mac=i.mac,
                mtu=_bounded_int(i.mtu, _INT32_MAX), speed_mbps=i.speed_mbps,
                admin_up=i.admin_up, oper_up=i.oper_up, updated_at=ts,
                **{k: _bounded_int(getattr(i, k), _INT64_MAX) for k in _COUNTERS})))
        if rows:
            c.execute(insert(device_interfaces), rows)
    if answered and (full or o.lldp_neighbors):
        c.execute(lldp_neighbors.delete().where(lldp_neighbors.c.device_id == device_id))
        nrows = [_clean(dict(
            device_id=device_id, local_port=n.local_port, remote_chassis_id=n.remote_chassis_id,
            remote_port_id=n.remote_port_id, remote_port_description=n.remote_port_description,
            remote_system_name=n.remote_system_name,
            remote_system_description=n.remote_system_description,
            remote_mgmt_address=n.remote_mgmt_address,
            remote_capabilities=[_txt(x) for x in n.remote_capabilities], observed_at=ts,
            report_id=rid)) for n in o.lldp_neighbors]
        if nrows:
            c.execute(insert(lldp_neighbors), nrows)


def _apply_config(c: Connection, pd_id: int, agent_pk: int, rid: str,
                  s: ConfigSnapshot) -> None:
    ts = s.observed_at.timestamp()
    device_id = c.execute(select(devices.c.id).where(devices.c.pd_id == pd_id,
                                                     devices.c.name == s.device)).scalar()
    if device_id is None:  # a config backup of a device not polled for facts (yet)
        res = c.execute(insert(devices).values(
            pd_id=pd_id, agent_pk=agent_pk, name=s.device, mgmt_address="", driver=s.driver,
            addresses=[], routes=[], arp=[], fdb=[], first_seen=ts, last_poll_at=ts,
            last_status="unknown", last_report_id=rid))
        device_id = res.inserted_primary_key[0]  # type: ignore[index]
    prev = c.execute(select(config_versions.c.id, config_versions.c.sha256,
                            config_versions.c.last_seen)
                     .where(config_versions.c.device_id == device_id,
                            config_versions.c.observed_at <= ts)
                     .order_by(config_versions.c.observed_at.desc(),
                               config_versions.c.id.desc()).limit(1)).first()
    if prev is not None and prev.sha256 == s.sha256:
        if ts > prev.last_seen:
            c.execute(update(config_versions).where(config_versions.c.id == prev.id)
                      .values(last_seen=ts))
        return
    c.execute(insert(config_versions).values(
        device_id=device_id, sha256=s.sha256, size=len(s.content.encode()),
        masked_secrets=s.masked_secrets, ignored_lines=s.ignored_lines, driver=_txt(s.driver),
        content=_txt(s.content), observed_at=ts, last_seen=ts, report_id=rid))


# --- topology from the database ------------------------------------------------------------

@dataclass(frozen=True)
class PdRef:
    id: int
    code: str
    name: str


def pd_by_code(c: Connection, code: str) -> PdRef:
    row = c.execute(select(pds.c.id, pds.c.code, pds.c.name).where(pds.c.code == code)).first()
    if row is None:
        raise NotFoundError(f"no PD {code!r}")
    return PdRef(int(row.id), row.code, row.name)


def _device_infos(c: Connection, where: Any, *, with_lldp: bool) -> list[DeviceInfo]:
    rows = c.execute(select(devices, pds.c.code.label("pd_code"))
                     .join(pds, pds.c.id == devices.c.pd_id).where(where)).all()
    if not rows:
        return []
    ids = [r.id for r in rows]
    ifaces: dict[int, list[Iface]] = defaultdict(list)
    neigh: dict[int, list[Neighbor]] = defaultdict(list)
    for chunk in _chunks(ids, 500):
        for i in c.execute(select(device_interfaces.c.device_id, device_interfaces.c.name,
                                  device_interfaces.c.if_index, device_interfaces.c.mac)
                           .where(device_interfaces.c.device_id.in_(chunk))):
            ifaces[i.device_id].append(Iface(i.name, i.if_index, i.mac))
        if with_lldp:
            for n in c.execute(select(lldp_neighbors)
                               .where(lldp_neighbors.c.device_id.in_(chunk))
                               .order_by(lldp_neighbors.c.id)):
                neigh[n.device_id].append(Neighbor(
                    n.local_port, n.remote_system_name, n.remote_chassis_id, n.remote_port_id,
                    n.remote_port_description, n.remote_mgmt_address, n.observed_at,
                    n.report_id))
    return [DeviceInfo(
        name=r.name, pd=r.pd_code, mgmt_address=r.mgmt_address, last_poll_at=r.last_poll_at,
        hostname=r.hostname, vendor=r.vendor, model=r.model, role=r.role, status=r.last_status,
        addresses=tuple(str(a.get("address", "")) for a in r.addresses or []),
        interfaces=tuple(ifaces[r.id]), routes=tuple(r.routes or []), arp=tuple(r.arp or []),
        fdb=tuple(r.fdb or []), lldp=tuple(neigh[r.id])) for r in rows]


def current_topology(c: Connection, pd_id: int, now: float) -> Topology:
    local = _device_infos(c, devices.c.pd_id == pd_id, with_lldp=True)
    # devices of other PDs this PD's devices point at: LLDP names/addresses, default gateways
    names: set[str] = set()
    addrs: set[str] = set()
    known = {k for d in local for k in (*_name_keys(d.name), *_name_keys(d.hostname))}
    own_addrs = {a for d in local for a in (d.mgmt_address, *d.addresses)}
    for d in local:
        for n in d.lldp:
            if not set(_name_keys(n.remote_system_name)) & known:
                names.update(_name_keys(n.remote_system_name))
            if n.remote_mgmt_address and n.remote_mgmt_address not in own_addrs:
                addrs.add(n.remote_mgmt_address)
        for r in d.routes:
            if r.get("destination") in DEFAULT_ROUTES and r.get("gateway"):
                addrs.add(str(r["gateway"]))
    external: list[DeviceInfo] = []
    if names or addrs:
        cond = or_(func.lower(devices.c.name).in_(sorted(names)),
                   func.lower(devices.c.hostname).in_(sorted(names)),
                   devices.c.mgmt_address.in_(sorted(addrs)))
        external = _device_infos(c, (devices.c.pd_id != pd_id) & cond, with_lldp=False)
    return build_topology(local, external, now=now)


def _chunks(seq: Sequence[int], n: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


# --- baseline and changes ------------------------------------------------------------------

def latest_baseline(c: Connection, pd_id: int) -> Any:
    return c.execute(select(topology_baselines).where(topology_baselines.c.pd_id == pd_id)
                     .order_by(topology_baselines.c.id.desc()).limit(1)).first()


def approve_baseline(c: Connection, pd_code: str, approved_by: str, now: float
                     ) -> dict[str, Any]:
    """Store the current topology as the PD's baseline; open changes are superseded."""
    pd = pd_by_code(c, pd_code)
    graph = current_topology(c, pd.id, now).to_dict(hosts=False)
    if not any(n["kind"] == NodeKind.MANAGED for n in graph["nodes"]):
        raise ConflictError(f"PD {pd.code!r} has no discovered devices yet; nothing to approve")
    res = c.execute(insert(topology_baselines).values(pd_id=pd.id, approved_at=now,
                                                      approved_by=approved_by, graph=graph))
    c.execute(update(topology_changes)
              .where(topology_changes.c.pd_id == pd.id,
                     topology_changes.c.status == ChangeStatus.OPEN.value)
              .values(status=ChangeStatus.RESOLVED.value, resolution="superseded",
                      resolved_at=now, open_key=None))
    return {"id": int(res.inserted_primary_key[0]),  # type: ignore[index]
            "pd": pd.code, "approved_at": now, "approved_by": approved_by,
            "nodes": len(graph["nodes"]), "links": len(graph["links"])}


def refresh_changes(c: Connection, pd_id: int, report_id: str, now: float) -> None:
    """Compare the PD's topology with its baseline and bring the change records up to date:
    a new difference opens a change (once), a vanished one resolves it."""
    base = latest_baseline(c, pd_id)
    if base is None:
        return
    findings = diff_graphs(base.graph, current_topology(c, pd_id, now).to_dict(hosts=False))
    open_rows = {r.change_key: r for r in c.execute(
        select(topology_changes.c.id, topology_changes.c.change_key,
               topology_changes.c.last_seen)
        .where(topology_changes.c.pd_id == pd_id,
               topology_changes.c.status == ChangeStatus.OPEN.value))}
    for f in findings:
        row = open_rows.pop(f.key, None)
        if row is not None:
            if now > row.last_seen:
                c.execute(update(topology_changes).where(topology_changes.c.id == row.id)
                          .values(last_seen=now))
            continue
        c.execute(insert(topology_changes).values(
            pd_id=pd_id, baseline_id=base.id, change_type=f.type.value, change_key=f.key,
            open_key=f.key, summary=f.summary,
            detail={**f.detail, "summary_en": f.summary_en},
            evidence={"report_id": report_id, "observed_at": now, **f.evidence},
            first_seen=now, last_seen=now, report_id=report_id,
            status=ChangeStatus.OPEN.value, acknowledged=False))
    for row in open_rows.values():
        c.execute(update(topology_changes).where(topology_changes.c.id == row.id).values(
            status=ChangeStatus.RESOLVED.value, resolution="restored", resolved_at=now,
            resolved_report_id=report_id, open_key=None))


def ack_change(c: Connection, change_id: int, by: str, note: str, now: float
               ) -> dict[str, Any]:
    row = c.execute(select(topology_changes.c.id, topology_changes.c.acknowledged,
                           topology_changes.c.acked_by)
                    .where(topology_changes.c.id == change_id)).first()
    if row is None:
        raise NotFoundError(f"no change {change_id}")
    if row.acknowledged:
        raise ConflictError(f"change {change_id} was acknowledged already by {row.acked_by}")
    c.execute(update(topology_changes).where(topology_changes.c.id == change_id)
              .values(acknowledged=True, acked_at=now, acked_by=by, ack_note=_txt(note)))
    return {"id": change_id, "acknowledged": True, "acked_at": now, "acked_by": by,
            "ack_note": note}


# --- config versions -----------------------------------------------------------------------

def config_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=old_label, tofile=new_label))
