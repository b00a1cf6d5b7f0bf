"""The report contract: the one schema agents send and the collector accepts.

Versioned pydantic v2 models, imported by both sides. The agent never imports collector code;
the collector never accepts anything that does not validate against these models.

Example envelope (JSON)::

    {"schema_version": 1, "report_id": "0192f0c4-...", "agent_id": "dinkes-gw",
     "pd_code": "DINKES", "sent_at": "2026-11-25T12:00:00Z",
     "observations": [{"kind": "heartbeat", "observed_at": "...", "uptime_s": 12.5, ...}]}
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
MAX_OBSERVATIONS = 5000

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"   # PD codes, agent ids, target names
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=CODE_PATTERN)]
Name = Annotated[str, Field(min_length=1, max_length=255)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # InfluxDB nanosecond time ends in 2262
INT64_MAX = 2**63 - 1


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (e.g. 2026-11-25T12:00:00Z)")
    if not EARLIEST <= v <= LATEST:
        raise ValueError("timestamp out of range (1970-01-02 .. 2200-01-01)")
    return v.astimezone(UTC)


class ProbeKind(StrEnum):
    ICMP = "icmp"
    TCP = "tcp"
    HTTP = "http"


class Heartbeat(_Model):
    """The agent is alive. Carries its own health: spool depth and what it had to drop.

    Example: ``{"kind": "heartbeat", "observed_at": "2026-11-25T12:00:00Z", "agent_version":
    "0.1.0", "uptime_s": 3600.0, "spool_pending": 0, "spool_dropped_total": 0}``
    """

    kind: Literal["heartbeat"] = "heartbeat"
    observed_at: datetime
    agent_version: Annotated[str, Field(max_length=64)]
    uptime_s: Annotated[float, Field(ge=0)]
    spool_pending: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    spool_dropped_total: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    spool_rejected_total: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0

    _tz = field_validator("observed_at")(_aware)


class InterfaceAddress(_Model):
    interface: Annotated[str, Field(max_length=64)]
    address: Annotated[str, Field(max_length=64)]
    prefix_len: Annotated[int, Field(ge=0, le=128)]
    family: Literal["ipv4", "ipv6"]


class Route(_Model):
    destination: Annotated[str, Field(max_length=64)]  # CIDR, "0.0.0.0/0" for the default route
    gateway: Annotated[str | None, Field(max_length=64)] = None
    interface: Annotated[str | None, Field(max_length=64)] = None
    metric: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0


class HostFacts(_Model):
    """Facts about the host the agent runs on.

    Example: ``{"kind": "host_facts", "observed_at": "...", "hostname": "gw-dinkes",
    "os": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-18-amd64", "uptime_s": 86400.0,
    "addresses": [{"interface": "eth0", "address": "10.20.0.2", "prefix_len": 24,
    "family": "ipv4"}], "routes": [{"destination": "0.0.0.0/0", "gateway": "10.20.0.1",
    "interface": "eth0", "metric": 0}]}``
    """

    kind: Literal["host_facts"] = "host_facts"
    observed_at: datetime
    hostname: Name
    os: Annotated[str, Field(max_length=255)]
    kernel: Annotated[str, Field(max_length=255)]
    uptime_s: Annotated[float, Field(ge=0)]
    server_mode: bool = False
    addresses: Annotated[list[InterfaceAddress], Field(max_length=1024)] = []
    routes: Annotated[list[Route], Field(max_length=4096)] = []

    _tz = field_validator("observed_at")(_aware)


def _ip_literal(v: str) -> str:
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        raise ValueError(f"not an IP address: {v[:64]!r}") from None


IpLiteral = Annotated[str, Field(max_length=64), AfterValidator(_ip_literal)]


class ProbeResult(_Model):
    """One reachability probe of one target.

    ``up`` is the verdict; the other fields are what was measured. Example (HTTPS):
    ``{"kind": "probe", "observed_at": "...", "target": "portal", "probe": "http",
    "address": "https://dinkes.kotabogor.go.id/", "up": true, "rtt_ms": 41.2,
    "status_code": 200, "tls_expires_at": "2027-01-31T23:59:59Z", "tls_days_left": 67.5}``
    """

    kind: Literal["probe"] = "probe"
    observed_at: datetime
    target: Code
    probe: ProbeKind
    address: Annotated[str, Field(min_length=1, max_length=2048)]
    up: bool
    rtt_ms: Annotated[float | None, Field(ge=0)] = None
    loss_pct: Annotated[float | None, Field(ge=0, le=100)] = None
    packets_sent: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    status_code: Annotated[int | None, Field(ge=100, le=599)] = None
    tls_expires_at: datetime | None = None
    tls_days_left: float | None = None
    error: Annotated[str | None, Field(max_length=1024)] = None
    # what the target's host name resolved to when probed (TCP and HTTP probes; empty for a
    # literal address or when resolution failed): where a website is really hosted (DC-3)
    resolved: Annotated[list[IpLiteral], Field(max_length=16)] = []

    _tz = field_validator("observed_at")(_aware)


# --- network devices (discovery) -----------------------------------------------------------

Short = Annotated[str, Field(max_length=255)]
# lower-case, colon-separated
Mac = Annotated[str, Field(pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]


class PollStatus(StrEnum):
    OK = "ok"            # everything asked for was read
    PARTIAL = "partial"  # the device answered, some tables failed (see ``error``)
    FAILED = "failed"    # nothing usable: timeout, auth failure, refused, garbage


class DeviceInterface(_Model):
    name: Short
    index: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    description: Short = ""          # ifAlias / configured description (cable label for LAN-4)
    type: Short | None = None        # e.g. "ethernetCsmacd", "softwareLoopback"
    mac: Mac | None = None
    mtu: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    speed_mbps: Annotated[float | None, Field(ge=0)] = None
    admin_up: bool | None = None
    oper_up: bool | None = None
    in_octets: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    out_octets: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    in_errors: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    out_errors: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    in_discards: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    out_discards: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None


class DeviceAddress(_Model):
    interface: Short | None = None
    address: Annotated[str, Field(max_length=64)]
    prefix_len: Annotated[int, Field(ge=0, le=128)]


class ArpEntry(_Model):
    ip: Annotated[str, Field(max_length=64)]
    mac: Mac
    interface: Short | None = None


class LldpNeighbor(_Model):
    local_port: Short
    remote_chassis_id: Short = ""
    remote_port_id: Short = ""
    remote_port_description: Short = ""
    remote_system_name: Short = ""
    remote_system_description: Annotated[str, Field(max_length=1024)] = ""
    remote_mgmt_address: Annotated[str | None, Field(max_length=64)] = None
    remote_capabilities: Annotated[list[Short], Field(max_length=16)] = []


class FdbEntry(_Model):
    mac: Mac
    port: Short | None = None
    vlan: Annotated[int | None, Field(ge=0, le=4095)] = None


class DeviceObservation(_Model):
    """One poll of one network device (router, switch, firewall, AP, Linux host).

    Example (trimmed): ``{"kind": "device", "observed_at": "...", "device": "dinkes-sw1",
    "mgmt_address": "10.20.0.2", "driver": "snmp", "status": "ok", "hostname": "dinkes-sw1",
    "vendor": "Cisco", "model": "C2960X-48TS-L", "serial": "FOC1234X0AB",
    "os_version": "15.2(7)E4", "sys_object_id": "1.3.6.1.4.1.9.1.1208",
    "interfaces": [{"name": "Gi1/0/1", "description": "R101-A01", "oper_up": true}],
    "lldp_neighbors": [{"local_port": "Gi1/0/48", "remote_system_name": "dinkes-rtr"}]}``
    """

    kind: Literal["device"] = "device"
    observed_at: datetime
    device: Code                                  # the name configured on the agent
    mgmt_address: Annotated[str, Field(max_length=255)]
    driver: Annotated[str, Field(max_length=64)]  # "snmp", "napalm:ios", "netmiko:huawei_vrp"
    status: PollStatus
    error_type: Annotated[str | None, Field(max_length=64)] = None  # timeout, auth, refused, ...
    error: Annotated[str | None, Field(max_length=2048)] = None
    duration_s: Annotated[float | None, Field(ge=0)] = None
    hostname: Short | None = None
    vendor: Short | None = None
    model: Short | None = None
    serial: Short | None = None
    os_version: Short | None = None
    sys_object_id: Annotated[str | None, Field(max_length=255)] = None
    sys_description: Annotated[str | None, Field(max_length=1024)] = None
    location: Short | None = None
    contact: Short | None = None
    uptime_s: Annotated[float | None, Field(ge=0)] = None
    role: Annotated[str | None, Field(max_length=32)] = None  # router, switch, firewall, ap, host
    interfaces: Annotated[list[DeviceInterface], Field(max_length=4096)] = []
    addresses: Annotated[list[DeviceAddress], Field(max_length=4096)] = []
    routes: Annotated[list[Route], Field(max_length=4096)] = []
    arp: Annotated[list[ArpEntry], Field(max_length=16384)] = []
    lldp_neighbors: Annotated[list[LldpNeighbor], Field(max_length=4096)] = []
    fdb: Annotated[list[FdbEntry], Field(max_length=16384)] = []
    # what the driver dropped or truncated (malformed values), e.g.
    # "ifPhysAddress not 6 bytes, dropped: 2 (ifIndex 5, ifIndex 9)"; informational only
    notes: Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=50)] = []

    _tz = field_validator("observed_at")(_aware)


class ConfigSnapshot(_Model):
    """A device's running configuration, secrets masked, volatile lines removed.

    ``sha256`` is over ``content`` exactly as sent, so equal hashes mean no real change.
    """

    kind: Literal["config"] = "config"
    observed_at: datetime
    device: Code
    driver: Annotated[str, Field(max_length=64)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    content: Annotated[str, Field(max_length=4 * 1024 * 1024)]
    masked_secrets: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    ignored_lines: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0

    _tz = field_validator("observed_at")(_aware)

    @model_validator(mode="after")
    def _hash_matches(self) -> ConfigSnapshot:
        if hashlib.sha256(self.content.encode()).hexdigest() != self.sha256:
            raise ValueError("sha256 does not match content")
        return self


# --- backups (BAK-1, BAK-2) ----------------------------------------------------------------

HostName = Annotated[str, Field(min_length=1, max_length=255)]
IpAddress = Annotated[str, Field(max_length=64)]
Reason = Annotated[str, Field(max_length=1024)]


class BackupJobType(StrEnum):
    FILES = "files"        # newest file matching a glob (dump files, tarballs)
    RESTIC = "restic"      # snapshots of a restic repository
    BORG = "borg"          # archives of a borg repository
    REPORTED = "reported"  # results pushed by the backup script (spbe-agent backup-report)


class BackupRunStatus(StrEnum):
    SUCCESS = "success"      # the newest backup is there and readable / the last run succeeded
    FAILED = "failed"        # the last run failed, or the backup could not be read (see reason)
    NEVER_RUN = "never_run"  # the location is readable but holds no backup at all


class IntegrityStatus(StrEnum):
    OK = "ok"            # verification ran and found nothing wrong
    FAILED = "failed"    # verification found damage: checksum mismatch, missing/corrupt data
    ERROR = "error"      # verification could not complete (timeout, lock, tool missing)
    NOT_RUN = "not_run"  # not configured, or not run yet


class BackupReplica(_Model):
    """The DRC copy of a backup job (BAK-2): where it is and how old its newest copy is."""

    destination: HostName | None = None
    destination_ips: Annotated[list[IpAddress], Field(max_length=64)] = []
    destination_error: Reason | None = None      # name resolution failed
    last_success_at: datetime | None = None      # newest snapshot/archive/file/report of the copy
    item_count: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    size_bytes: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    error: Reason | None = None                  # the copy could not be read
    error_type: Annotated[str | None, Field(max_length=64)] = None

    @field_validator("last_success_at")
    @classmethod
    def _tz(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _aware(v)


class BackupStatus(_Model):
    """The state of one backup job as the agent sees it (BAK-1, BAK-2, DC-3 evidence).

    ``status`` is the last run's outcome; ``last_success_at`` is the newest good backup (kept
    across check failures). ``destination_ips``/``replica.destination_ips`` are resolved by the
    agent so the collector can match them against Pusat Data and DRC subnets. Example::

        {"kind": "backup", "observed_at": "2026-11-25T12:00:00Z", "job": "simpeg-db",
         "type": "restic", "status": "success", "last_success_at": "2026-11-25T01:00:04Z",
         "size_bytes": 734003200, "item_count": 30, "destination": "backup.pusatdata.local",
         "destination_ips": ["10.10.5.20"], "expected_interval_s": 86400.0,
         "replica": {"destination": "drc.kotabogor.go.id", "destination_ips": ["10.99.5.20"],
                     "last_success_at": "2026-11-24T03:00:00Z", "item_count": 30},
         "integrity": "ok", "integrity_checked_at": "2026-11-24T02:10:00Z"}
    """

    kind: Literal["backup"] = "backup"
    observed_at: datetime
    job: Code
    type: BackupJobType
    status: BackupRunStatus
    error_type: Annotated[str | None, Field(max_length=64)] = None  # auth, timeout, bad_output..
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure_reason: Reason | None = None
    # of the newest good backup
    size_bytes: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    duration_s: Annotated[float | None, Field(ge=0)] = None
    # files / snapshots / archives
    item_count: Annotated[int | None, Field(ge=0, le=INT64_MAX)] = None
    checksum_sha256: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    expected_interval_s: Annotated[float | None, Field(gt=0)] = None  # configured schedule
    destination: HostName | None = None
    destination_ips: Annotated[list[IpAddress], Field(max_length=64)] = []
    destination_error: Reason | None = None
    replica: BackupReplica | None = None                       # None: no DRC copy configured
    integrity: IntegrityStatus = IntegrityStatus.NOT_RUN
    integrity_checked_at: datetime | None = None
    integrity_message: Reason | None = None

    _tz = field_validator("observed_at")(_aware)

    @field_validator("last_success_at", "last_failure_at", "integrity_checked_at")
    @classmethod
    def _tz_opt(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _aware(v)


# --- server detection (DC-1) ---------------------------------------------------------------

Port = Annotated[int, Field(ge=1, le=65535)]


class ServerRole(StrEnum):
    """What a host probably is, guessed from its open ports (most telling first)."""

    DATABASE = "database"          # 1433, 1521, 3306, 5432, 27017, 6379, 9200
    DIRECTORY = "directory"        # 389, 636
    MAIL = "mail"                  # 25, 110, 143
    FILE = "file"                  # 21, 139, 445
    WEB = "web"                    # 80, 443, 8080, 8443
    DNS = "dns"                    # 53
    REMOTE_ADMIN = "remote-admin"  # 22, 3389
    OTHER = "other"                # a configured port with no known role


class ScannedHost(_Model):
    """A LAN host that answered on at least one server port (hosts without one are counted
    in :class:`ServerScan`, not listed).

    Example: ``{"ip": "10.20.16.50", "mac": "52:54:00:12:34:56", "interface": "eth0",
    "open_ports": [80, 5432], "roles": ["database", "web"], "role": "database",
    "scanned_at": "2026-11-25T12:00:03Z", "filtered_ports": [3306]}``
    """

    ip: IpAddress
    mac: Mac | None = None                       # from the agent's ARP/neighbour table
    interface: Short | None = None
    open_ports: Annotated[list[Port], Field(min_length=1, max_length=1024)]
    roles: Annotated[list[ServerRole], Field(min_length=1, max_length=16)]  # most telling first
    role: ServerRole                             # = roles[0]
    scanned_at: datetime
    filtered_ports: Annotated[list[Port], Field(max_length=1024)] = []  # no answer in time

    _tz = field_validator("scanned_at")(_aware)

    @model_validator(mode="after")
    def _role_first(self) -> ScannedHost:
        if self.role != self.roles[0]:
            raise ValueError("role must be the first of roles")
        return self


class LocalServerPorts(_Model):
    """The agent host's own server ports (``server_mode``), from its LISTEN sockets on
    non-loopback addresses; not scanned. ``role`` is None when no server port listens."""

    open_ports: Annotated[list[Port], Field(max_length=1024)] = []
    roles: Annotated[list[ServerRole], Field(max_length=16)] = []
    role: ServerRole | None = None
    error: Reason | None = None                  # the socket tables could not be read


class ServerScan(_Model):
    """One light TCP-connect scan of the PD LAN hosts in the agent's ARP/neighbour table
    (DC-1 evidence: server-class hosts outside the Pusat Data).

    Counters: ``candidates`` in-scope addresses (neighbours in ``subnets`` plus ``include``
    ranges), ``excluded`` dropped by exclude ranges or being the agent's own address,
    ``skipped_over_cap`` beyond ``max_hosts``, ``scanned`` probed, ``without_open_ports``
    scanned but not listed. Example::

        {"kind": "server_scan", "observed_at": "2026-11-25T12:00:00Z",
         "subnets": ["10.20.16.0/24"], "ports": [22, 80, 443, 5432],
         "hosts": [{"ip": "10.20.16.50", "mac": "52:54:00:12:34:56", "open_ports": [5432],
                    "roles": ["database"], "role": "database",
                    "scanned_at": "2026-11-25T12:00:01Z"}],
         "candidates": 14, "excluded": 1, "scanned": 13, "without_open_ports": 12,
         "connections": 52, "timeouts": 3, "duration_s": 1.4, "complete": true,
         "server_mode": true, "local": {"open_ports": [443], "roles": ["web"], "role": "web"}}
    """

    kind: Literal["server_scan"] = "server_scan"
    observed_at: datetime
    subnets: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=256)]
    ports: Annotated[list[Port], Field(max_length=1024)]
    hosts: Annotated[list[ScannedHost], Field(max_length=4096)] = []
    candidates: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    excluded: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    skipped_over_cap: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    scanned: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    without_open_ports: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0
    connections: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0   # connect attempts made
    timeouts: Annotated[int, Field(ge=0, le=INT64_MAX)] = 0      # attempts with no answer in time
    duration_s: Annotated[float, Field(ge=0)] = 0.0
    complete: bool = True      # False: stopped at the time budget, or no neighbour table
    error: Reason | None = None
    server_mode: bool = False
    local: LocalServerPorts | None = None          # only in server mode

    _tz = field_validator("observed_at")(_aware)


Observation = Annotated[HostFacts | Heartbeat | ProbeResult | DeviceObservation | ConfigSnapshot
                        | BackupStatus | ServerScan,
                        Field(discriminator="kind")]


class Report(_Model):
    """The envelope an agent sends: one report, many observations."""

    schema_version: Literal[1] = 1
    report_id: uuid.UUID
    agent_id: Code
    pd_code: Code
    sent_at: datetime
    observations: Annotated[list[Observation], Field(max_length=MAX_OBSERVATIONS)]

    _tz = field_validator("sent_at")(_aware)


class Ack(_Model):
    """The collector's answer to an accepted report."""

    report_id: uuid.UUID
    status: Literal["accepted", "duplicate"]
    points: int
    clock_skew_s: float
    # observations stamped further in the future than the collector tolerates, taken as
    # observed at arrival (an agent clock that was wrong when they were made)
    future_clamped: int = 0


# --- report identifiers --------------------------------------------------------------------

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_report_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a counter and random bits.

    IDs from one process are strictly increasing, so the collector and the spool can sort by
    them; random bits make collisions between agents practically impossible.
    """
    global _last_ms, _seq
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _seq += 1
            if _seq > 0xFFF:  # counter exhausted within one millisecond: borrow the next one
                ms += 1
                _seq = 0
        else:
            _seq = secrets.randbelow(0x200)
        _last_ms = ms
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return uuid.UUID(int=value)


def report_id_time(report_id: uuid.UUID) -> datetime:
    """The creation time encoded in a UUIDv7 report ID."""
    return datetime.fromtimestamp((report_id.int >> 80) / 1000, tz=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
