"""The one interface every obligation rule implements, and the values rules return.

A rule reads the :class:`~collector.compliance.state.State` (never in-process memory, so
every collector agrees) and returns a :class:`Finding` for every subject that violates its
obligation *now*. The engine does the rest: citation, severity (warning before the region's
enforcement start), dedup by (PD, obligation, subject), lifecycle and history. A subject the
rule no longer reports is resolved, so a rule must report every violating subject it can see
in the PDs it was asked about, every time.

Example finding (BAK-1)::

    Finding(pd_id=3, subject_kind=SubjectKind.BACKUP, subject="backup:dinkes-gw/simpeg-db",
            reasons=(Reason("bak1.overdue", {"job": "simpeg-db", "age_h": 61.2,
                                             "limit_h": 36.0}),),
            evidence={"job": "simpeg-db", "last_success_at": 1764032404.0,
                      "report_id": "0192f0c4-..."})
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from collector.compliance.profile import Obligation, RegionProfile, Severity, SiteCfg
from collector.compliance.state import State


class SubjectKind(StrEnum):
    PD = "pd"
    AGENT = "agent"
    DEVICE = "device"
    PORT = "port"
    HOST = "host"
    SERVER = "server"
    BACKUP = "backup"
    WEBSITE = "website"
    SERVICE = "service"
    CHANGE = "change"
    NEIGHBOR = "neighbor"
    REGISTERED = "registered"


@dataclass(frozen=True)
class Reason:
    """Why the subject violates the obligation: a message key of ``messages.py`` and the
    values it names (both languages are rendered from these)."""

    key: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "params": dict(self.params)}


@dataclass(frozen=True)
class Finding:
    pd_id: int
    subject_kind: SubjectKind
    subject: str                      # unique within (PD, obligation), e.g. "device:sw1"
    reasons: tuple[Reason, ...]
    evidence: dict[str, Any]          # observed values, their times, report IDs


class Params(BaseModel):
    """Base of every rule's parameters (strict: an unknown key is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Context:
    now: float
    profile: RegionProfile
    site: SiteCfg
    state: State
    # kept by the engine across passes: what a rule may reuse while the data is unchanged
    cache: dict[str, Any] = field(default_factory=dict)
    _applies: dict[tuple[Obligation, int], bool] = field(default_factory=dict)

    def pd_code(self, pd_id: int) -> str:
        pd = self.state.pds.get(pd_id)
        return pd.code if pd else f"#{pd_id}"

    def applies(self, obligation: Obligation, pd_id: int) -> bool:
        """False for a PD the site model exempts from the obligation, or outside the scope."""
        key = (obligation, pd_id)
        hit = self._applies.get(key)
        if hit is None:
            pd = self.state.pds.get(pd_id)
            hit = pd is not None and obligation not in self.site.pd(pd.code).exempt
            self._applies[key] = hit
        return hit


class Rule(Protocol):
    """One obligation, one rule, one module (``rules/<id>.py``)."""

    obligation: ClassVar[Obligation]
    default_severity: ClassVar[Severity]
    Params: ClassVar[type[BaseModel]]

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterable[Finding]:
        """Every subject of the PDs in ``ctx.state`` that violates the obligation now."""
        ...
