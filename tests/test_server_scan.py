"""Server detection (DC-1): unit tests, and integration tests against real hosts.

The integration tests build a small LAN out of network namespaces (``sst<pid>-*``, addresses
in 10.252.0.0/16 only inside them; nothing in the root namespace) and run the real
``spbe-agent once --dry-run`` inside the agent's namespace::

    agent (br0 10.252.1.1/24, lan2 10.252.2.1/24; listens on 443, 127.0.0.1:3306, [::]:1433)
      |- srv    10.252.1.10  http.server on 80 and 8080, PostgreSQL on 5432,
      |                      3306 "filtered" (full accept queue: the kernel drops SYNs)
      |- empty  10.252.1.20  nothing
      |- excl   10.252.1.30  counting listener on every default port (excluded CIDR)
      |- many   10.252.1.40  counting listener on 20001-20040 (rate-limit test)
      |- quiet  10.252.1.50  listener on 27017, never pinged (found via include)
      |  ghost  10.252.1.99  a permanent ARP entry, no host behind it
      `- out    10.252.2.10  counting listener on every default port (outside the subnets)

Needs root and ``ip``, ``ping``, ``setpriv`` (scripts/install-netlab-deps.sh) and PostgreSQL
(scripts/install-test-deps.sh).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.collectors.server_scan import (
    DEFAULT_PORT_ROLES,
    Neighbor,
    ServerScanCollector,
    ServerScanError,
    TokenBucket,
    parse_ip_neigh_json,
    parse_proc_arp,
    parse_proc_tcp_listen,
    roles_for,
    select_targets,
)
from agent.config import DEFAULT_SERVER_PORTS, AgentConfig, ServerScanCfg
from contract.configfile import ConfigError, load_config
from contract.report import Report, ScannedHost, ServerRole, ServerScan, new_report_id, utcnow
from tests.fakenos_lab import netns_entered
from tests.servers import Postgres

REPO = Path(__file__).resolve().parent.parent


# --- unit: ARP / neighbour parsing ---------------------------------------------------------

PROC_ARP_SAMPLE = """\
IP address       HW type     Flags       HW address            Mask     Device
10.20.16.50      0x1         0x2         52:54:00:AA:bb:01     *        eth0
10.20.16.51      0x1         0x0         00:00:00:00:00:00     *        eth0
10.20.16.52      0x1         0x6         52:54:00:aa:bb:02     *        br0
10.20.16.53      0x1         0x2         00:00:00:00:00:00     *        eth0
10.20.16.54      0x1         0x2         not-a-mac             *        eth0
300.1.1.1        0x1         0x2         52:54:00:aa:bb:03     *        eth0
10.20.16.55      0x1         0xZZ        52:54:00:aa:bb:04     *        eth0
10.20.16.56      0x1         0x2         52:54:00:aa:bb:05     *
garbage
\x00\xff binary junk line with many fields a b c

10.20.16.57      0x1         0x2         52:54:00:aa:bb:06     *        eth1
"""


def test_parse_proc_arp_keeps_complete_entries_and_ignores_garbage() -> None:
    got = parse_proc_arp(PROC_ARP_SAMPLE)
    assert got == [
        Neighbor(IPv4Address("10.20.16.50"), "52:54:00:aa:bb:01", "eth0"),  # lower-cased
        Neighbor(IPv4Address("10.20.16.52"), "52:54:00:aa:bb:02", "br0"),   # permanent
        Neighbor(IPv4Address("10.20.16.57"), "52:54:00:aa:bb:06", "eth1"),
    ]
    assert parse_proc_arp("") == []
    assert parse_proc_arp("IP address HW type Flags HW address Mask Device\n") == []


def test_parse_ip_neigh_json() -> None:
    text = json.dumps([
        {"dst": "10.20.16.50", "dev": "eth0", "lladdr": "52:54:00:aa:bb:01",
         "state": ["REACHABLE"]},
        {"dst": "10.20.16.51", "dev": "eth0", "state": ["FAILED"]},
        {"dst": "10.20.16.52", "dev": "eth0", "lladdr": "52:54:00:aa:bb:02",
         "state": ["INCOMPLETE"]},
        {"dst": "fd00:20::7", "dev": "eth0", "lladdr": "52:54:00:aa:bb:07", "router": None,
         "state": ["STALE"]},
        {"dst": "10.20.16.99", "dev": "br0", "lladdr": "02:00:00:00:00:99",
         "state": ["PERMANENT"]},
        {"dst": "bogus", "dev": "eth0", "lladdr": "52:54:00:aa:bb:08", "state": ["STALE"]},
        {"dst": "10.20.16.60", "dev": 7, "lladdr": "52:54:00:aa:bb:09"},
        {"dst": "10.20.16.61", "lladdr": 42},
        "not an object", 17, None,
    ])
    assert parse_ip_neigh_json(text) == [
        Neighbor(IPv4Address("10.20.16.50"), "52:54:00:aa:bb:01", "eth0"),
        Neighbor(IPv6Address("fd00:20::7"), "52:54:00:aa:bb:07", "eth0"),
        Neighbor(IPv4Address("10.20.16.99"), "02:00:00:00:00:99", "br0"),
        Neighbor(IPv4Address("10.20.16.60"), "52:54:00:aa:bb:09", None),
    ]
    assert parse_ip_neigh_json("") == []
    with pytest.raises(ServerScanError, match="not JSON"):
        parse_ip_neigh_json("Object \"neigh\" is unknown, try \"ip help\".")
    with pytest.raises(ServerScanError, match="not a JSON list"):
        parse_ip_neigh_json('{"dst": "10.0.0.1"}')


# --- unit: port roles ----------------------------------------------------------------------


@pytest.mark.parametrize(("port", "role"), [
    (22, "remote-admin"), (3389, "remote-admin"),
    (80, "web"), (443, "web"), (8080, "web"), (8443, "web"),
    (1433, "database"), (1521, "database"), (3306, "database"), (5432, "database"),
    (27017, "database"), (6379, "database"), (9200, "database"),
    (445, "file"), (139, "file"), (21, "file"),
    (25, "mail"), (110, "mail"), (143, "mail"),
    (389, "directory"), (636, "directory"),
    (53, "dns"),
    (20001, "other"),
])
def test_port_role(port: int, role: str) -> None:
    assert [r.value for r in roles_for([port])] == [role]


def test_every_default_port_has_a_known_role() -> None:
    assert len(DEFAULT_SERVER_PORTS) == 22
    for p in DEFAULT_SERVER_PORTS:
        assert DEFAULT_PORT_ROLES.get(p, ServerRole.OTHER) != ServerRole.OTHER, p


def test_roles_most_telling_first_and_overrides() -> None:
    assert roles_for([22, 80, 5432, 80]) == [ServerRole.DATABASE, ServerRole.WEB,
                                            ServerRole.REMOTE_ADMIN]
    assert roles_for([22, 445]) == [ServerRole.FILE, ServerRole.REMOTE_ADMIN]
    assert roles_for([25, 389, 53]) == [ServerRole.DIRECTORY, ServerRole.MAIL, ServerRole.DNS]
    assert roles_for([8081, 22]) == [ServerRole.REMOTE_ADMIN, ServerRole.OTHER]
    assert roles_for([8081, 22], {8081: ServerRole.WEB}) == [ServerRole.WEB,
                                                             ServerRole.REMOTE_ADMIN]
    assert roles_for([80], {80: ServerRole.DATABASE}) == [ServerRole.DATABASE]
    assert roles_for([]) == []


# --- unit: /proc/net/tcp LISTEN parsing (as printed by a little-endian kernel) -------------

PROC_TCP_SAMPLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106 0 1 1 0 100 0
   1: 0101FC0A:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 0 2 1 0 100 0
   2: 0101FC0A:01BB 0A01FC0A:C350 01 00000000:00000000 00:00000000 00000000     0 0 3 1 0 100 0
   3: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0 0 4 1 0 100 0
   4: ZZZZZZZZ:0050 00000000:0000 0A junk
   5: 00000000:0000 00000000:0000 0A port zero
garbage line
"""

PROC_TCP6_SAMPLE = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000000000000:0599 00000000000000000000000000000000:0000 0A 0:0 0
   1: 00000000000000000000000001000000:1538 00000000000000000000000000000000:0000 0A 0:0 0
   2: 0000000000000000FFFF00000100007F:0035 00000000000000000000000000000000:0000 0A 0:0 0
   3: 000000000000000000000000:0016 00000000000000000000000000000000:0000 0A short addr
"""


@pytest.mark.skipif(sys.byteorder != "little", reason="sample is a little-endian kernel's")
def test_parse_proc_tcp_listen() -> None:
    assert parse_proc_tcp_listen(PROC_TCP_SAMPLE) == [
        (IPv4Address("127.0.0.1"), 3306),
        (IPv4Address("10.252.1.1"), 443),
        (IPv4Address("0.0.0.0"), 80),
    ]
    assert parse_proc_tcp_listen(PROC_TCP6_SAMPLE) == [
        (IPv6Address("::"), 1433),
        (IPv6Address("::1"), 5432),
        (IPv6Address("::ffff:127.0.0.1"), 53),
    ]


# --- unit: target selection ----------------------------------------------------------------


def _cfg(**kw: Any) -> ServerScanCfg:
    kw.setdefault("enabled", True)
    kw.setdefault("subnets", ["10.20.16.0/24"])
    return ServerScanCfg.model_validate(kw)


def _n(ip: str, mac: str | None = "52:54:00:00:00:01") -> Neighbor:
    return Neighbor(ip_address(ip), mac, "eth0")


def test_select_targets_scope_exclude_own_and_include() -> None:
    neigh = [_n("10.20.16.10"), _n("10.20.16.20"), _n("10.20.16.30"), _n("10.20.17.5"),
             _n("192.168.1.1"), _n("fe80::1"), _n("fd00:20::5"), _n("10.20.16.10")]
    cfg = _cfg(subnets=["10.20.16.0/24", "fd00:20::/64"], include=["10.20.16.248/30"],
               exclude=["10.20.16.30/32", "10.20.16.250/31"])
    sel = select_targets(neigh, cfg, own=[ip_address("10.20.16.20")])
    # ARP-known first, then include-swept addresses (no MAC yet)
    assert [str(t.ip) for t in sel.targets] == ["10.20.16.10", "fd00:20::5", "10.20.16.249"]
    assert sel.targets[0].mac == "52:54:00:00:00:01"
    assert sel.targets[2].mac is None
    # .10 .20 .30 fd00:20::5 + .249 .250 (the /30's hosts); outside subnets never counted
    assert sel.candidates == 6
    assert sel.excluded == 3  # .30 (exclude), .20 (own), .250 (exclude)
    assert sel.skipped_over_cap == 0


def test_select_targets_hard_cap() -> None:
    neigh = [_n(f"10.20.16.{i}") for i in range(1, 40)]
    sel = select_targets(neigh, _cfg(max_hosts=5))
    assert [str(t.ip) for t in sel.targets] == [f"10.20.16.{i}" for i in range(1, 6)]
    assert (sel.candidates, sel.excluded, sel.skipped_over_cap) == (39, 0, 34)


# --- unit: token bucket (deterministic clock) ----------------------------------------------


def test_token_bucket_limits_every_window() -> None:
    now = [100.0]

    async def fake_sleep(s: float) -> None:
        now[0] += s

    async def run() -> list[float]:
        bucket = TokenBucket(10.0, 3, clock=lambda: now[0], sleep=fake_sleep)
        stamps = []
        for _ in range(33):
            await bucket.acquire()
            stamps.append(now[0])
        return stamps

    stamps = asyncio.run(run())
    assert stamps[:3] == [100.0, 100.0, 100.0]  # the burst
    assert stamps[-1] == pytest.approx(100.0 + 30 / 10.0)
    for i, t in enumerate(stamps):
        for w in (0.05, 0.5, 1.0, 2.0):
            inside = sum(1 for u in stamps[i:] if u < t + w)
            assert inside <= 3 + 10 * w + 1e-9, (t, w, inside)
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


# --- unit: config and contract -------------------------------------------------------------

BASE = {"agent_id": "dinkes-gw", "pd_code": "DINKES",
        "collector": {"url": "https://collector.example:8443", "token_env": "SPBE_TEST_TOKEN"}}


def _load(tmp_path: Path, server_scan: dict[str, Any]) -> AgentConfig:
    f = tmp_path / "agent.yaml"
    f.write_text(yaml.safe_dump({**BASE, "server_scan": server_scan}))
    return load_config(AgentConfig, f, "SPBE_TEST_NOPE_")


def test_config_defaults_and_yaml(tmp_path: Path) -> None:
    cfg = AgentConfig.model_validate(BASE)
    assert cfg.server_scan.enabled is False
    assert cfg.intervals.server_scan_s == 6 * 3600
    s = cfg.server_scan
    assert (s.rate_limit_per_s, s.connect_timeout_s, s.max_hosts) == (50.0, 0.5, 256)
    assert tuple(s.ports) == DEFAULT_SERVER_PORTS
    cfg = _load(tmp_path, {"enabled": True, "subnets": ["10.20.16.0/24"],
                           "exclude": ["10.20.16.1/32"], "ports": [22, 5432, 8081],
                           "port_roles": {8081: "web"}, "rate_limit_per_s": 20})
    assert str(cfg.server_scan.subnets[0]) == "10.20.16.0/24"
    assert cfg.server_scan.port_roles == {8081: ServerRole.WEB}


@pytest.mark.parametrize(("section", "message"), [
    ({"enabled": True}, r"server_scan: .*subnets: give the PD LAN subnet"),
    ({"subnets": ["10.20.16.5/24"]}, r"server_scan\.subnets\[0\]: .*host bits"),
    ({"subnets": ["not-a-net"]}, r"server_scan\.subnets\[0\]: .*CIDR"),
    ({"subnets": ["127.0.0.0/8"]}, r"server_scan\.subnets: .*loopback"),
    ({"subnets": ["10.20.16.0/24"], "include": ["10.20.17.0/28"]},
     r"include 10\.20\.17\.0/28 is not inside any of subnets"),
    ({"subnets": ["10.0.0.0/8"], "include": ["10.20.0.0/16"]}, r"at most 4096 per range"),
    ({"ports": [80, 443, 80]}, r"server_scan\.ports: .*port 80 is listed twice"),
    ({"ports": [0]}, r"server_scan\.ports\[0\]: .*greater than or equal to 1"),
    ({"port_roles": {8081: "webserver"}}, r"server_scan\.port_roles\[8081\]: .*'web'"),
    ({"rate_limit_per_s": 0}, r"server_scan\.rate_limit_per_s: .*greater than 0"),
    ({"max_hosts": 100000}, r"server_scan\.max_hosts: .*less than or equal to 4096"),
    ({"scan_everything": True}, r"server_scan\.scan_everything: Extra inputs"),
])
def test_config_errors_name_the_key(tmp_path: Path, section: dict[str, Any],
                                    message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, section)


def test_contract_round_trip_and_checks() -> None:
    now = utcnow()
    obs = ServerScan(observed_at=now, subnets=["10.20.16.0/24"], ports=[80, 5432],
                     hosts=[ScannedHost(ip="10.20.16.50", mac="52:54:00:aa:bb:01",
                                        open_ports=[80, 5432],
                                        roles=[ServerRole.DATABASE, ServerRole.WEB],
                                        role=ServerRole.DATABASE, scanned_at=now)],
                     candidates=3, scanned=3, without_open_ports=2)
    rep = Report(report_id=new_report_id(), agent_id="a", pd_code="P", sent_at=now,
                 observations=[obs])
    back = Report.model_validate_json(rep.model_dump_json())
    assert back.observations == [obs]
    with pytest.raises(ValueError, match="role must be the first of roles"):
        ScannedHost(ip="10.0.0.1", open_ports=[80], roles=[ServerRole.WEB],
                    role=ServerRole.DATABASE, scanned_at=now)
    with pytest.raises(ValueError):
        ScannedHost(ip="10.0.0.1", open_ports=[], roles=[ServerRole.WEB],
                    role=ServerRole.WEB, scanned_at=now)  # hosts without open ports: counted


def test_disabled_collector_does_nothing() -> None:
    from agent.runner import BUILTIN, Agent

    assert "server_scan" in BUILTIN
    agent = Agent(AgentConfig.model_validate(BASE), with_spool=False)
    scan = [c for c in agent.collectors if c.name == "server_scan"]
    assert len(scan) == 1 and isinstance(scan[0], ServerScanCollector)
    assert scan[0].interval_s() == 6 * 3600
    assert asyncio.run(scan[0].collect()) == []


# --- integration: a LAN of network namespaces ----------------------------------------------

LISTENER = r"""
import selectors, socket, sys, time
log = open(sys.argv[1], "a", buffering=1)
sel = selectors.DefaultSelector()
for spec in sys.argv[2:]:
    host, _, port = spec.rpartition(":")
    host = host.strip("[]")
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(128)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
log.write("ready\n")
while True:
    for key, _ in sel.select():
        try:
            conn, peer = key.fileobj.accept()
        except BlockingIOError:
            continue
        log.write(f"{time.monotonic():.6f} {key.fileobj.getsockname()[1]} {peer[0]}\n")
        conn.close()
"""

# A port whose SYNs go unanswered, like a firewall DROP (no iptables/nft needed): a
# listener with backlog 0 whose one queue slot is taken; the kernel drops further SYNs.
JAMMED = r"""
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
s.bind((host, port))
s.listen(0)
c = socket.create_connection((host, port))
print("ready", flush=True)
time.sleep(86400)
"""

LAN = ip_network("10.252.1.0/24")
AGENT_IP, AGENT_IP2 = "10.252.1.1", "10.252.2.1"
HOSTS = {  # name: (address, prefix, MAC, bridge/interface in the agent namespace)
    "srv": ("10.252.1.10", 24, "02:52:00:01:00:0a", "br0"),
    "empty": ("10.252.1.20", 24, "02:52:00:01:00:14", "br0"),
    "excl": ("10.252.1.30", 24, "02:52:00:01:00:1e", "br0"),
    "many": ("10.252.1.40", 24, "02:52:00:01:00:28", "br0"),
    "quiet": ("10.252.1.50", 24, "02:52:00:01:00:32", "br0"),
    "out": ("10.252.2.10", 24, "02:52:00:02:00:0a", "lan2"),
}
GHOST_IP, GHOST_MAC = "10.252.1.99", "02:52:00:01:00:63"
MANY_PORTS = list(range(20001, 20041))
_NS_RE = re.compile(r"^sst(\d+)-")


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise RuntimeError(f"{name} not found; run scripts/install-netlab-deps.sh")
    return path


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns_list() -> list[str]:
    r = _run(_tool("ip"), "netns", "list", check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _del_netns(name: str) -> None:
    ip = _tool("ip")
    pids = _run(ip, "netns", "pids", name, check=False).stdout.split()
    for p in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(p), signal.SIGKILL)
    _run(ip, "netns", "del", name, check=False)


def _cleanup_stale() -> None:
    """Remove namespaces of earlier runs of this file whose process is gone."""
    for name in _netns_list():
        m = _NS_RE.match(name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            _del_netns(name)


class ScanLan:
    """The namespaces, daemons and files of one test run; ``close()`` removes all of it."""

    def __init__(self, workdir: Path) -> None:
        self.prefix = f"sst{os.getpid()}"
        self.dir = workdir
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.postgres: Postgres | None = None
        self.logs: dict[str, Path] = {}
        self.ip = _tool("ip")
        self.setpriv = _tool("setpriv")
        self.ping = _tool("ping")

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def ns_path(self, name: str) -> str:
        return f"/run/netns/{self.ns(name)}"

    def _ipn(self, ns: str, *args: str) -> None:
        _run(self.ip, "-n", self.ns(ns), *args)

    def add_ns(self, name: str) -> None:
        _run(self.ip, "netns", "add", self.ns(name))
        self.namespaces.append(self.ns(name))
        self._ipn(name, "link", "set", "lo", "up")

    def build(self) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("the server-scan integration tests need root (network "
                               "namespaces)")
        _cleanup_stale()
        self.add_ns("agent")
        self._ipn("agent", "link", "add", "br0", "type", "bridge")
        self._ipn("agent", "addr", "add", f"{AGENT_IP}/24", "dev", "br0")
        self._ipn("agent", "link", "set", "br0", "up")
        for name, (addr, plen, mac, via) in HOSTS.items():
            self.add_ns(name)
            veth = f"p-{name}" if via == "br0" else via
            self._ipn("agent", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                      "netns", self.ns(name))
            if via == "br0":
                self._ipn("agent", "link", "set", veth, "master", "br0")
            else:
                self._ipn("agent", "addr", "add", f"{AGENT_IP2}/24", "dev", veth)
            self._ipn("agent", "link", "set", veth, "up")
            self._ipn(name, "link", "set", "eth0", "address", mac)
            self._ipn(name, "addr", "add", f"{addr}/{plen}", "dev", "eth0")
            self._ipn(name, "link", "set", "eth0", "up")
        # a host that does not exist: the agent has its MAC, nobody answers
        self._ipn("agent", "neigh", "replace", GHOST_IP, "lladdr", GHOST_MAC, "dev", "br0",
                  "nud", "permanent")

        srv = HOSTS["srv"][0]
        for port in (80, 8080):
            self.spawn("srv", [sys.executable, "-m", "http.server", str(port), "--bind", srv,
                               "--directory", str(self.dir)])
        jam = self.spawn("srv", [sys.executable, "-c", JAMMED, srv, "3306"],
                         stdout=subprocess.PIPE)
        assert jam.stdout is not None
        if jam.stdout.readline().strip() != b"ready":
            raise RuntimeError("the jammed 3306 listener did not start")
        self.postgres = _NetnsPostgres(self.dir / "pg", self.ns_path("srv"))
        self.postgres.start()
        every = [str(p) for p in DEFAULT_SERVER_PORTS]
        self.listener("excl", [f"{HOSTS['excl'][0]}:{p}" for p in every])
        self.listener("out", [f"{HOSTS['out'][0]}:{p}" for p in every])
        self.listener("many", [f"{HOSTS['many'][0]}:{p}" for p in MANY_PORTS])
        self.listener("quiet", [f"{HOSTS['quiet'][0]}:27017"])
        self.listener("agent", [f"{AGENT_IP}:443", "127.0.0.1:3306", "[::]:1433",
                                "0.0.0.0:9999"])
        for port in (80, 8080, 5432):
            self.wait_port(srv, port)
        for name in ("srv", "empty", "excl", "many", "out"):
            _run(self.ip, "netns", "exec", self.ns("agent"), self.ping, "-c", "1", "-W", "2",
                 HOSTS[name][0])

    def spawn(self, ns: str, cmd: list[str], stdout: int | None = None,
              ) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{ns}-{len(self.procs)}.log", "ab")  # noqa: SIM115
        p = subprocess.Popen(
            [self.setpriv, "--pdeathsig", "KILL", "--", self.ip, "netns", "exec", self.ns(ns),
             *cmd], stdin=subprocess.DEVNULL, stdout=stdout if stdout is not None else log,
            stderr=log, start_new_session=True)
        log.close()
        self.procs.append(p)
        return p

    def listener(self, ns: str, specs: list[str]) -> None:
        path = self.dir / f"accepts-{ns}.log"
        path.touch()
        self.logs[ns] = path
        self.spawn(ns, [sys.executable, "-c", LISTENER, str(path), *specs])
        deadline = time.monotonic() + 15
        while "ready" not in path.read_text():
            if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                raise RuntimeError(f"listener in {ns} did not start: "
                                   f"{(self.dir / f'{ns}-{len(self.procs) - 1}.log').read_text()}")
            time.sleep(0.05)

    def accepts(self, ns: str, since: float, until: float) -> list[tuple[float, int, str]]:
        """Connections the counting listener in ``ns`` accepted in [since, until]."""
        out = []
        for line in self.logs[ns].read_text().splitlines():
            f = line.split()
            if len(f) == 3 and since <= float(f[0]) <= until:
                out.append((float(f[0]), int(f[1]), f[2]))
        return out

    def connect_from_agent(self, host: str, port: int, timeout: float = 2.0) -> None:
        with netns_entered(self.ns_path("agent")), socket.create_connection((host, port),
                                                                             timeout):
            pass

    def wait_port(self, host: str, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connect_from_agent(host, port, 1.0)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def agent_once(self, server_scan: dict[str, Any], *, server_mode: bool = False,
                   ) -> tuple[ServerScan, float, float]:
        """Run ``spbe-agent once --dry-run`` in the agent namespace; return its server_scan
        observation and the monotonic start/end of the run."""
        cfg = {**BASE, "server_mode": server_mode, "log_level": "WARNING",
               "spool": {"path": str(self.dir / "spool.sqlite")},
               "server_scan": {"enabled": True, **server_scan}}
        path = self.dir / "agent.yaml"
        path.write_text(yaml.safe_dump(cfg))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_AGENT_")}
        env["PYTHONPATH"] = str(REPO)
        t0 = time.monotonic()
        r = subprocess.run(
            [self.ip, "netns", "exec", self.ns("agent"), sys.executable, "-m", "agent.cli",
             "-c", str(path), "once", "--dry-run"],
            capture_output=True, text=True, timeout=120, env=env, cwd=REPO, check=False)
        t1 = time.monotonic()
        assert r.returncode == 0, r.stderr
        report = Report.model_validate_json(r.stdout)
        scans = [o for o in report.observations if isinstance(o, ServerScan)]
        assert len(scans) == 1, r.stdout
        return scans[0], t0, t1

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(10)
        self.procs.clear()
        if self.postgres is not None:
            self.postgres.close()
            self.postgres = None
        for ns in reversed(self.namespaces):
            _del_netns(ns)
        self.namespaces.clear()


class _NetnsPostgres(Postgres):
    """The real PostgreSQL of tests/servers.py, on port 5432 of every address of a network
    namespace (the server is forked from a thread inside it)."""

    def __init__(self, workdir: Path, netns_path: str) -> None:
        super().__init__(workdir)
        self.port = 5432
        self.netns_path = netns_path

    def _prepare(self) -> None:
        super()._prepare()
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write("\nlisten_addresses = '*'\n")

    def start(self) -> _NetnsPostgres:
        with netns_entered(self.netns_path):
            super().start()
        return self


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScanLan]:
    lab = ScanLan(tmp_path_factory.mktemp("server-scan"))
    atexit.register(lab.close)
    try:
        lab.build()
        yield lab
    finally:
        lab.close()
        atexit.unregister(lab.close)
    leftovers = [n for n in _netns_list() if n.startswith(lab.prefix + "-")]
    assert not leftovers, f"namespaces left behind: {leftovers}"


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_scan_finds_servers_on_the_lan(lan: ScanLan) -> None:
    rate, concurrency, timeout = 200.0, 32, 0.5
    scan, t0, t1 = lan.agent_once({
        "subnets": [str(LAN)],
        "include": ["10.252.1.48/29"],                      # quiet (.50) is not in ARP
        "exclude": ["10.252.1.30/32", "10.252.1.40/32"],    # excl, many
        "rate_limit_per_s": rate, "burst": 5, "concurrency": concurrency,
        "connect_timeout_s": timeout,
    }, server_mode=True)

    by_ip = {h.ip: h for h in scan.hosts}
    assert sorted(by_ip) == ["10.252.1.10", "10.252.1.50"]  # empty, ghost, sweep: counted only
    srv = by_ip["10.252.1.10"]
    assert srv.open_ports == [80, 5432, 8080]
    assert srv.role == ServerRole.DATABASE
    assert srv.roles == [ServerRole.DATABASE, ServerRole.WEB]
    assert (srv.mac, srv.interface) == (HOSTS["srv"][2], "br0")
    assert srv.filtered_ports == [3306]  # SYNs dropped: timed out, scan went on
    started = scan.observed_at.timestamp()
    assert started <= srv.scanned_at.timestamp() <= started + scan.duration_s
    quiet = by_ip["10.252.1.50"]
    assert (quiet.open_ports, quiet.role) == ([27017], ServerRole.DATABASE)
    assert quiet.mac == HOSTS["quiet"][2]  # learnt by the connect, read after the scan

    # in ARP and in the LAN: srv empty excl many ghost; swept: .49-.54
    assert scan.subnets == [str(LAN)]
    assert scan.candidates == 11
    assert scan.excluded == 2
    assert scan.skipped_over_cap == 0
    assert scan.scanned == 9
    assert scan.without_open_ports == 7
    assert scan.connections == 9 * len(DEFAULT_SERVER_PORTS)
    assert scan.timeouts >= 6 * len(DEFAULT_SERVER_PORTS) + 1  # ghost + 5 sweep + jammed 3306
    assert scan.complete and scan.error is None

    # the time budget: the rate, plus the timeouts spread over the concurrency
    budget = (scan.connections / rate + math.ceil(scan.timeouts / concurrency) * timeout
              + timeout + 2.0)
    assert scan.duration_s <= budget, (scan.duration_s, budget)

    # never touched: the excluded hosts and the host outside the subnets (ARP-known, pinged)
    for ns in ("excl", "many", "out"):
        assert lan.accepts(ns, t0, t1) == [], ns
    # ... and the counters do count (the check above can fail)
    t2 = time.monotonic()
    lan.connect_from_agent(HOSTS["excl"][0], 80)
    lan.connect_from_agent(HOSTS["out"][0], 5432)
    time.sleep(0.3)
    assert [a[1:] for a in lan.accepts("excl", t2, time.monotonic())] == [(80, AGENT_IP)]
    assert [a[1:] for a in lan.accepts("out", t2, time.monotonic())] == [(5432, AGENT_IP2)]

    # server mode: the agent's own LISTEN sockets, loopback-only and non-server ports left out
    assert scan.server_mode is True
    assert scan.local is not None
    assert scan.local.open_ports == [443, 1433]
    assert scan.local.role == ServerRole.DATABASE
    assert scan.local.roles == [ServerRole.DATABASE, ServerRole.WEB]
    assert scan.local.error is None


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_rate_limit_holds_at_the_listener(lan: ScanLan) -> None:
    rate, burst = 20.0, 2
    scan, t0, t1 = lan.agent_once({
        "subnets": ["10.252.1.40/32"], "ports": MANY_PORTS, "port_roles": {20001: "web"},
        "rate_limit_per_s": rate, "burst": burst, "concurrency": 8,
    })
    assert [h.ip for h in scan.hosts] == ["10.252.1.40"]
    many = scan.hosts[0]
    assert many.open_ports == MANY_PORTS
    assert many.roles == [ServerRole.WEB, ServerRole.OTHER]
    assert scan.connections == len(MANY_PORTS) and scan.timeouts == 0

    stamps = sorted(t for t, _, _ in lan.accepts("many", t0, t1))
    assert len(stamps) == len(MANY_PORTS)  # the listener saw every connection
    for i, t in enumerate(stamps):
        for w in (0.25, 0.5, 1.0):
            inside = sum(1 for u in stamps[i:] if u < t + w)
            assert inside <= burst + rate * w + 1, (w, inside)  # +1: accept-time jitter
    span = stamps[-1] - stamps[0]
    assert span >= (len(MANY_PORTS) - burst - 1) / rate
    assert span <= len(MANY_PORTS) / rate + 1.5  # limited, not stalled


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_time_budget_stops_a_scan_of_a_silent_host(lan: ScanLan) -> None:
    # the ghost answers nothing: every connect waits its full timeout, one at a time
    scan, _, _ = lan.agent_once({
        "subnets": [f"{GHOST_IP}/32"], "rate_limit_per_s": 100, "concurrency": 1,
        "connect_timeout_s": 0.5, "max_duration_s": 1.6,
    })
    assert scan.hosts == []
    assert scan.scanned == 1 and scan.without_open_ports == 1
    assert 3 <= scan.connections <= 5 < len(DEFAULT_SERVER_PORTS)
    assert scan.timeouts == scan.connections
    assert scan.complete is False
    assert scan.error is not None and "time budget" in scan.error
    assert scan.duration_s <= 1.6 + 0.5 + 0.5
