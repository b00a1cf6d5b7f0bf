"""Ingest benchmark: synthetic agents -> collector (HTTPS, SQLite, outbox) -> real influxd,
against the same points written straight into that influxd as line protocol.

Both paths get the same reports, the same concurrency and the same load generator; the
baseline posts each report's points to ``/write`` (gzip) as an agent without a collector
would. The collector path is timed end to end: from the first POST until InfluxDB holds every
point. Each path runs ``--rounds`` times, alternating; medians are printed.

    .venv/bin/python bench/ingest.py [--agents 32] [--reports 1500] [--probes 20] [--rounds 3]

Throughput is measured closed loop (``--concurrency`` senders back to back, saturating the
collector); latency is measured open loop at ``--rate`` reports/s offered (independent agents
do not wait for each other), where ``p99_ms`` is taken; the saturated p99 is printed too.

Last line: ``RESULT reports_per_s=... points_per_s=... raw_points_per_s=... ratio=... p99_ms=...
offered_reports_per_s=... saturated_p99_ms=...``
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.metrics import report_lines
from contract.report import (
    Heartbeat,
    HostFacts,
    InterfaceAddress,
    ProbeKind,
    ProbeResult,
    Report,
    Route,
    new_report_id,
    utcnow,
)
from tests.procs import Collector, TestCA
from tests.servers import InfluxD


def make_reports(n: int, agents: int, probes: int) -> list[tuple[int, Report]]:
    out = []
    base = utcnow()
    for i in range(n):
        a = i % agents
        t = base + timedelta(microseconds=i * 1000)
        obs: list[Any] = [
            Heartbeat(observed_at=t, agent_version="bench", uptime_s=i),
            HostFacts(observed_at=t, hostname=f"gw-{a}", os="Debian GNU/Linux 12", kernel="6.1",
                      uptime_s=1000 + i,
                      addresses=[InterfaceAddress(interface="eth0", address=f"10.{a}.0.2",
                                                  prefix_len=24, family="ipv4")],
                      routes=[Route(destination="0.0.0.0/0", gateway=f"10.{a}.0.1",
                                    interface="eth0")])]
        obs += [ProbeResult(observed_at=t + timedelta(microseconds=p), target=f"t{p}",
                            probe=ProbeKind.TCP, address=f"10.{a}.1.{p}:443", up=p % 7 != 0,
                            rtt_ms=1.5 + p) for p in range(probes)]
        out.append((a, Report(report_id=new_report_id(), agent_id=f"bench-{a}",
                              pd_code=f"PD{a}", sent_at=t, observations=obs)))
    return out


async def blast(url: str, bodies: list[tuple[dict[str, str], bytes]], concurrency: int,
                verify: Any) -> tuple[float, list[float]]:
    queue: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(verify=verify, limits=limits, timeout=60) as client:
        async def worker() -> None:
            while not queue.empty():
                headers, body = queue.get_nowait()
                t0 = time.perf_counter()
                r = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if r.status_code >= 300:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t0, latencies


async def paced(url: str, bodies: list[tuple[dict[str, str], bytes]], rate: float,
                verify: Any) -> list[float]:
    """Open loop: report i is sent at i/rate seconds whatever the earlier ones are doing, as
    independent agents would; returns each report's latency."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(verify=verify, limits=limits, timeout=60) as client:
        async def one(headers: dict[str, str], body: bytes) -> None:
            t0 = time.perf_counter()
            r = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            if r.status_code >= 300:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")

        start = time.perf_counter()
        tasks = []
        for i, (headers, body) in enumerate(bodies):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(headers, body)))
        await asyncio.gather(*tasks)
    return latencies


def count_points(influxd: InfluxD, db: str) -> int:
    total = 0
    for m in ("agent", "host", "probe"):
        try:
            total += influxd.count(m, db, field="uptime_s" if m != "probe" else "up")
        except Exception:
            return -1
    return total


def register(col: Collector, agents: int) -> dict[int, str]:
    """PDs and agents straight through the data-access layer (the CLI per agent is slow)."""
    import yaml

    from collector.db import make_engine, migrate
    from collector.store import Store

    engine = make_engine(yaml.safe_load(col.config.read_text())["database_url"])
    migrate(engine)
    store = Store(engine)
    tokens = {}
    for a in range(agents):
        store.add_pd(f"PD{a}", f"PD {a}")
        tokens[a] = store.add_agent(f"bench-{a}", f"PD{a}")
    store.close()
    engine.dispose()
    return tokens


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.99) - 1)] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=32)
    ap.add_argument("--reports", type=int, default=1500)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=float, default=40.0,
                    help="offered load (reports/s) of the open-loop latency phase")
    ap.add_argument("--paced-seconds", type=float, default=15.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="spbe-bench-"))
    influxd = InfluxD(work / "influxd").start()
    ca = TestCA(work / "ca")
    raw_rates, col_rates, rep_rates, p99s, ack_rates = [], [], [], [], []
    paced_p99s: list[float] = []
    try:
        for rnd in range(args.rounds):
            reports = make_reports(args.reports, args.agents, args.probes)
            points = sum(len(report_lines(r)) for _, r in reports)
            # baseline: the same points straight into influxd, one request per report
            raw_db = f"raw_{rnd}"
            influxd.create_database(raw_db)
            raw_bodies = [({"Content-Encoding": "gzip"},
                           gzip.compress("\n".join(report_lines(r)).encode()))
                          for _, r in reports]
            secs, _ = asyncio.run(blast(f"{influxd.url}/write?db={raw_db}&precision=ns",
                                        raw_bodies, args.concurrency, False))
            assert count_points(influxd, raw_db) == points, "baseline lost points"
            raw_rates.append(points / secs)

            col = Collector(work / f"collector{rnd}", ca, influxd.url, influx_db=f"col_{rnd}",
                            extra={"log_level": "WARNING"})
            tokens = register(col, args.agents)
            col.start()
            try:
                bodies = [({"Authorization": f"Bearer {tokens[a]}", "Content-Encoding": "gzip",
                            "Content-Type": "application/json"},
                           gzip.compress(r.model_dump_json(exclude_none=True).encode()))
                          for a, r in reports]
                t0 = time.perf_counter()
                ack_secs, lat = asyncio.run(blast(f"{col.url}/api/v1/reports", bodies,
                                                  args.concurrency, ca.ssl_context()))
                while count_points(influxd, f"col_{rnd}") < points:
                    if time.perf_counter() - t0 > 300:
                        raise RuntimeError("collector did not deliver all points in 300 s")
                    time.sleep(0.05)
                e2e = time.perf_counter() - t0
                assert count_points(influxd, f"col_{rnd}") == points
                # open loop at a fixed offered load: the latency an agent sees
                extra = make_reports(int(args.rate * args.paced_seconds), args.agents,
                                     args.probes)
                extra_points = sum(len(report_lines(r)) for _, r in extra)
                paced_bodies = [({"Authorization": f"Bearer {tokens[a]}",
                                  "Content-Encoding": "gzip",
                                  "Content-Type": "application/json"},
                                 gzip.compress(r.model_dump_json(exclude_none=True).encode()))
                                for a, r in extra]
                paced_lat = asyncio.run(paced(f"{col.url}/api/v1/reports", paced_bodies,
                                              args.rate, ca.ssl_context()))
                deadline = time.perf_counter() + 120
                while count_points(influxd, f"col_{rnd}") < points + extra_points:
                    if time.perf_counter() > deadline:
                        raise RuntimeError("paced reports did not all reach InfluxDB")
                    time.sleep(0.05)
                assert count_points(influxd, f"col_{rnd}") == points + extra_points
            finally:
                col.stop()
            paced_p99s.append(p99(paced_lat))
            col_rates.append(points / e2e)
            rep_rates.append(len(reports) / ack_secs)
            ack_rates.append(points / ack_secs)
            p99s.append(p99(lat))
            print(f"round {rnd + 1}: {len(reports)} reports / {points} points; "
                  f"raw {points / secs:,.0f} pts/s; collector ack {len(reports) / ack_secs:,.0f} "
                  f"reports/s ({points / ack_secs:,.0f} pts/s), end-to-end "
                  f"{points / e2e:,.0f} pts/s, p99 {p99(lat):.1f} ms (saturated); "
                  f"p99 {paced_p99s[-1]:.1f} ms at {args.rate:g} reports/s offered",
                  flush=True)
    finally:
        influxd.close()
    med = statistics.median
    ratio = med(col_rates) / med(raw_rates)
    print(f"medians over {args.rounds} rounds: agents={args.agents} "
          f"concurrency={args.concurrency} points/report={points // len(reports)}")
    print(f"saturated (closed loop, {args.concurrency} senders) p99: {med(p99s):.1f} ms")
    print(f"RESULT reports_per_s={med(rep_rates):.0f} points_per_s={med(col_rates):.0f} "
          f"raw_points_per_s={med(raw_rates):.0f} ratio={ratio:.2f} "
          f"p99_ms={med(paced_p99s):.1f} offered_reports_per_s={args.rate:g} "
          f"saturated_p99_ms={med(p99s):.1f}")


if __name__ == "__main__":
    main()
