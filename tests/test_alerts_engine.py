"""The alert engine on a real state store: reports go through the real ingest path, the engine
evaluates at explicit times (no sleeping), and the queued messages are read back from SQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from collector.alerts import digest, engine, maintenance, messages
from collector.alerts.config import AlertsCfg, Condition, Severity, Zone
from collector.alerts.engine import AlertEngine
from collector.alerts.model import AlertInfo, Event, Finding, Status, Subject, SubjectKind
from collector.alerts.sources import Context, get, load_builtin
from collector.config import CollectorConfig
from collector.db import make_engine, migrate
from collector.db_alerts import alert_events, alert_meta, alert_notifications, alerts
from collector.db_inventory import topology_baselines, topology_changes
from collector.store import AgentAuth, Store
from contract.configfile import ConfigError, load_config
from contract.report import (
    DeviceInterface,
    DeviceObservation,
    Heartbeat,
    PollStatus,
    ProbeKind,
    ProbeResult,
    Report,
    new_report_id,
)

T0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC = 15:00:00 WIB
JKT = ZoneInfo("Asia/Jakarta")
load_builtin()


def make_cfg(**over: Any) -> AlertsCfg:
    base: dict[str, Any] = {
        "hold_down_s": 60, "flap_window_s": 600, "flap_threshold": 3, "escalate_after_s": 900,
        "agent_report_interval_s": 60, "agent_silent_intervals": 3,
        "zones": {"targets": {"pusat-data*": "dc"}, "pds": {"KOMINFO": "dc"}},
        "tier1": {"DINKES": [{"name": "Teknisi Dinkes", "email": "it@dinkes.test",
                              "telegram_chat_id": "1001"}]},
        "tier2": [{"name": "NOC Diskominfo", "email": "noc@kominfo.test"}],
        "channels": {"email": {"host": "127.0.0.1", "port": 2525, "security": "none",
                               "from_addr": "spbe@kominfo.test"},
                     "telegram": {"api_base": "http://127.0.0.1:9",
                                  "bot_token": {"env": "SPBE_TEST_TG_TOKEN"}}},
        "digest": {"enabled": False},
        # the reports here are sparse in time: agent silence is tested on its own
        "conditions": {"agent_silent": {"enabled": False}},
    }
    base.update(over)
    return AlertsCfg.model_validate(base)


def new_store(path: Path) -> Store:
    eng = make_engine(f"sqlite:///{path}")
    migrate(eng)
    return Store(eng)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = new_store(tmp_path / "state.sqlite")
    yield s
    s.close()
    s.engine.dispose()


def dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class World:
    """PDs and agents registered through the store; reports through the real ingest."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.agents: dict[str, AgentAuth] = {}
        for code, name in (("DINKES", "Dinas Kesehatan"), ("BAPPEDA", "Bappeda"),
                           ("KOMINFO", "Diskominfo")):
            store.add_pd(code, name)
        for agent_id, pd in (("dinkes-gw", "DINKES"), ("bappeda-gw", "BAPPEDA"),
                             ("kominfo-gw", "KOMINFO")):
            auth = store.agent_by_token(store.add_agent(agent_id, pd))
            assert auth is not None
            self.agents[agent_id] = auth

    def report(self, agent: str, t: float, *obs: Any) -> None:
        a = self.agents[agent]
        r = Report(report_id=new_report_id(), agent_id=a.agent_id, pd_code=a.pd_code,
                   sent_at=dt(t), observations=list(obs))
        assert not self.store.ingest(a, r, received_at=t, clock_skew_s=0.0).duplicate

    def probe(self, t: float, target: str, up: bool, agent: str = "dinkes-gw") -> None:
        self.report(agent, t, ProbeResult(
            observed_at=dt(t), target=target, probe=ProbeKind.TCP, address="10.1.2.3:443",
            up=up, error=None if up else "ConnectionRefusedError: [Errno 111] refused"))


@pytest.fixture
def world(store: Store) -> World:
    return World(store)


def all_alerts(store: Store) -> list[Any]:
    return list(store.rows(select(alerts).order_by(alerts.c.id)))


def notes(store: Store, event: Event | None = None) -> list[Any]:
    stmt = select(alert_notifications).order_by(alert_notifications.c.id)
    if event is not None:
        stmt = stmt.where(alert_notifications.c.event == event.value)
    return list(store.rows(stmt))


def recipients(rows: list[Any]) -> set[tuple[str, str]]:
    return {(r.channel, r.recipient) for r in rows}


TIER1 = {("email", "it@dinkes.test"), ("telegram", "1001")}
TIER2 = {("email", "noc@kominfo.test")}


# --- hold-down, dedup, recovery --------------------------------------------------------------

def test_fault_alerts_once_after_hold_down_to_tier1(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", True)
    world.probe(T0 + 10, "svc", False)
    assert eng.evaluate(T0 + 40).pending == 1
    assert all_alerts(store) == []
    assert eng.evaluate(T0 + 71).raised == 1
    world.probe(T0 + 80, "svc", False)   # still down: no second alert
    for t in (T0 + 90, T0 + 120, T0 + 250):
        assert eng.evaluate(t).raised == 0
    [a] = all_alerts(store)
    assert (a.condition, a.subject, a.status, a.tier, a.zone, a.severity) == (
        "probe_down", "svc", "open", 1, "lan", "major")
    assert a.since == T0 + 10 and a.raised_at == T0 + 71 and not a.flapping
    sent = notes(store)
    assert recipients(sent) == TIER1 and {n.event for n in sent} == {"raise"}
    body = sent[0].body
    for part in ("Dinas Kesehatan (DINKES)", "Target svc", "10.1.2.3:443",
                 "Sejak: 15-01-2027 15:00:10 WIB", "Tingkat: MAYOR", "Tier 1",
                 "ConnectionRefusedError", f"#{a.id}"):
        assert part in body, (part, body)
    assert sent[0].title == "[MAYOR] DINKES: Target svc (10.1.2.3:443) tidak dapat dijangkau"


def test_recovery_within_hold_down_is_silent(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", True)
    world.probe(T0 + 10, "svc", False)
    eng.evaluate(T0 + 20)
    world.probe(T0 + 50, "svc", True)
    for t in (T0 + 55, T0 + 200, T0 + 2000):
        eng.evaluate(t)
    assert all_alerts(store) == [] and notes(store) == []


def test_recovery_resolves_and_tells_the_same_recipients(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    world.probe(T0 + 125, "svc", True)
    assert eng.evaluate(T0 + 126).resolved == 1
    assert eng.evaluate(T0 + 130).resolved == 0
    [a] = all_alerts(store)
    assert (a.status, a.resolution, a.resolved_at, a.open_key) == (
        "resolved", "recovered", T0 + 126, None)
    rec = notes(store, Event.RECOVER)
    assert recipients(rec) == TIER1
    assert rec[0].title.startswith("[PULIH] [MAYOR] DINKES:")
    assert "Lama gangguan: 2 menit 6 detik" in rec[0].body
    # a new fault is a new alert
    world.probe(T0 + 200, "svc", False)
    eng.evaluate(T0 + 261)
    assert [x.status for x in all_alerts(store)] == ["resolved", "open"]


def test_recovery_waits_for_an_alert_message_still_being_retried(store: Store,
                                                                 world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    with store.tx() as c:   # the email could not be delivered yet: next try at T0 + 500
        c.execute(update(alert_notifications).where(alert_notifications.c.channel == "email")
                  .values(attempts=2, next_attempt_at=T0 + 500))
    world.probe(T0 + 100, "svc", True)
    eng.evaluate(T0 + 101)
    due = {(n.channel, n.event): n.next_attempt_at for n in notes(store)}
    assert due[("email", "recover")] == T0 + 500 and due[("telegram", "recover")] == T0 + 101


def test_flapping_gives_one_alert_marked_flapping(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", True)
    t = T0
    for _ in range(8):       # down 20 s, up 20 s: each outage shorter than the hold-down
        t += 20
        world.probe(t, "svc", False)
        eng.evaluate(t + 1)
        t += 20
        world.probe(t, "svc", True)
        eng.evaluate(t + 1)
    [a] = all_alerts(store)
    assert a.flapping and a.flap_count >= 3 and a.status == "open"
    assert a.raised_at == T0 + 100 + 1   # at the third down-onset
    assert len(notes(store)) == 2        # tier 1: email + telegram, once
    assert "tidak stabil (flapping)" in notes(store)[0].title
    # stable again: stays open until the flapping window has passed, then recovers
    eng.evaluate(t + 300)
    assert all_alerts(store)[0].status == "open"
    eng.evaluate(t + 601)
    [a] = all_alerts(store)
    assert a.status == "resolved"
    assert len(notes(store, Event.RECOVER)) == 2


# --- several collectors at once --------------------------------------------------------------

class Gate:
    """A source that waits at a barrier after reading: both engines read the same state before
    either writes, so the database constraints alone must prevent doubles."""

    def __init__(self, name: str, barrier: threading.Barrier) -> None:
        self.inner = get(name)
        self.name, self.conditions, self.barrier = name, self.inner.conditions, barrier

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        out = self.inner.findings(conn, ctx)
        self.barrier.wait(timeout=20)
        return out


def race(engines: list[AlertEngine], now: float) -> list[engine.EvalStats]:
    results: list[engine.EvalStats] = []
    errors: list[BaseException] = []

    def run(e: AlertEngine) -> None:
        try:
            results.append(e.evaluate(now))
        except BaseException as ex:  # surfaced below
            errors.append(ex)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    return results


def two_collectors(store: Store, other: Store, **cfg: Any) -> list[AlertEngine]:
    barrier = threading.Barrier(2)
    return [AlertEngine(s, make_cfg(**cfg), sources=[Gate("probe_down", barrier)])
            for s in (store, other)]


def test_two_collectors_raise_escalate_and_resolve_once(store: Store, world: World,
                                                        tmp_path: Path) -> None:
    other = new_store(tmp_path / "state.sqlite")   # a second collector: own engine and locks
    try:
        engines = two_collectors(store, other)
        world.probe(T0, "svc", False)
        stats = race(engines, T0 + 61)
        assert sorted(s.raised for s in stats) == [0, 1]
        assert len(all_alerts(store)) == 1 and len(notes(store)) == 2
        stats = race(engines, T0 + 61 + 901)
        assert sorted(s.escalated for s in stats) == [0, 1]
        assert recipients(notes(store, Event.ESCALATE)) == TIER2
        world.probe(T0 + 2000, "svc", True)
        stats = race(engines, T0 + 2001)
        assert sorted(s.resolved for s in stats) == [0, 1]
        assert len(notes(store, Event.RECOVER)) == 3   # tier 1 (2) + escalated tier 2 (1)
        events = [r.event for r in store.rows(select(alert_events.c.event))]
        assert sorted(events) == ["escalated", "raised", "resolved"]
    finally:
        other.close()
        other.engine.dispose()


@pytest.mark.integration
def test_two_collectors_on_postgres_raise_once(tmp_path: Path) -> None:
    from tests.servers import Postgres

    with Postgres(tmp_path / "pg") as pg:
        eng_a, eng_b = make_engine(pg.sqlalchemy_url), make_engine(pg.sqlalchemy_url)
        migrate(eng_a)
        a, b = Store(eng_a), Store(eng_b)
        try:
            world = World(a)
            engines = two_collectors(a, b)
            world.probe(T0, "svc", False)
            stats = race(engines, T0 + 61)
            assert sorted(s.raised for s in stats) == [0, 1]
            assert len(all_alerts(a)) == 1 and len(notes(a)) == 2
            world.probe(T0 + 100, "svc", True)
            stats = race(engines, T0 + 101)
            assert sorted(s.resolved for s in stats) == [0, 1]
            assert len(notes(a, Event.RECOVER)) == 2
        finally:
            for s in (a, b):
                s.close()
                s.engine.dispose()


# --- routing by responsibility (INTRA-2) -------------------------------------------------------

def test_pusat_data_unreachable_while_lan_fine_is_a_wan_fault(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", True)
    world.probe(T0, "pusat-data-app", False)
    eng.evaluate(T0 + 61)
    [a] = all_alerts(store)
    assert (a.subject, a.zone, a.tier) == ("pusat-data-app", "dc", 2)
    assert recipients(notes(store)) == TIER2
    assert "LAN PD normal" in notes(store)[0].body


def test_pusat_data_unreachable_with_lan_down_stays_with_the_pd(store: Store,
                                                                world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    world.probe(T0, "pusat-data-app", False)
    eng.evaluate(T0 + 61)
    by_subject = {a.subject: a for a in all_alerts(store)}
    assert (by_subject["pusat-data-app"].zone, by_subject["pusat-data-app"].tier) == ("lan", 1)
    assert by_subject["pusat-data-app"].details["note"] == "lan_also_down"
    assert recipients(notes(store)) == TIER1


def test_pd_without_tier1_and_dc_pd_go_to_tier2(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "web", False, agent="bappeda-gw")
    world.probe(T0, "core", False, agent="kominfo-gw")
    eng.evaluate(T0 + 61)
    by_subject = {a.subject: a for a in all_alerts(store)}
    assert (by_subject["web"].zone, by_subject["web"].tier) == ("lan", 2)
    assert by_subject["web"].details["routing_note"] == "no_tier1_contact"
    assert (by_subject["core"].zone, by_subject["core"].tier) == ("dc", 2)
    assert recipients(notes(store)) == TIER2
    assert all(n.tier == 2 for n in notes(store))


def test_min_severity_and_language_per_contact(store: Store, world: World) -> None:
    cfg = make_cfg(tier1={"DINKES": [
        {"name": "Kepala", "email": "kepala@dinkes.test", "min_severity": "critical"},
        {"name": "Vendor", "email": "vendor@example.test", "language": "en"}]})
    eng = AlertEngine(store, cfg)
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    [n] = notes(store)
    assert (n.recipient, n.language) == ("vendor@example.test", "en")
    assert n.title == "[MAJOR] DINKES: Target svc (10.1.2.3:443) is unreachable"
    assert "Since: 2027-01-15 15:00:00 WIB" in n.body


# --- escalation (ALERT-1) ---------------------------------------------------------------------

def test_unacknowledged_alert_is_escalated_to_tier2(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    assert eng.evaluate(T0 + 61 + 899).escalated == 0
    assert eng.evaluate(T0 + 61 + 900).escalated == 1
    assert eng.evaluate(T0 + 61 + 1000).escalated == 0
    [a] = all_alerts(store)
    assert (a.tier, a.escalated_at, a.status) == (2, T0 + 961, "open")
    esc = notes(store, Event.ESCALATE)
    assert recipients(esc) == TIER2
    assert esc[0].title.startswith("[ESKALASI] [MAYOR] DINKES:")
    assert "Belum ditanggapi oleh Tier 1 selama 15 menit" in esc[0].body


def test_escalation_time_per_condition_and_severity(store: Store, world: World) -> None:
    """Each alert escalates after its own condition's (else its severity's, else the global)
    escalate_after_s, and its messages name that time."""
    cfg = make_cfg(escalate_after_s=900,
                   escalate_after_s_by_severity={"minor": 3600},
                   conditions={"agent_silent": {"enabled": False},
                               "probe_down": {"escalate_after_s": 300, "severity": "minor"}})
    assert cfg.escalate_after(Condition.PROBE_DOWN, Severity.MINOR) == 300    # condition wins
    assert cfg.escalate_after(Condition.DEVICE_POLL_FAILED, Severity.MINOR) == 3600  # severity
    assert cfg.escalate_after(Condition.LINK_DOWN, Severity.MAJOR) == 900     # the global one
    assert cfg.escalate_after(None, Severity.MINOR) == 3600    # a condition of a newer version
    eng = AlertEngine(store, cfg)
    ifs = [DeviceInterface(name="Gi0/1", description="UPLINK-RTR", admin_up=True,
                           oper_up=False)]
    world.report("dinkes-gw", T0, device(T0, PollStatus.OK, ifs))
    world.report("dinkes-gw", T0, device(T0, PollStatus.FAILED, name="dinkes-ap1"))
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 1)                                   # hold-down of the devices starts
    assert eng.evaluate(T0 + 61).raised == 3               # all three at the same time
    by_cond = {a.condition: a for a in all_alerts(store)}
    assert {c: a.tier for c, a in by_cond.items()} == {
        "probe_down": 1, "device_poll_failed": 1, "link_down": 1}
    raise_body = {n.alert_id: n.body for n in notes(store, Event.RAISE)
                  if n.channel == "email"}
    assert "dalam 5 menit" in raise_body[by_cond["probe_down"].id]
    assert "dalam 15 menit" in raise_body[by_cond["link_down"].id]
    assert "dalam 1 jam" in raise_body[by_cond["device_poll_failed"].id]

    def escalated() -> set[str]:
        return {a.condition for a in all_alerts(store) if a.escalated_at is not None}

    assert eng.evaluate(T0 + 61 + 299).escalated == 0
    assert eng.evaluate(T0 + 61 + 300).escalated == 1
    assert escalated() == {"probe_down"}
    assert eng.evaluate(T0 + 61 + 899).escalated == 0
    assert eng.evaluate(T0 + 61 + 900).escalated == 1
    assert escalated() == {"probe_down", "link_down"}
    assert eng.evaluate(T0 + 61 + 3599).escalated == 0
    assert eng.evaluate(T0 + 61 + 3600).escalated == 1
    assert escalated() == {"probe_down", "device_poll_failed", "link_down"}
    esc = {n.alert_id: n.body for n in notes(store, Event.ESCALATE)}
    assert "selama 5 menit" in esc[by_cond["probe_down"].id]
    assert "selama 15 menit" in esc[by_cond["link_down"].id]
    assert "selama 1 jam" in esc[by_cond["device_poll_failed"].id]
    details = {r.alert_id: r.detail for r in store.rows(
        select(alert_events).where(alert_events.c.event == "escalated"))}
    assert details[by_cond["probe_down"].id] == "not acknowledged within 300 s"


def test_escalation_time_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="escalate_after_s"):
        make_cfg(conditions={"probe_down": {"escalate_after_s": 0}})
    with pytest.raises(ValidationError, match="escalate_after_s_by_severity"):
        make_cfg(escalate_after_s_by_severity={"urgent": 60})


def test_acknowledged_alert_is_not_escalated(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    [a] = all_alerts(store)
    engine.acknowledge(store, a.id, "teknisi-dinkes", "sedang dicek", now=T0 + 100)
    engine.acknowledge(store, a.id, "teknisi-dinkes", None, now=T0 + 110)  # no-op
    assert eng.evaluate(T0 + 5000).escalated == 0
    [a] = all_alerts(store)
    assert (a.status, a.acked_by, a.acked_at, a.tier) == ("acknowledged", "teknisi-dinkes",
                                                          T0 + 100, 1)
    assert notes(store, Event.ESCALATE) == []
    assert [r.event for r in store.rows(select(alert_events.c.event))] == [
        "raised", "acknowledged"]
    with pytest.raises(engine.AlertNotFound):
        engine.acknowledge(store, 999, "x", None)


def test_manual_resolve_rearms_the_hold_down(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    [a] = all_alerts(store)
    engine.resolve(store, a.id, "engineer", "known issue", now=T0 + 100)
    with pytest.raises(engine.AlertConflict):
        engine.resolve(store, a.id, "engineer", None)
    assert eng.evaluate(T0 + 101).raised == 0      # still down, but a new hold-down runs
    assert eng.evaluate(T0 + 161).raised == 1
    assert [x.status for x in all_alerts(store)] == ["resolved", "open"]
    assert all_alerts(store)[0].resolution == "manual"


# --- maintenance windows -------------------------------------------------------------------

def add_window(store: Store, **values: Any) -> int:
    base = {"name": "w", "scope": "target", "pd": "DINKES", "subject": "svc", "kind": "once",
            "timezone": "Asia/Jakarta", "reason": "ganti switch"}
    base.update(values)
    return maintenance.create(store, base, "engineer", T0)


def test_one_off_window_silences_until_it_ends(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    add_window(store, starts_at=T0 - 10, ends_at=T0 + 600)
    world.probe(T0, "svc", False)
    world.probe(T0, "other", False)
    stats = eng.evaluate(T0 + 61)
    assert (stats.raised, stats.silenced) == (1, 1)
    assert [a.subject for a in all_alerts(store)] == ["other"]
    assert eng.evaluate(T0 + 599).raised == 0
    assert eng.evaluate(T0 + 600).raised == 1       # the window is over, the fault is not
    assert {a.subject for a in all_alerts(store)} == {"svc", "other"}


def test_window_suppresses_escalation(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    add_window(store, scope="pd", subject=None, starts_at=T0 + 100, ends_at=T0 + 5000)
    assert eng.evaluate(T0 + 2000).escalated == 0
    assert eng.evaluate(T0 + 5000).escalated == 1


def _window(**kw: Any) -> maintenance.Window:
    base: dict[str, Any] = {"id": 1, "name": "w", "scope": maintenance.Scope.PD,
                            "pd_code": "DINKES", "subject": None,
                            "kind": maintenance.WindowKind.WEEKLY, "timezone": "Asia/Jakarta"}
    base.update(kw)
    return maintenance.Window(**base)


def jkt(y: int, mo: int, d: int, h: int, mi: int) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=JKT).timestamp()


def test_weekly_window_crossing_midnight_in_local_time() -> None:
    from datetime import time as dtime

    # Saturday 22:00 - 02:00 WIB (2027-01-16 is a Saturday)
    w = _window(weekdays=(5,), start_time=dtime(22, 0), end_time=dtime(2, 0))
    assert not w.active(jkt(2027, 1, 16, 21, 59))
    assert w.active(jkt(2027, 1, 16, 22, 0))
    assert w.active(jkt(2027, 1, 17, 1, 59))       # Sunday early hours
    assert not w.active(jkt(2027, 1, 17, 2, 0))
    assert not w.active(jkt(2027, 1, 17, 22, 30))  # Sunday evening is not listed
    assert not w.active(jkt(2027, 1, 16, 0, 30))   # Saturday early: Friday was not listed
    assert w.next_start(jkt(2027, 1, 17, 3, 0)) == jkt(2027, 1, 23, 22, 0)
    # the same wall-clock window in another zone is another instant
    wita = _window(weekdays=(5,), start_time=dtime(22, 0), end_time=dtime(2, 0),
                   timezone="Asia/Makassar")
    assert wita.active(jkt(2027, 1, 16, 21, 0)) and not wita.active(jkt(2027, 1, 17, 1, 30))
    assert w.active(jkt(2027, 1, 17, 1, 30)) and not w.active(jkt(2027, 1, 16, 21, 0))
    # daytime window on weekdays, bounded by valid_until
    day = _window(weekdays=(0, 1, 2, 3, 4), start_time=dtime(12, 0), end_time=dtime(13, 0),
                  valid_until=jkt(2027, 1, 20, 0, 0))
    assert day.active(jkt(2027, 1, 18, 12, 30)) and not day.active(jkt(2027, 1, 16, 12, 30))
    assert not day.active(jkt(2027, 1, 20, 12, 30))


def test_window_scopes_match_their_subjects() -> None:
    s = Subject("DINKES", agent="dinkes-gw", device="dinkes-sw1", target="svc")
    assert _window(scope=maintenance.Scope.ALL, pd_code=None).matches(Subject("X"))
    assert _window(scope=maintenance.Scope.PD).matches(s)
    assert not _window(scope=maintenance.Scope.PD, pd_code="BAPPEDA").matches(s)
    assert _window(scope=maintenance.Scope.TARGET, subject="sv*").matches(s)
    assert not _window(scope=maintenance.Scope.TARGET, subject="web").matches(s)
    assert _window(scope=maintenance.Scope.DEVICE, subject="dinkes-sw1").matches(s)
    assert not _window(scope=maintenance.Scope.DEVICE, subject="dinkes-sw1").matches(
        Subject("DINKES", target="svc"))
    assert _window(scope=maintenance.Scope.AGENT, subject="dinkes-gw").matches(s)


# --- other sources ---------------------------------------------------------------------------

def test_agent_silent_alerts_and_clears(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg(conditions={}))
    world.report("dinkes-gw", T0, Heartbeat(observed_at=dt(T0), agent_version="t",
                                            uptime_s=1.0))
    assert eng.evaluate(T0 + 179).raised == 0
    assert eng.evaluate(T0 + 181).raised == 1
    [a] = all_alerts(store)
    assert (a.condition, a.subject, a.since, a.tier) == ("agent_silent", "dinkes-gw", T0, 1)
    assert "Agen dinkes-gw tidak mengirim laporan" in notes(store)[0].title
    world.report("dinkes-gw", T0 + 300, Heartbeat(observed_at=dt(T0 + 300), agent_version="t",
                                                  uptime_s=1.0))
    assert eng.evaluate(T0 + 301).resolved == 1


def device(t: float, status: PollStatus, interfaces: list[DeviceInterface] | None = None,
           name: str = "dinkes-sw1") -> DeviceObservation:
    return DeviceObservation(observed_at=dt(t), device=name, mgmt_address="10.20.0.2",
                             driver="snmp", status=status, interfaces=interfaces or [],
                             error="timeout" if status is PollStatus.FAILED else None,
                             error_type="timeout" if status is PollStatus.FAILED else None)


def test_device_poll_failure_and_link_down(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg())
    ifs = [DeviceInterface(name="Gi0/1", description="UPLINK-RTR", admin_up=True, oper_up=False),
           DeviceInterface(name="Gi0/2", description="", admin_up=True, oper_up=False),
           DeviceInterface(name="Gi0/3", description="PC-01", admin_up=False, oper_up=False)]
    world.report("dinkes-gw", T0, device(T0, PollStatus.OK, ifs))
    world.report("dinkes-gw", T0, device(T0, PollStatus.FAILED, name="dinkes-ap1"))
    assert eng.evaluate(T0 + 1).raised == 0          # hold-down starts when first seen
    assert eng.evaluate(T0 + 62).raised == 2
    by_cond = {a.condition: a for a in all_alerts(store)}
    assert by_cond["link_down"].subject == "dinkes-sw1:Gi0/1"   # labelled, admin up, oper down
    assert by_cond["device_poll_failed"].subject == "dinkes-ap1"
    assert by_cond["device_poll_failed"].since == T0 + 1
    # the AP answers again, the link comes back
    world.report("dinkes-gw", T0 + 100, device(T0 + 100, PollStatus.OK, name="dinkes-ap1"))
    ifs[0] = DeviceInterface(name="Gi0/1", description="UPLINK-RTR", admin_up=True, oper_up=True)
    world.report("dinkes-gw", T0 + 100, device(T0 + 100, PollStatus.OK, ifs))
    assert eng.evaluate(T0 + 101).resolved == 2


def test_unacknowledged_topology_changes_one_alert_per_pd(store: Store, world: World) -> None:
    eng = AlertEngine(store, make_cfg(conditions={"topology_change": {"severity": "minor"}}))
    pd_id = world.agents["dinkes-gw"].pd_id
    with store.tx() as c:
        base = c.execute(insert(topology_baselines).values(
            pd_id=pd_id, approved_at=T0 - 100, approved_by="eng", graph={})).inserted_primary_key
        assert base is not None
        for i in range(3):
            c.execute(insert(topology_changes).values(
                pd_id=pd_id, baseline_id=base[0], change_type="device_added",
                change_key=f"dev{i}", open_key=f"dev{i}", summary=f"perangkat baru dev{i}",
                detail={}, evidence={}, first_seen=T0 + i, last_seen=T0 + i, report_id="r",
                status="open", acknowledged=False))
    assert eng.evaluate(T0 + 10).raised == 1
    [a] = all_alerts(store)
    assert (a.condition, a.subject, a.severity, a.details["changes"]) == (
        "topology_change", "DINKES", "minor", 3)
    assert "3 perubahan topologi LAN belum dikonfirmasi" in notes(store)[0].title
    with store.tx() as c:
        c.execute(update(topology_changes).values(acknowledged=True))
    assert eng.evaluate(T0 + 20).resolved == 1


def test_failing_source_leaves_its_alerts_open(store: Store, world: World) -> None:
    class Broken:
        name = "probe_down"
        conditions: tuple[Condition, ...] = (Condition.PROBE_DOWN,)

        def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
            raise RuntimeError("boom")

    world.probe(T0, "svc", False)
    AlertEngine(store, make_cfg()).evaluate(T0 + 61)
    stats = AlertEngine(store, make_cfg(), sources=[Broken()]).evaluate(T0 + 100)
    assert stats.errors == ["probe_down: RuntimeError: boom"] and stats.resolved == 0
    assert all_alerts(store)[0].status == "open"


# --- digest, messages, config ------------------------------------------------------------------

def test_daily_digest_once_per_day_per_recipient(store: Store, world: World) -> None:
    cfg = make_cfg(digest={"enabled": True, "local_time": "07:00"})
    eng = AlertEngine(store, cfg)
    world.probe(T0, "svc", False)
    eng.evaluate(T0 + 61)
    assert digest.maybe_queue(store, cfg, T0 + 100) == 0        # first start: records the day
    next_morning = jkt(2027, 1, 16, 7, 0)
    assert digest.maybe_queue(store, cfg, next_morning - 1) == 0
    assert digest.maybe_queue(store, cfg, next_morning + 1) == 2   # tier 1 + tier 2, by email
    assert digest.maybe_queue(store, cfg, next_morning + 3600) == 0
    d = notes(store, Event.DIGEST)
    assert recipients(d) == {("email", "it@dinkes.test"), ("email", "noc@kominfo.test")}
    assert d[0].title == "Ringkasan harian peringatan SPBE Monitor (DINKES) 16-01-2027"
    assert "Peringatan baru: 1 | masih terbuka: 1 | pulih: 0" in d[0].body
    assert "Target svc" in d[0].body


def test_digest_shared_contact_gets_one_digest_covering_all_its_groups(
        store: Store, world: World) -> None:
    """One address in several recipient groups (a technician serving two PDs, also listed in
    Tier 2 on another channel entry) gets exactly one digest, and the digest still goes out."""
    shared = {"name": "Teknisi Bersama", "email": "shared@kominfo.test"}
    cfg = make_cfg(
        digest={"enabled": True, "local_time": "07:00"},
        tier1={"DINKES": [shared, {"name": "Teknisi Dinkes", "email": "it@dinkes.test"}],
               "BAPPEDA": [{**shared, "name": "Teknisi Bappeda"}]},
        tier2=[{"name": "NOC Diskominfo", "email": "noc@kominfo.test"},
               {"name": "Kabid TIK", "email": "it@dinkes.test", "language": "en"}])
    eng = AlertEngine(store, cfg)
    world.probe(T0, "svc", False)
    world.probe(T0, "web", False, agent="bappeda-gw")
    eng.evaluate(T0 + 61)
    assert digest.maybe_queue(store, cfg, T0 + 100) == 0
    morning = jkt(2027, 1, 16, 7, 0)
    assert digest.maybe_queue(store, cfg, morning + 1) == 3
    assert digest.maybe_queue(store, cfg, morning + 60) == 0
    d = {n.recipient: n for n in notes(store, Event.DIGEST)}
    assert sorted(d) == ["it@dinkes.test", "noc@kominfo.test", "shared@kominfo.test"]
    assert len(notes(store, Event.DIGEST)) == 3           # exactly one each
    both = d["shared@kominfo.test"]                        # the two PDs' alerts in one digest
    assert both.title == "Ringkasan harian peringatan SPBE Monitor (DINKES, BAPPEDA) 16-01-2027"
    assert "Target svc" in both.body and "Target web" in both.body
    assert both.payload["scope"] == "DINKES, BAPPEDA" and len(both.payload["alerts"]) == 2
    tier2 = d["it@dinkes.test"]                            # Tier 1 and Tier 2: the wider one
    assert (tier2.tier, tier2.payload["scope"]) == (2, "Tier 2")
    assert "Target web" in tier2.body and len(tier2.payload["alerts"]) == 2
    assert tier2.language == "id"                          # its first listing decides


def test_digest_insert_is_idempotent(store: Store, world: World) -> None:
    """A day queued twice (e.g. the claim row was lost) adds no second digest, no error."""
    cfg = make_cfg(digest={"enabled": True, "local_time": "07:00"})
    digest.maybe_queue(store, cfg, T0)
    morning = jkt(2027, 1, 16, 7, 0)
    assert digest.maybe_queue(store, cfg, morning + 1) == 2
    with store.tx() as c:                                   # the day claim is rolled back
        c.execute(update(alert_meta).values(value="2027-01-15"))
    digest.maybe_queue(store, cfg, morning + 2)
    assert len(notes(store, Event.DIGEST)) == 2


def test_violation_message_cites_the_regional_article() -> None:
    a = AlertInfo(id=7, condition=Condition.VIOLATION, subject_kind=SubjectKind.VIOLATION,
                  subject="BAK-1:simpeg-db", pd_code="DINKES", pd_name="Dinas Kesehatan",
                  zone=Zone.LAN, tier=1, severity=Severity.MAJOR, status=Status.OPEN,
                  since=T0, raised_at=T0 + 5,
                  details={"obligation": "BAK-1", "summary": "backup simpeg-db terlambat",
                           "citation": "Pasal 17 ayat (1) Perbup Lebak 24/2024"})
    r = messages.render(Event.RAISE, a, "id", JKT, now=T0 + 5, escalate_after_s=900,
                        flap_window_s=600)
    assert r.title == "[MAYOR] DINKES: Pelanggaran BAK-1: backup simpeg-db terlambat"
    assert "Dasar hukum: Pasal 17 ayat (1) Perbup Lebak 24/2024 (BAK-1)" in r.body
    en = messages.render(Event.RECOVER, a, "en", JKT, now=T0 + 3700, escalate_after_s=900,
                         flap_window_s=600)
    assert en.title.startswith("[RECOVERED] [MAJOR] DINKES: Violation BAK-1")
    assert "Legal basis: Pasal 17 ayat (1) Perbup Lebak 24/2024 (BAK-1)" in en.body
    assert "Outage duration: 1 h 1 min" in en.body


def test_config_errors_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"has a whatsapp address but channels.whatsapp"):
        make_cfg(tier2=[{"name": "NOC", "whatsapp": "+628123456789"}])
    with pytest.raises(ValidationError, match="unknown time zone 'Asia/Jakartaa'"):
        make_cfg(timezone="Asia/Jakartaa")
    with pytest.raises(ValidationError, match="has no address"):
        make_cfg(tier2=[{"name": "NOC"}])
    with pytest.raises(ValidationError, match="plain http:// is refused"):
        make_cfg(channels={"telegram": {"api_base": "http://api.example.test",
                                        "bot_token": {"env": "X"}}})
    path = tmp_path / "collector.yaml"
    path.write_text("alerts:\n  channels:\n    telegram:\n      bot_token: 123456:ABCDEF\n")
    with pytest.raises(ConfigError) as e:
        load_config(CollectorConfig, path, "SPBE_TEST_NONE_")
    assert "alerts.channels.telegram.bot_token" in str(e.value)
    assert "ABCDEF" not in str(e.value)        # the inline secret is never echoed
    assert CollectorConfig().alerts.enabled      # embedded defaults work with no section
