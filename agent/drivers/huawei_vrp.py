"""Huawei VRP (AR routers, S/CE switches, NE/ATN) over SSH with netmiko (``huawei``) + TextFSM.

NAPALM has no maintained VRP driver that works over plain SSH, so this is netmiko with
ntc-templates. The host name is the one in the prompt (``<KANTOR-DINKES>``), which is how VRP
shows ``sysname``; the serial is the ESN (``display esn``, or ``display sn license`` on models
without the former).

Commands: ``display version``, ``display esn`` / ``display sn license``, ``display interface``,
``display lldp neighbor``, ``display arp all``, ``display ip routing-table`` (the public IPv4
table); config: ``display current-configuration``.
"""

from __future__ import annotations

import ipaddress
import re

from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    HUAWEI_REJECT,
    CliDriver,
    CliSession,
    Collected,
    ip_prefix,
    ipv4_host,
    ipv4_network,
    norm_mac,
    note_skipped,
    parse_textfsm,
    to_int,
    uptime_words,
    valid_hostname,
)
from contract.report import ArpEntry, DeviceAddress, DeviceInterface, LldpNeighbor, Route

PLATFORM = "huawei_vrp"
ROUTES_COMMAND = "display ip routing-table"
_ESN = re.compile(r"ESN\s+of\s+(?:the\s+)?(?:device|slot\s+\S+|chassis\s+\S+|master)\s*:\s*"
                  r"(?P<esn>[0-9A-Za-z]+)", re.I)


def parse_version(text: str) -> dict[str, object]:
    rows = parse_textfsm("huawei_vrp_display_version.textfsm", text)
    if not rows or not rows[0].get("vrp_version"):
        raise DriverError("parse", "display version: no 'VRP (R) software, Version' line")
    r = rows[0]
    version = r["vrp_version"]
    if r.get("product_version"):
        version = f"{version} ({r['product_version'].strip()})"
    return {"vendor": "Huawei", "model": (r.get("model") or "").strip() or None,
            "os_version": version[:255],
            "uptime_s": uptime_words(r["uptime"]) if r.get("uptime") else None}


def parse_esn(text: str) -> str | None:
    m = _ESN.search(text)
    return m.group("esn") if m else None


def parse_interfaces(text: str) -> tuple[list[DeviceInterface], list[DeviceAddress]]:
    ifaces: list[DeviceInterface] = []
    addrs: list[DeviceAddress] = []
    for r in parse_textfsm("huawei_vrp_display_interface.textfsm", text):
        link = r["link_status"].strip().lower()
        speed = to_int(r.get("speed"))
        ifaces.append(DeviceInterface(
            name=r["interface"], description=r["interface_description"].strip()[:255],
            mac=norm_mac(r["mac_address"]), mtu=to_int(r["mtu"]),
            speed_mbps=float(speed) if speed is not None else None,
            admin_up=not link.startswith("administratively"),
            oper_up=link == "up"))
        p = ip_prefix(r.get("ip_address") or "")
        if p:
            addrs.append(DeviceAddress(interface=r["interface"], address=p[0], prefix_len=p[1]))
    return ifaces, addrs


def parse_lldp(text: str) -> list[LldpNeighbor]:
    out = []
    for r in parse_textfsm("huawei_vrp_display_lldp_neighbor.textfsm", text):
        caps = r.get("capabilities") or r.get("system_capabilities_supported") or ""
        mgmt = r.get("mgmt_address") or ""
        desc = "\n".join(r.get("neighbor_description") or [])
        out.append(LldpNeighbor(
            local_port=r["local_interface"], remote_chassis_id=r.get("chassis_id") or "",
            remote_port_id=r.get("neighbor_port_id") or r.get("neighbor_interface") or "",
            remote_port_description=r.get("neighbor_interface") or "",
            remote_system_name=r.get("neighbor_name") or "",
            remote_system_description=desc[:1024],
            remote_mgmt_address=mgmt if ip_prefix(mgmt) else None,
            remote_capabilities=[c for c in caps.split() if c != "--"][:16]))
    return out


def parse_arp(text: str) -> list[ArpEntry]:
    out = []
    for r in parse_textfsm("huawei_vrp_display_arp_all.textfsm", text):
        mac = norm_mac(r["mac_address"])
        if mac is not None:
            out.append(ArpEntry(ip=r["ip_address"], mac=mac, interface=r["interface"] or None))
    return out


def parse_routes(text: str, notes: list[str] | None = None) -> list[Route]:
    """The routes in the FIB (flag ``D``), one per next hop, metric = Cost.

    Skipped: routes not downloaded to the FIB (no ``D``), black holes (``B``, ``NULL0``), the
    router's own addresses (``Direct`` via 127.0.0.1 or ``InLoopBack0``). A ``Direct`` route,
    or a static route through an interface (VRP shows the router's own address as its next
    hop), has no gateway. Malformed rows are skipped and counted in ``notes``.
    """
    rows = parse_textfsm("huawei_vrp_display_ip_routing-table.textfsm", text)
    own: set[str] = set()  # the router's own addresses, as VRP's table shows them
    for r in rows:
        if r["protocol"] == "Direct":
            hop, dst = r["next_hop"], r["destination"]
            if hop != "127.0.0.1":
                own.add(hop)
            elif dst.endswith("/32"):
                own.add(dst[:-3])
    out: list[Route] = []
    bad: list[str] = []
    for r in rows:
        flags, iface = r.get("flags") or "", r["interface"]
        if "D" not in flags or "B" in flags or iface.upper().startswith(("NULL", "INLOOPBACK")):
            continue
        dst = ipv4_network(r["destination"])
        cost = to_int(r["cost"])
        if dst is None or cost is None:
            bad.append(f"{r['destination'] or '(no destination)'} {r['protocol']}")
            continue
        hop = r["next_hop"]
        try:
            if ipaddress.IPv4Address(hop).is_loopback:
                continue  # one of the router's own addresses
        except ValueError:
            bad.append(f"{r['destination']} next hop {hop}")
            continue
        gateway = None if r["protocol"] == "Direct" or hop in own else ipv4_host(hop)
        out.append(Route(destination=dst, gateway=gateway, interface=iface[:64], metric=cost))
    note_skipped(notes, ROUTES_COMMAND, bad)
    return out


class HuaweiVrpDriver(CliDriver):
    platform = PLATFORM
    netmiko_type = "huawei"
    reject = HUAWEI_REJECT
    config_command = "display current-configuration"

    def collect(self, session: CliSession, out: Collected) -> None:
        def facts() -> None:
            out.facts.update(parse_version(session.send("display version")))
            out.facts["hostname"] = valid_hostname(session.prompt_name())
            out.facts["role"] = "router"

        def serial() -> None:
            try:
                esn = parse_esn(session.send("display esn"))
            except DriverError as e:
                if e.kind != "unsupported":
                    raise
                esn = None
            out.facts["serial"] = esn or parse_esn(session.send("display sn license"))
            if out.facts["serial"] is None:
                raise DriverError("parse", "no 'ESN of ...' line in display esn/sn license")

        def interfaces() -> None:
            ifaces, addrs = parse_interfaces(session.send("display interface"))
            out.interfaces.extend(ifaces)
            out.addresses.extend(addrs)

        out.run("facts", facts)
        if out.fatal():
            return
        out.run("serial", serial)
        out.run("interfaces", interfaces)
        out.run("lldp", lambda: out.lldp_neighbors.extend(
            parse_lldp(session.send("display lldp neighbor"))))
        out.run("arp", lambda: out.arp.extend(parse_arp(session.send("display arp all"))))
        out.run("routes", lambda: out.add_routes(
            parse_routes(session.send(ROUTES_COMMAND), out.notes), ROUTES_COMMAND))


@register(PLATFORM)
def factory() -> HuaweiVrpDriver:
    return HuaweiVrpDriver()
