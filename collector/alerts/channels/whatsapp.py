"""WhatsApp through a configurable gateway webhook (a self-hosted gateway or a local provider):
``POST gateway_url`` with ``{to_field: number, text_field: text}`` and the token in
``auth_header``. A 2xx answer whose JSON says ``"ok": false`` or ``"status": false`` is a
failure too (gateways report refusals that way)."""

from __future__ import annotations

import json

from collector.alerts.channels import DeliveryError, Message, _http, redact, register
from collector.alerts.config import ChannelName, WhatsAppCfg
from contract.configfile import ConfigError

MAX_TEXT = 4000


@register(ChannelName.WHATSAPP)
class WhatsAppChannel:
    name = ChannelName.WHATSAPP

    def __init__(self, cfg: WhatsAppCfg) -> None:
        self.cfg = cfg

    def send(self, msg: Message, recipient: str) -> None:
        cfg = self.cfg
        try:
            token = cfg.token.value("WhatsApp gateway token")
        except ConfigError as e:
            raise DeliveryError(f"whatsapp: {e}") from e
        body = json.dumps({cfg.to_field: recipient.lstrip("+"),
                           cfg.text_field: msg.text(MAX_TEXT)}, ensure_ascii=False).encode()
        auth = f"{cfg.auth_scheme} {token}" if cfg.auth_scheme else token
        r = _http.post(str(cfg.gateway_url), body, {cfg.auth_header: auth},
                       timeout_s=cfg.timeout_s, ca_file=cfg.ca_file, what="whatsapp gateway",
                       secrets=(token,))
        try:
            answer = r.json()
        except ValueError:
            return  # a 2xx without JSON: accepted
        if isinstance(answer, dict) and (answer.get("ok") is False
                                         or answer.get("status") is False):
            reason = answer.get("reason") or answer.get("message") or answer.get("detail")
            raise DeliveryError(redact(f"whatsapp gateway refused the message: {reason}", token))
