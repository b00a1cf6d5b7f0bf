"""LAN-1: the PD's LAN infrastructure must be inspectable by Dinas.

Violation when a registered LAN device (one an agent is configured to poll) has not been
pollable (timeout, authentication failure, refused, garbage) for more than
``unpollable_after_hours``. Devices no agent polled for a week are no longer configured and
are not judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Lan1Params(Params):
    unpollable_after_hours: Annotated[float, Field(gt=0)] = 24.0


class Lan1:
    obligation: ClassVar[Obligation] = Obligation.LAN_1
    default_severity: ClassVar[Severity] = Severity.MINOR
    Params: ClassVar[type[BaseModel]] = Lan1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Lan1Params)
        limit = params.unpollable_after_hours * 3600
        for d in ctx.state.devices:
            if d.last_status != "failed" or not ctx.applies(self.obligation, d.pd_id):
                continue
            since = d.last_seen if d.last_seen is not None else d.first_seen
            if ctx.now - since <= limit:
                continue
            yield Finding(
                d.pd_id, SubjectKind.DEVICE, f"device:{d.name}",
                (Reason("lan1.unpollable", {"device": d.name, "address": d.mgmt_address,
                                            "error_type": d.last_error_type or "unknown",
                                            "since": since}),),
                {"device": d.name, "mgmt_address": d.mgmt_address, "last_status": d.last_status,
                 "error_type": d.last_error_type, "error": (d.last_error or "")[:500],
                 "last_answered_at": d.last_seen, "first_seen": d.first_seen,
                 "last_poll_at": d.last_poll_at, "report_id": d.last_report_id})
