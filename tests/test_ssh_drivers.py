"""Integration: the SSH drivers against real SSH servers on 127.0.0.1.

* FakeNOS (PyPI ``fakenos``) emulates Cisco IOS, Arista EOS, Huawei VRP, Juniper Junos and
  MikroTik RouterOS over real SSH (paramiko server); NAPALM/netmiko log in and send commands
  exactly as they would to a device. Emulator fixes, as data: FakeNOS's VRP and RouterOS
  prompts are made the real ones (``<name>``, ``[user@name] >``), RouterOS's login suffix
  (``+ct511w4098h``) is accepted, and commands FakeNOS lacks (the configurations, IOS
  ``show arp``, the routing tables, the RouterOS tables) answer with recorded output from
  ``tests/data/cli/``. IOS ``show ip route`` is replaced too: FakeNOS's own has no default
  route (though it names a gateway of last resort).
* A real OpenSSH ``sshd`` (Debian ``openssh-server``, see scripts/install-netlab-deps.sh)
  serves the Linux driver, with a throw-away host key and client key.

The test network in tests/netlab.py runs FakeNOS inside network namespaces with canned
output only; these tests need per-device command overrides, so they start their own servers.
"""

from __future__ import annotations

import copy
import getpass
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import DeviceCfg
from agent.drivers import DriverError, eos, huawei_vrp, ios, junos, linux, routeros
from contract.report import ConfigSnapshot, DeviceObservation, PollStatus

pytestmark = [
    pytest.mark.integration,
    # FakeNOS's server threads raise when a client leaves mid-handshake (wrong password,
    # timeouts): emulator noise, not driver errors; driver errors fail the assertions.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning"),
]

LOOPBACK = "127.0.0.1"
DATA = Path(__file__).parent / "data" / "cli"
USER = "netops"
PASSWORD = "Lab-" + secrets.token_urlsafe(12)
PW_ENV = "SPBE_TEST_SSH_PASSWORD"
BAD_PW_ENV = "SPBE_TEST_SSH_BAD_PASSWORD"
BAD_PASSWORD = "Wrong-" + secrets.token_urlsafe(12)


def slug(command: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", command).strip("_")


def recorded(platform: str, command: str) -> str:
    return (DATA / platform / f"{slug(command)}.txt").read_text(encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


# --- FakeNOS lab -------------------------------------------------------------------------------


def _yaml_nos(platform: str, name: str, prompt: str, extra: dict[str, str]) -> dict[str, Any]:
    """A FakeNOS platform re-prompted (``{base_prompt}>`` -> ``prompt``) with extra commands."""
    from fakenos.plugins.nos import nos_plugins  # type: ignore[import-untyped]

    path = next(p for p in nos_plugins[platform] if p.endswith(".yaml"))
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    old = data["initial_prompt"]
    commands: dict[str, Any] = {}
    nos: dict[str, Any] = {"name": name, "initial_prompt": prompt, "commands": commands}
    for cmd, spec in data["commands"].items():
        spec = copy.deepcopy(spec)
        p = spec.get("prompt")
        if isinstance(p, list):
            spec["prompt"] = [prompt if x == old else x for x in p]
        elif p == old:
            spec["prompt"] = prompt
        commands[cmd] = spec
    for cmd, out in extra.items():
        commands[cmd] = {"output": out, "help": cmd}
    return nos


ROUTEROS_COMMANDS = ["/system identity print", "/system resource print",
                     "/system routerboard print", "/interface print detail without-paging",
                     "/ip address print without-paging", "/ip arp print without-paging",
                     "/ip neighbor print detail without-paging",
                     "/ip route print terse without-paging", "/export"]


def _routeros_nos() -> dict[str, Any]:
    cmds: dict[str, Any] = {cmd: {"output": recorded("routeros", cmd), "help": cmd}
                            for cmd in ROUTEROS_COMMANDS}
    cmds["_default_"] = {"output": "bad command name", "help": "unknown"}
    return {"name": "routeros_lab", "initial_prompt": f"[{USER}@{{base_prompt}}] > ",
            "commands": cmds}


def _extra(commands: dict[str, str]) -> dict[str, Any]:
    return {"configuration": {"commands": {c: {"output": o, "help": c}
                                           for c, o in commands.items()}}}


JUNK = "\x00\x17\x1b[?1h" + "".join(chr(c) for c in range(1, 31)) * 8 + "\ufffd\ufffd"


class Lab:
    """One FakeNOS instance (in this process, threads) with one host per test device."""

    def __init__(self) -> None:
        from fakenos import FakeNOS  # type: ignore[import-untyped]

        self.ports = {n: free_port() for n in ("ios", "eos", "eos_garbage", "huawei_vrp",
                                               "junos", "routeros")}
        vrp = _yaml_nos("huawei_vrp", "huawei_vrp_lab", "<{base_prompt}>", {
            "display current-configuration":
                recorded("huawei_vrp", "display current-configuration"),
            "display ip routing-table": recorded("huawei_vrp", "display ip routing-table")})
        hosts: dict[str, Any] = {
            "kantor-rtr": {"port": self.ports["ios"], "platform": "cisco_ios",
                           "nos": {"plugin": "cisco_ios", **_extra({
                               "show arp | exclude Incomplete":
                                   recorded("ios", "show arp | exclude Incomplete"),
                               "show ip route": recorded("ios", "show ip route")})}},
            "arista_eos": {"port": self.ports["eos"], "platform": "arista_eos"},
            "eos-rusak": {"port": self.ports["eos_garbage"], "platform": "arista_eos",
                          "nos": {"plugin": "arista_eos", **_extra({
                              "show interfaces": recorded("eos", "show interfaces")[:700],
                              "show lldp neighbors detail": JUNK,
                              "show ip arp": "Hostname: {arista_eos}\nFQDN: garbage"})}},
            "DINKES-AR6120": {"port": self.ports["huawei_vrp"],
                              "nos": {"plugin": "huawei_vrp_lab"}},
            "lab": {"port": self.ports["junos"], "platform": "juniper_junos",
                    "nos": {"plugin": "juniper_junos", **_extra({
                        "show configuration": recorded("junos", "show configuration"),
                        "show route table inet.0": recorded("junos",
                                                            "show route table inet.0")})}},
            "RTR-DISKOMINFO-BOGOR": {"port": self.ports["routeros"],
                                     "username": f"{USER}+ct511w4098h",
                                     "nos": {"plugin": "routeros_lab"}},
        }
        inventory = {"default": {"username": USER, "password": PASSWORD}, "hosts": hosts}
        self.net = FakeNOS(inventory=inventory, plugins=[vrp, _routeros_nos()])

    def __enter__(self) -> Lab:
        self.net.start()
        for port in self.ports.values():
            _wait_port(port)
        return self

    def __exit__(self, *exc: object) -> None:
        self.net.stop()


def _listening(port: int) -> bool:
    """True if a TCP socket listens on 127.0.0.1:port (read from /proc, so the server does
    not see a connection that never speaks SSH)."""
    want = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[1] == want and f[3] == "0A":  # 0A = LISTEN
            return True
    return False


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout}s")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab() as running:
        yield running


@pytest.fixture(autouse=True)
def _passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PW_ENV, PASSWORD)
    monkeypatch.setenv(BAD_PW_ENV, BAD_PASSWORD)


def device(platform: str, port: int, *, pw_env: str = PW_ENV, timeout_s: float = 20.0,
           username: str = USER, key_file: Path | None = None,
           name: str = "dev1") -> DeviceCfg:
    ssh: dict[str, Any] = {"port": port, "username": username, "timeout_s": timeout_s}
    if key_file is not None:
        ssh["key_file"] = str(key_file)
    else:
        ssh["password"] = {"env": pw_env}
    return DeviceCfg.model_validate({"name": name, "host": LOOPBACK, "platform": platform,
                                     "ssh": ssh})


def default_routes(obs: DeviceObservation) -> list[tuple[str | None, str | None]]:
    """(gateway, interface) of each default route: what the collector shows as the uplink."""
    return [(r.gateway, r.interface) for r in obs.routes if r.destination == "0.0.0.0/0"]


def assert_no_secret(obj: DeviceObservation | ConfigSnapshot | str, *values: str) -> None:
    text = obj if isinstance(obj, str) else obj.model_dump_json()
    for v in (PASSWORD, BAD_PASSWORD, *values):
        assert v not in text


# --- FakeNOS devices ---------------------------------------------------------------------------


def test_ios_napalm_poll_and_config(lab: Lab) -> None:
    dev = device("ios", lab.ports["ios"])
    obs = ios.factory().poll(dev)
    assert obs.status == PollStatus.OK, obs.error
    assert obs.driver == "napalm:ios"
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version) == \
        ("kantor-rtr", "Cisco", "CSR1000V", "9ESGOBARV9D", "17.03.01a")
    assert obs.uptime_s == 149520.0
    ifs = {i.name: i for i in obs.interfaces}
    assert ifs["TenGigabitEthernet1/1/1"].description == "vss"
    assert ifs["TenGigabitEthernet1/1/1"].mac == "6c:41:6a:ba:b4:40"
    assert ifs["TenGigabitEthernet1/1/1"].oper_up is True
    assert ifs["FastEthernet1"].oper_up is False
    assert ifs["TenGigabitEthernet1/1/1"].in_octets is not None
    assert any(a.address == "10.1.1.1" and a.prefix_len == 30 for a in obs.addresses)
    [nbr] = obs.lldp_neighbors
    assert (nbr.local_port, nbr.remote_system_name, nbr.remote_chassis_id) == \
        ("GigabitEthernet0/1/7", "SEPC8F9F9D61BC2", "10.10.0.1")
    assert {(a.ip, a.mac) for a in obs.arp} >= {("172.16.233.229", "00:00:0c:59:f8:92")}
    assert default_routes(obs) == [("10.1.1.2", "GigabitEthernet0/0/0")]
    assert len(obs.routes) == 8 and obs.notes == []
    assert_no_secret(obs)

    snap = ios.factory().get_config(dev)
    assert snap is not None and snap.driver == "napalm:ios"
    assert "hostname kantor-rtr" in snap.content
    assert re.search(r"^username cisco privilege 15 password 0 <masked:[0-9a-f]{8}>$",
                     snap.content, re.M)
    assert "$1$clqS$3CzLxkeHVJ9OYW83DOjuN/" not in snap.content
    assert snap.masked_secrets >= 2
    assert ios.factory().get_config(dev).sha256 == snap.sha256  # type: ignore[union-attr]


def test_eos_poll_and_config(lab: Lab) -> None:
    dev = device("eos", lab.ports["eos"])
    obs = eos.factory().poll(dev)
    assert obs.status == PollStatus.OK, obs.error
    assert obs.driver == "netmiko:arista_eos"
    # show hostname of this emulator answers "{arista_eos}": the prompt name is used instead
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version) == \
        ("arista_eos", "Arista", "cEOSLab", "JPE13120702", "4.26.0F-21792469.4260F")
    ifs = {i.name: i for i in obs.interfaces}
    assert ifs["Ethernet1"].description == "Test interface Et1"
    assert ifs["Ethernet1"].in_octets == 381190
    assert ifs["Management0"].in_discards == 47
    assert {(n.local_port, n.remote_system_name) for n in obs.lldp_neighbors} >= \
        {("Ethernet1", "spine2.company.com")}
    assert ("172.22.0.2", "00:4c:62:19:a0:f3", "Ethernet1") in \
        {(a.ip, a.mac, a.interface) for a in obs.arp}
    assert any(r.destination == "10.1.31.100/32" and r.gateway == "192.168.17.5"
               for r in obs.routes)
    assert_no_secret(obs)

    snap = eos.factory().get_config(dev)
    assert snap is not None
    assert "hostname arista_eos" in snap.content
    assert re.search(r"^username nornir privilege 15 secret sha512 <masked:[0-9a-f]{8}>$",
                     snap.content, re.M)
    assert re.search(r"^snmp-server host 1.2.3.4 version 2c <masked:", snap.content, re.M)
    assert "$6$EkriX8oB5g3Midq4" not in snap.content
    assert "! Command: show running-config" not in snap.content and snap.ignored_lines == 1


def test_eos_garbage_output_is_partial_with_parse_errors(lab: Lab) -> None:
    obs = eos.factory().poll(device("eos", lab.ports["eos_garbage"]))
    assert obs.status == PollStatus.PARTIAL
    assert obs.error_type == "parse"
    assert obs.error is not None and "lldp" in obs.error and "not text" in obs.error
    assert obs.os_version == "4.26.0F-21792469.4260F"  # the good parts are still there
    assert obs.lldp_neighbors == [] and obs.arp == []
    assert len(obs.interfaces) <= 1  # truncated after the first interface


def test_huawei_vrp_poll_and_config(lab: Lab) -> None:
    dev = device("huawei_vrp", lab.ports["huawei_vrp"])
    obs = huawei_vrp.factory().poll(dev)
    assert obs.status == PollStatus.OK, obs.error
    assert obs.driver == "netmiko:huawei"
    assert (obs.hostname, obs.vendor, obs.model, obs.serial) == \
        ("DINKES-AR6120", "Huawei", "ATN 910C-B", "21500104792SM8504636")
    assert obs.os_version is not None and obs.os_version.startswith("8.180")
    ifs = {i.name: i for i in obs.interfaces}
    assert ifs["GigabitEthernet0/0/2"].oper_up is True
    assert ifs["GigabitEthernet0/0/0"].mac == "fc:73:fb:9e:60:1c"
    [nbr] = obs.lldp_neighbors
    assert (nbr.local_port, nbr.remote_system_name, nbr.remote_mgmt_address) == \
        ("XGigabitEthernet0/0/1", "ROUTER2", "169.254.1.2")
    assert ("10.10.10.2", "b8:d6:f6:ff:73:9b") in {(a.ip, a.mac) for a in obs.arp}
    assert default_routes(obs) == [("10.10.99.254", "Vlanif99")]
    assert len(obs.routes) == 8 and obs.notes == []
    assert_no_secret(obs)

    snap = huawei_vrp.factory().get_config(dev)
    assert snap is not None
    assert "sysname DINKES-AR6120" in snap.content
    assert re.search(r"^ local-user admin password irreversible-cipher <masked:[0-9a-f]{8}>$",
                     snap.content, re.M)
    assert "%^%#rJ5T1uI}lGz]t4%B" not in snap.content and "$1c$K]u7Tr3" not in snap.content
    assert "!Software Version" not in snap.content and snap.ignored_lines == 3


def test_junos_poll_and_config(lab: Lab) -> None:
    dev = device("junos", lab.ports["junos"])
    obs = junos.factory().poll(dev)
    assert obs.status == PollStatus.OK, obs.error
    assert obs.driver == "netmiko:juniper_junos"
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version) == \
        ("lab", "Juniper", "ex4550-32f", "A0000", "13.2X51-D35.3")
    assert obs.uptime_s is not None and obs.uptime_s > 180 * 86400
    ifs = {i.name: i for i in obs.interfaces}
    assert ifs["ge-0/0/0"].description == "Test" and ifs["ge-0/0/0"].oper_up is True
    assert any(a.interface == "ge-0/0/0.2036" and a.address == "10.10.199.180"
               and a.prefix_len == 29 for a in obs.addresses)
    assert {(n.local_port, n.remote_system_name) for n in obs.lldp_neighbors} == \
        {("ge-0/0/1", "vmx2"), ("ge-0/0/0", "vmx3")}
    assert len(obs.arp) == 9
    assert default_routes(obs) == [("10.10.199.177", "ge-0/0/0.2036")]
    assert len(obs.routes) == 7 and obs.notes == []

    snap = junos.factory().get_config(dev)
    assert snap is not None
    assert re.search(r'encrypted-password "<masked:[0-9a-f]{8}>";', snap.content)
    assert re.search(r"community <masked:[0-9a-f]{8}> \{", snap.content)
    assert "community CUST-A members 65000:100;" in snap.content  # not an SNMP secret
    assert "$9$" not in snap.content and "k0munitas-Rahasia" not in snap.content
    assert "## Last commit" not in snap.content


def test_routeros_poll_and_config(lab: Lab) -> None:
    dev = device("routeros", lab.ports["routeros"])
    obs = routeros.factory().poll(dev)
    assert obs.status == PollStatus.OK, obs.error
    assert obs.driver == "netmiko:mikrotik_routeros"
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version) == \
        ("RTR-DISKOMINFO-BOGOR", "MikroTik", "RB750Gr3", "CC1E0E8A1B2F", "6.49.10")
    assert len(obs.interfaces) == 7 and len(obs.addresses) == 4
    assert {n.remote_system_name for n in obs.lldp_neighbors} == {"SW-CORE-LT2", "AP-LOBBY"}
    # the disabled, inactive and policy-routing defaults are not the uplink
    assert default_routes(obs) == [("10.10.5.6", "ether5-mgmt")]
    assert len(obs.routes) == 9 and obs.notes == []

    snap = routeros.factory().get_config(dev)
    assert snap is not None
    assert "set name=RTR-DISKOMINFO-BOGOR" in snap.content
    for secret in ("Telkom#2024", "Rahasia 123!", "IpsecS3cret", "komunitas-rahasia"):
        assert secret not in snap.content
    assert "by RouterOS" not in snap.content


def test_concurrent_polls_in_a_thread_pool(lab: Lab) -> None:
    """The devices collector runs drivers in threads: several at once must not interfere."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(ios, "ios", "kantor-rtr"), (eos, "eos", "arista_eos"),
            (huawei_vrp, "huawei_vrp", "DINKES-AR6120"),
            (routeros, "routeros", "RTR-DISKOMINFO-BOGOR"), (eos, "eos", "arista_eos")]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(mod.factory().poll, device(mod.PLATFORM, lab.ports[key],
                                                          name=f"d{i}"))
                   for i, (mod, key, _) in enumerate(jobs)]
        results = [f.result(timeout=120) for f in futures]
    for obs, (_, _, hostname) in zip(results, jobs, strict=True):
        assert obs.status == PollStatus.OK, (obs.device, obs.error)
        assert obs.hostname == hostname


@pytest.mark.parametrize("platform, key", [("ios", "ios"), ("eos", "eos"),
                                           ("routeros", "routeros")])
def test_wrong_password_is_auth_failure_without_the_password(lab: Lab, platform: str,
                                                             key: str) -> None:
    mod = {"ios": ios, "eos": eos, "routeros": routeros}[platform]
    dev = device(platform, lab.ports[key], pw_env=BAD_PW_ENV)
    obs = mod.factory().poll(dev)
    assert obs.status == PollStatus.FAILED
    assert obs.error_type == "auth", obs.error
    assert obs.error and USER in obs.error
    assert_no_secret(obs)
    with pytest.raises(DriverError) as exc:
        mod.factory().get_config(dev)
    assert exc.value.kind == "auth"
    assert_no_secret(str(exc.value))


def test_missing_password_env_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PW_ENV)
    obs = eos.factory().poll(device("eos", free_port()))
    assert obs.status == PollStatus.FAILED and obs.error_type == "config"
    assert obs.error is not None and PW_ENV in obs.error


# --- nothing there / not SSH -------------------------------------------------------------------


@pytest.mark.parametrize("mod", [ios, eos, linux], ids=["ios", "eos", "linux"])
def test_closed_port_is_refused_quickly(mod: Any) -> None:
    port = free_port()  # nothing listens here
    t0 = time.monotonic()
    obs = mod.factory().poll(device(mod.PLATFORM, port, timeout_s=5))
    assert time.monotonic() - t0 < 5
    assert obs.status == PollStatus.FAILED
    assert obs.error_type == "refused", obs.error
    assert_no_secret(obs)


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP listener that accepts and never says a word (not an SSH server)."""
    srv = socket.socket()
    srv.bind((LOOPBACK, 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join(5)
    for c in conns:
        c.close()
    srv.close()


@pytest.mark.parametrize("mod", [ios, eos, routeros, linux],
                         ids=["ios", "eos", "routeros", "linux"])
def test_silent_listener_times_out_within_the_timeout(mod: Any, silent_listener: int) -> None:
    timeout = 2.0
    t0 = time.monotonic()
    obs = mod.factory().poll(device(mod.PLATFORM, silent_listener, timeout_s=timeout))
    elapsed = time.monotonic() - t0
    assert obs.status == PollStatus.FAILED
    assert obs.error_type == "timeout", obs.error
    assert elapsed < 3 * timeout + 2, elapsed
    if mod is linux:  # no configuration to read: nothing is even connected
        assert mod.factory().get_config(device(mod.PLATFORM, silent_listener)) is None
        return
    with pytest.raises(DriverError) as exc:
        mod.factory().get_config(device(mod.PLATFORM, silent_listener, timeout_s=timeout))
    assert exc.value.kind == "timeout"


# --- Linux over a real OpenSSH server ----------------------------------------------------------


class Sshd:
    def __init__(self, workdir: Path) -> None:
        sshd = Path("/usr/sbin/sshd")
        keygen = shutil.which("ssh-keygen")
        if not sshd.exists() or keygen is None:
            raise RuntimeError("OpenSSH server missing: run scripts/install-netlab-deps.sh")
        self.dir = workdir
        self.user = getpass.getuser()
        self.port = free_port()
        for name in ("host_key", "client_key"):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f",
                            str(workdir / name)], check=True)
        self.client_key = workdir / "client_key"
        (workdir / "authorized_keys").write_text(
            (workdir / "client_key.pub").read_text(encoding="utf-8"), encoding="utf-8")
        cfg = workdir / "sshd_config"
        cfg.write_text("\n".join([
            f"Port {self.port}", f"ListenAddress {LOOPBACK}",
            f"HostKey {workdir / 'host_key'}", f"PidFile {workdir / 'sshd.pid'}",
            f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
            "PasswordAuthentication yes", "KbdInteractiveAuthentication no", "UsePAM no",
            "StrictModes no", "PermitRootLogin prohibit-password", f"AllowUsers {self.user}",
            "LogLevel ERROR", "MaxStartups 50", "",
        ]), encoding="utf-8")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.proc = subprocess.Popen([str(sshd), "-D", "-e", "-f", str(cfg)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(workdir / "sshd.log", "wb"))  # noqa: SIM115
        try:
            _wait_port(self.port)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("sshd did not start: "
                               + (workdir / "sshd.log").read_text(errors="replace")) from e

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        server.stop()


def test_linux_host_over_openssh(sshd: Sshd) -> None:
    dev = device("linux", sshd.port, username=sshd.user, key_file=sshd.client_key)
    obs = linux.factory().poll(dev)
    assert obs.status == PollStatus.OK, obs.error
    assert obs.driver == "ssh:linux" and obs.role == "host"
    assert obs.hostname == socket.gethostname()
    assert obs.sys_description is not None and obs.sys_description.startswith("Linux ")
    assert obs.sys_description.split()[1] == os.uname().release
    assert obs.os_version  # PRETTY_NAME of /etc/os-release
    assert obs.uptime_s is not None and obs.uptime_s > 0
    names = {i.name for i in obs.interfaces}
    local = subprocess.run(["ip", "-j", "route"], capture_output=True, text=True, check=True)
    local_routes = yaml.safe_load(local.stdout)
    default_dev = {r["dev"] for r in local_routes if r.get("dst") == "default"}
    assert names >= {"lo"} | default_dev
    lo = next(i for i in obs.interfaces if i.name == "lo")
    assert lo.admin_up is True and lo.mtu == 65536 and lo.in_octets is not None
    assert any(a.interface == "lo" and a.address == "127.0.0.1" and a.prefix_len == 8
               for a in obs.addresses)
    assert len([r for r in obs.routes if ":" not in r.destination]) == \
        len([r for r in local_routes if r.get("type") in (None, "unicast")])
    assert linux.factory().get_config(dev) is None


def test_linux_wrong_password_is_auth(sshd: Sshd) -> None:
    obs = linux.factory().poll(device("linux", sshd.port, username=sshd.user,
                                      pw_env=BAD_PW_ENV, timeout_s=10))
    assert obs.status == PollStatus.FAILED
    assert obs.error_type == "auth", obs.error
    assert_no_secret(obs)


def test_linux_missing_key_file_is_config_error(sshd: Sshd, tmp_path: Path) -> None:
    obs = linux.factory().poll(device("linux", sshd.port, username=sshd.user,
                                      key_file=tmp_path / "nope"))
    assert obs.status == PollStatus.FAILED and obs.error_type == "config"
