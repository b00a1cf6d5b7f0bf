"""The agent's HTTP/1.1 client, on the standard library (``http.client``).

The agent needs little from HTTP: POST gzip'd reports to the collector over one kept-alive
connection, and GET a URL for an HTTP probe. ``http.client`` does both. A full client library
would cost the agent ~9 MB of its 60 MB memory budget (httpx, for one, imports rich, click
and pygments for its command line whenever they are installed).

Every network or protocol failure is raised as :class:`HttpError`, whose message names the
URL and what went wrong; bodies are read up to a limit so a hostile server cannot make the
agent buffer without end.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_BODY = 1 << 20   # bytes read of a response body at most; the rest is discarded


class HttpError(Exception):
    """The request did not get an HTTP response (connection, TLS, timeout, protocol)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]    # names lower-cased
    body: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` if it is not JSON."""
        return json.loads(self.body)


def _describe(e: BaseException) -> str:
    if isinstance(e, socket.timeout | TimeoutError):
        return f"TimeoutError: {e or 'timed out'}"
    return f"{type(e).__name__}: {e or 'no detail'}"


class Connection:
    """One kept-alive connection to ``base_url`` (http or https), reopened when it drops.

    ``timeout_s`` bounds every connect and read; ``deadline_s`` (per request, optional)
    bounds the whole exchange including a slowly dripping body.
    """

    def __init__(self, base_url: str, *, timeout_s: float, context: ssl.SSLContext | None = None,
                 headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.base_url = f"{parts.scheme}://{parts.netloc}{self.prefix}"
        self.timeout_s = timeout_s
        self.context = context if context is not None or parts.scheme == "http" else (
            ssl.create_default_context())
        self.headers = dict(headers or {})
        self._conn: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout_s,
                                               context=self.context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None, max_body: int = MAX_BODY,
                deadline_s: float | None = None) -> Response:
        """Send one request and read its response.

        A kept-alive connection that the server closed meanwhile is reopened and the request
        sent once more (the collector's report endpoint is idempotent by report ID).
        """
        url = self.base_url + path
        hdrs = {**self.headers, **(headers or {})}
        reused = self._conn is not None
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._open()
            try:
                self._conn.request(method, self.prefix + path, body=body, headers=hdrs)
                resp = self._conn.getresponse()
                return self._read(resp, max_body, deadline_s)
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                self.close()
                if attempt == 1 and reused:
                    continue   # a stale kept-alive connection: try once on a fresh one
                raise HttpError(f"{method} {url}: {_describe(e)}") from e
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise HttpError(f"{method} {url}: {_describe(e)}") from e
        raise AssertionError("unreachable")

    def _read(self, resp: http.client.HTTPResponse, max_body: int,
              deadline_s: float | None) -> Response:
        end = None if deadline_s is None else time.monotonic() + deadline_s
        chunks: list[bytes] = []
        size, truncated = 0, False
        while True:
            if end is not None and time.monotonic() > end:
                raise TimeoutError("response body not complete within the deadline")
            if resp.length == 0:   # all of a Content-Length body read: done with it
                resp.close()
                break
            chunk = resp.read1(65536)
            if not chunk:
                break
            if size + len(chunk) > max_body:
                chunks.append(chunk[:max_body - size])
                truncated = True
                break
            chunks.append(chunk)
            size += len(chunk)
        headers = {k.lower(): v for k, v in resp.getheaders()}
        if truncated or resp.will_close:
            self.close()   # the rest of the body is not wanted; do not reuse the connection
        return Response(resp.status, headers, b"".join(chunks), truncated)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def get(url: str, *, timeout_s: float, context: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None, max_body: int = MAX_BODY) -> Response:
    """One GET on a fresh connection (no redirects followed), whole exchange within
    ``timeout_s``."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    base = f"{parts.scheme}://{parts.netloc}"
    with Connection(base, timeout_s=timeout_s, context=context, headers=headers) as conn:
        return conn.request("GET", path, max_body=max_body, deadline_s=timeout_s)
