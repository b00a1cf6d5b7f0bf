"""Telegram Bot API ``sendMessage`` (the API base URL is configurable so tests and
self-hosted Bot API servers work). The bot token is part of the URL: it is read at each send
and redacted from every error."""

from __future__ import annotations

import json

from collector.alerts.channels import DeliveryError, Message, _http, redact, register
from collector.alerts.config import ChannelName, TelegramCfg
from contract.configfile import ConfigError

MAX_TEXT = 4096
# a wrong/rotated token (401) or API base (404) is fixed in the config: keep retrying until then
CONFIG_ERRORS = frozenset({401, 404})


@register(ChannelName.TELEGRAM)
class TelegramChannel:
    name = ChannelName.TELEGRAM

    def __init__(self, cfg: TelegramCfg) -> None:
        self.cfg = cfg

    def send(self, msg: Message, recipient: str) -> None:
        try:
            token = self.cfg.bot_token.value("Telegram bot token")
        except ConfigError as e:
            raise DeliveryError(f"telegram: {e}") from e
        url = f"{str(self.cfg.api_base).rstrip('/')}/bot{token}/sendMessage"
        chat: int | str = int(recipient) if recipient.lstrip("-").isdigit() else recipient
        body = json.dumps({"chat_id": chat, "text": msg.text(MAX_TEXT),
                           "disable_web_page_preview": True}).encode()
        try:
            r = _http.post(url, body, {}, timeout_s=self.cfg.timeout_s, ca_file=self.cfg.ca_file,
                           what="telegram", secrets=(token,),
                           transient=CONFIG_ERRORS)
        except DeliveryError as e:
            raise DeliveryError(self._explain(str(e)), permanent=e.permanent) from e
        try:
            answer = r.json()
        except ValueError as e:
            raise DeliveryError("telegram: the Bot API answered with something not JSON") from e
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            desc = answer.get("description") if isinstance(answer, dict) else None
            raise DeliveryError(redact(f"telegram: sendMessage refused: {desc}", token))

    @staticmethod
    def _explain(err: str) -> str:
        # the Bot API's JSON error carries a description; keep it short and token-free
        return err.replace("\n", " ")[:300]
