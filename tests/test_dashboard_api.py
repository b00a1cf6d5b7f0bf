"""Dashboard API on a real collector: roles and PD scoping, lists, uptime, InfluxDB history."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.report import (
    Heartbeat,
    HostFacts,
    ProbeKind,
    ProbeResult,
    Report,
    new_report_id,
    utcnow,
)
from tests.procs import Collector, TestCA, wait_for
from tests.servers import InfluxD

pytestmark = pytest.mark.integration
# hour-aligned, because InfluxDB groups time() buckets on epoch-aligned boundaries
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def send(col: Collector, token: str, agent: str, pd: str, obs: list[Any]) -> None:
    r = Report(report_id=new_report_id(), agent_id=agent, pd_code=pd, sent_at=utcnow(),
               observations=obs)
    with col.client() as c:
        resp = c.post("/api/v1/reports", content=gzip.compress(r.model_dump_json().encode()),
                      headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"})
    assert resp.status_code == 202, resp.text


def probe(target: str, at: datetime, up: bool) -> ProbeResult:
    return ProbeResult(observed_at=at, target=target, probe=ProbeKind.TCP,
                       address="10.0.0.1:443", up=up, rtt_ms=5.0 if up else None)


@pytest.fixture(scope="module")
def col(tmp_path_factory: pytest.TempPathFactory, ca: TestCA,
        influxd: InfluxD) -> Iterator[Collector]:
    c = Collector(tmp_path_factory.mktemp("dash"), ca, influxd.url, influx_db="spbe_dash")
    keys = {}
    for pd in ("DINKES", "DISDIK", "BAPPEDA"):
        c.add_pd(pd, f"PD {pd}")
    t_dinkes = c.add_agent("dinkes-gw", "DINKES")
    t_disdik = c.add_agent("disdik-gw", "DISDIK")
    keys["admin"] = c.add_key("admin", "admin")
    keys["engineer"] = c.add_key("eng", "engineer")
    keys["viewer"] = c.add_key("dinkes-viewer", "pd-viewer", "DINKES")
    c.keys = keys  # type: ignore[attr-defined]
    c.start()
    # DINKES: "pusat-data" up 2h ago, down from +30 min to +60 min, up since (75 % of 2 h)
    send(c, t_dinkes, "dinkes-gw", "DINKES", [
        Heartbeat(observed_at=utcnow(), agent_version="t", uptime_s=5),
        HostFacts(observed_at=utcnow(), hostname="gw-dinkes", os="Debian", kernel="6.1",
                  uptime_s=100, addresses=[], routes=[]),
        probe("pusat-data", T0, True)])
    send(c, t_dinkes, "dinkes-gw", "DINKES", [probe("pusat-data", T0 + timedelta(minutes=30),
                                                    False)])
    send(c, t_dinkes, "dinkes-gw", "DINKES", [probe("pusat-data", T0 + timedelta(minutes=60),
                                                    True)])
    send(c, t_disdik, "disdik-gw", "DISDIK", [
        Heartbeat(observed_at=utcnow(), agent_version="t", uptime_s=5),
        probe("portal", T0, True)])
    yield c
    c.stop()


def key(col: Collector, role: str) -> str:
    k: str = col.keys[role]  # type: ignore[attr-defined]
    return k


def status(col: Collector, path: str, api_key: str | None, **params: Any) -> int:
    with col.client(api_key) as c:
        return c.get(path, params=params).status_code


def test_api_keys_required_and_checked(col: Collector) -> None:
    assert status(col, "/api/v1/pds", None) == 401
    assert status(col, "/api/v1/pds", "spbe_key_wrong") == 401
    assert status(col, "/api/v1/health", None) == 200


def test_pd_viewer_sees_only_its_pd(col: Collector) -> None:
    v = key(col, "viewer")
    pds = col.get("/api/v1/pds", v)
    assert [p["code"] for p in pds["items"]] == ["DINKES"]
    assert status(col, "/api/v1/pds/DISDIK", v) == 403
    assert status(col, "/api/v1/agents", v, pd="DISDIK") == 403
    assert status(col, "/api/v1/probes", v, pd="DISDIK") == 403
    assert status(col, "/api/v1/uptime", v, pd="DISDIK") == 403
    assert status(col, "/api/v1/probes/history", v, pd="DISDIK", target="portal") == 403
    agents = col.get("/api/v1/agents", v)["items"]
    assert [a["agent_id"] for a in agents] == ["dinkes-gw"]
    probes = col.get("/api/v1/probes", v)["items"]
    assert {p["pd"] for p in probes} == {"DINKES"}


def test_engineer_sees_all_with_pagination_and_filters(col: Collector) -> None:
    e = key(col, "engineer")
    page1 = col.get("/api/v1/pds", e, limit=2, offset=0)
    page2 = col.get("/api/v1/pds", e, limit=2, offset=2)
    assert page1["total"] == 3 and len(page1["items"]) == 2 and len(page2["items"]) == 1
    assert [p["code"] for p in page1["items"] + page2["items"]] == ["BAPPEDA", "DINKES",
                                                                    "DISDIK"]
    assert col.get("/api/v1/pds", e, q="dik")["total"] == 1
    assert status(col, "/api/v1/pds", e, limit=0) == 422
    online = col.get("/api/v1/agents", e, status="online")
    assert {a["agent_id"] for a in online["items"]} == {"dinkes-gw", "disdik-gw"}
    assert col.get("/api/v1/agents", e, status="offline")["total"] == 0
    hosts = col.get("/api/v1/hosts", e)["items"]
    assert [h["hostname"] for h in hosts] == ["gw-dinkes"]
    down = col.get("/api/v1/probes", e, state="down")
    assert down["total"] == 0
    assert col.get("/api/v1/probes", e, pd="DISDIK")["items"][0]["target"] == "portal"


def test_uptime_from_state_transitions(col: Collector) -> None:
    e = key(col, "engineer")
    start = T0.timestamp()
    end = (T0 + timedelta(hours=2)).timestamp()
    # the last probe is at T0+60 min: with the default grace (900 s) the state after
    # T0+75 min is unknown; with an hour of grace the whole period is known
    page = col.get("/api/v1/uptime", e, pd="DINKES", start=start, end=end, grace_s=3600)
    assert page["total"] == 1
    r = page["items"][0]
    assert r["target"] == "pusat-data" and r["outages"] == 1
    assert r["availability_pct"] == pytest.approx(75.0, abs=0.01)
    assert r["down_s"] == pytest.approx(1800, abs=1)
    assert r["coverage_pct"] == pytest.approx(100.0, abs=0.01) and not r["stale"]
    (short,) = col.get("/api/v1/uptime", e, pd="DINKES", start=start, end=end)["items"]
    assert short["stale"] and short["unknown_s"] == pytest.approx(2700, abs=1)
    assert short["availability_pct"] == pytest.approx(60.0, abs=0.01)


def test_probe_latest_and_history_from_influxdb(col: Collector) -> None:
    e = key(col, "engineer")
    wait_for(lambda: len(col.get("/api/v1/probes/history", e, target="pusat-data",
                                 start=T0.timestamp() - 1, end=time.time())) == 3,
             20, "3 history points")
    hist = col.get("/api/v1/probes/history", e, target="pusat-data", start=T0.timestamp() - 1,
                   end=time.time())
    assert [h["up"] for h in hist] == [1, 0, 1]
    agg = col.get("/api/v1/probes/history", e, target="pusat-data", start=T0.timestamp(),
                  end=(T0 + timedelta(hours=2)).timestamp(), interval_s=3600)
    assert [round(a["availability"], 3) for a in agg] == [0.5, 1.0]
    latest = col.get("/api/v1/probes/latest", e, pd="DINKES")
    assert len(latest) == 1 and latest[0]["target"] == "pusat-data" and latest[0]["up"] == 1


def test_openapi_documented(col: Collector) -> None:
    with col.client() as c:
        spec = c.get("/openapi.json").json()
        assert c.get("/docs").status_code == 200
    for path in ("/api/v1/reports", "/api/v1/pds", "/api/v1/agents", "/api/v1/hosts",
                 "/api/v1/probes", "/api/v1/uptime", "/api/v1/health"):
        assert path in spec["paths"]


def test_absurd_parameters_are_422(col: Collector) -> None:
    e = key(col, "engineer")
    for params in ({"start": "-inf"}, {"start": "nan"}, {"end": "1e300"}):
        assert status(col, "/api/v1/uptime", e, **params) == 422
        assert status(col, "/api/v1/probes/history", e, target="x", **params) == 422
    assert status(col, "/api/v1/changes/99999999999999999999999", e) == 422


def test_dashboard_bodies_are_limited_before_auth(col: Collector) -> None:
    with col.client() as c:
        r = c.put("/api/v1/pds/DINKES/registered-devices", content=b"x" * (9 * 1024 * 1024),
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_like_wildcards_are_literal(col: Collector) -> None:
    e = key(col, "engineer")
    assert col.get("/api/v1/pds", e, q="%")["total"] == 0
    assert col.get("/api/v1/pds", e, q="_")["total"] == 0
