"""Region profiles and the site model: typed, validated, immutable.

A **region profile** (``configs/regions/<key>.yaml``) says which obligations of
``OBLIGATIONS.md`` a region's regulation imposes, the exact article of that regulation for
each, the rule parameters (thresholds, SLA target, RPO, label pattern, ...), the region's time
zone and the date from which violations are enforced (before it they are warnings). Example::

    key: lebak-2024
    region: Kabupaten Lebak
    regulation: {short: Perbup Lebak 24/2024, title: "Peraturan Bupati Lebak Nomor 24 ...",
                 status: in_force, enacted: 2024-07-09}
    timezone: Asia/Jakarta
    enforcement_start: 2024-07-09
    portal_domain: lebakkab.go.id
    obligations:
      BAK-1: {article: "Pasal 17 ayat (1)", params: {overdue_factor: 1.5}}

The **site model** (``compliance.site`` in the collector config) describes the region's
network: Pusat Data and DRC subnets, intranet gateways, Dinas' public allocation, the
Indonesian prefix list, and the PDs (Mandiri TIK, registered websites, recorded exemptions).
It is configuration because it changes rarely, is reviewed by the operator and must be the
same for every collector. What changes with daily work (the registered inventory for
ASSET-1, violations, waivers, baselines) lives in the database.

Errors name the file and the key, e.g.
``configs/regions/lebak-2024.yaml: obligations.BAK-2.params.rpo_days: Input should be greater
than 0``.
"""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
from datetime import date, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from contract.configfile import ConfigError, format_validation_error, parse_yaml, read_text
from contract.report import Code

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


class ProfileError(ConfigError):
    """A region profile or site model that cannot be used; says which file and key."""


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Obligation(StrEnum):
    """Obligations with a rule (one module each in ``collector/compliance/rules``)."""

    INTRA_1 = "INTRA-1"
    LAN_1 = "LAN-1"
    LAN_2 = "LAN-2"
    LAN_3 = "LAN-3"
    LAN_4 = "LAN-4"
    NET_1 = "NET-1"
    NET_2 = "NET-2"
    ASSET_1 = "ASSET-1"
    DC_1 = "DC-1"
    DC_2 = "DC-2"
    DC_3 = "DC-3"
    BAK_1 = "BAK-1"
    BAK_2 = "BAK-2"
    WEB_1 = "WEB-1"


class Reference(StrEnum):
    """Obligations of the catalogue that are not violations (alert routing, notification,
    escalation, period reports): profiles give their articles for messages and reports."""

    INTRA_2 = "INTRA-2"
    INC_1 = "INC-1"
    ALERT_1 = "ALERT-1"
    AUDIT_1 = "AUDIT-1"


class Severity(StrEnum):
    WARNING = "warning"     # before the enforcement start (or a draft regulation)
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


Article = Annotated[str, Field(min_length=5, max_length=255, pattern=r"^Pasal \d")]


class RegulationCfg(_Cfg):
    short: Annotated[str, Field(min_length=3, max_length=80)]    # "Perbup Lebak 24/2024"
    title: Annotated[str, Field(min_length=10, max_length=500)]
    status: Literal["in_force", "draft"] = "in_force"
    enacted: date | None = None       # ditetapkan / diundangkan
    source: Annotated[str | None, Field(max_length=255)] = None  # the text it was read from


class ObligationCfg(_Cfg):
    article: Article
    severity: Severity | None = None   # None: the rule's default
    params: dict[str, Any] = {}        # validated against the rule's Params model on load

    @field_validator("severity")
    @classmethod
    def _not_warning(cls, v: Severity | None) -> Severity | None:
        if v is Severity.WARNING:
            raise ValueError("warning is given by enforcement_start, not set per obligation")
        return v


class RegionProfile(_Cfg):
    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=32)]
    region: Annotated[str, Field(min_length=3, max_length=120)]
    regulation: RegulationCfg
    timezone: str = "Asia/Jakarta"
    # violations found before this date (00:00 in ``timezone``) are warnings; None: never
    # enforced (a draft regulation)
    enforcement_start: date | None
    enforcement_note: Annotated[str | None, Field(max_length=1000)] = None
    portal_domain: Annotated[str | None, Field(
        max_length=253, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$"
    )] = None
    obligations: Annotated[dict[Obligation, ObligationCfg], Field(min_length=1)]
    references: dict[Reference, Article] = {}

    _params: dict[Obligation, BaseModel] = PrivateAttr(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (e.g. Asia/Jakarta)") from e
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RegionProfile:
        if self.regulation.status == "draft" and self.enforcement_start is not None:
            raise ValueError("a draft regulation is not enforced: set enforcement_start: null")
        if Obligation.WEB_1 in self.obligations and not self.portal_domain:
            raise ValueError("WEB-1 needs portal_domain (the regional portal, e.g. "
                             "kotabogor.go.id)")
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def enforced_at(self, now: float) -> bool:
        """Whether violations found at ``now`` (epoch seconds) are enforced."""
        if self.enforcement_start is None:
            return False
        start = datetime.combine(self.enforcement_start, time(0, 0), tzinfo=self.tz)
        return now >= start.timestamp()

    def citation(self, obligation: Obligation) -> str:
        """``"Pasal 17 ayat (1) Perbup Lebak 24/2024"``."""
        return f"{self.obligations[obligation].article} {self.regulation.short}"

    def params(self, obligation: Obligation) -> BaseModel:
        return self._params[obligation]


# --- site model -------------------------------------------------------------------------------

class WebsiteCfg(_Cfg):
    """A registered PD website; ``hosting_addresses``: where it is hosted (DC-3), when the
    operator knows; HTTP probes with a literal IP add to them."""

    url: AnyHttpUrl
    hosting_addresses: Annotated[list[ipaddress.IPv4Address | ipaddress.IPv6Address],
                                 Field(max_length=64)] = []

    @property
    def host(self) -> str:
        return (self.url.host or "").lower().rstrip(".")


def _website(v: Any) -> Any:
    return {"url": v} if isinstance(v, str) else v


class PdSite(_Cfg):
    name: Annotated[str | None, Field(max_length=255)] = None
    mandiri_tik: bool = False   # certified to run its own LAN/servers (bogor/kediri/lebak)
    dinas: bool = False         # the Dinas itself: its agents measure the Pusat Data (DC-2)
    websites: Annotated[list[WebsiteCfg], Field(max_length=256)] = []
    # obligations this PD is exempt from by a recorded decision (not a waiver: no expiry)
    exempt: list[Obligation] = []

    @field_validator("websites", mode="before")
    @classmethod
    def _sites(cls, v: Any) -> Any:
        return [_website(x) for x in v] if isinstance(v, list) else v


_NO_SITE = PdSite()


class SiteCfg(_Cfg):
    pusat_data_subnets: Annotated[list[IPvAnyNetwork], Field(max_length=4096)] = []
    drc_subnets: Annotated[list[IPvAnyNetwork], Field(max_length=4096)] = []
    # next hops that are the Jaringan Intra (a PD router's default route must point there)
    intranet_gateways: Annotated[list[IPvAnyNetwork], Field(max_length=4096)] = []
    public_allocation: Annotated[list[IPvAnyNetwork], Field(max_length=4096)] = []
    indonesia_prefixes: Annotated[list[IPvAnyNetwork], Field(max_length=100_000)] = []
    indonesia_prefixes_file: Path | None = None   # one prefix per line, '#' comments
    # probe target names that stand for the Pusat Data (besides targets in its subnets)
    pusat_data_targets: list[Annotated[str, Field(min_length=1, max_length=64)]] = [
        "pusat-data*", "pusatdata*"]
    pds: dict[Code, PdSite] = {}

    _prefixes: tuple[IpNetwork, ...] = PrivateAttr(default=())

    @field_validator("intranet_gateways", "public_allocation", "pusat_data_subnets",
                     "drc_subnets", "indonesia_prefixes", mode="before")
    @classmethod
    def _hosts_as_networks(cls, v: Any) -> Any:
        # "10.0.0.1" is accepted as 10.0.0.1/32
        return [str(x) for x in v] if isinstance(v, list) else v

    @model_validator(mode="after")
    def _load_prefixes(self) -> SiteCfg:
        nets: list[IpNetwork] = list(self.indonesia_prefixes)
        if self.indonesia_prefixes_file is not None:
            nets += read_prefix_file(self.indonesia_prefixes_file)
        self._prefixes = tuple(nets)
        return self

    def pd(self, code: str) -> PdSite:
        return self.pds.get(code) or _NO_SITE

    @property
    def indonesia_networks(self) -> tuple[IpNetwork, ...]:
        return self._prefixes

    def in_pusat_data(self, addr: str) -> bool:
        return in_networks(addr, self.pusat_data_subnets)

    def in_drc(self, addr: str) -> bool:
        return in_networks(addr, self.drc_subnets)

    def is_intranet_gateway(self, addr: str) -> bool:
        return in_networks(addr, self.intranet_gateways)

    def in_public_allocation(self, addr: str) -> bool:
        return in_networks(addr, self.public_allocation)

    def in_indonesia(self, addr: str) -> bool | None:
        """True/False for a public address; None when the list is empty (not configured)."""
        if not self._prefixes:
            return None
        return in_networks(addr, self._prefixes) or self.in_public_allocation(addr)

    def is_pusat_data_target(self, name: str, address: str) -> bool:
        if any(fnmatch.fnmatchcase(name, p) for p in self.pusat_data_targets):
            return True
        host = address_host(address)
        return host is not None and self.in_pusat_data(host)


def read_prefix_file(path: Path) -> list[IpNetwork]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"indonesia_prefixes_file {path}: cannot read: {e.strerror}") from e
    out: list[IpNetwork] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            out.append(ipaddress.ip_network(line, strict=True))
        except ValueError as e:
            raise ValueError(f"indonesia_prefixes_file {path}: line {n}: {e}") from e
    return out


# --- address helpers (shared by the rules) ----------------------------------------------------

@functools.lru_cache(maxsize=65536)
def _parse_ip(value: str) -> IpAddr | None:
    try:
        return ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None


def parse_ip(value: str | None) -> IpAddr | None:
    """An IP address (``None`` for anything else); cached: the rules see the same addresses
    again and again."""
    return _parse_ip(value) if value else None


def in_networks(addr: str | IpAddr, nets: Any) -> bool:
    ip = parse_ip(addr) if isinstance(addr, str) else addr
    if ip is None:
        return False
    return any(ip.version == n.version and ip in n for n in nets)


def address_host(address: str) -> str | None:
    """The host of a probe address: ``https://10.1.2.3:8443/x`` -> ``10.1.2.3``,
    ``10.1.2.3:443`` -> ``10.1.2.3``, ``[2001:db8::1]:443`` -> ``2001:db8::1``."""
    a = address.strip()
    if "://" in a:
        try:
            return (urlsplit(a).hostname or None)
        except ValueError:
            return None
    if parse_ip(a) is not None:
        return a
    if a.startswith("["):
        return a[1:].split("]", 1)[0] or None
    return a.rsplit(":", 1)[0] if a.count(":") == 1 else a


@functools.lru_cache(maxsize=65536)
def is_public(addr: str | IpAddr) -> bool:
    """A globally routable address (not RFC 1918, CGNAT, loopback, link-local, test nets)."""
    ip = parse_ip(addr) if isinstance(addr, str) else addr
    return ip is not None and ip.is_global


# --- loading ------------------------------------------------------------------------------

def _prefixed(source: str, prefix: tuple[str | int, ...], err: ValidationError) -> str:
    lines = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ""
        for part in (*prefix, *e["loc"]):
            loc += f"[{part}]" if isinstance(part, int) else ("." if loc else "") + str(part)
        lines.append(f"{source}: {loc or '(top level)'}: {e['msg']}")
    return "\n".join(lines)


def parse_profile(data: Any, source: str) -> RegionProfile:
    """Validate a profile (already parsed YAML) including each obligation's parameters."""
    from collector.compliance.rules import get_rule

    if not isinstance(data, dict):
        raise ProfileError(f"{source}: (top level): must be a mapping of keys")
    try:
        profile = RegionProfile.model_validate(data)
    except ValidationError as e:
        raise ProfileError(format_validation_error(source, e)) from e
    params: dict[Obligation, BaseModel] = {}
    for ob, cfg in profile.obligations.items():
        rule = get_rule(ob)
        try:
            params[ob] = rule.Params.model_validate(cfg.params)
        except ValidationError as e:
            raise ProfileError(_prefixed(source, ("obligations", ob.value, "params"), e)) from e
    profile._params = params
    return profile


def load_profile(path: Path) -> RegionProfile:
    source = str(path)
    try:
        data = parse_yaml(read_text(path, source), source)
    except ProfileError:
        raise
    except ConfigError as e:
        raise ProfileError(str(e)) from e
    return parse_profile(data, source)


class ComplianceCfg(_Cfg):
    """``compliance:`` in the collector config. With no ``region_profile`` the engine is off
    (backups and server scans are still stored); everything has a default."""

    enabled: bool = True
    region_profile: Path | None = None
    site: SiteCfg = SiteCfg()
    evaluate_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 60.0
    evaluate_on_ingest: bool = True
    ingest_delay_s: Annotated[float, Field(ge=0, le=60)] = 0.5    # gather reports first
    max_waiver_days: Annotated[float, Field(gt=0, le=3660)] = 366.0

    _profile: RegionProfile | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load(self) -> ComplianceCfg:
        if self.region_profile is not None:
            try:
                self._profile = load_profile(self.region_profile)
            except ProfileError as e:
                raise ValueError(f"region profile: {e}") from e
        return self

    @property
    def profile(self) -> RegionProfile | None:
        return self._profile if self.enabled else None
