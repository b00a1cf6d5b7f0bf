"""Alerting configuration (``alerts:`` in the collector config): typed, validated, immutable.

Every key has a default, so alerting runs (records alerts, notifies nobody) with no section at
all. Secrets (SMTP password, bot token, webhook HMAC secret, WhatsApp gateway token) are given
by reference only (``{env: NAME}`` or ``{file: /path}``), never inline. Example::

    alerts:
      language: id                   # id (Bahasa Indonesia) | en
      timezone: Asia/Jakarta
      hold_down_s: 120
      escalate_after_s: 900          # Tier 1 -> Tier 2 when not acknowledged in time
      escalate_after_s_by_severity: {critical: 300, minor: 3600}   # overrides per severity
      zones:
        pds: {DISKOMINFO: dc}
        targets: {"pusat-data*": dc, "intra-*": wan}
      tier1:
        DINKES:
          - {name: Teknisi Dinkes, email: it@dinkes.example.go.id, telegram_chat_id: "-1001"}
      tier2:
        - {name: NOC Diskominfo, email: noc@diskominfo.example.go.id}
      conditions:                    # each: enabled, severity, hold_down_s, escalate_after_s
        probe_down: {escalate_after_s: 600}  # wins over the severity's and the global time
        backup_overdue: {factor: 1.5, default_interval_s: 86400}
        drc_stale: {rpo_days: 7}     # the region profile's BAK-2 rpo_days wins if set
        violation: {exclude_obligations: []}
      channels:
        email: {host: smtp.example.go.id, port: 587, username: spbe,
                password: {env: SPBE_SMTP_PASSWORD}, from_addr: spbe@example.go.id}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import time as dtime
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.configfile import read_secret

Seconds = Annotated[float, Field(gt=0, le=30 * 86_400)]
CODE_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    INFO = "info"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEV_RANK[self]


_SEV_RANK = {Severity.INFO: 0, Severity.MINOR: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


class Zone(StrEnum):
    """Which side of the PD router a subject is on (INTRA-2): decides who owns a fault."""

    LAN = "lan"   # the PD's own LAN: PD Tier 1
    WAN = "wan"   # Jaringan Intra / WAN up to the PD router: Dinas Tier 2
    DC = "dc"     # Pusat Data: Dinas Tier 2


class Condition(StrEnum):
    AGENT_SILENT = "agent_silent"
    PROBE_DOWN = "probe_down"
    DEVICE_POLL_FAILED = "device_poll_failed"
    LINK_DOWN = "link_down"
    TOPOLOGY_CHANGE = "topology_change"
    BACKUP_FAILED = "backup_failed"
    BACKUP_OVERDUE = "backup_overdue"
    DRC_STALE = "drc_stale"
    VIOLATION = "violation"


class ChannelName(StrEnum):
    EMAIL = "email"
    TELEGRAM = "telegram"
    WEBHOOK = "webhook"
    WHATSAPP = "whatsapp"


class SecretRef(_Cfg):
    """A secret by reference: an environment variable or a file, never the value itself."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> SecretRef:
        if bool(self.env) == bool(self.file):
            raise ValueError("set exactly one of env or file (secrets are never inline)")
        return self

    def value(self, what: str) -> str:
        return read_secret(env=self.env, file=self.file, what=what)


def _check_url(url: AnyHttpUrl, allow_insecure_http: bool, what: str) -> None:
    if url.scheme == "http" and url.host not in LOOPBACK_HOSTS and not allow_insecure_http:
        raise ValueError(f"{what}: plain http:// is refused for a non-loopback host; use "
                         "https:// or set allow_insecure_http: true explicitly")


class ConditionCfg(_Cfg):
    """One condition's settings (``alerts.conditions.<name>``)."""

    enabled: bool = True
    severity: Severity | None = None          # None: the condition's default severity
    # None: alerts.hold_down_s for probe_down, device_poll_failed, link_down; 0 for the others
    hold_down_s: Annotated[float | None, Field(ge=0, le=86_400)] = None
    # an open Tier 1 alert of this condition not acknowledged within this many seconds of
    # being raised goes to Tier 2. None: alerts.escalate_after_s_by_severity for the alert's
    # severity, else alerts.escalate_after_s
    escalate_after_s: Seconds | None = None


class LinkDownCfg(ConditionCfg):
    # "device:interface" glob patterns of links worth an alert; by default every link that has
    # a description (a labelled, in-use port, see LAN-4)
    interfaces: list[str] = []


class BackupOverdueCfg(ConditionCfg):
    # overdue: no good backup for the job's expected_interval_s (else default_interval_s) x
    # factor. The region profile's BAK-1 parameters (overdue_factor, default_interval_hours)
    # take precedence when a profile with BAK-1 is configured, so alert and violation agree.
    factor: Annotated[float, Field(ge=1, le=100)] = 1.5
    default_interval_s: Seconds = 86_400.0


class DrcStaleCfg(ConditionCfg):
    # the RPO when the region profile gives none (its BAK-2 rpo_days takes precedence)
    rpo_days: Annotated[float, Field(gt=0, le=366)] = 7.0


class ViolationCfg(ConditionCfg):
    # obligations whose violations raise no alert (e.g. BAK-1 when the backup alerts suffice)
    exclude_obligations: list[Annotated[str, Field(pattern=r"^[A-Z0-9]+-[0-9]+$")]] = []


class ConditionsCfg(_Cfg):
    agent_silent: ConditionCfg = ConditionCfg()
    probe_down: ConditionCfg = ConditionCfg()
    device_poll_failed: ConditionCfg = ConditionCfg()
    link_down: LinkDownCfg = LinkDownCfg()
    topology_change: ConditionCfg = ConditionCfg()
    backup_failed: ConditionCfg = ConditionCfg()
    backup_overdue: BackupOverdueCfg = BackupOverdueCfg()
    drc_stale: DrcStaleCfg = DrcStaleCfg()
    violation: ViolationCfg = ViolationCfg()

    def get(self, condition: Condition) -> ConditionCfg:
        cfg: ConditionCfg = getattr(self, condition.value)
        return cfg


DEFAULT_SEVERITY: dict[Condition, Severity] = {
    Condition.AGENT_SILENT: Severity.MAJOR,
    Condition.PROBE_DOWN: Severity.MAJOR,
    Condition.DEVICE_POLL_FAILED: Severity.MINOR,
    Condition.LINK_DOWN: Severity.MAJOR,
    Condition.TOPOLOGY_CHANGE: Severity.INFO,
    Condition.BACKUP_FAILED: Severity.MAJOR,
    Condition.BACKUP_OVERDUE: Severity.MINOR,
    Condition.DRC_STALE: Severity.MINOR,
    Condition.VIOLATION: Severity.MINOR,
}


# faults that are states reported by an agent get the hold-down; the others are already
# settled when they are recorded (agent silence is N intervals long, a violation is a finding)
HOLD_DOWN_BY_DEFAULT = frozenset({Condition.PROBE_DOWN, Condition.DEVICE_POLL_FAILED,
                                  Condition.LINK_DOWN})


class ZonesCfg(_Cfg):
    """Zone classification: the first matching glob pattern wins, else the PD's zone, else
    ``default``. Targets/devices named like the Pusat Data or the intranet are WAN/DC faults."""

    default: Zone = Zone.LAN
    pds: dict[Annotated[str, Field(pattern=CODE_RE)], Zone] = {}
    targets: dict[str, Zone] = {}
    devices: dict[str, Zone] = {}

    def pd_zone(self, pd_code: str | None) -> Zone:
        return self.pds.get(pd_code or "", self.default)

    def target_zone(self, pd_code: str | None, name: str) -> Zone:
        return _first_match(self.targets, name) or self.pd_zone(pd_code)

    def device_zone(self, pd_code: str | None, name: str) -> Zone:
        return _first_match(self.devices, name) or self.pd_zone(pd_code)

    def backup_zone(self, pd_code: str | None, destinations: Sequence[str]) -> Zone:
        """A backup job's zone: the first of its destination names/addresses that matches a
        ``targets`` pattern (e.g. ``pusat-data*``, ``10.10.*``), else the PD's zone."""
        for d in destinations:
            zone = _first_match(self.targets, d)
            if zone is not None:
                return zone
        return self.pd_zone(pd_code)


def _first_match(patterns: dict[str, Zone], name: str) -> Zone | None:
    for pattern, zone in patterns.items():
        if fnmatchcase(name, pattern):
            return zone
    return None


class Contact(_Cfg):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    email: Annotated[str | None, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$",
                                       max_length=254)] = None
    telegram_chat_id: Annotated[str | None, Field(pattern=r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{5,64})$")
                                ] = None
    whatsapp: Annotated[str | None, Field(pattern=r"^\+?[0-9]{8,15}$")] = None
    webhook: AnyHttpUrl | None = None
    min_severity: Severity = Severity.INFO
    language: Literal["id", "en"] | None = None   # None: alerts.language
    digest: bool = True

    @model_validator(mode="after")
    def _some(self) -> Contact:
        if not self.addresses():
            raise ValueError(f"contact {self.name!r} has no address "
                             "(email, telegram_chat_id, whatsapp or webhook)")
        return self

    def addresses(self) -> list[tuple[ChannelName, str]]:
        out: list[tuple[ChannelName, str]] = []
        for ch, value in ((ChannelName.EMAIL, self.email),
                          (ChannelName.TELEGRAM, self.telegram_chat_id),
                          (ChannelName.WHATSAPP, self.whatsapp),
                          (ChannelName.WEBHOOK, str(self.webhook) if self.webhook else None)):
            if value:
                out.append((ch, value))
        return out


class EmailCfg(_Cfg):
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef | None = None
    from_addr: Annotated[str, Field(pattern=r"^[^@\s<>]+@[^@\s<>]+$")]
    from_name: str = "SPBE Monitor"
    ca_file: Path | None = None      # extra CA to trust (a private SMTP relay); system CAs else
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0

    @model_validator(mode="after")
    def _auth(self) -> EmailCfg:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        if self.password is not None and self.security == "none" \
                and self.host not in LOOPBACK_HOSTS:
            raise ValueError("SMTP AUTH over an unencrypted connection is refused; "
                             "use security: starttls or tls")
        return self


class TelegramCfg(_Cfg):
    api_base: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    bot_token: SecretRef
    allow_insecure_http: bool = False
    ca_file: Path | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0

    @model_validator(mode="after")
    def _url(self) -> TelegramCfg:
        _check_url(self.api_base, self.allow_insecure_http, "telegram.api_base")
        return self


class WebhookCfg(_Cfg):
    secret: SecretRef                   # HMAC-SHA256 key for X-SPBE-Signature
    allow_insecure_http: bool = False
    ca_file: Path | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0


class WhatsAppCfg(_Cfg):
    """A WhatsApp gateway (self-hosted or a local provider) that takes a JSON POST."""

    gateway_url: AnyHttpUrl
    token: SecretRef
    auth_header: str = "Authorization"
    auth_scheme: str = "Bearer"         # "" sends the bare token (e.g. Fonnte)
    to_field: str = "to"
    text_field: str = "message"
    allow_insecure_http: bool = False
    ca_file: Path | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0

    @model_validator(mode="after")
    def _url(self) -> WhatsAppCfg:
        _check_url(self.gateway_url, self.allow_insecure_http, "whatsapp.gateway_url")
        return self


class ChannelsCfg(_Cfg):
    email: EmailCfg | None = None
    telegram: TelegramCfg | None = None
    webhook: WebhookCfg | None = None
    whatsapp: WhatsAppCfg | None = None

    def configured(self) -> set[ChannelName]:
        return {c for c in ChannelName if getattr(self, c.value) is not None}


class DeliveryCfg(_Cfg):
    workers: Annotated[int, Field(ge=1, le=64)] = 4
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 10
    backoff_initial_s: Seconds = 10.0
    backoff_max_s: Seconds = 900.0
    poll_interval_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    # workers one channel may hold at once (default: half of them, at least 1), so a dead
    # gateway or webhook cannot delay the messages of the other channels
    max_per_channel: Annotated[int | None, Field(ge=1, le=64)] = None

    def channel_limit(self) -> int:
        return self.max_per_channel or max(1, self.workers // 2)


class DigestCfg(_Cfg):
    enabled: bool = True
    local_time: str = "07:00"           # HH:MM in alerts.timezone
    channels: list[ChannelName] = [ChannelName.EMAIL]
    skip_empty: bool = False

    @field_validator("local_time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        parse_hhmm(v)
        return v


def parse_hhmm(v: str) -> dtime:
    m = re.fullmatch(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", v)
    if not m:
        raise ValueError(f"{v!r} is not a time of day HH:MM")
    return dtime(int(m.group(1)), int(m.group(2)))


def check_timezone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {v!r} (use an IANA name such as Asia/Jakarta)") \
            from e
    return v


class AlertsCfg(_Cfg):
    enabled: bool = True
    language: Literal["id", "en"] = "id"
    timezone: str = "Asia/Jakarta"
    evaluate_interval_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    hold_down_s: Annotated[float, Field(ge=0, le=86_400)] = 120.0
    flap_window_s: Seconds = 900.0
    flap_threshold: Annotated[int, Field(ge=2, le=1000)] = 3   # down-onsets within the window
    # ALERT-1: an open Tier 1 alert not acknowledged within its escalation time after being
    # raised goes to Tier 2. The time is the first that is set of: the alert's condition's
    # conditions.<name>.escalate_after_s, escalate_after_s_by_severity[<its severity>], and
    # escalate_after_s (the global default)
    escalate_after_s: Seconds = 900.0
    escalate_after_s_by_severity: dict[Severity, Seconds] = {}
    agent_report_interval_s: Seconds = 60.0                     # the agents' heartbeat interval
    agent_silent_intervals: Annotated[float, Field(ge=1, le=1000)] = 3.0
    dashboard_url: AnyHttpUrl | None = None                     # linked from messages
    conditions: ConditionsCfg = ConditionsCfg()
    zones: ZonesCfg = ZonesCfg()
    tier1: dict[Annotated[str, Field(pattern=CODE_RE, max_length=64)], list[Contact]] = {}
    tier2: list[Contact] = []
    channels: ChannelsCfg = ChannelsCfg()
    delivery: DeliveryCfg = DeliveryCfg()
    digest: DigestCfg = DigestCfg()

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)

    @model_validator(mode="after")
    def _contacts_use_configured_channels(self) -> AlertsCfg:
        configured = self.channels.configured()
        groups = [(f"tier1.{pd}", cs) for pd, cs in self.tier1.items()]
        groups.append(("tier2", self.tier2))
        for where, contacts in groups:
            for i, c in enumerate(contacts):
                for ch, _ in c.addresses():
                    if ch not in configured:
                        raise ValueError(f"{where}[{i}] ({c.name}): has a {ch.value} address "
                                         f"but channels.{ch.value} is not configured")
                if c.webhook is not None and self.channels.webhook is not None:
                    _check_url(c.webhook, self.channels.webhook.allow_insecure_http,
                               f"{where}[{i}].webhook")
        return self

    def severity(self, condition: Condition) -> Severity:
        return self.conditions.get(condition).severity or DEFAULT_SEVERITY[condition]

    def hold_down(self, condition: Condition) -> float:
        h = self.conditions.get(condition).hold_down_s
        if h is not None:
            return h
        return self.hold_down_s if condition in HOLD_DOWN_BY_DEFAULT else 0.0

    def escalate_after(self, condition: Condition | None, severity: Severity) -> float:
        """Seconds an open Tier 1 alert may stay unacknowledged before it goes to Tier 2: the
        condition's ``escalate_after_s``, else the severity's, else the global one. A condition
        this version does not know (None) uses the severity's or the global time."""
        if condition is not None:
            own = self.conditions.get(condition).escalate_after_s
            if own is not None:
                return own
        return self.escalate_after_s_by_severity.get(severity, self.escalate_after_s)

    def zone_info(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
