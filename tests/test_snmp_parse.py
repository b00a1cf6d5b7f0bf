"""SNMP driver parsing, on recorded walks (no network).

``tests/data/snmp/net-snmp-*.txt`` are real ``snmpbulkwalk -On`` recordings of net-snmp's
snmpd (tests/data/snmp/record.sh); the Cisco, MikroTik and Huawei files are hand-made in the
same format with realistic values; ``garbage-generic.txt`` is a device answering garbage.
The recordings are replayed through the same collection plan as a live poll
(:class:`agent.drivers.snmp.RecordedSource`), so fallbacks between tables are exercised too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.drivers.snmp import RecordedSource, observe
from agent.drivers.snmp_profiles import ProfileError, default_profiles, load_profiles
from agent.snmp_engine import SnmpValue, oid, parse_recording, parse_walk_text
from contract.report import (
    DeviceInterface,
    DeviceObservation,
    PollStatus,
    Report,
    new_report_id,
    utcnow,
)

DATA = Path(__file__).parent / "data" / "snmp"


def replay(name: str, device: str = "dev1") -> DeviceObservation:
    rec = parse_recording((DATA / name).read_text())
    src = RecordedSource(rec[""], contexts={k: v for k, v in rec.items() if k})
    obs = asyncio.run(observe(src, default_profiles(), device=device, mgmt_address="10.0.0.9"))
    # whatever the driver returns must travel in a report
    Report(report_id=new_report_id(), agent_id="a1", pd_code="PD", sent_at=utcnow(),
           observations=[obs])
    return obs


def by_name(obs: DeviceObservation) -> dict[str, DeviceInterface]:
    return {i.name: i for i in obs.interfaces}


# --- the recording format --------------------------------------------------------------------

def test_walk_text_formats() -> None:
    text = "\n".join([
        '.1.3.6.1.2.1.1.1.0 = STRING: "line one',
        'line "two" with \\"quotes\\""',
        ".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.9.1.1208",
        ".1.3.6.1.2.1.1.3.0 = Timeticks: (123456) 0:20:34.56",
        '.1.3.6.1.2.1.1.4.0 = ""',
        ".1.3.6.1.2.1.2.2.1.6.1 = Hex-STRING: 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF",
        "00 01 ",
        ".1.3.6.1.2.1.31.1.1.1.6.1 = Counter64: 18446744073709551615",
        ".1.3.6.1.2.1.4.20.1.1.10.0.0.1 = IpAddress: 10.0.0.1",
        ".1.3.6.1.2.1.4.20.1.2.10.0.0.1 = INTEGER: up(1)",
        ".1.3.6.1.2.1.4.24.4.1.9.1 = OID: .0.0",
        ".1.3.6.1.2.1.47.1.1.1 = No Such Object available on this agent at this OID",
        ".1.0.8802.1.1.2.1.4.1.1.12.0.1.1 = BITS: 28 00 bridge(2) router(4)",
        "# a comment",
        ".1.3.6.1.2.1.2.2.1.5.1 = Gauge32: 1000000000",
    ])
    got = dict(parse_walk_text(text))
    assert got[oid("1.3.6.1.2.1.1.1.0")] == SnmpValue("STRING", b'line one\nline "two" with '
                                                                 b'"quotes"')
    assert got[oid("1.3.6.1.2.1.1.2.0")] == SnmpValue("OID", (1, 3, 6, 1, 4, 1, 9, 1, 1208))
    assert got[oid("1.3.6.1.2.1.1.3.0")] == SnmpValue("Timeticks", 123456)
    assert got[oid("1.3.6.1.2.1.1.4.0")] == SnmpValue("STRING", b"")
    assert got[oid("1.3.6.1.2.1.2.2.1.6.1")].value == bytes(range(0, 256, 17)) + b"\x00\x01"
    assert got[oid("1.3.6.1.2.1.31.1.1.1.6.1")] == SnmpValue("Counter64", 2**64 - 1)
    assert got[oid("1.3.6.1.2.1.4.20.1.1.10.0.0.1")] == SnmpValue("IpAddress", b"\n\0\0\x01")
    assert got[oid("1.3.6.1.2.1.4.20.1.2.10.0.0.1")] == SnmpValue("INTEGER", 1)
    assert got[oid("1.3.6.1.2.1.4.24.4.1.9.1")] == SnmpValue("OID", (0, 0))
    assert oid("1.3.6.1.2.1.47.1.1.1") not in got
    assert got[oid("1.0.8802.1.1.2.1.4.1.1.12.0.1.1")] == SnmpValue("STRING", b"\x28\x00")
    assert got[oid("1.3.6.1.2.1.2.2.1.5.1")] == SnmpValue("Gauge32", 1_000_000_000)


@pytest.mark.parametrize("bad, where", [
    ("this is not snmp", "line 1"),
    ('.1.3.6.1.2.1.1.1.0 = STRING: "1\n.1.3.6.1.2.1.1.2.0 = INTEGER: 2\nno end', "unterminated"),
    (".1.3.6.1.2.1.1.3.0 = Timeticks: soon", "bad Timeticks"),
    (".1.3.6.1.2.1.1.3.0 = Wibble: 3", "unknown type"),
    (".1.3.6.1.2.1.2.2.1.6.1 = Hex-STRING: 0G 11", "bad hex"),
    (".1.3.6.1.2.1.1.1.0 = IpAddress: 300.1.1.1", "bad IpAddress"),
])
def test_walk_text_rejects_garbage_with_a_clear_error(bad: str, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        parse_walk_text(bad)


def test_recording_contexts() -> None:
    rec = parse_recording(".1.3.6.1.2.1.1.5.0 = STRING: \"a\"\n# context: vlan-10\n"
                          ".1.3.6.1.2.1.17.4.3.1.2.0.1.2.3.4.5 = INTEGER: 1\n")
    assert set(rec) == {"", "vlan-10"}
    assert rec["vlan-10"] == [(oid("1.3.6.1.2.1.17.4.3.1.2.0.1.2.3.4.5"),
                               SnmpValue("INTEGER", 1))]


# --- real net-snmp recordings ----------------------------------------------------------------

def test_net_snmp_linux_host() -> None:
    obs = replay("net-snmp-linux.txt")
    assert obs.status is PollStatus.OK and not obs.error
    assert obs.vendor == "Net-SNMP" and obs.role == "host"
    assert obs.sys_object_id == "1.3.6.1.4.1.8072.3.2.10"
    assert obs.hostname == "lab-host"
    assert obs.location == "Ruang Server Lt.2" and obs.contact == "noc@example.go.id"
    assert obs.os_version and obs.sys_description
    assert obs.os_version in obs.sys_description
    assert obs.uptime_s is not None and obs.uptime_s > 0
    ifs = by_name(obs)
    lo = ifs["lo"]
    assert lo.type == "softwareLoopback" and lo.oper_up is True and lo.mac is None
    eth0 = ifs["eth0"]
    assert eth0.mac and eth0.mtu and eth0.in_octets is not None
    addrs = {(a.address, a.prefix_len, a.interface) for a in obs.addresses}
    assert ("127.0.0.1", 8, "lo") in addrs
    assert ("::1", 128, "lo") in addrs
    assert ("192.0.2.2", 24, "eth0") in addrs
    default = [r for r in obs.routes if r.destination == "0.0.0.0/0"]
    assert default and default[0].gateway == "192.0.2.1" and default[0].interface == "eth0"
    assert obs.routes[0].destination == "0.0.0.0/0"  # default routes first
    assert any(a.ip == "192.0.2.1" and a.interface == "eth0" for a in obs.arp)
    assert obs.notes == []


def test_net_snmp_lldpd_switch() -> None:
    """netlab's dinkes-sw1: snmpd + lldpd, sysDescr/sysObjectID of an Arista switch."""
    obs = replay("net-snmp-lab-switch.txt")
    assert obs.status is PollStatus.OK
    assert (obs.vendor, obs.model, obs.os_version, obs.role) == (
        "Arista", "DCS-7048T-A", "4.28.3M", "switch")
    ifs = by_name(obs)
    assert ifs["eth1"].description == "UPLINK-DINKES-RTR" and ifs["eth1"].oper_up
    assert ifs["eth2"].description == "R101-A01"
    assert ifs["eth3"].description == "" and ifs["eth3"].oper_up  # LAN-4: up, no label
    assert ifs["eth4"].oper_up is False  # spare port
    (nbr,) = obs.lldp_neighbors
    assert (nbr.local_port, nbr.remote_system_name, nbr.remote_port_id) == (
        "eth1", "dinkes-rtr", "eth2")
    assert nbr.remote_port_description == "LAN-DINKES"
    assert nbr.remote_mgmt_address == "10.254.2.21" and "router" in nbr.remote_capabilities
    assert nbr.remote_system_description.startswith("Huawei Versatile Routing Platform")
    assert ("10.253.16.2", 24, "br0") in {(a.address, a.prefix_len, a.interface)
                                          for a in obs.addresses}
    default = obs.routes[0]
    assert (default.destination, default.gateway, default.interface) == (
        "0.0.0.0/0", "10.253.16.1", "br0")


def test_net_snmp_lldpd_core_router() -> None:
    """netlab's dc-core: four LLDP neighbours, static routes, Cisco facts from sysDescr."""
    obs = replay("net-snmp-lab-core-router.txt")
    assert obs.status is PollStatus.OK
    assert (obs.vendor, obs.model, obs.os_version, obs.role) == (
        "Cisco", "ISR4300", "16.9.4", "router")
    assert obs.serial is None  # no ENTITY-MIB in net-snmp: a gap ASSET-1 will report
    assert {(n.local_port, n.remote_system_name) for n in obs.lldp_neighbors} == {
        ("eth1", "dinkes-rtr"), ("eth2", "disdik-rtr"), ("eth3", "bappeda-rtr"),
        ("eth4", "dc-srv1")}
    assert not any(r.destination == "0.0.0.0/0" for r in obs.routes)
    assert {(r.destination, r.gateway) for r in obs.routes if r.gateway} == {
        ("10.253.16.0/24", "10.253.0.2"), ("10.253.32.0/24", "10.253.0.6"),
        ("10.253.48.0/24", "10.253.0.10")}
    assert {a.ip for a in obs.arp} >= {"10.253.0.2", "10.253.0.6", "10.253.0.10"}


# --- hand-made vendor recordings -------------------------------------------------------------

def test_cisco_catalyst_switch() -> None:
    obs = replay("cisco-c2960x.txt")
    assert obs.status is PollStatus.OK
    assert (obs.vendor, obs.model, obs.serial, obs.os_version) == (
        "Cisco", "WS-C2960X-48TS-L", "FOC1234X0AB", "15.2(7)E4")
    assert obs.role == "switch"
    assert obs.hostname == "dinkes-sw1" and obs.uptime_s == 1234567.89
    assert obs.sys_description and obs.sys_description.count("\n") == 3
    ifs = by_name(obs)
    assert list(ifs) == ["Vl1", "Po1", "Gi1/0/1", "Gi1/0/2", "Gi1/0/3", "Gi1/0/48", "Nu0"]
    up = ifs["Gi1/0/48"]
    assert up.description == "UPLINK-RTR-DINKES"
    assert up.in_octets == 9876543210123  # 64-bit counter
    assert up.out_discards == 41 and up.speed_mbps == 1000.0
    assert ifs["Gi1/0/3"].admin_up is False
    assert ifs["Po1"].oper_up is False  # lowerLayerDown(7)
    assert ifs["Nu0"].speed_mbps is None and ifs["Nu0"].mac is None
    assert [(a.address, a.prefix_len, a.interface) for a in obs.addresses] == [
        ("10.20.0.2", 24, "Vl1")]
    # ipCidrRouteTable (no inetCidrRouteTable on this IOS)
    assert [(r.destination, r.gateway, r.interface) for r in obs.routes] == [
        ("0.0.0.0/0", "10.20.0.1", "Vl1"), ("10.20.0.0/24", None, "Vl1")]
    assert {(a.ip, a.mac) for a in obs.arp} >= {("10.20.0.1", "48:8f:5a:11:22:33"),
                                                ("10.20.0.30", "74:ac:b9:12:34:56")}
    nbrs = {n.local_port: n for n in obs.lldp_neighbors}
    # lldpLocPortNum is not the ifIndex here (port 1 is Gi1/0/1, ifIndex 1 is Vl1)
    assert set(nbrs) == {"Gi1/0/1", "Gi1/0/2", "Gi1/0/48"}
    phone = nbrs["Gi1/0/1"]
    assert phone.remote_chassis_id == "10.20.0.50"  # networkAddress subtype
    assert phone.remote_port_id == "Port 1" and phone.remote_mgmt_address is None
    assert phone.remote_capabilities == ["bridge", "telephone"]
    rtr = nbrs["Gi1/0/48"]
    assert (rtr.remote_system_name, rtr.remote_port_id, rtr.remote_chassis_id) == (
        "dinkes-rtr", "ether2", "48:8f:5a:11:22:30")
    assert rtr.remote_mgmt_address == "10.20.0.1" and rtr.remote_capabilities == ["router"]
    ap = nbrs["Gi1/0/2"]
    assert ap.remote_port_id == "74:ac:b9:12:34:56"  # macAddress subtype
    assert ap.remote_capabilities == ["wlanAccessPoint"]
    # per-VLAN BRIDGE-MIB (community@vlan): VLAN 1, 10, 20; "self" entries skipped
    assert {(f.mac, f.port, f.vlan) for f in obs.fdb} == {
        ("48:8f:5a:11:22:33", "Gi1/0/48", 1), ("3c:52:82:aa:bb:01", "Gi1/0/1", 10),
        ("74:ac:b9:12:34:56", "Gi1/0/2", 20)}
    assert obs.notes == []


def test_mikrotik_router() -> None:
    obs = replay("mikrotik-rb4011.txt")
    assert obs.status is PollStatus.OK
    # serial, model and version come from MIKROTIK-MIB via the profile
    assert (obs.vendor, obs.model, obs.serial, obs.os_version) == (
        "MikroTik", "RB4011iGS+", "E2F10E4D3C9A", "7.12.1")
    assert obs.role == "router" and obs.contact is None
    ifs = by_name(obs)
    assert ifs["ether1"].description == "WAN Jaringan Intra Diskominfo"
    assert ifs["sfp-sfpplus1"].speed_mbps == 10000.0
    assert ifs["bridge-lan"].type == "bridge"
    assert ifs["ether3"].speed_mbps is None
    assert {(a.address, a.prefix_len, a.interface) for a in obs.addresses} == {
        ("10.255.8.2", 30, "ether1"), ("10.20.0.1", 24, "bridge-lan"),
        ("192.168.100.1", 24, "vlan100-cctv")}
    # RFC 1213 ipRouteTable: direct routes have no gateway
    assert obs.routes[0].model_dump() == {"destination": "0.0.0.0/0", "gateway": "10.255.8.1",
                                          "interface": "ether1", "metric": 1}
    assert all(r.gateway is None for r in obs.routes[1:])
    assert len(obs.arp) == 4 and obs.lldp_neighbors == [] and obs.fdb == []


def test_huawei_switch() -> None:
    obs = replay("huawei-s5720.txt")
    assert obs.status is PollStatus.OK
    # empty entPhysicalModelName: the model comes from the first line of sysDescr
    assert (obs.vendor, obs.model, obs.serial, obs.os_version) == (
        "Huawei", "S5720-28X-SI-AC", "21980107133GJ7000257", "V200R011C10SPC600")
    assert obs.role == "switch"
    ifs = by_name(obs)
    assert ifs["GigabitEthernet0/0/1"].description == "BAPENDA-R201-A05"
    assert ifs["Vlanif1"].type == "l3ipvlan"
    # inetCidrRouteTable
    assert obs.routes[0].destination == "0.0.0.0/0" and obs.routes[0].gateway == "10.30.0.1"
    assert {r.destination for r in obs.routes[1:]} == {"10.30.0.0/24", "10.30.10.0/24",
                                                       "10.30.20.0/24"}
    # ipNetToPhysicalTable; the incomplete entry (empty MAC) is skipped
    assert {(a.ip, a.interface) for a in obs.arp} == {("10.30.0.1", "Vlanif1"),
                                                      ("10.30.10.21", "Vlanif10")}
    nbrs = {n.local_port: n for n in obs.lldp_neighbors}
    assert nbrs["XGigabitEthernet0/0/1"].remote_system_name == "bapenda-rtr"
    assert nbrs["XGigabitEthernet0/0/1"].remote_mgmt_address == "10.30.0.1"  # IPv4 first
    assert nbrs["GigabitEthernet0/0/1"].remote_capabilities == ["wlanAccessPoint"]
    # Q-BRIDGE: fdbId is the VLAN, bridge ports map to interfaces, "self" skipped
    assert {(f.mac, f.port, f.vlan) for f in obs.fdb} == {
        ("00:e0:4c:68:00:01", "GigabitEthernet0/0/1", 10),
        ("3c:52:82:01:02:03", "GigabitEthernet0/0/1", 10),
        ("e0:24:7f:55:66:70", "GigabitEthernet0/0/2", 20),
        ("00:1e:49:ab:cd:02", "XGigabitEthernet0/0/1", 1)}


# --- garbage ----------------------------------------------------------------------------------

def test_garbage_values_are_dropped_or_truncated_with_notes() -> None:
    obs = replay("garbage-generic.txt")
    assert obs.status is PollStatus.OK  # bad values never fail the poll
    assert obs.vendor is None and obs.model == "GX-1000"  # generic profile, ENTITY-MIB
    assert obs.serial == "SN1"  # NUL byte removed
    assert obs.hostname == "bad  name"  # control characters removed
    assert obs.sys_description and len(obs.sys_description) == 1024
    assert obs.uptime_s is None  # sysUpTime was a STRING
    ifs = by_name(obs)
    assert set(ifs) == {"eth0", "eth1", "tunnel-" + "x" * 113}  # two-part ifIndex dropped
    eth0, eth1 = ifs["eth0"], ifs["eth1"]
    assert len(eth0.description) == 255
    assert eth0.out_octets == 2000  # 2^64: fall back to 32-bit
    assert eth1.mac is None and eth1.mtu is None and eth1.in_octets is None
    assert eth1.out_octets is None and eth1.oper_up is None
    assert eth1.type == "iana-99999"
    assert [a.address for a in obs.addresses] == ["10.0.1.1"]  # bad mask, bad index dropped
    assert [a.ip for a in obs.arp] == ["10.0.0.4"]
    assert [r.destination for r in obs.routes] == ["0.0.0.0/0", "10.7.0.0/16"]
    assert obs.routes[1].interface == "tunnel-" + "x" * 57  # cut to the contract's 64
    assert obs.routes[0].metric == 0  # -1 (unused) becomes 0
    (nbr,) = obs.lldp_neighbors
    assert nbr.remote_chassis_id == "00:ff:80:01"  # not printable: hex
    assert len(nbr.remote_system_name) == 255
    assert [f.mac for f in obs.fdb] == ["00:11:22:33:44:55"]
    notes = "\n".join(obs.notes)
    for expected in ("sysDescr longer than 1024 characters, truncated",
                     "sysUpTime has wrong type STRING",
                     "interface row with a malformed ifIndex, dropped: 1 (3.1)",
                     "ifPhysAddress not 6 bytes, dropped: 1 (ifIndex 2)",
                     "in_octets has wrong type STRING",
                     "out_octets out of range",
                     "ifMtu out of range",
                     "ifOperStatus outside 1..7",
                     "ifAlias longer than 255 characters, truncated",
                     "ipAdEntNetMask missing or not a netmask",
                     "ipAddrTable row with a malformed index",
                     "ipNetToMediaPhysAddress not 6 bytes",
                     "inetCidrRouteTable row with a malformed index",
                     "route with an impossible prefix length",
                     "lldpRemTable row with a malformed index",
                     "lldpRemSysName longer than 255 characters, truncated",
                     "FDB row with a malformed MAC index, dropped: 2",
                     "route interface name longer than 64 characters, truncated"):
        assert expected in notes, expected


def test_oversized_tables_are_cut_to_the_contract_limit() -> None:
    lines = [".1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.99999"]
    lines += [f'.1.3.6.1.2.1.2.2.1.2.{i} = STRING: "port{i}"' for i in range(1, 5001)]
    src = RecordedSource(parse_walk_text("\n".join(lines)))
    obs = asyncio.run(observe(src, default_profiles(), device="big", mgmt_address="10.0.0.1"))
    assert len(obs.interfaces) == 4096
    assert any("table longer than the limit" in n for n in obs.notes)


def test_no_system_group_is_a_failure() -> None:
    src = RecordedSource(parse_walk_text(".1.3.6.1.2.1.2.2.1.2.1 = STRING: \"eth0\""))
    with pytest.raises(Exception, match="no SNMPv2-MIB system group") as exc:
        asyncio.run(observe(src, default_profiles(), device="x", mgmt_address="10.0.0.1"))
    assert getattr(exc.value, "kind", None) == "protocol"


# --- profiles ---------------------------------------------------------------------------------

def test_profile_matching_longest_prefix_on_oid_boundaries() -> None:
    ps = default_profiles()
    assert ps.match(oid("1.3.6.1.4.1.9.1.1410")).name == "cisco-asa"
    assert ps.match(oid("1.3.6.1.4.1.9.1.14100")).name == "cisco"
    assert ps.match(oid("1.3.6.1.4.1.99.1")).name == "generic"  # not Cisco's 9
    assert ps.match(oid("1.3.6.1.4.1.8072.3.2.10")).name == "net-snmp"
    assert ps.match(oid("1.3.6.1.4.1.12356.101.1.1")).name == "fortinet"
    assert ps.match(None).name == "generic"
    asa = ps["cisco-asa"]
    assert asa.chain == ("cisco-asa", "cisco", "generic") and asa.role == "firewall"
    assert asa.vendor == "Cisco"  # inherited
    assert [s.descr for s in asa.facts["os_version"]] == [r"Version ([^\s,]+)"]  # overridden
    assert asa.facts["serial"] == ps["cisco"].facts["serial"]  # inherited
    assert ps["fortinet"].role == "firewall"
    required = {"generic", "net-snmp", "cisco", "mikrotik", "huawei", "juniper", "fortinet",
                "arista"}
    assert required <= set(ps.profiles)


def test_role_rules() -> None:
    from agent.drivers.snmp import Collected, resolve_role

    ps = default_profiles()
    c = Collected()
    assert resolve_role(c, ps["cisco"], "Cisco Adaptive Security Appliance Version 9.8",
                        None) == "firewall"
    assert resolve_role(c, ps["cisco"], "Cisco IOS Software, ISR Software", None) == "router"
    assert resolve_role(c, ps["juniper"], "Juniper Networks, Inc. srx300 internet router",
                        None) == "firewall"
    assert resolve_role(c, ps["fortinet"], "", oid("1.3.6.1.4.1.12356.106.1.2")) == "switch"
    assert resolve_role(c, ps["mikrotik"], "RouterOS CRS326-24G-2S+", None) == "switch"
    c.scalars[oid("1.3.6.1.2.1.4.1.0")] = SnmpValue("INTEGER", 1)
    assert resolve_role(c, ps["net-snmp"], "Linux gw 6.1", None) == "router"
    assert resolve_role(c, ps["generic"], "", None) == "router"


def _write(tmp: Path, name: str, text: str) -> None:
    (tmp / f"{name}.yaml").write_text(text)


GENERIC = "name: generic\n"


@pytest.mark.parametrize("files, message", [
    ({"x": "name: x\nvendor: [unclosed"}, "x.yaml: not valid YAML"),
    ({"x": "name: x\nvendr: Foo\n"}, "x.yaml: vendr: Extra inputs are not permitted"),
    ({"x": "name: y\n"}, "name 'y' must equal the file name 'x'"),
    ({"x": "name: x\nextends: nothere\n"}, "extends unknown profile 'nothere'"),
    ({"x": "name: x\nextends: z\n", "z": "name: z\nextends: x\n"}, "extends cycle"),
    ({"x": "name: x\nsys_object_ids: ['1.3.6.x']\n"}, "sys_object_ids[0]: String should"),
    ({"x": "name: x\nrole: printer\n"}, "role: Input should be"),
    ({"x": "name: x\nfacts: {serial: [{descr: '(unclosed'}]}\n"},
     "bad regular expression"),
    ({"x": "name: x\nfacts: {serial: [{oid: '1.3.6.1.2.1.1.5.0', descr: 'a'}]}\n"},
     "give exactly one of entity, oid, descr"),
    ({"x": "name: x\nrole_rules: [{role: router}]\n"}, "needs at least one condition"),
    ({"x": "name: x\nsys_object_ids: ['1.3.6.1.4.1.9']\n",
      "y": "name: y\nsys_object_ids: ['1.3.6.1.4.1.9']\n"}, "claimed by both"),
    ({"x": "- just\n- a list\n"}, "a profile must be a mapping"),
])
def test_broken_profiles_are_clear_errors(tmp_path: Path, files: dict[str, str],
                                          message: str) -> None:
    _write(tmp_path, "generic", GENERIC)
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_profiles([tmp_path])


def test_profiles_need_the_generic_fallback(tmp_path: Path) -> None:
    _write(tmp_path, "x", "name: x\n")
    with pytest.raises(ProfileError, match="no 'generic' profile"):
        load_profiles([tmp_path])


def test_random_garbage_never_crashes() -> None:
    """Random types, lengths and indexes in every column the driver reads: the result is
    always a valid observation (bad values dropped), never an exception."""
    import random

    from agent.drivers import snmp as S

    columns = [*S.SCALARS, *S.IF_COLUMNS, *S.IFX_COLUMNS, *S.ADDRESS_COLUMNS,
               S.NETPHYS_PHYS, S.NETPHYS_TYPE, S.NETMEDIA_PHYS, S.NETMEDIA_TYPE,
               S.INET_ROUTE_IFINDEX, S.INET_ROUTE_TYPE, S.INET_ROUTE_METRIC,
               S.CIDR_ROUTE_IFINDEX, S.RT_IFINDEX, S.RT_NEXTHOP, S.RT_MASK,
               *S.LLDP_REM.values(), S.LLDP_LOC_PORT_ID, S.LLDP_LOC_PORT_SUBTYPE,
               S.LLDP_REM_MAN_IF_SUBTYPE, S.ENT_CLASS, S.ENT_CONTAINED_IN,
               *S.ENT_FIELDS.values(), S.DOT1Q_FDB_PORT, S.DOT1D_FDB_PORT,
               S.DOT1D_BASE_PORT_IFINDEX]
    rnd = random.Random(20261125)

    def value() -> SnmpValue:
        kind = rnd.choice(["INTEGER", "STRING", "OID", "IpAddress", "Counter32", "Counter64",
                           "Gauge32", "Timeticks", "NULL"])
        if kind == "STRING":
            return SnmpValue(kind, rnd.randbytes(rnd.choice([0, 1, 4, 5, 6, 7, 16, 300, 1100])))
        if kind == "IpAddress":
            return SnmpValue(kind, rnd.randbytes(rnd.choice([4, 3])))
        if kind == "OID":
            return SnmpValue(kind, tuple(rnd.randrange(300) for _ in range(rnd.randrange(12))))
        if kind == "NULL":
            return SnmpValue(kind, None)
        return SnmpValue(kind, rnd.choice([-(2**31), -1, 0, 1, 2, 3, 7, 99, 2**32, 2**70]))

    for _ in range(25):
        varbinds = []
        for col in columns:
            for _ in range(rnd.randrange(4)):
                idx = tuple(rnd.randrange(0, 400) for _ in range(rnd.randrange(0, 22)))
                varbinds.append((col + idx, value()))
        varbinds.append((oid("1.3.6.1.2.1.1.2.0"), value()))
        obs = asyncio.run(observe(RecordedSource(varbinds), default_profiles(), device="fuzz",
                                  mgmt_address="10.0.0.1"))
        DeviceObservation.model_validate(obs.model_dump())
