"""The test network ("netlab"): real SNMP/LLDP/SSH devices in Linux network namespaces.

Integration tests, benchmarks and ``make demo`` share it. Needs root and
``scripts/install-netlab-deps.sh`` (snmpd, snmp tools, lldpd, iproute2, OpenSSH, FakeNOS).

Use::

    with Lab.start() as lab:                      # default_spec(); ~4 s; or Lab.start(spec)
        dev = lab.devices["dinkes-rtr"]           # Device: mgmt_ip, pd, snmp creds, ssh, ...
        SecretRef(file=dev.snmp.community.path)   # credentials are files (Secret.path)
        lab.cut_link("dinkes-rtr", "dc-core")     # both ports lose carrier; returns once SNMP
        lab.restore_link("dinkes-rtr", "dc-core") #   shows it (ifOperStatus + LLDP)
        lab.add_device("dinkes-sw2", "DINKES", links=["dinkes-sw1"], role="switch")
        lab.remove_device("dinkes-sw2")
        lab.fakenos["huawei_vrp"], lab.openssh    # SshEndpoint(host, port, username, ...)

Each device namespace ``<lab_id>-<device>`` runs net-snmp ``snmpd`` on ``udp:<mgmt ip>:161``
(v2c community and v3 authPriv user ``spbe-ro``, SHA/AES; own sysName = device name,
sysLocation, sysContact, optional sysDescr/sysObjectID) with ``lldpd`` as its AgentX
subagent (LLDP-MIB 1.0.8802.1.1.2; LLDP system name = device name, port id = ifName, port
description = ifAlias, tx-interval 1 s, TTL ~4 s), an ifAlias handler (net-snmp does not read
Linux interface aliases) and an SSH server on ``<mgmt ip>:22``: a FakeNOS emulator of its
platform (canned CLI output, prompt ``<name>>``) or a real OpenSSH sshd (``ssh="openssh"``).
snmpd's table caches are set to 1 s, so changes show up in SNMP at once.

Addressing and isolation:

* Management: 10.254.K.0/24 per lab (K free at start; ``lab.mgmt_network``); the root
  namespace has ``10.254.K.1`` on veth ``<lab_id>`` into the lab's ``<lab_id>-fabric``
  namespace, where a bridge joins every device's ``mgmt0``. In the devices the management
  subnet is in its own routing table used only by locally originated traffic, so no data
  traffic is forwarded into or out of it. The root namespace gets ``unreachable`` routes for
  10.253.0.0/16 and 10.254.0.0/16 (metric 4000+K), so nothing for the lab ranges can leave the
  machine.
* Data links: 10.253.0.0/16 (the same in every lab, only inside its namespaces). Every data
  port is a veth whose other end is in the fabric namespace; a link is a bridge there (LLDP
  frames pass). ``cut_link`` sets the fabric ends down: both ports stay admin up and lose
  carrier, like a cut cable. Routers forward; switches bridge their ports into ``br0`` (the
  SVI); end hosts (role ``host``) are PCs with no agent.

``default_spec()`` (a data centre and three PD offices; mgmt = 10.254.K.<n>)::

    device       PD          role    mgmt  SSH                data ports
    dc-core      DISKOMINFO  router  .11   cisco_ios          eth1 10.253.0.1/30  INTRANET-DINKES
                                                              eth2 10.253.0.5/30  INTRANET-DISDIK
                                                              eth3 10.253.0.9/30  INTRANET-BAPPEDA
                                                              eth4 10.253.1.1/24  SERVER-FARM
    dc-srv1      DISKOMINFO  server  .12   openssh            eth1 10.253.1.10/24 (no alias)
    dinkes-rtr   DINKES      router  .21   huawei_vrp         eth1 10.253.0.2/30  WAN-DC-CORE
                                                              eth2 10.253.16.1/24 LAN-DINKES
    dinkes-sw1   DINKES      switch  .22   arista_eos         br0 10.253.16.2/24; eth1 UPLINK-
                                                              DINKES-RTR, eth2 R101-A01 (pc1),
                                                              eth3 no alias, up (pc2; LAN-4),
                                                              eth4 spare (no cable, down)
    disdik-rtr   DISDIK      router  .31   juniper_junos      eth1 10.253.0.6/30  WAN-DC-CORE
                                                              eth2 10.253.32.1/24 LAN-DISDIK
    bappeda-rtr  BAPPEDA     router  .41   mikrotik_routeros  eth1 10.253.0.10/30 WAN-DC-CORE
                                                              eth2 spare (no cable, down)
    end hosts: dinkes-pc1 10.253.16.101, dinkes-pc2 10.253.16.102, disdik-pc1 10.253.32.101

PD routers' default route is dc-core over the intranet link; dc-core routes each PD LAN to
its router; PCs and the switch route via their PD router, dc-srv1 via dc-core.

Names and cleanup: namespaces ``<lab_id>-*``, the root veth and the temp SSH user are named
``<lab_id>`` = ``spbe<pid>n<seq>`` (pid of the owning process); files live in
``/tmp/spbe-netlab/<lab_id>/`` (secrets in ``secrets/``, mode 0600; logs in
``devices/<name>/*.log``). ``stop()`` removes all of it, also after a failed start;
``cleanup_stale()`` (called by every ``Lab.start``) removes the remains of labs whose owner
process is gone. Daemons get SIGKILL (``setpriv --pdeathsig``) if the thread that started the
lab dies, so call ``Lab.start`` from a long-lived thread (pytest's main thread is fine).

SNMP tools: Debian ships no IETF MIB files, so use numeric OIDs and ``-m ''`` (or ``MIBS=``).

CLI (for ``make demo``)::

    python -m tests.netlab up --state-file F [--spec default|minimal]   # JSON on stdout and in F
    python -m tests.netlab down --state-file F
    python -m tests.netlab serve --state-file F   # foreground; Ctrl-C stops
    python -m tests.netlab cleanup                # remove leftovers of dead labs

The state JSON names credential files, never their values.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, Literal, Self, get_args

from tests.fakenos_lab import FAKENOS_PLATFORMS, FakeNosHost, netns_entered, write_config

__all__ = [
    "DATA_SUPERNET",
    "LAB_BASE",
    "MGMT_SUPERNET",
    "OID_IF_ALIAS",
    "OID_IF_DESCR",
    "OID_IF_OPER_STATUS",
    "OID_LLDP_LOC_SYS_NAME",
    "OID_LLDP_REM_SYS_NAME",
    "OID_LLDP_REM_TABLE",
    "OID_SYS_NAME",
    "Device",
    "DeviceSpec",
    "EndHost",
    "Lab",
    "LabError",
    "LabSpec",
    "LabSpecError",
    "Link",
    "LinkSpec",
    "PortSpec",
    "Role",
    "Secret",
    "SnmpCredentials",
    "SshEndpoint",
    "cleanup_stale",
    "default_spec",
    "main",
    "minimal_spec",
]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
LAB_BASE = Path(tempfile.gettempdir()) / "spbe-netlab"
MGMT_SUPERNET = IPv4Network("10.254.0.0/16")
DATA_SUPERNET = IPv4Network("10.253.0.0/16")
AUTO_P2P_POOL = IPv4Network("10.253.240.0/20")  # /30s for add_device(..., links=["peer"])
MGMT_IFACE = "mgmt0"
_MGMT_TABLE = 100  # devices: routing table (and rule preference) of the management subnet
_ROOT_METRIC = 4000  # root ns: "unreachable" routes for the lab ranges, metric 4000 + K
SWITCH_BRIDGE = "br0"
SNMP_V3_USER = "spbe-ro"
DEVICE_USERNAME = "netops"  # FakeNOS login

OID_SYS_NAME = "1.3.6.1.2.1.1.5.0"
OID_IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
OID_IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
OID_IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
OID_LLDP_LOC_SYS_NAME = "1.0.8802.1.1.2.1.3.3.0"
OID_LLDP_REM_TABLE = "1.0.8802.1.1.2.1.4.1.1"
OID_LLDP_REM_SYS_NAME = OID_LLDP_REM_TABLE + ".9"
_NS_CACHE_TIMEOUT = "1.3.6.1.4.1.8072.1.5.3.1.2"  # NET-SNMP-AGENT-MIB::nsCacheTimeout
_CACHED_TABLES = (  # IF-MIB ifTable, IP-MIB, IP-FORWARD-MIB (ipCidrRoute, inetCidrRoute)
    "1.3.6.1.2.1.2.2", "1.3.6.1.2.1.4", "1.3.6.1.2.1.4.24.4", "1.3.6.1.2.1.4.24.7",
    "1.3.6.1.2.1.4.34", "1.3.6.1.2.1.4.35",
)

Role = Literal["router", "switch", "server", "host"]
_ROLES: tuple[str, ...] = get_args(Role)
_LAB_ID_RE = re.compile(r"^spbe(\d+)n(\d+)$")
_NS_RE = re.compile(r"^(spbe\d+n\d+)-")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_PD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PORT_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_OID_RE = re.compile(r"^\.?1(\.\d+)+$")
_TEXT_RE = re.compile(r'^[^"\\\n\r\x00]{0,255}$')
_RESERVED_PORTS = frozenset({MGMT_IFACE, "lo", SWITCH_BRIDGE, "uplink", "mgmt"})
_SNMP_ABSENT = ("No Such Object", "No Such Instance", "No more variables")
_seq = itertools.count()


class LabError(RuntimeError):
    """The lab could not be started, changed or torn down (the message says why)."""


class LabSpecError(LabError, ValueError):
    """A lab spec is invalid (names the device/link and the field)."""


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class PortSpec:
    """One end of a link.

    ``port`` is the interface name in the device (None: next free ``ethN``); ``address`` an
    IPv4 interface in 10.253.0.0/16 such as ``"10.253.0.1/30"`` (None on switch ports, which
    are bridged); ``alias`` the interface description (ifAlias, LLDP port description).
    """

    device: str
    port: str | None = None
    address: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class LinkSpec:
    """A cable between two ports."""

    a: PortSpec
    b: PortSpec


@dataclass(frozen=True)
class DeviceSpec:
    """A device (router, switch, server) or an unmanaged end host (role ``host``).

    Devices run snmpd + lldpd on a management address; hosts run nothing and have no
    management address (PCs behind a switch port). ``ssh`` is a FakeNOS platform
    (``cisco_ios``, ``arista_eos``, ``huawei_vrp``, ``juniper_junos``, ``mikrotik_routeros``,
    ...) or ``"openssh"`` (a real sshd with the lab's temp user). ``routes`` are
    ``(prefix or "default", next hop)``. ``descr``/``object_id`` set sysDescr/sysObjectID
    (None: net-snmp's Linux values). ``mgmt_host`` is the last octet of the management
    address (None: next free from .100). ``spare_ports`` are ports with no cable.
    """

    name: str
    pd: str
    role: Role = "router"
    location: str = ""
    contact: str = ""
    descr: str | None = None
    object_id: str | None = None
    ssh: str | None = None
    routes: tuple[tuple[str, str], ...] = ()
    svi_address: str | None = None  # switch: the address of its bridge (br0)
    spare_ports: tuple[str, ...] = ()
    mgmt_host: int | None = None

    @property
    def managed(self) -> bool:
        return self.role != "host"


@dataclass(frozen=True)
class LabSpec:
    """Devices and links of a lab; validated on construction (raises LabSpecError)."""

    devices: tuple[DeviceSpec, ...]
    links: tuple[LinkSpec, ...] = ()

    def __post_init__(self) -> None:
        _validate_spec(self)

    def device(self, name: str) -> DeviceSpec:
        for d in self.devices:
            if d.name == name:
                return d
        raise LabSpecError(f"no device {name!r}; devices: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return [d.name for d in self.devices]


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise LabSpecError(what)


def _validate_text(value: str | None, what: str) -> None:
    _check(value is None or bool(_TEXT_RE.match(value)),
           f"{what}: at most 255 characters, no quotes, backslashes or newlines")


def _validate_data_iface(addr: str, what: str) -> IPv4Interface:
    try:
        iface = IPv4Interface(addr)
    except ValueError as e:
        raise LabSpecError(f"{what}: not an IPv4 interface address ({e})") from e
    _check(iface.network.prefixlen < 32 and iface.ip != iface.network.network_address
           and iface.ip != iface.network.broadcast_address,
           f"{what}: {addr} is not a host address in its network")
    _check(iface.ip in DATA_SUPERNET, f"{what}: {addr} is outside {DATA_SUPERNET}")
    return iface


def _validate_device(d: DeviceSpec) -> None:
    w = f"device {d.name!r}"
    _check(bool(_NAME_RE.match(d.name)) and d.name != "fabric",
           f"{w}: name must match {_NAME_RE.pattern} and not be 'fabric'")
    _check(bool(_PD_RE.match(d.pd)), f"{w}: pd must match {_PD_RE.pattern}")
    _check(d.role in _ROLES, f"{w}: role must be one of {', '.join(_ROLES)}")
    for attr in ("location", "contact", "descr"):
        _validate_text(getattr(d, attr), f"{w}: {attr}")
    _check(d.object_id is None or bool(_OID_RE.match(d.object_id)),
           f"{w}: object_id must be a numeric OID")
    if d.ssh is not None:
        _check(d.managed, f"{w}: end hosts have no SSH server")
        _check(d.ssh == "openssh" or d.ssh in FAKENOS_PLATFORMS,
               f"{w}: ssh must be 'openssh' or a FakeNOS platform: "
               f"{', '.join(sorted(FAKENOS_PLATFORMS))}")
    if d.mgmt_host is not None:
        _check(d.managed, f"{w}: end hosts have no management address")
        _check(2 <= d.mgmt_host <= 254, f"{w}: mgmt_host must be 2..254")
    if d.svi_address is not None:
        _check(d.role == "switch", f"{w}: svi_address is for switches")
        _validate_data_iface(d.svi_address, f"{w}: svi_address")
    for prefix, via in d.routes:
        if prefix != "default":
            try:
                net = IPv4Network(prefix)
            except ValueError as e:
                raise LabSpecError(f"{w}: route prefix {prefix!r}: {e}") from e
            _check(net.subnet_of(DATA_SUPERNET), f"{w}: route {prefix} outside {DATA_SUPERNET}")
        try:
            gw = IPv4Address(via)
        except ValueError as e:
            raise LabSpecError(f"{w}: route next hop {via!r}: {e}") from e
        _check(gw in DATA_SUPERNET, f"{w}: next hop {via} outside {DATA_SUPERNET}")
    for p in d.spare_ports:
        _check(bool(_PORT_RE.match(p)) and p not in _RESERVED_PORTS,
               f"{w}: spare port {p!r} must match {_PORT_RE.pattern}")


def _validate_spec(spec: LabSpec) -> None:
    names = [d.name for d in spec.devices]
    dup = {n for n in names if names.count(n) > 1}
    _check(not dup, f"duplicate device names: {', '.join(sorted(dup))}")
    by_name = {d.name: d for d in spec.devices}
    hosts = [d.mgmt_host for d in spec.devices if d.mgmt_host is not None]
    _check(len(hosts) == len(set(hosts)), "duplicate mgmt_host values")
    ports: dict[str, set[str]] = {}
    addresses: dict[IPv4Address, str] = {}
    for d in spec.devices:
        _validate_device(d)
        ports[d.name] = set()
        for p in d.spare_ports:
            _check(p not in ports[d.name], f"device {d.name!r}: port {p} listed twice")
            ports[d.name].add(p)
        if d.svi_address:
            addresses[IPv4Interface(d.svi_address).ip] = f"{d.name} {SWITCH_BRIDGE}"
    for i, link in enumerate(spec.links):
        w = f"link {i} ({link.a.device} - {link.b.device})"
        _check(link.a.device != link.b.device, f"{w}: both ends on one device")
        for end in (link.a, link.b):
            dev = by_name.get(end.device)
            _check(dev is not None, f"{w}: unknown device {end.device!r}")
            assert dev is not None
            if end.port is not None:
                _check(bool(_PORT_RE.match(end.port)) and end.port not in _RESERVED_PORTS,
                       f"{w}: port {end.port!r} must match {_PORT_RE.pattern}")
                _check(end.port not in ports[dev.name] or end.port in dev.spare_ports,
                       f"{w}: port {dev.name}/{end.port} used twice")
                ports[dev.name].add(end.port)
            _validate_text(end.alias, f"{w}: alias")
            if end.address is not None:
                _check(dev.role != "switch", f"{w}: switch ports are bridged and have no address"
                       f" (give the switch an svi_address)")
                ip = _validate_data_iface(end.address, f"{w}: address").ip
                _check(ip not in addresses, f"{w}: address {ip} already used by "
                       f"{addresses.get(ip)}")
                addresses[ip] = f"{dev.name} {end.port or '?'}"


# --------------------------------------------------------------------------- runtime views


@dataclass(frozen=True)
class Secret:
    """A secret in a file (mode 0600). ``repr`` shows the path, never the value."""

    path: Path

    def value(self) -> str:
        return self.path.read_text().strip()

    def __repr__(self) -> str:
        return f"Secret({str(self.path)!r})"


@dataclass(frozen=True)
class SnmpCredentials:
    """SNMP access, the same on every device of a lab: v2c community and a v3 authPriv user."""

    community: Secret
    user: str
    auth_key: Secret
    priv_key: Secret
    auth_protocol: str = "SHA"  # net-snmp tool spelling; SnmpCfg: "sha"
    priv_protocol: str = "AES"  # AES-128; SnmpCfg: "aes"
    port: int = 161

    def v2c_args(self) -> list[str]:
        """Arguments for net-snmp tools: ``snmpget *creds.v2c_args() host oid``."""
        return ["-v2c", "-c", self.community.value()]

    def v3_args(self) -> list[str]:
        return ["-v3", "-l", "authPriv", "-u", self.user, "-a", self.auth_protocol,
                "-A", self.auth_key.value(), "-x", self.priv_protocol, "-X", self.priv_key.value()]


@dataclass(frozen=True)
class SshEndpoint:
    """An SSH login: a FakeNOS emulator (``platform`` = its FakeNOS platform, which is also
    the netmiko device_type) or the OpenSSH server (``platform`` = ``"linux"``)."""

    device: str
    platform: str
    host: str
    port: int
    username: str
    password: Secret
    key_file: Path | None = None  # private key (OpenSSH only)


@dataclass(frozen=True)
class Device:
    """A managed device as running now."""

    name: str
    pd: str
    role: Role
    netns: str
    mgmt_ip: str
    sys_name: str
    sys_location: str
    sys_contact: str
    sys_descr: str | None
    sys_object_id: str | None
    snmp: SnmpCredentials
    ssh: SshEndpoint | None
    ports: Mapping[str, str | None]  # data port -> alias (ifAlias), None = no description


@dataclass(frozen=True)
class EndHost:
    """An unmanaged end host (no SNMP/SSH), e.g. a PC behind a switch port."""

    name: str
    pd: str
    netns: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """A cable as running now; ``up`` is False while cut."""

    a: str
    a_port: str
    b: str
    b_port: str
    up: bool


# --------------------------------------------------------------------------- default specs


def default_spec() -> LabSpec:
    """A small simulated region: the Diskominfo data centre and three PD offices.

    Management addresses are 10.254.K.<mgmt_host>; K is chosen per lab.
    """
    dc = "Data Center Diskominfo, Ruang Server Lt. 2"
    noc = "NOC Diskominfo <noc@diskominfo.example.go.id>"
    devices = (
        DeviceSpec(
            "dc-core", "DISKOMINFO", "router", location=f"{dc}, Rak A1", contact=noc,
            descr="Cisco IOS Software, ISR4300 Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), "
                  "Version 16.9.4, RELEASE SOFTWARE (fc2)",
            object_id=".1.3.6.1.4.1.9.1.1861", ssh="cisco_ios", mgmt_host=11,
            routes=(("10.253.16.0/24", "10.253.0.2"), ("10.253.32.0/24", "10.253.0.6"),
                    ("10.253.48.0/24", "10.253.0.10")),
        ),
        DeviceSpec(
            "dc-srv1", "DISKOMINFO", "server", location=f"{dc}, Rak A2", contact=noc,
            ssh="openssh", mgmt_host=12, routes=(("default", "10.253.1.1"),),
        ),
        DeviceSpec(
            "dinkes-rtr", "DINKES", "router",
            location="Dinas Kesehatan, Gedung A Lt. 1, Ruang 101",
            contact="Tim TI Dinkes <ti@dinkes.example.go.id>",
            descr="Huawei Versatile Routing Platform Software, VRP (R) software, "
                  "Version 5.160 (AR1200 V200R010C10SPC700)",
            object_id=".1.3.6.1.4.1.2011.2.224.67", ssh="huawei_vrp", mgmt_host=21,
            routes=(("default", "10.253.0.1"),),
        ),
        DeviceSpec(
            "dinkes-sw1", "DINKES", "switch",
            location="Dinas Kesehatan, Gedung A Lt. 1, Ruang 101",
            contact="Tim TI Dinkes <ti@dinkes.example.go.id>",
            descr="Arista Networks EOS version 4.28.3M running on an Arista Networks "
                  "DCS-7048T-A",
            object_id=".1.3.6.1.4.1.30065.1.3011.7048.427.3648", ssh="arista_eos", mgmt_host=22,
            svi_address="10.253.16.2/24", routes=(("default", "10.253.16.1"),),
            spare_ports=("eth4",),
        ),
        DeviceSpec(
            "disdik-rtr", "DISDIK", "router",
            location="Dinas Pendidikan, Gedung Utama Lt. 2",
            contact="Tim TI Disdik <ti@disdik.example.go.id>",
            descr="Juniper Networks, Inc. srx300 internet router, kernel JUNOS 20.4R3-S1",
            object_id=".1.3.6.1.4.1.2636.1.1.1.2.137", ssh="juniper_junos", mgmt_host=31,
            routes=(("default", "10.253.0.5"),),
        ),
        DeviceSpec(
            "bappeda-rtr", "BAPPEDA", "router",
            location="Bappeda, Gedung B Lt. 1",
            contact="Tim TI Bappeda <ti@bappeda.example.go.id>",
            descr="RouterOS RB4011iGS+", object_id=".1.3.6.1.4.1.14988.1",
            ssh="mikrotik_routeros", mgmt_host=41, routes=(("default", "10.253.0.9"),),
            spare_ports=("eth2",),
        ),
        DeviceSpec("dinkes-pc1", "DINKES", "host", routes=(("default", "10.253.16.1"),)),
        DeviceSpec("dinkes-pc2", "DINKES", "host", routes=(("default", "10.253.16.1"),)),
        DeviceSpec("disdik-pc1", "DISDIK", "host", routes=(("default", "10.253.32.1"),)),
    )

    def link(a: str, ap: str, aaddr: str | None, aalias: str | None,
             b: str, bp: str, baddr: str | None, balias: str | None) -> LinkSpec:
        return LinkSpec(PortSpec(a, ap, aaddr, aalias), PortSpec(b, bp, baddr, balias))

    links = (
        link("dc-core", "eth1", "10.253.0.1/30", "INTRANET-DINKES",
             "dinkes-rtr", "eth1", "10.253.0.2/30", "WAN-DC-CORE"),
        link("dc-core", "eth2", "10.253.0.5/30", "INTRANET-DISDIK",
             "disdik-rtr", "eth1", "10.253.0.6/30", "WAN-DC-CORE"),
        link("dc-core", "eth3", "10.253.0.9/30", "INTRANET-BAPPEDA",
             "bappeda-rtr", "eth1", "10.253.0.10/30", "WAN-DC-CORE"),
        link("dc-core", "eth4", "10.253.1.1/24", "SERVER-FARM",
             "dc-srv1", "eth1", "10.253.1.10/24", None),
        link("dinkes-rtr", "eth2", "10.253.16.1/24", "LAN-DINKES",
             "dinkes-sw1", "eth1", None, "UPLINK-DINKES-RTR"),
        link("dinkes-sw1", "eth2", None, "R101-A01",
             "dinkes-pc1", "eth0", "10.253.16.101/24", None),
        link("dinkes-sw1", "eth3", None, None,  # up, no description (obligation LAN-4)
             "dinkes-pc2", "eth0", "10.253.16.102/24", None),
        link("disdik-rtr", "eth2", "10.253.32.1/24", "LAN-DISDIK",
             "disdik-pc1", "eth0", "10.253.32.101/24", None),
    )
    return LabSpec(devices, links)


def minimal_spec() -> LabSpec:
    """Two routers in two PDs on one link (fast; for tests of the lab itself)."""
    return LabSpec(
        (
            DeviceSpec("r1", "PDA", "router", location="Lab A", contact="lab-a",
                       ssh="cisco_ios", routes=(("default", "10.253.0.2"),)),
            DeviceSpec("r2", "PDB", "router", location="Lab B", contact="lab-b",
                       ssh="openssh", routes=(("default", "10.253.0.1"),)),
        ),
        (LinkSpec(PortSpec("r1", "eth1", "10.253.0.1/30", "TO-R2"),
                  PortSpec("r2", "eth1", "10.253.0.2/30", None)),),
    )


SPECS = {"default": default_spec, "minimal": minimal_spec}


# --------------------------------------------------------------------------- system helpers


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise LabError(f"{name} not found; run scripts/install-netlab-deps.sh")
    return path


def _run(argv: Sequence[str], *, input: str | None = None, timeout: float = 30.0,
         check: bool = True, what: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; errors name ``what`` (default: the first words of argv), never the
    credentials that later arguments may carry."""
    label = what or " ".join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv[:3]))
    try:
        r = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                           timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{label}: timed out after {timeout:.0f}s") from e
    except OSError as e:
        raise LabError(f"{label}: {e.strerror}") from e
    if check and r.returncode != 0:
        raise LabError(f"{label} failed ({r.returncode}): "
                       f"{(r.stderr or r.stdout).strip()[-800:]}")
    return r


def _communicate(p: subprocess.Popen[str], what: str, timeout: float = 30.0) -> tuple[str, str]:
    """``p.communicate`` that kills on timeout and raises LabError naming ``what`` only."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as e:
        p.kill()
        p.communicate()
        raise LabError(f"{what}: timed out after {timeout:.0f}s") from e
    return out, err


def _ip_batch(lines: Sequence[str], netns: str | None = None) -> None:
    if not lines:
        return
    argv = [_tool("ip")] + (["-n", netns] if netns else []) + ["-batch", "-"]
    _run(argv, input="\n".join(lines) + "\n")


def _ip_batches(batches: Mapping[str, Sequence[str]]) -> None:
    """Run one ``ip -n NS -batch`` per namespace, concurrently."""
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    with tempfile.TemporaryDirectory(prefix="netlab-batch-") as tmp:
        for i, (ns, lines) in enumerate(batches.items()):
            if not lines:
                continue
            batch = Path(tmp) / f"{i}.txt"
            batch.write_text("\n".join(lines) + "\n")
            procs.append((ns, subprocess.Popen(
                [_tool("ip"), "-n", ns, "-batch", str(batch)], stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
        errors = []
        for ns, p in procs:
            _, err = _communicate(p, f"ip -n {ns} -batch")
            if p.returncode != 0:
                errors.append(f"{ns}: {err.strip()}")
    if errors:
        raise LabError("configuring namespaces failed: " + "; ".join(errors))


def _list_netns() -> list[str]:
    r = _run([_tool("ip"), "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _netns_pids(ns: str) -> set[int]:
    r = _run([_tool("ip"), "netns", "pids", ns], check=False)
    return {int(x) for x in r.stdout.split() if x.isdigit()}


def _root_links() -> list[str]:
    try:
        return os.listdir("/sys/class/net")
    except OSError:
        return []


def _users() -> list[str]:
    try:
        return [line.split(":", 1)[0] for line in Path("/etc/passwd").read_text().splitlines()]
    except OSError:
        return []


def _proc_starttime(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _pids_with(marker: str) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmd:
            found.add(int(entry))
    return found


def _kill_pids(pids: Iterable[int], grace: float = 2.0) -> set[int]:
    """SIGTERM, then SIGKILL after ``grace``; return pids still alive after that."""
    alive = {p for p in pids if p != os.getpid() and _proc_starttime(p) is not None}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        for p in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p, sig)
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = {p for p in alive if _proc_starttime(p) is not None}
        if not alive:
            break
    return alive


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _owner_alive(lab_id: str, base: Path) -> bool:
    m = _LAB_ID_RE.match(lab_id)
    if not m:
        return False
    pid = int(m.group(1))
    start = _proc_starttime(pid)
    if start is None:
        return False
    try:
        owner = json.loads((base / lab_id / "owner.json").read_text())
    except (OSError, ValueError):
        return True  # not written yet (lab starting) or unreadable: assume alive
    return bool(owner.get("starttime") == start)


def _teardown(lab_id: str, base: Path) -> list[str]:
    """Remove every trace of a lab by name; return what could not be removed."""
    marker = f"/{lab_id}/"
    metrics = _lab_route_metrics(lab_id, base)
    namespaces = [ns for ns in _list_netns() if ns.startswith(lab_id + "-")]
    pids: set[int] = set()
    for ns in namespaces:
        pids |= _netns_pids(ns)
    pids |= _pids_with(str(base) + marker)
    leftovers = [f"process {p}" for p in sorted(_kill_pids(pids))]
    if namespaces:
        ip = _tool("ip")
        r = _run([ip, "-force", "-batch", "-"], check=False,
                 input="".join(f"netns del {ns}\n" for ns in namespaces))
        if r.returncode:
            log.debug("netns del: %s", r.stderr.strip())
    if lab_id in _root_links():
        _run([_tool("ip"), "link", "del", lab_id], check=False)
    for metric in metrics:
        for net in (DATA_SUPERNET, MGMT_SUPERNET):
            _run([_tool("ip"), "route", "del", "unreachable", str(net), "metric", str(metric)],
                 check=False)
    if lab_id in _users():
        _run([_tool("userdel"), "-f", lab_id], check=False)
    shutil.rmtree(base / lab_id, ignore_errors=True)
    leftovers += [f"netns {ns}" for ns in _list_netns() if ns.startswith(lab_id + "-")]
    leftovers += [f"link {lab_id}"] if lab_id in _root_links() else []
    leftovers += [f"root route metric {m}" for m in sorted(metrics & _root_unreachable_metrics())]
    leftovers += [f"user {lab_id}"] if lab_id in _users() else []
    leftovers += [f"dir {base / lab_id}"] if (base / lab_id).exists() else []
    return leftovers


def _lab_k(lab_id: str, base: Path) -> int | None:
    try:
        return IPv4Network((base / lab_id / "mgmt").read_text().strip()).network_address.packed[2]
    except (OSError, ValueError):
        return None


def _root_unreachable_metrics() -> set[int]:
    """Metrics of the labs' "unreachable" routes in the root namespace."""
    out = set()
    r = _run([_tool("ip"), "-4", "route", "show", "type", "unreachable"], check=False)
    for line in r.stdout.splitlines():
        words = line.split()
        if (len(words) >= 3 and words[0] in (str(DATA_SUPERNET), str(MGMT_SUPERNET))
                and "metric" in words):
            with contextlib.suppress(ValueError, IndexError):
                metric = int(words[words.index("metric") + 1])
                if _ROOT_METRIC < metric < _ROOT_METRIC + 256:
                    out.add(metric)
    return out


def _lab_route_metrics(lab_id: str, base: Path) -> set[int]:
    """The root routes of one lab; with its K unknown (dir gone), those of no live lab."""
    k = _lab_k(lab_id, base)
    if k is not None:
        return {_ROOT_METRIC + k}
    live = {_lab_k(p.name, base) for p in base.glob("spbe*") if p.name != lab_id}
    return {m for m in _root_unreachable_metrics() if m - _ROOT_METRIC not in live}


def _lab_ids_present(base: Path) -> set[str]:
    ids = {m.group(1) for ns in _list_netns() if (m := _NS_RE.match(ns))}
    ids |= {n for n in _root_links() if _LAB_ID_RE.match(n)}
    ids |= {u for u in _users() if _LAB_ID_RE.match(u)}
    if base.is_dir():
        ids |= {p.name for p in base.iterdir() if _LAB_ID_RE.match(p.name)}
    return ids


def cleanup_stale(base_dir: Path | None = None) -> list[str]:
    """Remove namespaces, processes, veths, users and dirs of labs whose owner process is
    gone. Labs of live processes (other sessions, ``netlab up`` keepers) are left alone.
    Returns the removed lab ids; raises LabError if something could not be removed."""
    base = base_dir or LAB_BASE
    removed: list[str] = []
    problems: list[str] = []
    with _locked(base):
        for lab_id in sorted(_lab_ids_present(base)):
            if _owner_alive(lab_id, base):
                continue
            log.info("netlab: removing leftovers of dead lab %s", lab_id)
            problems += _teardown(lab_id, base)
            removed.append(lab_id)
        # root routes of labs whose dir is gone (e.g. removed by hand)
        live = {_lab_k(p.name, base) for p in base.glob("spbe*")}
        for metric in _root_unreachable_metrics():
            if metric - _ROOT_METRIC not in live:
                for net in (DATA_SUPERNET, MGMT_SUPERNET):
                    _run([_tool("ip"), "route", "del", "unreachable", str(net), "metric",
                          str(metric)], check=False)
    if problems:
        raise LabError("could not remove stale lab parts: " + ", ".join(problems))
    return removed


def _parse_snmp(stdout: str, prefix: str | None = None) -> list[tuple[str, str]]:
    """Parse ``-On -Oq`` output lines ``.OID value``; drop 'no such object' answers."""
    out = []
    for line in stdout.splitlines():
        if not line.startswith("."):
            continue
        oid, _, value = line.partition(" ")
        oid = oid[1:]
        if prefix and not (oid == prefix or oid.startswith(prefix + ".")):
            continue
        if value.startswith(_SNMP_ABSENT):
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out.append((oid, value))
    return out


# --------------------------------------------------------------------------- ifAlias handler

# net-snmp on Linux does not read interface aliases (``ip link set X alias ...``); this
# pass_persist handler serves IF-MIB::ifAlias from /sys/class/net/*/ifalias (live).
_IFALIAS_SCRIPT = r'''
import os, sys
BASE = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18)
PREFIX = "." + ".".join(map(str, BASE))


def table():
    out = {}
    for name in os.listdir("/sys/class/net"):
        try:
            with open(f"/sys/class/net/{name}/ifindex") as f:
                idx = int(f.read())
            with open(f"/sys/class/net/{name}/ifalias") as f:
                out[idx] = f.read().rstrip("\n").replace("\n", " ")
        except (OSError, ValueError):
            continue
    return out


def oid(text):
    try:
        return tuple(int(p) for p in text.strip().strip(".").split(".") if p)
    except ValueError:
        return ()


def answer(cmd, req):
    t = table()
    n = len(BASE)
    if cmd == "get":
        if len(req) == n + 1 and req[:n] == BASE and req[n] in t:
            return req[n]
        return None
    if req[:n] == BASE:
        suffix = req[n:]
    elif req < BASE:
        suffix = ()
    else:
        return None
    return next((i for i in sorted(t) if (i,) > suffix), None)


for line in sys.stdin:
    cmd = line.strip()
    if cmd == "PING":
        sys.stdout.write("PONG\n")
    elif cmd in ("get", "getnext"):
        idx = answer(cmd, oid(sys.stdin.readline()))
        if idx is None:
            sys.stdout.write("NONE\n")
        else:
            sys.stdout.write(f"{PREFIX}.{idx}\nstring\n{table().get(idx, '')}\n")
    elif cmd == "set":
        sys.stdin.readline()
        sys.stdin.readline()
        sys.stdout.write("not-writable\n")
    elif not cmd:
        break
    sys.stdout.flush()
'''


# --------------------------------------------------------------------------- lab internals


@dataclass
class _Port:
    name: str
    fabric: str  # the veth end in the fabric namespace
    alias: str | None
    address: str | None
    link: int | None = None  # index in Lab._links, None = no cable


@dataclass
class _LinkState:
    idx: int
    bridge: str
    a: tuple[str, str]  # (device, port)
    b: tuple[str, str]
    up: bool = True


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class _Dev:
    spec: DeviceSpec
    netns: str
    dir: Path
    mgmt_ip: str | None
    mgmt_fabric: str | None
    ports: dict[str, _Port] = field(default_factory=dict)
    procs: list[_Proc] = field(default_factory=list)
    lldp_seen: bool = False  # lldpd registered with snmpd at least once


_live: set[Lab] = set()


@atexit.register
def _stop_all() -> None:
    for lab in list(_live):
        with contextlib.suppress(Exception):
            lab.stop()


class Lab:
    """A running test network. Start with ``Lab.start(spec)`` (or ``with Lab.start() as lab``).

    Everything it creates is removed by ``stop()``, also after a failed start.
    """

    def __init__(self, spec: LabSpec | None = None, *, timeout: float = 60.0,
                 base_dir: Path | None = None) -> None:
        self.spec: LabSpec = spec or default_spec()
        self.timeout = timeout
        self.base = base_dir or LAB_BASE
        self.lab_id = ""
        self.dir = Path()
        self.mgmt_network = IPv4Network("10.254.0.0/24")
        self.mgmt_gateway = ""
        self.timings: dict[str, float] = {}
        self._devs: dict[str, _Dev] = {}
        self._links: dict[int, _LinkState] = {}
        self._fabric = ""
        self._fabric_seq = itertools.count(1)
        self._link_seq = itertools.count(1)
        self._fakenos: list[tuple[_Proc, list[str]]] = []  # runner, device names it serves
        self._user_created = False
        self._started = False
        self._stopped = False
        self._creds: SnmpCredentials | None = None

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    def start(cls, spec: LabSpec | None = None, *, timeout: float = 60.0,
              base_dir: Path | None = None) -> Lab:
        """Build and start a lab; return once every device answers SNMP, sees its LLDP
        neighbours via SNMP and every SSH server sends its banner. Raises LabError (with log
        tails) after ``timeout`` seconds, having removed everything it made."""
        lab = cls(spec, timeout=timeout, base_dir=base_dir)
        lab._start()
        return lab

    def _start(self) -> None:
        if self._started:
            return
        if os.geteuid() != 0:
            raise LabError("netlab needs root (network namespaces, veths, a temp user)")
        for t in ("ip", "snmpd", "snmpbulkwalk", "snmpget", "snmpset", "lldpd", "lldpcli",
                  "setpriv", "ping", "useradd", "userdel", "chpasswd", "ssh-keygen"):
            _tool(t)
        if not Path("/usr/sbin/sshd").exists():
            raise LabError("/usr/sbin/sshd not found; run scripts/install-netlab-deps.sh")
        t0 = time.monotonic()
        self._started = True
        _live.add(self)
        try:
            with contextlib.suppress(LabError):
                cleanup_stale(self.base)
            self._allocate()
            self.timings["allocate"] = time.monotonic() - t0
            self._bring_up(list(self.spec.devices), list(self.spec.links))
        except BaseException:
            with contextlib.suppress(Exception):
                self.stop()
            raise
        self.timings["total"] = time.monotonic() - t0
        log.info("netlab %s up in %.1fs (%s)", self.lab_id, self.timings["total"],
                 ", ".join(f"{k}={v:.2f}" for k, v in self.timings.items()))

    @property
    def startup_seconds(self) -> float:
        """Wall time of ``start`` (allocation, namespaces, daemons, readiness)."""
        return self.timings.get("total", 0.0)

    def _allocate(self) -> None:
        with _locked(self.base):
            while True:
                lab_id = f"spbe{os.getpid()}n{next(_seq)}"
                if lab_id not in _lab_ids_present(self.base):
                    break
            self.lab_id = lab_id
            self.dir = self.base / lab_id
            self.dir.mkdir(mode=0o711)
            os.chmod(self.dir, 0o711)  # the SSH user must traverse to its home/keys
            owner = {"pid": os.getpid(), "starttime": _proc_starttime(os.getpid()),
                     "created": time.time()}
            (self.dir / "owner.json").write_text(json.dumps(owner))
            k = self._free_mgmt_k()
            self.mgmt_network = IPv4Network(f"10.254.{k}.0/24")
            self.mgmt_gateway = f"10.254.{k}.1"
            (self.dir / "mgmt").write_text(str(self.mgmt_network))
            self._fabric = f"{lab_id}-fabric"
            _ip_batch([
                f"netns add {self._fabric}",
                f"link add name {lab_id} type veth peer name uplink netns {self._fabric}",
                f"addr add {self.mgmt_gateway}/24 dev {lab_id}",
                f"link set {lab_id} up",
                # nothing for the lab's ranges leaves the machine via the default route
                *(f"route add unreachable {net} metric {_ROOT_METRIC + k}"
                  for net in (DATA_SUPERNET, MGMT_SUPERNET)),
            ])
        _ip_batch([
            "link set lo up",
            "link add mgmt type bridge stp_state 0",
            "link set uplink master mgmt",
            "link set uplink up",
            "link set mgmt up",
        ], self._fabric)
        self._write_secrets()

    def _free_mgmt_k(self) -> int:
        used: list[IPv4Network] = []
        ip = _tool("ip")
        for args in (["-4", "-o", "addr", "show"], ["-4", "route", "show", "table", "all"]):
            for word in _run([ip, *args], check=False).stdout.split():
                with contextlib.suppress(ValueError):
                    if word[:1].isdigit():
                        used.append(IPv4Network(word, strict=False))
        for other in self.base.glob("spbe*/mgmt"):
            with contextlib.suppress(OSError, ValueError):
                used.append(IPv4Network(other.read_text().strip()))
        for k in range(1, 255):
            net = IPv4Network(f"10.254.{k}.0/24")
            if not any(net.overlaps(u) for u in used if u.prefixlen > 16):
                return k
        raise LabError("no free /24 in 10.254.0.0/16 for the management network")

    def _write_secrets(self) -> None:
        sdir = self.dir / "secrets"
        sdir.mkdir(mode=0o700)
        values = {
            "snmp-community": f"lab{secrets.token_hex(8)}",
            "snmp-auth-key": secrets.token_hex(12),
            "snmp-priv-key": secrets.token_hex(12),
            "device-password": secrets.token_urlsafe(12),
            "openssh-password": secrets.token_urlsafe(12),
            "snmp-local-rw": f"rw{secrets.token_hex(8)}",
        }
        for name, value in values.items():
            _write_private(sdir / name, value + "\n")
        self._creds = SnmpCredentials(
            community=Secret(sdir / "snmp-community"), user=SNMP_V3_USER,
            auth_key=Secret(sdir / "snmp-auth-key"), priv_key=Secret(sdir / "snmp-priv-key"))
        (self.dir / "ifalias.py").write_text(_IFALIAS_SCRIPT)

    def stop(self) -> None:
        """Stop every process and remove every namespace, veth, the temp user and the lab
        dir. Idempotent; raises LabError naming anything it could not remove."""
        if self._stopped or not self.lab_id:
            self._stopped = True
            _live.discard(self)
            return
        self._stopped = True
        procs = [p for d in self._devs.values() for p in d.procs]
        procs += [runner for runner, _ in self._fakenos]
        self._terminate(procs)
        with _locked(self.base):
            leftovers = _teardown(self.lab_id, self.base)
        _live.discard(self)
        if leftovers:
            raise LabError(f"netlab {self.lab_id}: could not remove {', '.join(leftovers)}")

    @staticmethod
    def _terminate(procs: Sequence[_Proc], grace: float = 3.0) -> None:
        for p in procs:
            if p.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.popen.terminate()
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.popen.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()

    def __enter__(self) -> Self:
        self._start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Lab {self.lab_id or '(not started)'} {len(self._devs)} devices>"

    # ----------------------------------------------------------------- building

    def _port_auto(self, dev: str, taken: set[str]) -> str:
        role = self._devs[dev].spec.role if dev in self._devs else "router"
        for n in itertools.count(0 if role == "host" else 1):
            if f"eth{n}" not in taken:
                return f"eth{n}"
        raise AssertionError("unreachable")

    def _bring_up(self, new: list[DeviceSpec], links: list[LinkSpec]) -> None:
        t0 = time.monotonic()
        root_lines: list[str] = []
        ns_lines: dict[str, list[str]] = {}
        fabric: list[str] = []
        used_hosts = {int(d.mgmt_ip.rsplit(".", 1)[1]) for d in self._devs.values()
                      if d.mgmt_ip}
        for d in new:
            if d.mgmt_host in used_hosts:
                raise LabSpecError(f"device {d.name!r}: mgmt_host {d.mgmt_host} is taken")
        used_hosts |= {d.mgmt_host for d in new if d.mgmt_host is not None}
        auto_host = itertools.count(100)
        for spec in new:
            ns = f"{self.lab_id}-{spec.name}"
            ddir = self.dir / "devices" / spec.name
            ddir.mkdir(parents=True)
            mgmt_ip = mgmt_fabric = None
            root_lines.append(f"netns add {ns}")
            lines = ns_lines.setdefault(ns, ["link set lo up"])
            if spec.managed:
                host = spec.mgmt_host
                if host is None:
                    host = next(h for h in auto_host if h not in used_hosts)
                    used_hosts.add(host)
                if host > 254:
                    raise LabError("management network full")
                mgmt_ip = str(self.mgmt_network.network_address + host)
                mgmt_fabric = f"m{next(self._fabric_seq)}"
                root_lines.append(f"link add name {MGMT_IFACE} netns {ns} type veth "
                                  f"peer name {mgmt_fabric} netns {self._fabric}")
                fabric += [f"link set {mgmt_fabric} master mgmt", f"link set {mgmt_fabric} up"]
                # management is out of band: its subnet is in a table that only locally
                # originated traffic uses, so routers never forward into or out of it
                lines += [f"addr add {mgmt_ip}/24 dev {MGMT_IFACE} noprefixroute",
                          f"link set {MGMT_IFACE} up",
                          f"route add {self.mgmt_network} dev {MGMT_IFACE} src {mgmt_ip} "
                          f"table {_MGMT_TABLE}",
                          f"rule add iif lo to {self.mgmt_network} lookup {_MGMT_TABLE} "
                          f"pref {_MGMT_TABLE}"]
            if spec.role == "switch":
                lines += [f"link add {SWITCH_BRIDGE} type bridge stp_state 0",
                          f"link set {SWITCH_BRIDGE} up"]
                if spec.svi_address:
                    lines.append(f"addr add {spec.svi_address} dev {SWITCH_BRIDGE}")
            self._devs[spec.name] = _Dev(spec, ns, ddir, mgmt_ip, mgmt_fabric)
            for spare in spec.spare_ports:
                self._new_port(spec.name, spare, None, None, root_lines, ns_lines)
        for link in links:
            ends: list[tuple[str, _Port]] = []
            for end in (link.a, link.b):
                dev = self._devs[end.device]
                port = dev.ports.get(end.port) if end.port else None
                if port is not None:
                    if port.link is not None:
                        raise LabError(f"port {end.device}/{end.port} already has a cable")
                    lines = ns_lines.setdefault(dev.netns, [])
                    port.alias, port.address = end.alias, end.address
                    lines += self._port_lines(dev, port)
                else:
                    name = end.port or self._port_auto(end.device, set(dev.ports))
                    port = self._new_port(end.device, name, end.alias, end.address,
                                          root_lines, ns_lines)
                ends.append((end.device, port))
            idx = next(self._link_seq)
            bridge = f"l{idx}"
            (da, pa), (db, pb) = ends
            pa.link = pb.link = idx
            self._links[idx] = _LinkState(idx, bridge, (da, pa.name), (db, pb.name))
            fabric += [f"link add {bridge} type bridge stp_state 0 group_fwd_mask 0x4000",
                       f"link set {bridge} up",
                       f"link set {pa.fabric} master {bridge}", f"link set {pa.fabric} up",
                       f"link set {pb.fabric} master {bridge}", f"link set {pb.fabric} up"]
        for spec in new:
            ns_lines.setdefault(self._devs[spec.name].netns, []).extend(
                f"route add {prefix} via {via}" for prefix, via in spec.routes)
        _ip_batch(root_lines)
        _ip_batch(fabric, self._fabric)
        _ip_batches(ns_lines)
        for spec in new:
            if spec.role == "router":
                with netns_entered(f"/run/netns/{self._devs[spec.name].netns}"), \
                        open("/proc/sys/net/ipv4/ip_forward", "w") as f:
                    f.write("1")
        self.timings["namespaces"] = self.timings.get("namespaces", 0) + time.monotonic() - t0
        t1 = time.monotonic()
        managed = [s for s in new if s.managed]
        self._ensure_ssh_user(any(s.ssh == "openssh" for s in managed))
        for spec in managed:
            self._start_snmpd(self._devs[spec.name])
        self._wait_agentx([self._devs[s.name] for s in managed])
        self._tune_caches([self._devs[s.name] for s in managed])
        for spec in managed:
            self._start_lldpd(self._devs[spec.name])
            if spec.ssh == "openssh":
                self._start_sshd(self._devs[spec.name])
        fakenos = [s.name for s in managed if s.ssh in FAKENOS_PLATFORMS]
        if fakenos:
            self._start_fakenos(fakenos)
        pings = self._arp_pings(new)
        self.timings["daemons"] = self.timings.get("daemons", 0) + time.monotonic() - t1
        t2 = time.monotonic()
        for p, what in pings:
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            if rc != 0:
                raise LabError(f"data plane: {what} got no reply")
        self._wait_ready([s.name for s in managed])
        self.timings["ready"] = self.timings.get("ready", 0) + time.monotonic() - t2

    def _new_port(self, device: str, name: str, alias: str | None, address: str | None,
                  root_lines: list[str], ns_lines: dict[str, list[str]]) -> _Port:
        dev = self._devs[device]
        if name in dev.ports or name in _RESERVED_PORTS:
            raise LabError(f"port {device}/{name} exists")
        port = _Port(name, f"p{next(self._fabric_seq)}", alias, address)
        dev.ports[name] = port
        root_lines.append(f"link add name {name} netns {dev.netns} type veth "
                          f"peer name {port.fabric} netns {self._fabric}")
        ns_lines.setdefault(dev.netns, []).extend(self._port_lines(dev, port))
        return port

    @staticmethod
    def _port_lines(dev: _Dev, port: _Port) -> list[str]:
        lines = []
        if port.alias:
            lines.append(f'link set dev {port.name} alias "{port.alias}"')
        if dev.spec.role == "switch":
            lines.append(f"link set {port.name} master {SWITCH_BRIDGE}")
        elif port.address:
            lines.append(f"addr add {port.address} dev {port.name}")
        lines.append(f"link set {port.name} up")
        return lines

    def _spawn(self, dev: _Dev, what: str, argv: list[str],
               env: Mapping[str, str] | None = None) -> _Proc:
        logfile = dev.dir / f"{what}.log"
        cmd = [_tool("setpriv"), "--pdeathsig", "KILL", "--", _tool("ip"), "netns", "exec",
               dev.netns, *argv]
        full_env = {**os.environ, "MIBS": "", **(env or {})}
        with open(logfile, "ab") as f:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)
        proc = _Proc(f"{dev.spec.name}/{what}", popen, logfile)
        dev.procs.append(proc)
        return proc

    def _start_snmpd(self, dev: _Dev) -> None:
        assert self._creds is not None and dev.mgmt_ip
        spec, c = dev.spec, self._creds
        sock = dev.dir / "agentx.sock"
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()  # a stale AgentX socket makes snmpd fail
        (dev.dir / "persist").mkdir(exist_ok=True)
        lines = [
            f"agentAddress udp:{dev.mgmt_ip}:161,udp:127.0.0.1:161",
            "master agentx",
            f"agentXSocket unix:{sock}",
            "agentXPerms 0600 0700",
            f"rocommunity {c.community.value()} {self.mgmt_network}",
            # namespace-local, only for the cache lifetimes (see _tune_caches)
            f"rwcommunity {self._local_rw()} 127.0.0.1 .{_NS_CACHE_TIMEOUT}",
            f'createUser {c.user} {c.auth_protocol} "{c.auth_key.value()}" '
            f'{c.priv_protocol} "{c.priv_key.value()}"',
            f"rouser {c.user} priv",
            f"sysName {spec.name}",
            f"sysLocation {spec.location}",
            f"sysContact {spec.contact}",
            f"pass_persist .{OID_IF_ALIAS} {sys.executable} -I -S {self.dir / 'ifalias.py'}",
            "dontLogTCPWrappersConnects yes",
        ]
        if spec.descr:
            lines.append(f"sysDescr {spec.descr}")
        if spec.object_id:
            lines.append(f"sysObjectID {spec.object_id}")
        conf = dev.dir / "snmpd.conf"
        _write_private(conf, "\n".join(lines) + "\n")
        self._spawn(dev, "snmpd", [_tool("snmpd"), "-f", "-C", "-c", str(conf), "-Lo",
                                   "-I", "-smux,mteTrigger,mteTriggerConf"],
                    env={"SNMP_PERSISTENT_DIR": str(dev.dir / "persist")})

    def _wait_agentx(self, devs: list[_Dev], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(devs)
        while pending:
            pending = [d for d in pending if not (d.dir / "agentx.sock").exists()]
            for d in pending:
                self._check_alive(d)
            if pending and time.monotonic() > deadline:
                raise self._not_ready(pending, {d.spec.name: "snmpd made no AgentX socket"
                                                for d in pending}, timeout)
            if pending:
                time.sleep(0.02)

    def _local_rw(self) -> str:
        return (self.dir / "secrets" / "snmp-local-rw").read_text().strip()

    def _tune_caches(self, devs: list[_Dev]) -> None:
        """net-snmp caches tables for 3-60 s (routes: 60 s); set 1 s, so changes made by
        tests (cut links, new routes, aliases) show up in SNMP at once."""
        argv = [_tool("snmpset"), "-v2c", "-c", self._local_rw(), "-m", "", "-t", "1",
                "-r", "3", "udp:127.0.0.1:161"]
        for table in _CACHED_TABLES:
            argv += [f"{_NS_CACHE_TIMEOUT}.{table}", "i", "1"]
        procs = [(d, subprocess.Popen([_tool("ip"), "netns", "exec", d.netns, *argv],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)) for d in devs]
        errors = []
        for d, p in procs:
            _, err = _communicate(p, f"snmpset {d.spec.name} nsCacheTimeout")
            if p.returncode != 0:
                errors.append(f"{d.spec.name}: {err.strip()}")
        if errors:
            raise LabError("setting snmpd cache lifetimes failed: " + "; ".join(errors))

    def _start_lldpd(self, dev: _Dev) -> None:
        Path("/run/lldpd").mkdir(exist_ok=True)  # lldpd's privilege-separation chroot
        spec = dev.spec
        lines = [
            f"configure system hostname {spec.name}",
            f"configure system ip management pattern {dev.mgmt_ip}",
            "configure lldp portidsubtype ifname",
            "configure lldp tx-interval 1",
            "configure lldp tx-hold 3",  # TTL ~4 s: a lost neighbour ages out fast
        ]
        if spec.descr:
            lines.append(f'configure system description "{spec.descr}"')
        conf = dev.dir / "lldpd.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._spawn(dev, "lldpd", [_tool("lldpd"), "-d", "-u", str(dev.dir / "lldpd.sock"),
                                   "-X", str(dev.dir / "agentx.sock"), "-O", str(conf),
                                   "-I", f"*,!{MGMT_IFACE}"])

    def _ensure_ssh_user(self, needed: bool) -> None:
        if self._user_created or not needed:
            return
        home = self.dir / "home"
        sdir = self.dir / "secrets"
        _run([_tool("useradd"), "--no-create-home", "--home-dir", str(home), "--shell",
              "/bin/sh", "--comment", f"spbe netlab {self.lab_id}", "--user-group", self.lab_id])
        self._user_created = True
        home.mkdir(mode=0o700)
        shutil.chown(home, self.lab_id, self.lab_id)
        _run([_tool("chpasswd")],
             input=f"{self.lab_id}:{(sdir / 'openssh-password').read_text().strip()}\n")
        _run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", self.lab_id,
              "-f", str(sdir / "openssh-key")])
        odir = self.dir / "openssh"
        odir.mkdir(mode=0o755)
        shutil.copy(sdir / "openssh-key.pub", odir / "authorized_keys")
        os.chmod(odir / "authorized_keys", 0o644)
        _run([_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "netlab-host",
              "-f", str(odir / "ssh_host_ed25519_key")])
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privsep dir

    def _start_sshd(self, dev: _Dev) -> None:
        odir = self.dir / "openssh"
        conf = dev.dir / "sshd_config"
        conf.write_text("\n".join([
            "Port 22",
            f"ListenAddress {dev.mgmt_ip}",
            f"HostKey {odir / 'ssh_host_ed25519_key'}",
            "PidFile none",
            f"AuthorizedKeysFile {odir / 'authorized_keys'}",
            f"AllowUsers {self.lab_id}",
            "PasswordAuthentication yes",
            "PubkeyAuthentication yes",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin no",
            "UsePAM no",
            "StrictModes no",
            "X11Forwarding no",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]) + "\n")
        self._spawn(dev, "sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)])

    def _start_fakenos(self, names: list[str]) -> None:
        hosts = []
        for name in names:
            dev = self._devs[name]
            assert dev.spec.ssh is not None and dev.mgmt_ip
            hosts.append(FakeNosHost(
                name=name, platform=dev.spec.ssh, netns=f"/run/netns/{dev.netns}",
                address=dev.mgmt_ip, port=22, username=DEVICE_USERNAME,
                password_file=str(self.dir / "secrets" / "device-password")))
        n = len(self._fakenos) + 1
        conf = self.dir / f"fakenos-{n}.json"
        write_config(conf, hosts)
        script = Path(__file__).resolve().parent / "fakenos_lab.py"
        logfile = self.dir / f"fakenos-{n}.log"
        cmd = [_tool("setpriv"), "--pdeathsig", "KILL", "--", _tool("ip"), "netns", "exec",
               self._fabric, sys.executable, str(script), str(conf)]
        with open(logfile, "ab") as f:
            popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=f,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self._fakenos.append((_Proc(f"fakenos-{n}", popen, logfile), names))

    def _arp_pings(self, new: list[DeviceSpec]) -> list[tuple[subprocess.Popen[bytes], str]]:
        """Ping each new device's gateway and each new L3 link peer, so ARP tables and the
        switches' bridge tables hold real entries."""
        targets: set[tuple[str, str]] = set()
        names = {s.name for s in new}
        for spec in new:
            for prefix, via in spec.routes:
                if prefix == "default":
                    targets.add((spec.name, via))
        for link in self._links.values():
            (da, pa), (db, pb) = link.a, link.b
            if da not in names and db not in names:
                continue
            aa, ab = self._devs[da].ports[pa].address, self._devs[db].ports[pb].address
            if aa and ab:
                targets.add((da, ab.split("/")[0]))
        procs = []
        for dev, ip in sorted(targets):
            procs.append((subprocess.Popen(
                [_tool("ip"), "netns", "exec", self._devs[dev].netns, _tool("ping"), "-q",
                 "-c", "1", "-i", "0.2", "-w", "5", ip],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL), f"{dev} -> {ip}"))
        return procs

    # ----------------------------------------------------------------- readiness

    def _check_alive(self, dev: _Dev) -> None:
        for p in dev.procs:
            if p.popen.poll() is not None:
                raise LabError(f"netlab {self.lab_id}: {p.name} exited with "
                               f"{p.popen.returncode}\n--- {p.log} ---\n{_tail(p.log)}")

    def _expected_neighbours(self, name: str) -> set[str]:
        out = set()
        for link in self._links.values():
            if not link.up:
                continue
            for (d, _), (peer, _) in ((link.a, link.b), (link.b, link.a)):
                if d == name and self._devs[peer].spec.managed:
                    out.add(peer)
        return out

    def _snmp_cmd(self, tool: str, name: str, oid: str, v3: bool = False) -> list[str]:
        dev = self._devs[name]
        assert self._creds is not None and dev.mgmt_ip
        auth = self._creds.v3_args() if v3 else self._creds.v2c_args()
        return [_tool(tool), *auth, "-m", "", "-On", "-Oq", "-t", "1", "-r", "1",
                f"{dev.mgmt_ip}:161", oid]

    def snmp_get(self, device: str, oid: str, *, v3: bool = False) -> str | None:
        """One value via net-snmp's snmpget from the root namespace (None if absent)."""
        r = _run(self._snmp_cmd("snmpget", device, oid, v3), check=False,
                 what=f"snmpget {device} {oid}")
        if r.returncode != 0:
            raise LabError(f"snmpget {device} {oid}: {r.stderr.strip()}")
        values = _parse_snmp(r.stdout, oid)
        return values[0][1] if values else None

    def snmp_walk(self, device: str, oid: str, *, v3: bool = False) -> list[tuple[str, str]]:
        """``(oid, value)`` pairs via net-snmp's snmpbulkwalk from the root namespace."""
        r = _run(self._snmp_cmd("snmpbulkwalk", device, oid, v3), check=False,
                 what=f"snmpbulkwalk {device} {oid}")
        if r.returncode != 0:
            raise LabError(f"snmpbulkwalk {device} {oid}: {r.stderr.strip()}")
        return _parse_snmp(r.stdout, oid)

    def if_index(self, device: str, port: str) -> int:
        """The ifIndex of a port, read via SNMP (ifDescr)."""
        for oid, name in self.snmp_walk(device, OID_IF_DESCR):
            if name == port:
                return int(oid.rsplit(".", 1)[1])
        raise LabError(f"{device}: no interface {port!r} in ifDescr")

    def wait_oper_status(self, ports: Iterable[tuple[str, str]], up: bool,
                         timeout: float | None = None) -> None:
        """Wait until ifOperStatus (via SNMP) of each (device, port) is up(1) / down(2)."""
        want = "1" if up else "2"
        todo = {(d, p): self.if_index(d, p) for d, p in ports}
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while todo:
            todo = {k: i for k, i in todo.items()
                    if self.snmp_get(k[0], f"{OID_IF_OPER_STATUS}.{i}") != want}
            if todo and time.monotonic() > deadline:
                raise LabError(f"ifOperStatus not {'up' if up else 'down'} after {limit:.0f}s: "
                               f"{', '.join(f'{d}/{p}' for d, p in todo)}")
            if todo:
                time.sleep(0.2)

    def lldp_neighbours(self, device: str) -> set[str]:
        """System names in the device's LLDP remote table, read via SNMP."""
        return {v for _, v in self.snmp_walk(device, OID_LLDP_REM_SYS_NAME)}

    def wait_lldp(self, devices: Iterable[str] | None = None, timeout: float | None = None) -> None:
        """Wait until each device's LLDP remote table (via SNMP) holds exactly its managed
        peers on links that are up. Raises LabError with details and log tails."""
        self._wait_ready(list(devices) if devices is not None else list(self.devices),
                         timeout=timeout, ssh=False)

    def _wait_ready(self, names: list[str], timeout: float | None = None,
                    ssh: bool = True) -> None:
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        snmp_pending = set(names)
        ssh_pending = {n for n in names if ssh and self._devs[n].spec.ssh}
        problems: dict[str, str] = {}
        while True:
            for n in names:
                self._check_alive(self._devs[n])
            for runner, served in self._fakenos:
                if runner.popen.poll() is not None and set(served) & ssh_pending:
                    raise LabError(f"netlab {self.lab_id}: FakeNOS runner exited with "
                                   f"{runner.popen.returncode}\n{_tail(runner.log)}")
            ssh_pending = {n for n in ssh_pending if not self._ssh_banner(self._devs[n])}
            procs = {}
            for n in snmp_pending:
                dev = self._devs[n]
                oid = OID_LLDP_REM_SYS_NAME if dev.lldp_seen else OID_LLDP_LOC_SYS_NAME
                tool = "snmpbulkwalk" if dev.lldp_seen else "snmpget"
                procs[n] = subprocess.Popen(self._snmp_cmd(tool, n, oid), text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for n, p in procs.items():
                out, err = _communicate(p, f"SNMP poll of {n}")
                dev = self._devs[n]
                if p.returncode != 0:
                    problems[n] = f"SNMP: {err.strip() or p.returncode}"
                elif not dev.lldp_seen:
                    dev.lldp_seen = bool(_parse_snmp(out, OID_LLDP_LOC_SYS_NAME))
                    problems[n] = "LLDP-MIB not served yet (lldpd not registered with snmpd)"
                else:
                    seen = {v for _, v in _parse_snmp(out, OID_LLDP_REM_SYS_NAME)}
                    want = self._expected_neighbours(n)
                    if seen == want:
                        snmp_pending.discard(n)
                    problems[n] = f"LLDP neighbours {sorted(seen)}, expected {sorted(want)}"
            if not snmp_pending and not ssh_pending:
                return
            if time.monotonic() > deadline:
                why = {n: "; ".join(w for w in (
                    problems.get(n, "") if n in snmp_pending else "",
                    "SSH server not answering" if n in ssh_pending else "") if w)
                    for n in snmp_pending | ssh_pending}
                raise self._not_ready([self._devs[n] for n in sorted(why)], why, limit)
            time.sleep(0.2)

    def _ssh_banner(self, dev: _Dev) -> bool:
        assert dev.mgmt_ip
        try:
            with socket.create_connection((dev.mgmt_ip, 22), timeout=1.0) as s:
                s.settimeout(2.0)
                return s.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def _not_ready(self, devs: list[_Dev], why: Mapping[str, str], limit: float) -> LabError:
        parts = [f"netlab {self.lab_id} not ready after {limit:.0f}s:"]
        parts += [f"  {d.spec.name}: {why.get(d.spec.name, '?')}" for d in devs]
        for d in devs[:3]:
            for p in d.procs:
                parts.append(f"--- {p.name} ({p.log}) ---\n{_tail(p.log)}")
        for runner, served in self._fakenos:
            if any(d.spec.name in served for d in devs):
                parts.append(f"--- {runner.name} ({runner.log}) ---\n{_tail(runner.log)}")
        return LabError("\n".join(parts))

    # ----------------------------------------------------------------- views

    @property
    def snmp(self) -> SnmpCredentials:
        """The lab's SNMP credentials (the same on every device)."""
        if self._creds is None:
            raise LabError("lab not started")
        return self._creds

    def _ssh_endpoint(self, dev: _Dev) -> SshEndpoint | None:
        if not dev.spec.ssh or not dev.mgmt_ip:
            return None
        sdir = self.dir / "secrets"
        if dev.spec.ssh == "openssh":
            return SshEndpoint(dev.spec.name, "linux", dev.mgmt_ip, 22, self.lab_id,
                               Secret(sdir / "openssh-password"), sdir / "openssh-key")
        return SshEndpoint(dev.spec.name, dev.spec.ssh, dev.mgmt_ip, 22, DEVICE_USERNAME,
                           Secret(sdir / "device-password"))

    @property
    def devices(self) -> Mapping[str, Device]:
        """Managed devices by name (current, including runtime additions)."""
        out = {}
        for name, d in self._devs.items():
            s = d.spec
            if not s.managed or not d.mgmt_ip:
                continue
            out[name] = Device(
                name=name, pd=s.pd, role=s.role, netns=d.netns, mgmt_ip=d.mgmt_ip,
                sys_name=name, sys_location=s.location, sys_contact=s.contact,
                sys_descr=s.descr, sys_object_id=s.object_id, snmp=self.snmp,
                ssh=self._ssh_endpoint(d),
                ports=MappingProxyType({p.name: p.alias for p in d.ports.values()}))
        return MappingProxyType(out)

    @property
    def end_hosts(self) -> Mapping[str, EndHost]:
        out = {}
        for name, d in self._devs.items():
            if d.spec.managed:
                continue
            addrs = tuple(p.address for p in d.ports.values() if p.address)
            out[name] = EndHost(name, d.spec.pd, d.netns, addrs)
        return MappingProxyType(out)

    @property
    def links(self) -> tuple[Link, ...]:
        return tuple(Link(lk.a[0], lk.a[1], lk.b[0], lk.b[1], lk.up)
                     for lk in self._links.values())

    @property
    def ssh_endpoints(self) -> Mapping[str, SshEndpoint]:
        """Every SSH server by device name."""
        return MappingProxyType({n: e for n, d in self._devs.items()
                                 if (e := self._ssh_endpoint(d)) is not None})

    @property
    def fakenos(self) -> Mapping[str, SshEndpoint]:
        """FakeNOS endpoints by platform (the first device of each platform)."""
        out: dict[str, SshEndpoint] = {}
        for e in self.ssh_endpoints.values():
            if e.platform != "linux":
                out.setdefault(e.platform, e)
        return MappingProxyType(out)

    @property
    def openssh(self) -> SshEndpoint | None:
        """The real OpenSSH server (first ``ssh="openssh"`` device), or None."""
        return next((e for e in self.ssh_endpoints.values() if e.platform == "linux"), None)

    def netns(self, name: str) -> str:
        """The network namespace of a device or end host."""
        return self._dev(name).netns

    def run_in(self, name: str, argv: Sequence[str], *, timeout: float = 30.0,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside a device's or host's namespace."""
        return _run([_tool("ip"), "netns", "exec", self.netns(name), *argv], timeout=timeout,
                    check=check, what=f"{name}: {' '.join(argv[:3])}")

    def _dev(self, name: str) -> _Dev:
        try:
            return self._devs[name]
        except KeyError:
            raise LabError(f"no device {name!r} in lab {self.lab_id}; devices: "
                           f"{', '.join(self._devs)}") from None

    # ----------------------------------------------------------------- runtime changes

    def _find_link(self, a: str, b: str, port: str | None) -> _LinkState:
        self._dev(a)
        self._dev(b)
        found = [lk for lk in self._links.values()
                 if {lk.a[0], lk.b[0]} == {a, b}
                 and (port is None or (a, port) in (lk.a, lk.b))]
        if not found:
            raise LabError(f"no link between {a} and {b}" + (f" on {a}/{port}" if port else ""))
        if len(found) > 1:
            raise LabError(f"several links between {a} and {b}; name the port of {a}")
        return found[0]

    def _set_link(self, a: str, b: str, port: str | None, up: bool, wait: bool) -> None:
        link = self._find_link(a, b, port)
        state = "up" if up else "down"
        ends = [self._devs[d].ports[p].fabric for d, p in (link.a, link.b)]
        _ip_batch([f"link set {e} {state}" for e in ends], self._fabric)
        link.up = up
        if wait:
            self.wait_oper_status([e for e in (link.a, link.b)
                                   if self._devs[e[0]].spec.managed], up)
            self.wait_lldp([d for d in (a, b) if self._devs[d].spec.managed])

    def cut_link(self, a: str, b: str, *, port: str | None = None, wait: bool = True) -> None:
        """Cut the cable between devices ``a`` and ``b`` (``port``: a's port, if several):
        both ports stay admin up and lose carrier (ifOperStatus down), LLDP neighbours age
        out. With ``wait``, return once SNMP shows both ports down and both LLDP tables no
        longer list each other."""
        self._set_link(a, b, port, False, wait)

    def restore_link(self, a: str, b: str, *, port: str | None = None,
                     wait: bool = True) -> None:
        """Reconnect a cut cable; with ``wait``, until SNMP shows both ports up and the
        neighbours back in LLDP."""
        self._set_link(a, b, port, True, wait)

    def set_alias(self, device: str, port: str, alias: str | None) -> None:
        """Set or clear (None) a port's description (ifAlias, LLDP port description)."""
        dev = self._dev(device)
        if port not in dev.ports:
            raise LabError(f"{device} has no port {port!r}; ports: {', '.join(dev.ports)}")
        _validate_text(alias, f"{device}/{port} alias")
        _ip_batch([f'link set dev {port} alias "{alias or ""}"'], dev.netns)
        dev.ports[port].alias = alias or None

    def set_port_state(self, device: str, port: str, up: bool) -> None:
        """Administratively enable/disable a port (ifAdminStatus)."""
        dev = self._dev(device)
        if port not in dev.ports:
            raise LabError(f"{device} has no port {port!r}; ports: {', '.join(dev.ports)}")
        _ip_batch([f"link set {port} {'up' if up else 'down'}"], dev.netns)

    def add_device(self, device: DeviceSpec | str, pd: str | None = None,
                   links: Sequence[LinkSpec | str] = (), *, role: Role = "router",
                   ssh: str | None = None, wait: bool = True) -> Device | None:
        """Add a device (or end host) to the running lab and cable it.

        ``device`` is a full DeviceSpec or a name (then ``pd``, ``role``, ``ssh`` apply).
        A link given as a peer name gets the next free port on both sides and addresses:
        a free address in the peer switch's SVI subnet, or a /30 from 10.253.240.0/20
        between two L3 devices (none if the new device is a switch). With ``wait``,
        returns once the new device and its peers show each other in LLDP via SNMP.
        Returns the Device (None for an end host).
        """
        if isinstance(device, str):
            if pd is None:
                raise LabSpecError("add_device(name, ...) needs pd")
            device = DeviceSpec(device, pd, role, ssh=ssh)
        specs = [*self.spec.devices, device]
        resolved = [self._resolve_link(device, lk) if isinstance(lk, str) else lk
                    for lk in links]
        new_spec = LabSpec(tuple(specs), (*self.spec.links, *resolved))
        self._bring_up([device], resolved)
        self.spec = new_spec
        if wait and device.managed:
            peers = {e.device for lk in resolved for e in (lk.a, lk.b)} - {device.name}
            self.wait_lldp([device.name, *sorted(p for p in peers
                                                 if self._devs[p].spec.managed)])
        return self.devices.get(device.name)

    def _used_addresses(self) -> set[IPv4Address]:
        used = {IPv4Interface(p.address).ip for d in self._devs.values()
                for p in d.ports.values() if p.address}
        used |= {IPv4Interface(d.spec.svi_address).ip for d in self._devs.values()
                 if d.spec.svi_address}
        return used

    def _resolve_link(self, new: DeviceSpec, peer: str) -> LinkSpec:
        p = self._dev(peer)
        used = self._used_addresses()
        if p.spec.role == "switch":
            if new.role == "switch" or not p.spec.svi_address:
                return LinkSpec(PortSpec(peer), PortSpec(new.name))
            net = IPv4Interface(p.spec.svi_address).network
            free = next((h for h in net.hosts() if h not in used and int(h) % 256 >= 50), None)
            if free is None:
                raise LabError(f"no free address in {net} for {new.name}")
            return LinkSpec(PortSpec(peer), PortSpec(new.name, address=f"{free}/{net.prefixlen}"))
        if new.role == "switch":
            return LinkSpec(PortSpec(peer), PortSpec(new.name))
        for sub in AUTO_P2P_POOL.subnets(new_prefix=30):
            a, b = list(sub.hosts())
            if a not in used and b not in used:
                return LinkSpec(PortSpec(peer, address=f"{a}/30"),
                                PortSpec(new.name, address=f"{b}/30"))
        raise LabError(f"{AUTO_P2P_POOL} exhausted")

    def remove_device(self, name: str, *, wait: bool = True) -> None:
        """Remove a device from the running lab: its daemons stop, its namespace goes, and
        the peers' ports lose carrier (they stay as ports with no cable). With ``wait``,
        returns once SNMP shows the peers' ports down and their LLDP tables without it."""
        dev = self._dev(name)
        for runner, served in self._fakenos:
            if name in served and runner.popen.poll() is None:
                assert runner.popen.stdin is not None
                # the runner stops serving it, so no socket keeps the namespace alive
                runner.popen.stdin.write(f"stop {name}\n".encode())
                runner.popen.stdin.flush()
                served.remove(name)
        self._terminate(dev.procs)
        _kill_pids(_netns_pids(dev.netns))
        self._wait_fakenos_released(dev)
        peers = set()
        peer_ports = []
        fabric: list[str] = []
        for idx, link in list(self._links.items()):
            if name not in (link.a[0], link.b[0]):
                continue
            peer, pport = link.b if link.a[0] == name else link.a
            peers.add(peer)
            peer_ports.append((peer, pport))
            fabric += [f"link del {link.bridge}", f"link set {self._devs[peer].ports[pport].fabric}"
                       f" down"]
            self._devs[peer].ports[pport].link = None
            del self._links[idx]
        _ip_batch(fabric, self._fabric)
        _run([_tool("ip"), "netns", "del", dev.netns])
        del self._devs[name]
        shutil.rmtree(dev.dir, ignore_errors=True)
        self.spec = LabSpec(
            tuple(d for d in self.spec.devices if d.name != name),
            tuple(lk for lk in self.spec.links if name not in (lk.a.device, lk.b.device)))
        if wait:
            self.wait_oper_status([pp for pp in peer_ports if self._devs[pp[0]].spec.managed],
                                  False)
            self.wait_lldp(sorted(p for p in peers if self._devs[p].spec.managed))

    def _wait_fakenos_released(self, dev: _Dev, timeout: float = 10.0) -> None:
        if not dev.spec.ssh or dev.spec.ssh == "openssh":
            return
        deadline = time.monotonic() + timeout
        while self._ssh_banner(dev):
            if time.monotonic() > deadline:
                raise LabError(f"FakeNOS did not stop serving {dev.spec.name}")
            time.sleep(0.1)

    # ----------------------------------------------------------------- state (CLI)

    def state(self) -> dict[str, Any]:
        """A JSON-able description: endpoints and credential *file paths*, no secret values."""
        c = self.snmp

        def ssh(e: SshEndpoint | None) -> dict[str, Any] | None:
            if e is None:
                return None
            return {"device": e.device, "platform": e.platform, "host": e.host, "port": e.port,
                    "username": e.username, "password_file": str(e.password.path),
                    "key_file": str(e.key_file) if e.key_file else None}

        return {
            "lab_id": self.lab_id,
            "dir": str(self.dir),
            "owner_pid": os.getpid(),
            "startup_seconds": round(self.startup_seconds, 2),
            "mgmt_network": str(self.mgmt_network),
            "mgmt_gateway": self.mgmt_gateway,
            "snmp": {"port": c.port, "community_file": str(c.community.path),
                     "v3_user": c.user, "auth_protocol": c.auth_protocol,
                     "auth_key_file": str(c.auth_key.path), "priv_protocol": c.priv_protocol,
                     "priv_key_file": str(c.priv_key.path)},
            "devices": {
                n: {"pd": d.pd, "role": d.role, "netns": d.netns, "mgmt_ip": d.mgmt_ip,
                    "sys_name": d.sys_name, "sys_location": d.sys_location,
                    "sys_contact": d.sys_contact, "sys_object_id": d.sys_object_id,
                    "ports": dict(d.ports), "ssh": ssh(d.ssh)}
                for n, d in self.devices.items()},
            "end_hosts": {n: {"pd": h.pd, "netns": h.netns, "addresses": list(h.addresses)}
                          for n, h in self.end_hosts.items()},
            "links": [{"a": lk.a, "a_port": lk.a_port, "b": lk.b, "b_port": lk.b_port,
                       "up": lk.up} for lk in self.links],
            "fakenos": {p: ssh(e) for p, e in self.fakenos.items()},
            "openssh": ssh(self.openssh),
        }


# --------------------------------------------------------------------------- CLI


def _write_state(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def _read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise LabError(f"unreadable state file {path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("lab_id"), str):
        raise LabError(f"state file {path} is not a netlab state")
    return data


def _cmd_serve(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file).resolve()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        lab = Lab.start(SPECS[args.spec](), timeout=args.timeout)
    except LabError as e:
        print(f"netlab: {e}", file=sys.stderr, flush=True)
        return 1
    try:
        data = lab.state()
        data["keeper_pid"] = os.getpid()
        _write_state(state_file, data)
        print(f"netlab {lab.lab_id} up in {lab.startup_seconds:.1f}s; state in {state_file}",
              flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        lab.stop()
        with contextlib.suppress(FileNotFoundError):
            state_file.unlink()
        print(f"netlab {lab.lab_id} stopped", flush=True)
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file).resolve()
    old = _read_state(state_file)
    if old is not None:
        if _owner_alive(old["lab_id"], LAB_BASE):
            print(f"netlab: lab {old['lab_id']} from {state_file} is still up; "
                  f"run 'down' first", file=sys.stderr)
            return 1
        state_file.unlink()
    state_file.parent.mkdir(parents=True, exist_ok=True)
    logfile = state_file.with_name(state_file.name + ".log")
    with open(logfile, "ab") as f:
        keeper = subprocess.Popen(
            [sys.executable, "-m", "tests.netlab", "serve", "--state-file", str(state_file),
             "--spec", args.spec, "--timeout", str(args.timeout)],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + args.timeout + 30
    while time.monotonic() < deadline:
        data = _read_state(state_file)
        if data is not None and data.get("keeper_pid") == keeper.pid:
            print(json.dumps(data, indent=2))
            return 0
        if keeper.poll() is not None:
            print(f"netlab: start failed (log {logfile}):\n{_tail(logfile, 40)}",
                  file=sys.stderr)
            return 1
        time.sleep(0.1)
    keeper.terminate()
    keeper.wait(60)
    print(f"netlab: not up in time (log {logfile}):\n{_tail(logfile, 40)}", file=sys.stderr)
    return 1


def _cmd_down(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file).resolve()
    data = _read_state(state_file)
    if data is None:
        print(f"netlab: no state file {state_file}; nothing to stop")
        return 0
    lab_id, pid = data["lab_id"], data.get("keeper_pid")
    if isinstance(pid, int) and _proc_starttime(pid) is not None and _owner_alive(lab_id,
                                                                                  LAB_BASE):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _proc_starttime(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if _proc_starttime(pid) is not None:
            os.kill(pid, signal.SIGKILL)
    with _locked(LAB_BASE):
        leftovers = _teardown(lab_id, LAB_BASE)
    with contextlib.suppress(FileNotFoundError):
        state_file.unlink()
    if leftovers:
        print(f"netlab: could not remove {', '.join(leftovers)}", file=sys.stderr)
        return 1
    print(f"netlab {lab_id} down")
    return 0


def _cmd_cleanup(args: argparse.Namespace) -> int:
    removed = cleanup_stale()
    print("removed: " + (", ".join(removed) if removed else "nothing"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.netlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, fn, helptext in (
        ("up", _cmd_up, "start a lab in the background; print and write its state JSON"),
        ("serve", _cmd_serve, "run a lab in the foreground until SIGTERM/Ctrl-C"),
        ("down", _cmd_down, "stop the lab of a state file"),
        ("cleanup", _cmd_cleanup, "remove leftovers of labs whose owner died"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.set_defaults(fn=fn)
        if name in ("up", "serve", "down"):
            p.add_argument("--state-file", required=True, help="JSON state file")
        if name in ("up", "serve"):
            p.add_argument("--spec", choices=sorted(SPECS), default="default")
            p.add_argument("--timeout", type=float, default=60.0,
                           help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        rc: int = args.fn(args)
    except LabError as e:
        print(f"netlab: {e}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
