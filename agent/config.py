"""Agent configuration: typed, validated, immutable. Loaded from YAML plus ``SPBE_AGENT_*`` env.

Secrets (the agent token) are referenced by ``token_env`` or ``token_file``, never inline.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from contract.configfile import load_config, read_secret
from contract.report import Code, ServerRole

ENV_PREFIX = "SPBE_AGENT_"
Seconds = Annotated[float, Field(gt=0, le=86_400)]


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorCfg(_Cfg):
    url: AnyHttpUrl
    token_env: str | None = None
    token_file: Path | None = None
    ca_bundle: Path | None = None
    allow_insecure_http: bool = False
    timeout_s: Seconds = 10.0

    @model_validator(mode="after")
    def _check(self) -> CollectorCfg:
        if self.url.scheme == "http" and not self.allow_insecure_http:
            raise ValueError("plain http:// is refused; use https:// or set "
                             "allow_insecure_http: true explicitly")
        if not self.token_env and not self.token_file:
            raise ValueError("set token_env or token_file (the agent token is never inline)")
        return self

    def token(self) -> str:
        return read_secret(env=self.token_env, file=self.token_file, what="collector token")


class SpoolCfg(_Cfg):
    path: Path = Path("/var/lib/spbe-agent/spool.sqlite")
    max_bytes: Annotated[int, Field(ge=64 * 1024)] = 256 * 1024 * 1024
    max_age_days: Annotated[float, Field(gt=0)] = 30.0
    # reports set aside (refused by the collector) are kept up to this size, oldest dropped
    max_rejected_bytes: Annotated[int, Field(ge=64 * 1024)] = 64 * 1024 * 1024


class ShippingCfg(_Cfg):
    batch_reports: Annotated[int, Field(ge=1, le=1000)] = 50
    # a report the collector fails on (HTTP 500) this many times is set aside, so the reports
    # behind it are not held up; `spbe-agent spool requeue` sends it again
    max_server_errors: Annotated[int, Field(ge=1, le=10_000)] = 10
    # a cycle's observations above this size (JSON, before gzip) go out as several reports;
    # keep it under the collector's limits.max_decompressed_bytes (16 MiB by default)
    max_report_bytes: Annotated[int, Field(ge=16 * 1024, le=256 * 1024 * 1024)] = 4 * 1024 * 1024
    backoff_initial_s: Seconds = 1.0
    backoff_max_s: Seconds = 300.0
    idle_poll_s: Seconds = 1.0


class IntervalsCfg(_Cfg):
    heartbeat_s: Seconds = 60.0
    host_facts_s: Seconds = 300.0
    probes_s: Seconds = 60.0
    devices_s: Seconds = 300.0
    config_backup_s: Seconds = 3600.0
    backups_s: Seconds = 900.0
    server_scan_s: Seconds = 6 * 3600.0


class SecretRef(_Cfg):
    """A secret by reference: an environment variable or a file, never the value itself."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if bool(self.env) == bool(self.file):
            raise ValueError("set exactly one of env or file")
        return self

    def value(self, what: str) -> str:
        return read_secret(env=self.env, file=self.file, what=what)


class SnmpCfg(_Cfg):
    version: Literal["2c", "3"] = "2c"
    port: Annotated[int, Field(ge=1, le=65535)] = 161
    community: SecretRef | None = None          # v2c
    user: str | None = None                     # v3 (authPriv)
    auth_protocol: Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"] = "sha"
    auth_key: SecretRef | None = None
    priv_protocol: Literal["des", "aes", "aes192", "aes256"] = "aes"
    priv_key: SecretRef | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    retries: Annotated[int, Field(ge=0, le=10)] = 1
    max_repetitions: Annotated[int, Field(ge=1, le=200)] = 25

    @model_validator(mode="after")
    def _creds(self) -> SnmpCfg:
        if self.version == "2c" and self.community is None:
            raise ValueError("SNMP v2c needs community (env or file)")
        if self.version == "3" and not (self.user and self.auth_key and self.priv_key):
            raise ValueError("SNMP v3 needs user, auth_key and priv_key (authPriv)")
        return self


class SshCfg(_Cfg):
    port: Annotated[int, Field(ge=1, le=65535)] = 22
    username: Annotated[str, Field(min_length=1)]
    password: SecretRef | None = None
    key_file: Path | None = None
    enable_secret: SecretRef | None = None
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0

    @model_validator(mode="after")
    def _creds(self) -> SshCfg:
        if self.password is None and self.key_file is None:
            raise ValueError("SSH needs password (env or file) or key_file")
        return self


class DeviceCfg(_Cfg):
    """A network device the agent polls. ``platform`` names the driver file in agent/drivers/
    (``snmp`` for anything that speaks SNMP, or an SSH platform such as ``ios``, ``eos``,
    ``junos``, ``huawei_vrp``, ``routeros``, ``linux``)."""

    name: Code
    host: Annotated[str, Field(min_length=1, max_length=255)]
    platform: Annotated[str, Field(min_length=1, max_length=64)] = "snmp"
    snmp: SnmpCfg | None = None
    ssh: SshCfg | None = None
    config_backup: bool = False
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0


class _Probe(_Cfg):
    name: Code
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0


class IcmpProbe(_Probe):
    type: Literal["icmp"]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    count: Annotated[int, Field(ge=1, le=100)] = 3
    interval_s: Annotated[float, Field(ge=0.01, le=10)] = 0.2
    max_loss_pct: Annotated[float, Field(ge=0, le=100)] = 99.0


class TcpProbe(_Probe):
    type: Literal["tcp"]
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)]


class HttpProbe(_Probe):
    type: Literal["http"]
    url: AnyHttpUrl
    expect_status: Annotated[list[Annotated[int, Field(ge=100, le=599)]], Field(min_length=1)] = [
        200, 201, 202, 204, 301, 302, 303, 307, 308]
    verify_tls: bool = True
    ca_bundle: Path | None = None


Probe = Annotated[IcmpProbe | TcpProbe | HttpProbe, Field(discriminator="type")]


# --- backup jobs (BAK-1, BAK-2) ------------------------------------------------------------

BackupHost = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s/@]+$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]*$")]
LongSeconds = Annotated[float, Field(gt=0, le=366 * 86_400)]
_INLINE_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]*@")


class BackupReplicaCfg(_Cfg):
    """The DRC copy of a job, checked the same way as the job itself: another ``repository``
    (restic, borg) or another glob ``path`` (files). A reported job's replica has only a
    ``destination``; its age comes from ``backup-report --replica HOST``."""

    destination: BackupHost | None = None  # derived from the repository URL when omitted
    repository: Annotated[str | None, Field(min_length=1, max_length=2048)] = None
    path: Annotated[str | None, Field(min_length=1, max_length=4096)] = None
    password: SecretRef | None = None      # restic/borg; default: the job's own


class _BackupJob(_Cfg):
    name: Code
    destination: BackupHost | None = None  # backup server; derived from a repository URL
    expected_interval_s: LongSeconds = 86_400.0  # how often the backup is meant to run
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0  # per command / file scan
    replica: BackupReplicaCfg | None = None


class FilesBackupJob(_BackupJob):
    """The newest file matching ``path`` (a glob, ``**`` allowed) is the last backup."""

    type: Literal["files"]
    path: Annotated[str, Field(min_length=2, max_length=4096)]
    checksum: Literal["none", "sidecar", "compute"] = "none"  # sidecar: verify FILE.sha256

    @model_validator(mode="after")
    def _check(self) -> FilesBackupJob:
        for what, p in (("path", self.path),
                        ("replica.path", self.replica.path if self.replica else None)):
            if p is not None and not p.startswith("/"):
                raise ValueError(f"{what} must be an absolute glob, e.g. /backup/db/*.sql.gz")
        if self.replica and (self.replica.repository or not self.replica.path):
            raise ValueError("a files job's replica needs path (a glob), not repository")
        return self


class _RepoJob(_BackupJob):
    repository: Annotated[str, Field(min_length=1, max_length=2048)]
    binary: Annotated[str, Field(min_length=1, max_length=4096)]
    cache_dir: Path | None = None  # default: beside the spool
    env: dict[EnvName, str] = {}   # extra non-secret environment (e.g. BORG_RSH)
    secret_env: dict[EnvName, SecretRef] = {}  # e.g. AWS_SECRET_ACCESS_KEY for s3:
    integrity_check: bool = False  # restic check / borg check on its own interval
    check_interval_s: LongSeconds = 7 * 86_400.0
    check_timeout_s: Annotated[float, Field(gt=0, le=7 * 86_400)] = 6 * 3600.0
    check_args: Annotated[list[str], Field(max_length=32)] = []

    @model_validator(mode="after")
    def _check_repo(self) -> _RepoJob:
        for what, repo in (("repository", self.repository),
                           ("replica.repository", self.replica.repository
                            if self.replica else None)):
            if repo and _INLINE_PASSWORD.search(repo):
                raise ValueError(f"{what} must not contain a password; pass credentials "
                                 "through secret_env or an SSH key")
        if self.replica and (self.replica.path or not self.replica.repository):
            raise ValueError(f"a {getattr(self, 'type', '')} job's replica needs repository, "
                             "not path")
        if any(a.startswith("--repair") for a in self.check_args):
            raise ValueError("check_args: --repair is refused; monitoring only reads")
        return self


class ResticBackupJob(_RepoJob):
    type: Literal["restic"]
    binary: Annotated[str, Field(min_length=1, max_length=4096)] = "restic"
    password: SecretRef  # -> RESTIC_PASSWORD_FILE (file) or RESTIC_PASSWORD (env)
    snapshot_host: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    tags: Annotated[list[str], Field(max_length=32)] = []
    paths: Annotated[list[str], Field(max_length=32)] = []


class BorgBackupJob(_RepoJob):
    type: Literal["borg"]
    binary: Annotated[str, Field(min_length=1, max_length=4096)] = "borg"
    passphrase: SecretRef | None = None  # -> BORG_PASSCOMMAND (file) / BORG_PASSPHRASE (env)
    glob_archives: Annotated[str | None, Field(min_length=1, max_length=255)] = None


class ReportedBackupJob(_BackupJob):
    """Results pushed by the backup script: ``spbe-agent backup-report --job NAME ...``."""

    type: Literal["reported"]

    @model_validator(mode="after")
    def _check(self) -> ReportedBackupJob:
        if self.replica and (self.replica.repository or self.replica.path
                             or self.replica.password):
            raise ValueError("a reported job's replica takes only destination")
        return self


BackupJobCfg = Annotated[FilesBackupJob | ResticBackupJob | BorgBackupJob | ReportedBackupJob,
                         Field(discriminator="type")]


# --- server detection (DC-1) ---------------------------------------------------------------

Port = Annotated[int, Field(ge=1, le=65535)]
# ssh, web, databases (mssql, oracle, mysql, postgres, mongodb, redis, elasticsearch),
# rdp, smb, ftp, smtp, pop3, imap, ldap(s), dns
DEFAULT_SERVER_PORTS = (22, 80, 443, 1433, 1521, 3306, 5432, 27017, 6379, 9200, 8080, 8443,
                        3389, 445, 139, 21, 25, 110, 143, 389, 636, 53)
MAX_INCLUDE_ADDRESSES = 4096  # per include range: a sweep list, not a way to scan a /16


def _cidr(v: object) -> object:
    if not isinstance(v, str):
        return v
    try:
        return ipaddress.ip_network(v.strip(), strict=True)
    except ValueError as e:
        raise ValueError(f"{v!r} is not a network in CIDR form such as 10.20.16.0/24 "
                         f"(host bits must be zero): {e}") from e


Cidr = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_cidr)]


class ServerScanCfg(_Cfg):
    """Server detection on the PD LAN (DC-1): a light, rate-limited TCP connect scan of the
    hosts in the agent's ARP/neighbour table that lie in ``subnets``, plus every address of
    the ``include`` ranges; ``exclude`` ranges and the agent's own addresses are never
    touched, nor is anything outside ``subnets``. Off by default."""

    enabled: bool = False
    subnets: Annotated[list[Cidr], Field(max_length=256)] = []   # the PD LAN(s)
    include: Annotated[list[Cidr], Field(max_length=256)] = []   # swept even if not in ARP
    exclude: Annotated[list[Cidr], Field(max_length=1024)] = []  # never connected to
    ports: Annotated[list[Port], Field(min_length=1, max_length=1024)] = list(
        DEFAULT_SERVER_PORTS)
    port_roles: dict[Port, ServerRole] = {}  # role of extra/non-standard ports, e.g. 8081: web
    rate_limit_per_s: Annotated[float, Field(gt=0, le=1000)] = 50.0  # connection attempts/s
    burst: Annotated[int, Field(ge=1, le=100)] = 5          # token bucket capacity
    concurrency: Annotated[int, Field(ge=1, le=256)] = 32   # connects in flight at most
    connect_timeout_s: Annotated[float, Field(gt=0, le=10)] = 0.5
    max_hosts: Annotated[int, Field(ge=1, le=4096)] = 256   # hard cap per run
    max_duration_s: Annotated[float, Field(gt=0, le=86_400)] = 1800.0  # time budget per run

    @field_validator("subnets", "include")
    @classmethod
    def _usable(cls, nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
                ) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        for n in nets:
            if n.is_loopback or n.is_multicast or n.is_link_local or n.is_unspecified:
                raise ValueError(f"{n} is a loopback, multicast, link-local or unspecified "
                                 "range; give the PD LAN subnet")
        return nets

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[int]) -> list[int]:
        seen: set[int] = set()
        for p in ports:
            if p in seen:
                raise ValueError(f"port {p} is listed twice")
            seen.add(p)
        return ports

    @model_validator(mode="after")
    def _check(self) -> ServerScanCfg:
        if self.enabled and not self.subnets:
            raise ValueError("subnets: give the PD LAN subnet(s) to scan (e.g. [10.20.16.0/24]) "
                             "when enabled")
        for inc in self.include:
            if not any(inc.version == s.version and inc.subnet_of(s)  # type: ignore[arg-type]
                       for s in self.subnets):
                raise ValueError(f"include {inc} is not inside any of subnets; the scan never "
                                 "leaves the configured subnets")
            if inc.num_addresses > MAX_INCLUDE_ADDRESSES:
                raise ValueError(f"include {inc} has {inc.num_addresses} addresses; at most "
                                 f"{MAX_INCLUDE_ADDRESSES} per range (rely on the ARP table "
                                 "for bigger subnets)")
        return self


class AgentConfig(_Cfg):
    agent_id: Code
    pd_code: Code
    collector: CollectorCfg
    server_mode: bool = False
    spool: SpoolCfg = SpoolCfg()
    shipping: ShippingCfg = ShippingCfg()
    intervals: IntervalsCfg = IntervalsCfg()
    probes: Annotated[list[Probe], Field(max_length=2000)] = []
    devices: Annotated[list[DeviceCfg], Field(max_length=5000)] = []
    backups: Annotated[list[BackupJobCfg], Field(max_length=1000)] = []
    server_scan: ServerScanCfg = ServerScanCfg()
    device_workers: Annotated[int, Field(ge=1, le=256)] = 16
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _unique_probe_names(self) -> AgentConfig:
        for what, names in (("probe", [p.name for p in self.probes]),
                            ("device", [d.name for d in self.devices]),
                            ("backup job", [b.name for b in self.backups])):
            seen: set[str] = set()
            for n in names:
                if n in seen:
                    raise ValueError(f"{what} name {n!r} is used twice; names must be unique")
                seen.add(n)
        return self


def load(path: Path | None) -> AgentConfig:
    return load_config(AgentConfig, path, ENV_PREFIX)
