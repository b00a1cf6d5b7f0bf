"""The agent's shared SNMP engine: one pysnmp ``SnmpEngine`` per event loop, asyncio only.

Everything that speaks SNMP goes through :class:`SnmpSession`: a GET of scalars and a
multi-column GETBULK walk of tables, with the timeout and retries of the device's
:class:`~agent.config.SnmpCfg`, a bound on requests in flight, and every ``errorIndication``
and ``errorStatus`` checked and turned into :class:`SnmpError` (a
:class:`~agent.drivers.DriverError` whose ``kind`` is ``timeout``, ``auth``, ``protocol``,
``unreachable`` or ``config``).

Requests are sent with pysnmp's command generators on raw numeric OIDs and answers are read
without MIB lookups (``lookupMib=False`` semantics): no MIB files, no MIB resolution per
request (it costs more CPU than decoding the answer). Values come back as :class:`SnmpValue`,
a plain ``(kind, value)`` pair whose ``kind`` uses net-snmp's type labels, so recorded
``snmpbulkwalk -On`` output (:func:`parse_walk_text`) and live answers feed the same parsers.

Secrets (community, v3 keys) are resolved here and never put into messages or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import ipaddress
import re
import sys
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

from agent.config import SnmpCfg
from agent.drivers import DriverError
from contract.configfile import ConfigError

OID = tuple[int, ...]

MAX_INFLIGHT = 256          # requests in flight per engine (all devices together)
MAX_WALK_VARBINDS = 200_000  # hard stop for one table walk, whatever max_rows says
# rows each table had at its last walk, per device (host, port, context or VLAN, first column): the
# next walk asks for that many rows (+1 to see the end) in its first request instead of
# growing from 4, so a table is read in about one round trip with one value past its end
_TABLE_ROWS: OrderedDict[tuple[str, int, str, OID], int] = OrderedDict()
_TABLE_ROWS_MAX = 50_000


class SnmpValue(NamedTuple):
    """One SNMP value. ``kind`` is net-snmp's label: INTEGER, STRING (bytes), OID (tuple),
    IpAddress (bytes), Counter32, Counter64, Gauge32, Timeticks, Opaque (bytes), NULL."""

    kind: str
    value: int | bytes | OID | None


Varbind = tuple[OID, SnmpValue]


class SnmpError(DriverError):
    """An SNMP request failed. ``kind``: timeout, auth, protocol, unreachable, config;
    ``status`` is the PDU's error-status name (``tooBig``, ``genErr``, ...) if it had one."""

    def __init__(self, kind: str, message: str, status: str | None = None) -> None:
        super().__init__(kind, message)
        self.status = status


def oid(text: str) -> OID:
    """``"1.3.6.1.2.1.1.1.0"`` (a leading dot is allowed) -> ``(1, 3, 6, 1, 2, 1, 1, 1, 0)``."""
    parts = text.strip().lstrip(".").split(".")
    try:
        out = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"not a numeric OID: {text!r}") from None
    if len(out) < 2 or any(p < 0 or p > 0xFFFFFFFF for p in out):
        raise ValueError(f"not a valid OID: {text!r}")
    return out


def oid_str(o: OID) -> str:
    return ".".join(str(p) for p in o)


# --- recorded walks ------------------------------------------------------------------------

_LINE = re.compile(r"^\.?((?:\d+\.)+\d+) = (.*)$")
_TYPED = re.compile(r"^([A-Za-z][A-Za-z0-9 -]*?): ?(.*)$", re.S)
_ABSENT = ("No Such Object", "No Such Instance", "No more variables")


def parse_walk_text(text: str) -> list[Varbind]:
    """Parse ``snmpbulkwalk -On`` output (net-snmp, MIBS unset) into varbinds.

    Handles quoted strings over several lines (with ``\\"`` escapes), ``Hex-STRING`` wrapped
    over lines, ``Timeticks: (123) 0:00:01.23``, empty strings (``= ""``) and the
    "No Such Object" / "No more variables" markers (dropped). Raises ``ValueError`` naming the
    line number for anything else.
    """
    out: list[Varbind] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ValueError(f"line {i}: not an '.OID = TYPE: value' line: {line[:80]!r}")
        name, rest = oid(m.group(1)), m.group(2)
        if rest.startswith(_ABSENT):
            continue
        if rest == '""':
            out.append((name, SnmpValue("STRING", b"")))
            continue
        tm = _TYPED.match(rest)
        if not tm:
            raise ValueError(f"line {i}: no type label in {rest[:80]!r}")
        kind, raw = tm.group(1), tm.group(2)
        if kind == "STRING" and raw.startswith('"'):
            # A quoted string may continue over lines until an unescaped closing quote.
            buf = raw
            while not _closed(buf) and i < len(lines):
                buf += "\n" + lines[i]
                i += 1
            if not _closed(buf):
                raise ValueError(f"line {i}: unterminated string")
            body = buf[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            out.append((name, SnmpValue("STRING", body.encode())))
            continue
        if kind in ("Hex-STRING", "BITS"):
            hextext = raw
            while i < len(lines) and lines[i] and not lines[i].startswith("#") \
                    and not _LINE.match(lines[i]):
                hextext += " " + lines[i]
                i += 1
            tokens = hextext.split()
            n = 0
            while n < len(tokens) and re.fullmatch(r"[0-9A-Fa-f]{2}", tokens[n]):
                n += 1
            if kind == "Hex-STRING" and n < len(tokens):  # BITS may end with bit names
                raise ValueError(f"line {i}: bad hex string {hextext[:80]!r}")
            out.append((name, SnmpValue("STRING", bytes.fromhex("".join(tokens[:n])))))
            continue
        out.append((name, _typed_value(kind, raw.strip(), i)))
    return out


def parse_recording(text: str) -> dict[str, list[Varbind]]:
    """A recording file: ``snmpbulkwalk -On`` output with ``#`` comment lines; a line
    ``# context: NAME`` starts the walks of another context (Cisco per-VLAN ``vlan-10``).
    Returns varbinds per context, ``""`` for the default one."""
    parts: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines():
        m = re.match(r"^#\s*context:\s*(\S*)\s*$", line)
        if m:
            current = m.group(1)
            parts.setdefault(current, [])
            continue
        parts[current].append(line)
    out: dict[str, list[Varbind]] = {}
    for ctx, lines in parts.items():
        try:
            out[ctx] = parse_walk_text("\n".join(lines))
        except ValueError as e:
            raise ValueError(f"context {ctx or '(default)'}: {e}") from None
    return out


def _closed(buf: str) -> bool:
    if len(buf) < 2 or not buf.endswith('"'):
        return False
    backslashes = len(buf[:-1]) - len(buf[:-1].rstrip("\\"))
    return backslashes % 2 == 0


def _typed_value(kind: str, raw: str, lineno: int) -> SnmpValue:
    try:
        if kind == "INTEGER":
            return SnmpValue("INTEGER", int(re.sub(r"^.*\((-?\d+)\)$", r"\1", raw)))
        if kind in ("Counter32", "Counter64", "Gauge32", "Unsigned32"):
            return SnmpValue("Gauge32" if kind == "Unsigned32" else kind, int(raw.split()[0]))
        if kind == "Timeticks":
            m = re.match(r"^\((\d+)\)", raw)
            return SnmpValue("Timeticks", int(m.group(1) if m else raw.split()[0]))
        if kind == "OID":
            return SnmpValue("OID", oid(raw) if raw not in (".0.0", "0.0") else (0, 0))
        if kind in ("IpAddress", "Network Address"):
            return SnmpValue("IpAddress", ipaddress.IPv4Address(raw).packed)
        if kind == "STRING":
            return SnmpValue("STRING", raw.encode())
        if kind == "Opaque":
            return SnmpValue("Opaque", raw.encode())
        if kind == "NULL":
            return SnmpValue("NULL", None)
    except (ValueError, AttributeError):
        raise ValueError(f"line {lineno}: bad {kind} value {raw[:80]!r}") from None
    raise ValueError(f"line {lineno}: unknown type {kind!r}")


# --- live engine ---------------------------------------------------------------------------

_AUTH = {"md5": "USM_AUTH_HMAC96_MD5", "sha": "USM_AUTH_HMAC96_SHA",
         "sha224": "USM_AUTH_HMAC128_SHA224", "sha256": "USM_AUTH_HMAC192_SHA256",
         "sha384": "USM_AUTH_HMAC256_SHA384", "sha512": "USM_AUTH_HMAC384_SHA512"}
_PRIV = {"des": "USM_PRIV_CBC56_DES", "aes": "USM_PRIV_CFB128_AES",
         "aes192": "USM_PRIV_CFB192_AES", "aes256": "USM_PRIV_CFB256_AES"}
# errorIndication class name -> our error kind; anything else is "protocol"
_AUTH_INDICATIONS = {
    "UnknownUserName", "WrongDigest", "AuthenticationError", "AuthenticationFailure",
    "DecryptionError", "UnsupportedSecurityLevel", "UnknownSecurityName",
    "UnsupportedAuthProtocol", "UnsupportedPrivProtocol", "NotInTimeWindow",
    "UnknownCommunityName", "NoAuthentication", "NoEncryption", "UnknownEngineID",
}
_ERROR_STATUS = {1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr",
                 6: "noAccess", 7: "wrongType", 8: "wrongLength", 9: "wrongEncoding",
                 10: "wrongValue", 11: "noCreation", 12: "inconsistentValue",
                 13: "resourceUnavailable", 14: "commitFailed", 15: "undoFailed",
                 16: "authorizationError", 17: "notWritable", 18: "inconsistentName"}
_KIND_BY_CLASS = {
    "Integer32": "INTEGER", "Integer": "INTEGER", "OctetString": "STRING", "Bits": "STRING",
    "IpAddress": "IpAddress", "ObjectIdentifier": "OID", "ObjectName": "OID",
    "Counter32": "Counter32", "Gauge32": "Gauge32", "Unsigned32": "Gauge32",
    "TimeTicks": "Timeticks", "Counter64": "Counter64", "Opaque": "Opaque", "Null": "NULL",
}
_END_CLASSES = {"EndOfMibView", "NoSuchObject", "NoSuchInstance"}


def to_value(v: Any) -> SnmpValue | None:
    """A pysnmp value as :class:`SnmpValue`; None for endOfMibView/noSuchObject/Instance."""
    cls = type(v).__name__
    if cls in _END_CLASSES:
        return None
    kind = _KIND_BY_CLASS.get(cls)
    if kind is None:  # an unknown subclass: classify by its base types
        for base in type(v).__mro__[1:]:
            kind = _KIND_BY_CLASS.get(base.__name__)
            if kind:
                break
        else:
            return SnmpValue("Opaque", bytes(str(v), "utf-8", "replace"))
    if kind in ("STRING", "IpAddress", "Opaque"):
        return SnmpValue(kind, v.asOctets())
    if kind == "OID":
        return SnmpValue(kind, tuple(v))
    if kind == "NULL":
        return SnmpValue(kind, None)
    return SnmpValue(kind, int(v))


class _CredGate:
    """pysnmp keys v3 users by user name: two devices that share a name but not the keys
    must not have requests in flight at the same time. Polls with the same credentials run
    together; a poll with other credentials waits until those are done."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.users = 0
        self.cond = asyncio.Condition()

    async def acquire(self, fingerprint: str) -> None:
        async with self.cond:
            await self.cond.wait_for(lambda: self.users == 0 or self.current == fingerprint)
            self.current = fingerprint
            self.users += 1

    async def release(self) -> None:
        async with self.cond:
            self.users -= 1
            if self.users == 0:
                self.current = None
            self.cond.notify_all()


# pysnmp's cipher modules (DES, AES, 3DES); each imports ``cryptography`` or, failing that,
# marks privacy as unavailable in its module-level ``PysnmpCryptoError``.
_PRIV_MODULES = ("pysnmp.proto.secmod.rfc3414.priv.des", "pysnmp.proto.secmod.rfc3826.priv.aes",
                 "pysnmp.proto.secmod.eso.priv.des3")


def import_pysnmp() -> None:
    """Import pysnmp without ``cryptography`` (about 8 MB of the agent's RSS).

    pysnmp treats ``cryptography`` as optional (``pysnmp[crypto]``): it is needed for SNMPv3
    privacy only, and most PD switches are polled with v2c. :func:`enable_privacy` brings it
    in when the first v3 (authPriv) device is set up.
    """
    if "pysnmp.hlapi.v3arch.asyncio" in sys.modules:
        return
    block = "cryptography" not in sys.modules
    if block:
        sys.modules["cryptography"] = None  # type: ignore[assignment] # makes it an ImportError
    try:
        import pysnmp.hlapi.v3arch.asyncio  # type: ignore[import-untyped]  # noqa: F401
    finally:
        if block and sys.modules.get("cryptography", "") is None:
            del sys.modules["cryptography"]


def enable_privacy() -> None:
    """Make SNMPv3 DES/AES work: import ``cryptography`` and re-run pysnmp's cipher modules
    that were imported without it (a reload runs in the same module namespace, so the cipher
    services the engine already holds see the ciphers)."""
    import_pysnmp()
    for name in _PRIV_MODULES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "PysnmpCryptoError", False):
            importlib.reload(module)
            if getattr(module, "PysnmpCryptoError", False):
                raise SnmpError("config", "SNMPv3 privacy needs the 'cryptography' package")


class SnmpHub:
    """The one SnmpEngine of an event loop, its request bound and its v3 credential gates."""

    _hubs: ClassVar[dict[asyncio.AbstractEventLoop, SnmpHub]] = {}

    def __init__(self) -> None:
        import_pysnmp()
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        self.engine = SnmpEngine()
        self.inflight = asyncio.Semaphore(MAX_INFLIGHT)
        self.gates: dict[str, _CredGate] = {}
        self.requests = 0
        self.varbinds = 0   # received, including what a GETBULK returns past a table's end
        self.useful = 0     # values returned to callers (in a walked subtree, or a GET hit)

    @classmethod
    def current(cls) -> SnmpHub:
        """The running loop's hub (made on first use). Hubs of loops that have been closed
        since (``asyncio.run`` per call) are dropped, so their engines can be freed."""
        loop = asyncio.get_running_loop()
        hub = cls._hubs.get(loop)
        if hub is None:
            for other in [lp for lp in cls._hubs if lp.is_closed()]:
                cls._hubs.pop(other)._close()
            hub = cls._hubs[loop] = SnmpHub()
        return hub

    @classmethod
    def close_current(cls) -> None:
        """Close the running loop's engine (its UDP sockets); a later call makes a new one."""
        hub = cls._hubs.pop(asyncio.get_running_loop(), None)
        if hub is not None:
            hub._close()

    def _close(self) -> None:
        if self.engine.transport_dispatcher is None:
            return
        with contextlib.suppress(RuntimeError):  # its loop is closed: GC closes the sockets
            self.engine.close_dispatcher()


@dataclass
class _Auth:
    data: Any                  # CommunityData | UsmUserData
    gate_user: str | None      # v3 user name (for the credential gate)
    fingerprint: str = ""


def _auth(cfg: SnmpCfg, community_suffix: str = "") -> _Auth:
    import_pysnmp()
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData
    from pysnmp.hlapi.v3arch.asyncio import auth as hauth

    try:
        if cfg.version == "2c":
            assert cfg.community is not None
            community = cfg.community.value("SNMP community") + community_suffix
            return _Auth(CommunityData(community, mpModel=1), None)
        assert cfg.user and cfg.auth_key and cfg.priv_key
        auth_key = cfg.auth_key.value("SNMPv3 auth key")
        priv_key = cfg.priv_key.value("SNMPv3 priv key")
    except ConfigError as e:
        raise SnmpError("config", str(e)) from e
    if len(auth_key) < 8 or len(priv_key) < 8:
        raise SnmpError("config", "SNMPv3 auth and priv keys must be at least 8 characters")
    enable_privacy()
    data = UsmUserData(cfg.user, authKey=auth_key, privKey=priv_key,
                       authProtocol=getattr(hauth, _AUTH[cfg.auth_protocol]),
                       privProtocol=getattr(hauth, _PRIV[cfg.priv_protocol]))
    fp = hashlib.sha256("\0".join((cfg.auth_protocol, auth_key, cfg.priv_protocol,
                                   priv_key)).encode()).hexdigest()
    return _Auth(data, cfg.user, fp)


@dataclass
class WalkResult:
    """Columns walked: ``columns[col][index] = value``; ``truncated`` if max_rows was hit."""

    columns: dict[OID, dict[OID, SnmpValue]] = field(default_factory=dict)
    truncated: bool = False
    varbinds: int = 0


class SnmpSession:
    """SNMP access to one device. Use as ``async with SnmpSession(host, cfg) as s:``."""

    def __init__(self, host: str, cfg: SnmpCfg, *, hub: SnmpHub | None = None,
                 context: str = "", community_suffix: str = "") -> None:
        """``context`` (v3 context name) and ``community_suffix`` (v2c, e.g. ``@10``) select
        another MIB instance, as Cisco's per-VLAN BRIDGE-MIB needs."""
        self.host, self.cfg, self.context = host, cfg, context
        self.community_suffix = community_suffix
        self.hub = hub
        self.auth: _Auth | None = None
        self.addr_name = ""
        self.max_repetitions = cfg.max_repetitions
        self.requests = 0
        self.varbinds = 0
        self.useful = 0
        self._gated = False

    async def __aenter__(self) -> SnmpSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        import_pysnmp()
        from pysnmp.error import PySnmpError  # type: ignore[import-untyped]
        from pysnmp.hlapi.v3arch.asyncio import (
            Udp6TransportTarget,
            UdpTransportTarget,
        )
        from pysnmp.hlapi.v3arch.asyncio.cmdgen import LCD  # type: ignore[import-untyped]

        hub = self.hub = self.hub or SnmpHub.current()
        self.auth = _auth(self.cfg, self.community_suffix)
        try:
            family6 = ipaddress.ip_address(self.host).version == 6
        except ValueError:
            family6 = False  # a DNS name: IPv4 resolution (pysnmp's UdpTransportTarget)
        cls = Udp6TransportTarget if family6 else UdpTransportTarget
        try:
            target = await cls.create((self.host, self.cfg.port), timeout=self.cfg.timeout_s,
                                      retries=self.cfg.retries)
        except PySnmpError as e:
            raise SnmpError("unreachable", f"cannot resolve {self.host!r}: "
                                           f"{_short(e)}") from e
        if self.auth.gate_user is not None:
            gate = hub.gates.setdefault(self.auth.gate_user, _CredGate())
            await gate.acquire(self.auth.fingerprint)
            self._gated = True
        try:
            self.addr_name, _ = LCD.configure(hub.engine, self.auth.data, target,
                                              self.context.encode())
        except PySnmpError as e:
            await self.close()
            raise SnmpError("config", f"SNMP engine refused the target: {_short(e)}") from e

    async def close(self) -> None:
        if self._gated and self.hub and self.auth and self.auth.gate_user:
            self._gated = False
            await self.hub.gates[self.auth.gate_user].release()

    # -- requests ---------------------------------------------------------------------

    async def _request(self, kind: str, oids: Sequence[OID],
                       max_rep: int = 0) -> list[tuple[OID, Any]]:
        """One GET / GETNEXT / GETBULK (``kind`` get, next, bulk); errors raise."""
        from pysnmp.entity.rfc3413 import cmdgen  # type: ignore[import-untyped]
        from pysnmp.proto.rfc1902 import Null, ObjectName  # type: ignore[import-untyped]

        hub = self.hub
        assert hub is not None and self.addr_name, "session not open"
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[Any, int, int, Any]] = loop.create_future()

        def cb(_engine: Any, _handle: Any, error_indication: Any, error_status: Any,
               error_index: Any, var_binds: Any, _ctx: Any) -> None:
            if not fut.done():
                fut.set_result((error_indication, int(error_status or 0),
                                int(error_index or 0), var_binds))

        vbs = [(ObjectName(o), Null("")) for o in oids]
        ctx_name = self.context.encode()
        # pysnmp applies the target's timeout and retries; the outer bound only guards
        # against a lost callback.
        bound = self.cfg.timeout_s * (self.cfg.retries + 1) + 5
        async with hub.inflight:
            try:
                if kind == "bulk":
                    cmdgen.BulkCommandGeneratorSingleRun().send_varbinds(
                        hub.engine, self.addr_name, None, ctx_name, 0, max_rep, vbs, cb)
                elif kind == "next":
                    cmdgen.NextCommandGeneratorSingleRun().send_varbinds(
                        hub.engine, self.addr_name, None, ctx_name, vbs, cb)
                else:
                    cmdgen.GetCommandGenerator().send_varbinds(
                        hub.engine, self.addr_name, None, ctx_name, vbs, cb)
                ei, status, index, var_binds = await asyncio.wait_for(fut, bound)
            except TimeoutError:
                raise SnmpError("timeout", f"no answer from {self.host}:{self.cfg.port} "
                                           f"within {bound:.0f} s") from None
            except Exception as e:  # pysnmp raises its own and pyasn1 errors for bad input
                raise SnmpError("protocol", f"SNMP request failed: {_short(e)}") from e
        self.requests += 1
        hub.requests += 1
        if ei:
            raise self._indication_error(ei)
        if status:
            name = _ERROR_STATUS.get(status, f"error-status {status}")
            if status in (6, 16):
                raise SnmpError("auth", f"{self.host} refused access: {name}")
            where = ""
            if 0 < index <= len(oids):
                where = f" at {oid_str(oids[index - 1])}"
            raise SnmpError("protocol", f"{self.host} answered {name}{where}", name)
        out = [(tuple(n), v) for n, v in var_binds]
        self.varbinds += len(out)
        hub.varbinds += len(out)
        return out

    def _indication_error(self, ei: Any) -> SnmpError:
        cls = type(ei).__name__
        where = f"{self.host}:{self.cfg.port}"
        if cls == "RequestTimedOut":
            extra = (" (wrong community?)" if self.cfg.version == "2c"
                     else " (wrong privacy key?)")
            return SnmpError("timeout", f"no answer from {where} after "
                                        f"{self.cfg.retries + 1} tries of "
                                        f"{self.cfg.timeout_s:g} s{extra}")
        if cls in _AUTH_INDICATIONS:
            return SnmpError("auth", f"SNMPv3 authentication with {where} failed: "
                                     f"{_short(ei)}")
        return SnmpError("protocol", f"SNMP error from {where}: {_short(ei)}")

    async def get(self, oids: Sequence[OID]) -> dict[OID, SnmpValue | None]:
        """GET scalars; an absent one (noSuchObject/Instance) maps to None."""
        result: dict[OID, SnmpValue | None] = {}
        for chunk in _chunks(list(oids), 20):
            answer = await self._request("get", chunk)
            if len(answer) != len(chunk):
                raise SnmpError("protocol", f"{self.host} answered {len(answer)} values "
                                            f"for {len(chunk)} requested")
            for want, (_, value) in zip(chunk, answer, strict=True):
                result[want] = to_value(value)
        self._useful(sum(v is not None for v in result.values()))
        return result

    def _useful(self, n: int) -> None:
        self.useful += n
        if self.hub is not None:
            self.hub.useful += n

    async def present(self, columns: Sequence[OID]) -> set[OID]:
        """Which of ``columns`` have at least one instance: one GETNEXT for all of them, so
        absent tables cost one varbind each instead of a GETBULK full of other tables."""
        found: set[OID] = set()
        for chunk in _chunks(list(columns), 20):
            answer = await self._request("next", chunk)
            for col, (name, value) in zip(chunk, answer, strict=False):
                if to_value(value) is not None and name[:len(col)] == col:
                    found.add(col)
        return found

    async def walk(self, columns: Sequence[OID], *, max_rows: int = 10_000) -> WalkResult:
        """Walk table columns together with GETBULK (one request carries every column
        still open). Stops a column when it leaves its subtree, at endOfMibView, or after
        ``max_rows`` rows (``truncated``); a non-increasing OID from the agent is an error."""
        res = WalkResult(columns={c: {} for c in columns})
        last: dict[OID, OID] = {c: c for c in columns}
        total = 0
        rounds = 0
        key = ((self.host, self.cfg.port, f"{self.context}|{self.community_suffix}", columns[0])
               if columns else None)
        known = _TABLE_ROWS.get(key) if key is not None else None
        while last:
            open_cols = list(last)
            # Rows per request start small and double: a short table then costs few values
            # past its end, a long one a couple of extra requests. A request carries at most
            # 2 x max_repetitions values (max_repetitions for a single column). A table seen
            # before starts at its last row count + 1.
            n = len(open_cols)
            cap = max(1, 2 * self.max_repetitions // n) if n > 1 else self.max_repetitions
            if known is not None:
                per_req, known = min(cap, known + 1), None
            else:
                per_req = min(cap, max(1, min(4, self.max_repetitions // n)) << rounds)
                rounds += 1
            try:
                answer = await self._request("bulk", [last[c] for c in open_cols], per_req)
            except SnmpError as e:
                if e.status == "tooBig" and self.max_repetitions > 1:
                    self.max_repetitions = max(1, self.max_repetitions // 2)
                    continue
                raise
            if not answer:
                break
            finished: set[OID] = set()
            width = len(open_cols)
            for i, (name, raw) in enumerate(answer):
                col = open_cols[i % width]
                if col in finished:
                    continue
                value = to_value(raw)
                if value is None or name[:len(col)] != col:
                    finished.add(col)
                    continue
                if name <= last[col]:
                    raise SnmpError("protocol", f"{self.host} returned a non-increasing OID "
                                                f"{oid_str(name)} while walking "
                                                f"{oid_str(col)}")
                last[col] = name
                rows = res.columns[col]
                rows[name[len(col):]] = value
                total += 1
                if len(rows) >= max_rows:
                    res.truncated = True
                    finished.add(col)
                if total >= MAX_WALK_VARBINDS:
                    res.truncated = True
                    finished.update(open_cols)
            for c in finished:
                last.pop(c, None)
        res.varbinds = total
        self._useful(total)
        if key is not None and not res.truncated:
            _TABLE_ROWS[key] = max((len(rows) for rows in res.columns.values()), default=0)
            _TABLE_ROWS.move_to_end(key)
            while len(_TABLE_ROWS) > _TABLE_ROWS_MAX:
                _TABLE_ROWS.popitem(last=False)
        return res


def _chunks(items: list[OID], n: int) -> Iterable[list[OID]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _short(e: object) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
