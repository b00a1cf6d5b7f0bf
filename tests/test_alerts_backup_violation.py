"""Backup and violation alerts: real ``BackupStatus`` reports through the real ingest, real
violations opened/resolved/waived by the real compliance engine (Lebak profile), the alert
engine evaluated at explicit times; and one end-to-end run through a real collector over
HTTPS with a real SMTP server."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from sqlalchemy import select

from collector.alerts.config import Condition
from collector.alerts.engine import AlertEngine
from collector.alerts.model import Event
from collector.compliance import engine as compliance
from collector.compliance.engine import ComplianceEngine
from collector.compliance.profile import (
    Obligation,
    RegionProfile,
    SiteCfg,
    load_profile,
    parse_profile,
)
from collector.db_compliance import violations
from collector.store import Store
from contract.report import BackupStatus, Report, new_report_id
from tests.conftest import MakeCollector
from tests.procs import wait_for
from tests.test_alert_channels import SMTP_PASSWORD, SMTP_USER, SmtpServer, secret_file
from tests.test_alerts_engine import (
    T0,
    TIER1,
    TIER2,
    World,
    all_alerts,
    dt,
    make_cfg,
    new_store,
    notes,
    recipients,
)

REPO = Path(__file__).resolve().parent.parent
LEBAK = REPO / "configs" / "regions" / "lebak-2024.yaml"
CITATION = "Pasal 17 ayat (1) Perbup Lebak 24/2024"
H, D = 3600.0, 86400.0
OFF = {"enabled": False}


def cfg(**conditions: Any) -> Any:
    """The engine test config with only the given conditions' settings changed."""
    return make_cfg(conditions={"agent_silent": OFF, **conditions})


def backup(t: float, job: str = "simpeg-db", **kw: Any) -> BackupStatus:
    """A healthy daily restic job observed at ``t``; ``kw`` overrides (times as epoch)."""
    data: dict[str, Any] = {
        "observed_at": dt(t), "job": job, "type": "restic", "status": "success",
        "last_success_at": dt(t - H), "size_bytes": 10**6, "destination": "nas-dinkes",
        "destination_ips": ["10.20.5.20"], "expected_interval_s": D,
        "replica": {"destination": "drc-dinkes", "destination_ips": ["10.99.5.20"],
                    "last_success_at": dt(t - 2 * H)},
        "integrity": "ok", "integrity_checked_at": dt(t - 3 * H)}
    for k, v in kw.items():
        data[k] = dt(v) if isinstance(v, float) and k.endswith("_at") else v
    return BackupStatus.model_validate(data)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = new_store(tmp_path / "state.sqlite")
    yield s
    s.close()
    s.engine.dispose()


@pytest.fixture
def world(store: Store) -> World:
    return World(store)


def mail(store: Store) -> Any:
    """The one raise message sent by email (Tier 1 also gets it by Telegram)."""
    [note] = [n for n in notes(store, Event.RAISE) if n.channel == "email"]
    return note


def of(store: Store, condition: Condition) -> list[Any]:
    return [a for a in all_alerts(store) if a.condition == condition.value]


# --- backup failed -------------------------------------------------------------------------

def test_failed_backup_alerts_once_and_recovers(store: Store, world: World) -> None:
    eng = AlertEngine(store, cfg())
    world.report("dinkes-gw", T0, backup(T0))
    assert eng.evaluate(T0 + 5).raised == 0                      # healthy: nothing
    world.report("dinkes-gw", T0 + 60, backup(
        T0 + 60, status="failed", error_type="auth", last_failure_at=T0 + 30.0,
        last_failure_reason="restic: wrong password or no key found"))
    stats = eng.evaluate(T0 + 65)
    assert stats.raised == 1 and stats.errors == []
    [a] = all_alerts(store)
    assert (a.condition, a.subject, a.zone, a.tier, a.severity, a.status) == (
        "backup_failed", "dinkes-gw/simpeg-db", "lan", 1, "major", "open")
    assert a.since == T0 + 30                              # when the run failed
    raised = notes(store, Event.RAISE)
    assert recipients(raised) == TIER1
    title, body = raised[0].title, raised[0].body
    assert title == "[MAYOR] DINKES: Backup dinkes-gw/simpeg-db gagal"
    assert "Sejak: 15-01-2027 15:00:30 WIB" in body
    assert "Rincian: restic: wrong password or no key found" in body
    assert "Backup terakhir berhasil: 15-01-2027 14:01:00 WIB" in body

    # re-evaluation and further failed reports: still one alert, no new message
    world.report("dinkes-gw", T0 + 120, backup(
        T0 + 120, status="failed", error_type="auth", last_failure_at=T0 + 90.0))
    for t in (T0 + 70, T0 + 125, T0 + 300):
        assert eng.evaluate(t).raised == 0
    assert len(all_alerts(store)) == 1 and len(notes(store)) == 2

    # fixed: the next good run resolves it, the same recipients are told
    world.report("dinkes-gw", T0 + 400, backup(T0 + 400, last_success_at=T0 + 380.0))
    assert eng.evaluate(T0 + 405).resolved == 1
    [a] = all_alerts(store)
    assert a.status == "resolved" and a.resolution == "recovered"
    assert recipients(notes(store, Event.RECOVER)) == TIER1
    assert eng.evaluate(T0 + 500).raised == 0


def test_integrity_failure_and_pusat_data_destination_go_to_tier2(store: Store,
                                                                 world: World) -> None:
    eng = AlertEngine(store, cfg())
    world.report("dinkes-gw", T0, backup(
        T0, job="arsip", destination="pusat-data-bak", destination_ips=["10.10.5.20"],
        integrity="failed", integrity_checked_at=T0 - 600.0,
        integrity_message="pack 3f2a: checksum mismatch"))
    assert eng.evaluate(T0 + 1).raised == 1
    [a] = all_alerts(store)
    assert (a.zone, a.tier, a.since) == ("dc", 2, T0 - 600)
    [note] = notes(store)
    assert recipients([note]) == TIER2
    assert note.title == ("[MAYOR] DINKES: Pemeriksaan integritas backup dinkes-gw/arsip "
                          "menemukan kerusakan")
    assert "pack 3f2a: checksum mismatch" in note.body and "Pusat Data" in note.body


def test_backup_conditions_can_be_disabled(store: Store, world: World) -> None:
    world.report("dinkes-gw", T0, backup(T0, status="failed", last_failure_at=T0 - 5.0,
                                         replica=None))
    eng = AlertEngine(store, cfg(backup_failed=OFF, drc_stale=OFF, backup_overdue=OFF))
    assert eng.evaluate(T0 + 5).raised == 0 and all_alerts(store) == []


# --- overdue -------------------------------------------------------------------------------

def test_overdue_after_interval_times_one_and_a_half(store: Store, world: World) -> None:
    eng = AlertEngine(store, cfg())
    last = T0 - 30 * H
    world.report("dinkes-gw", T0, backup(T0, last_success_at=last))
    assert eng.evaluate(T0).raised == 0                       # 30 h < 24 h x 1.5
    assert eng.evaluate(T0 + 6 * H - 1).raised == 0
    assert eng.evaluate(T0 + 6 * H + 1).raised == 1
    [a] = of(store, Condition.BACKUP_OVERDUE)
    assert a.since == last + 36 * H and a.tier == 1 and a.severity == "minor"
    note = mail(store)
    assert note.title == "[MINOR] DINKES: Backup dinkes-gw/simpeg-db terlambat"
    assert "Backup terakhir berhasil: 14-01-2027 09:00:00 WIB" in note.body
    assert "Batas keterlambatan: 1 hari 12 jam" in note.body
    assert eng.evaluate(T0 + 7 * H).raised == 0               # no duplicate
    world.report("dinkes-gw", T0 + 8 * H, backup(T0 + 8 * H))  # a new good backup
    assert eng.evaluate(T0 + 8 * H + 1).resolved == 1
    assert [a.status for a in all_alerts(store)] == ["resolved"]


def test_never_run_job_is_overdue_after_its_first_interval(store: Store, world: World) -> None:
    eng = AlertEngine(store, cfg())
    world.report("dinkes-gw", T0, backup(T0, job="sikd", status="never_run",
                                         last_success_at=None, expected_interval_s=6 * H))
    assert eng.evaluate(T0 + 9 * H - 1).raised == 0
    assert eng.evaluate(T0 + 9 * H + 1).raised == 1
    [a] = all_alerts(store)
    assert a.condition == "backup_overdue" and a.details["never_run"] is True
    note = mail(store)
    assert note.title == "[MINOR] DINKES: Backup dinkes-gw/sikd belum pernah berhasil"
    assert "Backup terakhir berhasil: belum pernah" in note.body


def test_failing_job_is_one_alert_not_also_overdue(store: Store, world: World) -> None:
    world.report("dinkes-gw", T0, backup(T0, status="failed", last_failure_at=T0 - 60.0,
                                         last_success_at=T0 - 3 * D))
    assert AlertEngine(store, cfg()).evaluate(T0 + 1).raised == 1
    assert [a.condition for a in all_alerts(store)] == ["backup_failed"]
    # with backup_failed disabled, the same job is overdue instead
    AlertEngine(store, cfg(backup_failed=OFF)).evaluate(T0 + 2)
    assert sorted(a.condition for a in all_alerts(store)) == ["backup_failed",
                                                              "backup_overdue"]


# --- DRC ------------------------------------------------------------------------------------

def test_drc_copy_stale_missing_and_fresh(store: Store, world: World) -> None:
    eng = AlertEngine(store, cfg())
    stale_at = T0 - 8 * D
    world.report("dinkes-gw", T0, backup(T0, job="stale", replica={
        "destination": "drc-dinkes", "destination_ips": ["10.99.5.20"],
        "last_success_at": dt(stale_at)}), backup(T0, job="none", replica=None),
        backup(T0, job="fresh"))
    assert eng.evaluate(T0 + 1).raised == 2
    by = {a.subject: a for a in of(store, Condition.DRC_STALE)}
    assert set(by) == {"dinkes-gw/stale", "dinkes-gw/none"}
    assert by["dinkes-gw/stale"].since == stale_at + 7 * D     # default RPO: 7 days
    assert by["dinkes-gw/none"].since == T0 + 1                # noticed now
    titles = {n.title for n in notes(store, Event.RAISE)}
    assert titles == {
        "[MINOR] DINKES: Salinan DRC dari backup dinkes-gw/stale sudah kedaluwarsa",
        "[MINOR] DINKES: Backup dinkes-gw/none tidak memiliki salinan di DRC"}
    body = next(n.body for n in notes(store) if "stale" in n.title)
    assert "Salinan DRC terakhir: 07-01-2027 15:00:00 WIB" in body and "RPO: 7 hari" in body
    assert eng.evaluate(T0 + 60).raised == 0 and len(all_alerts(store)) == 2
    # the stale copy is refreshed: that alert clears, the other stays
    world.report("dinkes-gw", T0 + 120, backup(T0 + 120, job="stale"),
                 backup(T0 + 120, job="none", replica=None))
    assert eng.evaluate(T0 + 121).resolved == 1
    assert {a.subject: a.status for a in all_alerts(store)} == {
        "dinkes-gw/stale": "resolved", "dinkes-gw/none": "open"}


def lebak(**bak2_params: Any) -> RegionProfile:
    data = yaml.safe_load(LEBAK.read_text())
    data["obligations"]["BAK-2"]["params"].update(bak2_params)
    return parse_profile(data, str(LEBAK))


def test_drc_rpo_comes_from_the_region_profile(store: Store, world: World) -> None:
    world.report("dinkes-gw", T0, backup(T0, replica={
        "destination": "drc-dinkes", "destination_ips": ["10.99.5.20"],
        "last_success_at": dt(T0 - 8 * D)}))
    assert AlertEngine(store, cfg(), profile=lebak(rpo_days=10)).evaluate(T0).raised == 0
    assert AlertEngine(store, cfg(drc_stale={"rpo_days": 9})).evaluate(T0).raised == 0
    assert AlertEngine(store, cfg(), profile=lebak(rpo_days=5)).evaluate(T0).raised == 1
    [a] = all_alerts(store)
    assert a.details["rpo_s"] == 5 * D


# --- violations -----------------------------------------------------------------------------

BACKUPS_OFF = {"backup_failed": OFF, "backup_overdue": OFF, "drc_stale": OFF}


def bak1(store: Store, profile: RegionProfile) -> ComplianceEngine:
    return ComplianceEngine(store, profile, SiteCfg())


def violation_rows(store: Store) -> list[Any]:
    return list(store.rows(select(violations).order_by(violations.c.id)))


def test_violation_alert_cites_the_article_and_clears_with_it(store: Store,
                                                             world: World) -> None:
    profile = load_profile(LEBAK)
    comp = bak1(store, profile)
    eng = AlertEngine(store, cfg(**BACKUPS_OFF), profile=profile)
    world.report("dinkes-gw", T0, backup(T0, status="failed", error_type="auth",
                                         last_failure_at=T0 - 60.0))
    assert comp.evaluate(T0 + 1, obligations=[Obligation.BAK_1]).opened == 1
    [v] = violation_rows(store)
    assert eng.evaluate(T0 + 2).raised == 1
    [a] = all_alerts(store)
    assert (a.condition, a.subject_kind, a.subject, a.zone, a.tier, a.since) == (
        "violation", "violation", "BAK-1:backup:dinkes-gw/simpeg-db", "lan", 1, T0 + 1)
    assert a.details["citation"] == CITATION and a.details["violation_id"] == v.id
    raised = notes(store, Event.RAISE)
    assert recipients(raised) == TIER1
    title, body = raised[0].title, raised[0].body
    assert title.startswith("[MAYOR] DINKES: Pelanggaran BAK-1: Backup simpeg-db gagal pada")
    assert f"Dasar hukum: {CITATION} (BAK-1)" in body
    assert "Kewajiban: BAK-1 (Pencadangan data secara berkala ke server di Pusat Data)" in body
    assert "Sejak: 15-01-2027 15:00:01 WIB" in body

    # the compliance engine re-finds it, the violation is acknowledged: still one alert
    comp.evaluate(T0 + 60, obligations=[Obligation.BAK_1])
    with store.tx() as c:
        compliance.acknowledge(c, v.id, "dinkes-tier1", "sedang diperbaiki", T0 + 70)
    for t in (T0 + 61, T0 + 80):
        assert eng.evaluate(t).raised == 0
    assert len(all_alerts(store)) == 1 and len(notes(store)) == 2

    # the backup is fixed: the violation resolves, and so does the alert
    world.report("dinkes-gw", T0 + 300, backup(T0 + 300))
    assert comp.evaluate(T0 + 301, obligations=[Obligation.BAK_1]).resolved == 1
    assert violation_rows(store)[0].status == "resolved"
    assert eng.evaluate(T0 + 302).resolved == 1
    assert all_alerts(store)[0].status == "resolved"
    assert recipients(notes(store, Event.RECOVER)) == TIER1
    assert eng.evaluate(T0 + 400).raised == 0


def test_waiver_resolves_the_alert_and_its_expiry_raises_a_new_one(store: Store,
                                                                   world: World) -> None:
    profile = load_profile(LEBAK)
    comp = bak1(store, profile)
    eng = AlertEngine(store, make_cfg(language="en", conditions={"agent_silent": OFF,
                                                                 **BACKUPS_OFF}),
                      profile=profile)
    world.report("dinkes-gw", T0, backup(T0, replica=None))
    comp.evaluate(T0 + 1, obligations=[Obligation.BAK_2])
    assert eng.evaluate(T0 + 2).raised == 1
    [v] = violation_rows(store)
    with store.tx() as c:
        compliance.waive(c, v.id, "kadis", "DRC dibangun 2027", T0 + 3 * D, T0 + 10, 366)
    assert eng.evaluate(T0 + 11).resolved == 1
    # the waiver expires with the fault still there: the violation is open again, a new alert
    world.report("dinkes-gw", T0 + 3 * D + 50, backup(T0 + 3 * D + 50, replica=None))
    comp.evaluate(T0 + 3 * D + 60, obligations=[Obligation.BAK_2])
    assert violation_rows(store)[0].status == "open"
    assert eng.evaluate(T0 + 3 * D + 61).raised == 1
    first, second = all_alerts(store)
    assert (first.status, second.status) == ("resolved", "open")
    # English texts for an English contact configuration
    note = notes(store, Event.RAISE)[-1]
    assert note.title.startswith("[MAJOR] DINKES: Violation BAK-2: Backup simpeg-db has no")
    assert "Legal basis: Pasal 26 ayat (4) Perbup Lebak 24/2024 (BAK-2)" in note.body


def test_violation_severity_follows_enforcement_and_exclusions(store: Store,
                                                                world: World) -> None:
    data = yaml.safe_load(LEBAK.read_text())
    data["enforcement_start"] = "2030-01-01"             # not enforced yet: a warning
    profile = parse_profile(data, str(LEBAK))
    world.report("dinkes-gw", T0, backup(T0, status="failed", replica=None))
    bak1(store, profile).evaluate(T0 + 1, obligations=[Obligation.BAK_1, Obligation.BAK_2])
    assert {v.severity for v in violation_rows(store)} == {"warning"}
    excl = cfg(**BACKUPS_OFF, violation={"exclude_obligations": ["BAK-1"]})
    assert AlertEngine(store, excl).evaluate(T0 + 2).raised == 1
    [a] = all_alerts(store)
    assert a.subject.startswith("BAK-2:") and a.severity == "info"


# --- end to end -----------------------------------------------------------------------------

TIER1_MAIL, TIER2_MAIL = "it@dinkes.test", "noc@kominfo.test"


@pytest.mark.integration
def test_failed_backup_report_mails_the_pd_tier1_once(make_collector: MakeCollector,
                                                      tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    with SmtpServer(ca) as smtp:
        col = make_collector(extra={"alerts": {
            "evaluate_interval_s": 0.3, "escalate_after_s": 600, "digest": {"enabled": False},
            "conditions": {"agent_silent": OFF},
            "tier1": {"DINKES": [{"name": "Teknisi Dinkes", "email": TIER1_MAIL}]},
            "tier2": [{"name": "NOC Diskominfo", "email": TIER2_MAIL}],
            "channels": {"email": {
                "host": "127.0.0.1", "port": smtp.port, "security": "starttls",
                "username": SMTP_USER, "from_addr": "spbe-monitor@kominfo.test",
                "password": {"file": str(secret_file(secrets, "smtp", SMTP_PASSWORD))},
                "ca_file": str(ca_file), "timeout_s": 5}},
            "delivery": {"poll_interval_s": 0.2, "backoff_initial_s": 0.5}}})
        col.add_pd("DINKES", "Dinas Kesehatan")
        token = col.add_agent("dinkes-gw", "DINKES")
        col.start()
        now = time.time()
        failed = backup(now, status="failed", error_type="auth", last_failure_at=now - 30,
                        last_failure_reason="restic: wrong password or no key found",
                        last_success_at=now - 2 * H)
        for _ in range(2):      # the agent reports the same failure again: still one mail
            rep = Report(report_id=new_report_id(), agent_id="dinkes-gw", pd_code="DINKES",
                         sent_at=dt(time.time()), observations=[failed])
            with col.client() as c:
                r = c.post("/api/v1/reports",
                           content=gzip.compress(rep.model_dump_json().encode()),
                           headers={"Authorization": f"Bearer {token}",
                                    "Content-Encoding": "gzip",
                                    "Content-Type": "application/json"})
            assert r.status_code == 202, r.text
        wait_for(lambda: smtp.mails, 20, "the tier-1 mail about the failed backup")
        time.sleep(2)           # several more evaluations: nothing else is sent
        assert [m.rcpt_tos for m in smtp.mails] == [[TIER1_MAIL]]
        [mail] = smtp.mails
        assert mail.login == SMTP_USER
        subject = " ".join(str(mail.message["Subject"]).split())
        assert subject == "[MAYOR] DINKES: Backup dinkes-gw/simpeg-db gagal"
        text = mail.message.get_content()
        assert "Dinas Kesehatan (DINKES)" in text and "Tier 1" in text
        assert "restic: wrong password or no key found" in text
        log = col.log.read_text(errors="replace")
        assert "alert #1 raised: backup_failed:backup:" in log and SMTP_PASSWORD not in log
        col.stop()
