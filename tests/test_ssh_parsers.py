"""Unit: every SSH driver fed with recorded CLI output (tests/data/cli/<platform>/, see its
README), no network. The same ``collect`` code that runs against a device runs here against a
replay of what the device said; garbage, truncated and wrong output must give PARTIAL/FAILED
with error_type ``parse``, never an exception."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.config import DeviceCfg
from agent.drivers import REGISTRY, DriverError, eos, huawei_vrp, ios, junos, linux, routeros
from agent.drivers.ssh_common import (
    CISCO_REJECT,
    Collected,
    SshParams,
    check_output,
    classify,
    norm_mac,
    parse_textfsm,
    wrap_error,
)
from contract.report import DeviceObservation, PollStatus

DATA = Path(__file__).parent / "data" / "cli"
DEVICE = DeviceCfg.model_validate({"name": "dev1", "host": "192.0.2.10", "platform": "eos",
                                   "ssh": {"username": "netops",
                                           "password": {"env": "UNUSED"}}})
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
JUNK = "\x00\x01\x02\x1b[0m\x7f\x80\x81" * 40


def slug(command: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", command).strip("_")


class Replay:
    """A CliSession answering from recorded files; unknown commands get ``reject``."""

    def __init__(self, platform: str, reject: str, prompt: str | None = None,
                 override: dict[str, str] | None = None) -> None:
        self.dir = DATA / platform
        self.reject = reject
        self.prompt = prompt
        self.override = override or {}
        self.sent: list[str] = []

    def raw(self, command: str) -> str:
        self.sent.append(command)
        if command in self.override:
            return self.override[command]
        path = self.dir / f"{slug(command)}.txt"
        return path.read_text(encoding="utf-8") if path.exists() else self.reject


class ReplaySession(Replay):
    def __init__(self, driver: Any, platform: str, reject: str, **kw: Any) -> None:
        super().__init__(platform, reject, **kw)
        self.driver = driver

    def send(self, command: str) -> str:
        return check_output(command, self.raw(command), self.driver.reject)

    def prompt_name(self) -> str | None:
        return self.prompt


def run(driver: Any, session: Any) -> DeviceObservation:
    out = Collected()
    driver.collect_with(session, out) if hasattr(driver, "collect_with") else \
        driver.collect(session, out)
    return out.observation(DEVICE, "test", NOW, 0.0)


# --- per platform: real recorded output ------------------------------------------------------


def test_eos_recorded() -> None:
    d = eos.factory()
    s = ReplaySession(d, "eos", "% Invalid input", prompt="arista_eos")
    obs = run(d, s)
    assert obs.status == PollStatus.OK, obs.error
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version, obs.uptime_s) == \
        ("arista_eos", "Arista", "cEOSLab", "JPE13120702", "4.26.0F-21792469.4260F", 480.0)
    assert [i.name for i in obs.interfaces] == ["Ethernet1", "Ethernet2", "Ethernet3",
                                                "Ethernet4", "Loopback0", "Management0",
                                                "Vlan100", "Vlan500"]
    et1 = obs.interfaces[0]
    assert (et1.mac, et1.mtu, et1.speed_mbps, et1.oper_up, et1.in_octets) == \
        ("aa:c1:ab:3b:1c:7a", 1500, 1000.0, True, 381190)
    assert len(obs.addresses) == 4 and obs.addresses[0].address == "10.0.1.4"
    assert len(obs.lldp_neighbors) == 20
    assert obs.lldp_neighbors[0].remote_port_id == "Ethernet1"
    assert obs.lldp_neighbors[0].remote_mgmt_address is None  # a MAC, not an IP address
    assert [a.interface for a in obs.arp] == ["Vlan101", "Vlan1000", "Ethernet1", "Vlan1"]
    assert all(r.gateway is None or r.gateway[0].isdigit() for r in obs.routes)
    assert "show inventory" in s.sent  # show version had no serial


def test_eos_hostname_falls_back_to_prompt_only_when_invalid() -> None:
    d = eos.factory()
    s = ReplaySession(d, "eos", "% Invalid input", prompt="prompt-name",
                      override={"show hostname": "Hostname: core-sw1\nFQDN:     core-sw1.lan\n"})
    assert run(d, s).hostname == "core-sw1"


def test_huawei_vrp_recorded() -> None:
    d = huawei_vrp.factory()
    obs = run(d, ReplaySession(d, "huawei_vrp", "Error: Unrecognized command found at '^'",
                               prompt="DINKES-AR6120"))
    assert obs.status == PollStatus.OK, obs.error
    assert (obs.hostname, obs.vendor, obs.model, obs.serial) == \
        ("DINKES-AR6120", "Huawei", "ATN 910C-B", "21500104792SM8504636")
    assert obs.os_version == "8.180 (ATN 910C-B V300R003C10SPC500)"
    assert obs.uptime_s == (358 * 86400 + 16 * 3600 + 59 * 60)
    assert len(obs.interfaces) == 6
    g2 = next(i for i in obs.interfaces if i.name == "GigabitEthernet0/0/2")
    assert (g2.oper_up, g2.speed_mbps, g2.mtu) == (True, 1000.0, 9596)
    [n] = obs.lldp_neighbors
    assert n.remote_capabilities == ["bridge", "router"]
    assert n.remote_system_description.startswith("Huawei Switch S6730-S24X6Q")
    assert [a.interface for a in obs.arp] == ["MEth0/0/1", "Vlanif10", "XGE0/0/1", "Vlanif20",
                                              "XGE0/0/1"]


def test_junos_recorded() -> None:
    d = junos.factory()
    obs = run(d, ReplaySession(d, "junos", "syntax error, expecting <command>."))
    assert obs.status == PollStatus.OK, obs.error
    assert (obs.hostname, obs.model, obs.serial, obs.os_version) == \
        ("lab", "ex4550-32f", "A0000", "13.2X51-D35.3")
    # booted 2021-02-26 18:30:12, now 2021-08-31 12:29:34
    assert obs.uptime_s == (datetime(2021, 8, 31, 12, 29, 34)
                            - datetime(2021, 2, 26, 18, 30, 12)).total_seconds()
    assert [i.name for i in obs.interfaces][:2] == ["ge-0/0/0", "gr-0/0/0"]
    assert obs.interfaces[0].mtu == 1514 and obs.interfaces[1].mtu is None  # "Unlimited"
    assert [(a.interface, a.address, a.prefix_len) for a in obs.addresses] == \
        [("ge-0/0/0.2036", "10.10.199.180", 29)]
    assert obs.arp[0].mac == "00:00:00:00:00:04"


def test_routeros_recorded() -> None:
    d = routeros.factory()
    obs = run(d, ReplaySession(d, "routeros", "bad command name print (line 1 column 9)"))
    assert obs.status == PollStatus.OK, obs.error
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version) == \
        ("RTR-DISKOMINFO-BOGOR", "MikroTik", "RB750Gr3", "CC1E0E8A1B2F", "6.49.10")
    assert obs.uptime_s == 3 * 604800 + 2 * 86400 + 4 * 3600 + 12 * 60 + 33
    by_name = {i.name: i for i in obs.interfaces}
    assert by_name["ether1-wan"].description == "WAN Telkom Astinet"
    assert by_name["ether4"].admin_up is False and by_name["ether2"].oper_up is False
    assert by_name["pppoe-telkom"].mac is None
    assert (obs.addresses[0].address, obs.addresses[0].prefix_len) == ("203.0.113.18", 30)
    assert len(obs.arp) == 4  # the incomplete entry without a MAC is left out
    assert obs.lldp_neighbors[0].remote_port_id == "bridge/ether24"


def test_routeros_chr_has_no_routerboard() -> None:
    d = routeros.factory()
    obs = run(d, ReplaySession(d, "routeros", "bad command name", override={
        "/system routerboard print": "  routerboard: no\n"}))
    assert obs.status == PollStatus.OK and obs.serial is None and obs.model == "hEX"


class ReplayNetmiko(Replay):
    """What NAPALM's IOS driver needs of a netmiko connection, answering from files."""

    def send_command(self, command: str, **_: Any) -> str:
        return self.raw(command)


def napalm_ios(override: dict[str, str] | None = None) -> Any:
    from napalm import get_network_driver  # type: ignore[import-untyped]

    dev = get_network_driver("ios")("192.0.2.10", "netops", "unused")
    dev.device = ReplayNetmiko("ios", "% Invalid input detected at '^' marker.",
                               override=override)
    return dev


def test_ios_napalm_getters_on_recorded_output() -> None:
    out = Collected()
    ios.IosDriver().collect(napalm_ios(), out)
    obs = out.observation(DEVICE, "napalm:ios", NOW, 0.0)
    assert obs.status == PollStatus.OK, obs.error
    assert (obs.hostname, obs.vendor, obs.model, obs.serial, obs.os_version) == \
        ("kantor-rtr", "Cisco", "CSR1000V", "9ESGOBARV9D", "17.03.01a")
    assert len(obs.interfaces) == 16
    assert len(obs.arp) == 7 and obs.arp[-1].interface is None  # static entry, no interface
    assert obs.lldp_neighbors[0].remote_capabilities == ["bridge", "telephone"]


def test_ios_facts_from_napalm_prefers_napalm_and_fills_gaps() -> None:
    f = {"hostname": "rtr1", "vendor": "Cisco", "model": "C2960X-48TS-L",
         "serial_number": "FOC1234X0AB", "uptime": 3600.0,
         "os_version": "C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E4, RELEASE"}
    assert ios.facts_from_napalm(f)["os_version"] == "15.2(7)E4"
    gaps = dict(f, model="Unknown", os_version="Virtual XE Software \\")
    sv = (DATA / "ios" / "show_version.txt").read_text()
    got = ios.facts_from_napalm(gaps, sv)
    assert (got["model"], got["serial"], got["os_version"]) == \
        ("CSR1000V", "FOC1234X0AB", "17.03.01a")


# --- garbage, truncation, wrong output: parse errors, never exceptions -----------------------

CLI_DRIVERS = [(eos, "eos", "% Invalid input"), (huawei_vrp, "huawei_vrp", "Error: Wrong"),
               (junos, "junos", "syntax error"), (routeros, "routeros", "bad command name")]


@pytest.mark.parametrize("mod, platform, reject", CLI_DRIVERS,
                         ids=[p for _, p, _ in CLI_DRIVERS])
def test_binary_junk_everywhere_is_failed_parse(mod: Any, platform: str, reject: str) -> None:
    d = mod.factory()

    class Junk(ReplaySession):
        def raw(self, command: str) -> str:
            return JUNK

    obs = run(d, Junk(d, platform, reject))
    assert obs.status == PollStatus.FAILED
    assert obs.error_type == "parse"
    assert obs.error is not None and "not text" in obs.error


@pytest.mark.parametrize("mod, platform, reject", CLI_DRIVERS,
                         ids=[p for _, p, _ in CLI_DRIVERS])
def test_wrong_output_for_every_command_is_failed(mod: Any, platform: str, reject: str) -> None:
    """The answer to another command (a prompt mix-up) must not parse into facts."""
    d = mod.factory()

    class Wrong(ReplaySession):
        def raw(self, command: str) -> str:
            return "Interface  Status  Protocol\nfoo  up  up\n% truncated"

    obs = run(d, Wrong(d, platform, reject))
    assert obs.status == PollStatus.FAILED
    assert obs.error_type in ("parse", "unsupported")
    assert obs.hostname is None and obs.os_version is None


@pytest.mark.parametrize("mod, platform, reject, command", [
    (eos, "eos", "% Invalid input", "show lldp neighbors detail"),
    (huawei_vrp, "huawei_vrp", "Error: Wrong", "display lldp neighbor"),
    (junos, "junos", "syntax error", "show arp no-resolve"),
    (routeros, "routeros", "bad command name", "/ip address print without-paging"),
], ids=["eos", "huawei_vrp", "junos", "routeros"])
def test_one_truncated_table_is_partial(mod: Any, platform: str, reject: str,
                                        command: str) -> None:
    d = mod.factory()
    text = (DATA / platform / f"{slug(command)}.txt").read_text()
    cut = text[: len(text) // 3] + "\x00\x00\x00\x00\x00"  # cut mid-record, NULs after
    obs = run(d, ReplaySession(d, platform, reject, prompt="x", override={command: JUNK + cut}))
    assert obs.status == PollStatus.PARTIAL
    assert obs.error_type == "parse"
    assert obs.os_version  # the rest was read


def test_truncated_show_version_is_parse_error_not_crash() -> None:
    d = eos.factory()
    obs = run(d, ReplaySession(d, "eos", "% Invalid input", prompt="sw",
                               override={"show version": "Arista DCS-7280SR-48C6-F\nHardw"}))
    assert obs.status == PollStatus.PARTIAL
    assert obs.error is not None and obs.error.startswith("facts: ")
    assert obs.error_type == "parse"


def test_rejected_command_is_unsupported() -> None:
    with pytest.raises(DriverError) as e:
        check_output("show lldp neighbors detail",
                     "                ^\n% Invalid input detected at '^' marker.\n",
                     CISCO_REJECT)
    assert e.value.kind == "unsupported"


def test_echoed_prompt_line_is_removed() -> None:
    text = check_output("show interfaces", "ceos1#show  interface\n\nEthernet1 is up\n")
    assert text.startswith("Ethernet1")


def test_ios_napalm_garbage_is_parse_error() -> None:
    out = Collected()
    ios.IosDriver().collect(napalm_ios(override={"show arp | exclude Incomplete":
                                               "Protocol Address\nInternet 10.0.0.1 x y\n"}),
                          out)
    obs = out.observation(DEVICE, "napalm:ios", NOW, 0.0)
    assert obs.status == PollStatus.PARTIAL
    assert [e.kind for _, e in out.errors] == ["parse"]
    assert obs.error is not None and obs.error.startswith("arp: ")


def test_template_mismatch_is_driver_error_parse() -> None:
    with pytest.raises(DriverError) as e:
        parse_textfsm("mikrotik_routeros_system_identity_print.textfsm", "not: an identity\n")
    assert e.value.kind == "parse"


# --- Linux ----------------------------------------------------------------------------------


class ReplayExec:
    def __init__(self, override: dict[str, str] | None = None) -> None:
        self.override = override or {}

    def run(self, command: str) -> str:
        if command in self.override:
            return self.override[command]
        name = "facts" if command == linux.FACTS_COMMAND else slug(command)
        return (DATA / "linux" / f"{name}.txt").read_text()


def test_linux_recorded() -> None:
    out = Collected()
    linux.LinuxDriver().collect(ReplayExec(), out)
    obs = out.observation(DEVICE, "ssh:linux", NOW, 0.0)
    assert obs.status == PollStatus.OK, obs.error
    assert (obs.hostname, obs.os_version, obs.sys_description, obs.role) == \
        ("vm", "Debian GNU/Linux 12 (bookworm)", "Linux 6.18.44-fc-v782 x86_64", "host")
    assert obs.vendor is None and obs.serial is None  # no DMI in this VM
    assert obs.uptime_s == 2182.46
    lo = obs.interfaces[0]
    assert (lo.name, lo.index, lo.type, lo.mac, lo.admin_up, lo.oper_up) == \
        ("lo", 1, "loopback", None, True, True)
    eth0 = next(i for i in obs.interfaces if i.name == "eth0")
    assert eth0.mac is not None and eth0.oper_up is True and eth0.in_octets is not None
    assert ("eth0", "192.0.2.2", 24) in {(a.interface, a.address, a.prefix_len)
                                        for a in obs.addresses}
    dests = {r.destination: r for r in obs.routes}
    assert dests["0.0.0.0/0"].gateway == "192.0.2.1"
    assert dests["::/0"].gateway == "fd00::1" and dests["::/0"].metric == 1024
    assert [(a.ip, a.mac) for a in obs.arp] == [("192.0.2.1", "02:fc:00:00:00:05")]


def test_linux_bad_json_is_partial_parse() -> None:
    out = Collected()
    linux.LinuxDriver().collect(ReplayExec({"ip -j addr": '[{"ifname": "eth0", "addr_in'}),
                                out)
    obs = out.observation(DEVICE, "ssh:linux", NOW, 0.0)
    assert obs.status == PollStatus.PARTIAL and obs.error_type == "parse"
    assert obs.error is not None and "addresses: ip -j addr: not JSON" in obs.error


def test_linux_garbage_facts_is_failed_without_crash() -> None:
    out = Collected()
    linux.LinuxDriver().collect(ReplayExec({linux.FACTS_COMMAND: JUNK}), out)
    obs = out.observation(DEVICE, "ssh:linux", NOW, 0.0)
    assert obs.status == PollStatus.PARTIAL and obs.hostname is None
    assert obs.error is not None and obs.error.startswith("facts: ")


def test_ss_listening_ports() -> None:
    text = (DATA / "linux" / "ss_-ltnH.txt").read_text()
    assert linux.parse_ss_listen(text) == [
        ("*", 443), ("0.0.0.0", 22), ("0.0.0.0", 80), ("127.0.0.1", 5432),
        ("127.0.0.53", 53), ("::", 22), ("::ffff:10.20.0.5", 9100)]
    with pytest.raises(DriverError):
        linux.parse_ss_listen("LISTEN 0 128 garbage 0.0.0.0:*\n")


# --- helpers, error mapping, registry -------------------------------------------------------


@pytest.mark.parametrize("raw, want", [
    ("aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"), ("AA-BB-CC-DD-EE-FF", "aa:bb:cc:dd:ee:ff"),
    ("fc73-fb9e-601c", "fc:73:fb:9e:60:1c"), ("00:0C:29:5E:2C:1A", "00:0c:29:5e:2c:1a"),
    ("", None), ("zz:zz", None), ("aabb.ccdd", None)])
def test_norm_mac(raw: str, want: str | None) -> None:
    assert norm_mac(raw) == want


def test_error_mapping_walks_the_cause_chain_and_hides_secrets() -> None:
    import paramiko  # type: ignore[import-untyped]
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

    params = SshParams(host="192.0.2.10", port=22, username="netops", timeout_s=5,
                       password="Sup3r-Secret", enable_secret="En4ble")

    def chained(outer: BaseException, inner: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException:
                raise outer  # noqa: B904 - the implicit __context__ is what libraries leave
        except BaseException as e:
            return e

    refused = chained(NetmikoTimeoutException("TCP connection to device failed."),
                      ConnectionRefusedError(111, "Connection refused"))
    assert classify(refused, params).kind == "refused"
    assert classify(NetmikoAuthenticationException("Authentication to device failed."),
                    params).kind == "auth"
    assert classify(paramiko.SSHException("Error reading SSH protocol banner"),
                    params).kind == "timeout"
    assert classify(TimeoutError("timed out"), params).kind == "timeout"
    assert classify(OSError(113, "No route to host"), params).kind == "unreachable"
    assert classify(EOFError(), params).kind == "protocol"
    leak = wrap_error(RuntimeError("login with Sup3r-Secret then En4ble failed"), params)
    assert "Sup3r-Secret" not in str(leak) and "En4ble" not in str(leak)
    assert repr(params).count("Sup3r") == 0


def test_all_platforms_registered() -> None:
    assert {"ios", "eos", "junos", "huawei_vrp", "routeros", "linux"} <= set(REGISTRY)
    for name in ("ios", "eos", "junos", "huawei_vrp", "routeros", "linux"):
        assert REGISTRY[name]().platform == name


def test_missing_ssh_section_is_config_error() -> None:
    dev = DeviceCfg(name="sw", host="192.0.2.1", platform="eos")
    obs = eos.factory().poll(dev)
    assert obs.status == PollStatus.FAILED and obs.error_type == "config"


def test_driver_modules_import_no_ssh_library() -> None:
    """napalm/netmiko/paramiko/textfsm load only when a device is polled (agent RSS budget)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from agent.drivers import eos, huawei_vrp, ios, junos, linux, routeros\n"
            "from agent import configbackup\n"
            "print(sorted(m for m in ('napalm', 'netmiko', 'paramiko', 'textfsm',"
            " 'ntc_templates') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent.parent)
    assert out.stdout.strip() == "[]"
