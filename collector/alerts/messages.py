"""Alert texts in Bahasa Indonesia (default) and English.

Every message names the PD, the subject, since when, the severity and who is responsible; a
violation carries its obligation ID and the article of the region's regulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from collector.alerts.config import Condition, Severity, Zone
from collector.alerts.model import AlertInfo, Event, SubjectKind

Lang = Literal["id", "en"]

SEVERITY: dict[str, dict[Severity, str]] = {
    "id": {Severity.INFO: "INFO", Severity.MINOR: "MINOR", Severity.MAJOR: "MAYOR",
           Severity.CRITICAL: "KRITIS"},
    "en": {Severity.INFO: "INFO", Severity.MINOR: "MINOR", Severity.MAJOR: "MAJOR",
           Severity.CRITICAL: "CRITICAL"},
}

KIND: dict[str, dict[SubjectKind, str]] = {
    "id": {SubjectKind.AGENT: "Agen", SubjectKind.TARGET: "Target", SubjectKind.DEVICE:
           "Perangkat", SubjectKind.LINK: "Link", SubjectKind.PD: "Perangkat Daerah",
           SubjectKind.BACKUP: "Backup", SubjectKind.VIOLATION: "Pelanggaran"},
    "en": {SubjectKind.AGENT: "Agent", SubjectKind.TARGET: "Target", SubjectKind.DEVICE:
           "Device", SubjectKind.LINK: "Link", SubjectKind.PD: "Government office (PD)",
           SubjectKind.BACKUP: "Backup", SubjectKind.VIOLATION: "Violation"},
}

CONDITION: dict[str, dict[Condition, str]] = {
    "id": {
        Condition.AGENT_SILENT: "Agen {subject} tidak mengirim laporan",
        Condition.PROBE_DOWN: "Target {subject} ({address}) tidak dapat dijangkau",
        Condition.DEVICE_POLL_FAILED: "Perangkat {subject} ({address}) tidak dapat dipantau",
        Condition.LINK_DOWN: "Link {subject} terputus",
        Condition.TOPOLOGY_CHANGE: "{changes} perubahan topologi LAN belum dikonfirmasi",
        Condition.BACKUP_FAILED: "Backup {subject} gagal",
        Condition.BACKUP_OVERDUE: "Backup {subject} terlambat",
        Condition.DRC_STALE: "Salinan DRC dari backup {subject} sudah kedaluwarsa",
        Condition.VIOLATION: "Pelanggaran {obligation}: {summary}",
    },
    "en": {
        Condition.AGENT_SILENT: "Agent {subject} has stopped reporting",
        Condition.PROBE_DOWN: "Target {subject} ({address}) is unreachable",
        Condition.DEVICE_POLL_FAILED: "Device {subject} ({address}) cannot be polled",
        Condition.LINK_DOWN: "Link {subject} is down",
        Condition.TOPOLOGY_CHANGE: "{changes} LAN topology change(s) not yet acknowledged",
        Condition.BACKUP_FAILED: "Backup {subject} failed",
        Condition.BACKUP_OVERDUE: "Backup {subject} is overdue",
        Condition.DRC_STALE: "The DRC copy of backup {subject} is stale",
        Condition.VIOLATION: "Violation {obligation}: {summary}",
    },
}

FLAPPING = {"id": "Target {subject} ({address}) tidak stabil (flapping)",
            "en": "Target {subject} ({address}) is flapping"}

# variants of a condition's text, chosen by a flag in the alert's details
VARIANT: dict[str, dict[tuple[Condition, str], str]] = {
    "id": {
        (Condition.BACKUP_FAILED, "integrity_only"):
            "Pemeriksaan integritas backup {subject} menemukan kerusakan",
        (Condition.BACKUP_OVERDUE, "never_run"): "Backup {subject} belum pernah berhasil",
        (Condition.DRC_STALE, "missing"): "Backup {subject} tidak memiliki salinan di DRC",
        (Condition.DRC_STALE, "empty"):
            "Salinan DRC dari backup {subject} kosong atau tidak dapat dibaca",
    },
    "en": {
        (Condition.BACKUP_FAILED, "integrity_only"):
            "The integrity check of backup {subject} found damage",
        (Condition.BACKUP_OVERDUE, "never_run"): "Backup {subject} has never succeeded",
        (Condition.DRC_STALE, "missing"): "Backup {subject} has no copy at the DRC",
        (Condition.DRC_STALE, "empty"):
            "The DRC copy of backup {subject} is empty or unreadable",
    },
}

TAG = {"id": {Event.RAISE: "", Event.RECOVER: "PULIH", Event.ESCALATE: "ESKALASI"},
       "en": {Event.RAISE: "", Event.RECOVER: "RECOVERED", Event.ESCALATE: "ESCALATED"}}

HEADING = {"id": {Event.RAISE: "Peringatan SPBE Monitor", Event.RECOVER: "Pemulihan SPBE Monitor",
                  Event.ESCALATE: "Eskalasi ke Tier 2 (SPBE Monitor)"},
           "en": {Event.RAISE: "SPBE Monitor alert", Event.RECOVER: "SPBE Monitor recovery",
                  Event.ESCALATE: "Escalation to Tier 2 (SPBE Monitor)"}}

OWNER_VIOLATION = {"id": "Perangkat Daerah: Service Desk Tier 1 PD (tindak lanjut pelanggaran)",
                   "en": "the PD: PD Service Desk Tier 1 (remedy of the violation)"}

OWNER = {
    "id": {Zone.LAN: "LAN Perangkat Daerah: Service Desk Tier 1 PD",
           Zone.WAN: "WAN/Jaringan Intra: Tim Tier 2 Diskominfo",
           Zone.DC: "Pusat Data: Tim Tier 2 Diskominfo"},
    "en": {Zone.LAN: "the PD's LAN: PD Service Desk Tier 1",
           Zone.WAN: "WAN/intranet: Dinas (Diskominfo) Tier 2 team",
           Zone.DC: "Pusat Data (data centre): Dinas (Diskominfo) Tier 2 team"},
}

LABELS = {
    "id": {"pd": "Perangkat Daerah", "subject": "Subjek", "condition": "Kondisi",
           "since": "Sejak", "severity": "Tingkat", "owner": "Tanggung jawab",
           "detail": "Rincian", "basis": "Dasar hukum", "recovered": "Pulih pada",
           "duration": "Lama gangguan", "id": "ID peringatan", "dashboard": "Dasbor"},
    "en": {"pd": "Government office (PD)", "subject": "Subject", "condition": "Condition",
           "since": "Since", "severity": "Severity", "owner": "Responsibility",
           "detail": "Details", "basis": "Legal basis", "recovered": "Recovered at",
           "duration": "Outage duration", "id": "Alert ID", "dashboard": "Dashboard"},
}

TEXTS = {
    "id": {
        "flapping": "Tidak stabil: {n} kali terputus dalam {window} terakhir; satu peringatan "
                    "saja yang dikirim sampai kondisi stabil.",
        "lan_fine": "Pusat Data/WAN tidak terjangkau dari PD ini sementara LAN PD normal: "
                    "gangguan WAN, ditangani Tier 2 Diskominfo.",
        "lan_also_down": "Target di LAN PD ini juga terputus: kemungkinan gangguan LAN PD, "
                         "ditangani Tier 1 PD.",
        "no_tier1_contact": "PD ini belum memiliki kontak Tier 1: dikirim langsung ke Tier 2.",
        "ack": "Mohon tanggapi (acknowledge) dalam {n}; jika tidak, peringatan ini "
               "dieskalasi ke Tier 2 Diskominfo.",
        "escalated": "Belum ditanggapi oleh Tier 1 selama {n}; dieskalasi ke Tier 2 (ALERT-1).",
        "changes": "Perubahan",
        "obligation": "Kewajiban",
        "last_success": "Backup terakhir berhasil",
        "never": "belum pernah",
        "limit": "Batas keterlambatan",
        "replica_last": "Salinan DRC terakhir",
        "replica_destination": "Tujuan salinan DRC",
        "rpo": "RPO",
        "run_failed": "Proses backup terakhir gagal",
        "integrity_failed": "Pemeriksaan integritas menemukan kerusakan",
    },
    "en": {
        "flapping": "Unstable: down {n} times within the last {window}; one alert only until "
                    "it is stable.",
        "lan_fine": "The Pusat Data/WAN is unreachable from this PD while the PD's LAN is fine: "
                    "a WAN fault, handled by the Dinas Tier 2 team.",
        "lan_also_down": "Targets on this PD's LAN are down too: most likely a PD LAN fault, "
                         "handled by PD Tier 1.",
        "no_tier1_contact": "This PD has no Tier 1 contact: sent to Tier 2 directly.",
        "ack": "Please acknowledge within {n}; otherwise this alert is escalated to the Dinas "
               "Tier 2 team.",
        "escalated": "Not acknowledged by Tier 1 for {n}; escalated to Tier 2 (ALERT-1).",
        "changes": "Changes",
        "obligation": "Obligation",
        "last_success": "Last good backup",
        "never": "never",
        "limit": "Overdue after",
        "replica_last": "Newest DRC copy",
        "replica_destination": "DRC copy destination",
        "rpo": "RPO",
        "run_failed": "The last backup run failed",
        "integrity_failed": "The integrity check found damage",
    },
}

DIGEST = {
    "id": {"title": "Ringkasan harian peringatan SPBE Monitor {scope} {day}",
           "period": "Periode: {start} s.d. {end}",
           "counts": "Peringatan baru: {raised} | masih terbuka: {open} | pulih: {resolved}",
           "ttn": "Rata-rata waktu sampai notifikasi: {s}",
           "none": "Tidak ada peringatan dalam periode ini.",
           "open": "terbuka", "acknowledged": "ditanggapi", "resolved": "pulih",
           "more": "... dan {n} lainnya"},
    "en": {"title": "SPBE Monitor daily alert digest {scope} {day}",
           "period": "Period: {start} to {end}",
           "counts": "New alerts: {raised} | still open: {open} | recovered: {resolved}",
           "ttn": "Mean time to notify: {s}",
           "none": "No alerts in this period.",
           "open": "open", "acknowledged": "acknowledged", "resolved": "recovered",
           "more": "... and {n} more"},
}


def fmt_time(ts: float, tz: ZoneInfo, lang: str) -> str:
    t = datetime.fromtimestamp(ts, tz)
    return t.strftime("%d-%m-%Y %H:%M:%S %Z" if lang == "id" else "%Y-%m-%d %H:%M:%S %Z")


def fmt_duration(seconds: float, lang: str) -> str:
    s = max(0, round(seconds))
    units = (("hari", "d", 86400), ("jam", "h", 3600), ("menit", "min", 60), ("detik", "s", 1))
    parts: list[str] = []
    for id_name, en_name, size in units:
        if s >= size or (size == 1 and not parts):
            n, s = divmod(s, size)
            parts.append(f"{n} {id_name if lang == 'id' else en_name}")
        if len(parts) == 2:
            break
    return " ".join(parts)


class _Defaults(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def _variant(a: AlertInfo) -> str | None:
    d = a.details
    if a.condition is Condition.BACKUP_FAILED and d.get("integrity_failed") \
            and not d.get("run_failed"):
        return "integrity_only"
    if a.condition is Condition.BACKUP_OVERDUE and d.get("never_run"):
        return "never_run"
    if a.condition is Condition.DRC_STALE and d.get("replica") in ("missing", "empty"):
        return str(d["replica"])
    return None


def condition_text(a: AlertInfo, lang: str) -> str:
    values = _Defaults(a.details)
    values["subject"] = a.subject
    if a.condition is Condition.PROBE_DOWN and a.flapping:
        return FLAPPING[lang].format_map(values)
    if a.condition is Condition.VIOLATION and a.details.get(f"summary_{lang}"):
        values["summary"] = a.details[f"summary_{lang}"]
    variant = _variant(a)
    if variant is not None:
        return VARIANT[lang][(a.condition, variant)].format_map(values)
    return CONDITION[lang][a.condition].format_map(values)


def _backup_lines(a: AlertInfo, lang: str, tz: ZoneInfo) -> list[str]:
    """What a backup alert adds: the last good backup, the limit, the DRC copy."""
    d, tx = a.details, TEXTS[lang]
    lines = []
    if a.condition is Condition.BACKUP_FAILED and d.get("run_failed") \
            and d.get("integrity_failed"):
        lines += [tx["run_failed"], tx["integrity_failed"]]
    if a.condition in (Condition.BACKUP_FAILED, Condition.BACKUP_OVERDUE):
        last = d.get("last_success_at")
        when = fmt_time(float(last), tz, lang) if isinstance(last, int | float) \
            else tx["never"]
        lines.append(f"{tx['last_success']}: {when}")
    if a.condition is Condition.BACKUP_OVERDUE and isinstance(d.get("limit_s"), int | float):
        lines.append(f"{tx['limit']}: {fmt_duration(float(d['limit_s']), lang)}")
    if a.condition is Condition.DRC_STALE:
        if d.get("replica_destination"):
            lines.append(f"{tx['replica_destination']}: {d['replica_destination']}")
        last = d.get("replica_last_success_at")
        when = fmt_time(float(last), tz, lang) if isinstance(last, int | float) \
            else tx["never"]
        lines.append(f"{tx['replica_last']}: {when}")
        if isinstance(d.get("rpo_s"), int | float):
            lines.append(f"{tx['rpo']}: {fmt_duration(float(d['rpo_s']), lang)}")
    return lines


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str


def render(event: Event, a: AlertInfo, lang: str, tz: ZoneInfo, *, now: float,
           escalate_after_s: float, flap_window_s: float,
           dashboard_url: str | None = None) -> Rendered:
    """Title and plain-text body of one message about one alert."""
    lang = lang if lang in LABELS else "id"
    lb, tx = LABELS[lang], TEXTS[lang]
    sev = SEVERITY[lang][a.severity]
    cond = condition_text(a, lang)
    tag = TAG[lang][event]
    pd = a.pd_code or "-"
    title = f"[{tag}] [{sev}] {pd}: {cond}" if tag else f"[{sev}] {pd}: {cond}"
    lines = [HEADING[lang][event], "",
             f"{lb['pd']}: {a.pd_name or pd} ({pd})",
             f"{lb['subject']}: {KIND[lang][a.subject_kind]} {a.subject}",
             f"{lb['condition']}: {cond}",
             f"{lb['since']}: {fmt_time(a.since, tz, lang)}",
             f"{lb['severity']}: {sev}",
             f"{lb['owner']}: " + (OWNER_VIOLATION[lang]
                                   if a.subject_kind is SubjectKind.VIOLATION
                                   else OWNER[lang][a.zone])]
    if a.details.get(f"title_{lang}"):
        lines.append(f"{tx['obligation']}: {a.details.get('obligation') or '-'} "
                     f"({a.details[f'title_{lang}']})")
    if a.flapping:
        lines.append(tx["flapping"].format(n=a.flap_count,
                                           window=fmt_duration(flap_window_s, lang)))
    for note in (a.details.get("note"), a.details.get("routing_note")):
        if note in tx:
            lines.append(tx[note])
    detail = a.details.get("error")
    if detail:
        lines.append(f"{lb['detail']}: {detail}")
    lines += _backup_lines(a, lang, tz)
    summaries = a.details.get("summaries")
    if isinstance(summaries, list) and summaries:
        lines.append(f"{tx['changes']}: " + "; ".join(str(s) for s in summaries))
    if a.details.get("citation"):
        obligation = a.details.get("obligation")
        lines.append(f"{lb['basis']}: {a.details['citation']}"
                     + (f" ({obligation})" if obligation else ""))
    if event is Event.RECOVER:
        end = a.resolved_at or now
        lines.append(f"{lb['recovered']}: {fmt_time(end, tz, lang)}")
        lines.append(f"{lb['duration']}: {fmt_duration(end - a.since, lang)}")
    elif event is Event.ESCALATE:
        lines.append(tx["escalated"].format(n=fmt_duration(escalate_after_s, lang)))
    elif a.tier == 1:
        lines.append(tx["ack"].format(n=fmt_duration(escalate_after_s, lang)))
    ref = f"{lb['id']}: #{a.id}"
    if dashboard_url:
        ref += f" ({lb['dashboard']}: {dashboard_url.rstrip('/')}/alerts/{a.id})"
    lines += ["", ref]
    return Rendered(title, "\n".join(lines))


def render_digest(alerts: Sequence[AlertInfo], lang: str, tz: ZoneInfo, *, start: float,
                  end: float, scope: str, mean_ttn_s: float | None,
                  max_lines: int = 30) -> Rendered:
    lang = lang if lang in DIGEST else "id"
    d = DIGEST[lang]
    day = datetime.fromtimestamp(end, tz).strftime("%d-%m-%Y" if lang == "id" else "%Y-%m-%d")
    title = d["title"].format(scope=f"({scope})" if scope else "", day=day).replace("  ", " ")
    raised = sum(1 for a in alerts if start <= a.raised_at < end)
    still_open = sum(1 for a in alerts if a.resolved_at is None)
    resolved = sum(1 for a in alerts if a.resolved_at is not None and start <= a.resolved_at)
    lines = [title, "", d["period"].format(start=fmt_time(start, tz, lang),
                                           end=fmt_time(end, tz, lang)),
             d["counts"].format(raised=raised, open=still_open, resolved=resolved)]
    if mean_ttn_s is not None:
        lines.append(d["ttn"].format(s=fmt_duration(mean_ttn_s, lang)))
    lines.append("")
    if not alerts:
        lines.append(d["none"])
    for a in list(alerts)[:max_lines]:
        state = d[a.status.value]
        lines.append(f"#{a.id} [{SEVERITY[lang][a.severity]}] {a.pd_code or '-'}: "
                     f"{condition_text(a, lang)} ({fmt_time(a.since, tz, lang)}; {state})")
    if len(alerts) > max_lines:
        lines.append(d["more"].format(n=len(alerts) - max_lines))
    return Rendered(title, "\n".join(lines))
