"""BAK-1: every PD must back up its data periodically to a server in the Pusat Data.

Per backup job an agent reports: violation when it never ran, its last run failed, it is
overdue (newest good backup older than the job's interval x ``overdue_factor``; the interval
is the job's ``expected_interval_s``, else ``default_interval_hours``), its destination is not
in a Pusat Data subnet (or could not be resolved), or its size dropped by more than
``size_drop_pct`` against the previous backup. A job the agent stopped reporting while the
agent goes on reporting (removed from its config) is not judged after
``retired_after_hours``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind
from collector.compliance.state import Agent, BackupJob


class Bak1Params(Params):
    default_interval_hours: Annotated[float, Field(gt=0)] = 24.0
    overdue_factor: Annotated[float, Field(ge=1)] = 1.5
    size_drop_pct: Annotated[float, Field(gt=0, le=100)] = 50.0
    check_destination: bool = True
    retired_after_hours: Annotated[float, Field(gt=0)] = 48.0


def retired(b: BackupJob, agent: Agent | None, after_h: float) -> bool:
    return (agent is not None and agent.last_seen_at is not None
            and b.observed_at < agent.last_seen_at - after_h * 3600)


def job_name(b: BackupJob, agents: dict[int, Agent]) -> str:
    a = agents.get(b.agent_pk)
    return f"{a.agent_id if a else b.agent_pk}/{b.job}"


class Bak1:
    obligation: ClassVar[Obligation] = Obligation.BAK_1
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Bak1Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Bak1Params)
        site, agents = ctx.site, ctx.state.agents_by_pk
        for b in ctx.state.backups:
            if not ctx.applies(self.obligation, b.pd_id) \
                    or retired(b, agents.get(b.agent_pk), params.retired_after_hours):
                continue
            r: list[Reason] = []
            job = b.job
            if b.status == "never_run" or (b.last_success_at is None and b.status != "failed"):
                r.append(Reason("bak1.never_run", {"job": job}))
            if b.status == "failed":
                r.append(Reason("bak1.failed", {"job": job, "error_type": b.error_type or "-",
                                                "at": b.last_failure_at or b.observed_at}))
            interval = b.expected_interval_s or params.default_interval_hours * 3600
            limit = interval * params.overdue_factor
            if b.last_success_at is not None and ctx.now - b.last_success_at > limit:
                r.append(Reason("bak1.overdue", {"job": job, "last_success_at":
                                                 b.last_success_at,
                                                 "limit_h": round(limit / 3600, 1)}))
            if params.check_destination and site.pusat_data_subnets:
                if not b.destination_ips:
                    r.append(Reason("bak1.destination_unknown", {
                        "job": job, "destination": b.destination or "-"}))
                elif not any(site.in_pusat_data(ip) for ip in b.destination_ips):
                    r.append(Reason("bak1.destination_outside", {
                        "job": job, "destination": b.destination or "-",
                        "addresses": ", ".join(b.destination_ips)}))
            if b.size_bytes is not None and b.prev_size_bytes \
                    and b.size_bytes < b.prev_size_bytes * (1 - params.size_drop_pct / 100):
                r.append(Reason("bak1.size_drop", {
                    "job": job, "size": b.size_bytes, "previous": b.prev_size_bytes,
                    "drop_pct": round(100 * (1 - b.size_bytes / b.prev_size_bytes), 1)}))
            if not r:
                continue
            yield Finding(
                b.pd_id, SubjectKind.BACKUP, f"backup:{job_name(b, agents)}", tuple(r),
                {"job": job, "type": b.type, "status": b.status, "error_type": b.error_type,
                 "last_failure_reason": (b.last_failure_reason or "")[:500] or None,
                 "last_success_at": b.last_success_at, "last_failure_at": b.last_failure_at,
                 "expected_interval_s": interval, "size_bytes": b.size_bytes,
                 "previous_size_bytes": b.prev_size_bytes,
                 "previous_success_at": b.prev_success_at, "destination": b.destination,
                 "destination_ips": b.destination_ips, "observed_at": b.observed_at,
                 "report_id": b.report_id})
