"""Server detection on the PD LAN (DC-1): a light, rate-limited TCP connect scan.

Targets are the hosts in the agent's ARP/neighbour table (``/proc/net/arp`` and
``ip -j neigh``) that lie in the configured ``subnets``, plus every address of the ``include``
ranges; ``exclude`` ranges and the agent's own addresses are dropped, and at most
``max_hosts`` hosts are probed per run. Nothing outside ``subnets`` is ever connected to.

Every connection attempt takes a token from one token bucket (``rate_limit_per_s``, capacity
``burst``), so in any window of T seconds at most ``burst + rate * T`` connects start; at most
``concurrency`` are in flight, each bounded by ``connect_timeout_s``. Ports are probed
round-robin across hosts, so one host sees only a share of the rate. A run stops at
``max_duration_s`` and says so (``complete: false``). A full connect is made and closed at
once; nothing is sent.

The result lists only hosts with at least one open port, each with a role guessed from its
ports (:data:`DEFAULT_PORT_ROLES`, overridable by ``port_roles``); hosts without one are
counted. In ``server_mode`` the agent host's own server ports come from its LISTEN sockets
(``/proc/net/tcp``, ``/proc/net/tcp6``), never from a scan. The collector turns this into
DC-1 findings; the agent only observes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import re
import shutil
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import cast

import psutil

from agent.collectors import AgentContext, Obs, register
from agent.config import AgentConfig, ServerScanCfg
from contract.report import LocalServerPorts, ScannedHost, ServerRole, ServerScan, utcnow

log = logging.getLogger(__name__)

IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network

PROC_ARP = Path("/proc/net/arp")
PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
IP_NEIGH_TIMEOUT_S = 5.0

# Well-known server ports and what a host answering on them probably is. The order of
# ServerRole is the priority: a host with 5432 and 80 is a "database" (that also serves web).
DEFAULT_PORT_ROLES: Mapping[int, ServerRole] = {
    22: ServerRole.REMOTE_ADMIN,    # ssh
    3389: ServerRole.REMOTE_ADMIN,  # rdp
    5900: ServerRole.REMOTE_ADMIN,  # vnc
    80: ServerRole.WEB,
    443: ServerRole.WEB,
    8080: ServerRole.WEB,
    8443: ServerRole.WEB,
    1433: ServerRole.DATABASE,      # mssql
    1521: ServerRole.DATABASE,      # oracle
    3306: ServerRole.DATABASE,      # mysql/mariadb
    5432: ServerRole.DATABASE,      # postgresql
    27017: ServerRole.DATABASE,     # mongodb
    6379: ServerRole.DATABASE,      # redis
    9200: ServerRole.DATABASE,      # elasticsearch
    21: ServerRole.FILE,            # ftp
    139: ServerRole.FILE,           # netbios-ssn (smb)
    445: ServerRole.FILE,           # smb
    2049: ServerRole.FILE,          # nfs
    25: ServerRole.MAIL,            # smtp
    465: ServerRole.MAIL,
    587: ServerRole.MAIL,
    110: ServerRole.MAIL,           # pop3
    995: ServerRole.MAIL,
    143: ServerRole.MAIL,           # imap
    993: ServerRole.MAIL,
    389: ServerRole.DIRECTORY,      # ldap
    636: ServerRole.DIRECTORY,      # ldaps
    88: ServerRole.DIRECTORY,       # kerberos
    53: ServerRole.DNS,
}
_PRIORITY = {r: i for i, r in enumerate(ServerRole)}


class ServerScanError(Exception):
    """A neighbour or socket table could not be read or parsed (the message says which)."""


def roles_for(ports: Iterable[int], overrides: Mapping[int, ServerRole] | None = None,
              ) -> list[ServerRole]:
    """The distinct roles of ``ports``, most telling first; unknown ports are ``other``.

    >>> [r.value for r in roles_for([80, 5432, 22])]
    ['database', 'web', 'remote-admin']
    """
    table = {**DEFAULT_PORT_ROLES, **(overrides or {})}
    found = {table.get(p, ServerRole.OTHER) for p in ports}
    return sorted(found, key=_PRIORITY.__getitem__)


# --- neighbour table -----------------------------------------------------------------------

_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_ATF_COM = 0x2  # complete entry (has a hardware address)


@dataclass(frozen=True)
class Neighbor:
    ip: IpAddr
    mac: str | None = None
    interface: str | None = None


def _mac(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    mac = raw.strip().lower()
    if not _MAC_RE.match(mac) or mac == "00:00:00:00:00:00":
        return None
    return mac


def parse_proc_arp(text: str) -> list[Neighbor]:
    """Parse ``/proc/net/arp``. Incomplete entries (no MAC yet) and garbage lines are skipped.

    >>> parse_proc_arp("IP address HW type Flags HW address Mask Device\\n"
    ...                "10.0.0.7 0x1 0x2 52:54:00:aa:bb:cc * eth0\\n")
    [Neighbor(ip=IPv4Address('10.0.0.7'), mac='52:54:00:aa:bb:cc', interface='eth0')]
    """
    out: list[Neighbor] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 6:
            continue
        try:
            ip = ipaddress.IPv4Address(f[0])
            flags = int(f[2], 16)
        except ValueError:
            continue  # the header and garbage
        mac = _mac(f[3])
        if not flags & _ATF_COM or mac is None:
            continue
        out.append(Neighbor(ip, mac, f[5][:64]))
    return out


_DEAD_STATES = {"FAILED", "INCOMPLETE", "NONE"}


def parse_ip_neigh_json(text: str) -> list[Neighbor]:
    """Parse ``ip -j neigh show`` (IPv4 and IPv6). Entries without a usable MAC, failed or
    incomplete ones and malformed entries are skipped; output that is not a JSON list raises
    :class:`ServerScanError`."""
    try:
        data = json.loads(text) if text.strip() else []
    except ValueError as e:
        raise ServerScanError(f"ip -j neigh: output is not JSON: {e}") from e
    if not isinstance(data, list):
        raise ServerScanError("ip -j neigh: output is not a JSON list")
    out: list[Neighbor] = []
    for entry in data:
        if not isinstance(entry, dict):
            continue
        state = entry.get("state")
        states = {s for s in state if isinstance(s, str)} if isinstance(state, list) else set()
        mac = _mac(entry.get("lladdr"))
        if mac is None or states & _DEAD_STATES:
            continue
        try:
            ip = ipaddress.ip_address(str(entry.get("dst", "")))
        except ValueError:
            continue
        dev = entry.get("dev")
        out.append(Neighbor(ip, mac, dev[:64] if isinstance(dev, str) else None))
    return out


async def _ip_neigh() -> list[Neighbor]:
    ip_bin = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")
    if ip_bin is None:
        raise ServerScanError("ip (iproute2) not found")
    try:
        proc = await asyncio.create_subprocess_exec(
            ip_bin, "-j", "neigh", "show", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as e:
        raise ServerScanError(f"ip -j neigh: cannot run: {e}") from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(), IP_NEIGH_TIMEOUT_S)
    except TimeoutError as e:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise ServerScanError(f"ip -j neigh: no answer within {IP_NEIGH_TIMEOUT_S:.0f} s") from e
    if proc.returncode:
        msg = err.decode(errors="replace").strip()[:200]
        raise ServerScanError(f"ip -j neigh: exit {proc.returncode}: {msg}")
    return parse_ip_neigh_json(out.decode(errors="replace"))


async def read_neighbors(proc_arp: Path = PROC_ARP) -> tuple[list[Neighbor], str | None]:
    """Neighbours from ``/proc/net/arp`` merged with ``ip -j neigh`` (which adds IPv6).

    Returns (neighbours, error); error is set only when no source could be read.
    """
    errors: list[str] = []
    merged: dict[IpAddr, Neighbor] = {}
    try:
        text = await asyncio.to_thread(proc_arp.read_text, encoding="utf-8", errors="replace")
        for n in parse_proc_arp(text):
            merged.setdefault(n.ip, n)
        arp_ok = True
    except OSError as e:
        errors.append(f"{proc_arp}: cannot read: {e.strerror}")
        arp_ok = False
    try:
        for n in await _ip_neigh():
            merged.setdefault(n.ip, n)
        neigh_ok = True
    except ServerScanError as e:
        errors.append(str(e))
        neigh_ok = False
    if errors:
        log.debug("neighbour table: %s", "; ".join(errors))
    error = None if arp_ok or neigh_ok else "no neighbour table: " + "; ".join(errors)
    return list(merged.values()), error


# --- target selection ----------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    targets: list[Neighbor]
    candidates: int       # distinct in-scope addresses before exclusion and cap
    excluded: int         # by exclude ranges or being the agent's own address
    skipped_over_cap: int


def _inside(ip: IpAddr, nets: Sequence[IpNet]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def _sort_key(ip: IpAddr) -> tuple[int, int]:
    return ip.version, int(ip)


def in_scope(ip: IpAddr, cfg: ServerScanCfg) -> bool:
    """True if ``ip`` may be connected to at all: inside ``subnets``, outside ``exclude``."""
    return (_inside(ip, cfg.subnets) and not _inside(ip, cfg.exclude)
            and not ip.is_link_local and not ip.is_multicast and not ip.is_loopback
            and not ip.is_unspecified)


def select_targets(neighbors: Iterable[Neighbor], cfg: ServerScanCfg,
                   own: Iterable[IpAddr] = ()) -> Selection:
    """The hosts to probe: neighbours inside ``subnets`` plus every host address of the
    ``include`` ranges, minus ``exclude`` and ``own`` addresses, at most ``max_hosts``
    (neighbours first, then by address)."""
    own_set = set(own)
    chosen: dict[IpAddr, Neighbor] = {}
    for n in neighbors:
        if _inside(n.ip, cfg.subnets) and not n.ip.is_link_local and not n.ip.is_multicast:
            chosen.setdefault(n.ip, n)
    from_arp = set(chosen)
    for net in cfg.include:
        for ip in cast(Iterator[IpAddr], net.hosts()):  # /31, /32: every address
            chosen.setdefault(ip, Neighbor(ip))
    candidates = len(chosen)
    kept = [n for ip, n in chosen.items() if ip not in own_set and in_scope(ip, cfg)]
    kept.sort(key=lambda n: (n.ip not in from_arp, _sort_key(n.ip)))
    targets = kept[:cfg.max_hosts]
    return Selection(targets=targets, candidates=candidates,
                     excluded=candidates - len(kept),
                     skipped_over_cap=len(kept) - len(targets))


def own_addresses() -> set[IpAddr]:
    out: set[IpAddr] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(ValueError):
                    out.add(ipaddress.ip_address(a.address.split("%", 1)[0]))
    return out


# --- rate limit ----------------------------------------------------------------------------


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored (starts full). Waiters are served
    in arrival order, so in any window of T seconds at most ``burst + rate * T`` pass."""

    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = rate, float(burst)
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0 - 1e-9:  # tolerance: float sums may fall short
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self.rate)


# --- scan ----------------------------------------------------------------------------------


class PortState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"            # refused (RST)
    NO_ANSWER = "no_answer"      # timeout or host unreachable: filtered, or nobody there


_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ETIMEDOUT}


async def probe_port(ip: IpAddr, port: int, timeout: float) -> PortState:
    """One TCP connect, closed at once; nothing is sent."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (str(ip), port)), timeout)
        return PortState.OPEN
    except TimeoutError:
        return PortState.NO_ANSWER
    except ConnectionRefusedError:
        return PortState.CLOSED
    except OSError as e:
        return PortState.NO_ANSWER if e.errno in _UNREACHABLE else PortState.CLOSED
    finally:
        sock.close()


@dataclass
class HostResult:
    target: Neighbor
    scanned_at: datetime | None = None
    open_ports: list[int] = field(default_factory=list)
    no_answer: list[int] = field(default_factory=list)
    probed: int = 0


@dataclass
class ScanOutcome:
    hosts: list[HostResult]
    connections: int = 0
    timeouts: int = 0
    complete: bool = True


Prober = Callable[[IpAddr, int, float], Awaitable[PortState]]


async def scan_targets(targets: Sequence[Neighbor], cfg: ServerScanCfg, *,
                       prober: Prober = probe_port,
                       deadline: float | None = None) -> ScanOutcome:
    """Probe every configured port of every target, round-robin across targets, within the
    token bucket, ``concurrency`` and the time budget (``deadline`` on the loop clock)."""
    loop = asyncio.get_running_loop()
    if deadline is None:
        deadline = loop.time() + cfg.max_duration_s
    results = [HostResult(t) for t in targets]
    outcome = ScanOutcome(hosts=results)
    bucket = TokenBucket(cfg.rate_limit_per_s, cfg.burst)
    jobs: Iterator[tuple[HostResult, int]] = (
        (r, port) for port in cfg.ports for r in results)

    async def worker() -> None:
        for r, port in jobs:  # one shared iterator: each job is taken exactly once
            if loop.time() >= deadline:
                outcome.complete = False
                return
            await bucket.acquire()
            if loop.time() >= deadline:
                outcome.complete = False
                return
            ip = r.target.ip
            if not in_scope(ip, cfg):  # defence in depth: never leave the subnets
                raise ServerScanError(f"refusing to connect to {ip}: outside the scan scope")
            if r.scanned_at is None:
                r.scanned_at = utcnow()
            outcome.connections += 1
            state = await prober(ip, port, cfg.connect_timeout_s)
            r.probed += 1
            if state is PortState.OPEN:
                r.open_ports.append(port)
            elif state is PortState.NO_ANSWER:
                r.no_answer.append(port)
                outcome.timeouts += 1

    n_workers = min(cfg.concurrency, max(1, len(results) * len(cfg.ports)))
    await asyncio.gather(*(worker() for _ in range(n_workers)))
    return outcome


# --- the agent host's own listening ports (server mode) ------------------------------------

_TCP_LISTEN = "0A"


def _hex_addr(h: str) -> IpAddr:
    # the kernel prints each 32-bit word of the address as a native-endian integer
    raw = b"".join(struct.pack("=I", int(h[i:i + 8], 16)) for i in range(0, len(h), 8))
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    if len(raw) == 16:
        return ipaddress.IPv6Address(raw)
    raise ValueError(f"bad address length {len(h)}")


def parse_proc_tcp_listen(text: str) -> list[tuple[IpAddr, int]]:
    """LISTEN sockets ``(address, port)`` from ``/proc/net/tcp`` or ``tcp6``; bad lines are
    skipped."""
    out: list[tuple[IpAddr, int]] = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or f[3] != _TCP_LISTEN or ":" not in f[1]:
            continue
        addr_hex, _, port_hex = f[1].partition(":")
        try:
            addr, port = _hex_addr(addr_hex), int(port_hex, 16)
        except ValueError:
            continue
        if 1 <= port <= 65535:
            out.append((addr, port))
    return out


def _loopback(ip: IpAddr) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def local_server_ports(cfg: ServerScanCfg, tables: Sequence[Path] = PROC_TCP,
                       ) -> LocalServerPorts:
    """The configured server ports this host listens on, on a non-loopback address."""
    wanted = set(cfg.ports) | set(cfg.port_roles)
    ports: set[int] = set()
    errors: list[str] = []
    for path in tables:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue  # no IPv6 in this kernel
        except OSError as e:
            errors.append(f"{path}: cannot read: {e.strerror}")
            continue
        ports.update(p for a, p in parse_proc_tcp_listen(text) if not _loopback(a) and p in wanted)
    roles = roles_for(ports, cfg.port_roles)
    return LocalServerPorts(open_ports=sorted(ports), roles=roles,
                            role=roles[0] if roles else None,
                            error="; ".join(errors)[:1024] if errors else None)


# --- the collector -------------------------------------------------------------------------


async def run_scan(cfg: ServerScanCfg, *, server_mode: bool = False,
                   proc_arp: Path = PROC_ARP) -> ServerScan:
    """One scan run: read the neighbour table, select, probe, describe."""
    observed_at, t0 = utcnow(), time.monotonic()
    deadline = asyncio.get_running_loop().time() + cfg.max_duration_s
    neighbors, error = await read_neighbors(proc_arp)
    sel = select_targets(neighbors, cfg, own_addresses())
    outcome = await scan_targets(sel.targets, cfg, deadline=deadline)
    listed = [r for r in outcome.hosts if r.open_ports]
    if any(r.target.mac is None for r in listed):  # swept from include: ARP knows them now
        fresh, _ = await read_neighbors(proc_arp)
        by_ip = {n.ip: n for n in fresh}
        for r in listed:
            if r.target.mac is None and r.target.ip in by_ip:
                r.target = by_ip[r.target.ip]
    hosts = [_host(r, cfg) for r in sorted(listed, key=lambda r: _sort_key(r.target.ip))]
    scanned = sum(1 for r in outcome.hosts if r.probed)
    if not outcome.complete:
        budget = f"time budget of {cfg.max_duration_s:g} s reached; scan incomplete"
        error = f"{error}; {budget}" if error else budget
    return ServerScan(
        observed_at=observed_at, subnets=[str(n) for n in cfg.subnets], ports=list(cfg.ports),
        hosts=hosts, candidates=sel.candidates, excluded=sel.excluded,
        skipped_over_cap=sel.skipped_over_cap, scanned=scanned,
        without_open_ports=scanned - len(hosts), connections=outcome.connections,
        timeouts=outcome.timeouts, duration_s=round(time.monotonic() - t0, 3),
        complete=outcome.complete and error is None, error=error, server_mode=server_mode,
        local=local_server_ports(cfg) if server_mode else None)


def _host(r: HostResult, cfg: ServerScanCfg) -> ScannedHost:
    roles = roles_for(r.open_ports, cfg.port_roles)
    return ScannedHost(ip=str(r.target.ip), mac=r.target.mac, interface=r.target.interface,
                       open_ports=sorted(r.open_ports), roles=roles, role=roles[0],
                       scanned_at=r.scanned_at or utcnow(),
                       filtered_ports=sorted(r.no_answer))


class ServerScanCollector:
    name = "server_scan"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg = cfg

    def interval_s(self) -> float:
        return self.cfg.intervals.server_scan_s

    async def collect(self) -> list[Obs]:
        if not self.cfg.server_scan.enabled:
            return []
        return [await run_scan(self.cfg.server_scan, server_mode=self.cfg.server_mode)]


@register("server_scan")
def _factory(cfg: AgentConfig, ctx: AgentContext) -> ServerScanCollector:
    return ServerScanCollector(cfg, ctx)
