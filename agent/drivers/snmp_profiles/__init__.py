"""SNMP device profiles: vendor differences as data.

Each ``*.yaml`` file in this folder is one profile, matched on the device's sysObjectID by
prefix (the longest prefix over all profiles wins; ``generic`` when none matches). A profile
may ``extends:`` others; the child's keys win, ``facts`` merge per fact, ``sys_object_ids``
are never inherited. Loading validates every file with pydantic; a broken profile is a
:class:`ProfileError` naming the file, the key and what is wrong.

Example (``mikrotik.yaml``)::

    name: mikrotik
    extends: [generic]
    vendor: MikroTik
    sys_object_ids: ["1.3.6.1.4.1.14988"]
    role: router
    role_rules:
      - {role: switch, descr: "^RouterOS (CRS|CSS)"}
    facts:
      serial: [{oid: "1.3.6.1.4.1.14988.1.1.7.3.0"}, {entity: serial}]
      model: [{descr: "^RouterOS (\\\\S+)"}]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.configfile import format_validation_error

PROFILE_DIR = Path(__file__).resolve().parent
FALLBACK = "generic"

OidText = Annotated[str, Field(pattern=r"^\d+(\.\d+)+$", max_length=255)]
Role = Literal["router", "switch", "firewall", "ap", "host", "wlc", "server"]
FactName = Literal["model", "serial", "os_version", "vendor"]
EntityField = Literal["model_name", "serial", "software_rev", "firmware_rev", "hardware_rev",
                      "mfg_name", "descr", "name"]
Table = Literal["interfaces", "addresses", "arp", "routes", "lldp", "entity", "fdb"]


class ProfileError(Exception):
    """A profile file that cannot be used; the message names the file and the problem."""


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(v: str | None) -> str | None:
    if v is not None:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"bad regular expression {v!r}: {e}") from None
    return v


class FactSource(_M):
    """Where one fact comes from; exactly one of ``entity`` (the chassis row of
    ENTITY-MIB entPhysicalTable), ``oid`` (a scalar, GET) or ``descr`` (a regex on
    sysDescr, group 1). ``regex`` optionally narrows an ``entity``/``oid`` value (group 1)."""

    entity: EntityField | None = None
    oid: OidText | None = None
    descr: str | None = None
    regex: str | None = None

    _re = field_validator("descr", "regex")(_compile)

    @model_validator(mode="after")
    def _one(self) -> FactSource:
        given = [k for k in ("entity", "oid", "descr") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of entity, oid, descr")
        if self.regex is not None and self.descr is not None:
            raise ValueError("regex applies to entity/oid sources; descr is a regex already")
        return self


class RoleRule(_M):
    """First matching rule gives the role; every condition given must hold."""

    role: Role
    descr: str | None = None            # regex searched in sysDescr
    sys_object_id: OidText | None = None  # prefix
    ip_forwarding: bool | None = None   # IP-MIB ipForwarding.0 == forwarding(1)
    bridge: bool | None = None          # BRIDGE-MIB answers (an FDB or bridge ports)

    _re = field_validator("descr")(_compile)

    @model_validator(mode="after")
    def _some(self) -> RoleRule:
        if all(getattr(self, k) is None
               for k in ("descr", "sys_object_id", "ip_forwarding", "bridge")):
            raise ValueError("a role rule needs at least one condition")
        return self


class _ProfileFields(_M):
    vendor: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    role: Role | None = None
    role_rules: Annotated[list[RoleRule], Field(max_length=100)] | None = None
    facts: dict[FactName, Annotated[list[FactSource], Field(min_length=1, max_length=10)]] | None \
        = None
    skip: list[Table] | None = None
    interface_name: Literal["ifName", "ifDescr"] | None = None
    max_repetitions: Annotated[int, Field(ge=1, le=200)] | None = None
    fdb_vlan_context: Literal["none", "cisco_community"] | None = None


class ProfileFile(_ProfileFields):
    """One YAML file as written."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)]
    extends: list[str] | str | None = None
    sys_object_ids: Annotated[list[OidText], Field(max_length=500)] = []
    description: str | None = None


class Profile(_M):
    """A resolved profile (inheritance applied)."""

    name: str
    chain: tuple[str, ...]              # this profile and what it extends, nearest first
    sys_object_ids: tuple[str, ...] = ()
    vendor: str | None = None
    role: Role | None = None
    role_rules: tuple[RoleRule, ...] = ()
    facts: Mapping[str, tuple[FactSource, ...]] = {}
    skip: frozenset[str] = frozenset()
    interface_name: Literal["ifName", "ifDescr"] = "ifName"
    max_repetitions: int | None = None
    fdb_vlan_context: Literal["none", "cisco_community"] = "none"

    def fact_oids(self) -> list[str]:
        return sorted({s.oid for srcs in self.facts.values() for s in srcs if s.oid})


class ProfileSet:
    """All profiles, ready for :meth:`match`."""

    def __init__(self, profiles: Mapping[str, Profile]) -> None:
        if FALLBACK not in profiles:
            raise ProfileError(f"no {FALLBACK!r} profile (the fallback) among: "
                               f"{', '.join(sorted(profiles))}")
        self.profiles = dict(profiles)
        self._prefixes: list[tuple[tuple[int, ...], Profile]] = []
        owner: dict[str, str] = {}
        for p in profiles.values():
            for text in p.sys_object_ids:
                if text in owner:
                    raise ProfileError(f"sysObjectID prefix {text} is claimed by both "
                                       f"{owner[text]!r} and {p.name!r}")
                owner[text] = p.name
                self._prefixes.append((tuple(int(x) for x in text.split(".")), p))
        self._prefixes.sort(key=lambda t: len(t[0]), reverse=True)

    def match(self, sys_object_id: tuple[int, ...] | None) -> Profile:
        """The profile with the longest sysObjectID prefix of ``sys_object_id``."""
        if sys_object_id:
            for prefix, prof in self._prefixes:
                if sys_object_id[:len(prefix)] == prefix:
                    return prof
        return self.profiles[FALLBACK]

    def __getitem__(self, name: str) -> Profile:
        return self.profiles[name]


def _read(path: Path) -> ProfileFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(f"{path}: cannot read: {e}") from e
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a profile must be a mapping, got {type(raw).__name__}")
    try:
        pf = ProfileFile.model_validate(raw)
    except ValidationError as e:
        raise ProfileError(format_validation_error(str(path), e)) from e
    if pf.name != path.stem:
        raise ProfileError(f"{path}: name {pf.name!r} must equal the file name {path.stem!r}")
    return pf


_MERGED = ("vendor", "role", "role_rules", "skip", "interface_name", "max_repetitions",
           "fdb_vlan_context")


def _resolve(name: str, files: Mapping[str, ProfileFile], stack: tuple[str, ...],
             where: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    if name in stack:
        raise ProfileError(f"{where}: extends cycle: {' -> '.join((*stack, name))}")
    if name not in files:
        raise ProfileError(f"{where}: extends unknown profile {name!r}; known: "
                           f"{', '.join(sorted(files))}")
    pf = files[name]
    parents = [pf.extends] if isinstance(pf.extends, str) else list(pf.extends or [])
    merged: dict[str, Any] = {"facts": {}}
    chain: tuple[str, ...] = (name,)
    for parent in parents:  # later parents override earlier ones
        pdata, pchain = _resolve(parent, files, (*stack, name), where)
        facts = {**merged["facts"], **pdata.pop("facts")}
        merged.update(pdata)
        merged["facts"] = facts
        chain += tuple(c for c in pchain if c not in chain)
    for key in _MERGED:
        value = getattr(pf, key)
        if value is not None:
            merged[key] = value
    merged["facts"] = {**merged["facts"], **(pf.facts or {})}
    return merged, chain


def load_profiles(dirs: Iterable[Path] = (PROFILE_DIR,)) -> ProfileSet:
    """Load and validate every ``*.yaml`` in ``dirs`` (later dirs may not redefine names)."""
    files: dict[str, ProfileFile] = {}
    paths: dict[str, Path] = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.yaml")):
            pf = _read(path)
            if pf.name in files:
                raise ProfileError(f"{path}: profile {pf.name!r} is already defined in "
                                   f"{paths[pf.name]}")
            files[pf.name], paths[pf.name] = pf, path
    out: dict[str, Profile] = {}
    for name, pf in files.items():
        data, chain = _resolve(name, files, (), paths[name])
        try:
            out[name] = Profile(
                name=name, chain=chain, sys_object_ids=tuple(pf.sys_object_ids),
                vendor=data.get("vendor"), role=data.get("role"),
                role_rules=tuple(data.get("role_rules") or ()),
                facts={k: tuple(v) for k, v in data["facts"].items()},
                skip=frozenset(data.get("skip") or ()),
                interface_name=data.get("interface_name") or "ifName",
                max_repetitions=data.get("max_repetitions"),
                fdb_vlan_context=data.get("fdb_vlan_context") or "none")
        except ValidationError as e:
            raise ProfileError(format_validation_error(str(paths[name]), e)) from e
    return ProfileSet(out)


@lru_cache(maxsize=1)
def default_profiles() -> ProfileSet:
    """The profiles shipped with the agent (loaded once)."""
    return load_profiles()
