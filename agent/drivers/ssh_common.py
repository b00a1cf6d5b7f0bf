"""Shared machinery of the SSH drivers: credentials, connections, error mapping, TextFSM parsing
and the assembly of a :class:`DeviceObservation` from the sections a driver read.

Every library error (netmiko, paramiko, napalm, TextFSM, socket) is turned into one
:class:`agent.drivers.DriverError` by :func:`wrap_error`, whose message is written here (never the
library's text alone) and passed through :func:`redact`, so a password or enable secret can never
leak into an error, a log line or a report.

Thread-safety: drivers are called from a thread pool, one device per thread. Nothing here keeps
per-device state at module level; the only shared state is the read-only cache of template
sources (guarded by a lock). Each parse builds its own ``textfsm.TextFSM`` object, because a
TextFSM state machine is not safe to share. napalm, netmiko, paramiko and textfsm are imported
lazily inside functions (the agent's RSS budget is small; Python's import lock makes a first
import from several threads safe).
"""

from __future__ import annotations

import errno
import io
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import ValidationError

from agent.config import DeviceCfg
from agent.drivers import DriverError
from contract.configfile import ConfigError
from contract.report import (
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

TEMPLATES_DIR = Path(__file__).with_name("templates")
MAX_ERROR = 2048
#: routes kept per poll: what ``DeviceObservation.routes`` holds (more fails the whole report)
MAX_ROUTES = 4096
#: notes kept per poll (``DeviceObservation.notes``: at most 50, each at most 512 characters)
MAX_NOTES = 50
MAX_NOTE = 512

# Lines that mean "the device did not accept this command", per CLI family (data, not code).
CISCO_REJECT = ("% Invalid input", "% Incomplete command", "% Unknown command",
                "% Ambiguous command", "Unknown command")
HUAWEI_REJECT = ("Error: Unrecognized command", "Error: Wrong parameter",
                 "Error: Incomplete command", "Unknown command")
JUNOS_REJECT = ("syntax error", "unknown command", "error: ", "Unknown command")
ROUTEROS_REJECT = ("bad command name", "syntax error", "expected end of command",
                   "no such item", "Unknown command")


# --- credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SshParams:
    """Resolved SSH parameters of one device. ``repr`` never shows the secrets."""

    host: str
    port: int
    username: str
    timeout_s: float
    password: str | None = field(default=None, repr=False)
    key_file: str | None = None
    enable_secret: str | None = field(default=None, repr=False)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.enable_secret) if s)

    def credential(self) -> bytes | None:
        """The login secret (password, else the key file's bytes): keys config fingerprints."""
        if self.password:
            return self.password.encode()
        if self.key_file:
            try:
                return Path(self.key_file).read_bytes()
            except OSError:
                return None
        return None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def ssh_params(device: DeviceCfg) -> SshParams:
    """Read the device's SSH settings and secrets (env or file); DriverError('config') if unset."""
    cfg = device.ssh
    if cfg is None:
        raise DriverError("config", f"device {device.name}: platform {device.platform!r} needs "
                                    "an 'ssh:' section (username and password or key_file)")
    try:
        password = cfg.password.value(f"device {device.name} ssh password") \
            if cfg.password else None
        enable = cfg.enable_secret.value(f"device {device.name} enable secret") \
            if cfg.enable_secret else None
    except ConfigError as e:  # its message names the env var / file, never the value
        raise DriverError("config", str(e)) from e
    key_file = None
    if cfg.key_file is not None:
        if not cfg.key_file.is_file():
            raise DriverError("config", f"device {device.name}: ssh key_file {cfg.key_file} "
                                        "does not exist or is not a file")
        key_file = str(cfg.key_file)
    return SshParams(host=device.host, port=cfg.port, username=cfg.username,
                     timeout_s=cfg.timeout_s, password=password, key_file=key_file,
                     enable_secret=enable)


def redact(text: str, secrets: Sequence[str]) -> str:
    """Replace every occurrence of each secret with ``***`` and cap the length."""
    for s in sorted(secrets, key=len, reverse=True):
        if s:
            text = text.replace(s, "***")
    return text[:MAX_ERROR]


# --- error mapping -----------------------------------------------------------------------------


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        errors = getattr(e, "errors", None)  # paramiko NoValidConnectionsError
        if isinstance(errors, dict):
            stack.extend(v for v in errors.values() if isinstance(v, BaseException))
        for nxt in (e.__cause__, e.__context__):
            if nxt is not None:
                stack.append(nxt)


def _names(e: BaseException) -> set[str]:
    return {c.__name__ for c in type(e).__mro__}


_UNREACHABLE_ERRNO = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
                      errno.EADDRNOTAVAIL}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__


def classify(exc: BaseException, params: SshParams | None = None) -> DriverError:
    """Map a library exception (and its cause chain) to our error kinds, with our own message."""
    where = params.where if params else "device"
    user = params.username if params else "?"
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, DriverError):
            return e
    for e in chain:
        n = _names(e)
        if n & {"AuthenticationException", "NetmikoAuthenticationException",
                "BadAuthenticationType", "PasswordRequiredException"}:
            return DriverError("auth", f"SSH authentication failed at {where} for user "
                                       f"{user!r} (wrong password or key?)")
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or \
                (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return DriverError("refused", f"connection refused by {where} (no SSH server "
                                          "on that port?)")
    for e in chain:
        if isinstance(e, socket.gaierror):
            return DriverError("unreachable", f"cannot resolve host {where}: {_first_line(e)}")
        if isinstance(e, OSError) and e.errno in _UNREACHABLE_ERRNO:
            return DriverError("unreachable", f"{where} is unreachable: {_first_line(e)}")
    for e in chain:
        msg = str(e)
        if "No existing session" in msg:
            return DriverError("timeout", f"{where}: the SSH session could not be set up "
                                          "in time")
        if "SSH protocol banner" in msg:
            return DriverError("timeout", f"{where} accepted TCP but sent no SSH banner "
                                          "in time (not an SSH server?)")
        if isinstance(e, TimeoutError | socket.timeout) or \
                _names(e) & {"NetmikoTimeoutException", "ReadTimeout"}:
            return DriverError("timeout", f"timed out talking to {where}: {_first_line(e)}")
    for e in chain:
        n = _names(e)
        if n & {"TextFSMError", "TextFSMTemplateError", "ValidationError",
                "NetmikoParsingException"}:
            return DriverError("parse", f"cannot parse output from {where}: {_first_line(e)}")
        if isinstance(e, EOFError | ConnectionResetError | BrokenPipeError) or \
                n & {"ConnectionClosedException"}:
            return DriverError("protocol", f"{where} closed the connection: {_first_line(e)}")
        if n & {"SSHException", "ChannelException", "ProxyCommandFailure"}:
            return DriverError("protocol", f"SSH error with {where}: {_first_line(e)}")
    for e in chain:
        if "ConnectionException" in _names(e):  # napalm: could not open, cause unknown
            return DriverError("unreachable", f"cannot connect to {where}: {_first_line(e)}")
        if isinstance(e, ValueError | KeyError | IndexError | AttributeError):
            # napalm getters raise these on output they cannot read
            return DriverError("parse", f"unexpected output from {where}: "
                                        f"{type(e).__name__}: {_first_line(e)}")
    return DriverError("protocol", f"error with {where}: {type(exc).__name__}: "
                                   f"{_first_line(exc)}")


def wrap_error(exc: BaseException, params: SshParams | None = None) -> DriverError:
    """:func:`classify` plus redaction of every secret in ``params``."""
    err = classify(exc, params)
    secrets = params.secrets() if params else ()
    clean = redact(str(err), secrets)
    if clean == str(err) and err is exc:
        return err
    return DriverError(err.kind, clean)


# --- output checks and TextFSM -----------------------------------------------------------------


def check_output(command: str, text: str, reject: Sequence[str] = CISCO_REJECT) -> str:
    """Validate raw CLI output: refuse binary junk and "invalid command" answers.

    Returns the text without CR characters and without an echoed ``prompt# command`` first line.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n") or ch == "\ufffd"
              or 0x7f <= ord(ch) < 0xa0)
    if bad > 3 and bad * 100 > len(text):
        raise DriverError("parse", f"{command!r}: output is not text ({bad} control/binary "
                                   "characters)")
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines and re.match(r"^\S+[#>]\s*(?:show|display|/)", lines[0]) and \
            command.split()[0] in lines[0]:
        lines.pop(0)  # an echoed "prompt# command" line
        while lines and not lines[0].strip():
            lines.pop(0)
    for line in lines[:3]:
        s = line.strip()
        for marker in reject:
            if s.startswith(marker):
                raise DriverError("unsupported", f"device rejected command {command!r}: "
                                                 f"{s[:200]}")
    return "\n".join(lines)


_template_lock = threading.Lock()
_template_cache: dict[str, str] = {}


def _template_source(name: str) -> str:
    with _template_lock:
        if name in _template_cache:
            return _template_cache[name]
    path = TEMPLATES_DIR / name
    if not path.is_file():
        import ntc_templates  # type: ignore[import-untyped]

        path = Path(ntc_templates.__file__).parent / "templates" / name
    try:
        src = path.read_text(encoding="utf-8")
    except OSError as e:
        raise DriverError("unsupported", f"no TextFSM template {name} (ntc-templates "
                                         "installed?)") from e
    with _template_lock:
        _template_cache[name] = src
    return src


def parse_textfsm(template: str, text: str) -> list[dict[str, Any]]:
    """Parse ``text`` with a TextFSM template (ours in templates/ first, then ntc-templates).

    Keys are lower-cased; a template that rejects the text raises DriverError('parse').
    """
    import textfsm  # type: ignore[import-untyped]

    src = _template_source(template)
    try:
        fsm = textfsm.TextFSM(io.StringIO(src))
        rows: list[dict[str, Any]] = fsm.ParseTextToDicts(text)
    except (textfsm.TextFSMError, textfsm.TextFSMTemplateError) as e:
        raise DriverError("parse", f"output does not match template {template}: "
                                   f"{_first_line(e)[:200]}") from e
    return [{k.lower(): v for k, v in r.items()} for r in rows]


# --- small value parsers -----------------------------------------------------------------------

_HEX = re.compile(r"^[0-9a-f]{12}$")


def norm_mac(value: str | None) -> str | None:
    """``aabb.ccdd.eeff`` / ``AA-BB-CC-DD-EE-FF`` / ``aabb-ccdd-eeff`` -> ``aa:bb:cc:dd:ee:ff``."""
    if not value:
        return None
    raw = re.sub(r"[.:\-\s]", "", value.strip().lower())
    if not _HEX.match(raw):
        return None
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def to_int(value: Any) -> int | None:
    if value is None:
        return None
    s = str(value).strip().replace(",", "")
    if not re.fullmatch(r"\d+", s):
        return None
    return int(s)


_HOSTNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def valid_hostname(value: str | None) -> str | None:
    """The value if it looks like a host name, else None (so a caller can fall back)."""
    if value is None:
        return None
    v = value.strip()
    return v if _HOSTNAME.match(v) else None


def ip_prefix(value: str) -> tuple[str, int] | None:
    """``10.0.0.1/24`` or ``10.0.0.1 255.255.255.0`` -> (address, prefix_len)."""
    try:
        iface = ipaddress.ip_interface(value.strip().replace(" ", "/"))
    except ValueError:
        return None
    return str(iface.ip), iface.network.prefixlen


def ipv4_network(value: str | None) -> str | None:
    """``10.1.1.0/24`` (host bits allowed: ``10.1.1.7/24`` -> ``10.1.1.0/24``) or None."""
    try:
        net = ipaddress.ip_network((value or "").strip(), strict=False)
    except ValueError:
        return None
    return str(net) if net.version == 4 and "/" in (value or "") else None


def ipv4_host(value: str | None) -> str | None:
    """The IPv4 address if ``value`` is one and can be a next hop (not 0.0.0.0, not loopback,
    not multicast or broadcast), else None."""
    try:
        addr = ipaddress.IPv4Address((value or "").strip())
    except ValueError:
        return None
    if addr.is_unspecified or addr.is_loopback or addr.is_multicast or \
            addr == ipaddress.IPv4Address("255.255.255.255"):
        return None
    return str(addr)


def note_skipped(notes: list[str] | None, source: str, bad: Sequence[str]) -> None:
    """Record in ``notes`` how many rows a parser skipped as malformed, with a few examples."""
    if notes is not None and bad:
        shown = "; ".join(b.strip()[:60] for b in bad[:3])
        notes.append(f"{source}: {len(bad)} malformed rows skipped ({shown})")


_UPTIME_UNITS = {"year": 31_536_000, "week": 604_800, "day": 86_400, "hour": 3_600,
                 "minute": 60, "second": 1}


def uptime_words(text: str) -> float | None:
    """'1 day, 17 hours, 32 minutes' / '358 days, 16 hours' -> seconds."""
    total, found = 0, False
    for num, unit in re.findall(r"(\d+)\s*(year|week|day|hour|minute|second)s?", text):
        total += int(num) * _UPTIME_UNITS[unit]
        found = True
    return float(total) if found else None


# --- sessions ----------------------------------------------------------------------------------


class CliSession(Protocol):
    """One open CLI: send a command, get its validated text output."""

    def send(self, command: str) -> str: ...

    def prompt_name(self) -> str | None:
        """The device name as shown in the prompt (``router1`` of ``router1#``), if any."""
        ...


class NetmikoSession:
    """A :class:`CliSession` over a netmiko connection."""

    def __init__(self, conn: Any, params: SshParams, reject: Sequence[str]) -> None:
        self._conn = conn
        self._params = params
        self._reject = reject

    def send(self, command: str) -> str:
        try:
            out = self._conn.send_command(command, read_timeout=self._params.timeout_s)
        except Exception as e:
            raise wrap_error(e, self._params) from e
        if not isinstance(out, str):
            raise DriverError("parse", f"{command!r}: unexpected output type")
        text = check_output(command, out, self._reject)
        prompt = self.prompt_name()
        if prompt:  # a stray prompt line (an echoed empty line) is not output
            text = "\n".join(line for line in text.split("\n")
                             if not (line.strip().startswith(prompt)
                                     and len(line.strip()) <= len(prompt) + 2))
        return text

    def prompt_name(self) -> str | None:
        base = getattr(self._conn, "base_prompt", None)
        return base if isinstance(base, str) and base else None


def netmiko_kwargs(params: SshParams, device_type: str) -> dict[str, Any]:
    """ConnectHandler arguments: all timeouts from ``SshCfg.timeout_s``, no session log, no
    agent or ~/.ssh keys (only the configured key_file)."""
    t = params.timeout_s
    return {
        "device_type": device_type, "host": params.host, "port": params.port,
        "username": params.username, "password": params.password or "",
        "secret": params.enable_secret or "",
        "key_file": params.key_file, "use_keys": params.key_file is not None,
        "allow_agent": False, "ssh_config_file": None,
        "timeout": t, "conn_timeout": t, "auth_timeout": t, "banner_timeout": t,
        "blocking_timeout": t, "session_timeout": t, "read_timeout_override": None,
        "fast_cli": False, "session_log": None, "auto_connect": True,
    }


@contextmanager
def netmiko_session(params: SshParams, device_type: str, reject: Sequence[str],
                    enable: bool = False) -> Iterator[NetmikoSession]:
    """Open a netmiko connection (optionally enter enable mode), always disconnect."""
    from netmiko import ConnectHandler

    try:
        conn = ConnectHandler(**netmiko_kwargs(params, device_type))
    except Exception as e:
        raise wrap_error(e, params) from e
    try:
        if enable:
            try:
                conn.enable()
            except Exception as e:
                raise DriverError("auth", f"cannot enter privileged (enable) mode on "
                                          f"{params.where}: check enable_secret") from e
        yield NetmikoSession(conn, params, reject)
    finally:
        with suppress(Exception):  # closing a dead session must not mask the real error
            conn.disconnect()


# --- assembling an observation -----------------------------------------------------------------


@dataclass
class Collected:
    """What one poll read so far, section by section, and what failed."""

    facts: dict[str, Any] = field(default_factory=dict)
    interfaces: list[DeviceInterface] = field(default_factory=list)
    addresses: list[DeviceAddress] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    arp: list[ArpEntry] = field(default_factory=list)
    lldp_neighbors: list[LldpNeighbor] = field(default_factory=list)
    fdb: list[FdbEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was dropped or truncated
    errors: list[tuple[str, DriverError]] = field(default_factory=list)
    sections_ok: int = 0

    def add_routes(self, routes: Sequence[Route], source: str) -> None:
        """Add routes, at most :data:`MAX_ROUTES` in all; what does not fit is dropped (default
        routes are kept first, so the uplink survives) and counted in ``notes``."""
        room = max(MAX_ROUTES - len(self.routes), 0)
        if len(routes) > room:
            # stable: the device's order otherwise; a table sorted by prefix has them first anyway
            routes = sorted(routes, key=lambda r: r.destination not in ("0.0.0.0/0", "::/0"))
            self.notes.append(f"{source}: {len(routes)} routes, more than the report holds "
                              f"({MAX_ROUTES}); {len(routes) - room} dropped")
            routes = routes[:room]
        self.routes.extend(routes)

    def run(self, section: str, fn: Callable[[], None],
            params: SshParams | None = None) -> bool:
        """Run one section; record its error instead of raising. True if it worked."""
        try:
            fn()
        except DriverError as e:
            self.errors.append((section, wrap_error(e, params)))
            return False
        except ValidationError as e:
            msg = f"a value does not fit the report contract: {_first_line(e)}"
            self.errors.append((section, DriverError("parse", msg)))
            return False
        except Exception as e:  # library error inside a getter: wrap, never crash
            self.errors.append((section, wrap_error(e, params)))
            return False
        self.sections_ok += 1
        return True

    def fatal(self) -> DriverError | None:
        """A connection-level error that makes further sections pointless."""
        for _, e in self.errors:
            if e.kind in ("timeout", "auth", "refused", "unreachable"):
                return e
        return None

    def observation(self, device: DeviceCfg, driver: str, observed_at: datetime,
                    started: float) -> DeviceObservation:
        got_any = any(v is not None for v in self.facts.values()) or any(
            (self.interfaces, self.addresses, self.routes, self.arp, self.lldp_neighbors,
             self.fdb))
        if not self.errors:
            status, etype, error = PollStatus.OK, None, None
        else:
            status = PollStatus.PARTIAL if got_any else PollStatus.FAILED
            etype = self.errors[0][1].kind
            error = "; ".join(f"{s}: {e}" for s, e in self.errors)[:MAX_ERROR]
        try:
            return DeviceObservation(
                observed_at=observed_at, device=device.name, mgmt_address=device.host,
                driver=driver, status=status, error_type=etype, error=error,
                duration_s=round(time.monotonic() - started, 3),
                interfaces=self.interfaces, addresses=self.addresses, routes=self.routes,
                arp=self.arp, lldp_neighbors=self.lldp_neighbors, fdb=self.fdb,
                notes=[n[:MAX_NOTE] for n in self.notes[:MAX_NOTES]], **self.facts)
        except ValidationError as e:
            err = DriverError("parse", f"result does not fit the report contract: "
                                       f"{_first_line(e)}")
            return failed_observation(device, driver, err, observed_at, started)


def failed_observation(device: DeviceCfg, driver: str, err: DriverError,
                       observed_at: datetime, started: float) -> DeviceObservation:
    return DeviceObservation(
        observed_at=observed_at, device=device.name, mgmt_address=device.host, driver=driver,
        status=PollStatus.FAILED, error_type=err.kind, error=str(err)[:MAX_ERROR] or err.kind,
        duration_s=round(time.monotonic() - started, 3))


# --- the common shape of a CLI driver ----------------------------------------------------------


class CliDriver:
    """Base of the netmiko + TextFSM drivers: connect, run :meth:`collect`, build the result.

    Subclasses set the class attributes and implement :meth:`collect` (which calls only
    ``session.send`` and pure parse functions, so unit tests can feed recorded output).
    """

    platform: str
    netmiko_type: ClassVar[str]
    reject: ClassVar[tuple[str, ...]] = CISCO_REJECT
    config_command: ClassVar[str | None] = None
    enable: ClassVar[bool] = False

    @property
    def driver_name(self) -> str:
        return f"netmiko:{self.netmiko_type}"

    @contextmanager
    def session(self, params: SshParams) -> Iterator[CliSession]:
        with netmiko_session(params, self.netmiko_type, self.reject, self.enable) as s:
            yield s

    def collect(self, session: CliSession, out: Collected) -> None:
        raise NotImplementedError

    def poll(self, device: DeviceCfg) -> DeviceObservation:
        """Poll the device; never raises: failures are a FAILED/PARTIAL observation."""
        observed_at, started = utcnow(), time.monotonic()
        params: SshParams | None = None
        out = Collected()
        try:
            params = ssh_params(device)
            with self.session(params) as session:
                self.collect_with(session, out, params)
        except Exception as e:
            return failed_observation(device, self.driver_name, wrap_error(e, params),
                                      observed_at, started)
        return out.observation(device, self.driver_name, observed_at, started)

    def collect_with(self, session: CliSession, out: Collected,
                     params: SshParams | None = None) -> None:
        """Run :meth:`collect`, keeping only errors that are not connection-fatal."""
        self.collect(session, out)
        fatal = out.fatal()
        if fatal is not None and out.sections_ok == 0:
            raise fatal
        if params is not None:
            out.errors = [(s, wrap_error(e, params)) for s, e in out.errors]

    def read_config(self, session: CliSession) -> str:
        if self.config_command is None:
            raise DriverError("unsupported", f"{self.platform}: no configuration command")
        return session.send(self.config_command)

    def get_config(self, device: DeviceCfg) -> ConfigSnapshot | None:
        """The masked running configuration. Raises DriverError on failure."""
        from agent import configbackup

        if self.config_command is None:
            return None
        observed_at = utcnow()
        params = ssh_params(device)
        try:
            with self.session(params) as session:
                text = self.read_config(session)
        except Exception as e:
            raise wrap_error(e, params) from e
        key = configbackup.fingerprint_key(device.name, params.credential())
        return configbackup.snapshot(device.name, self.driver_name, self.platform, text,
                                     observed_at, key)
