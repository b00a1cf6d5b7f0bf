"""MikroTik RouterOS (v6 and v7) over SSH with netmiko (``mikrotik_routeros``) + TextFSM.

NAPALM has only an unmaintained community driver for RouterOS (and it uses the binary API on
port 8728, not SSH), so this is netmiko with ntc-templates. netmiko logs in as
``<user>+ct511w4098h`` (RouterOS login options: no colours, dumb terminal, 511 columns), so
tables come one record per line.

Commands: ``/system identity print``, ``/system resource print``, ``/system routerboard print``
(model and serial; CHR has none), ``/interface print detail without-paging``,
``/ip address print without-paging``, ``/ip arp print without-paging``,
``/ip neighbor print detail without-paging`` (MNDP/CDP/LLDP),
``/ip route print terse without-paging`` (the IPv4 routes); config: ``/export``.
"""

from __future__ import annotations

import re

from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    ROUTEROS_REJECT,
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
    valid_hostname,
)
from contract.report import ArpEntry, DeviceAddress, DeviceInterface, LldpNeighbor, Route

PLATFORM = "routeros"
ROUTES_COMMAND = "/ip route print terse without-paging"
_UPTIME_UNITS = (("uptime_weeks", 604_800), ("uptime_days", 86_400), ("uptime_hours", 3_600),
                 ("uptime_minutes", 60), ("uptime_seconds", 1))


def parse_identity(text: str) -> str | None:
    rows = parse_textfsm("mikrotik_routeros_system_identity_print.textfsm", text)
    return valid_hostname(rows[0]["name"]) if rows else None


def parse_resource(text: str) -> dict[str, object]:
    rows = parse_textfsm("mikrotik_routeros_system_resource_print.textfsm", text)
    if not rows or not rows[0].get("version"):
        raise DriverError("parse", "/system resource print: no 'version:' line")
    r = rows[0]
    uptime = sum((to_int(r.get(k)) or 0) * mult for k, mult in _UPTIME_UNITS)
    return {"vendor": "MikroTik", "os_version": r["version"].split()[0],
            "model": (r.get("board_name") or "").strip() or None,
            "uptime_s": float(uptime) if r.get("uptime") else None}


def parse_routerboard(text: str) -> tuple[str | None, str | None]:
    """(model, serial); both None on CHR/x86 ("routerboard: no")."""
    rows = parse_textfsm("mikrotik_routeros_system_routerboard_print.textfsm", text)
    if not rows or rows[0].get("routerboard") != "yes":
        return None, None
    r = rows[0]
    return (r.get("hardware_model") or "").strip() or None, r.get("serial_number") or None


def parse_interfaces(text: str) -> list[DeviceInterface]:
    out = []
    for r in parse_textfsm("mikrotik_routeros_interface_print_detail.textfsm", text):
        status = r.get("status") or ""
        out.append(DeviceInterface(
            name=r["name"], index=to_int(r.get("id")),
            description=" ".join(r.get("description") or []).strip()[:255],
            type=r.get("type") or None, mac=norm_mac(r.get("mac_address")),
            mtu=to_int(r.get("actual_mtu")) or to_int(r.get("mtu")),
            admin_up=status != "X", oper_up=status == "R"))
    return out


def parse_addresses(text: str) -> list[DeviceAddress]:
    out = []
    for r in parse_textfsm("mikrotik_routeros_ip_address_print.textfsm", text):
        if "X" in (r.get("flags") or "") or "I" in (r.get("flags") or ""):
            continue  # disabled or invalid
        p = ip_prefix(f"{r['ip']}/{r['subnet']}")
        if p:
            out.append(DeviceAddress(interface=r["interface"].strip() or None,
                                     address=p[0], prefix_len=p[1]))
    return out


def parse_arp(text: str) -> list[ArpEntry]:
    out = []
    for r in parse_textfsm("mikrotik_routeros_ip_arp_print_without-paging.textfsm", text):
        mac = norm_mac(r.get("mac_address"))
        if mac is not None and ip_prefix(r["ip_address"]):
            out.append(ArpEntry(ip=r["ip_address"], mac=mac, interface=r["interface"] or None))
    return out


def parse_neighbors(text: str) -> list[LldpNeighbor]:
    out = []
    for r in parse_textfsm("mikrotik_routeros_ip_neighbor_print_detail.textfsm", text):
        mgmt = r.get("ipv4_address") or r.get("ip_address") or ""
        caps = (r.get("system_caps_enabled") or r.get("system_caps") or "").split(",")
        desc = r.get("system_description") or " ".join(
            x for x in (r.get("platform"), r.get("board"), r.get("version")) if x)
        out.append(LldpNeighbor(
            local_port=r["interface"], remote_chassis_id=norm_mac(r.get("mac_address")) or "",
            remote_port_id=r.get("interface_name") or "",
            remote_system_name=r.get("identity") or "",
            remote_system_description=desc[:1024],
            remote_mgmt_address=mgmt if ip_prefix(mgmt) else None,
            remote_capabilities=[c for c in caps if c][:16]))
    return out


# "key=value key=value": a new attribute starts where a word is followed by "=" (values such as
# gateway-status "10.0.0.1 reachable via  ether1" or an unquoted comment hold spaces, no "=")
_ATTR_START = re.compile(r"\s+(?=[a-z][a-z0-9.-]*=)")
# gateway-status "... reachable via  ether1" / "... recursive via 10.0.0.1 ether5"
_VIA = re.compile(r"\bvia\s+(?:\S+\s+)?(?P<iface>[^\s,]+)\s*$")
_DOTTED = re.compile(r"^[\d.]+$")


def _attributes(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _ATTR_START.split(text.strip()):
        key, sep, value = part.partition("=")
        if sep and key not in out:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            out[key] = value
    return out


def parse_routes(text: str, notes: list[str] | None = None) -> list[Route]:
    """Active routes of the main table, one per gateway, metric = distance.

    Skipped: disabled (X), inactive (no A; v7 also I), blackhole/unreachable/prohibit routes
    (B/U/P, ``type=``), routes of other tables (``routing-mark=``, v7 ``routing-table=``) and, of
    an ECMP route, gateways whose status is unreachable. A gateway that is an interface
    (connected routes, PPPoE) gives ``gateway=None, interface=<it>``. Malformed rows are skipped
    and counted in ``notes``.
    """
    out: list[Route] = []
    bad: list[str] = []
    for r in parse_textfsm("mikrotik_routeros_ip_route_print_terse_without-paging.textfsm", text):
        flags = (r.get("flags") or "").replace(" ", "")
        a = _attributes(r["attributes"])
        if "A" not in flags or "X" in flags or "I" in flags:
            continue
        if any(f in flags for f in "BUP") or a.get("type", "unicast") != "unicast" or \
                a.get("routing-mark") or a.get("routing-table", "main") != "main":
            continue
        dst = ipv4_network(a.get("dst-address"))
        if dst is None:
            bad.append(r["attributes"])
            continue
        distance = to_int(a.get("distance"))
        statuses = (a.get("gateway-status") or "").split(",")
        immediate = (a.get("immediate-gw") or "").split(",")
        hops = 0
        for i, gw in enumerate(g.strip() for g in (a.get("gateway") or "").split(",")):
            status = statuses[i] if i < len(statuses) else ""
            if not gw or re.search(r"\b(?:unreachable|inactive)\b", status):
                continue
            host, _, iface = gw.partition("%")
            addr = ipv4_host(host)
            if addr is None:
                if _DOTTED.match(host) or not host:
                    continue  # an address, but not one a packet can be sent to
                iface = host  # the gateway is an interface
            if not iface:
                m = _VIA.search(status)
                iface = m.group("iface") if m else \
                    (immediate[i] if i < len(immediate) else "").partition("%")[2]
            iface = iface.strip("[]")[:64]
            out.append(Route(destination=dst, gateway=addr, interface=iface or None,
                             metric=distance or 0))
            hops += 1
        if hops == 0:
            bad.append(r["attributes"])
    note_skipped(notes, ROUTES_COMMAND, bad)
    return out


class RouterOsDriver(CliDriver):
    platform = PLATFORM
    netmiko_type = "mikrotik_routeros"
    reject = ROUTEROS_REJECT
    config_command = "/export"

    def collect(self, session: CliSession, out: Collected) -> None:
        def facts() -> None:
            out.facts.update(parse_resource(session.send("/system resource print")))
            out.facts["role"] = "router"

        def identity() -> None:
            out.facts["hostname"] = parse_identity(session.send("/system identity print"))
            if out.facts["hostname"] is None:
                raise DriverError("parse", "/system identity print: no valid name")

        def routerboard() -> None:
            model, serial = parse_routerboard(session.send("/system routerboard print"))
            out.facts["serial"] = serial
            if model:
                out.facts["model"] = model

        out.run("facts", facts)
        if out.fatal():
            return
        out.run("identity", identity)
        out.run("routerboard", routerboard)
        out.run("interfaces", lambda: out.interfaces.extend(
            parse_interfaces(session.send("/interface print detail without-paging"))))
        out.run("addresses", lambda: out.addresses.extend(
            parse_addresses(session.send("/ip address print without-paging"))))
        out.run("arp", lambda: out.arp.extend(
            parse_arp(session.send("/ip arp print without-paging"))))
        out.run("neighbors", lambda: out.lldp_neighbors.extend(
            parse_neighbors(session.send("/ip neighbor print detail without-paging"))))
        out.run("routes", lambda: out.add_routes(
            parse_routes(session.send(ROUTES_COMMAND), out.notes), ROUTES_COMMAND))


@register(PLATFORM)
def factory() -> RouterOsDriver:
    return RouterOsDriver()
