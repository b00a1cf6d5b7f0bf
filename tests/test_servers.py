"""tests/servers.py runs real servers (needs scripts/install-test-deps.sh)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.servers import InfluxD, InfluxError, Postgres, VictoriaMetrics, http_request

pytestmark = pytest.mark.integration


def test_influxd_write_count_survives_restart(tmp_path: Path) -> None:
    with InfluxD(tmp_path / "influx") as influx:
        assert influx.ping()
        influx.create_database("spbe")
        url = f"{influx.url}/write?db=spbe&precision=ns"
        plain = b"ping_rtt,target=a rtt_ms=1.5 1700000000000000000\n"
        plain += b"ping_rtt,target=b rtt_ms=2.5 1700000000000000000\n"
        status, body = http_request(url, plain)
        assert status == 204, body
        gz = gzip.compress(b"ping_rtt,target=a rtt_ms=3.5,loss=0i 1700000001000000000\n")
        status, body = http_request(url, gz, {"Content-Encoding": "gzip"})
        assert status == 204, body
        assert influx.count("ping_rtt", "spbe") == 3
        assert influx.count("ping_rtt", "spbe", field="loss") == 1

        port = influx.port
        influx.stop()
        assert not influx.ping()
        influx.stop()  # idempotent
        influx.start()
        assert influx.port == port
        assert influx.count("ping_rtt", "spbe") == 3
        with pytest.raises(InfluxError, match="database not found"):
            influx.query("SELECT * FROM ping_rtt", "nope")
    assert not influx.running


def test_victoria_metrics_counts_line_protocol_samples(tmp_path: Path) -> None:
    with VictoriaMetrics(tmp_path / "vm") as vm:
        lines = (
            b"ping_rtt,target=a rtt_ms=1.5 1700000000000000000\n"
            b"ping_rtt,target=a rtt_ms=2.5 1700000001000000000\n"
        )
        status, body = http_request(f"{vm.url}/api/v2/write?bucket=x&org=y&precision=ns", lines)
        assert status == 204, body
        assert vm.count_samples("ping_rtt_rtt_ms") == 2
        assert vm.series_values("ping_rtt_rtt_ms") == [1.5, 2.5]
        status, body = http_request(f"{vm.url}/write?db=spbe", b"up,host=h value=1\n")
        assert status == 204, body
        assert vm.count_samples('{__name__="up_value",db="spbe"}') == 1
        vm.restart()
        assert vm.count_samples("ping_rtt_rtt_ms") == 2


def test_postgres_roundtrip(tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    with Postgres(tmp_path / "pg") as pg:
        assert pg.sqlalchemy_url.startswith("postgresql+psycopg://spbe:spbe-test@127.0.0.1:")
        with psycopg.connect(pg.sqlalchemy_url.replace("+psycopg", "")) as conn:
            conn.execute("CREATE TABLE device (id serial PRIMARY KEY, name text NOT NULL)")
            conn.execute("INSERT INTO device (name) VALUES (%s), (%s)", ("sw1", "sw2"))
            conn.commit()
            rows = conn.execute("SELECT name FROM device ORDER BY id").fetchall()
            assert rows == [("sw1",), ("sw2",)]
        pg.restart()
        assert pg.psql("SELECT count(*) FROM device").strip() == "2"
        assert pg.psql("SELECT current_user").strip() == "postgres"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(pg.dsn.replace("spbe-test", "wrong"))
