"""Small typed values shared by the alert sources, the engine and the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from collector.alerts.config import Condition, Severity, Zone


class SubjectKind(StrEnum):
    AGENT = "agent"
    TARGET = "target"
    DEVICE = "device"
    LINK = "link"
    PD = "pd"
    BACKUP = "backup"
    VIOLATION = "violation"


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Event(StrEnum):
    """Why a message is sent (the ``event`` of a notification)."""

    RAISE = "raise"
    RECOVER = "recover"
    ESCALATE = "escalate"
    DIGEST = "digest"


@dataclass(frozen=True)
class Subject:
    """What a maintenance window may match: the PD and the names of agent/device/target."""

    pd_code: str | None
    agent: str | None = None
    device: str | None = None
    target: str | None = None

    def as_details(self) -> dict[str, str]:
        return {k: v for k, v in (("agent", self.agent), ("device", self.device),
                                  ("target", self.target)) if v}

    @classmethod
    def from_details(cls, pd_code: str | None, details: dict[str, Any]) -> Subject:
        return cls(pd_code, details.get("agent"), details.get("device"), details.get("target"))


@dataclass(frozen=True)
class Finding:
    """One subject in a bad (or flapping) state right now, as a source sees it.

    ``since`` is when the fault began on the collector's clock; ``None`` when the source cannot
    tell (no history kept): the engine then starts the hold-down when it first sees the fault.
    A finding with ``active=False`` is a subject that is fine now but flapping.
    """

    condition: Condition
    subject_kind: SubjectKind
    subject_ref: str                 # stable identity within the kind (a row id)
    subject: str                     # what people call it
    pd_id: int | None
    subject_names: Subject
    zone: Zone
    since: float | None
    active: bool = True
    flap_count: int = 0
    flapping: bool = False
    severity: Severity | None = None            # None: the condition's configured severity
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Deduplication key: one alert per subject and condition until it clears."""
        return f"{self.condition.value}:{self.subject_kind.value}:{self.subject_ref}"


@dataclass(frozen=True)
class AlertInfo:
    """An alert as messages and webhook payloads describe it."""

    id: int
    condition: Condition
    subject_kind: SubjectKind
    subject: str
    pd_code: str | None
    pd_name: str | None
    zone: Zone
    tier: int
    severity: Severity
    status: Status
    since: float
    raised_at: float
    flapping: bool = False
    flap_count: int = 0
    details: dict[str, Any] = field(default_factory=dict)
    escalated_at: float | None = None
    resolved_at: float | None = None

    @classmethod
    def from_row(cls, r: Any, pd_code: str | None, pd_name: str | None) -> AlertInfo:
        return cls(id=r.id, condition=Condition(r.condition),
                   subject_kind=SubjectKind(r.subject_kind), subject=r.subject,
                   pd_code=pd_code, pd_name=pd_name, zone=Zone(r.zone), tier=r.tier,
                   severity=Severity(r.severity), status=Status(r.status), since=r.since,
                   raised_at=r.raised_at, flapping=bool(r.flapping), flap_count=r.flap_count,
                   details=dict(r.details or {}), escalated_at=r.escalated_at,
                   resolved_at=r.resolved_at)

    def payload(self) -> dict[str, Any]:
        """The JSON form sent to webhooks (no secrets, only what the alert shows)."""
        return {"id": self.id, "condition": self.condition.value,
                "subject_kind": self.subject_kind.value, "subject": self.subject,
                "pd": self.pd_code, "pd_name": self.pd_name, "zone": self.zone.value,
                "tier": self.tier, "severity": self.severity.value, "status": self.status.value,
                "since": self.since, "raised_at": self.raised_at, "flapping": self.flapping,
                "flap_count": self.flap_count, "escalated_at": self.escalated_at,
                "resolved_at": self.resolved_at, "details": self.details}
