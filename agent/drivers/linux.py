"""A Linux host over SSH (OpenSSH) with paramiko: one ``exec`` channel per command, no shell
prompt to guess, JSON from iproute2 (``ip -j``).

Reads: host name, ``/etc/os-release``, ``uname -srm``, ``/proc/uptime``, DMI vendor/model/serial
(when readable), ``ip -j -s link``, ``ip -j addr``, ``ip -j route`` and ``ip -j -6 route``,
``ip -j neigh``. Listening TCP ports (``ss -ltnH``) can be parsed by :func:`parse_ss_listen`,
but the report contract has no field for them yet, so :meth:`LinuxDriver.poll` does not read
them. There is no "running configuration" of a Linux host: :meth:`get_config` returns None.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from agent.config import DeviceCfg
from agent.drivers import DriverError, register
from agent.drivers.ssh_common import (
    Collected,
    SshParams,
    failed_observation,
    ip_prefix,
    norm_mac,
    redact,
    ssh_params,
    valid_hostname,
    wrap_error,
)
from contract.report import (
    ArpEntry,
    ConfigSnapshot,
    DeviceAddress,
    DeviceInterface,
    DeviceObservation,
    Route,
    utcnow,
)

PLATFORM = "linux"
DRIVER = "ssh:linux"
MAX_OUTPUT = 16 * 1024 * 1024
FACTS_COMMAND = (
    "echo @@hostname; hostname; echo @@os-release; cat /etc/os-release; "
    "echo @@uname; uname -srm; echo @@uptime; cat /proc/uptime; "
    "for f in sys_vendor product_name product_serial; do echo @@dmi_$f; "
    "cat /sys/class/dmi/id/$f 2>/dev/null; done; true"
)


class Runner(Protocol):
    """Anything that runs a shell command on the host and returns its output."""

    def run(self, command: str) -> str: ...


class ExecSession:
    """Runs commands on one paramiko connection; output is text, errors are DriverError."""

    def __init__(self, client: Any, params: SshParams) -> None:
        self._client = client
        self._params = params

    def run(self, command: str) -> str:
        try:
            _, stdout, stderr = self._client.exec_command(command,
                                                          timeout=self._params.timeout_s)
            out = bytes(stdout.read(MAX_OUTPUT))
            err = bytes(stderr.read(4096))
            status = int(stdout.channel.recv_exit_status())
        except Exception as e:
            raise wrap_error(e, self._params) from e
        try:
            text = out.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DriverError("parse", f"{command.split()[0]!r}: output is not UTF-8 "
                                       "text") from e
        if status != 0:
            kind = "unsupported" if status == 127 else "protocol"
            msg = err.decode("utf-8", "replace").strip().splitlines()[:1] or [""]
            raise DriverError(kind, redact(f"{command!r} exited with status {status}: "
                                           f"{msg[0][:200]}", self._params.secrets()))
        return text


@contextmanager
def exec_session(params: SshParams) -> Iterator[ExecSession]:
    import paramiko  # type: ignore[import-untyped]

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    t = params.timeout_s
    try:
        client.connect(params.host, port=params.port, username=params.username,
                       password=params.password, key_filename=params.key_file,
                       timeout=t, banner_timeout=t, auth_timeout=t, channel_timeout=t,
                       allow_agent=False, look_for_keys=False)
    except Exception as e:
        client.close()
        raise wrap_error(e, params) from e
    try:
        yield ExecSession(client, params)
    finally:
        client.close()


# --- parsers (pure: text in, models out) -------------------------------------------------------


def _sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("@@"):
            current = line[2:].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def parse_facts(text: str) -> dict[str, Any]:
    s = _sections(text)
    hostname = valid_hostname(s.get("hostname"))
    if hostname is None:
        raise DriverError("parse", "no valid host name in the output of 'hostname'")
    os_name = None
    for line in s.get("os-release", "").splitlines():
        if line.startswith("PRETTY_NAME="):
            os_name = line.split("=", 1)[1].strip().strip('"')[:255] or None
    uptime = None
    with suppress(IndexError, ValueError):
        uptime = float(s.get("uptime", "").split()[0])
    return {"hostname": hostname, "os_version": os_name,
            "sys_description": (s.get("uname") or None),
            "vendor": (s.get("dmi_sys_vendor") or "")[:255] or None,
            "model": (s.get("dmi_product_name") or "")[:255] or None,
            "serial": (s.get("dmi_product_serial") or "")[:255] or None,
            "uptime_s": uptime if uptime is not None and uptime >= 0 else None,
            "role": "host"}


def _json_list(text: str, what: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError as e:
        raise DriverError("parse", f"{what}: not JSON ({e.msg} at line {e.lineno})") from e
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise DriverError("parse", f"{what}: expected a JSON list of objects")
    return data


def _stat(stats: dict[str, Any], direction: str, key: str) -> int | None:
    v = (stats.get(direction) or {}).get(key)
    return v if isinstance(v, int) and v >= 0 else None


def parse_links(text: str) -> list[DeviceInterface]:
    out = []
    for link in _json_list(text, "ip -j -s link"):
        name = link.get("ifname")
        if not isinstance(name, str) or not name:
            raise DriverError("parse", "ip -j -s link: an entry has no ifname")
        flags = link.get("flags") or []
        stats = link.get("stats64") or link.get("stats") or {}
        oper = str(link.get("operstate", "")).upper()
        mtu = link.get("mtu")
        out.append(DeviceInterface(
            name=name[:255], index=link.get("ifindex") if isinstance(link.get("ifindex"), int)
            else None, type=link.get("link_type"),
            mac=norm_mac(link.get("address")) if link.get("link_type") == "ether" else None,
            mtu=mtu if isinstance(mtu, int) and mtu >= 0 else None,
            admin_up="UP" in flags,
            oper_up=oper == "UP" or (oper == "UNKNOWN" and "LOWER_UP" in flags),
            in_octets=_stat(stats, "rx", "bytes"), out_octets=_stat(stats, "tx", "bytes"),
            in_errors=_stat(stats, "rx", "errors"), out_errors=_stat(stats, "tx", "errors"),
            in_discards=_stat(stats, "rx", "dropped"),
            out_discards=_stat(stats, "tx", "dropped")))
    return out


def parse_addrs(text: str) -> list[DeviceAddress]:
    out = []
    for link in _json_list(text, "ip -j addr"):
        for a in link.get("addr_info") or []:
            if a.get("family") not in ("inet", "inet6"):
                continue
            p = ip_prefix(f"{a.get('local')}/{a.get('prefixlen')}")
            if p:
                out.append(DeviceAddress(interface=str(link.get("ifname", ""))[:255] or None,
                                         address=p[0], prefix_len=p[1]))
    return out


def parse_routes(text: str, family: int = 4) -> list[Route]:
    out = []
    for r in _json_list(text, "ip -j route"):
        if r.get("type") not in (None, "unicast"):
            continue
        dst = str(r.get("dst", ""))
        if dst == "default":
            dst = "0.0.0.0/0" if family == 4 else "::/0"
        elif "/" not in dst:
            dst = f"{dst}/{32 if family == 4 else 128}"
        if ip_prefix(dst) is None:
            continue
        metric = r.get("metric")
        out.append(Route(destination=dst, gateway=r.get("gateway"), interface=r.get("dev"),
                         metric=metric if isinstance(metric, int) and metric >= 0 else 0))
    return out


def parse_neigh(text: str) -> list[ArpEntry]:
    out = []
    for n in _json_list(text, "ip -j neigh"):
        mac = norm_mac(n.get("lladdr"))
        states = n.get("state") or []
        if mac is None or "FAILED" in states or "INCOMPLETE" in states:
            continue
        if ip_prefix(str(n.get("dst", ""))) is None:
            continue
        out.append(ArpEntry(ip=str(n["dst"]), mac=mac, interface=n.get("dev")))
    return out


_SS_LOCAL = re.compile(r"^(?P<addr>\[[^\]]+\]|[^\s:]+(?:%\S+)?|\*):(?P<port>\d+)$")


def parse_ss_listen(text: str) -> list[tuple[str, int]]:
    """``ss -ltnH`` -> sorted unique (address, port); ``*``/``[::]`` mean all addresses."""
    found: set[tuple[str, int]] = set()
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or f[0] != "LISTEN":
            continue
        m = _SS_LOCAL.match(f[3])
        if not m:
            raise DriverError("parse", f"ss -ltnH: cannot read local address {f[3][:60]!r}")
        addr = m.group("addr").strip("[]").split("%")[0]
        found.add((addr, int(m.group("port"))))
    return sorted(found)


# --- the driver --------------------------------------------------------------------------------


class LinuxDriver:
    platform = PLATFORM

    def collect(self, s: Runner, out: Collected, params: SshParams | None = None) -> None:
        def links() -> None:
            out.interfaces.extend(parse_links(s.run("ip -j -s link")))

        def routes() -> None:
            out.add_routes(parse_routes(s.run("ip -j route"), 4), "ip -j route")
            out.add_routes(parse_routes(s.run("ip -j -6 route"), 6), "ip -j -6 route")

        out.run("facts", lambda: out.facts.update(parse_facts(s.run(FACTS_COMMAND))), params)
        if out.fatal():
            return
        out.run("interfaces", links, params)
        out.run("addresses", lambda: out.addresses.extend(parse_addrs(s.run("ip -j addr"))),
                params)
        out.run("routes", routes, params)
        out.run("neighbors", lambda: out.arp.extend(parse_neigh(s.run("ip -j neigh"))), params)

    def poll(self, device: DeviceCfg) -> DeviceObservation:
        observed_at, started = utcnow(), time.monotonic()
        params: SshParams | None = None
        out = Collected()
        try:
            params = ssh_params(device)
            with exec_session(params) as s:
                self.collect(s, out, params)
            fatal = out.fatal()
            if fatal is not None and out.sections_ok == 0:
                raise fatal
        except Exception as e:
            return failed_observation(device, DRIVER, wrap_error(e, params), observed_at,
                                      started)
        return out.observation(device, DRIVER, observed_at, started)

    def get_config(self, device: DeviceCfg) -> ConfigSnapshot | None:
        """A Linux host has no single running configuration to back up."""
        return None


@register(PLATFORM)
def factory() -> LinuxDriver:
    return LinuxDriver()
