"""Violation texts in Bahasa Indonesia (default) and English.

Rules return message keys with their values (:class:`~collector.compliance.rules.base.Reason`);
violations store them, and the API renders them in the language asked for
(``?lang=id|en``), times in the region's time zone (``25-11-2026 08:00 WIB``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from collector.compliance.profile import Obligation, Severity

Lang = Literal["id", "en"]

TITLE: dict[Lang, dict[Obligation, str]] = {
    "id": {
        Obligation.INTRA_1: "Perangkat Daerah wajib terhubung dan menggunakan Jaringan Intra",
        Obligation.LAN_1: "Infrastruktur LAN Perangkat Daerah harus dapat diperiksa oleh Dinas",
        Obligation.LAN_2: "Perangkat Daerah wajib menyerahkan diagram infrastruktur LAN",
        Obligation.LAN_3: "Perangkat Daerah wajib melaporkan perubahan infrastruktur LAN",
        Obligation.LAN_4: "Setiap kabel data harus diberi label kode alamat node",
        Obligation.NET_1: "Akses Internet, IP publik dan bandwidth dikendalikan oleh Dinas",
        Obligation.NET_2: "Perangkat keamanan informasi pada LAN yang terhubung ke Internet",
        Obligation.ASSET_1: "Perangkat Daerah wajib menginventarisasi seluruh perangkat TIK",
        Obligation.DC_1: "Data dan/atau server Perangkat Daerah wajib ditempatkan di Pusat Data",
        Obligation.DC_2: "Pusat Data menjamin colocation, keamanan server dan up-time server",
        Obligation.DC_3: "Pusat Data dan hosting harus berada dalam wilayah hukum Indonesia",
        Obligation.BAK_1: "Pencadangan data secara berkala ke server di Pusat Data",
        Obligation.BAK_2: "Ketersediaan dijamin dengan cadangan dan pemulihan (DRC)",
        Obligation.WEB_1: "Situs web Perangkat Daerah merupakan subdomain portal Pemerintah "
                          "Daerah",
    },
    "en": {
        Obligation.INTRA_1: "Every PD must be connected to and use the government intranet",
        Obligation.LAN_1: "The PD's LAN infrastructure must be inspectable by Dinas",
        Obligation.LAN_2: "The PD must submit its LAN diagram to Dinas",
        Obligation.LAN_3: "The PD must report every change of its LAN",
        Obligation.LAN_4: "Every data cable must be labelled with its node-address code",
        Obligation.NET_1: "Internet access, public IPs and bandwidth are controlled by Dinas",
        Obligation.NET_2: "Security devices on an internet-facing PD LAN",
        Obligation.ASSET_1: "The PD must inventory all its ICT devices",
        Obligation.DC_1: "PD data and/or servers must be placed in the Pusat Data",
        Obligation.DC_2: "The Pusat Data guarantees colocation, server security and up-time",
        Obligation.DC_3: "The Pusat Data and hosting must be inside Indonesian jurisdiction",
        Obligation.BAK_1: "Periodic backup to a server in the Pusat Data",
        Obligation.BAK_2: "Availability by backup and recovery (DRC)",
        Obligation.WEB_1: "PD websites must be subdomains of the regional portal",
    },
}

TEXT: dict[Lang, dict[str, str]] = {
    "id": {
        "intra1.no_agent": "Perangkat Daerah {pd} belum memiliki agen pemantauan; keterhubungan "
                           "ke Jaringan Intra tidak dapat dibuktikan",
        "intra1.no_pd_agent": "Perangkat Daerah {pd} tidak memiliki agen pemantauan di "
                              "jaringannya sendiri (agen {agents} berjalan pada server di Pusat "
                              "Data); keterhubungan ke Jaringan Intra tidak dapat dibuktikan",
        "intra1.silent": "Agen {agent} tidak mengirim laporan sejak {since}",
        "intra1.no_probe": "Agen {agent} tidak memantau satu pun target Pusat Data melalui "
                           "Jaringan Intra",
        "intra1.unreachable": "Pusat Data tidak dapat dijangkau dari agen {agent} sejak {since} "
                              "(target: {targets})",
        "lan1.unpollable": "Perangkat {device} ({address}) tidak dapat diperiksa sejak {since} "
                           "(galat: {error_type})",
        "lan2.no_baseline": "Perangkat Daerah {pd} belum memiliki diagram LAN yang disetujui "
                            "({devices} perangkat terdeteksi)",
        "lan3.unreported": "Perubahan LAN belum dilaporkan lebih dari {days} hari: {summary} "
                           "(terdeteksi {since})",
        "lan4.no_label": "Port {device} {port} aktif tetapi kabelnya tidak berlabel "
                         "(deskripsi kosong)",
        "lan4.bad_label": "Label port {device} {port} \"{label}\" tidak sesuai format kode "
                          "alamat node",
        "net1.default_route": "Rute default {node} melalui {gateway} ({interface}), bukan "
                              "melalui Jaringan Intra (akses Internet tidak sah)",
        "net1.public_address": "{node} memakai IP publik {address} ({interface}) di luar "
                               "alokasi Dinas",
        "net2.no_firewall": "{node} memiliki jalur ke Internet ({via}) tanpa perangkat "
                            "firewall",
        "asset1.unregistered_device": "Perangkat {device} ({vendor} {model}, SN {serial}) tidak "
                                      "terdaftar dalam inventaris aset",
        "asset1.unregistered_neighbor": "Perangkat {neighbor} (terlihat dari {seen_by} port "
                                        "{port}) tidak terdaftar dalam inventaris aset",
        "asset1.missing_serial": "Perangkat terdaftar {device} tidak memiliki nomor seri",
        "asset1.missing_model": "Perangkat terdaftar {device} tidak memiliki model",
        "dc1.server_host": "Server {host} ({addresses}) berada di LAN Perangkat Daerah, bukan "
                           "di Pusat Data",
        "dc1.lan_server": "Host {ip} melayani port server {ports} ({role}) di LAN Perangkat "
                          "Daerah, bukan di Pusat Data",
        "dc2.sla_breach": "Ketersediaan layanan {service} bulan {month} paling tinggi "
                          "{max_pct} %, di bawah SLA {sla} % (gangguan {down_min} menit, "
                          "batas {budget_min} menit)",
        "dc3.backup_abroad": "Tujuan backup {job} ({host}, {address}) berada di luar wilayah "
                             "hukum Indonesia",
        "dc3.website_abroad": "Situs web {website} di-hosting pada {address}, di luar wilayah "
                              "hukum Indonesia",
        "bak1.never_run": "Backup {job} belum pernah berhasil dijalankan",
        "bak1.failed": "Backup {job} gagal pada {at} ({error_type})",
        "bak1.overdue": "Backup {job} terlambat: backup terakhir {last_success_at} (batas "
                        "{limit_h} jam)",
        "bak1.destination_unknown": "Tujuan backup {job} ({destination}) tidak diketahui "
                                    "alamatnya",
        "bak1.destination_outside": "Tujuan backup {job} ({destination}, {addresses}) bukan "
                                    "server di Pusat Data",
        "bak1.size_drop": "Ukuran backup {job} turun {drop_pct} % ({previous} menjadi {size})",
        "bak2.no_replica": "Backup {job} tidak memiliki salinan di DRC",
        "bak2.replica_unreadable": "Salinan DRC dari backup {job} ({destination}) tidak dapat "
                                   "dibaca ({error_type})",
        "bak2.replica_empty": "Salinan DRC dari backup {job} ({destination}) masih kosong",
        "bak2.replica_stale": "Salinan DRC dari backup {job} ({destination}) terakhir "
                              "{last_success_at}, lebih lama dari RPO {rpo_days} hari",
        "bak2.replica_not_drc": "Salinan backup {job} ({destination}, {addresses}) tidak "
                                "berada di lokasi DRC",
        "bak2.replica_location_unknown": "Tujuan salinan DRC dari backup {job} "
                                         "({destination}) tidak diketahui alamatnya, sehingga "
                                         "tidak dapat dibuktikan berada di lokasi DRC",
        "bak2.integrity_failed": "Verifikasi integritas backup {job} gagal pada {at}: "
                                 "{message}",
        "web1.outside_portal": "Situs web {website} bukan subdomain portal {portal}",
        "web1.unavailable": "Situs web {website} tidak tersedia: ketersediaan bulan {month} "
                            "paling tinggi {max_pct} % (target {sla} %)",
    },
    "en": {
        "intra1.no_agent": "PD {pd} has no monitoring agent; its intranet connection cannot be "
                           "shown",
        "intra1.no_pd_agent": "PD {pd} has no monitoring agent in its own network (agents "
                              "{agents} run on servers in the Pusat Data); its intranet "
                              "connection cannot be shown",
        "intra1.silent": "Agent {agent} has not reported since {since}",
        "intra1.no_probe": "Agent {agent} probes no Pusat Data target over the intranet",
        "intra1.unreachable": "The Pusat Data is unreachable from agent {agent} since {since} "
                              "(targets: {targets})",
        "lan1.unpollable": "Device {device} ({address}) cannot be inspected since {since} "
                           "(error: {error_type})",
        "lan2.no_baseline": "PD {pd} has no approved LAN diagram ({devices} devices "
                            "discovered)",
        "lan3.unreported": "LAN change not reported for more than {days} days: {summary_en} "
                           "(detected {since})",
        "lan4.no_label": "Port {device} {port} is up but its cable has no label (empty "
                         "description)",
        "lan4.bad_label": "Label of port {device} {port} \"{label}\" does not follow the "
                          "node-address code format",
        "net1.default_route": "The default route of {node} goes via {gateway} ({interface}), "
                              "not the intranet (unauthorised internet access)",
        "net1.public_address": "{node} uses public IP {address} ({interface}) outside Dinas' "
                               "allocation",
        "net2.no_firewall": "{node} has an internet path ({via}) without a firewall",
        "asset1.unregistered_device": "Device {device} ({vendor} {model}, S/N {serial}) is not "
                                      "in the registered inventory",
        "asset1.unregistered_neighbor": "Device {neighbor} (seen from {seen_by} port {port}) "
                                        "is not in the registered inventory",
        "asset1.missing_serial": "Registered device {device} has no serial number",
        "asset1.missing_model": "Registered device {device} has no model",
        "dc1.server_host": "Server {host} ({addresses}) is in the PD LAN, not in the Pusat Data",
        "dc1.lan_server": "Host {ip} serves server ports {ports} ({role}) in the PD LAN, not in "
                          "the Pusat Data",
        "dc2.sla_breach": "Availability of {service} in {month} can be at most {max_pct} %, "
                          "below the {sla} % SLA ({down_min} min down, {budget_min} min "
                          "allowed)",
        "dc3.backup_abroad": "Backup destination of {job} ({host}, {address}) is outside "
                             "Indonesian jurisdiction",
        "dc3.website_abroad": "Website {website} is hosted at {address}, outside Indonesian "
                              "jurisdiction",
        "bak1.never_run": "Backup {job} has never run successfully",
        "bak1.failed": "Backup {job} failed at {at} ({error_type})",
        "bak1.overdue": "Backup {job} is overdue: last backup {last_success_at} (limit "
                        "{limit_h} h)",
        "bak1.destination_unknown": "The address of backup destination {destination} of {job} "
                                    "is unknown",
        "bak1.destination_outside": "Backup destination of {job} ({destination}, {addresses}) "
                                    "is not a server in the Pusat Data",
        "bak1.size_drop": "Backup {job} shrank by {drop_pct} % ({previous} to {size})",
        "bak2.no_replica": "Backup {job} has no copy at the DRC",
        "bak2.replica_unreadable": "The DRC copy of backup {job} ({destination}) cannot be "
                                   "read ({error_type})",
        "bak2.replica_empty": "The DRC copy of backup {job} ({destination}) is empty",
        "bak2.replica_stale": "The DRC copy of backup {job} ({destination}) is from "
                              "{last_success_at}, older than the {rpo_days}-day RPO",
        "bak2.replica_not_drc": "The copy of backup {job} ({destination}, {addresses}) is not "
                                "at a DRC site",
        "bak2.replica_location_unknown": "The address of the DRC copy of backup {job} "
                                         "({destination}) is unknown; it cannot be shown to "
                                         "be at a DRC site",
        "bak2.integrity_failed": "Integrity check of backup {job} failed at {at}: {message}",
        "web1.outside_portal": "Website {website} is not a subdomain of the portal {portal}",
        "web1.unavailable": "Website {website} is unavailable: {month} availability can be at "
                            "most {max_pct} % (target {sla} %)",
    },
}

STATUS: dict[Lang, dict[str, str]] = {
    "id": {"open": "terbuka", "acknowledged": "diketahui", "waived": "dikecualikan",
           "resolved": "selesai", "compliant": "patuh", "violation": "melanggar",
           "warning": "peringatan"},
    "en": {"open": "open", "acknowledged": "acknowledged", "waived": "waived",
           "resolved": "resolved", "compliant": "compliant", "violation": "violation",
           "warning": "warning"},
}

SEVERITY: dict[Lang, dict[Severity, str]] = {
    "id": {Severity.WARNING: "peringatan", Severity.MINOR: "ringan", Severity.MAJOR: "berat",
           Severity.CRITICAL: "kritis"},
    "en": {Severity.WARNING: "warning", Severity.MINOR: "minor", Severity.MAJOR: "major",
           Severity.CRITICAL: "critical"},
}

_SIZE_KEYS = frozenset({"size", "previous"})


def fmt_time(ts: float, tz: ZoneInfo) -> str:
    local = datetime.fromtimestamp(ts, tz)
    return f"{local:%d-%m-%Y %H:%M} {local.tzname() or ''}".rstrip()


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _value(key: str, v: Any, lang: Lang, tz: ZoneInfo) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float) and (key in ("since", "at") or key.endswith("_at")):
        return fmt_time(float(v), tz)
    if isinstance(v, int | float) and key in _SIZE_KEYS:
        text = _size(float(v))
    elif isinstance(v, float):
        text = f"{v:g}" if math.isfinite(v) else str(v)
    else:
        return str(v)
    return text.replace(".", ",") if lang == "id" else text


class _Vals(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(key: str, params: Mapping[str, Any], lang: Lang, tz: ZoneInfo) -> str:
    """One reason as text; an unknown key (from a newer version) shows the key itself."""
    template = TEXT[lang].get(key)
    if template is None:
        return key
    vals = _Vals({k: _value(k, v, lang, tz) for k, v in params.items()})
    return template.format_map(vals)


def render_all(messages: Sequence[Mapping[str, Any]], lang: Lang, tz: ZoneInfo) -> str:
    return "; ".join(render(str(m.get("key", "")), m.get("params") or {}, lang, tz)
                     for m in messages)


def title(obligation: str, lang: Lang) -> str:
    try:
        return TITLE[lang][Obligation(obligation)]
    except ValueError:
        return obligation
