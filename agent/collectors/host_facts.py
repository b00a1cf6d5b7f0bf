"""Host facts: hostname, OS, kernel, uptime, interface addresses and the routing table."""

from __future__ import annotations

import asyncio
import ipaddress
import platform
import socket
from pathlib import Path

import psutil

from agent.collectors import AgentContext, Obs, register
from agent.config import AgentConfig
from contract.report import HostFacts, InterfaceAddress, Route, utcnow


def os_pretty_name(os_release: Path = Path("/etc/os-release")) -> str:
    try:
        for line in os_release.read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')[:255]
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}"[:255]


def uptime_s(proc_uptime: Path = Path("/proc/uptime")) -> float:
    try:
        return float(proc_uptime.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def addresses() -> list[InterfaceAddress]:
    out: list[InterfaceAddress] = []
    for ifname, addrs in sorted(psutil.net_if_addrs().items()):
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6) or not a.netmask:
                continue
            addr = a.address.split("%", 1)[0]
            try:
                net = ipaddress.ip_network(f"{addr}/{a.netmask}", strict=False)
            except ValueError:
                continue
            out.append(InterfaceAddress(interface=ifname[:64], address=addr,
                                        prefix_len=net.prefixlen,
                                        family="ipv4" if net.version == 4 else "ipv6"))
    return out


def _hex_ipv4(h: str) -> str:
    return str(ipaddress.IPv4Address(bytes.fromhex(h)[::-1]))


def parse_proc_route(text: str) -> list[Route]:
    """Parse ``/proc/net/route`` (IPv4). Bad lines are skipped, never fatal."""
    routes: list[Route] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8:
            continue
        try:
            dest, gw, flags, metric, mask = _hex_ipv4(f[1]), _hex_ipv4(f[2]), int(f[3], 16), \
                int(f[6]), _hex_ipv4(f[7])
            if not flags & 0x1:  # RTF_UP
                continue
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        routes.append(Route(destination=str(net), gateway=None if gw == "0.0.0.0" else gw,
                            interface=f[0][:64], metric=max(metric, 0)))
    return routes


def parse_proc_ipv6_route(text: str) -> list[Route]:
    routes: list[Route] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        try:
            dest = ipaddress.IPv6Address(bytes.fromhex(f[0]))
            plen = int(f[1], 16)
            gw = ipaddress.IPv6Address(bytes.fromhex(f[4]))
            metric, flags = int(f[5], 16), int(f[8], 16)
        except ValueError:
            continue
        if not flags & 0x1 or f[9] == "lo":
            continue
        routes.append(Route(destination=f"{dest}/{plen}",
                            gateway=None if gw.is_unspecified else str(gw),
                            interface=f[9][:64], metric=metric))
    return routes


def routes() -> list[Route]:
    out: list[Route] = []
    for path, parser in ((Path("/proc/net/route"), parse_proc_route),
                         (Path("/proc/net/ipv6_route"), parse_proc_ipv6_route)):
        try:
            out += parser(path.read_text())
        except OSError:
            continue
    return out


def host_facts(server_mode: bool) -> HostFacts:
    return HostFacts(observed_at=utcnow(), hostname=socket.gethostname()[:255] or "unknown",
                     os=os_pretty_name(), kernel=platform.release()[:255], uptime_s=uptime_s(),
                     server_mode=server_mode, addresses=addresses()[:1024],
                     routes=routes()[:4096])


class HostFactsCollector:
    name = "host_facts"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg = cfg

    def interval_s(self) -> float:
        return self.cfg.intervals.host_facts_s

    async def collect(self) -> list[Obs]:
        return [await asyncio.to_thread(host_facts, self.cfg.server_mode)]


@register("host_facts")
def _factory(cfg: AgentConfig, ctx: AgentContext) -> HostFactsCollector:
    return HostFactsCollector(cfg, ctx)
