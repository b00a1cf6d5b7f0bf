"""Agent -> collector -> InfluxDB, end to end on real processes, with outages."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import MakeAgent, MakeCollector
from tests.procs import Agent, Collector, ledger, wait_for
from tests.servers import InfluxD, InfluxError

pytestmark = pytest.mark.integration


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP service for the agent to probe."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield int(srv.getsockname()[1])
    stop.set()
    t.join()
    srv.close()


def influx_points(influxd: InfluxD, collector: Collector) -> int:
    db = collector.config.read_text().split("database: ")[1].split()[0]
    try:
        return sum(influxd.count(m, db) for m in ("agent", "host", "probe"))
    except InfluxError as e:
        if "database not found" in str(e):
            return 0
        raise


def setup(make_collector: MakeCollector, make_agent: MakeAgent, port: int,
          **agent_kw: object) -> tuple[Collector, Agent]:
    col = make_collector()
    col.add_pd("DINKES", "Dinas Kesehatan")
    token = col.add_agent("dinkes-gw", "DINKES")
    probes = [{"name": "svc", "type": "tcp", "host": "127.0.0.1", "port": port},
              {"name": "closed", "type": "tcp", "host": "127.0.0.1", "port": 1,
               "timeout_s": 1}]
    agent = make_agent(col, "dinkes-gw", "DINKES", token, probes=probes, **agent_kw)
    return col, agent


def test_once_counts_exact_points_in_influxdb(make_collector: MakeCollector,
                                              make_agent: MakeAgent, listener: int,
                                              influxd: InfluxD) -> None:
    col, agent = setup(make_collector, make_agent, listener)
    col.start()
    for _ in range(3):
        out = agent.run_cli("once")
        assert out.returncode == 0, out.stderr
        assert "shipped 1" in out.stdout
    # each report: 1 heartbeat + 1 host_facts + 2 probes = 4 points
    rows = ledger(col)
    assert len(rows) == 3 and all(r["points"] == 4 for r in rows)
    wait_for(lambda: influx_points(influxd, col) == 12, 20, "12 points in InfluxDB")
    time.sleep(1)  # nothing more arrives
    assert influx_points(influxd, col) == 12
    assert agent.pending() == 0


def assert_each_point_written_once(col: Collector, expected: int) -> None:
    """InfluxDB overwrites a point written twice, so its count cannot show a report applied
    twice; the collector's lifetime count of lines it wrote can: it must equal the points of
    the reports it accepted (each report once, whatever the agent resent)."""
    wait_for(lambda: col.get("/api/v1/health", "")["checks"]["outbox_pending"] == 0, 30,
             "outbox empty")
    written = col.get("/api/v1/health", "")["checks"]["outbox_written_total"]
    assert written == expected, f"{written} lines written for {expected} points"


def _run_with_collector_outage(col: Collector, agent: Agent) -> None:
    agent.start()
    wait_for(lambda: len(agent.spooled_ids()) >= 3, 30, "agent to spool reports")
    col.stop()
    wait_for(lambda: agent.pending() >= 5, 30, "reports to pile up while the collector is down")
    col.start()


def test_collector_outage_loses_nothing_duplicates_nothing(
        make_collector: MakeCollector, make_agent: MakeAgent, listener: int,
        influxd: InfluxD) -> None:
    col, agent = setup(make_collector, make_agent, listener,
                       intervals={"heartbeat_s": 0.3, "probes_s": 0.3, "host_facts_s": 1.0})
    col.start()
    _run_with_collector_outage(col, agent)
    wait_for(lambda: agent.pending() <= 1, 30, "the backlog to drain")
    agent.stop()
    if agent.pending():  # spooled just before the stop: ships with the next run
        assert agent.run_cli("once").returncode == 0
    assert agent.pending() == 0
    rows = ledger(col)
    ids = [r["report_id"] for r in rows]
    missing = set(agent.spooled_ids()) - set(ids)
    assert not missing, f"lost reports: {missing}"
    expected = sum(r["points"] for r in rows)
    wait_for(lambda: influx_points(influxd, col) == expected, 30,
             f"{expected} points in InfluxDB")
    assert_each_point_written_once(col, expected)


def test_influxdb_outage_outbox_drains(make_collector: MakeCollector, make_agent: MakeAgent,
                                       listener: int, influxd: InfluxD) -> None:
    col, agent = setup(make_collector, make_agent, listener)
    col.start()
    assert agent.run_cli("once").returncode == 0
    wait_for(lambda: influx_points(influxd, col) == 4, 20, "first 4 points")
    influxd.stop()
    try:
        for _ in range(4):
            out = agent.run_cli("once")
            assert out.returncode == 0, out.stdout + out.stderr  # ingest goes on
        health = col.get("/api/v1/health", "")
        assert health["checks"]["influxdb"] == "unreachable"
        assert health["checks"]["outbox_pending"] == 16
    finally:
        influxd.start()
    wait_for(lambda: influx_points(influxd, col) == 20, 30, "outbox drained into InfluxDB")
    wait_for(lambda: col.get("/api/v1/health", "")["checks"]["outbox_pending"] == 0, 10,
             "outbox empty")


def test_kill_9_agent_while_shipping(make_collector: MakeCollector, make_agent: MakeAgent,
                                     listener: int, influxd: InfluxD) -> None:
    col, agent = setup(make_collector, make_agent, listener,
                       intervals={"heartbeat_s": 0.1, "probes_s": 0.1, "host_facts_s": 0.5})
    # pile up reports with the collector down, then kill -9 the agent mid-drain
    agent.start()
    wait_for(lambda: agent.pending() >= 150, 60, "150 reports spooled")
    col.start()
    wait_for(lambda: len(ledger(col)) >= 5, 30, "shipping under way")
    agent.stop(signal.SIGKILL)
    left = agent.pending()
    produced_before = set(agent.spooled_ids())
    # a fresh agent process picks up the spool
    agent.start()
    wait_for(lambda: agent.pending() == 0, 60, "spool drained after restart")
    agent.stop()
    ids = [r["report_id"] for r in ledger(col)]
    assert produced_before <= set(ids), f"lost: {produced_before - set(ids)}"
    assert left > 0, "the kill did not interrupt shipping; the test proved nothing"
    expected = sum(r["points"] for r in ledger(col))
    wait_for(lambda: influx_points(influxd, col) == expected, 30,
             f"{expected} points in InfluxDB")
    assert_each_point_written_once(col, expected)
