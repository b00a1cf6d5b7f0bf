"""BAK-2: availability by backup and recovery, with a DRC at a site other than the Pusat Data.

Per backup job: violation when it has no DRC copy, the copy cannot be read or holds nothing,
the copy is older than the RPO (``rpo_days``), the copy is not at a DRC site (its addresses
are not in ``site.drc_subnets``, or are in the Pusat Data itself), the copy's location is
unknown (no destination addresses reported, e.g. its name did not resolve: it cannot be shown
to be at a DRC site), or an integrity check found damage (checksum mismatch, missing or
corrupt data). The site checks need ``site.drc_subnets`` and ``check_drc_site``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import BaseModel, Field

from collector.compliance.profile import Obligation, Severity
from collector.compliance.rules.bak_1 import job_name, retired
from collector.compliance.rules.base import Context, Finding, Params, Reason, SubjectKind


class Bak2Params(Params):
    rpo_days: Annotated[float, Field(gt=0)] = 7.0
    check_drc_site: bool = True
    retired_after_hours: Annotated[float, Field(gt=0)] = 48.0


class Bak2:
    obligation: ClassVar[Obligation] = Obligation.BAK_2
    default_severity: ClassVar[Severity] = Severity.MAJOR
    Params: ClassVar[type[BaseModel]] = Bak2Params

    def evaluate(self, ctx: Context, params: BaseModel) -> Iterator[Finding]:
        assert isinstance(params, Bak2Params)
        site, agents = ctx.site, ctx.state.agents_by_pk
        for b in ctx.state.backups:
            if not ctx.applies(self.obligation, b.pd_id) \
                    or retired(b, agents.get(b.agent_pk), params.retired_after_hours):
                continue
            r: list[Reason] = []
            job, rep = b.job, b.replica
            if rep is None:
                r.append(Reason("bak2.no_replica", {"job": job}))
            else:
                dest = rep.get("destination") or "-"
                last = b.replica_last_success_at
                if last is None:
                    key = "bak2.replica_unreadable" if rep.get("error") else "bak2.replica_empty"
                    r.append(Reason(key, {"job": job, "destination": dest,
                                          "error_type": rep.get("error_type") or "-"}))
                elif ctx.now - last > params.rpo_days * 86400:
                    r.append(Reason("bak2.replica_stale", {"job": job, "destination": dest,
                                                           "last_success_at": last,
                                                           "rpo_days": params.rpo_days}))
                ips = [str(i) for i in rep.get("destination_ips") or []]
                if params.check_drc_site and site.drc_subnets:
                    if not ips:
                        r.append(Reason("bak2.replica_location_unknown", {
                            "job": job, "destination": dest,
                            "error": (rep.get("destination_error") or "-")[:200]}))
                    elif any(site.in_pusat_data(i) for i in ips) \
                            or not any(site.in_drc(i) for i in ips):
                        r.append(Reason("bak2.replica_not_drc", {
                            "job": job, "destination": dest, "addresses": ", ".join(ips)}))
            if b.integrity == "failed":
                r.append(Reason("bak2.integrity_failed", {
                    "job": job, "at": b.integrity_checked_at or b.observed_at,
                    "message": (b.integrity_message or "-")[:200]}))
            if not r:
                continue
            yield Finding(
                b.pd_id, SubjectKind.BACKUP, f"backup:{job_name(b, agents)}", tuple(r),
                {"job": job, "type": b.type, "last_success_at": b.last_success_at,
                 "replica": rep, "replica_last_success_at": b.replica_last_success_at,
                 "rpo_s": params.rpo_days * 86400, "integrity": b.integrity,
                 "integrity_checked_at": b.integrity_checked_at,
                 "integrity_message": (b.integrity_message or "")[:500] or None,
                 "observed_at": b.observed_at, "report_id": b.report_id})
