"""LAN-3: the PD must report every change of its LAN.

A change is a difference between the discovered topology and the approved baseline
(``topology_changes``); reporting it is acknowledging it
(``POST /api/v1/changes/{id}/ack``). Violation when an open change has not been
acknowledged within ``ack_within_days`` of being detected.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Lan3Params(Params):
    ack_within_days: Annotated[float, Field(gt=0)] = 7.0


class Lan3:
    obligation: ClassVar[Obligation] = Obligation.LAN_3
    default_severity: ClassVar[Severity] = Severity.MINOR
    Params: ClassVar[type[BaseModel]] = Lan3Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Lan3Params)
        limit = params.ack_within_days * 86400
        for ch in ctx.state.open_changes:
            if not ctx.applies(self.obligation, ch.pd_id) or ctx.now - ch.first_seen <= limit:
                continue
            en = (ch.detail or {}).get("summary_en")
            yield Finding(
                ch.pd_id, SubjectKind.CHANGE, f"change:{ch.id}",
                (Reason("lan3.unreported", {"summary": ch.summary, "summary_en": en or
                                            ch.summary, "since": ch.first_seen,
                                            "days": params.ack_within_days}),),
                {"change_id": ch.id, "change_type": ch.change_type, "summary": ch.summary,
                 "summary_en": en, "detected_at": ch.first_seen, "report_id": ch.report_id})
