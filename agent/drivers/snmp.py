"""SNMP driver (platform ``snmp``): discovery of any device that speaks SNMP v2c or v3.

Reads, with numeric OIDs only (no MIB files):

* SNMPv2-MIB system group; IP-MIB ipForwarding; BRIDGE-MIB dot1dBaseNumPorts
* IF-MIB ifTable + ifXTable (ifName, ifAlias, ifHighSpeed, 64-bit counters when present)
* IP-MIB ipAddrTable + ipAddressTable (addresses), ipNetToPhysicalTable or ipNetToMediaTable
  (ARP/ND), IP-FORWARD-MIB inetCidrRouteTable, else ipCidrRouteTable, else ipRouteTable
* LLDP-MIB lldpRemTable, lldpLocPortTable, lldpRemManAddrTable
* ENTITY-MIB entPhysicalTable (the chassis row: model, serial, software/firmware revision)
* Q-BRIDGE-MIB dot1qTpFdbTable, else BRIDGE-MIB dot1dTpFdbTable (+ dot1dBasePortIfIndex);
  per VLAN on Cisco (community@vlan / context vlan-N)

Vendor differences (where serial/model/version live, role hints) come from the YAML profiles
in ``snmp_profiles/``, matched on sysObjectID. The poll runs on the agent's one asyncio SNMP
engine (:mod:`agent.snmp_engine`); :meth:`SnmpDriver.poll_async` is the native entry point,
:meth:`SnmpDriver.poll` a blocking wrapper.

A table that fails gives ``partial`` with the table named in ``error``; no answer to the
system group gives ``failed`` (``error_type`` timeout, auth, ...). Malformed values (wrong
type, bad MAC length, huge strings, negative counters, broken indexes) are dropped or
truncated and counted in ``notes``; they never fail the poll.

Example result (trimmed)::

    {"kind": "device", "device": "dinkes-sw1", "driver": "snmp", "status": "ok",
     "hostname": "dinkes-sw1", "vendor": "Cisco", "model": "WS-C2960X-48TS-L",
     "serial": "FOC1234X0AB", "os_version": "15.2(7)E4", "role": "switch",
     "interfaces": [{"name": "Gi1/0/1", "index": 10101, "description": "R101-A01",
                     "oper_up": true, "speed_mbps": 1000.0, "mac": "00:1b:54:aa:01:01"}],
     "lldp_neighbors": [{"local_port": "Gi1/0/48", "remote_system_name": "dinkes-rtr",
                         "remote_port_id": "ether2", "remote_mgmt_address": "10.20.0.1"}],
     "notes": ["ifPhysAddress not 6 bytes, dropped: 1 (ifIndex 5)"]}
"""

from __future__ import annotations

import asyncio
import bisect
import ipaddress
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import ValidationError

from agent.config import DeviceCfg
from agent.drivers import DriverError, register
from agent.drivers.snmp_profiles import Profile, ProfileSet, default_profiles
from agent.snmp_engine import (
    OID,
    SnmpHub,
    SnmpSession,
    SnmpValue,
    Varbind,
    WalkResult,
    oid,
    oid_str,
)
from contract.report import (
    INT64_MAX,
    ArpEntry,
    ConfigSnapshot,
    DeviceAddress,
    DeviceInterface,
    DeviceObservation,
    FdbEntry,
    LldpNeighbor,
    PollStatus,
    Route,
    utcnow,
)

PLATFORM = "snmp"
MAX_ERROR = 2048
MAX_NOTES = 50
MAX_VLANS = 64           # per-VLAN FDB reads on one device
ROUTE_ROWS = 4096        # contract limit; a full BGP table is not walked
TABLE_ROWS = 16_384


def _o(text: str) -> OID:
    return oid(text)


# --- OIDs --------------------------------------------------------------------------------------

SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME = _o("1.3.6.1.2.1.1.1.0"), _o("1.3.6.1.2.1.1.2.0"), \
    _o("1.3.6.1.2.1.1.3.0")
SYS_CONTACT, SYS_NAME, SYS_LOCATION = _o("1.3.6.1.2.1.1.4.0"), _o("1.3.6.1.2.1.1.5.0"), \
    _o("1.3.6.1.2.1.1.6.0")
IP_FORWARDING = _o("1.3.6.1.2.1.4.1.0")
DOT1D_NUM_PORTS = _o("1.3.6.1.2.1.17.1.2.0")
SCALARS = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_CONTACT, SYS_NAME, SYS_LOCATION,
           IP_FORWARDING, DOT1D_NUM_PORTS)

IF = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."
IF_DESCR, IF_TYPE, IF_MTU, IF_SPEED, IF_PHYS = (_o(IF + c) for c in ("2", "3", "4", "5", "6"))
IF_ADMIN, IF_OPER = _o(IF + "7"), _o(IF + "8")
IF_IN_OCT, IF_IN_DISC, IF_IN_ERR = _o(IF + "10"), _o(IF + "13"), _o(IF + "14")
IF_OUT_OCT, IF_OUT_DISC, IF_OUT_ERR = _o(IF + "16"), _o(IF + "19"), _o(IF + "20")
IFX_NAME, IFX_HC_IN, IFX_HC_OUT = _o(IFX + "1"), _o(IFX + "6"), _o(IFX + "10")
IFX_HIGH_SPEED, IFX_ALIAS = _o(IFX + "15"), _o(IFX + "18")
IF_COLUMNS = (IF_DESCR, IF_TYPE, IF_MTU, IF_SPEED, IF_PHYS, IF_ADMIN, IF_OPER, IF_IN_OCT,
              IF_IN_DISC, IF_IN_ERR, IF_OUT_OCT, IF_OUT_DISC, IF_OUT_ERR)
IFX_COLUMNS = (IFX_NAME, IFX_HC_IN, IFX_HC_OUT, IFX_HIGH_SPEED, IFX_ALIAS)

IPADDR_IFINDEX, IPADDR_MASK = _o("1.3.6.1.2.1.4.20.1.2"), _o("1.3.6.1.2.1.4.20.1.3")
IPADDRESS_IFINDEX, IPADDRESS_TYPE, IPADDRESS_PREFIX = (
    _o("1.3.6.1.2.1.4.34.1.3"), _o("1.3.6.1.2.1.4.34.1.4"), _o("1.3.6.1.2.1.4.34.1.5"))
ADDRESS_COLUMNS = (IPADDR_IFINDEX, IPADDR_MASK, IPADDRESS_IFINDEX, IPADDRESS_TYPE,
                   IPADDRESS_PREFIX)

NETPHYS_PHYS, NETPHYS_TYPE = _o("1.3.6.1.2.1.4.35.1.4"), _o("1.3.6.1.2.1.4.35.1.6")
NETMEDIA_PHYS, NETMEDIA_TYPE = _o("1.3.6.1.2.1.4.22.1.2"), _o("1.3.6.1.2.1.4.22.1.4")

INET_ROUTE_IFINDEX, INET_ROUTE_TYPE, INET_ROUTE_METRIC = (
    _o("1.3.6.1.2.1.4.24.7.1.7"), _o("1.3.6.1.2.1.4.24.7.1.8"), _o("1.3.6.1.2.1.4.24.7.1.12"))
CIDR_ROUTE_IFINDEX, CIDR_ROUTE_TYPE, CIDR_ROUTE_METRIC = (
    _o("1.3.6.1.2.1.4.24.4.1.5"), _o("1.3.6.1.2.1.4.24.4.1.6"), _o("1.3.6.1.2.1.4.24.4.1.11"))
RT_IFINDEX, RT_METRIC, RT_NEXTHOP, RT_TYPE, RT_MASK = (
    _o("1.3.6.1.2.1.4.21.1.2"), _o("1.3.6.1.2.1.4.21.1.3"), _o("1.3.6.1.2.1.4.21.1.7"),
    _o("1.3.6.1.2.1.4.21.1.8"), _o("1.3.6.1.2.1.4.21.1.11"))

LLDP = "1.0.8802.1.1.2.1."
LLDP_LOC_PORT_SUBTYPE, LLDP_LOC_PORT_ID, LLDP_LOC_PORT_DESC = (
    _o(LLDP + "3.7.1.2"), _o(LLDP + "3.7.1.3"), _o(LLDP + "3.7.1.4"))
LLDP_REM = {c: _o(f"{LLDP}4.1.1.{c}") for c in range(4, 13)}
(LLDP_REM_CHASSIS_SUBTYPE, LLDP_REM_CHASSIS_ID, LLDP_REM_PORT_SUBTYPE, LLDP_REM_PORT_ID,
 LLDP_REM_PORT_DESC, LLDP_REM_SYS_NAME, LLDP_REM_SYS_DESC, LLDP_REM_CAP_SUPPORTED,
 LLDP_REM_CAP_ENABLED) = (LLDP_REM[c] for c in range(4, 13))
LLDP_REM_MAN_IF_SUBTYPE = _o(LLDP + "4.2.1.3")

ENT = "1.3.6.1.2.1.47.1.1.1.1."
ENT_CONTAINED_IN, ENT_CLASS = _o(ENT + "4"), _o(ENT + "5")
ENT_FIELDS = {"descr": _o(ENT + "2"), "name": _o(ENT + "7"), "hardware_rev": _o(ENT + "8"),
              "firmware_rev": _o(ENT + "9"), "software_rev": _o(ENT + "10"),
              "serial": _o(ENT + "11"), "mfg_name": _o(ENT + "12"),
              "model_name": _o(ENT + "13")}

DOT1D_BASE_PORT_IFINDEX = _o("1.3.6.1.2.1.17.1.4.1.2")
DOT1D_FDB_PORT, DOT1D_FDB_STATUS = _o("1.3.6.1.2.1.17.4.3.1.2"), _o("1.3.6.1.2.1.17.4.3.1.3")
DOT1Q_FDB_PORT, DOT1Q_FDB_STATUS = (_o("1.3.6.1.2.1.17.7.1.2.2.1.2"),
                                    _o("1.3.6.1.2.1.17.7.1.2.2.1.3"))
CISCO_VTP_VLAN_STATE = _o("1.3.6.1.4.1.9.9.46.1.3.1.1.2.1")

# the first column of every table the plan may walk (see collect(): one GETNEXT for all)
IFX_ENTRY = _o("1.3.6.1.2.1.31.1.1.1")
PROBES = (IFX_ENTRY, ENT_CLASS, IPADDR_IFINDEX, IPADDRESS_IFINDEX, NETPHYS_PHYS,
          NETMEDIA_PHYS, INET_ROUTE_IFINDEX, CIDR_ROUTE_IFINDEX, RT_IFINDEX,
          LLDP_REM_CHASSIS_SUBTYPE, DOT1Q_FDB_PORT, DOT1D_FDB_PORT, CISCO_VTP_VLAN_STATE)

# IANAifType names for the common types; others are reported as "iana-<n>"
IF_TYPES = {1: "other", 6: "ethernetCsmacd", 18: "ds1", 22: "propPointToPointSerial",
            23: "ppp", 24: "softwareLoopback", 32: "frameRelay", 53: "propVirtual",
            71: "ieee80211", 94: "adsl", 117: "gigabitEthernet", 131: "tunnel",
            135: "l2vlan", 136: "l3ipvlan", 142: "ipForward", 150: "mplsTunnel",
            161: "ieee8023adLag", 166: "mpls", 169: "shdsl", 209: "bridge", 237: "ieee80216WMAN",
            243: "wwanPP", 244: "wwanPP2", 250: "gpon"}
LLDP_CAPS = ("other", "repeater", "bridge", "wlanAccessPoint", "router", "telephone",
             "docsisCableDevice", "stationOnly")


# --- where the data comes from -------------------------------------------------------------------

class SnmpSource(Protocol):
    """A device to read from: a live :class:`SnmpSession` or a recorded walk."""

    host: str

    async def get(self, oids: Sequence[OID]) -> dict[OID, SnmpValue | None]: ...

    async def walk(self, columns: Sequence[OID], *, max_rows: int = ...) -> WalkResult: ...

    async def present(self, columns: Sequence[OID]) -> set[OID]: ...

    def vlan_source(self, vlan: int) -> AbstractAsyncContextManager[SnmpSource] | None:
        """The same device seen in one VLAN's context (Cisco per-VLAN BRIDGE-MIB)."""
        ...


class RecordedSource:
    """Answers GET and walks from recorded varbinds (``snmpbulkwalk -On`` output parsed by
    :func:`agent.snmp_engine.parse_walk_text`). ``contexts`` holds per-VLAN recordings."""

    def __init__(self, varbinds: Iterable[Varbind], host: str = "recorded",
                 contexts: Mapping[str, Iterable[Varbind]] | None = None) -> None:
        self.host = host
        self.data: dict[OID, SnmpValue] = dict(varbinds)
        self.sorted = sorted(self.data)
        self.contexts = {k: list(v) for k, v in (contexts or {}).items()}

    async def get(self, oids: Sequence[OID]) -> dict[OID, SnmpValue | None]:
        return {o: self.data.get(o) for o in oids}

    async def present(self, columns: Sequence[OID]) -> set[OID]:
        found = set()
        for col in columns:
            i = bisect.bisect_right(self.sorted, col)
            if i < len(self.sorted) and self.sorted[i][:len(col)] == col:
                found.add(col)
        return found

    async def walk(self, columns: Sequence[OID], *, max_rows: int = 10_000) -> WalkResult:
        res = WalkResult(columns={c: {} for c in columns})
        for col in columns:
            i = bisect.bisect_right(self.sorted, col)
            rows = res.columns[col]
            while i < len(self.sorted) and self.sorted[i][:len(col)] == col:
                if len(rows) >= max_rows:
                    res.truncated = True
                    break
                name = self.sorted[i]
                rows[name[len(col):]] = self.data[name]
                res.varbinds += 1
                i += 1
        return res

    def vlan_source(self, vlan: int) -> AbstractAsyncContextManager[SnmpSource] | None:
        data = self.contexts.get(f"vlan-{vlan}")
        if data is None:
            return None

        @asynccontextmanager
        async def ctx() -> AsyncIterator[SnmpSource]:
            yield RecordedSource(data, self.host)

        return ctx()


class _LiveSource:
    def __init__(self, session: SnmpSession, device: DeviceCfg) -> None:
        self.session, self.device = session, device
        self.host = session.host

    async def get(self, oids: Sequence[OID]) -> dict[OID, SnmpValue | None]:
        return await self.session.get(oids)

    async def walk(self, columns: Sequence[OID], *, max_rows: int = 10_000) -> WalkResult:
        return await self.session.walk(columns, max_rows=max_rows)

    async def present(self, columns: Sequence[OID]) -> set[OID]:
        return await self.session.present(columns)

    def vlan_source(self, vlan: int) -> AbstractAsyncContextManager[SnmpSource] | None:
        cfg = self.device.snmp
        assert cfg is not None
        hub = self.session.hub

        @asynccontextmanager
        async def ctx() -> AsyncIterator[SnmpSource]:
            if cfg.version == "2c":
                sub = SnmpSession(self.device.host, cfg, hub=hub, community_suffix=f"@{vlan}")
            else:
                sub = SnmpSession(self.device.host, cfg, hub=hub, context=f"vlan-{vlan}")
            async with sub:
                yield _LiveSource(sub, self.device)

        return ctx()


# --- notes on dropped / truncated values ----------------------------------------------------------

class Notes:
    """Counts what was dropped or truncated, a few examples each; rendered into ``notes``."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[int, list[str]]] = {}

    def add(self, what: str, example: str = "") -> None:
        count, examples = self._items.get(what, (0, []))
        if example and len(examples) < 3:
            examples.append(example[:60])
        self._items[what] = (count + 1, examples)

    def render(self) -> list[str]:
        out = []
        for what, (count, examples) in self._items.items():
            ex = f" ({', '.join(examples)}{', ...' if count > len(examples) else ''})" \
                if examples else ""
            out.append(f"{what}: {count}{ex}"[:512])
        if len(out) > MAX_NOTES:
            out = [*out[:MAX_NOTES - 1], f"{len(out) - MAX_NOTES + 1} more kinds of notes"]
        return out

    def __contains__(self, what: str) -> bool:
        return what in self._items


# --- value coercion (garbage in, clean values or None out) ----------------------------------------

_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_INT_KINDS = {"INTEGER", "Counter32", "Counter64", "Gauge32", "Timeticks"}


def text(v: SnmpValue | None, what: str, notes: Notes, maxlen: int = 255,
         where: str = "") -> str | None:
    """A display string: UTF-8 (invalid bytes replaced), control characters removed,
    trimmed, truncated to ``maxlen`` (noted). Wrong types are dropped (noted)."""
    if v is None:
        return None
    if isinstance(v.value, bytes):
        s = v.value.decode("utf-8", "replace")
    elif v.kind in _INT_KINDS and isinstance(v.value, int):
        s = str(v.value)  # a number where text was expected: harmless, keep it
    else:
        notes.add(f"{what} has wrong type {v.kind}, dropped", where)
        return None
    s = _CTRL.sub(" ", s).strip()
    if len(s) > maxlen:
        notes.add(f"{what} longer than {maxlen} characters, truncated", where)
        s = s[:maxlen].rstrip()
    return s


def uint(v: SnmpValue | None, what: str, notes: Notes, *, maximum: int = INT64_MAX,
         where: str = "") -> int | None:
    """A non-negative integer; negative, too large or non-numeric values are dropped (noted).

    The default bound is the report contract's (signed 64-bit, what SQL and InfluxDB hold): a
    Counter64 past 2^63 - 1 is a broken agent's value, not traffic (23 years at 100 Gbit/s).
    """
    if v is None:
        return None
    if v.kind not in _INT_KINDS or not isinstance(v.value, int):
        notes.add(f"{what} has wrong type {v.kind}, dropped", where)
        return None
    if v.value < 0 or v.value > maximum:
        notes.add(f"{what} out of range, dropped", where)
        return None
    return v.value


def sint(v: SnmpValue | None) -> int | None:
    """An enumeration / signed integer, or None for anything else (callers validate)."""
    if v is None or v.kind not in _INT_KINDS or not isinstance(v.value, int):
        return None
    return v.value


def mac(v: SnmpValue | None, what: str, notes: Notes, where: str = "",
        quiet_lengths: tuple[int, ...] = (0,)) -> str | None:
    """Six octets as ``aa:bb:cc:dd:ee:ff``; other lengths are dropped (noted unless in
    ``quiet_lengths``, e.g. tunnels with 4-byte addresses are normal)."""
    if v is None:
        return None
    raw = v.value
    if not isinstance(raw, bytes):
        notes.add(f"{what} has wrong type {v.kind}, dropped", where)
        return None
    if len(raw) != 6:
        if len(raw) not in quiet_lengths:
            notes.add(f"{what} not 6 bytes, dropped", where)
        return None
    return ":".join(f"{b:02x}" for b in raw)


def _mac_from_index(idx: OID) -> str | None:
    if len(idx) != 6 or any(b > 255 for b in idx):
        return None
    return ":".join(f"{b:02x}" for b in idx)


def _inet(addr_type: int, raw: Sequence[int]) -> str | None:
    """InetAddress bytes of an InetAddressType (1 ipv4, 2 ipv6, 3 ipv4z, 4 ipv6z)."""
    if any(b > 255 for b in raw):
        return None
    data = bytes(raw)
    if addr_type in (1, 3) and len(data) in (4, 8):
        return str(ipaddress.IPv4Address(data[:4]))
    if addr_type in (2, 4) and len(data) in (16, 20):
        return str(ipaddress.IPv6Address(data[:16]))
    return None


def _ipv4_from(v: SnmpValue | None) -> str | None:
    if v is None or not isinstance(v.value, bytes) or len(v.value) != 4:
        return None
    return str(ipaddress.IPv4Address(v.value))


def _mask_len(mask: str | None) -> int | None:
    if mask is None:
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
    except ValueError:
        return None  # not a contiguous mask


def _bits(v: SnmpValue | None, names: Sequence[str]) -> list[str]:
    if v is None or not isinstance(v.value, bytes):
        return []
    out = []
    for i, name in enumerate(names):
        byte, bit = divmod(i, 8)
        if byte < len(v.value) and v.value[byte] & (0x80 >> bit):
            out.append(name)
    return out


def _printable(raw: bytes) -> bool:
    return bool(raw) and all(32 <= b < 127 for b in raw)


# --- what one poll read -------------------------------------------------------------------------

@dataclass
class Collected:
    """Raw answers of one poll, table by table, plus failures and notes."""

    scalars: dict[OID, SnmpValue | None] = field(default_factory=dict)
    tables: dict[OID, dict[OID, SnmpValue]] = field(default_factory=dict)
    entity: dict[str, str] = field(default_factory=dict)
    vlan_fdb: list[tuple[int, dict[OID, dict[OID, SnmpValue]]]] = field(default_factory=list)
    failures: list[tuple[str, DriverError]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    notes: Notes = field(default_factory=Notes)
    varbinds: int = 0

    def col(self, column: OID) -> dict[OID, SnmpValue]:
        return self.tables.get(column, {})

    def add(self, res: WalkResult, what: str) -> None:
        for c, rows in res.columns.items():
            self.tables.setdefault(c, {}).update(rows)
        self.varbinds += res.varbinds
        if res.truncated:
            self.truncated.append(what)


async def _walk(src: SnmpSource, out: Collected, what: str, columns: Sequence[OID],
                max_rows: int = TABLE_ROWS) -> int:
    res = await src.walk(columns, max_rows=max_rows)
    out.add(res, what)
    return max((len(r) for r in res.columns.values()), default=0)


SECTIONS = ("interfaces", "entity", "addresses", "arp", "routes", "lldp", "fdb")


async def collect(src: SnmpSource, profiles: ProfileSet, *,
                  deadline: float | None = None) -> tuple[Collected, Profile]:
    """Read everything from ``src``. Raises :class:`DriverError` only when the system group
    cannot be read (nothing usable); later failures are recorded per section."""
    out = Collected()
    out.scalars = await src.get(SCALARS)
    if out.scalars.get(SYS_OBJECT_ID) is None and out.scalars.get(SYS_DESCR) is None:
        raise DriverError("protocol", f"{src.host} answered but has no SNMPv2-MIB system "
                                      "group (sysDescr, sysObjectID)")
    sys_oid = out.scalars.get(SYS_OBJECT_ID)
    profile = profiles.match(sys_oid.value if sys_oid and isinstance(sys_oid.value, tuple)
                             else None)
    if isinstance(src, _LiveSource) and profile.max_repetitions:
        src.session.max_repetitions = min(src.session.max_repetitions, profile.max_repetitions)
    fact_oids = [oid(t) for t in profile.fact_oids()]
    consecutive_timeouts = 0

    async def section(name: str, fn: Callable[[], Any]) -> None:
        nonlocal consecutive_timeouts
        if consecutive_timeouts >= 2:
            out.failures.append((name, DriverError("timeout", "skipped: the device stopped "
                                                              "answering")))
            return
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            out.failures.append((name, DriverError("timeout", "skipped: the device's "
                                                              "timeout_s is used up")))
            return
        try:
            await asyncio.wait_for(fn(), remaining)
        except TimeoutError:
            out.failures.append((name, DriverError("timeout", "the device's timeout_s ran "
                                                              "out during this table")))
            consecutive_timeouts = 2
            return
        except DriverError as e:
            out.failures.append((name, e))
            consecutive_timeouts = consecutive_timeouts + 1 if e.kind == "timeout" else 0
            return
        consecutive_timeouts = 0

    # One GETNEXT tells which tables exist; absent ones are not walked (a GETBULK into an
    # absent table returns max-repetitions values of whatever follows it).
    have: set[OID] | None = None

    def has(col: OID) -> bool:
        return have is None or col in have

    async def probe() -> None:
        nonlocal have
        have = await src.present(PROBES)

    async def facts() -> None:
        out.scalars.update(await src.get(fact_oids))

    async def interfaces() -> None:
        cols = IF_COLUMNS + (IFX_COLUMNS if has(IFX_ENTRY) else ())
        await _walk(src, out, "interfaces", cols, 4096)

    async def entity() -> None:
        if not has(ENT_CLASS):
            return
        classes = await src.walk([ENT_CLASS, ENT_CONTAINED_IN], max_rows=20_000)
        out.add(classes, "entity")
        chassis = _chassis_index(classes.columns[ENT_CLASS], classes.columns[ENT_CONTAINED_IN])
        if chassis is None:
            return
        got = await src.get([col + chassis for col in ENT_FIELDS.values()])
        for fname, col in ENT_FIELDS.items():
            value = text(got.get(col + chassis), f"entPhysical {fname}", out.notes)
            if value:
                out.entity[fname] = value

    async def addresses() -> None:
        cols: tuple[OID, ...] = (IPADDR_IFINDEX, IPADDR_MASK) if has(IPADDR_IFINDEX) else ()
        if has(IPADDRESS_IFINDEX):
            cols += (IPADDRESS_IFINDEX, IPADDRESS_TYPE, IPADDRESS_PREFIX)
        if cols:
            await _walk(src, out, "addresses", cols)

    async def arp() -> None:
        if has(NETPHYS_PHYS) and await _walk(src, out, "arp", (NETPHYS_PHYS, NETPHYS_TYPE)):
            return
        if has(NETMEDIA_PHYS):
            await _walk(src, out, "arp", (NETMEDIA_PHYS, NETMEDIA_TYPE))

    async def routes() -> None:
        # the IPv4 default route sorts first in every route table, so a table cut at
        # ROUTE_ROWS still has it
        for first, cols in ((INET_ROUTE_IFINDEX, (INET_ROUTE_TYPE, INET_ROUTE_METRIC)),
                            (CIDR_ROUTE_IFINDEX, (CIDR_ROUTE_TYPE, CIDR_ROUTE_METRIC)),
                            (RT_IFINDEX, (RT_METRIC, RT_NEXTHOP, RT_TYPE, RT_MASK))):
            if has(first) and await _walk(src, out, "routes", (first, *cols), ROUTE_ROWS):
                return

    async def lldp() -> None:
        if has(LLDP_REM_CHASSIS_SUBTYPE) and await _walk(src, out, "lldp",
                                                          tuple(LLDP_REM.values()), 4096):
            await _walk(src, out, "lldp", (LLDP_LOC_PORT_SUBTYPE, LLDP_LOC_PORT_ID,
                                           LLDP_LOC_PORT_DESC, LLDP_REM_MAN_IF_SUBTYPE), 4096)

    async def fdb() -> None:
        if has(DOT1Q_FDB_PORT) and await _walk(src, out, "fdb", (DOT1Q_FDB_PORT,
                                                                 DOT1Q_FDB_STATUS)):
            await _walk(src, out, "fdb", (DOT1D_BASE_PORT_IFINDEX,), 8192)
            return
        if profile.fdb_vlan_context == "cisco_community" and has(CISCO_VTP_VLAN_STATE) \
                and await _vlan_fdb(src, out):
            return
        if has(DOT1D_FDB_PORT) and await _walk(src, out, "fdb", (DOT1D_FDB_PORT,
                                                                 DOT1D_FDB_STATUS)):
            await _walk(src, out, "fdb", (DOT1D_BASE_PORT_IFINDEX,), 8192)

    await section("tables", probe)
    if fact_oids:
        await section("facts", facts)
    steps = {"interfaces": interfaces, "entity": entity, "addresses": addresses, "arp": arp,
             "routes": routes, "lldp": lldp, "fdb": fdb}
    for name in SECTIONS:
        if name not in profile.skip:
            await section(name, steps[name])
    return out, profile


async def _vlan_fdb(src: SnmpSource, out: Collected) -> bool:
    """Cisco keeps one BRIDGE-MIB instance per VLAN (community@vlan, v3 context vlan-N);
    the default context is VLAN 1 only. False when the device lists no VLANs (no VTP MIB)."""
    states = await src.walk([CISCO_VTP_VLAN_STATE], max_rows=4096)
    vlans = [idx[0] for idx, v in states.columns[CISCO_VTP_VLAN_STATE].items()
             if len(idx) == 1 and sint(v) == 1 and 1 <= idx[0] <= 4094
             and not 1002 <= idx[0] <= 1005]
    if not vlans:
        return False
    if len(vlans) > MAX_VLANS:
        out.notes.add(f"more than {MAX_VLANS} VLANs, FDB read for the first {MAX_VLANS}")
        vlans = vlans[:MAX_VLANS]
    for vlan in vlans:
        ctx = src.vlan_source(vlan)
        if ctx is None:
            continue
        async with ctx as vsrc:
            res = await vsrc.walk([DOT1D_FDB_PORT, DOT1D_FDB_STATUS], max_rows=TABLE_ROWS)
            out.varbinds += res.varbinds
            if not res.columns[DOT1D_FDB_PORT]:
                continue
            ports = await vsrc.walk([DOT1D_BASE_PORT_IFINDEX], max_rows=8192)
            out.varbinds += ports.varbinds
            out.vlan_fdb.append((vlan, {**res.columns, **ports.columns}))
    return True


def _chassis_index(classes: Mapping[OID, SnmpValue],
                   contained: Mapping[OID, SnmpValue]) -> OID | None:
    """The chassis row: class chassis(3), preferring one contained in nothing (0); else a
    stack(11); lowest index first."""
    chassis = sorted(i for i, v in classes.items() if sint(v) == 3)
    top = [i for i in chassis if sint(contained.get(i)) == 0]
    if top or chassis:
        return (top or chassis)[0]
    stacks = sorted(i for i, v in classes.items() if sint(v) == 11)
    return stacks[0] if stacks else None


# --- tables -> contract models --------------------------------------------------------------------

def _ifindex(idx: OID) -> int | None:
    return idx[0] if len(idx) == 1 and 0 < idx[0] <= 0x7FFFFFFF else None


def build_interfaces(c: Collected, profile: Profile) -> tuple[list[DeviceInterface],
                                                               dict[int, str]]:
    notes = c.notes
    indexes: set[int] = set()
    for col in IF_COLUMNS + IFX_COLUMNS:
        for idx in c.col(col):
            i = _ifindex(idx)
            if i is None:
                notes.add("interface row with a malformed ifIndex, dropped", oid_str(idx))
            else:
                indexes.add(i)
    out: list[DeviceInterface] = []
    names: dict[int, str] = {}
    for i in sorted(indexes):
        k, w = (i,), f"ifIndex {i}"
        if_name = text(c.col(IFX_NAME).get(k), "ifName", notes, where=w)
        if_descr = text(c.col(IF_DESCR).get(k), "ifDescr", notes, where=w)
        name = (if_descr or if_name) if profile.interface_name == "ifDescr" \
            else (if_name or if_descr)
        name = name or f"ifIndex{i}"
        names[i] = name
        type_no = sint(c.col(IF_TYPE).get(k))
        high = uint(c.col(IFX_HIGH_SPEED).get(k), "ifHighSpeed", notes, maximum=2**32 - 1,
                    where=w)
        low = uint(c.col(IF_SPEED).get(k), "ifSpeed", notes, maximum=2**32 - 1, where=w)
        # ifSpeed saturates at 2^32-1 (4.29 Gbit/s); without ifHighSpeed that is unknown
        speed = float(high) if high else (low / 1e6 if low and low < 2**32 - 1 else None)
        admin, oper = sint(c.col(IF_ADMIN).get(k)), sint(c.col(IF_OPER).get(k))
        for what, st in (("ifAdminStatus", admin), ("ifOperStatus", oper)):
            if st is not None and not 1 <= st <= 7:
                notes.add(f"{what} outside 1..7, ignored", w)
        counters: dict[str, int | None] = {}
        for fname, hc, low_col in (("in_octets", IFX_HC_IN, IF_IN_OCT),
                                   ("out_octets", IFX_HC_OUT, IF_OUT_OCT)):
            v = uint(c.col(hc).get(k), f"{fname} (64-bit)", notes, where=w)
            counters[fname] = v if v is not None else uint(c.col(low_col).get(k), fname, notes,
                                                           maximum=2**32 - 1, where=w)
        for fname, col in (("in_errors", IF_IN_ERR), ("out_errors", IF_OUT_ERR),
                           ("in_discards", IF_IN_DISC), ("out_discards", IF_OUT_DISC)):
            counters[fname] = uint(c.col(col).get(k), fname, notes, maximum=2**32 - 1, where=w)
        out.append(DeviceInterface(
            name=name, index=i,
            description=text(c.col(IFX_ALIAS).get(k), "ifAlias", notes, where=w) or "",
            type=IF_TYPES.get(type_no, f"iana-{type_no}") if type_no is not None else None,
            mac=mac(c.col(IF_PHYS).get(k), "ifPhysAddress", notes, w, quiet_lengths=(0, 4, 8,
                                                                                      16, 20)),
            mtu=uint(c.col(IF_MTU).get(k), "ifMtu", notes, maximum=2**31 - 1, where=w),
            speed_mbps=speed,
            admin_up=None if admin is None or not 1 <= admin <= 7 else admin == 1,
            oper_up=None if oper is None or not 1 <= oper <= 7 else oper == 1,
            **counters))
    return out, names


def build_addresses(c: Collected, names: Mapping[int, str]) -> list[DeviceAddress]:
    notes = c.notes
    seen: dict[str, DeviceAddress] = {}
    for idx, v in c.col(IPADDR_IFINDEX).items():
        if len(idx) != 4 or any(b > 255 for b in idx):
            notes.add("ipAddrTable row with a malformed index, dropped", oid_str(idx))
            continue
        addr = ".".join(map(str, idx))
        mask_v = c.col(IPADDR_MASK).get(idx)
        plen = _mask_len(_ipv4_from(mask_v))
        if plen is None:
            notes.add("ipAdEntNetMask missing or not a netmask, address dropped", addr)
            continue
        ifi = sint(v)
        seen[addr] = DeviceAddress(interface=names.get(ifi) if ifi is not None else None,
                                   address=addr, prefix_len=plen)
    for idx, v in c.col(IPADDRESS_IFINDEX).items():
        if len(idx) < 3 or idx[1] != len(idx) - 2:
            notes.add("ipAddressTable row with a malformed index, dropped", oid_str(idx))
            continue
        inet = _inet(idx[0], idx[2:])
        if inet is None:
            notes.add("ipAddressTable address not IPv4/IPv6, dropped", oid_str(idx))
            continue
        if inet in seen or sint(c.col(IPADDRESS_TYPE).get(idx)) == 3:  # broadcast(3)
            continue
        pointer = c.col(IPADDRESS_PREFIX).get(idx)
        plen = pointer.value[-1] if pointer and isinstance(pointer.value, tuple) \
            and len(pointer.value) > 2 else None
        limit = 32 if ":" not in inet else 128
        if plen is None or not 0 <= plen <= limit:
            notes.add("ipAddressPrefix missing, host prefix assumed", inet)
            plen = limit
        ifi = sint(v)
        seen[inet] = DeviceAddress(interface=names.get(ifi) if ifi is not None else None,
                                   address=inet, prefix_len=plen)
    return _cap(list(seen.values()), 4096, "addresses", notes)


def build_arp(c: Collected, names: Mapping[int, str]) -> list[ArpEntry]:
    notes = c.notes
    out: dict[tuple[str, str | None], ArpEntry] = {}
    for idx, v in c.col(NETPHYS_PHYS).items():
        if len(idx) < 4 or idx[2] != len(idx) - 3:
            notes.add("ipNetToPhysicalTable row with a malformed index, dropped", oid_str(idx))
            continue
        ip = _inet(idx[1], idx[3:])
        if ip is None:
            notes.add("ipNetToPhysicalTable address not IPv4/IPv6, dropped", oid_str(idx))
            continue
        if sint(c.col(NETPHYS_TYPE).get(idx)) in (2, 5):  # invalid, local
            continue
        m = mac(v, "ipNetToPhysicalPhysAddress", notes, ip)
        if m is None or m == "00:00:00:00:00:00":
            continue
        port = names.get(idx[0])
        out[(ip, port)] = ArpEntry(ip=ip, mac=m, interface=port)
    for idx, v in c.col(NETMEDIA_PHYS).items():
        if len(idx) != 5 or any(b > 255 for b in idx[1:]):
            notes.add("ipNetToMediaTable row with a malformed index, dropped", oid_str(idx))
            continue
        ip = ".".join(map(str, idx[1:]))
        if sint(c.col(NETMEDIA_TYPE).get(idx)) == 2:  # invalid
            continue
        m = mac(v, "ipNetToMediaPhysAddress", notes, ip)
        if m is None or m == "00:00:00:00:00:00":
            continue
        port = names.get(idx[0])
        out.setdefault((ip, port), ArpEntry(ip=ip, mac=m, interface=port))
    return _cap(list(out.values()), 16_384, "ARP entries", notes)


def _parse_inet_route(idx: OID) -> tuple[str, int, str | None] | None:
    """inetCidrRouteTable index: dest type, len, dest, prefix len, policy (len + sub-ids),
    next-hop type, len, next hop."""
    try:
        dtype, dlen = idx[0], idx[1]
        dest = _inet(dtype, idx[2:2 + dlen])
        pos = 2 + dlen
        plen = idx[pos]
        pol_len = idx[pos + 1]
        pos += 2 + pol_len
        nhtype, nhlen = idx[pos], idx[pos + 1]
        nh_raw = idx[pos + 2:pos + 2 + nhlen]
        if pos + 2 + nhlen != len(idx) or dest is None or len(nh_raw) != nhlen:
            return None
        nh = _inet(nhtype, nh_raw) if nhlen else None
        if nhlen and nh is None:
            return None
    except IndexError:
        return None
    return dest, plen, nh


def build_routes(c: Collected, names: Mapping[int, str]) -> list[Route]:
    notes = c.notes
    # (destination, prefix length, next hop, ifIndex, metric); local/direct routes (type 3)
    # have no gateway whatever the table puts in the next-hop field
    rows: list[tuple[str, int, str | None, int | None, int | None]] = []
    plen: int | None
    nh: str | None
    for idx, v in c.col(INET_ROUTE_IFINDEX).items():
        parsed = _parse_inet_route(idx)
        if parsed is None:
            notes.add("inetCidrRouteTable row with a malformed index, dropped", oid_str(idx))
            continue
        dest, plen, nh = parsed
        if sint(c.col(INET_ROUTE_TYPE).get(idx)) == 3:
            nh = None
        rows.append((dest, plen, nh, sint(v), sint(c.col(INET_ROUTE_METRIC).get(idx))))
    if not rows:
        for idx, v in c.col(CIDR_ROUTE_IFINDEX).items():
            if len(idx) != 13 or any(b > 255 for b in idx):
                notes.add("ipCidrRouteTable row with a malformed index, dropped", oid_str(idx))
                continue
            plen = _mask_len(".".join(map(str, idx[4:8])))
            if plen is None:
                notes.add("ipCidrRouteMask not a netmask, route dropped", oid_str(idx))
                continue
            nh = None if sint(c.col(CIDR_ROUTE_TYPE).get(idx)) == 3 \
                else ".".join(map(str, idx[9:13]))
            rows.append((".".join(map(str, idx[:4])), plen, nh, sint(v),
                         sint(c.col(CIDR_ROUTE_METRIC).get(idx))))
    if not rows:
        for idx, v in c.col(RT_IFINDEX).items():
            if len(idx) != 4 or any(b > 255 for b in idx):
                notes.add("ipRouteTable row with a malformed index, dropped", oid_str(idx))
                continue
            rtype = sint(c.col(RT_TYPE).get(idx))
            if rtype == 2:  # invalid
                continue
            plen = _mask_len(_ipv4_from(c.col(RT_MASK).get(idx)))
            if plen is None:
                notes.add("ipRouteMask missing or not a netmask, route dropped", oid_str(idx))
                continue
            nh = None if rtype == 3 else _ipv4_from(c.col(RT_NEXTHOP).get(idx))
            rows.append((".".join(map(str, idx)), plen, nh, sint(v),
                         sint(c.col(RT_METRIC).get(idx))))
    out: dict[tuple[str, str | None, str | None], Route] = {}
    for dest, plen, nh, ifi, metric in rows:
        try:
            net = ipaddress.ip_network(f"{dest}/{plen}", strict=False)
        except ValueError:
            notes.add("route with an impossible prefix length, dropped", f"{dest}/{plen}")
            continue
        gw = nh if nh and not ipaddress.ip_address(nh).is_unspecified else None
        port = names.get(ifi) if ifi else None
        if port and len(port) > 64:  # the contract keeps route interfaces short
            notes.add("route interface name longer than 64 characters, truncated", port[:20])
            port = port[:64]
        key = (str(net), gw, port)
        out[key] = Route(destination=str(net), gateway=gw, interface=port,
                         metric=metric if metric and metric > 0 else 0)
    routes = sorted(out.values(), key=lambda r: (not r.destination.endswith("/0"),
                                                 ":" in r.destination))
    return _cap(routes, 4096, "routes", notes)


def _lldp_id(subtype: int | None, v: SnmpValue | None, mac_subtype: int, net_subtype: int,
             what: str, notes: Notes) -> str:
    if v is None:
        return ""
    raw = v.value if isinstance(v.value, bytes) else None
    if raw is None:
        return text(v, what, notes) or ""
    if subtype == mac_subtype and len(raw) == 6:
        return ":".join(f"{b:02x}" for b in raw)
    if subtype == net_subtype and len(raw) in (5, 17) and raw[0] in (1, 2):
        return str(ipaddress.ip_address(raw[1:]))
    if _printable(raw) or not raw:
        return text(v, what, notes) or ""
    try:
        decoded = raw.decode("utf-8")
        if decoded.isprintable():
            return decoded[:255]
    except UnicodeDecodeError:
        pass
    return ":".join(f"{b:02x}" for b in raw)[:255]


def build_lldp(c: Collected, names: Mapping[int, str],
               interfaces: Sequence[DeviceInterface]) -> list[LldpNeighbor]:
    notes = c.notes
    known = {i.name for i in interfaces}
    by_descr: dict[str, str] = {}
    mgmt: dict[OID, str] = {}
    for idx in c.col(LLDP_REM_MAN_IF_SUBTYPE):
        # timeMark, localPortNum, remIndex, addrSubtype, addrLen, addr...
        if len(idx) < 6 or idx[4] != len(idx) - 5:
            notes.add("lldpRemManAddrTable row with a malformed index, dropped", oid_str(idx))
            continue
        addr = _inet(idx[3], idx[5:])
        key = idx[:3]
        if addr and (key not in mgmt or (":" in mgmt[key] and ":" not in addr)):
            mgmt[key] = addr  # prefer IPv4
    out: list[LldpNeighbor] = []
    rows = c.col(LLDP_REM_SYS_NAME).keys() | c.col(LLDP_REM_CHASSIS_ID).keys() \
        | c.col(LLDP_REM_PORT_ID).keys()
    for idx in sorted(rows):
        if len(idx) != 3:
            notes.add("lldpRemTable row with a malformed index, dropped", oid_str(idx))
            continue
        port_num = idx[1]
        w = f"port {port_num}"
        local = _local_port(c, port_num, names, known, by_descr, notes)
        caps = _bits(c.col(LLDP_REM_CAP_ENABLED).get(idx), LLDP_CAPS) \
            or _bits(c.col(LLDP_REM_CAP_SUPPORTED).get(idx), LLDP_CAPS)
        out.append(LldpNeighbor(
            local_port=local,
            remote_chassis_id=_lldp_id(sint(c.col(LLDP_REM_CHASSIS_SUBTYPE).get(idx)),
                                       c.col(LLDP_REM_CHASSIS_ID).get(idx), 4, 5,
                                       "lldpRemChassisId", notes),
            remote_port_id=_lldp_id(sint(c.col(LLDP_REM_PORT_SUBTYPE).get(idx)),
                                    c.col(LLDP_REM_PORT_ID).get(idx), 3, 4,
                                    "lldpRemPortId", notes),
            remote_port_description=text(c.col(LLDP_REM_PORT_DESC).get(idx),
                                         "lldpRemPortDesc", notes, where=w) or "",
            remote_system_name=text(c.col(LLDP_REM_SYS_NAME).get(idx), "lldpRemSysName",
                                    notes, where=w) or "",
            remote_system_description=text(c.col(LLDP_REM_SYS_DESC).get(idx),
                                           "lldpRemSysDesc", notes, 1024, w) or "",
            remote_mgmt_address=mgmt.get(idx),
            remote_capabilities=caps))
    return _cap(out, 4096, "LLDP neighbours", notes)


def _local_port(c: Collected, port_num: int, names: Mapping[int, str], known: set[str],
                by_descr: dict[str, str], notes: Notes) -> str:
    """lldpLocPortNum -> our interface name: the port ID when it is an interface name,
    else the port description when it names an interface, else ifIndex == port number."""
    k = (port_num,)
    subtype = sint(c.col(LLDP_LOC_PORT_SUBTYPE).get(k))
    pid = c.col(LLDP_LOC_PORT_ID).get(k)
    port_id = text(pid, "lldpLocPortId", notes) \
        if pid and isinstance(pid.value, bytes) and _printable(pid.value) else None
    desc = text(c.col(LLDP_LOC_PORT_DESC).get(k), "lldpLocPortDesc", notes)
    if port_id and (subtype in (5, 7) and port_id in known):
        return port_id
    if desc and desc in known:
        return desc
    if port_num in names:
        return names[port_num]
    return port_id or desc or f"port{port_num}"


def build_fdb(c: Collected, names: Mapping[int, str]) -> list[FdbEntry]:
    notes = c.notes
    out: dict[tuple[str, int | None], FdbEntry] = {}

    def port_name(tables: Mapping[OID, Mapping[OID, SnmpValue]], bridge_port: int | None
                  ) -> str | None:
        if bridge_port is None or bridge_port <= 0:
            return None
        ifi = sint(tables.get(DOT1D_BASE_PORT_IFINDEX, {}).get((bridge_port,)))
        if ifi is not None and ifi in names:
            return names[ifi]
        return f"bridge-port{bridge_port}"

    def add(m: str | None, vlan: int | None, port: str | None, status: int | None,
            where: str) -> None:
        if m is None:
            notes.add("FDB row with a malformed MAC index, dropped", where)
            return
        if status in (2, 4):  # invalid, self
            return
        out[(m, vlan)] = FdbEntry(mac=m, port=port, vlan=vlan)

    for idx, v in c.col(DOT1Q_FDB_PORT).items():
        fdb_id = idx[0] if idx else None
        vlan = fdb_id if fdb_id is not None and 1 <= fdb_id <= 4094 else None
        add(_mac_from_index(idx[1:]), vlan, port_name(c.tables, sint(v)),
            sint(c.col(DOT1Q_FDB_STATUS).get(idx)), oid_str(idx))
    if not c.col(DOT1Q_FDB_PORT):
        for idx, v in c.col(DOT1D_FDB_PORT).items():
            add(_mac_from_index(idx), None, port_name(c.tables, sint(v)),
                sint(c.col(DOT1D_FDB_STATUS).get(idx)), oid_str(idx))
    for vlan, tables in c.vlan_fdb:
        for idx, v in tables.get(DOT1D_FDB_PORT, {}).items():
            add(_mac_from_index(idx), vlan, port_name(tables, sint(v)),
                sint(tables.get(DOT1D_FDB_STATUS, {}).get(idx)), oid_str(idx))
    return _cap(list(out.values()), 16_384, "FDB entries", notes)


def _cap(items: list[Any], limit: int, what: str, notes: Notes) -> list[Any]:
    if len(items) > limit:
        notes.add(f"more {what} than the report holds ({limit}), the rest dropped",
                  str(len(items)))
        return items[:limit]
    return items


# --- facts and role ----------------------------------------------------------------------------

def resolve_facts(c: Collected, profile: Profile, sys_descr: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for fact in ("vendor", "model", "serial", "os_version"):
        value: str | None = None
        for src in profile.facts.get(fact, ()):
            if src.entity:
                value = c.entity.get(src.entity)
            elif src.oid:
                value = text(c.scalars.get(oid(src.oid)), src.oid, c.notes)
            elif src.descr:
                m = re.search(src.descr, sys_descr)
                value = (m.group(1) if m and m.re.groups else m.group(0) if m else None)
            if value and src.regex:
                m = re.search(src.regex, value)
                value = (m.group(1) if m.re.groups else m.group(0)) if m else None
            value = value.strip()[:255] if value else None
            if value:
                break
        out[fact] = value
    if profile.vendor:
        out["vendor"] = profile.vendor
    return out


def resolve_role(c: Collected, profile: Profile, sys_descr: str,
                 sys_oid: OID | None) -> str | None:
    forwarding = sint(c.scalars.get(IP_FORWARDING))
    ip_fwd = None if forwarding is None else forwarding == 1
    bridge = bool(uint(c.scalars.get(DOT1D_NUM_PORTS), "dot1dBaseNumPorts", Notes())
                  or c.col(DOT1Q_FDB_PORT) or c.col(DOT1D_FDB_PORT) or c.vlan_fdb)
    oid_text = oid_str(sys_oid) if sys_oid else ""
    for rule in profile.role_rules:
        if rule.descr is not None and not re.search(rule.descr, sys_descr):
            continue
        if rule.sys_object_id is not None and not (
                oid_text == rule.sys_object_id or oid_text.startswith(rule.sys_object_id + ".")):
            continue
        if rule.ip_forwarding is not None and ip_fwd is not rule.ip_forwarding:
            continue
        if rule.bridge is not None and bridge != rule.bridge:
            continue
        return rule.role
    return profile.role


# --- the observation ---------------------------------------------------------------------------

def build_observation(c: Collected, profile: Profile, *, device: str, mgmt_address: str,
                      observed_at: datetime, duration_s: float | None = None
                      ) -> DeviceObservation:
    """Turn what one poll read into the contract's :class:`DeviceObservation`."""
    n = c.notes
    sys_descr = text(c.scalars.get(SYS_DESCR), "sysDescr", n, 1024) or ""
    sys_oid_v = c.scalars.get(SYS_OBJECT_ID)
    sys_oid = sys_oid_v.value if sys_oid_v and isinstance(sys_oid_v.value, tuple) else None
    if sys_oid_v is not None and sys_oid is None:
        n.add(f"sysObjectID has wrong type {sys_oid_v.kind}, dropped")
    ticks = uint(c.scalars.get(SYS_UPTIME), "sysUpTime", n, maximum=2**32 - 1)
    interfaces, names = build_interfaces(c, profile)
    facts = resolve_facts(c, profile, sys_descr)
    for what in c.truncated:
        n.add(f"{what}: table longer than the limit, the rest not read")
    status, etype, error = PollStatus.OK, None, None
    if c.failures:
        status = PollStatus.PARTIAL
        etype = c.failures[0][1].kind
        error = "; ".join(f"{s}: {e}" for s, e in c.failures)[:MAX_ERROR]
    return DeviceObservation(
        observed_at=observed_at, device=device, mgmt_address=mgmt_address, driver=PLATFORM,
        status=status, error_type=etype, error=error,
        duration_s=round(duration_s, 3) if duration_s is not None else None,
        hostname=text(c.scalars.get(SYS_NAME), "sysName", n) or None,
        vendor=facts["vendor"], model=facts["model"], serial=facts["serial"],
        os_version=facts["os_version"],
        sys_object_id=oid_str(sys_oid)[:255] if sys_oid else None,
        sys_description=sys_descr or None,
        location=text(c.scalars.get(SYS_LOCATION), "sysLocation", n) or None,
        contact=text(c.scalars.get(SYS_CONTACT), "sysContact", n) or None,
        uptime_s=ticks / 100 if ticks is not None else None,
        role=resolve_role(c, profile, sys_descr, sys_oid),
        interfaces=_cap(interfaces, 4096, "interfaces", n),
        addresses=build_addresses(c, names), routes=build_routes(c, names),
        arp=build_arp(c, names), lldp_neighbors=build_lldp(c, names, interfaces),
        fdb=build_fdb(c, names), notes=n.render())


def failed(device: DeviceCfg, err: DriverError, observed_at: datetime,
           started: float) -> DeviceObservation:
    return DeviceObservation(
        observed_at=observed_at, device=device.name, mgmt_address=device.host,
        driver=PLATFORM, status=PollStatus.FAILED, error_type=err.kind,
        error=(str(err) or err.kind)[:MAX_ERROR],
        duration_s=round(time.monotonic() - started, 3))


async def observe(src: SnmpSource, profiles: ProfileSet, *, device: str, mgmt_address: str,
                  observed_at: datetime | None = None) -> DeviceObservation:
    """Collect from ``src`` and build the observation (used on recorded walks by tests)."""
    c, profile = await collect(src, profiles)
    return build_observation(c, profile, device=device, mgmt_address=mgmt_address,
                             observed_at=observed_at or utcnow())


# --- the driver ----------------------------------------------------------------------------------

class SnmpDriver:
    """``platform: snmp``. Async-native: the ``devices`` collector awaits :meth:`poll_async`
    on its event loop; :meth:`poll` is for callers without a loop (``spbe-agent check``)."""

    platform = PLATFORM

    def __init__(self, profiles: ProfileSet | None = None) -> None:
        self.profiles = profiles or default_profiles()

    async def poll_async(self, device: DeviceCfg) -> DeviceObservation:
        observed_at, started = utcnow(), time.monotonic()
        if device.snmp is None:
            return failed(device, DriverError("config", f"device {device.name}: platform snmp "
                                                        "needs an snmp: section"),
                          observed_at, started)
        deadline = started + device.timeout_s * 0.9
        try:
            async with SnmpSession(device.host, device.snmp) as session:
                c, profile = await collect(_LiveSource(session, device), self.profiles,
                                           deadline=deadline)
        except DriverError as e:
            return failed(device, e, observed_at, started)
        try:
            return build_observation(c, profile, device=device.name, mgmt_address=device.host,
                                     observed_at=observed_at,
                                     duration_s=time.monotonic() - started)
        except ValidationError as e:  # a bug in our clean-up, never the device's fault alone
            first = str(e).splitlines()[0:3]
            return failed(device, DriverError("parse", "result does not fit the report "
                                                       f"contract: {' '.join(first)}"),
                          observed_at, started)

    def poll(self, device: DeviceCfg) -> DeviceObservation:
        async def run() -> DeviceObservation:
            try:
                return await self.poll_async(device)
            finally:
                SnmpHub.close_current()

        return asyncio.run(run())

    def get_config(self, device: DeviceCfg) -> ConfigSnapshot | None:
        """SNMP cannot read a running configuration."""
        return None


@register(PLATFORM)
def _factory() -> SnmpDriver:
    return SnmpDriver()
