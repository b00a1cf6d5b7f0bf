"""One JSON POST with a timeout, mapped onto :class:`DeliveryError` (shared by the HTTP
channels). 2xx is delivered; 408, 425, 429 and 5xx are worth a retry; other statuses are
permanent."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from collector import __version__
from collector.alerts.channels import DeliveryError, redact

RETRYABLE = {408, 425, 429}


def verify_for(ca_file: Path | None) -> ssl.SSLContext | bool:
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as e:
        raise DeliveryError(f"cannot load CA file {ca_file}: {e}") from e


def post(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float,
         ca_file: Path | None, what: str, secrets: tuple[str, ...] = (),
         transient: frozenset[int] = frozenset()) -> httpx.Response:
    hdrs = {"Content-Type": "application/json", "User-Agent": f"spbe-monitor/{__version__}",
            **headers}
    try:
        with httpx.Client(timeout=timeout_s, verify=verify_for(ca_file),
                          follow_redirects=False, trust_env=False) as client:
            r = client.post(url, content=body, headers=hdrs)
    except httpx.TimeoutException as e:
        raise DeliveryError(f"{what}: timed out after {timeout_s:g} s") from e
    except httpx.HTTPError as e:
        raise DeliveryError(redact(f"{what}: {type(e).__name__}: {e}", *secrets)) from e
    if 200 <= r.status_code < 300:
        return r
    permanent = r.status_code < 500 and r.status_code not in RETRYABLE | transient
    raise DeliveryError(redact(f"{what}: HTTP {r.status_code} {r.text[:200]}", *secrets),
                        permanent=permanent)
