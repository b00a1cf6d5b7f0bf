"""The agent's stdlib HTTP client against real local servers: keep-alive and reconnection,
body limits, deadlines, TLS verification."""

from __future__ import annotations

import http.server
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import trustme

from agent.httpclient import Connection, HttpError, get


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive
    peers: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.peers.append(self.client_address[1])
        self._answer(200, b'{"got": %d}' % len(body))

    def do_GET(self) -> None:
        self.peers.append(self.client_address[1])
        if self.path == "/big":
            self._answer(200, b"x" * 300_000)
        elif self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"d")
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/bye":   # answer, then close the kept-alive connection
            self._answer(200, b"bye")
            self.close_connection = True
        else:
            self._answer(404, b'{"detail": "no such page"}')

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    ca = trustme.CA()
    ca_file = tmp_path_factory.mktemp("http") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    plain = _Server(("127.0.0.1", 0), _Handler)
    tls = _Server(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    for s in (plain, tls):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    yield {"http": f"http://127.0.0.1:{plain.server_address[1]}",
           "https": f"https://127.0.0.1:{tls.server_address[1]}", "ca": ca_file}
    for s in (plain, tls):
        s.shutdown()
        s.server_close()


def test_keep_alive_and_reconnect_after_server_close(server: dict[str, object]) -> None:
    _Handler.peers.clear()
    with Connection(str(server["http"]), timeout_s=5) as conn:
        assert conn.request("POST", "/r", body=b"abc").json() == {"got": 3}
        assert conn.request("POST", "/r", body=b"abcd").json() == {"got": 4}
        assert _Handler.peers[0] == _Handler.peers[1]          # one connection, kept alive
        assert conn.request("GET", "/bye").text == "bye"        # the server closes it
        assert conn.request("POST", "/r", body=b"x").json() == {"got": 1}
        assert _Handler.peers[-1] != _Handler.peers[0]          # a fresh connection
        missing = conn.request("GET", "/nothing")
        assert missing.status == 404 and missing.json()["detail"] == "no such page"


def test_body_limit_and_deadline(server: dict[str, object]) -> None:
    big = get(f"{server['http']}/big", timeout_s=5, max_body=1000)
    assert big.truncated and len(big.body) == 1000
    t0 = time.monotonic()
    with pytest.raises(HttpError, match=r"GET http://127\.0\.0\.1:\d+/drip: TimeoutError"):
        get(f"{server['http']}/drip", timeout_s=1)
    assert time.monotonic() - t0 < 3


def test_tls_verified_against_the_given_ca_only(server: dict[str, object]) -> None:
    ca = ssl.create_default_context(cafile=str(server["ca"]))
    assert get(f"{server['https']}/bye", timeout_s=5, context=ca).text == "bye"
    with pytest.raises(HttpError, match="CERTIFICATE_VERIFY_FAILED"):
        get(f"{server['https']}/bye", timeout_s=5)


def test_unreachable_and_not_http() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nothing listens there now
    with pytest.raises(HttpError, match=f"POST http://127.0.0.1:{port}/r: ConnectionRefused"):
        Connection(f"http://127.0.0.1:{port}/", timeout_s=2).request("POST", "/r", body=b"")
    with pytest.raises(ValueError, match="not an http"):
        Connection("ftp://example.org/", timeout_s=2)


def test_path_prefix_of_base_url(server: dict[str, object], tmp_path: Path) -> None:
    with Connection(f"{server['http']}/", timeout_s=5) as conn:
        assert conn.base_url == str(server["http"])
        assert conn.request("GET", "/bye").text == "bye"
