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
    MAX_ROUTES,
    Collected,
    SshParams,
    check_output,
    classify,
    norm_mac,
    parse_textfsm,
    wrap_error,
)
from contract.report import DeviceObservation, PollStatus, Route

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


def route_rows(routes: list[Route]) -> list[tuple[str, str | None, str | None, int]]:
    return [(r.destination, r.gateway, r.interface, r.metric) for r in routes]


# What each recorded routing table (tests/data/cli/<platform>/, see its README) must give:
# active routes only, one row per next hop, the router's own addresses left out.
ROUTES: dict[str, list[tuple[str, str | None, str | None, int]]] = {
    # show ip route: S* default without an interface (taken from the connected 10.1.1.0/30),
    # OSPF over two next hops, a static route to an interface; L (own address) rows left out
    "ios": [("0.0.0.0/0", "10.1.1.2", "GigabitEthernet0/0/0", 0),
            ("10.1.0.212/30", None, "Tunnel102", 0),
            ("10.1.1.0/30", None, "GigabitEthernet0/0/0", 0),
            ("10.20.0.0/16", "10.1.0.213", "Tunnel102", 0),
            ("10.40.8.0/24", "10.1.1.2", "GigabitEthernet0/0/0", 20),
            ("10.40.8.0/24", "10.1.0.213", "Tunnel102", 20),
            ("10.50.0.0/16", None, "Tunnel102", 0),
            ("172.2.2.0/25", None, "GigabitEthernet0/0/1.10", 0)],
    # display ip routing-table: left out are the NULL0 black hole, the route without the D
    # flag (172.16.50.0/24), every Direct row via 127.0.0.1 and InLoopBack0; the static route
    # through GE0/0/0 (next hop = the router's own 203.0.113.26) has no gateway
    "huawei_vrp": [("0.0.0.0/0", "10.10.99.254", "Vlanif99", 0),
                   ("10.10.99.0/24", None, "Vlanif99", 0),
                   ("10.20.0.0/16", "10.10.99.254", "Vlanif99", 2),
                   ("10.20.0.0/16", "10.10.99.253", "Vlanif99", 2),
                   ("10.30.0.0/16", "10.10.99.254", "Vlanif99", 1),
                   ("172.16.60.0/24", None, "GigabitEthernet0/0/0", 0),
                   ("192.168.10.0/24", None, "Vlanif10", 0),
                   ("203.0.113.24/30", None, "GigabitEthernet0/0/0", 0)],
    # show route table inet.0: only ">" next hops of "*" routes; left out are Local, the
    # inactive Static/200 under 10.20.0.0/16, the unselected OSPF hop, Discard and MultiRecv
    "junos": [("0.0.0.0/0", "10.10.199.177", "ge-0/0/0.2036", 0),
              ("10.1.100.0/24", None, "vlan.20", 0),
              ("10.10.199.176/29", None, "ge-0/0/0.2036", 0),
              ("10.20.0.0/16", "10.10.199.177", "ge-0/0/0.2036", 20),
              ("10.30.0.0/16", "10.10.199.177", "ge-0/0/0.2036", 2),
              ("10.30.0.0/16", "10.10.199.178", "ge-0/0/0.2036", 2),
              ("192.168.50.0/24", "10.1.100.254", "vlan.20", 0)],
    # /ip route print terse: metric = distance; left out are the inactive PPPoE default (DS),
    # the disabled Astinet default (X), the policy-routing default (routing-mark), the
    # blackhole (SB) and the unreachable static route (no A)
    "routeros": [("0.0.0.0/0", "10.10.5.6", "ether5-mgmt", 1),
                 ("10.10.5.0/29", None, "ether5-mgmt", 0),
                 ("10.20.0.0/16", "10.10.5.6", "ether5-mgmt", 1),
                 ("100.64.0.1/32", None, "pppoe-telkom", 0),
                 ("172.16.40.0/24", "10.10.5.2", "ether5-mgmt", 1),
                 ("172.16.40.0/24", "10.10.5.3", "ether5-mgmt", 1),
                 ("172.16.41.0/24", None, "ether1-wan", 5),
                 ("192.168.10.0/24", None, "bridge-lan", 0),
                 ("203.0.113.16/30", None, "ether1-wan", 0)],
}
ROUTE_PARSERS = {"ios": ios, "huawei_vrp": huawei_vrp, "junos": junos, "routeros": routeros}


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
    assert route_rows(obs.routes) == ROUTES["huawei_vrp"] and obs.notes == []


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
    assert route_rows(obs.routes) == ROUTES["junos"] and obs.notes == []


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
    assert route_rows(obs.routes) == ROUTES["routeros"] and obs.notes == []


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
    assert route_rows(obs.routes) == ROUTES["ios"] and obs.notes == []


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


# --- routing tables ---------------------------------------------------------------------------


@pytest.mark.parametrize("platform", list(ROUTE_PARSERS))
def test_routes_recorded(platform: str) -> None:
    mod = ROUTE_PARSERS[platform]
    text = (DATA / platform / f"{slug(mod.ROUTES_COMMAND)}.txt").read_text()
    notes: list[str] = []
    assert route_rows(mod.parse_routes(text, notes)) == ROUTES[platform]
    assert notes == []


def test_routeros_routes_v7_terse() -> None:
    """RouterOS 7 prints other flags (lower-case types, I = inactive), no number for dynamic
    routes, ``routing-table=`` and ``immediate-gw=<hop>%<interface>``."""
    text = (
        '   DAd  dst-address=0.0.0.0/0 routing-table=main pref-src="" gateway=172.16.1.1 '
        "immediate-gw=172.16.1.1%ether8 distance=1 scope=30 target-scope=10 "
        "vrf-interface=ether8 suppress-hw-offload=no\n"
        "   DAc  dst-address=172.16.1.0/24 routing-table=main gateway=ether8 immediate-gw=ether8 "
        "distance=0 scope=10 suppress-hw-offload=no local-address=172.16.1.2%ether8\n"
        " 0  As  dst-address=10.40.0.0/16 routing-table=main gateway=172.16.1.9 "
        "immediate-gw=172.16.1.9%[ether8] distance=1 scope=30 target-scope=10\n"
        " 1  Is  dst-address=10.41.0.0/16 routing-table=main gateway=172.16.9.9 distance=1\n"
        " 2  Xs  dst-address=10.42.0.0/16 routing-table=main gateway=172.16.1.9 distance=1\n"
        " 3  As  dst-address=0.0.0.0/0 routing-table=isp2 gateway=100.64.0.1 distance=1\n"
        " 4 A S  dst-address=10.43.0.0/16 gateway=1.2.3.4 gateway-status=1.2.3.4 recursive "
        "via 172.16.1.9 ether8 distance=1 scope=30 target-scope=10\n")
    assert route_rows(routeros.parse_routes(text)) == [
        ("0.0.0.0/0", "172.16.1.1", "ether8", 1), ("172.16.1.0/24", None, "ether8", 0),
        ("10.40.0.0/16", "172.16.1.9", "ether8", 1), ("10.43.0.0/16", "1.2.3.4", "ether8", 1)]


# Lines a real session can add to a table (a log line echoed by RouterOS, a pager prompt, a
# row cut by a dropped packet) and rows with impossible values, inserted after the first row.
GARBAGE_ROUTES = {
    "ios": ["S        999.20.0.0/16 [1/0] via 10.1.0.213",
            "S        10.60.0.0/16 [1/0] via 10.1.0.999",
            " --More-- ", "O        10.70.", "\tgarbage ] [ via via , ,"],
    "huawei_vrp": ["      999.1.1.0/24  Static  60   0          RD   10.10.99.254    Vlanif99",
                   "      10.60.0.0/16  Static  60   0          RD   10.10.99.999    Vlanif99",
                   "  ---- More ----",
                   # an ECMP continuation whose destination line was lost: not misplaced
                   "                    OSPF    10   2           D   10.10.99.250    Vlanif99",
                   "      10.70.0.0/16  Stat"],
    "junos": ["999.0.0.0/8        *[Static/5] 1d 00:00:00",
              "                    >  to 10.10.199.177 via ge-0/0/0.2036",
              "10.60.0.0/16       *[Static/5] 1d 00:00:00",
              "                    >  to 10.10.199.999 via ge-0/0/0.2036",
              "---(more)---",
              # next hops after a line that is not a route: belong to no route
              "                    >  to 10.9.9.9 via ge-9/9/9",
              "10.70.0.0/16       *[Stat"],
    "routeros": [" 90 ADC  dst-address=300.1.1.0/24 gateway=ether1 distance=0 scope=10",
                 " 91 A S  dst-address=10.60.0.0/16 gateway=10.10.5.999 distance=1 scope=30",
                 "17:20:06 echo: system,error,critical login failure for user admin from "
                 "65.160.140.13 via ssh",
                 " 92 A S  dst-addr", "=== = ="],
}
# how many of those are rows the parser sees as routes and must count as malformed
GARBAGE_COUNTED = {"ios": 2, "huawei_vrp": 3, "junos": 2, "routeros": 2}


@pytest.mark.parametrize("platform", list(ROUTE_PARSERS))
def test_routes_garbage_lines_are_skipped_and_noted(platform: str) -> None:
    mod = ROUTE_PARSERS[platform]
    lines = (DATA / platform / f"{slug(mod.ROUTES_COMMAND)}.txt").read_text().split("\n")
    first = next(i for i, line in enumerate(lines) if "0.0.0.0/0" in line)
    # junos: after the default route's next-hop line, so the route itself stays whole
    at = first + (2 if platform == "junos" else 1)
    text = "\n".join(lines[:at] + GARBAGE_ROUTES[platform] + lines[at:])
    notes: list[str] = []
    assert route_rows(mod.parse_routes(text, notes)) == ROUTES[platform]
    [note] = notes
    assert note.startswith(f"{mod.ROUTES_COMMAND}: {GARBAGE_COUNTED[platform]} malformed rows "
                           "skipped (")


@pytest.mark.parametrize("platform", list(ROUTE_PARSERS))
@pytest.mark.parametrize("text", ["", "\n\n", "Interface  Status  Protocol\nfoo  up  up\n",
                                  "0.0.0.0/0\n/0 via\n[1/0]\n*[\n>  to\n=",
                                  "dst-address=0.0.0.0/0 gateway=", "x" * 5000])
def test_routes_junk_gives_no_routes_never_an_exception(platform: str, text: str) -> None:
    assert ROUTE_PARSERS[platform].parse_routes(text) == []


def test_routes_are_capped_default_route_kept_and_noted() -> None:
    """More routes than the report holds: the default route survives even when it comes last,
    the rest is cut, and the observation says so."""
    rows = [f"{i:>4} ADC  dst-address=10.{i // 256}.{i % 256}.0/24 gateway=ether2 "
            "gateway-status=ether2 reachable distance=0 scope=10" for i in range(5000)]
    rows.append("5000 A S  dst-address=0.0.0.0/0 gateway=10.0.0.1 gateway-status=10.0.0.1 "
                "reachable via  ether2 distance=1 scope=30 target-scope=10")
    d = routeros.factory()
    obs = run(d, ReplaySession(d, "routeros", "bad command name",
                               override={routeros.ROUTES_COMMAND: "\n".join(rows)}))
    assert obs.status == PollStatus.OK, obs.error
    assert len(obs.routes) == MAX_ROUTES
    assert obs.routes[0] == Route(destination="0.0.0.0/0", gateway="10.0.0.1",
                                  interface="ether2", metric=1)
    assert obs.notes == [f"{routeros.ROUTES_COMMAND}: 5001 routes, more than the report holds "
                         f"({MAX_ROUTES}); {5001 - MAX_ROUTES} dropped"]


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
    (huawei_vrp, "huawei_vrp", "Error: Wrong", huawei_vrp.ROUTES_COMMAND),
    (junos, "junos", "syntax error", junos.ROUTES_COMMAND),
    (routeros, "routeros", "bad command name", routeros.ROUTES_COMMAND),
], ids=["eos", "huawei_vrp", "junos", "routeros", "huawei_vrp-routes", "junos-routes",
        "routeros-routes"])
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
