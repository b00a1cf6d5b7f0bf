"""Notification channels: one module per channel, one small interface.

A channel sends one message to one recipient and either returns (delivered) or raises
:class:`DeliveryError` (``permanent=True`` when retrying cannot help, e.g. a refused address).
It must honour its timeout, read its secret only when sending (so a rotated secret is picked up)
and never put a secret into an error message. Retries and back-off are the queue's job
(:mod:`collector.alerts.delivery`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from collector.alerts.config import ChannelName, ChannelsCfg


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Message:
    notification_id: int
    event: str
    title: str
    body: str
    language: str
    payload: dict[str, Any] = field(default_factory=dict)

    def text(self, limit: int | None = None) -> str:
        """Title and body as one plain text (chat channels), cut to ``limit`` characters."""
        out = f"{self.title}\n\n{self.body}"
        if limit is not None and len(out) > limit:
            out = out[:limit - 1] + "…"
        return out


class Channel(Protocol):
    name: ChannelName

    def send(self, msg: Message, recipient: str) -> None:
        """Deliver ``msg`` to ``recipient`` or raise :class:`DeliveryError`."""
        ...


Factory = Callable[[Any], Channel]
REGISTRY: dict[ChannelName, Factory] = {}


def register(name: ChannelName) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        if name in REGISTRY:
            raise ValueError(f"channel {name.value!r} is registered twice")
        REGISTRY[name] = factory
        return factory
    return deco


def load_builtin() -> None:
    from collector.alerts.channels import email, telegram, webhook, whatsapp  # noqa: F401


def build(cfg: ChannelsCfg) -> dict[ChannelName, Channel]:
    """The configured channels, by name."""
    load_builtin()
    out: dict[ChannelName, Channel] = {}
    for name in cfg.configured():
        out[name] = REGISTRY[name](getattr(cfg, name.value))
    return out


def redact(text: str, *secrets: str | None) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text
