"""Generic webhook: a JSON POST signed with HMAC-SHA256.

Headers: ``X-SPBE-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (key: the configured
secret), ``X-SPBE-Timestamp`` (epoch seconds; also ``sent_at`` inside the signed body, so a
receiver can refuse replays), ``X-SPBE-Event`` and ``X-SPBE-Delivery`` (the notification ID:
the same on every retry of one message, for idempotent receivers). Any 2xx is delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from collector.alerts.channels import DeliveryError, Message, _http, register
from collector.alerts.config import ChannelName, WebhookCfg
from contract.configfile import ConfigError

SIGNATURE_HEADER = "X-SPBE-Signature"
TIMESTAMP_HEADER = "X-SPBE-Timestamp"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@register(ChannelName.WEBHOOK)
class WebhookChannel:
    name = ChannelName.WEBHOOK

    def __init__(self, cfg: WebhookCfg) -> None:
        self.cfg = cfg

    def body(self, msg: Message, sent_at: int) -> bytes:
        return json.dumps({"event": msg.event, "delivery": msg.notification_id,
                           "sent_at": sent_at, "language": msg.language, "title": msg.title,
                           "text": msg.body, "alert": msg.payload},
                          ensure_ascii=False, separators=(",", ":")).encode()

    def send(self, msg: Message, recipient: str) -> None:
        try:
            secret = self.cfg.secret.value("webhook HMAC secret")
        except ConfigError as e:
            raise DeliveryError(f"webhook: {e}") from e
        sent_at = int(time.time())
        body = self.body(msg, sent_at)
        headers = {SIGNATURE_HEADER: sign(secret, body), TIMESTAMP_HEADER: str(sent_at),
                   "X-SPBE-Event": msg.event, "X-SPBE-Delivery": str(msg.notification_id)}
        host = recipient.split("://", 1)[-1].split("/", 1)[0]
        _http.post(recipient, body, headers, timeout_s=self.cfg.timeout_s,
                   ca_file=self.cfg.ca_file, what=f"webhook {host}", secrets=(secret, recipient))
