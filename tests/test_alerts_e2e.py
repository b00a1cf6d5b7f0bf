"""Alerts end to end: a real collector process and a real agent probing a local TCP service
that the test stops and restores, with a real SMTP server (STARTTLS + AUTH), a local Bot API
server for Telegram and an HMAC-verifying webhook receiver.

Timings are short on purpose: probes every 0.5 s, hold-down 1.5 s, escalation after 3 s."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.conftest import MakeAgent, MakeCollector
from tests.procs import Collector, wait_for
from tests.servers import free_port
from tests.test_alert_channels import (
    BOT_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_SECRET,
    SmtpServer,
    TelegramApi,
    WebhookReceiver,
    secret_file,
)

pytestmark = pytest.mark.integration

HOLD_DOWN_S = 1.5
ESCALATE_S = 3.0
TIER1_MAIL, TIER2_MAIL = "it@dinkes.test", "noc@kominfo.test"
TIER1_CHAT, TIER2_CHAT = 1001, 2002


class Service:
    """A TCP service on a fixed loopback port that can be stopped and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.1)
        self._sock, self._stop = s, threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(s, self._stop), daemon=True)
        self._thread.start()

    @staticmethod
    def _serve(s: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = s.accept()
                conn.close()
            except OSError:
                continue

    def stop(self) -> None:
        if self._sock is None:
            return
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)
        self._sock.close()
        self._sock = None


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service()
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("alert-e2e-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def subject_of(mail: Any) -> str:
    return str(mail.message["Subject"]).strip()   # a long Subject is folded after the colon


@dataclass
class Rig:
    collector: Collector
    smtp: SmtpServer
    telegram: TelegramApi
    webhook: WebhookReceiver
    engineer: str
    viewer: str

    def mails(self, rcpt: str, tag: str | None = None) -> list[Any]:
        return [m for m in self.smtp.mails if rcpt in m.rcpt_tos
                and (tag is None or subject_of(m).startswith(tag))]

    def chats(self, chat: int, tag: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.telegram.sent if m["chat_id"] == chat
                and (tag is None or m["text"].startswith(tag))]

    def hooks(self, event: str) -> list[dict[str, Any]]:
        return [b for b in self.webhook.accepted if b["event"] == event]

    def alerts(self, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.collector.get("/api/v1/alerts", self.engineer,
                                                         **params)["items"]
        return items

    def counts(self) -> dict[str, int]:
        return {"t1_mail": len(self.mails(TIER1_MAIL)), "t2_mail": len(self.mails(TIER2_MAIL)),
                "t1_chat": len(self.chats(TIER1_CHAT)), "t2_chat": len(self.chats(TIER2_CHAT)),
                "hooks": len(self.webhook.accepted)}


@pytest.fixture
def rig(make_collector: MakeCollector, make_agent: MakeAgent, service: Service,
        test_ca: tuple[trustme.CA, Path], tmp_path: Path,
        request: pytest.FixtureRequest) -> Iterator[Rig]:
    ca, ca_file = test_ca
    overrides: dict[str, Any] = getattr(request, "param", {})
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    with SmtpServer(ca) as smtp, TelegramApi() as tg, WebhookReceiver() as hook:
        alerts_cfg: dict[str, Any] = {
            "evaluate_interval_s": 0.3, "hold_down_s": HOLD_DOWN_S, "flap_window_s": 8,
            "flap_threshold": 3, "escalate_after_s": ESCALATE_S,
            "agent_report_interval_s": 0.5, "agent_silent_intervals": 40,
            "zones": {"targets": {"pusat-data*": "dc"}},
            "tier1": {"DINKES": [{"name": "Teknisi Dinkes", "email": TIER1_MAIL,
                                  "telegram_chat_id": str(TIER1_CHAT),
                                  "webhook": f"{hook.url}/spbe"}]},
            "tier2": [{"name": "NOC Diskominfo", "email": TIER2_MAIL,
                       "telegram_chat_id": str(TIER2_CHAT)}],
            "channels": {
                "email": {"host": "127.0.0.1", "port": smtp.port, "security": "starttls",
                          "username": SMTP_USER,
                          "password": {"file": str(secret_file(secrets, "smtp", SMTP_PASSWORD))},
                          "from_addr": "spbe-monitor@kominfo.test", "ca_file": str(ca_file),
                          "timeout_s": 5},
                "telegram": {"api_base": tg.url, "timeout_s": 5, "bot_token": {
                    "file": str(secret_file(secrets, "bot", BOT_TOKEN))}},
                "webhook": {"timeout_s": 5, "secret": {
                    "file": str(secret_file(secrets, "hook", WEBHOOK_SECRET))}}},
            "delivery": {"poll_interval_s": 0.2, "backoff_initial_s": 0.5, "workers": 2},
            "digest": {"enabled": False},
            **overrides}
        col = make_collector(extra={"alerts": alerts_cfg})
        col.add_pd("DINKES", "Dinas Kesehatan")
        token = col.add_agent("dinkes-gw", "DINKES")
        engineer = col.add_key("noc-engineer", "engineer")
        viewer = col.add_key("dinkes-tier1", "pd-viewer", "DINKES")
        col.start()
        agent = make_agent(col, "dinkes-gw", "DINKES", token,
                           intervals={"heartbeat_s": 0.5, "probes_s": 0.5, "host_facts_s": 60},
                           probes=[{"name": "svc", "type": "tcp", "host": "127.0.0.1",
                                    "port": service.port, "timeout_s": 0.5}])
        agent.start()
        r = Rig(col, smtp, tg, hook, engineer, viewer)
        wait_for(lambda: any(p["target"] == "svc" and p["state"] == "up" for p in
                             col.get("/api/v1/probes", engineer)["items"]), 30,
                 "the agent's first probe of svc")
        yield r
        agent.stop()
        col.stop()


def test_outage_alerts_tier1_escalates_and_recovers(rig: Rig, service: Service) -> None:
    t_down = time.time()
    service.stop()
    wait_for(lambda: rig.mails(TIER1_MAIL), 15, "the tier-1 email")
    delay = time.time() - t_down
    assert HOLD_DOWN_S - 0.2 <= delay <= HOLD_DOWN_S + 5, delay   # hold-down + detection
    wait_for(lambda: rig.chats(TIER1_CHAT) and rig.hooks("raise"), 5, "telegram and webhook")
    [mail] = rig.mails(TIER1_MAIL)
    subject = subject_of(mail)
    assert subject.startswith("[MAYOR] DINKES: Target svc (127.0.0.1:")
    assert "tidak dapat dijangkau" in subject
    body = mail.message.get_content()
    assert "Dinas Kesehatan (DINKES)" in body and "WIB" in body and "Tier 1" in body
    assert rig.chats(TIER1_CHAT)[0]["text"].startswith(subject)
    hook = rig.hooks("raise")[0]
    assert (hook["alert"]["pd"], hook["alert"]["subject"], hook["alert"]["tier"]) == (
        "DINKES", "svc", 1)
    assert rig.mails(TIER2_MAIL) == []       # a LAN fault is the PD's first

    # nobody acknowledges: Tier 2 is told
    wait_for(lambda: rig.mails(TIER2_MAIL, "[ESKALASI]") and rig.chats(TIER2_CHAT), 15,
             "the escalation to tier 2")
    [alert] = rig.alerts(pd="DINKES")
    assert alert["tier"] == 2 and alert["escalated_at"] - alert["raised_at"] >= ESCALATE_S

    service.start()
    wait_for(lambda: len(rig.mails(TIER1_MAIL, "[PULIH]")) == 1
             and len(rig.mails(TIER2_MAIL, "[PULIH]")) == 1 and rig.hooks("recover")
             and len(rig.chats(TIER2_CHAT)) == 2, 15, "recovery notices")
    time.sleep(2)   # nothing more arrives
    assert rig.counts() == {"t1_mail": 2, "t2_mail": 2, "t1_chat": 2, "t2_chat": 2,
                            "hooks": 2}
    assert rig.webhook.bad_signatures == 0

    [alert] = rig.alerts(pd="DINKES")
    assert alert["status"] == "resolved" and alert["resolution"] == "recovered"
    assert 0 <= alert["time_to_notify_s"] < 3          # INC-1: raise -> first notification
    assert alert["fault_to_notify_s"] >= HOLD_DOWN_S
    detail = rig.collector.get(f"/api/v1/alerts/{alert['id']}", rig.viewer)
    events = [h["event"] for h in detail["history"]]
    assert events[0] == "raised" and {"escalated", "resolved"} <= set(events)
    notified = [h for h in detail["history"] if h["event"] == "notified"]
    assert {(h["channel"], h["attempt"], h["ok"]) for h in notified} >= {
        ("email", 1, True), ("telegram", 1, True), ("webhook", 1, True)}
    assert len(notified) == 10          # 3 raise + 2 escalate + 5 recover
    assert all(n["status"] == "sent" for n in detail["notifications"])
    hooks = [n["recipient"] for n in detail["notifications"] if n["channel"] == "webhook"]
    assert hooks and all(h.endswith("/...") for h in hooks)   # URLs may carry tokens
    log = rig.collector.log.read_text(errors="replace")
    assert "alert #1 raised" in log
    for secret in (BOT_TOKEN, SMTP_PASSWORD, WEBHOOK_SECRET):
        assert secret not in log and secret not in str(detail)
    # filters
    assert rig.alerts(status="open") == [] and len(rig.alerts(severity="major")) == 1
    assert rig.alerts(since=time.time() + 10) == []


def test_maintenance_silences_and_ack_stops_escalation(rig: Rig, service: Service) -> None:
    col = rig.collector
    now = time.time()
    window = {"name": "ganti switch", "scope": "target", "pd": "DINKES", "subject": "svc",
              "kind": "once", "starts_at": _iso(now - 60), "ends_at": _iso(now + 3600),
              "reason": "penggantian switch lantai 2"}
    with col.client(rig.viewer) as c:
        assert c.post("/api/v1/maintenance", json=window).status_code == 403
    with col.client(rig.engineer) as c:
        bad = c.post("/api/v1/maintenance", json={**window, "ends_at": _iso(now - 120)})
        assert bad.status_code == 422 and "ends_at must be after starts_at" in bad.text
        r = c.post("/api/v1/maintenance", json=window)
        assert r.status_code == 201, r.text
        created = r.json()
    assert created["active_now"] is True and created["pd"] == "DINKES"
    listed = col.get("/api/v1/maintenance", rig.viewer, active="true")
    assert [w["id"] for w in listed["items"]] == [created["id"]]

    service.stop()
    time.sleep(HOLD_DOWN_S + 3.5)
    assert rig.counts() == {"t1_mail": 0, "t2_mail": 0, "t1_chat": 0, "t2_chat": 0, "hooks": 0}
    assert rig.alerts() == []

    with col.client(rig.engineer) as c:    # maintenance over: the fault is alerted
        assert c.delete(f"/api/v1/maintenance/{created['id']}").status_code == 204
        assert c.get(f"/api/v1/maintenance/{created['id']}").status_code == 404
    wait_for(lambda: rig.mails(TIER1_MAIL), 10, "the alert after the window")
    [alert] = rig.alerts()

    # the PD's Tier 1 acknowledges: no escalation
    with col.client(rig.viewer) as c:
        r = c.post(f"/api/v1/alerts/{alert['id']}/ack", json={"comment": "sedang dicek"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "acknowledged" and r.json()["acked_by"] == "dinkes-tier1"
        assert c.post(f"/api/v1/alerts/{alert['id']}/resolve").status_code == 403
    time.sleep(ESCALATE_S + 2)
    assert rig.mails(TIER2_MAIL) == [] and rig.chats(TIER2_CHAT) == []
    [alert] = rig.alerts()
    assert alert["status"] == "acknowledged" and alert["escalated_at"] is None
    assert alert["time_to_ack_s"] > 0

    service.start()
    wait_for(lambda: rig.mails(TIER1_MAIL, "[PULIH]"), 10, "the recovery notice")
    time.sleep(1)
    assert rig.counts() == {"t1_mail": 2, "t2_mail": 0, "t1_chat": 2, "t2_chat": 0, "hooks": 2}


@pytest.mark.parametrize("rig", [{"escalate_after_s": 120, "hold_down_s": 3}], indirect=True)
def test_flapping_service_is_no_alert_storm(rig: Rig, service: Service) -> None:
    for _ in range(6):
        service.stop()
        time.sleep(0.8)      # each outage well within the hold-down (3 s here)
        service.start()
        time.sleep(0.9)
    wait_for(lambda: rig.mails(TIER1_MAIL), 10, "the flapping alert")
    [alert] = rig.alerts()
    assert alert["flapping"] is True and alert["flap_count"] >= 3
    assert "flapping" in subject_of(rig.mails(TIER1_MAIL)[0])
    # stable again: one recovery once the flapping window (8 s) has passed
    wait_for(lambda: rig.mails(TIER1_MAIL, "[PULIH]"), 20, "the recovery")
    time.sleep(1)
    assert rig.counts() == {"t1_mail": 2, "t2_mail": 0, "t1_chat": 2, "t2_chat": 0, "hooks": 2}
    assert len(rig.alerts()) == 1


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat()
