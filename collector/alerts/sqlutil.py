"""Small SQL helpers of the alert pipeline (portable across SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from collector.alerts.config import ChannelName


def insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(table).on_conflict_do_nothing(), rows)
    elif conn.dialect.name == "sqlite":
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover - other back-ends are not supported by the collector
        for r in rows:
            try:
                with conn.begin_nested():
                    conn.execute(insert(table).values(**r))
            except IntegrityError:
                pass


def event_row(alert_id: int | None, at: float, event: str, *, actor: str | None = None,
              detail: str | None = None, notification_id: int | None = None,
              channel: str | None = None, recipient: str | None = None,
              attempt: int | None = None, ok: bool | None = None) -> dict[str, Any]:
    return {"alert_id": alert_id, "notification_id": notification_id, "at": at, "event": event,
            "actor": actor, "channel": channel,
            "recipient": recipient[:255] if recipient else None, "attempt": attempt, "ok": ok,
            "detail": detail[:4000] if detail else None}


def display_recipient(channel: str, address: str) -> str:
    """A recipient as history and the API show it: webhook URLs may carry secrets."""
    if channel == ChannelName.WEBHOOK.value:
        scheme, _, rest = address.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}/..."
    return address
