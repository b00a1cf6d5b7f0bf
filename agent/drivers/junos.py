"""Juniper Junos (MX, EX, SRX, QFX) over SSH with netmiko (``juniper_junos``) + TextFSM.

NAPALM's ``junos`` driver needs NETCONF (junos-eznc over the ``netconf`` SSH subsystem, port
830). Many sites enable only the CLI over SSH, and the test emulator (FakeNOS) has no NETCONF,
so this driver reads the CLI: netmiko for the session, ntc-templates for the tables and our own
lenient ``templates/juniper_junos_show_version.textfsm``.

Commands: ``show version``, ``show chassis hardware``, ``show system uptime``,
``show interfaces``, ``show lldp neighbors``, ``show arp no-resolve``,
``show route table inet.0`` (our lenient ``templates/juniper_junos_show_route_table_inet.0``);
config: ``show configuration`` (the hierarchical form; masking also knows the ``set`` form).
"""

from __future__ import annotations

import re
from datetime import datetime

from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    JUNOS_REJECT,
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

PLATFORM = "junos"
ROUTES_COMMAND = "show route table inet.0"
_HOP = re.compile(r"^(?:to\s+(?P<gateway>\S+)\s+)?via\s+(?P<interface>\S+)$")


def parse_version(text: str) -> dict[str, object]:
    rows = parse_textfsm("juniper_junos_show_version.textfsm", text)
    if not rows or not rows[0]["version"]:
        raise DriverError("parse", "show version: no Junos release found")
    r = rows[0]
    return {"vendor": "Juniper", "hostname": valid_hostname(r["hostname"]),
            "model": r["model"] or None, "os_version": r["version"]}


def parse_chassis_serial(text: str) -> str | None:
    for r in parse_textfsm("juniper_junos_show_chassis_hardware.textfsm", text):
        if r.get("chassis_serial_number"):
            return str(r["chassis_serial_number"])
    return None


def parse_uptime(text: str) -> float | None:
    rows = parse_textfsm("juniper_junos_show_system_uptime.textfsm", text)
    if not rows:
        return None
    r = rows[0]
    fmt = "%Y-%m-%d %H:%M:%S"
    try:
        now = datetime.strptime(f"{r['year']}-{r['month']}-{r['day']} {r['time']}", fmt)
        boot = datetime.strptime(
            f"{r['boot_year']}-{r['boot_month']}-{r['boot_day']} {r['boot_time']}", fmt)
    except (KeyError, ValueError):
        return None
    secs = (now - boot).total_seconds()
    return secs if secs >= 0 else None


def parse_interfaces(text: str) -> tuple[list[DeviceInterface], list[DeviceAddress]]:
    """Physical interfaces, and the addresses of their logical units (``ge-0/0/0.100``)."""
    ifaces: list[DeviceInterface] = []
    addrs: list[DeviceAddress] = []
    for r in parse_textfsm("juniper_junos_show_interfaces.textfsm", text):
        if r.get("local"):
            dest = ip_prefix(r.get("destination") or "")
            local = ip_prefix(r["local"])
            if local:
                plen = dest[1] if dest else local[1]
                addrs.append(DeviceAddress(interface=r["interface"], address=local[0],
                                           prefix_len=plen))
        if not r.get("admin_state"):
            continue  # a logical unit, not a physical interface
        ifaces.append(DeviceInterface(
            name=r["interface"], description=(r.get("description") or "").strip()[:255],
            type=r.get("hardware_type") or None, mtu=to_int(r.get("mtu")),
            admin_up=r["admin_state"].lower() == "enabled",
            oper_up=r["link_status"].lower() == "up"))
    return ifaces, addrs


def parse_lldp(text: str) -> list[LldpNeighbor]:
    return [LldpNeighbor(local_port=r["local_interface"], remote_chassis_id=r["chassis_id"],
                         remote_port_id=r["neighbor_interface"],
                         remote_system_name=r["neighbor_name"])
            for r in parse_textfsm("juniper_junos_show_lldp_neighbors.textfsm", text)]


def parse_arp(text: str) -> list[ArpEntry]:
    out = []
    for r in parse_textfsm("juniper_junos_show_arp_no-resolve.textfsm", text):
        mac = norm_mac(r["mac_address"])
        if mac is not None:
            out.append(ArpEntry(ip=r["ip_address"], mac=mac, interface=r["interface"] or None))
    return out


def parse_routes(text: str, notes: list[str] | None = None) -> list[Route]:
    """The active routes of inet.0, one per selected next hop (``>``), metric = ``metric``.

    Skipped: inactive routes (no ``*``/``+``), the router's own addresses (``Local``) and
    routes without a next hop to forward to (``Discard``, ``Reject``, ``MultiRecv``). A
    ``Direct`` route has no gateway. Malformed rows are skipped and counted in ``notes``.
    """
    out: list[Route] = []
    bad: list[str] = []
    for r in parse_textfsm("juniper_junos_show_route_table_inet.0.textfsm", text):
        if r["state"] not in ("*", "+") or r["protocol"] == "Local" or not r["hops"]:
            continue
        dst = ipv4_network(r["destination"])
        if dst is None:
            bad.append(f"{r['destination'] or '(no destination)'} {r['protocol']}")
            continue
        for hop in r["hops"]:
            m = _HOP.match(hop)
            gateway = ipv4_host(m.group("gateway")) if m and m.group("gateway") else None
            if m is None or (m.group("gateway") and gateway is None):
                bad.append(f"{dst} {hop}")
                continue
            out.append(Route(destination=dst, gateway=gateway,
                             interface=m.group("interface")[:64],
                             metric=to_int(r["metric"]) or 0))
    note_skipped(notes, ROUTES_COMMAND, bad)
    return out


class JunosDriver(CliDriver):
    platform = PLATFORM
    netmiko_type = "juniper_junos"
    reject = JUNOS_REJECT
    config_command = "show configuration"

    def collect(self, session: CliSession, out: Collected) -> None:
        def facts() -> None:
            out.facts.update(parse_version(session.send("show version")))
            out.facts["role"] = "router"
            if out.facts.get("hostname") is None:
                out.facts["hostname"] = valid_hostname(
                    (session.prompt_name() or "").rpartition("@")[2])

        def serial() -> None:
            out.facts["serial"] = parse_chassis_serial(session.send("show chassis hardware"))
            if out.facts["serial"] is None:
                raise DriverError("parse", "show chassis hardware: no Chassis line")

        def interfaces() -> None:
            ifaces, addrs = parse_interfaces(session.send("show interfaces"))
            out.interfaces.extend(ifaces)
            out.addresses.extend(addrs)

        out.run("facts", facts)
        if out.fatal():
            return
        out.run("serial", serial)
        out.run("uptime", lambda: out.facts.__setitem__(
            "uptime_s", parse_uptime(session.send("show system uptime"))))
        out.run("interfaces", interfaces)
        out.run("lldp", lambda: out.lldp_neighbors.extend(
            parse_lldp(session.send("show lldp neighbors"))))
        out.run("arp", lambda: out.arp.extend(parse_arp(session.send("show arp no-resolve"))))
        out.run("routes", lambda: out.add_routes(
            parse_routes(session.send(ROUTES_COMMAND), out.notes), ROUTES_COMMAND))


@register(PLATFORM)
def factory() -> JunosDriver:
    return JunosDriver()
