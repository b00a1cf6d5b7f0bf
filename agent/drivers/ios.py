"""Cisco IOS / IOS-XE over SSH with NAPALM (``ios``, which drives netmiko over SSH).

Getters: ``get_facts``, ``get_interfaces``, ``get_interfaces_counters``, ``get_interfaces_ip``,
``get_lldp_neighbors_detail``, ``get_arp_table``; config: ``get_config(retrieve="running")``.
Where ``get_facts`` cannot read the model or the release (it wants them on one line; some
IOS-XE and emulator outputs wrap them), ``show version`` is parsed again with ntc-templates and
a version regex over the same NAPALM session.

Routes: ``show ip route`` (the global IPv4 table) over the same NAPALM session, parsed with
ntc-templates. Not NAPALM's ``get_route_to``: on IOS it looks one prefix up in every VRF
(``show ip route vrf X 0.0.0.0 0.0.0.0`` per VRF, plus BGP commands), so it would cost several
commands for the default route alone and would report a management VRF's default route as the
router's uplink.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from agent.config import DeviceCfg
from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    CISCO_REJECT,
    Collected,
    SshParams,
    check_output,
    failed_observation,
    ip_prefix,
    ipv4_host,
    ipv4_network,
    norm_mac,
    note_skipped,
    parse_textfsm,
    ssh_params,
    to_int,
    valid_hostname,
    wrap_error,
)
from contract.report import (
    ArpEntry,
    ConfigSnapshot,
    DeviceAddress,
    DeviceInterface,
    DeviceObservation,
    LldpNeighbor,
    Route,
    utcnow,
)

PLATFORM = "ios"
DRIVER = "napalm:ios"
ROUTES_COMMAND = "show ip route"
_VERSION = re.compile(r"Version\s+([0-9][\w.()\-:]*[\w)])")
_UNKNOWN = {"", "Unknown", "unknown"}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and v >= 0 else None


def _count(v: Any) -> int | None:
    return int(v) if isinstance(v, int) and v >= 0 else None


def facts_from_napalm(f: dict[str, Any], show_version: str | None = None) -> dict[str, Any]:
    """Map ``get_facts()`` to observation fields; ``show_version`` fills what it missed."""
    model = f.get("model") if f.get("model") not in _UNKNOWN else None
    serial = f.get("serial_number") if f.get("serial_number") not in _UNKNOWN else None
    m = _VERSION.search(str(f.get("os_version") or ""))
    version = m.group(1) if m else None
    if show_version is not None and (model is None or version is None or serial is None):
        rows = parse_textfsm("cisco_ios_show_version.textfsm", show_version)
        if rows:
            r = rows[0]
            model = model or (r["hardware"][0] if r.get("hardware") else None)
            serial = serial or (r["serial"][0] if r.get("serial") else None)
            version = version or r.get("version") or None
        if version is None:
            m = _VERSION.search(show_version)
            version = m.group(1) if m else None
    hostname = valid_hostname(str(f.get("hostname") or ""))
    if hostname is None and version is None:
        raise DriverError("parse", "get_facts: neither host name nor software version found")
    return {"hostname": hostname, "vendor": str(f.get("vendor") or "Cisco")[:255],
            "model": model, "serial": serial, "os_version": version,
            "uptime_s": _num(f.get("uptime")), "role": "router"}


def interfaces_from_napalm(ifs: dict[str, dict[str, Any]],
                           counters: dict[str, dict[str, Any]] | None = None
                           ) -> list[DeviceInterface]:
    out = []
    for name, i in ifs.items():
        c = (counters or {}).get(name, {})
        mtu = i.get("mtu")
        out.append(DeviceInterface(
            name=name, description=str(i.get("description") or "")[:255],
            mac=norm_mac(i.get("mac_address")),
            mtu=mtu if isinstance(mtu, int) and mtu >= 0 else None,
            speed_mbps=_num(i.get("speed")),
            admin_up=bool(i.get("is_enabled")), oper_up=bool(i.get("is_up")),
            in_octets=_count(c.get("rx_octets")), out_octets=_count(c.get("tx_octets")),
            in_errors=_count(c.get("rx_errors")), out_errors=_count(c.get("tx_errors")),
            in_discards=_count(c.get("rx_discards")),
            out_discards=_count(c.get("tx_discards"))))
    return out


def addresses_from_napalm(ips: dict[str, dict[str, dict[str, Any]]]) -> list[DeviceAddress]:
    out = []
    for iface, fams in ips.items():
        for fam in ("ipv4", "ipv6"):
            for addr, info in (fams.get(fam) or {}).items():
                p = ip_prefix(f"{addr}/{info.get('prefix_length')}")
                if p:
                    out.append(DeviceAddress(interface=iface, address=p[0], prefix_len=p[1]))
    return out


def lldp_from_napalm(nbrs: dict[str, list[dict[str, Any]]]) -> list[LldpNeighbor]:
    out = []
    for port, entries in nbrs.items():
        for n in entries:
            caps = n.get("remote_system_enable_capab") or n.get("remote_system_capab") or []
            out.append(LldpNeighbor(
                local_port=port, remote_chassis_id=str(n.get("remote_chassis_id") or ""),
                remote_port_id=str(n.get("remote_port") or ""),
                remote_port_description=str(n.get("remote_port_description") or ""),
                remote_system_name=str(n.get("remote_system_name") or ""),
                remote_system_description=str(n.get("remote_system_description") or "")
                .strip()[:1024],
                remote_capabilities=[str(c) for c in caps][:16]))
    return out


def arp_from_napalm(rows: list[dict[str, Any]]) -> list[ArpEntry]:
    out = []
    for r in rows:
        mac = norm_mac(str(r.get("mac") or ""))
        if mac is not None and ip_prefix(str(r.get("ip") or "")):
            out.append(ArpEntry(ip=str(r["ip"]), mac=mac, interface=r.get("interface") or None))
    return out


def parse_routes(text: str, notes: list[str] | None = None) -> list[Route]:
    """``show ip route``: one route per next hop, metric = the second number of ``[110/20]``.

    Skipped: the router's own addresses (``L``), routes to Null0 (summaries, discards) and VRF
    tables. A route with a next hop but no interface gets the interface of the connected
    network holding the next hop. Malformed rows are skipped and counted in ``notes``.
    """
    rows = parse_textfsm("cisco_ios_show_ip_route.textfsm", text)
    connected: list[tuple[ipaddress.IPv4Network, str]] = []
    for r in rows:
        net = ipv4_network(f"{r['network']}/{r['prefix_length']}")
        if r["protocol"] == "C" and net and r["nexthop_if"]:
            connected.append((ipaddress.IPv4Network(net), r["nexthop_if"]))
    out: list[Route] = []
    bad: list[str] = []
    for r in rows:
        iface = r["nexthop_if"] or None
        if r.get("vrf") or r["protocol"] == "L" or (iface or "").lower().startswith("null"):
            continue
        dst = ipv4_network(f"{r['network']}/{r['prefix_length']}")
        gateway = ipv4_host(r["nexthop_ip"]) if r["nexthop_ip"] else None
        if dst is None or (r["nexthop_ip"] and gateway is None) or (not gateway and not iface):
            bad.append(f"{r['protocol']} {r['network']}/{r['prefix_length']} "
                       f"{r['nexthop_ip'] or iface or ''}")
            continue
        if iface is None and gateway is not None:
            hop = ipaddress.IPv4Address(gateway)
            iface = next((i for n, i in connected if hop in n), None)
        out.append(Route(destination=dst, gateway=gateway, interface=iface[:64] if iface else None,
                         metric=to_int(r["metric"]) or 0))
    note_skipped(notes, ROUTES_COMMAND, bad)
    return out


def _optional_args(params: SshParams) -> dict[str, Any]:
    t = params.timeout_s
    args: dict[str, Any] = {
        "port": params.port, "secret": params.enable_secret or "",
        "conn_timeout": t, "auth_timeout": t, "banner_timeout": t, "blocking_timeout": t,
        "session_timeout": t, "allow_agent": False, "ssh_config_file": None,
        "auto_file_prompt": False,
    }
    if params.key_file:
        args.update(key_file=params.key_file, use_keys=True)
    return args


class IosDriver:
    platform = PLATFORM

    @contextmanager
    def _open(self, params: SshParams) -> Iterator[Any]:
        from napalm import get_network_driver  # type: ignore[import-untyped]

        dev = get_network_driver("ios")(params.host, params.username, params.password or "",
                                        timeout=params.timeout_s,
                                        optional_args=_optional_args(params))
        try:
            dev.open()
        except Exception as e:
            raise wrap_error(e, params) from e
        try:
            yield dev
        finally:
            with suppress(Exception):  # a dead session must not hide the real error
                dev.close()

    @staticmethod
    def _cli(dev: Any, command: str) -> str:
        text = dev.cli([command])[command]
        return check_output(command, str(text), CISCO_REJECT)

    def collect(self, dev: Any, out: Collected, params: SshParams | None = None) -> None:
        """Run the getters on an open NAPALM device (or anything with the same methods)."""
        def facts() -> None:
            f = dev.get_facts()
            version = None
            if f.get("model") in _UNKNOWN or not _VERSION.search(str(f.get("os_version"))):
                version = self._cli(dev, "show version")
            out.facts.update(facts_from_napalm(f, version))

        def interfaces() -> None:
            ifs = dev.get_interfaces()
            try:
                counters = dev.get_interfaces_counters()
            except Exception as e:
                out.errors.append(("counters", wrap_error(e, params)))
                counters = {}
            out.interfaces.extend(interfaces_from_napalm(ifs, counters))

        out.run("facts", facts, params)
        if out.fatal():
            return
        out.run("interfaces", interfaces, params)
        out.run("addresses", lambda: out.addresses.extend(
            addresses_from_napalm(dev.get_interfaces_ip())), params)
        out.run("lldp", lambda: out.lldp_neighbors.extend(
            lldp_from_napalm(dev.get_lldp_neighbors_detail())), params)
        out.run("arp", lambda: out.arp.extend(arp_from_napalm(dev.get_arp_table())), params)
        out.run("routes", lambda: out.add_routes(
            parse_routes(self._cli(dev, ROUTES_COMMAND), out.notes), ROUTES_COMMAND), params)

    def poll(self, device: DeviceCfg) -> DeviceObservation:
        observed_at, started = utcnow(), time.monotonic()
        params: SshParams | None = None
        out = Collected()
        try:
            params = ssh_params(device)
            with self._open(params) as dev:
                self.collect(dev, out, params)
            fatal = out.fatal()
            if fatal is not None and out.sections_ok == 0:
                raise fatal
        except Exception as e:
            return failed_observation(device, DRIVER, wrap_error(e, params), observed_at,
                                      started)
        return out.observation(device, DRIVER, observed_at, started)

    def get_config(self, device: DeviceCfg) -> ConfigSnapshot | None:
        """The masked running configuration. Raises DriverError on failure."""
        from agent import configbackup

        observed_at = utcnow()
        params = ssh_params(device)
        try:
            with self._open(params) as dev:
                running = dev.get_config(retrieve="running").get("running", "")
        except Exception as e:
            raise wrap_error(e, params) from e
        text = check_output("show running-config", str(running), CISCO_REJECT)
        key = configbackup.fingerprint_key(device.name, params.credential())
        return configbackup.snapshot(device.name, DRIVER, PLATFORM, text, observed_at, key)


@register(PLATFORM)
def factory() -> IosDriver:
    return IosDriver()
