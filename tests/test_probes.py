"""Reachability probes against real local servers (TCP, HTTP, HTTPS with a test CA, ICMP)."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from agent.collectors.probes import run_probes
from agent.config import HttpProbe, IcmpProbe, Probe, TcpProbe
from contract.report import ProbeResult

pytestmark = pytest.mark.integration


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = 500 if self.path == "/broken" else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("probes")
    ca = trustme.CA()
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=10)
    cert = ca.issue_cert("127.0.0.1", "localhost", not_after=not_after)
    ca_file = tmp / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    tls = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (plain, tls)]
    for t in threads:
        t.start()
    yield {"http": plain.server_address[1], "https": tls.server_address[1],
           "silent": silent.getsockname()[1], "ca": ca_file, "not_after": not_after}
    for s in (plain, tls):
        s.shutdown()
        s.server_close()
    silent.close()


def http_probe(name: str, url: str, **kw: Any) -> HttpProbe:
    return HttpProbe.model_validate({"name": name, "type": "http", "url": url, **kw})


def run(probes: list[Probe]) -> dict[str, ProbeResult]:
    return {r.target: r for r in asyncio.run(run_probes(probes))}


def test_tcp_open_and_closed(servers: dict[str, Any]) -> None:
    r = run([TcpProbe(name="open", type="tcp", host="127.0.0.1", port=servers["http"]),
             TcpProbe(name="closed", type="tcp", host="127.0.0.1", port=1)])
    assert r["open"].up and r["open"].rtt_ms is not None
    closed = r["closed"]
    assert not closed.up and "ConnectionRefused" in (closed.error or "")


def test_http_status_and_latency(servers: dict[str, Any]) -> None:
    base = f"http://127.0.0.1:{servers['http']}"
    r = run([http_probe("ok", f"{base}/"),
             http_probe("broken", f"{base}/broken")])
    ok, broken = r["ok"], r["broken"]
    assert ok.up and ok.status_code == 200 and ok.tls_days_left is None
    assert not broken.up and broken.status_code == 500
    assert "unexpected HTTP status 500" in (broken.error or "")


def test_https_certificate_expiry(servers: dict[str, Any]) -> None:
    url = f"https://127.0.0.1:{servers['https']}/"
    r = run([http_probe("trusted", url, ca_bundle=servers["ca"]),
             http_probe("untrusted", url)])
    trusted, untrusted = r["trusted"], r["untrusted"]
    assert trusted.up and 9.9 < (trusted.tls_days_left or 0) < 10.1
    not_after = servers["not_after"]
    assert trusted.tls_expires_at is not None
    assert abs((trusted.tls_expires_at - not_after).total_seconds()) < 2
    # not trusted by the system store: down, but the expiry is still measured
    assert not untrusted.up and "CERTIFICATE_VERIFY_FAILED" in (untrusted.error or "")
    assert untrusted.tls_days_left is not None


def test_host_names_are_resolved_and_reported(servers: dict[str, Any]) -> None:
    """The addresses a probe's host name resolved to (DC-3: where a website is hosted)."""
    r = run([http_probe("by-name", f"http://localhost:{servers['http']}/"),
             http_probe("by-ip", f"http://127.0.0.1:{servers['http']}/"),
             TcpProbe(name="tcp-by-name", type="tcp", host="localhost", port=servers["http"]),
             http_probe("no-such-host", "http://no-such-host.invalid/", timeout_s=2)])
    assert r["by-name"].up and "127.0.0.1" in r["by-name"].resolved
    assert set(r["by-name"].resolved) <= {"127.0.0.1", "::1"}
    assert r["by-ip"].up and r["by-ip"].resolved == []          # a literal: nothing to resolve
    assert "127.0.0.1" in r["tcp-by-name"].resolved
    unresolved = r["no-such-host"]
    assert not unresolved.up and unresolved.resolved == [] and unresolved.error


def test_hung_server_times_out_without_delaying_others(servers: dict[str, Any]) -> None:
    t0 = time.monotonic()
    r = run([http_probe("hung", f"http://127.0.0.1:{servers['silent']}/", timeout_s=1),
             TcpProbe(name="fine", type="tcp", host="127.0.0.1", port=servers["http"])])
    assert time.monotonic() - t0 < 3
    assert not r["hung"].up and "Timeout" in (r["hung"].error or "")
    assert r["fine"].up


def test_icmp_loopback_and_unresolvable() -> None:
    r = run([IcmpProbe(name="lo", type="icmp", host="127.0.0.1", count=3, interval_s=0.05),
             IcmpProbe(name="bogus", type="icmp", host="no-such-host.invalid", count=1)])
    lo, bogus = r["lo"], r["bogus"]
    assert lo.up and lo.loss_pct == 0 and lo.packets_sent == 3
    assert not bogus.up and bogus.error


def test_host_facts_parsers(tmp_path: Path) -> None:
    from agent.collectors.host_facts import parse_proc_route

    text = ("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
            "eth0\t00000000\t0100140A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
            "eth0\t0014000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
            "garbage line\n"
            "eth1\tZZZZZZZZ\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    routes = parse_proc_route(text)
    assert [(r.destination, r.gateway, r.interface) for r in routes] == [
        ("0.0.0.0/0", "10.20.0.1", "eth0"), ("10.0.20.0/24", None, "eth0")]
