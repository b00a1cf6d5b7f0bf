"""The same ingest path on PostgreSQL, and the influxdb-client v2 transport on a real
``/api/v2/write`` server (VictoriaMetrics)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.config import InfluxCfg
from collector.influx import V2Writer
from contract.report import Heartbeat, ProbeKind, ProbeResult, Report, new_report_id, utcnow
from tests.procs import Collector, TestCA, ledger
from tests.servers import InfluxD, Postgres, VictoriaMetrics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres(tmp_path_factory.mktemp("pg"))
    pg.start()
    yield pg
    pg.close()


def test_collector_on_postgresql(tmp_path: Path, ca: TestCA, influxd: InfluxD,
                                 postgres: Postgres) -> None:
    col = Collector(tmp_path / "c", ca, influxd.url, database_url=postgres.sqlalchemy_url,
                    influx_db="spbe_pg")
    col.add_pd("DINKES")
    token = col.add_agent("dinkes-gw", "DINKES")
    key = col.add_key("viewer", "pd-viewer", "DINKES")
    assert "alembic_version" in postgres.psql("\\dt")
    col.start()
    try:
        now = utcnow()
        r = Report(report_id=new_report_id(), agent_id="dinkes-gw", pd_code="DINKES",
                   sent_at=now, observations=[
                       Heartbeat(observed_at=now, agent_version="t", uptime_s=1),
                       ProbeResult(observed_at=now, target="pd", probe=ProbeKind.ICMP,
                                   address="10.0.0.1", up=False, loss_pct=100)])
        body = gzip.compress(r.model_dump_json().encode())
        headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
        with col.client() as c:
            assert c.post("/api/v1/reports", content=body, headers=headers).status_code == 202
            assert c.post("/api/v1/reports", content=body, headers=headers).status_code == 200
        assert ledger(col) == [{"report_id": str(r.report_id), "points": 2}]
        probes = col.get("/api/v1/probes", key)["items"]
        assert [(p["target"], p["state"]) for p in probes] == [("pd", "down")]
        count = postgres.psql("SELECT count(*) FROM state_transitions").split()
        assert "1" in count
    finally:
        col.stop()
    # migrations are idempotent: a second run changes nothing
    col.cli("migrate")


def test_v2_writer_against_real_api_v2_write(tmp_path: Path) -> None:
    with VictoriaMetrics(tmp_path / "vm") as vm:
        vm.start()
        cfg = InfluxCfg(url=vm.url, api="v2", bucket="spbe", org="spbe")  # type: ignore[arg-type]
        w = V2Writer(cfg)
        lines = [f"probe,pd=DINKES,agent=a,target=t{i} up=1i,rtt_ms={i}.5 {1_700_000_000 + i}"
                 f"000000000" for i in range(250)]
        for i in range(0, 250, 100):
            w.write(lines[i:i + 100])
        w.close()
        assert vm.count_samples('{__name__="probe_rtt_ms"}') == 250
        assert vm.count_samples('{__name__="probe_up"}') == 250


def test_v1_replay_is_idempotent(influxd: InfluxD) -> None:
    """The outbox may write a batch twice (crash between write and delete): same series and
    timestamp overwrite, so InfluxDB still holds each point once."""
    from collector.influx import V1Client

    client = V1Client(InfluxCfg(url=influxd.url, database="spbe_replay"))  # type: ignore[arg-type]
    lines = [f"probe,pd=P,agent=a,target=t up=1i,rtt_ms={i}.0 {1_700_000_000 + i}000000000"
             for i in range(100)]
    client.write(lines)  # creates the database on first write
    client.write(lines)
    client.close()
    assert influxd.count("probe", "spbe_replay") == 100


def test_state_database_down_is_a_503_and_the_agent_keeps_the_report(
        tmp_path: Path, ca: TestCA, influxd: InfluxD, postgres: Postgres) -> None:
    """PostgreSQL stopped under a running collector: ingest answers 503 (retry later, the
    agent keeps the report) instead of 500; once it is back the same report is accepted."""
    col = Collector(tmp_path / "c", ca, influxd.url, database_url=postgres.sqlalchemy_url,
                    influx_db="spbe_pg_down")
    col.add_pd("DOWN")
    token = col.add_agent("down-gw", "DOWN")
    col.start()
    try:
        now = utcnow()
        r = Report(report_id=new_report_id(), agent_id="down-gw", pd_code="DOWN",
                   sent_at=now, observations=[Heartbeat(observed_at=now, agent_version="t",
                                                        uptime_s=1)])
        body = gzip.compress(r.model_dump_json().encode())
        headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
        with col.client() as c:   # the token is cached now: auth needs no database
            assert c.get("/api/v1/agent/whoami",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
        postgres.stop()
        try:
            with col.client() as c:
                resp = c.post("/api/v1/reports", content=body, headers=headers)
            assert resp.status_code == 503, resp.text
            assert resp.headers["Retry-After"] == "30"
            assert "state store unavailable" in resp.json()["detail"]
            assert postgres.sqlalchemy_url.split("@")[0] not in resp.text
        finally:
            postgres.start()
        with col.client() as c:
            assert c.post("/api/v1/reports", content=body, headers=headers).status_code == 202
    finally:
        col.stop()
