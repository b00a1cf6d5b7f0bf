"""Huawei VRP (AR routers, S/CE switches, NE/ATN) over SSH with netmiko (``huawei``) + TextFSM.

NAPALM has no maintained VRP driver that works over plain SSH, so this is netmiko with
ntc-templates. The host name is the one in the prompt (``<KANTOR-DINKES>``), which is how VRP
shows ``sysname``; the serial is the ESN (``display esn``, or ``display sn license`` on models
without the former).

Commands: ``display version``, ``display esn`` / ``display sn license``, ``display interface``,
``display lldp neighbor``, ``display arp all``; config: ``display current-configuration``.
"""

from __future__ import annotations

import re

from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    HUAWEI_REJECT,
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
from contract.report import ArpEntry, DeviceAddress, DeviceInterface, LldpNeighbor

PLATFORM = "huawei_vrp"
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


@register(PLATFORM)
def factory() -> HuaweiVrpDriver:
    return HuaweiVrpDriver()
