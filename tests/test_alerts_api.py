"""``/api/v1/alerts`` by role, on the real collector app (FastAPI TestClient over the app that
``collector.app.create_app`` builds) with a real SQLite store: alerts raised by the real engine
from reports through the real ingest, and their messages delivered by the real dispatcher to a
real SMTP server (aiosmtpd, STARTTLS + AUTH), a local Telegram Bot API and a WhatsApp gateway.

A pd-viewer key is its PD's Tier 1 service desk: it acknowledges its PD's LAN faults (routed to
Tier 1), not the Dinas's WAN / intranet / Pusat Data alerts (Tier 2), and it never sees the
Tier 2 team's addresses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from fastapi.testclient import TestClient

from collector.alerts.delivery import Dispatcher
from collector.alerts.engine import AlertEngine
from collector.app import create_app
from collector.config import CollectorConfig
from collector.store import Role, Store
from tests.test_alert_channels import (
    BOT_TOKEN,
    SMTP_PASSWORD,
    SMTP_USER,
    WA_TOKEN,
    SmtpServer,
    TelegramApi,
    WhatsAppGateway,
    secret_file,
)
from tests.test_alerts_engine import T0, World

pytestmark = pytest.mark.integration

TIER1_MAIL, TIER1_CHAT = "it@dinkes.test", 1001
TIER2_MAIL, TIER2_CHAT, TIER2_WA = "noc@kominfo.test", -1009876543210, "+6281299887766"
TIER2_SECRETS = (TIER2_MAIL, str(TIER2_CHAT), TIER2_WA.lstrip("+"))


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("alert-api-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@dataclass
class Api:
    client: TestClient
    store: Store
    engine: AlertEngine
    dispatcher: Dispatcher
    world: World
    smtp: SmtpServer
    keys: dict[str, str]

    def call(self, method: str, path: str, who: str, **kw: Any) -> Any:
        return self.client.request(method, path, headers={"X-API-Key": self.keys[who]}, **kw)

    def alert(self, who: str, alert_id: int) -> dict[str, Any]:
        r = self.call("GET", f"/api/v1/alerts/{alert_id}", who)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def by_subject(self) -> dict[str, dict[str, Any]]:
        items = self.call("GET", "/api/v1/alerts", "engineer").json()["items"]
        return {a["subject"]: a for a in items}

    def deliver_all(self, now: float) -> None:
        while self.dispatcher.deliver_once(now):
            pass


@pytest.fixture
def api(tmp_path: Path, test_ca: tuple[trustme.CA, Path]) -> Iterator[Api]:
    ca, ca_file = test_ca
    with SmtpServer(ca) as smtp, TelegramApi(known_chats=(TIER1_CHAT, TIER2_CHAT)) as tg, \
            WhatsAppGateway() as wa:
        alerts_cfg: dict[str, Any] = {
            "hold_down_s": 60, "escalate_after_s": 900,
            "zones": {"targets": {"pusat-data*": "dc"}, "pds": {"KOMINFO": "dc"}},
            "tier1": {"DINKES": [{"name": "Teknisi Dinkes", "email": TIER1_MAIL,
                                  "telegram_chat_id": str(TIER1_CHAT)}]},
            "tier2": [{"name": "NOC Diskominfo", "email": TIER2_MAIL,
                       "telegram_chat_id": str(TIER2_CHAT), "whatsapp": TIER2_WA}],
            "channels": {
                "email": {"host": "127.0.0.1", "port": smtp.port, "security": "starttls",
                          "username": SMTP_USER,
                          "password": {"file": str(secret_file(tmp_path, "smtp",
                                                               SMTP_PASSWORD))},
                          "from_addr": "spbe-monitor@kominfo.test", "ca_file": str(ca_file),
                          "timeout_s": 5},
                "telegram": {"api_base": tg.url, "timeout_s": 5, "bot_token": {
                    "file": str(secret_file(tmp_path, "bot", BOT_TOKEN))}},
                "whatsapp": {"gateway_url": f"{wa.url}/send", "timeout_s": 5, "token": {
                    "file": str(secret_file(tmp_path, "wa", WA_TOKEN))}}},
            "digest": {"enabled": False},
            "conditions": {"agent_silent": {"enabled": False}}}
        cfg = CollectorConfig.model_validate({
            "database_url": f"sqlite:///{tmp_path / 'state.sqlite'}", "alerts": alerts_cfg})
        app = create_app(cfg, run_flusher=False)   # the test drives engine and delivery
        store: Store = app.state.store
        world = World(store)
        keys = {"engineer": store.add_api_key("noc-engineer", Role.ENGINEER, None),
                "admin": store.add_api_key("admin", Role.ADMIN, None),
                "viewer": store.add_api_key("dinkes-tier1", Role.PD_VIEWER, "DINKES"),
                "bappeda": store.add_api_key("bappeda-desk", Role.PD_VIEWER, "BAPPEDA")}
        with TestClient(app) as client:
            yield Api(client, store, AlertEngine(store, cfg.alerts),
                      Dispatcher(store, cfg.alerts), world, smtp, keys)


def raise_alerts(api: Api) -> dict[str, dict[str, Any]]:
    """DINKES: a Pusat Data service unreachable while its LAN is fine (Tier 2), then two LAN
    targets down (Tier 1); BAPPEDA (no Tier 1 contact): a LAN target down (Tier 2)."""
    w, eng = api.world, api.engine
    w.probe(T0, "svc", True)
    w.probe(T0, "pusat-data-app", False)
    eng.evaluate(T0 + 61)
    w.probe(T0 + 100, "svc", False)
    w.probe(T0 + 100, "printer", False)
    w.probe(T0 + 100, "web", False, agent="bappeda-gw")
    assert eng.evaluate(T0 + 161).raised == 3
    api.deliver_all(T0 + 200)
    alerts = api.by_subject()
    assert {s: (a["zone"], a["tier"]) for s, a in alerts.items()} == {
        "pusat-data-app": ("dc", 2), "svc": ("lan", 1), "printer": ("lan", 1),
        "web": ("lan", 2)}
    return alerts


def test_pd_viewer_acknowledges_only_its_tier1_alerts(api: Api) -> None:
    alerts = raise_alerts(api)
    dc, svc, printer = alerts["pusat-data-app"], alerts["svc"], alerts["printer"]

    # a Pusat Data fault is the Dinas's (Tier 2): the PD's desk may not take it
    r = api.call("POST", f"/api/v1/alerts/{dc['id']}/ack", "viewer",
                 json={"comment": "kami cek"})
    assert r.status_code == 403
    detail = r.json()["detail"]
    assert f"alert #{dc['id']} is a Tier 2 alert" in detail and "zone dc" in detail
    assert "engineer or admin" in detail
    assert api.alert("engineer", dc["id"])["status"] == "open"
    assert [h["event"] for h in api.alert("engineer", dc["id"])["history"]
            if h["event"] == "acknowledged"] == []
    # nor resolve anything
    assert api.call("POST", f"/api/v1/alerts/{dc['id']}/resolve",
                    "viewer").status_code == 403
    assert api.call("POST", f"/api/v1/alerts/{svc['id']}/resolve",
                    "viewer").status_code == 403

    # its own LAN fault (routed to its Tier 1): yes
    r = api.call("POST", f"/api/v1/alerts/{svc['id']}/ack", "viewer",
                 json={"comment": "switch lantai 2 dicek"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["acked_by"]) == ("acknowledged", "dinkes-tier1")

    # a LAN fault escalated to Tier 2 for want of an acknowledgement is still the PD's fault:
    # its desk may still take it (the escalation has happened, the Tier 2 team was told)
    assert api.engine.evaluate(T0 + 161 + 900).escalated == 1
    assert api.alert("engineer", printer["id"])["tier"] == 2
    r = api.call("POST", f"/api/v1/alerts/{printer['id']}/ack", "viewer")
    assert r.status_code == 200, r.text

    # a LAN fault of a PD without Tier 1 contacts went to Tier 2 directly: Tier 2's to take
    web = alerts["web"]
    r = api.call("POST", f"/api/v1/alerts/{web['id']}/ack", "bappeda")
    assert r.status_code == 403 and "Tier 2" in r.json()["detail"]
    # another PD's alert stays invisible
    assert api.call("POST", f"/api/v1/alerts/{web['id']}/ack", "viewer").status_code == 404

    # engineers and admins acknowledge any alert, as before
    assert api.call("POST", f"/api/v1/alerts/{dc['id']}/ack", "engineer").status_code == 200
    assert api.call("POST", f"/api/v1/alerts/{web['id']}/ack", "admin").status_code == 200
    assert api.call("POST", f"/api/v1/alerts/{web['id']}/resolve",
                    "engineer").status_code == 200


def test_pd_viewer_does_not_see_tier2_contact_details(api: Api) -> None:
    alerts = raise_alerts(api)
    dc, svc = alerts["pusat-data-app"], alerts["svc"]
    assert api.engine.evaluate(T0 + 161 + 900).escalated == 2   # svc and printer
    api.deliver_all(T0 + 2000)
    assert {rc for m in api.smtp.mails for rc in m.rcpt_tos} == {TIER1_MAIL, TIER2_MAIL}

    for alert in (dc, svc):
        # engineers see who was told, on which address
        full = api.alert("engineer", alert["id"])
        tier2 = [n for n in full["notifications"] if n["tier"] == 2]
        assert {n["recipient"] for n in tier2} == {TIER2_MAIL, str(TIER2_CHAT), TIER2_WA}
        assert all(n["status"] == "sent" for n in full["notifications"])
        assert any(h["recipient"] == TIER2_MAIL for h in full["history"])

        # the PD's desk sees that Tier 2 was told, and when, but not where
        seen = api.alert("viewer", alert["id"])
        text = json.dumps(seen)
        for secret in TIER2_SECRETS:
            assert secret not in text, (secret, text)
        tier2 = [n for n in seen["notifications"] if n["tier"] == 2]
        assert len(tier2) == 3
        assert all(n["recipient"] == "[redacted]" and n["status"] == "sent" and n["sent_at"]
                   and n["recipient_name"] == "NOC Diskominfo" for n in tier2)
        tier2_ids = {n["id"] for n in tier2}
        attempts = [h for h in seen["history"] if h["notification_id"] in tier2_ids]
        assert len(attempts) == 3
        assert all(h["recipient"] == "[redacted]" and h["detail"] == "[redacted]"
                   and h["ok"] for h in attempts)
        assert len(seen["history"]) == len(full["history"])

    # its own PD's Tier 1 contacts stay visible to it
    seen = api.alert("viewer", svc["id"])
    assert {n["recipient"] for n in seen["notifications"] if n["tier"] == 1} == {
        TIER1_MAIL, str(TIER1_CHAT)}
    assert any(h["recipient"] == TIER1_MAIL for h in seen["history"])
    # the acknowledge answer is the same redacted view
    r = api.call("POST", f"/api/v1/alerts/{svc['id']}/ack", "viewer")
    assert r.status_code == 200 and TIER2_MAIL not in r.text and TIER2_WA not in r.text
    # admins see everything, as engineers do
    assert TIER2_MAIL in json.dumps(api.alert("admin", svc["id"]))
