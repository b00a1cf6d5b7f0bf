"""Reachability probes: ICMP (RTT, loss), TCP connect, HTTP(S) (status, latency, TLS expiry).

All probes of one run go concurrently (bounded), each with its own timeout; a failing target is
an observation with ``up: false`` and the error, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import icmplib

from agent import httpclient
from agent.collectors import AgentContext, Obs, register
from agent.config import AgentConfig, HttpProbe, IcmpProbe, Probe, TcpProbe
from agent.tlscert import not_after
from contract.report import ProbeKind, ProbeResult, utcnow

MAX_CONCURRENT = 64


def _err(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}"[:1024]


async def probe_icmp(p: IcmpProbe) -> ProbeResult:
    now = utcnow()
    try:
        try:
            host = await icmplib.async_ping(p.host, count=p.count, interval=p.interval_s,
                                            timeout=p.timeout_s, privileged=False)
        except icmplib.SocketPermissionError:
            host = await icmplib.async_ping(p.host, count=p.count, interval=p.interval_s,
                                            timeout=p.timeout_s, privileged=True)
    except (icmplib.ICMPLibError, OSError) as e:
        return ProbeResult(observed_at=now, target=p.name, probe=ProbeKind.ICMP, address=p.host,
                           up=False, loss_pct=100.0, packets_sent=p.count, error=_err(e))
    loss = round(host.packet_loss * 100, 3)
    return ProbeResult(observed_at=now, target=p.name, probe=ProbeKind.ICMP, address=p.host,
                       up=host.is_alive and loss <= p.max_loss_pct,
                       rtt_ms=host.avg_rtt if host.is_alive else None, loss_pct=loss,
                       packets_sent=host.packets_sent,
                       error=None if host.is_alive else "no echo reply")


MAX_RESOLVED = 16


async def resolve(host: str, timeout: float) -> list[str]:
    """The addresses ``host`` resolves to, as the probe saw them (empty for a literal IP, or
    when resolution fails: the probe itself reports that failure)."""
    try:
        ipaddress.ip_address(host)
        return []
    except ValueError:
        pass
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM),
            timeout)
    except (OSError, TimeoutError, UnicodeError):
        return []
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0]).split("%", 1)[0]   # no IPv6 zone index
        if addr not in out:
            out.append(addr)
    return out[:MAX_RESOLVED]


async def probe_tcp(p: TcpProbe) -> ProbeResult:
    now = utcnow()
    address = f"{p.host}:{p.port}"
    resolved = await resolve(p.host, p.timeout_s)
    t0 = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(p.host, p.port), p.timeout_s)
    except (TimeoutError, OSError) as e:
        return ProbeResult(observed_at=now, target=p.name, probe=ProbeKind.TCP, address=address,
                           up=False, error=_err(e), resolved=resolved)
    rtt = (time.perf_counter() - t0) * 1000
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1)
    return ProbeResult(observed_at=now, target=p.name, probe=ProbeKind.TCP, address=address,
                       up=True, rtt_ms=round(rtt, 3), resolved=resolved)


async def tls_expiry(host: str, port: int, timeout: float) -> datetime:
    """The peer certificate's notAfter, read without verifying (verification is the request's
    job; expiry must be known even for a certificate that no longer verifies)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=host), timeout)
    try:
        sslobj = writer.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj else None
        if not der:
            raise ssl.SSLError("server sent no certificate")
        return not_after(der)
    finally:
        writer.close()


def http_context(p: HttpProbe) -> ssl.SSLContext:
    if not p.verify_tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return ssl.create_default_context(cafile=str(p.ca_bundle) if p.ca_bundle else None)


async def probe_http(p: HttpProbe) -> ProbeResult:
    now, url = utcnow(), str(p.url)
    expires: datetime | None = None
    tls_error: str | None = None
    parts = urlsplit(url)
    resolved = await resolve(parts.hostname or "", p.timeout_s)
    if parts.scheme == "https":
        try:
            expires = await tls_expiry(parts.hostname or "", parts.port or 443, p.timeout_s)
        except (TimeoutError, OSError, ssl.SSLError, ValueError) as e:
            tls_error = _err(e)
    t0 = time.perf_counter()
    try:
        # http.client in a worker thread; redirects are not followed (a 30x is an answer)
        resp = await asyncio.to_thread(
            httpclient.get, url, timeout_s=p.timeout_s,
            context=http_context(p) if parts.scheme == "https" else None,
            headers={"User-Agent": "spbe-agent probe"})
    except (httpclient.HttpError, ValueError) as e:
        return ProbeResult(observed_at=now, target=p.name, probe=ProbeKind.HTTP, address=url,
                           up=False, error=str(e)[:1024], tls_expires_at=expires,
                           tls_days_left=_days_left(expires), resolved=resolved)
    rtt = (time.perf_counter() - t0) * 1000
    ok = resp.status in p.expect_status
    error = None if ok else f"unexpected HTTP status {resp.status}"
    if ok and tls_error:
        error = f"TLS certificate not readable: {tls_error}"
    return ProbeResult(observed_at=now, target=p.name, probe=ProbeKind.HTTP, address=url, up=ok,
                       rtt_ms=round(rtt, 3), status_code=resp.status,
                       tls_expires_at=expires, tls_days_left=_days_left(expires), error=error,
                       resolved=resolved)


def _days_left(expires: datetime | None) -> float | None:
    if expires is None:
        return None
    return round((expires - datetime.now(UTC)).total_seconds() / 86400, 3)


async def run_probe(p: Probe) -> ProbeResult:
    if isinstance(p, IcmpProbe):
        return await probe_icmp(p)
    if isinstance(p, TcpProbe):
        return await probe_tcp(p)
    return await probe_http(p)


async def run_probes(probes: list[Probe]) -> list[ProbeResult]:
    sem = asyncio.Semaphore(MAX_CONCURRENT)

    async def bounded(p: Probe) -> ProbeResult:
        async with sem:
            try:
                return await asyncio.wait_for(run_probe(p), p.timeout_s * 3 + 5)
            except Exception as e:  # isolation boundary: one probe never breaks the others
                return ProbeResult(observed_at=utcnow(), target=p.name,
                                   probe=ProbeKind(p.type), address=_address(p), up=False,
                                   error=_err(e))

    return list(await asyncio.gather(*(bounded(p) for p in probes)))


def _address(p: Probe) -> str:
    if isinstance(p, IcmpProbe):
        return p.host
    if isinstance(p, TcpProbe):
        return f"{p.host}:{p.port}"
    return str(p.url)


class ProbesCollector:
    name = "probes"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg = cfg

    def interval_s(self) -> float:
        return self.cfg.intervals.probes_s

    async def collect(self) -> list[Obs]:
        return list(await run_probes(list(self.cfg.probes)))


@register("probes")
def _factory(cfg: AgentConfig, ctx: AgentContext) -> ProbesCollector:
    return ProbesCollector(cfg, ctx)
