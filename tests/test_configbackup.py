"""Unit: config backup — secrets masked per platform, volatile lines ignored, stable sha256."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.configbackup import (
    MASK,
    PROFILES,
    clean,
    fingerprint_key,
    set_fingerprint_key,
    snapshot,
)
from agent.drivers import DriverError

DATA = Path(__file__).parent / "data" / "cli"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

IOS = """\
Building configuration...

Current configuration : 3781 bytes
!
! Last configuration change at 09:12:44 WIB Tue Nov 24 2026 by netops
! NVRAM config last updated at 09:15:02 WIB Tue Nov 24 2026 by netops
!
version 15.2
service password-encryption
hostname DINKES-SW1
!
enable secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM
!
username admin privilege 15 secret 9 $9$4ZxX9Wn5AKVtKK$VQkuR5d8HEFrs1IGuQGs2.Km/4QDH9GdzsFhoB.iG3Y
username netops privilege 15 password 7 0822455D0A16544541
username guest nopassword
!
key chain OSPF-KEYS
 key 1
  key-string 7 13061E010803557878
!
interface Vlan10
 description LAN KANTOR
 ip address 192.168.10.2 255.255.255.0
 ip ospf message-digest-key 1 md5 7 070C285F4D06485744
 ip ospf authentication-key 7 00071A150754
!
crypto isakmp key Isakmp-Pre-Shared address 198.51.100.10
!
snmp-server community K0munitas-RO RO 10
snmp-server community K0munitas-RW RW 10
snmp-server user monitor grp-v3 v3 auth sha AuthPass123 priv aes 128 PrivPass456
snmp-server host 10.10.99.20 version 2c TrapCommunity
snmp-server host 10.10.99.21 version 3 priv monitor
tacacs-server host 10.10.99.22 key 7 045802150C2E
!
tacacs server TAC-PEMDA
 address ipv4 10.10.99.23
 key 7 060506324F41584B56
radius-server key Radius-Key-1
!
router bgp 65010
 neighbor 203.0.113.1 password 7 1511021F0725
!
ntp clock-period 36028575
ntp server 203.0.113.1
!
line vty 0 4
 password 7 104D000A0618
 transport input ssh
!
end
"""

IOS_SECRETS = ["$9$nhEmQVczB7dqsO", "$9$4ZxX9Wn5AKVtKK", "0822455D0A16544541",
               "13061E010803557878", "070C285F4D06485744", "00071A150754", "Isakmp-Pre-Shared",
               "K0munitas-RO", "K0munitas-RW", "AuthPass123", "PrivPass456", "TrapCommunity",
               "045802150C2E", "060506324F41584B56", "Radius-Key-1", "1511021F0725",
               "104D000A0618"]


def test_ios_secrets_masked_and_counted() -> None:
    c = clean("ios", IOS)
    for s in IOS_SECRETS:
        assert s not in c.content, s
    assert c.masked == len(IOS_SECRETS)
    lines = c.content.splitlines()
    assert f"enable secret 9 {MASK}" in lines
    assert f"username netops privilege 15 password 7 {MASK}" in lines
    assert f"snmp-server community {MASK} RO 10" in lines
    assert f"snmp-server user monitor grp-v3 v3 auth sha {MASK} priv aes 128 {MASK}" in lines
    assert f"crypto isakmp key {MASK} address 198.51.100.10" in lines
    assert f" key 7 {MASK}" in lines
    # not secrets: stay as they are
    assert "username guest nopassword" in lines
    assert " key 1" in lines
    assert "snmp-server host 10.10.99.21 version 3 priv monitor" in lines
    assert "hostname DINKES-SW1" in lines


def test_ios_volatile_lines_dropped() -> None:
    c = clean("ios", IOS)
    assert c.ignored == 5
    for gone in ("Building configuration", "Current configuration", "Last configuration change",
                 "NVRAM config last updated", "ntp clock-period"):
        assert gone not in c.content
    assert "ntp server 203.0.113.1" in c.content
    assert c.content.startswith("!\n") and c.content.endswith("end\n")


def test_only_volatile_differences_give_the_same_hash() -> None:
    later = (IOS.replace("3781 bytes", "3790 bytes")
             .replace("09:12:44 WIB Tue Nov 24", "17:40:01 WIB Wed Nov 25")
             .replace("09:15:02 WIB Tue Nov 24", "17:41:00 WIB Wed Nov 25")
             .replace("ntp clock-period 36028575", "ntp clock-period 36028601")
             .replace("\n", "\r\n") + "\n\n")
    a = snapshot("sw1", "napalm:ios", "ios", IOS, NOW)
    b = snapshot("sw1", "napalm:ios", "ios", later, NOW)
    assert a.sha256 == b.sha256 and a.content == b.content


def test_password_change_changes_hash_and_never_shows() -> None:
    key = fingerprint_key("sw1", b"the-ssh-password")
    changed = IOS.replace("0822455D0A16544541", "1511021F07257A767B")
    a = snapshot("sw1", "napalm:ios", "ios", IOS, NOW, key)
    b = snapshot("sw1", "napalm:ios", "ios", changed, NOW, key)
    assert a.sha256 != b.sha256
    for snap in (a, b):
        assert "0822455D0A16544541" not in snap.content
        assert "1511021F07257A767B" not in snap.content
        assert "0822455D0A16544541" not in snap.model_dump_json()
        assert snap.masked_secrets == len(IOS_SECRETS)
    assert b.sha256 == hashlib.sha256(b.content.encode()).hexdigest()
    # only the changed line differs; the fingerprint is 8 hex digits
    diff = [(x, y) for x, y in zip(a.content.splitlines(), b.content.splitlines(), strict=True)
            if x != y]
    assert len(diff) == 1
    assert re.fullmatch(r"username netops privilege 15 password 7 <masked:[0-9a-f]{8}>",
                        diff[0][1])
    # same secret, same key: same snapshot; other key: other fingerprint
    assert snapshot("sw1", "napalm:ios", "ios", IOS, NOW, key).sha256 == a.sha256
    other = fingerprint_key("sw1", b"another-password")
    assert snapshot("sw1", "napalm:ios", "ios", IOS, NOW, other).sha256 != a.sha256
    # without a key the value is plainly masked, so only volatile-insensitive
    assert snapshot("sw1", "d", "ios", IOS).sha256 == snapshot("sw1", "d", "ios", changed).sha256


def test_agent_key_overrides_the_credential_key() -> None:
    from agent import configbackup

    with pytest.raises(ValueError):
        set_fingerprint_key(b"short")
    old = configbackup._agent_key
    try:
        set_fingerprint_key(b"k" * 32)
        assert fingerprint_key("sw1", b"pw1") == fingerprint_key("sw1", b"pw2")
        assert fingerprint_key("sw1", None) != fingerprint_key("sw2", None)
    finally:
        configbackup._agent_key = old
    assert fingerprint_key("sw1", None) is None


def test_real_config_change_changes_hash() -> None:
    a = snapshot("sw1", "napalm:ios", "ios", IOS, NOW)
    b = snapshot("sw1", "napalm:ios", "ios", IOS.replace("LAN KANTOR", "LAN KANTOR LT2"), NOW)
    assert a.sha256 != b.sha256


@pytest.mark.parametrize("platform, file, secrets, masked, ignored, keep", [
    ("eos", "eos/show_running-config.txt",
     ["$6$EkriX8oB5g3Midq4", " version 2c test"], 3, 1,
     ["hostname arista_eos",
      "! device: arista_eos (cEOSLab, EOS-4.26.0F-21792469.4260F (engineering build))"]),
    ("huawei_vrp", "huawei_vrp/display_current-configuration.txt",
     ["$1c$K]u7Tr3", "$1c$Pd8=Mz", "b3&AqM(x", "rJ5T1uI}lGz", "5Nf}W4!bYq", "Q8n$w2Lk@Z",
      "x7Y!kP2m@R", "Vz2;P9*d^H"], 8, 3,
     ["sysname DINKES-AR6120", "ssh user netops authentication-type password", "return"]),
    ("junos", "junos/show_configuration.txt",
     ["$6$kL8Fq2", "$6$Zq1Wx2", "$9$", "k0munitas-Rahasia"], 6, 1,
     ["version 21.4R3-S5.4;", "    community CUST-A members 65000:100;",
      '        encrypted-password "<masked>";']),
    ("routeros", "routeros/export.txt",
     ["Telkom#2024", "Rahasia 123!", "IpsecS3cret", "PppS3cret!", "RadiusKey9",
      "komunitas-rahasia"], 7, 1,
     ["# software id = 9XQK-7HBE", "set name=RTR-DISKOMINFO-BOGOR",
      "add action=accept chain=input comment=\"allow winbox from NOC\" dst-port=8291 "
      "protocol=tcp src-address=192.168.10.0/24"]),
    ("ios", "ios/show_running-config.txt",
     ["password 0 cisco", "$1$clqS$3CzLxkeHVJ9OYW83DOjuN/"], 2, 0,
     ["hostname kantor-rtr", "no service password-encryption"]),
])
def test_recorded_configs(platform: str, file: str, secrets: list[str], masked: int,
                          ignored: int, keep: list[str]) -> None:
    text = (DATA / file).read_text(encoding="utf-8")
    for s in secrets:
        assert s in text, f"test data lost its secret {s!r}"
    c = clean(platform, text)
    for s in secrets:
        assert s not in c.content, s
    assert (c.masked, c.ignored) == (masked, ignored)
    lines = c.content.splitlines()
    for k in keep:
        assert k in lines, k


def test_routeros_header_date_is_volatile() -> None:
    text = (DATA / "routeros" / "export.txt").read_text()
    v7 = text.replace("# nov/25/2026 12:00:01 by RouterOS 6.49.10",
                      "# 2026-11-26 08:00:00 by RouterOS 6.49.10")
    assert snapshot("r", "d", "routeros", text).sha256 == \
        snapshot("r", "d", "routeros", v7).sha256


def test_junos_and_huawei_headers_are_volatile() -> None:
    j = (DATA / "junos" / "show_configuration.txt").read_text()
    assert clean("junos", j).content == clean(
        "junos", j.replace("2026-11-24 09:30:12 WIB by netops", "2026-11-25 10:00:00 WIB by x")
        + "{master:0}\n").content
    h = (DATA / "huawei_vrp" / "display_current-configuration.txt").read_text()
    assert clean("huawei_vrp", h).content == clean(
        "huawei_vrp", h.replace("09:12:44+07:00", "11:11:11+07:00")).content


def test_junos_set_format() -> None:
    text = ('set system root-authentication encrypted-password "$6$abc$def"\n'
            "set snmp community Rahasia-RO authorization read-only\n"
            'set protocols ospf area 0 interface ge-0/0/0.0 authentication md5 1 key "$9$xyz"\n'
            "set policy-options community CUST members 65000:100\n")
    c = clean("junos", text)
    assert "$6$abc" not in c.content and "Rahasia-RO" not in c.content and "$9$xyz" not in c.content
    assert "set policy-options community CUST members 65000:100" in c.content
    assert c.masked == 3


def test_linux_has_no_masking_but_is_normalised() -> None:
    c = clean("linux", "a  \r\nb\r\n\r\n")
    assert (c.content, c.masked, c.ignored) == ("a\nb\n", 0, 0)


def test_every_driver_platform_has_a_profile() -> None:
    assert set(PROFILES) == {"ios", "eos", "junos", "huawei_vrp", "routeros", "linux"}


def test_unknown_platform_and_empty_config_are_errors() -> None:
    with pytest.raises(DriverError) as e:
        clean("nxos", "hostname x\n")
    assert e.value.kind == "config" and "ios" in str(e.value)
    with pytest.raises(DriverError) as e:
        snapshot("sw1", "napalm:ios", "ios", "Building configuration...\n\n", NOW)
    assert e.value.kind == "parse"
