"""Timestamps as restic and borg print them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any, *, naive_is_local: bool = False) -> datetime:
    """An ISO 8601 timestamp as an aware datetime.

    restic prints RFC 3339 with nanoseconds (``2026-11-25T12:18:48.269689026+07:00``); borg
    1.x prints local time without an offset (``2026-11-25T12:20:11.000000``), which is read
    as the agent's local time when ``naive_is_local`` (else refused).
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"time {value!r} is not a timestamp")
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"time {value[:64]!r} is not an ISO 8601 timestamp") from None
    if dt.tzinfo is None:
        if not naive_is_local:
            raise ValueError(f"time {value[:64]!r} has no time zone")
        dt = dt.astimezone()  # interpreted as local time
    return dt
