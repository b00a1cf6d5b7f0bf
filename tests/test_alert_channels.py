"""Notification channels against real local servers: an SMTP server (aiosmtpd) with STARTTLS
(trustme certificate) and AUTH LOGIN/PLAIN, a local server speaking the Telegram Bot API's
``sendMessage`` contract, webhook receivers that verify the HMAC signature (one failing with
500 first), a WhatsApp gateway; and the durable queue's retries and isolation."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import itertools
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select
from sqlalchemy.engine import Connection

from collector.alerts.channels import DeliveryError, Message
from collector.alerts.channels.email import EmailChannel
from collector.alerts.channels.telegram import TelegramChannel
from collector.alerts.channels.webhook import WebhookChannel
from collector.alerts.channels.whatsapp import WhatsAppChannel
from collector.alerts.config import (
    AlertsCfg,
    Condition,
    EmailCfg,
    TelegramCfg,
    WebhookCfg,
    WhatsAppCfg,
    Zone,
)
from collector.alerts.delivery import Dispatcher
from collector.alerts.engine import AlertEngine
from collector.alerts.model import Finding, Subject, SubjectKind
from collector.alerts.sources import Context
from collector.db import make_engine, migrate
from collector.db_alerts import alert_events, alert_notifications, alerts
from collector.store import Store
from tests.servers import free_port

pytestmark = pytest.mark.integration

SMTP_USER, SMTP_PASSWORD = "spbe-alert", "smtp-Pa55-word"
BOT_TOKEN = "123456:TEST-bot-token-ABCdef"
WEBHOOK_SECRET = "hook-secret-0123456789"
WA_TOKEN = "wa-gateway-token-xyz"


def secret_file(directory: Path, name: str, value: str) -> Path:
    p = directory / name
    p.write_text(value + "\n")
    p.chmod(0o600)
    return p


# --- SMTP -------------------------------------------------------------------------------------

@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None
    mechanism: str | None


class SmtpServer:
    """A real SMTP server on 127.0.0.1: STARTTLS required, AUTH required after TLS."""

    def __init__(self, ca: trustme.CA, *, exclude: tuple[str, ...] = (),
                 tls: bool = True) -> None:
        self.mails: list[Mail] = []
        self.port = free_port()
        ctx = None
        if tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        self._auth: dict[int, tuple[str, str]] = {}
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=ctx,
            require_starttls=tls, auth_required=True, auth_require_tls=tls,
            authenticator=self._authenticate, auth_exclude_mechanism=list(exclude))

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
                and auth_data.password.decode() == SMTP_PASSWORD:
            self._auth[id(session)] = (SMTP_USER, mechanism)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login, mech = self._auth.get(id(session), (None, None))
        self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos),
                               msg, login, mech))
        return "250 OK"

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("alert-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def email_cfg(port: int, ca_file: Path | None, password_file: Path, **kw: Any) -> EmailCfg:
    return EmailCfg.model_validate({
        "host": "127.0.0.1", "port": port, "security": "starttls", "username": SMTP_USER,
        "password": {"file": str(password_file)}, "from_addr": "spbe-monitor@kominfo.test",
        "ca_file": str(ca_file) if ca_file else None, "timeout_s": 5, **kw})


MSG = Message(notification_id=42, event="raise",
              title="[MAYOR] DINKES: Target svc (10.1.2.3:443) tidak dapat dijangkau",
              body="Peringatan SPBE Monitor\n\nPerangkat Daerah: Dinas Kesehatan (DINKES)\n"
                   "Sejak: 15-01-2027 15:00:10 WIB — ID peringatan: #7",
              language="id", payload={"id": 7, "pd": "DINKES", "condition": "probe_down"})


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_email_over_starttls_with_auth(test_ca: tuple[trustme.CA, Path], tmp_path: Path,
                                       mechanism: str) -> None:
    ca, ca_file = test_ca
    other = "LOGIN" if mechanism == "PLAIN" else "PLAIN"
    with SmtpServer(ca, exclude=(other,)) as srv:
        ch = EmailChannel(email_cfg(srv.port, ca_file,
                                    secret_file(tmp_path, "smtp", SMTP_PASSWORD)))
        ch.send(MSG, "it@dinkes.test")
    [m] = srv.mails
    assert (m.mail_from, m.rcpt_tos, m.login, m.mechanism) == (
        "spbe-monitor@kominfo.test", ["it@dinkes.test"], SMTP_USER, mechanism)
    assert m.message["Subject"] == MSG.title
    assert m.message["To"] == "it@dinkes.test"
    assert m.message["X-SPBE-Notification"] == "42"
    body = m.message.get_content()
    assert "Dinas Kesehatan (DINKES)" in body and "— ID peringatan: #7" in body


def test_email_wrong_password_is_a_clear_error_without_the_secret(
        test_ca: tuple[trustme.CA, Path], tmp_path: Path) -> None:
    ca, ca_file = test_ca
    with SmtpServer(ca) as srv:
        ch = EmailChannel(email_cfg(srv.port, ca_file,
                                    secret_file(tmp_path, "smtp", "wrong-Pa55")))
        with pytest.raises(DeliveryError) as e:
            ch.send(MSG, "it@dinkes.test")
    assert str(e.value) == f"email: SMTP authentication as {SMTP_USER!r} failed (535)"
    assert "wrong-Pa55" not in str(e.value) and srv.mails == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_refuses_to_send_without_starttls_or_trust(test_ca: tuple[trustme.CA, Path],
                                                         tmp_path: Path) -> None:
    ca, ca_file = test_ca
    pw = secret_file(tmp_path, "smtp", SMTP_PASSWORD)
    with SmtpServer(ca, tls=False) as plain, \
            pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        EmailChannel(email_cfg(plain.port, ca_file, pw)).send(MSG, "it@dinkes.test")
    # a certificate the client does not trust
    with SmtpServer(ca) as srv, pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        EmailChannel(email_cfg(srv.port, None, pw)).send(MSG, "it@dinkes.test")
    assert plain.mails == [] and srv.mails == []


# --- HTTP receivers -----------------------------------------------------------------------------

@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, Any] | None]


class HttpServer:
    """A real HTTP server on 127.0.0.1 whose answers come from ``respond``."""

    def __init__(self, respond: Callable[[Request], Reply], delay_s: float = 0.0) -> None:
        self.requests: list[Request] = []
        self.respond, self.delay_s = respond, delay_s
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()},
                              self.rfile.read(n))
                with outer.lock:
                    outer.requests.append(req)
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                status, answer = outer.respond(req)
                data = json.dumps(answer).encode() if answer is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class TelegramApi(HttpServer):
    """The Bot API's sendMessage contract: POST /bot<token>/sendMessage with JSON
    {chat_id, text}, answering {"ok": true, "result": Message} or {"ok": false, ...}."""

    def __init__(self, token: str = BOT_TOKEN, known_chats: tuple[int, ...] = (1001, 2002)):
        self.token, self.known_chats = token, known_chats
        self.sent: list[dict[str, Any]] = []
        super().__init__(self._answer)

    def _answer(self, req: Request) -> Reply:
        if req.path != f"/bot{self.token}/sendMessage":
            return 401 if req.path.endswith("/sendMessage") else 404, {
                "ok": False, "error_code": 401, "description": "Unauthorized"}
        data = json.loads(req.body)
        if data.get("chat_id") not in self.known_chats or not data.get("text"):
            return 400, {"ok": False, "error_code": 400,
                         "description": "Bad Request: chat not found"}
        self.sent.append(data)
        return 200, {"ok": True, "result": {
            "message_id": len(self.sent), "date": int(time.time()), "text": data["text"],
            "chat": {"id": data["chat_id"], "type": "group"}}}


class WebhookReceiver(HttpServer):
    """Verifies X-SPBE-Signature (HMAC-SHA256 of the body) and X-SPBE-Timestamp; answers 500
    to the first ``fail_first`` valid requests."""

    def __init__(self, secret: str = WEBHOOK_SECRET, fail_first: int = 0,
                 delay_s: float = 0.0) -> None:
        self.secret, self.fail_first = secret, fail_first
        self.accepted: list[dict[str, Any]] = []
        self.bad_signatures = 0
        super().__init__(self._answer, delay_s)

    def _answer(self, req: Request) -> Reply:
        expected = "sha256=" + hmac.new(self.secret.encode(), req.body,
                                        hashlib.sha256).hexdigest()
        ts = req.headers.get("x-spbe-timestamp", "")
        if not hmac.compare_digest(req.headers.get("x-spbe-signature", ""), expected) \
                or not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            self.bad_signatures += 1
            return 401, {"error": "bad signature"}
        body = json.loads(req.body)
        if body["sent_at"] != int(ts):
            return 400, {"error": "timestamp mismatch"}
        if self.fail_first > 0:
            self.fail_first -= 1
            return 500, {"error": "temporarily broken"}
        self.accepted.append(body)
        return 200, {"ok": True}


class WhatsAppGateway(HttpServer):
    def __init__(self, token: str = WA_TOKEN) -> None:
        self.token = token
        self.sent: list[dict[str, Any]] = []
        super().__init__(self._answer)

    def _answer(self, req: Request) -> Reply:
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"status": False, "reason": "invalid token"}
        data = json.loads(req.body)
        self.sent.append(data)
        return 200, {"status": True, "id": len(self.sent)}


def test_telegram_send_message(tmp_path: Path) -> None:
    token_file = secret_file(tmp_path, "bot", BOT_TOKEN)
    with TelegramApi() as api:
        ch = TelegramChannel(TelegramCfg.model_validate(
            {"api_base": api.url, "bot_token": {"file": str(token_file)}, "timeout_s": 5}))
        ch.send(MSG, "1001")
        [sent] = api.sent
        assert sent["chat_id"] == 1001
        assert sent["text"].startswith(MSG.title + "\n\n") and "DINKES" in sent["text"]
        with pytest.raises(DeliveryError, match="chat not found") as e:
            ch.send(MSG, "999")
        assert e.value.permanent
        token_file.write_text("123456:WRONG-token")   # read at each send
        with pytest.raises(DeliveryError, match="HTTP 401") as e:
            ch.send(MSG, "1001")
        assert not e.value.permanent and "WRONG-token" not in str(e.value)
        assert BOT_TOKEN not in str(e.value)


def test_telegram_missing_secret_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPBE_TEST_NO_SUCH_TOKEN", raising=False)
    ch = TelegramChannel(TelegramCfg.model_validate(
        {"api_base": "http://127.0.0.1:9", "bot_token": {"env": "SPBE_TEST_NO_SUCH_TOKEN"}}))
    with pytest.raises(DeliveryError, match="SPBE_TEST_NO_SUCH_TOKEN is not set"):
        ch.send(MSG, "1001")


def test_webhook_is_signed_with_hmac_sha256(tmp_path: Path) -> None:
    cfg = WebhookCfg.model_validate({"secret": {"file": str(
        secret_file(tmp_path, "hook", WEBHOOK_SECRET))}, "timeout_s": 5})
    with WebhookReceiver() as rx:
        WebhookChannel(cfg).send(MSG, f"{rx.url}/hooks/spbe?x=1")
        with WebhookReceiver(secret="another-secret") as wrong, \
                pytest.raises(DeliveryError, match="HTTP 401") as e:
            WebhookChannel(cfg).send(MSG, f"{wrong.url}/hook")
    assert e.value.permanent and WEBHOOK_SECRET not in str(e.value)
    [body] = rx.accepted
    assert rx.requests[0].path == "/hooks/spbe?x=1"
    assert rx.requests[0].headers["x-spbe-event"] == "raise"
    assert rx.requests[0].headers["x-spbe-delivery"] == "42"
    assert body["alert"] == MSG.payload and body["title"] == MSG.title
    assert body["text"] == MSG.body and body["event"] == "raise"


def test_whatsapp_gateway(tmp_path: Path) -> None:
    cfg = WhatsAppCfg.model_validate({"token": {"file": str(secret_file(tmp_path, "wa", WA_TOKEN))},
                                      "gateway_url": "http://127.0.0.1:1/send", "timeout_s": 5})
    with WhatsAppGateway() as gw:
        cfg = cfg.model_copy(update={"gateway_url": f"{gw.url}/send"})
        WhatsAppChannel(cfg).send(MSG, "+6281234567890")
        [sent] = gw.sent
        assert sent["to"] == "6281234567890" and sent["message"].startswith(MSG.title)
    with WhatsAppGateway(token="other") as gw:
        cfg = cfg.model_copy(update={"gateway_url": f"{gw.url}/send"})
        with pytest.raises(DeliveryError, match="HTTP 401") as e:
            WhatsAppChannel(cfg).send(MSG, "+6281234567890")
        assert WA_TOKEN not in str(e.value)


# --- the durable queue ---------------------------------------------------------------------------

class OneFault:
    """A source with one fixed finding, so tests of delivery need no agent."""

    name = "probe_down"
    conditions: tuple[Condition, ...] = (Condition.PROBE_DOWN,)

    def findings(self, conn: Connection, ctx: Context) -> list[Finding]:
        return [Finding(condition=Condition.PROBE_DOWN, subject_kind=SubjectKind.TARGET,
                        subject_ref="1", subject="svc", pd_id=1,
                        subject_names=Subject("DINKES", agent="dinkes-gw", target="svc"),
                        zone=Zone.LAN, since=ctx.now - 1000, details={"address": "10.1.2.3:443"})]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    eng = make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
    migrate(eng)
    s = Store(eng)
    s.add_pd("DINKES", "Dinas Kesehatan")
    yield s
    s.close()
    eng.dispose()


def run_workers(d: Dispatcher) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    t = threading.Thread(target=d.run, args=(stop,), daemon=True)
    t.start()
    return stop, t


def wait(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if v := check():
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_failed_webhook_is_retried_with_backoff(store: Store, tmp_path: Path) -> None:
    with WebhookReceiver(fail_first=2) as rx:
        cfg = AlertsCfg.model_validate({
            "tier1": {"DINKES": [{"name": "Hook", "webhook": f"{rx.url}/hook"}]},
            "channels": {"webhook": {"secret": {"file": str(
                secret_file(tmp_path, "hook", WEBHOOK_SECRET))}, "timeout_s": 5}},
            "delivery": {"backoff_initial_s": 0.3, "poll_interval_s": 0.1, "workers": 1},
            "digest": {"enabled": False}})
        eng = AlertEngine(store, cfg, sources=[OneFault()])
        d = Dispatcher(store, cfg, wake=eng.wake)
        stop, t = run_workers(d)
        try:
            t0 = time.time()
            eng.evaluate(t0)
            wait(lambda: rx.accepted, 15, "the webhook to be accepted")
        finally:
            stop.set()
            t.join(10)
    assert len(rx.requests) == 3 and len(rx.accepted) == 1 and rx.bad_signatures == 0
    # every attempt carried the same delivery id (receivers can deduplicate)
    assert len({r.headers["x-spbe-delivery"] for r in rx.requests}) == 1
    [n] = store.rows(select(alert_notifications))
    assert (n.status, n.attempts, n.last_error) == ("sent", 3, None)
    hist = store.rows(select(alert_events).where(alert_events.c.event != "raised")
                      .order_by(alert_events.c.id))
    assert [(h.event, h.attempt, h.ok) for h in hist] == [
        ("notify_failed", 1, False), ("notify_failed", 2, False), ("notified", 3, True)]
    assert "HTTP 500" in (hist[0].detail or "")
    assert hist[0].recipient == f"{rx.url}/..."          # URLs may carry secrets: shortened
    gaps = [b.at - a.at for a, b in itertools.pairwise(hist)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6              # exponential back-off
    [a] = store.rows(select(alerts))
    assert a.first_notified_at == hist[2].at and a.first_notified_at - a.raised_at >= 0.9


def hook_and_mail(tmp_path: Path, smtp: SmtpServer, ca_file: Path,
                  hook_timeout_s: float) -> dict[str, Any]:
    """Channel config: the signed webhook (with its timeout) and email to the test SMTP."""
    return {"webhook": {"secret": {"file": str(secret_file(tmp_path, "h", WEBHOOK_SECRET))},
                        "timeout_s": hook_timeout_s},
            "email": email_cfg(smtp.port, ca_file,
                               secret_file(tmp_path, "smtp", SMTP_PASSWORD)).model_dump()}


def test_a_hanging_channel_blocks_nothing_else(store: Store, tmp_path: Path,
                                               test_ca: tuple[trustme.CA, Path]) -> None:
    ca, ca_file = test_ca
    with WebhookReceiver(delay_s=3) as slow, SmtpServer(ca) as smtp, TelegramApi() as tg:
        cfg = AlertsCfg.model_validate({
            "tier1": {"DINKES": [{"name": "Hook", "webhook": f"{slow.url}/hook"},
                                 {"name": "Teknisi", "email": "it@dinkes.test",
                                  "telegram_chat_id": "1001"}]},
            "channels": {
                **hook_and_mail(tmp_path, smtp, ca_file, hook_timeout_s=1),
                "telegram": {"api_base": tg.url, "bot_token": {"file": str(
                    secret_file(tmp_path, "bot", BOT_TOKEN))}}},
            "delivery": {"backoff_initial_s": 60, "poll_interval_s": 0.1, "workers": 2},
            "digest": {"enabled": False}})
        eng = AlertEngine(store, cfg, sources=[OneFault()])
        d = Dispatcher(store, cfg, wake=eng.wake)
        stop, t = run_workers(d)
        try:
            t0 = time.monotonic()
            eng.evaluate()
            wait(lambda: smtp.mails and tg.sent, 10, "email and telegram")
            fast = time.monotonic() - t0
            wait(lambda: store.rows(select(alert_notifications).where(
                alert_notifications.c.last_error.is_not(None))), 10, "the webhook timeout")
        finally:
            stop.set()
            t.join(10)
    assert fast < 2.5, f"email/telegram took {fast:.1f} s behind a hanging webhook"
    rows = {r.channel: r for r in store.rows(select(alert_notifications))}
    assert rows["email"].status == rows["telegram"].status == "sent"
    assert (rows["webhook"].status, rows["webhook"].attempts) == ("pending", 1)
    assert rows["webhook"].last_error == "webhook 127.0.0.1:" + slow.url.rsplit(":", 1)[1] \
        + ": timed out after 1 s"


def test_a_dead_channel_holds_at_most_its_share_of_workers(
        store: Store, tmp_path: Path, test_ca: tuple[trustme.CA, Path]) -> None:
    """Three messages to a webhook that never answers in time, then one email, two workers:
    the webhook may hold one worker (delivery.max_per_channel defaults to half), so the email
    goes out at once instead of after the webhook timeouts."""
    ca, ca_file = test_ca
    with WebhookReceiver(delay_s=6) as dead, SmtpServer(ca) as smtp:
        cfg = AlertsCfg.model_validate({
            "tier1": {"DINKES": [*({"name": f"Hook {i}", "webhook": f"{dead.url}/hook{i}"}
                                   for i in range(3)),
                                 {"name": "Teknisi", "email": "it@dinkes.test"}]},
            "channels": hook_and_mail(tmp_path, smtp, ca_file, hook_timeout_s=4),
            "delivery": {"backoff_initial_s": 60, "poll_interval_s": 0.1, "workers": 2},
            "digest": {"enabled": False}})
        assert cfg.delivery.channel_limit() == 1
        eng = AlertEngine(store, cfg, sources=[OneFault()])
        d = Dispatcher(store, cfg, wake=eng.wake)
        stop, t = run_workers(d)
        try:
            t0 = time.monotonic()
            eng.evaluate()
            wait(lambda: smtp.mails, 15, "the email")
            fast = time.monotonic() - t0
        finally:
            stop.set()
            t.join(15)
    assert fast < 3.0, f"the email took {fast:.1f} s behind a dead webhook"
    assert len(dead.requests) <= 2   # never two webhook sends at once within 3 s
