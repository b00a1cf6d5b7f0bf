"""The test network (tests/netlab.py) against real snmpd, lldpd, FakeNOS and OpenSSH.

Needs root and scripts/install-netlab-deps.sh. SNMP checks run net-snmp's own tools from the
root namespace (numeric OIDs, no MIB files), independently of the lab's helper methods.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import paramiko  # type: ignore[import-untyped,unused-ignore]
import pytest
from netmiko import ConnectHandler

from tests.netlab import (
    LAB_BASE,
    REPO,
    DeviceSpec,
    Lab,
    LabError,
    LabSpec,
    LabSpecError,
    LinkSpec,
    PortSpec,
    cleanup_stale,
    default_spec,
    minimal_spec,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SYS = "1.3.6.1.2.1.1"
SYS_NAME, SYS_CONTACT, SYS_LOCATION = f"{SYS}.5.0", f"{SYS}.4.0", f"{SYS}.6.0"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
IP_AD_ENT_ADDR = "1.3.6.1.2.1.4.20.1.1"
IP_NET_TO_MEDIA_PHYS = "1.3.6.1.2.1.4.22.1.2"
IP_ROUTE_NEXT_HOP = "1.3.6.1.2.1.4.21.1.7"
INET_CIDR_ROUTE_IFINDEX = "1.3.6.1.2.1.4.24.7.1.7"
LLDP_REM = "1.0.8802.1.1.2.1.4.1.1"
LLDP_REM_PORT_ID, LLDP_REM_PORT_DESC, LLDP_REM_SYS_NAME = (
    f"{LLDP_REM}.7", f"{LLDP_REM}.8", f"{LLDP_REM}.9")

T = TypeVar("T")


def snmp(tool: str, auth: list[str], host: str, oid: str,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([tool, *auth, "-m", "", "-On", "-Oq", "-t", "1", "-r", "2",
                        f"udp:{host}:161", oid], capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, f"{tool} {host} {oid}: {r.stderr}"
    return r


def values(out: str, prefix: str) -> dict[str, str]:
    """``-On -Oq`` lines under ``prefix`` -> {index suffix: value without quotes}."""
    res = {}
    for line in out.splitlines():
        oid, _, value = line.partition(" ")
        if oid.startswith(f".{prefix}."):
            res[oid[len(prefix) + 2:]] = value.strip('"')
    return res


def walk(lab: Lab, device: str, oid: str, v3: bool = False) -> dict[str, str]:
    auth = lab.snmp.v3_args() if v3 else lab.snmp.v2c_args()
    return values(snmp("snmpbulkwalk", auth, lab.devices[device].mgmt_ip, oid).stdout, oid)


def get(lab: Lab, device: str, oid: str, v3: bool = False) -> str:
    auth = lab.snmp.v3_args() if v3 else lab.snmp.v2c_args()
    out = snmp("snmpget", auth, lab.devices[device].mgmt_ip, oid).stdout
    oid_s, _, value = out.strip().partition(" ")
    assert oid_s == f".{oid}", out
    return value.strip('"')


def neighbours(lab: Lab, device: str) -> set[str]:
    return set(walk(lab, device, LLDP_REM_SYS_NAME).values())


def if_index(lab: Lab, device: str) -> dict[str, str]:
    return {name: idx for idx, name in walk(lab, device, IF_DESCR).items()}


def wait_for(fn: Callable[[], T], ok: Callable[[T], bool], what: str,
             timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout}s")
        time.sleep(0.3)


def lab_traces(lab_id: str) -> list[str]:
    """Everything of a lab that still exists on the machine."""
    found = [f"netns {ns}" for ns in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        if ns.startswith(lab_id + "-")]
    found += [f"link {lab_id}"] if Path(f"/sys/class/net/{lab_id}").exists() else []
    found += [f"user {lab_id}"] if any(line.startswith(lab_id + ":") for line in
                                       Path("/etc/passwd").read_text().splitlines()) else []
    found += [f"dir {LAB_BASE / lab_id}"] if (LAB_BASE / lab_id).exists() else []
    marker = f"/{lab_id}/".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmd and stat[stat.rindex(")") + 2] != "Z":
            found.append(f"process {pid}")
    return found


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    started = Lab.start(default_spec(), timeout=90)
    print(f"\nnetlab {started.lab_id} started in {started.startup_seconds:.2f}s "
          f"{ {k: round(v, 2) for k, v in started.timings.items()} }")
    yield started
    lab_id = started.lab_id
    started.stop()
    assert lab_traces(lab_id) == []


# --------------------------------------------------------------------------- spec (no I/O)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: LabSpec((*s.devices, DeviceSpec("dc-core", "X")), s.links),
     "duplicate device names: dc-core"),
    (lambda s: LabSpec((*s.devices, DeviceSpec("Bad_Name", "X")), s.links), "'Bad_Name'"),
    (lambda s: LabSpec(s.devices, (*s.links, LinkSpec(PortSpec("dc-core"), PortSpec("nope")))),
     "unknown device 'nope'"),
    (lambda s: LabSpec(s.devices, (*s.links, LinkSpec(
        PortSpec("dc-core", address="10.253.0.2/30"), PortSpec("dc-srv1")))),
     "address 10.253.0.2 already used by dinkes-rtr"),
    (lambda s: LabSpec(s.devices, (*s.links, LinkSpec(
        PortSpec("dinkes-sw1", address="10.253.16.9/24"), PortSpec("dc-srv1")))),
     "switch ports are bridged"),
    (lambda s: LabSpec(s.devices, (*s.links, LinkSpec(
        PortSpec("dc-core", address="192.168.1.1/24"), PortSpec("dc-srv1")))),
     "outside 10.253.0.0/16"),
    (lambda s: LabSpec((*s.devices, DeviceSpec("x", "X", ssh="cisco_xe")), s.links),
     "ssh must be 'openssh' or a FakeNOS platform"),
    (lambda s: LabSpec((*s.devices, DeviceSpec("x", "X", location='a "quoted" place')),
                       s.links), "location: at most 255 characters, no quotes"),
    (lambda s: LabSpec(s.devices, (*s.links, LinkSpec(PortSpec("dc-core", "eth1"),
                                                      PortSpec("dc-srv1")))),
     "port dc-core/eth1 used twice"),
])
@pytest.mark.timeout(10)
def test_spec_validation_names_the_problem(change: Callable[[LabSpec], LabSpec],
                                           message: str) -> None:
    with pytest.raises(LabSpecError, match=message.replace("(", r"\(").replace(".", r"\.")):
        change(default_spec())


# --------------------------------------------------------------------------- default lab


def test_default_lab_devices_and_startup_time(lab: Lab) -> None:
    spec = default_spec()
    assert set(lab.devices) == {d.name for d in spec.devices if d.role != "host"}
    assert set(lab.end_hosts) == {"dinkes-pc1", "dinkes-pc2", "disdik-pc1"}
    assert {d.pd for d in lab.devices.values()} == {"DISKOMINFO", "DINKES", "DISDIK", "BAPPEDA"}
    assert lab.devices["dinkes-sw1"].pd == "DINKES"
    assert lab.devices["dinkes-sw1"].ports == {"eth1": "UPLINK-DINKES-RTR", "eth2": "R101-A01",
                                               "eth3": None, "eth4": None}
    for d in lab.devices.values():
        assert str(lab.mgmt_network.network_address)[:-1] in d.mgmt_ip
        assert d.netns.startswith(lab.lab_id + "-")
    assert lab.mgmt_network.subnet_of(__import__("ipaddress").IPv4Network("10.254.0.0/16"))
    # "starts in seconds": generous bound for a shared 2-core machine
    assert 0 < lab.startup_seconds < 30, lab.timings


def test_snmp_v2c_and_v3_answer_with_each_devices_identity(lab: Lab) -> None:
    for name, dev in lab.devices.items():
        spec = lab.spec.device(name)
        assert get(lab, name, SYS_NAME) == name
        system = walk(lab, name, SYS, v3=True)
        assert system["5.0"] == name
        assert system["6.0"] == spec.location
        assert system["4.0"] == spec.contact
        if spec.object_id:
            assert system["2.0"] == spec.object_id
        assert dev.snmp.user == "spbe-ro"


def test_snmp_rejects_wrong_credentials(lab: Lab) -> None:
    host = lab.devices["dinkes-rtr"].mgmt_ip
    r = snmp("snmpget", ["-v2c", "-c", "wrong-community"], host, SYS_NAME, check=False)
    assert r.returncode != 0 and "Timeout" in r.stderr
    bad_v3 = lab.snmp.v3_args()
    bad_v3[bad_v3.index("-A") + 1] = "not-the-auth-key"
    r = snmp("snmpget", bad_v3, host, SYS_NAME, check=False)
    assert r.returncode != 0 and "Authentication failure" in r.stderr


def test_if_mib_descriptions_and_an_undescribed_up_port(lab: Lab) -> None:
    idx = if_index(lab, "dinkes-sw1")
    assert {"mgmt0", "eth1", "eth2", "eth3", "eth4", "br0"} <= set(idx)
    alias, admin, oper = (walk(lab, "dinkes-sw1", o) for o in (IF_ALIAS, IF_ADMIN, IF_OPER))
    assert alias[idx["eth1"]] == "UPLINK-DINKES-RTR"
    assert alias[idx["eth2"]] == "R101-A01"
    assert alias[idx["eth3"]] == "" and oper[idx["eth3"]] == "1"  # up, no description
    assert admin[idx["eth4"]] == "1" and oper[idx["eth4"]] == "2"  # spare port: no cable
    # ifAlias is live: a changed description shows up at once
    lab.set_alias("dinkes-sw1", "eth3", "R102-B07")
    try:
        assert walk(lab, "dinkes-sw1", IF_ALIAS)[idx["eth3"]] == "R102-B07"
    finally:
        lab.set_alias("dinkes-sw1", "eth3", None)
    assert walk(lab, "dinkes-sw1", IF_ALIAS)[idx["eth3"]] == ""


def test_ip_mib_addresses_arp_and_routes(lab: Lab) -> None:
    addrs = set(walk(lab, "dinkes-rtr", IP_AD_ENT_ADDR).values())
    assert {"10.253.0.2", "10.253.16.1", lab.devices["dinkes-rtr"].mgmt_ip} <= addrs
    arp = walk(lab, "dinkes-rtr", IP_NET_TO_MEDIA_PHYS)
    arp_ips = {".".join(k.split(".")[1:]) for k in arp}
    # the gateway of the PD (dc-core) and the PCs behind the switch pinged at start
    assert {"10.253.0.1", "10.253.16.101", "10.253.16.102"} <= arp_ips
    assert walk(lab, "dinkes-rtr", IP_ROUTE_NEXT_HOP)["0.0.0.0"] == "10.253.0.1"
    routes = walk(lab, "dc-core", IP_ROUTE_NEXT_HOP)
    assert routes["10.253.16.0"] == "10.253.0.2" and routes["10.253.32.0"] == "10.253.0.6"
    assert walk(lab, "dc-core", INET_CIDR_ROUTE_IFINDEX)  # IP-FORWARD-MIB served too


def test_lldp_remote_table_of_dinkes_rtr(lab: Lab) -> None:
    assert neighbours(lab, "dinkes-rtr") == {"dc-core", "dinkes-sw1"}
    table = walk(lab, "dinkes-rtr", LLDP_REM, v3=True)
    by_col: dict[str, set[str]] = {}
    for key, value in table.items():
        by_col.setdefault(key.split(".")[0], set()).add(value)
    assert by_col["9"] == {"dc-core", "dinkes-sw1"}
    assert by_col["7"] == {"eth1"}  # port ids: interface names on both peers
    assert by_col["8"] == {"INTRANET-DINKES", "UPLINK-DINKES-RTR"}  # the peers' aliases
    assert neighbours(lab, "dc-core") == {"dinkes-rtr", "disdik-rtr", "bappeda-rtr", "dc-srv1"}
    assert neighbours(lab, "dinkes-sw1") == {"dinkes-rtr"}  # PCs speak no LLDP


def test_cut_link_removes_neighbour_and_restore_brings_it_back(lab: Lab) -> None:
    idx = if_index(lab, "dinkes-rtr")["eth1"]
    lab.cut_link("dinkes-rtr", "dc-core", wait=False)
    try:
        assert lab.links[0].up is False
        wait_for(lambda: neighbours(lab, "dinkes-rtr"), lambda n: n == {"dinkes-sw1"},
                 "dinkes-rtr neighbours after cut")
        wait_for(lambda: neighbours(lab, "dc-core"), lambda n: "dinkes-rtr" not in n,
                 "dc-core neighbours after cut")
        wait_for(lambda: walk(lab, "dinkes-rtr", IF_OPER)[idx], lambda s: s == "2",
                 "ifOperStatus after cut", 10)  # carrier lost ...
        assert walk(lab, "dinkes-rtr", IF_ADMIN)[idx] == "1"  # ... but not shut down
    finally:
        lab.restore_link("dinkes-rtr", "dc-core", wait=False)
    wait_for(lambda: neighbours(lab, "dinkes-rtr"), lambda n: n == {"dc-core", "dinkes-sw1"},
             "dinkes-rtr neighbours after restore")
    wait_for(lambda: walk(lab, "dinkes-rtr", IF_OPER)[idx], lambda s: s == "1",
             "ifOperStatus after restore", 10)
    # with wait=True (the default) the change is visible in SNMP when the call returns
    lab.cut_link("disdik-rtr", "dc-core")
    disdik_eth1 = if_index(lab, "disdik-rtr")["eth1"]
    try:
        assert neighbours(lab, "disdik-rtr") == set()
        assert walk(lab, "disdik-rtr", IF_OPER)[disdik_eth1] == "2"
    finally:
        lab.restore_link("disdik-rtr", "dc-core")
    assert neighbours(lab, "disdik-rtr") == {"dc-core"}
    assert walk(lab, "disdik-rtr", IF_OPER)[disdik_eth1] == "1"


def test_add_and_remove_devices_at_runtime(lab: Lab) -> None:
    sw2 = lab.add_device("dinkes-sw2", "DINKES", links=["dinkes-sw1"], role="switch",
                         wait=False)
    rtr = lab.add_device(DeviceSpec("dinsos-rtr", "DINSOS", "router", ssh="cisco_ios",
                                    location="Dinas Sosial"), links=["dc-core"], wait=False)
    assert sw2 is not None and rtr is not None
    assert get(lab, "dinsos-rtr", SYS_NAME, v3=True) == "dinsos-rtr"
    wait_for(lambda: neighbours(lab, "dinkes-sw1"), lambda n: n == {"dinkes-rtr", "dinkes-sw2"},
             "dinkes-sw1 neighbours after add")
    wait_for(lambda: neighbours(lab, "dc-core"), lambda n: "dinsos-rtr" in n,
             "dc-core neighbours after add")
    assert neighbours(lab, "dinsos-rtr") == {"dc-core"}
    # the new router got a /30 to dc-core; the data plane works across it
    addr = next(a for a in walk(lab, "dinsos-rtr", IP_AD_ENT_ADDR).values()
                if a.startswith("10.253.24"))
    peer = addr.rsplit(".", 1)[0] + "." + str(int(addr.rsplit(".", 1)[1]) - 1)
    assert lab.run_in("dinsos-rtr", ["ping", "-c1", "-W2", peer]).returncode == 0
    assert rtr.ssh is not None and rtr.ssh.platform == "cisco_ios"
    with ConnectHandler(device_type="cisco_ios", host=rtr.ssh.host, port=rtr.ssh.port,
                        username=rtr.ssh.username, password=rtr.ssh.password.value(),
                        timeout=30) as conn:
        assert conn.find_prompt() == "dinsos-rtr>"

    sw1_port = next(lk.a_port if lk.a == "dinkes-sw1" else lk.b_port for lk in lab.links
                    if {lk.a, lk.b} == {"dinkes-sw1", "dinkes-sw2"})
    lab.remove_device("dinsos-rtr", wait=False)
    wait_for(lambda: neighbours(lab, "dc-core"), lambda n: "dinsos-rtr" not in n,
             "dc-core neighbours after remove")
    lab.remove_device("dinkes-sw2")  # wait=True: SNMP shows the change on return
    assert neighbours(lab, "dinkes-sw1") == {"dinkes-rtr"}
    assert walk(lab, "dinkes-sw1", IF_OPER)[if_index(lab, "dinkes-sw1")[sw1_port]] == "2"
    assert set(lab.devices) == {d.name for d in default_spec().devices if d.role != "host"}
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{lab.lab_id}-dinsos-rtr" not in ns and f"{lab.lab_id}-dinkes-sw2" not in ns
    with pytest.raises(LabError, match="no device 'dinsos-rtr'"):
        lab.remove_device("dinsos-rtr")


@pytest.mark.parametrize(("platform", "command", "expect", "enable"), [
    ("cisco_ios", "show version", "Cisco IOS", True),
    ("arista_eos", "show version", "Software image version", True),
    ("huawei_vrp", "display version", "Huawei Versatile Routing Platform", False),
    ("juniper_junos", "show version", "JUNOS", False),
    ("mikrotik_routeros", "system routerboard print", "routerboard: yes", False),
])
def test_fakenos_answers_over_ssh(lab: Lab, platform: str, command: str, expect: str,
                                  enable: bool) -> None:
    ep = lab.fakenos[platform]
    assert ep.host == lab.devices[ep.device].mgmt_ip and ep.port == 22
    with ConnectHandler(device_type=platform, host=ep.host, port=ep.port,
                        username=ep.username, password=ep.password.value(), secret="",
                        timeout=30) as conn:
        if enable:
            conn.enable()
        assert ep.device in conn.find_prompt()
        assert expect in conn.send_command(command)


def test_fakenos_rejects_wrong_password(lab: Lab) -> None:
    ep = lab.fakenos["huawei_vrp"]
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(ep.host, ep.port, ep.username, password="wrong", timeout=10,
                       look_for_keys=False, allow_agent=False)
    client.close()


def _ssh(host: str, port: int, user: str, **auth: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(host, port, user, timeout=10, look_for_keys=False, allow_agent=False,
                   **auth)
    return client


def test_openssh_accepts_the_lab_user_by_password_and_key(lab: Lab) -> None:
    ep = lab.openssh
    assert ep is not None and ep.device == "dc-srv1" and ep.key_file is not None
    for auth in ({"password": ep.password.value()}, {"key_filename": str(ep.key_file)}):
        client = _ssh(ep.host, ep.port, ep.username, **auth)
        try:
            transport = client.get_transport()
            assert transport is not None and transport.remote_version.startswith(
                "SSH-2.0-OpenSSH")
            _, out, _ = client.exec_command("id -un; ip -4 -o addr show dev eth1")
            text = out.read().decode()
            assert text.splitlines()[0] == ep.username
            assert "10.253.1.10/24" in text  # runs inside the server's namespace
        finally:
            client.close()
    with pytest.raises(paramiko.AuthenticationException):
        _ssh(ep.host, ep.port, ep.username, password="wrong-password")


def test_data_plane_routes_from_a_pd_pc_to_the_data_centre(lab: Lab) -> None:
    r = lab.run_in("dinkes-pc1", ["ping", "-c1", "-W2", "10.253.1.10"], check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    r = lab.run_in("dinkes-pc1", ["ping", "-c1", "-W1", lab.mgmt_gateway], check=False)
    assert r.returncode != 0  # no route from the data plane into the management network


def test_state_names_credential_files_not_values(lab: Lab) -> None:
    state = lab.state()
    text = json.dumps(state)
    for secret in (lab.snmp.community, lab.snmp.auth_key, lab.snmp.priv_key,
                   lab.fakenos["cisco_ios"].password):
        assert secret.value() not in text
        assert str(secret.path) in text
        assert secret.path.stat().st_mode & 0o077 == 0
        assert secret.value() not in repr(secret)
    assert state["devices"]["dinkes-rtr"]["pd"] == "DINKES"
    assert state["snmp"]["v3_user"] == "spbe-ro"


# --------------------------------------------------------------------------- lifecycle


def test_second_lab_is_isolated_and_stop_removes_everything(lab: Lab) -> None:
    other = Lab.start(minimal_spec(), timeout=60)
    try:
        assert other.lab_id != lab.lab_id
        assert not other.mgmt_network.overlaps(lab.mgmt_network)
        assert get(other, "r1", SYS_NAME) == "r1"
        assert neighbours(other, "r1") == {"r2"}
        assert lab_traces(other.lab_id)  # it made namespaces, processes, a user, a dir
    finally:
        other.stop()
    other.stop()  # idempotent
    assert lab_traces(other.lab_id) == []
    assert get(lab, "dc-core", SYS_NAME) == "dc-core"  # the first lab is untouched


def _our_lab_ids() -> set[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    return {n.split("-")[0] for n in ns if n.startswith(f"spbe{os.getpid()}n")}


def test_failed_start_leaves_nothing_behind(lab: Lab) -> None:
    before = _our_lab_ids()
    with pytest.raises(LabError, match=r"not ready after 0s(.|\n)*lldpd"):
        Lab.start(minimal_spec(), timeout=0.01)
    assert _our_lab_ids() == before
    leftovers = [p for p in LAB_BASE.iterdir() if p.name.startswith(f"spbe{os.getpid()}n")
                 and p.name not in before]
    assert leftovers == []


def test_cleanup_stale_removes_a_killed_owners_lab(lab: Lab) -> None:
    code = ("import os, signal; from tests.netlab import Lab, minimal_spec; "
            "lab = Lab.start(minimal_spec()); print(lab.lab_id, flush=True); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == -signal.SIGKILL, r.stderr
    dead_id = r.stdout.strip()
    wait_for(lambda: [t for t in lab_traces(dead_id) if t.startswith("process")],
             lambda procs: procs == [], "daemons of the killed owner (pdeathsig)", 10)
    assert any(t.startswith("netns") for t in lab_traces(dead_id))  # left behind
    removed = cleanup_stale()
    assert dead_id in removed and lab.lab_id not in removed
    assert lab_traces(dead_id) == []
    assert get(lab, "dc-core", SYS_NAME) == "dc-core"


def test_cli_up_and_down(lab: Lab, tmp_path: Path) -> None:
    state_file = tmp_path / "lab.json"
    cli = [sys.executable, "-m", "tests.netlab"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([*cli, "up", "--state-file", str(state_file), "--spec", "minimal"],
                       capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    assert printed == json.loads(state_file.read_text())
    lab_id = printed["lab_id"]
    try:
        community = Path(printed["snmp"]["community_file"]).read_text().strip()
        assert community not in r.stdout
        r1 = printed["devices"]["r1"]
        out = snmp("snmpget", ["-v2c", "-c", community], r1["mgmt_ip"], SYS_NAME).stdout
        assert '"r1"' in out
        assert printed["fakenos"]["cisco_ios"]["device"] == "r1"
        assert printed["openssh"]["device"] == "r2"
        r = subprocess.run([*cli, "up", "--state-file", str(state_file)], capture_output=True,
                           text=True, timeout=60, cwd=REPO, env=env)
        assert r.returncode == 1 and "still up" in r.stderr
    finally:
        r = subprocess.run([*cli, "down", "--state-file", str(state_file)],
                           capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr
    assert f"netlab {lab_id} down" in r.stdout
    assert not state_file.exists()
    assert lab_traces(lab_id) == []
    r = subprocess.run([*cli, "down", "--state-file", str(state_file)], capture_output=True,
                       text=True, timeout=60, cwd=REPO, env=env)
    assert r.returncode == 0 and "nothing to stop" in r.stdout
