"""Active violations of the compliance engine (``violations``): one alert per occurrence.

A violation that is open or acknowledged is a finding; its resolution (the evidence cleared)
or a waiver resolves the alert, and a waiver that expires (the violation is open again) raises
a new one. A violation is the PD's to remedy: it goes to the PD's Tier 1 (zone ``lan``) and is
escalated to Tier 2 when not acknowledged, like any Tier 1 alert. The message carries the
obligation ID, the region's article citation (stored on the violation when it was opened) and
the violation's own texts in Bahasa Indonesia and English. The alert's severity follows the
violation's (``warning`` before enforcement -> ``info``) unless
``alerts.conditions.violation.severity`` sets one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.config import Condition, Severity, Zone
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context, register
from collector.compliance import messages as texts
from collector.db_compliance import violations

SEVERITY = {"warning": Severity.INFO, "minor": Severity.MINOR, "major": Severity.MAJOR,
            "critical": Severity.CRITICAL}
ALERTED = ("open", "acknowledged")


@register
class Violation:
    name = "violation"
    conditions = (Condition.VIOLATION,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        cfg = ctx.cfg.conditions.violation
        v = violations.c
        where = [v.status.in_(ALERTED)]
        if cfg.exclude_obligations:
            where.append(v.obligation.not_in(cfg.exclude_obligations))
        tz = ctx.cfg.zone_info()
        out = []
        for r in conn.execute(
                select(v.id, v.pd_id, v.obligation, v.subject, v.status, v.severity,
                       v.article, v.regulation, v.region, v.messages, v.first_seen)
                .where(*where).order_by(v.id)).all():
            pd_code = ctx.pd_codes.get(r.pd_id)
            msgs = r.messages if isinstance(r.messages, list) else []
            summary = {lang: texts.render_all(msgs, lang, tz)[:1000]
                       or texts.title(r.obligation, lang) for lang in ("id", "en")}
            out.append(Finding(
                condition=Condition.VIOLATION, subject_kind=SubjectKind.VIOLATION,
                subject_ref=str(r.id), subject=f"{r.obligation}:{r.subject}", pd_id=r.pd_id,
                subject_names=Subject(pd_code), zone=Zone.LAN, since=float(r.first_seen),
                severity=None if cfg.severity else SEVERITY.get(r.severity),
                details={"violation_id": r.id, "obligation": r.obligation,
                         "violation_subject": r.subject,
                         "citation": f"{r.article} {r.regulation}", "region": r.region,
                         "violation_status": r.status, "summary": summary["id"],
                         "summary_id": summary["id"], "summary_en": summary["en"],
                         "title_id": texts.title(r.obligation, "id"),
                         "title_en": texts.title(r.obligation, "en")}))
        return out
