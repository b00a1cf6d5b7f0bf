"""SNMP driver and ``devices`` collector against real SNMP agents.

* our own snmpd processes on 127.0.0.1 (tests/snmpd.py): v2c, v3 authPriv, wrong
  credentials, a table that fails (a ``pass`` script answering non-increasing OIDs), garbage
  values (a ``pass`` script serving 5-byte MAC addresses), two agents that share a v3 user
  name with different keys;
* the netlab (tests/netlab.py): snmpd + lldpd per device in network namespaces, for LLDP
  neighbours, ifAlias, addresses, default routes, link cuts, v2c and v3;
* the collector's isolation: an unreachable SNMP device and a hung blocking (thread pool)
  device do not delay the others beyond their own timeout.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import drivers, snmp_engine
from agent.collectors.devices import ConfigBackupCollector, DevicesCollector
from agent.config import AgentConfig, DeviceCfg
from agent.drivers import DriverError
from agent.drivers.snmp import SnmpDriver
from agent.snmp_engine import SnmpHub, SnmpSession, oid
from contract.report import ConfigSnapshot, DeviceObservation, PollStatus, utcnow
from tests.netlab import Lab, default_spec
from tests.snmpd import Snmpd, ensure_netlab_deps, free_udp_ports, tool_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


class Ctx:
    def uptime_s(self) -> float:
        return 1.0

    def spool_counts(self) -> tuple[int, int, int]:
        return 0, 0, 0


def agent_cfg(devices: list[dict[str, Any]], **kw: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "agent_id": "test-agent", "pd_code": "DINKES",
        "collector": {"url": "https://127.0.0.1:9/", "token_env": "UNUSED_TOKEN"},
        "devices": devices, **kw})


def v2c(name: str, sd: Snmpd, *, port: int | None = None, community_file: Path | None = None,
        timeout_s: float = 2.0, retries: int = 1, **kw: Any) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "platform": "snmp",
            "snmp": {"version": "2c", "port": port or sd.port,
                     "community": {"file": str(community_file or sd.community_file)},
                     "timeout_s": timeout_s, "retries": retries}, **kw}


def v3(name: str, sd: Snmpd, *, auth_file: Path | None = None, priv_file: Path | None = None,
       user: str | None = None, timeout_s: float = 2.0, retries: int = 1) -> dict[str, Any]:
    return {"name": name, "host": "127.0.0.1", "platform": "snmp",
            "snmp": {"version": "3", "port": sd.port, "user": user or sd.v3_user,
                     "auth_protocol": "sha", "priv_protocol": "aes",
                     "auth_key": {"file": str(auth_file or sd.auth_key_file)},
                     "priv_key": {"file": str(priv_file or sd.priv_key_file)},
                     "timeout_s": timeout_s, "retries": retries}}


def poll(cfg: AgentConfig) -> dict[str, DeviceObservation]:
    async def run() -> list[Any]:
        try:
            return await DevicesCollector(cfg, Ctx()).collect()
        finally:
            SnmpHub.close_current()

    out = {}
    for o in asyncio.run(run()):
        assert isinstance(o, DeviceObservation)
        out[o.device] = o
    return out


def net_snmp(tool: str, sd: Snmpd, *oids: str) -> str:
    r = subprocess.run([tool, "-v2c", "-c", sd.community, "-On", "-Oqv", f"127.0.0.1:{sd.port}",
                        *oids], env=tool_env(sd.workdir), capture_output=True, text=True,
                       timeout=30, check=True)
    return r.stdout.strip().strip('"')


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    with Snmpd(tmp_path_factory.mktemp("snmpd"), sys_name="lab-host",
               location="Dinkes Gedung A Lt.1") as sd:
        yield sd


@pytest.fixture(scope="module")
def broken_snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    """ENTITY-MIB answers non-increasing OIDs (a table that fails); ifPhysAddress is 5
    bytes long on every interface (garbage values)."""
    work = tmp_path_factory.mktemp("broken-snmpd")
    loop_script = work / "loop.sh"
    loop_script.write_text('#!/bin/sh\necho "$2"\necho integer\necho 3\n')
    mac_script = work / "mac.sh"
    mac_script.write_text("""#!/bin/sh
# ifPhysAddress.N for N = 1..4, five bytes each
base=.1.3.6.1.2.1.2.2.1.6
case "$1" in
  -g) n=${2##*.}; [ "$2" = "$base.$n" ] && [ "$n" -ge 1 ] && [ "$n" -le 4 ] || exit 0 ;;
  -n) if [ "$2" = "$base" ]; then n=1; else n=$((${2##*.} + 1)); fi
      [ "$n" -le 4 ] || exit 0 ;;
  *) exit 0 ;;
esac
printf '%s\\noctet\\n01 02 03 04 05\\n' "$base.$n"
""")
    for s in (loop_script, mac_script):
        s.chmod(0o755)
    extra = (f"pass .1.3.6.1.2.1.47.1.1.1.1 {loop_script}\n"
             f"pass .1.3.6.1.2.1.2.2.1.6 {mac_script}\n")
    with Snmpd(work, sys_name="broken-host", extra_config=extra) as sd:
        yield sd


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    ensure_netlab_deps()
    started = Lab.start(default_spec(), timeout=90)
    yield started
    started.stop()


# --- one local snmpd ----------------------------------------------------------------------------

def test_v2c_poll_matches_net_snmp_tools(snmpd: Snmpd) -> None:
    obs = poll(agent_cfg([v2c("lab-host", snmpd)]))["lab-host"]
    assert obs.status is PollStatus.OK, obs.error
    assert obs.driver == "snmp" and obs.mgmt_address == "127.0.0.1"
    assert obs.hostname == "lab-host" == net_snmp("snmpget", snmpd, "1.3.6.1.2.1.1.5.0")
    assert obs.location == "Dinkes Gedung A Lt.1"
    assert obs.sys_description == net_snmp("snmpget", snmpd, "1.3.6.1.2.1.1.1.0")
    assert obs.vendor == "Net-SNMP" and obs.sys_object_id == "1.3.6.1.4.1.8072.3.2.10"
    assert obs.uptime_s is not None and obs.uptime_s >= 0
    # every interface net-snmp lists, with the same names
    names = net_snmp("snmpbulkwalk", snmpd, "1.3.6.1.2.1.31.1.1.1.1").split("\n")
    assert [i.name for i in obs.interfaces] == [n.strip().strip('"') for n in names]
    lo = next(i for i in obs.interfaces if i.name == "lo")
    assert lo.type == "softwareLoopback" and lo.oper_up and lo.in_octets is not None
    assert ("127.0.0.1", 8, "lo") in {(a.address, a.prefix_len, a.interface)
                                      for a in obs.addresses}
    assert obs.duration_s is not None and obs.duration_s < 10
    assert obs.notes == []


def test_v3_authpriv(snmpd: Snmpd) -> None:
    obs = poll(agent_cfg([v3("lab-host-v3", snmpd)]))["lab-host-v3"]
    assert obs.status is PollStatus.OK, obs.error
    assert obs.hostname == "lab-host" and obs.interfaces


_LAZY_CRYPTO = """
import json, sys
from tests.test_snmp_driver import agent_cfg, poll, v2c, v3
from tests.snmpd import Snmpd
sd = Snmpd.__new__(Snmpd)
sd.__dict__.update(json.loads(sys.argv[1]))
from pathlib import Path
for k in ("community_file", "auth_key_file", "priv_key_file"):
    setattr(sd, k, Path(getattr(sd, k)))
before = "cryptography" in sys.modules
v2 = poll(agent_cfg([v2c("v2", sd)]))["v2"]
after_v2c = "cryptography" in sys.modules
v3o = poll(agent_cfg([v3("v3", sd)]))["v3"]
print(json.dumps([before, after_v2c, "cryptography" in sys.modules,
                  v2.status.value, v3o.status.value, v3o.hostname]))
"""


def test_cryptography_loaded_only_for_snmpv3(snmpd: Snmpd) -> None:
    """pysnmp is imported without ``cryptography`` (8 MB of RSS); the first SNMPv3 device in
    the same process brings it in and polls with AES privacy (fresh interpreter)."""
    state = {k: str(v) if isinstance(v, Path) else v for k, v in vars(snmpd).items()
             if k in ("port", "ports", "v3_user", "community_file", "auth_key_file",
                      "priv_key_file")}
    out = subprocess.run([sys.executable, "-c", _LAZY_CRYPTO, json.dumps(state)],
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    before, after_v2c, after_v3, v2_status, v3_status, host = json.loads(
        out.stdout.strip().splitlines()[-1])
    assert (before, after_v2c, after_v3) == (False, False, True)
    assert (v2_status, v3_status, host) == ("ok", "ok", "lab-host")


def test_blocking_poll_wrapper(snmpd: Snmpd) -> None:
    cfg = agent_cfg([v2c("lab-host", snmpd)])
    obs = SnmpDriver().poll(cfg.devices[0])
    assert obs.status is PollStatus.OK and obs.hostname == "lab-host"


def test_wrong_credentials(snmpd: Snmpd, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-right-secret-1\n")
    cfg = agent_cfg([
        v2c("bad-community", snmpd, community_file=wrong, timeout_s=0.5, retries=1),
        v3("bad-auth-key", snmpd, auth_file=wrong, timeout_s=0.5, retries=0),
        v3("bad-priv-key", snmpd, priv_file=wrong, timeout_s=0.5, retries=0),
        v3("bad-user", snmpd, user="nobody", timeout_s=0.5, retries=0),
        v2c("good", snmpd),
    ])
    obs = poll(cfg)
    bad = obs["bad-community"]
    assert bad.status is PollStatus.FAILED and bad.error_type == "timeout"
    assert bad.duration_s is not None and 0.9 <= bad.duration_s < 5  # 2 tries of 0.5 s
    assert bad.interfaces == [] and bad.hostname is None
    assert obs["bad-auth-key"].status is PollStatus.FAILED
    assert obs["bad-auth-key"].error_type == "auth"  # usmStatsWrongDigests
    # a wrong privacy key: net-snmp cannot decrypt and stays silent
    assert obs["bad-priv-key"].status is PollStatus.FAILED
    assert obs["bad-priv-key"].error_type in ("auth", "timeout")
    assert obs["bad-user"].error_type == "auth"  # usmStatsUnknownUserNames
    assert obs["good"].status is PollStatus.OK
    for o in obs.values():  # no secret in any message
        text = o.model_dump_json()
        for secret in (snmpd.community, snmpd.auth_key, snmpd.priv_key,
                       "not-the-right-secret-1"):
            assert secret not in text


def test_missing_secret_file_is_a_config_failure(snmpd: Snmpd, tmp_path: Path) -> None:
    obs = poll(agent_cfg([v2c("x", snmpd, community_file=tmp_path / "absent")]))["x"]
    assert obs.status is PollStatus.FAILED and obs.error_type == "config"
    assert "absent" in (obs.error or "")


def test_failing_table_gives_partial_and_garbage_gives_notes(broken_snmpd: Snmpd) -> None:
    obs = poll(agent_cfg([v2c("broken", broken_snmpd)]))["broken"]
    assert obs.status is PollStatus.PARTIAL
    assert obs.error_type == "protocol"
    assert obs.error and obs.error.startswith("entity: ") and "non-increasing" in obs.error
    # everything else was read
    assert obs.hostname == "broken-host" and obs.interfaces and obs.addresses
    assert all(i.mac is None for i in obs.interfaces)
    assert any(n.startswith("ifPhysAddress not 6 bytes, dropped:") for n in obs.notes)


def test_shared_v3_user_name_with_different_keys(tmp_path: Path) -> None:
    """pysnmp keys v3 users by name; two devices with the same user and other keys must both
    work when polled together (the credential gate serialises them)."""
    with Snmpd(tmp_path / "a", sys_name="dev-a", v3_user="mon") as a, \
            Snmpd(tmp_path / "b", sys_name="dev-b", v3_user="mon") as b:
        assert a.auth_key != b.auth_key
        devices = [v3(f"a{i}", a) for i in range(3)] + [v3(f"b{i}", b) for i in range(3)]
        obs = poll(agent_cfg(devices))
        assert {k: o.status for k, o in obs.items()} == {k: PollStatus.OK for k in obs}
        assert {o.hostname for k, o in obs.items() if k.startswith("a")} == {"dev-a"}
        assert {o.hostname for k, o in obs.items() if k.startswith("b")} == {"dev-b"}


def test_many_ports_one_engine(tmp_path: Path) -> None:
    """30 agents (ports) polled concurrently through the one shared engine."""
    ports = free_udp_ports(30)
    with Snmpd(tmp_path / "multi", ports=ports, sys_name="multi") as sd:
        cfg = agent_cfg([v2c(f"d{i}", sd, port=p) for i, p in enumerate(ports)])

        async def run() -> tuple[list[Any], SnmpHub]:
            hub = SnmpHub.current()  # the loop's one engine, used by every poll of the run
            out = await DevicesCollector(cfg, Ctx()).collect()
            assert asyncio.get_running_loop() not in SnmpHub._hubs  # closed after the run
            return out, hub

        out, hub = asyncio.run(run())
        assert len(out) == 30 and all(o.status is PollStatus.OK for o in out)
        assert hub.requests >= 30 * 5 and hub.useful > 30 * 50


# --- isolation in the collector -------------------------------------------------------------

class SilentServer:
    """A TCP server that accepts and never says anything (a hung device)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=2)
        for c in self.conns:
            c.close()
        self.sock.close()


class WaitForBannerDriver:
    """A blocking driver (like an SSH one): connects and waits for the device to speak."""

    platform = "test_banner"

    def poll(self, device: DeviceCfg) -> DeviceObservation:
        port = device.ssh.port if device.ssh else 22
        with socket.create_connection((device.host, port), timeout=5) as s:
            s.settimeout(60)
            banner = s.recv(100)  # a hung device never answers
        raise DriverError("protocol", f"unexpected banner {banner[:20]!r}")

    def get_config(self, device: DeviceCfg) -> ConfigSnapshot | None:
        if device.name.startswith("good"):
            import hashlib

            content = f"hostname {device.name}\n"
            return ConfigSnapshot(observed_at=utcnow(), device=device.name, driver="test",
                                  sha256=hashlib.sha256(content.encode()).hexdigest(),
                                  content=content)
        if device.name.startswith("bad"):
            raise DriverError("auth", "login refused")
        self.poll(device)
        return None


@pytest.fixture
def banner_driver() -> Iterator[None]:
    drivers.REGISTRY["test_banner"] = WaitForBannerDriver
    yield
    drivers.REGISTRY.pop("test_banner", None)


def test_hung_and_unreachable_devices_do_not_delay_others(snmpd: Snmpd,
                                                         banner_driver: None) -> None:
    silent = SilentServer()
    dead_port = free_udp_ports(1)[0]  # nothing listens there
    try:
        ssh = {"username": "netops", "password": {"env": "UNUSED_PW"}, "port": silent.port}
        hung = [f"hung{i}" for i in range(3)]
        cfg = agent_cfg([
            *[{"name": n, "host": "127.0.0.1", "platform": "test_banner", "ssh": ssh,
               "timeout_s": 2} for n in hung],
            v2c("unreachable", snmpd, port=dead_port, timeout_s=1, retries=1),
            *[v2c(f"ok{i}", snmpd) for i in range(4)],
            {"name": "typo", "host": "127.0.0.1", "platform": "no_such_os"},
        ], device_workers=3)
        coll = DevicesCollector(cfg, Ctx())

        async def run() -> tuple[list[Any], float]:
            t0 = time.monotonic()
            try:
                out = await coll.collect()
            finally:
                SnmpHub.close_current()
            return out, time.monotonic() - t0

        out, took = asyncio.run(run())
        obs = {o.device: o for o in out if isinstance(o, DeviceObservation)}
        assert set(obs) == {*hung, "unreachable", "ok0", "ok1", "ok2", "ok3", "typo"}
        for name in hung:
            assert obs[name].status is PollStatus.FAILED and obs[name].error_type == "timeout"
        assert obs["unreachable"].error_type == "timeout"
        assert obs["typo"].error_type == "config"
        assert "valid:" in (obs["typo"].error or "") and "snmp" in (obs["typo"].error or "")
        for i in range(4):
            o = obs[f"ok{i}"]
            assert o.status is PollStatus.OK and o.duration_s is not None and o.duration_s < 2
        # everything ran side by side: bounded by the slowest timeout (2 s), not the sum (8 s)
        assert took < 5, took
        # the hung threads still hold their workers: the next run fails them fast
        out2, took2 = asyncio.run(run())
        assert took2 < 5, took2
        again = [o for o in out2 if isinstance(o, DeviceObservation) and o.device == "hung0"]
        assert again[0].error_type == "timeout"
        assert "still running" in (again[0].error or "")
    finally:
        silent.close()  # the hung reads end: the workers come back
    coll.runner.close()


def test_config_backup_collector(banner_driver: None) -> None:
    silent = SilentServer()
    try:
        ssh = {"username": "netops", "password": {"env": "UNUSED_PW"}, "port": silent.port}
        base = {"host": "127.0.0.1", "platform": "test_banner", "ssh": ssh,
                "config_backup": True, "timeout_s": 1.5}
        cfg = agent_cfg([{"name": "good-rtr", **base}, {"name": "bad-rtr", **base},
                         {"name": "hung-rtr", **base},
                         {"name": "no-backup", **base, "config_backup": False}])
        coll = ConfigBackupCollector(cfg, Ctx())
        assert coll.interval_s() == cfg.intervals.config_backup_s
        t0 = time.monotonic()
        out = asyncio.run(coll.collect())
        assert time.monotonic() - t0 < 3.5
        assert all(isinstance(o, ConfigSnapshot) for o in out)
        assert [(o.device, o.content) for o in out if isinstance(o, ConfigSnapshot)] == [
            ("good-rtr", "hostname good-rtr\n")]
        coll.runner.close()
    finally:
        silent.close()


def test_devices_collector_is_builtin() -> None:
    from agent import collectors
    from agent.runner import BUILTIN

    collectors.load_builtin()
    assert "devices" in BUILTIN and "config_backup" in BUILTIN
    cfg = agent_cfg([])
    coll = collectors.get("devices")(cfg, Ctx())
    assert coll.interval_s() == cfg.intervals.devices_s
    assert asyncio.run(coll.collect()) == []


def test_session_get_and_walk_directly(snmpd: Snmpd) -> None:
    cfg = agent_cfg([v2c("x", snmpd)]).devices[0]
    assert cfg.snmp is not None

    async def run() -> None:
        try:
            assert cfg.snmp is not None
            async with SnmpSession("127.0.0.1", cfg.snmp) as s:
                got = await s.get([oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.1.99.0")])
                assert got[oid("1.3.6.1.2.1.1.5.0")] is not None
                assert got[oid("1.3.6.1.2.1.1.99.0")] is None  # noSuchObject
                w = await s.walk([oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.31.1.1.1.1")])
                descr, names = w.columns.values()
                assert len(descr) == len(names) > 0 and not w.truncated
                w = await s.walk([oid("1.3.6.1.2.1.2.2.1.2")], max_rows=1)
                assert w.truncated and len(w.columns[oid("1.3.6.1.2.1.2.2.1.2")]) == 1
        finally:
            SnmpHub.close_current()

    asyncio.run(run())


def test_a_table_seen_before_is_read_in_one_request(snmpd: Snmpd) -> None:
    """The session remembers each table's row count per device: the next walk asks for that
    many rows (+1 to see the end) at once instead of growing from 4 rows per request."""
    cfg = agent_cfg([v2c("x", snmpd)]).devices[0]
    assert cfg.snmp is not None
    snmp_cfg = cfg.snmp
    snmp_engine._TABLE_ROWS.clear()   # other tests polled this agent already

    async def walk_twice() -> tuple[int, int, int]:
        try:
            async with SnmpSession("127.0.0.1", snmp_cfg) as s:
                r0 = s.requests
                first = await s.walk([oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.2.2.1.3")])
                r1 = s.requests
                second = await s.walk([oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.2.2.1.3")])
                r2 = s.requests
                assert first.columns == second.columns
                return r1 - r0, r2 - r1, len(next(iter(first.columns.values())))
        finally:
            SnmpHub.close_current()

    first_requests, second_requests, rows = asyncio.run(walk_twice())
    assert rows >= 4, "the lab agent needs a few interfaces for this test"
    assert first_requests >= 2 and second_requests == 1, (first_requests, second_requests)


# --- the netlab -----------------------------------------------------------------------------------

def lab_devices(lab: Lab, version: str = "2c") -> list[dict[str, Any]]:
    c = lab.snmp
    out = []
    for name, dev in lab.devices.items():
        if version == "2c":
            snmp: dict[str, Any] = {"version": "2c", "community": {"file": str(c.community.path)}}
        else:
            snmp = {"version": "3", "user": c.user, "auth_protocol": "sha",
                    "priv_protocol": "aes", "auth_key": {"file": str(c.auth_key.path)},
                    "priv_key": {"file": str(c.priv_key.path)}}
        out.append({"name": name, "host": dev.mgmt_ip, "platform": "snmp",
                    "snmp": {**snmp, "timeout_s": 2, "retries": 1}})
    return out


def test_netlab_topology_v2c(lab: Lab) -> None:
    obs = poll(agent_cfg(lab_devices(lab)))
    assert set(obs) == set(lab.devices)
    for name, dev in lab.devices.items():
        o = obs[name]
        assert o.status is PollStatus.OK, (name, o.error)
        assert o.hostname == dev.sys_name and o.location == dev.sys_location
        assert dev.mgmt_ip in {a.address for a in o.addresses}
        ifs = {i.name: i for i in o.interfaces}
        for port, alias in dev.ports.items():  # ifAlias = the lab's port descriptions
            assert ifs[port].description == (alias or ""), (name, port)
    # LLDP neighbours are exactly the lab's cables between managed devices
    seen = {(o.device, n.local_port, n.remote_system_name, n.remote_port_id)
            for o in obs.values() for n in o.lldp_neighbors}
    want = set()
    for link in lab.links:
        if link.a in lab.devices and link.b in lab.devices:
            want.add((link.a, link.a_port, link.b, link.b_port))
            want.add((link.b, link.b_port, link.a, link.a_port))
    assert seen == want
    rtr = obs["dinkes-rtr"]
    assert (rtr.vendor, rtr.role) == ("Huawei", "router")
    assert rtr.routes[0].destination == "0.0.0.0/0" and rtr.routes[0].gateway == "10.253.0.1"
    assert obs["dinkes-sw1"].role == "switch" and obs["bappeda-rtr"].vendor == "MikroTik"
    assert obs["disdik-rtr"].role == "firewall"  # Juniper SRX
    nbr = next(n for n in rtr.lldp_neighbors if n.remote_system_name == "dc-core")
    assert nbr.remote_mgmt_address == lab.devices["dc-core"].mgmt_ip


def test_netlab_v3_and_changes(lab: Lab) -> None:
    cfg = agent_cfg([d for d in lab_devices(lab, "3") if d["name"] in ("dinkes-sw1",
                                                                         "dinkes-rtr")])
    before = poll(cfg)
    assert all(o.status is PollStatus.OK for o in before.values())
    lab.set_alias("dinkes-sw1", "eth3", "R101-A02")
    lab.cut_link("dinkes-rtr", "dinkes-sw1")
    try:
        after = poll(cfg)
        sw = {i.name: i for i in after["dinkes-sw1"].interfaces}
        assert sw["eth3"].description == "R101-A02"
        assert sw["eth1"].oper_up is False and sw["eth1"].admin_up is True
        rtr = {i.name: i for i in after["dinkes-rtr"].interfaces}
        assert rtr["eth2"].oper_up is False
        assert "dinkes-rtr" not in {n.remote_system_name
                                    for n in after["dinkes-sw1"].lldp_neighbors}
    finally:
        lab.restore_link("dinkes-rtr", "dinkes-sw1")
        lab.set_alias("dinkes-sw1", "eth3", None)
