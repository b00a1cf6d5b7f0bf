"""Arista EOS over SSH with netmiko (``arista_eos``) + TextFSM.

NAPALM's ``eos`` driver talks eAPI (JSON-RPC over HTTP/HTTPS), which is often disabled on
government networks and which the test emulator (FakeNOS, SSH only) cannot serve; this driver
therefore uses the SSH CLI: netmiko for the session, ntc-templates for the tables, and our own
lenient ``templates/arista_eos_show_version.textfsm`` (ntc's fails on cEOS/vEOS output).

Commands: ``show version``, ``show hostname``, ``show inventory`` (only when ``show version``
has no serial, as on virtual EOS), ``show interfaces``, ``show ip interface brief``,
``show lldp neighbors detail``, ``show ip arp``, ``show ip route``; config:
``show running-config``.
"""

from __future__ import annotations

from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    CISCO_REJECT,
    CliDriver,
    CliSession,
    Collected,
    ip_prefix,
    norm_mac,
    parse_textfsm,
    to_int,
    uptime_words,
    valid_hostname,
)
from contract.report import ArpEntry, DeviceAddress, DeviceInterface, LldpNeighbor, Route

PLATFORM = "eos"


def parse_version(text: str) -> dict[str, object]:
    rows = parse_textfsm("arista_eos_show_version.textfsm", text)
    if not rows or not rows[0].get("image"):
        raise DriverError("parse", "show version: no 'Software image version' line")
    r = rows[0]
    return {"vendor": "Arista", "model": r["model"] or None,
            "serial": r["serial_number"] or None, "os_version": r["image"],
            "uptime_s": uptime_words(r["uptime"]) if r["uptime"] else None}


def parse_hostname(text: str) -> str | None:
    rows = parse_textfsm("arista_eos_show_hostname.textfsm", text)
    return valid_hostname(rows[0]["hostname"]) if rows else None


def parse_inventory_serial(text: str) -> tuple[str | None, str | None]:
    """(model, serial) of the chassis line of ``show inventory``."""
    for r in parse_textfsm("arista_eos_show_inventory.textfsm", text):
        if not r.get("port") and r.get("sn"):
            return r.get("pid") or None, r["sn"]
    return None, None


def _speed_mbps(bw: str) -> float | None:
    parts = bw.split()
    if len(parts) != 2 or to_int(parts[0]) is None:
        return None
    scale = {"kbit": 1e-3, "mbit": 1.0, "gbit": 1e3}.get(parts[1].lower())
    return float(parts[0]) * scale if scale is not None else None


def parse_interfaces(text: str) -> list[DeviceInterface]:
    out = []
    for r in parse_textfsm("arista_eos_show_interfaces.textfsm", text):
        link = r["link_status"].strip().lower()
        out.append(DeviceInterface(
            name=r["interface"], description=r["description"].strip()[:255],
            type=r["hardware_type"] or None, mac=norm_mac(r["mac_address"]),
            mtu=to_int(r["mtu"]), speed_mbps=_speed_mbps(r["bandwidth"]),
            admin_up=not link.startswith("administratively") and link != "disabled",
            oper_up=r["protocol_status"].strip().lower().startswith("up"),
            in_octets=to_int(r["in_octets"]), out_octets=to_int(r["out_octets"]),
            in_errors=to_int(r["in_errors"]), out_errors=to_int(r["out_errors"]),
            in_discards=to_int(r["in_discards"]), out_discards=to_int(r["out_discards"])))
    return out


def parse_addresses(text: str) -> list[DeviceAddress]:
    out = []
    for r in parse_textfsm("arista_eos_show_ip_interface_brief.textfsm", text):
        p = ip_prefix(r["ip_address"])
        if p:
            out.append(DeviceAddress(interface=r["interface"], address=p[0], prefix_len=p[1]))
    return out


def parse_lldp(text: str) -> list[LldpNeighbor]:
    out = []
    for r in parse_textfsm("arista_eos_show_lldp_neighbors_detail.textfsm", text):
        mgmt = r.get("mgmt_address") or ""
        out.append(LldpNeighbor(
            local_port=r["local_interface"], remote_chassis_id=r["chassis_id"],
            remote_port_id=r["neighbor_interface"].strip('"'),
            remote_system_name=r["neighbor_name"].strip('"'),
            remote_system_description=r["neighbor_description"].strip('"')[:1024],
            remote_mgmt_address=mgmt if ip_prefix(mgmt) else None))
    return out


def parse_arp(text: str) -> list[ArpEntry]:
    out = []
    for r in parse_textfsm("arista_eos_show_ip_arp.textfsm", text):
        mac = norm_mac(r["mac_address"])
        if mac is None:
            continue
        iface = r["interface"].split(",")[0].strip() or None
        out.append(ArpEntry(ip=r["ip_address"], mac=mac, interface=iface))
    return out


def parse_routes(text: str) -> list[Route]:
    out = []
    for r in parse_textfsm("arista_eos_show_ip_route.textfsm", text):
        if r.get("vrf") not in ("", "default"):
            continue
        hops = r["next_hop"] or [None]
        ifaces = r["interface"] or [None]
        for i, hop in enumerate(hops):
            iface = ifaces[i] if i < len(ifaces) else ifaces[0]
            out.append(Route(destination=f"{r['network']}/{r['prefix_length']}",
                             gateway=hop if hop and ip_prefix(hop) else None,
                             interface=iface or None,
                             metric=to_int(r["metric"]) or 0))
    return out


class EosDriver(CliDriver):
    platform = PLATFORM
    netmiko_type = "arista_eos"
    reject = CISCO_REJECT
    config_command = "show running-config"
    enable = True

    def collect(self, session: CliSession, out: Collected) -> None:
        def facts() -> None:
            out.facts.update(parse_version(session.send("show version")))
            out.facts["role"] = "switch"

        def hostname() -> None:
            name = parse_hostname(session.send("show hostname"))
            out.facts["hostname"] = name or valid_hostname(session.prompt_name())
            if out.facts["hostname"] is None:
                raise DriverError("parse", "show hostname: no valid host name")

        def serial() -> None:
            if out.facts.get("serial"):
                return
            model, sn = parse_inventory_serial(session.send("show inventory"))
            out.facts["serial"] = sn
            if not out.facts.get("model"):
                out.facts["model"] = model

        out.run("facts", facts)
        if out.fatal():
            return
        out.run("hostname", hostname)
        out.run("inventory", serial)
        out.run("interfaces", lambda: out.interfaces.extend(
            parse_interfaces(session.send("show interfaces"))))
        out.run("addresses", lambda: out.addresses.extend(
            parse_addresses(session.send("show ip interface brief"))))
        out.run("lldp", lambda: out.lldp_neighbors.extend(
            parse_lldp(session.send("show lldp neighbors detail"))))
        out.run("arp", lambda: out.arp.extend(parse_arp(session.send("show ip arp"))))
        out.run("routes", lambda: out.add_routes(parse_routes(session.send("show ip route")),
                                                 "show ip route"))


@register(PLATFORM)
def factory() -> EosDriver:
    return EosDriver()
