"""``GET /api/v1/uptime`` on a real collector (uvicorn over HTTPS, SQLite): stale state is
unknown time, transitions before the period count, pagination, pd-viewer scoping."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract.report import ProbeKind, ProbeResult, Report, new_report_id, utcnow
from tests.procs import Collector, TestCA
from tests.servers import InfluxD

pytestmark = pytest.mark.integration
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=4)
M = 60.0  # a minute, in seconds


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ts(minutes: float) -> float:
    return at(minutes).timestamp()


class Lab:
    def __init__(self, col: Collector, tokens: dict[str, str], keys: dict[str, str]) -> None:
        self.col, self.tokens, self.keys = col, tokens, keys

    def probes(self, agent: str, target: str, states: list[tuple[float, bool]]) -> None:
        """One report per observation, in time order (minutes after T0, up?)."""
        pd = agent.split("-")[0].upper()
        for minutes, up in states:
            obs = ProbeResult(observed_at=at(minutes), target=target, probe=ProbeKind.TCP,
                              address="10.0.0.1:443", up=up, rtt_ms=5.0 if up else None)
            r = Report(report_id=new_report_id(), agent_id=agent, pd_code=pd,
                       sent_at=utcnow(), observations=[obs])
            with self.col.client() as c:
                resp = c.post("/api/v1/reports",
                              content=gzip.compress(r.model_dump_json().encode()),
                              headers={"Authorization": f"Bearer {self.tokens[agent]}",
                                       "Content-Encoding": "gzip"})
            assert resp.status_code == 202, resp.text

    def get(self, role: str = "engineer", **params: Any) -> Any:
        return self.col.get("/api/v1/uptime", self.keys[role], **params)

    def status(self, role: str = "engineer", **params: Any) -> int:
        with self.col.client(self.keys[role]) as c:
            return c.get("/api/v1/uptime", params=params).status_code

    def one(self, target: str, **params: Any) -> dict[str, Any]:
        body = self.get(target=target, **params)
        assert isinstance(body, dict), f"expected a page, got {type(body).__name__}"
        assert body["total"] == 1 and len(body["items"]) == 1, body
        item: dict[str, Any] = body["items"][0]
        assert item["up_s"] + item["down_s"] + item["unknown_s"] == pytest.approx(
            item["end"] - item["start"], abs=0.01)
        return item


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, ca: TestCA,
        influxd: InfluxD) -> Iterator[Lab]:
    col = Collector(tmp_path_factory.mktemp("uptime"), ca, influxd.url,
                    influx_db="spbe_uptime")
    for pd in ("DINKES", "DISDIK", "BAPPEDA"):
        col.add_pd(pd, f"PD {pd}")
    tokens = {a: col.add_agent(a, a.split("-")[0].upper())
              for a in ("dinkes-gw", "dinkes-old", "disdik-gw", "bappeda-gw")}
    keys = {"engineer": col.add_key("eng", "engineer"),
            "viewer": col.add_key("dinkes-viewer", "pd-viewer", "DINKES")}
    col.start()
    yield Lab(col, tokens, keys)
    col.stop()


def test_silent_agent_leaves_unknown_time_not_up_time(lab: Lab) -> None:
    # up, down 10-15 min, up; last report at +20 min, then the agent is silent for good
    lab.probes("dinkes-old", "silent-web", [(0, True), (10, False), (15, True), (20, True)])
    r = lab.one("silent-web", start=ts(0), end=ts(120))
    # known until the last observation + default grace (900 s): +35 min, then unknown
    assert r["up_s"] == pytest.approx(30 * M) and r["down_s"] == pytest.approx(5 * M)
    assert r["unknown_s"] == pytest.approx(85 * M)
    assert r["known_until"] == pytest.approx(ts(20) + 900) and r["stale"] is True
    assert r["last_checked"] == pytest.approx(ts(20))
    assert r["availability_pct"] == pytest.approx(100 * 30 / 35, abs=1e-3)
    assert r["coverage_pct"] == pytest.approx(100 * 35 / 120, abs=1e-3)
    assert r["outages"] == 1 and r["state"] == "up"
    # a longer window only adds unknown time; availability is still over known time
    longer = lab.one("silent-web", start=ts(0), end=ts(180))
    assert longer["up_s"] == r["up_s"] and longer["down_s"] == r["down_s"]
    assert longer["unknown_s"] == pytest.approx(r["unknown_s"] + 60 * M)
    assert longer["availability_pct"] == r["availability_pct"]
    # open-ended window (end = now): unknown time keeps growing while the agent is silent
    first = lab.one("silent-web", start=ts(0))
    time.sleep(1.5)
    second = lab.one("silent-web", start=ts(0))
    assert second["unknown_s"] - first["unknown_s"] == pytest.approx(
        second["end"] - first["end"], abs=0.01)
    assert second["unknown_s"] > first["unknown_s"]
    assert second["up_s"] == first["up_s"] == r["up_s"]
    # the grace is a request parameter: none at all ends known time at the last observation
    strict = lab.one("silent-web", start=ts(0), end=ts(120), grace_s=0)
    assert strict["up_s"] == pytest.approx(15 * M) and strict["down_s"] == pytest.approx(5 * M)
    assert strict["availability_pct"] == pytest.approx(75.0)


def test_target_down_in_the_middle_of_the_period(lab: Lab) -> None:
    # probed every 10 min for 2 h, down from +30 to +50 min
    lab.probes("dinkes-gw", "mid-db", [(m, not 30 <= m < 50) for m in range(0, 121, 10)])
    r = lab.one("mid-db", start=ts(0), end=ts(120))
    assert r["down_s"] == pytest.approx(20 * M) and r["up_s"] == pytest.approx(100 * M)
    assert r["unknown_s"] == pytest.approx(0) and r["coverage_pct"] == pytest.approx(100)
    assert r["availability_pct"] == pytest.approx(100 * 100 / 120, abs=1e-3)
    assert r["outages"] == 1 and r["stale"] is False
    # a period starting inside the outage: down at its start, the outage began before it
    late = lab.one("mid-db", start=ts(40), end=ts(120))
    assert late["down_s"] == pytest.approx(10 * M) and late["up_s"] == pytest.approx(70 * M)
    assert late["outages"] == 0 and late["unknown_s"] == pytest.approx(0)


def test_transitions_before_the_period_start_are_honoured(lab: Lab) -> None:
    # flapping long before the period, then down (still down at +0), up from +20 min
    lab.probes("dinkes-gw", "early-dns",
               [(-180, False), (-170, True), (-160, False), (-10, False), (20, True),
                *((m, True) for m in range(40, 121, 20))])
    r = lab.one("early-dns", start=ts(0), end=ts(120))
    assert r["down_s"] == pytest.approx(20 * M) and r["up_s"] == pytest.approx(100 * M)
    assert r["unknown_s"] == pytest.approx(0) and r["outages"] == 0
    assert r["availability_pct"] == pytest.approx(100 * 100 / 120, abs=1e-3)
    # before the first observation the state is unknown
    wide = lab.one("early-dns", start=ts(-240), end=ts(120))
    assert wide["unknown_s"] == pytest.approx(60 * M) and wide["outages"] == 2


def test_only_the_state_at_the_start_and_the_period_are_loaded(lab: Lab) -> None:
    from sqlalchemy import select

    from collector.db import make_engine, probe_targets
    from collector.store import Store
    from collector.uptime import load_transitions

    lab.probes("dinkes-gw", "loaded-app",
               [(-200, True), (-190, False), (-180, True), (-170, False), (-5, False),
                (30, True), (60, False), (90, True), (200, True)])
    engine = make_engine(f"sqlite:///{lab.col.workdir / 'state.sqlite'}")
    store = Store(engine)
    try:
        tid = store.scalar(select(probe_targets.c.id)
                           .where(probe_targets.c.name == "loaded-app"))
        other = store.scalar(select(probe_targets.c.id)
                             .where(probe_targets.c.name == "mid-db"))
        got = load_transitions(store, [tid, other] if other else [tid], ts(0), ts(120))
    finally:
        store.close()
        engine.dispose()
    # the last transition before the start (down at -170) and those inside [0, 120)
    assert got[tid] == [(ts(-170), "down"), (ts(30), "up"), (ts(60), "down"),
                        (ts(90), "up")]
    r = lab.one("loaded-app", start=ts(0), end=ts(120))
    assert r["down_s"] == pytest.approx(60 * M) and r["up_s"] == pytest.approx(60 * M)
    assert r["outages"] == 1


def test_uptime_is_paginated_like_the_other_lists(lab: Lab) -> None:
    for name in ("p-c", "p-a", "p-b"):
        lab.probes("bappeda-gw", name, [(0, True)])
    page1 = lab.get(pd="BAPPEDA", limit=2, offset=0, start=ts(0), end=ts(60))
    page2 = lab.get(pd="BAPPEDA", limit=2, offset=2, start=ts(0), end=ts(60))
    assert (page1["total"], page1["limit"], page1["offset"]) == (3, 2, 0)
    assert [i["target"] for i in page1["items"]] == ["p-a", "p-b"]
    assert (page2["total"], page2["offset"]) == (3, 2)
    assert [i["target"] for i in page2["items"]] == ["p-c"]
    assert all(i["pd"] == "BAPPEDA" and i["agent"] == "bappeda-gw"
               for i in page1["items"] + page2["items"])
    default = lab.get(pd="BAPPEDA")
    assert default["limit"] == 100 and default["offset"] == 0 and default["total"] == 3
    assert lab.get(pd="BAPPEDA", offset=5)["items"] == []
    bad_pages: list[dict[str, Any]] = [{"limit": 0}, {"limit": 1001}, {"offset": -1}]
    for bad in bad_pages:
        assert lab.status(pd="BAPPEDA", **bad) == 422


def test_pd_viewer_without_pd_sees_only_its_own_pd(lab: Lab) -> None:
    lab.probes("dinkes-gw", "scope-dinkes", [(0, True)])
    lab.probes("disdik-gw", "scope-disdik", [(0, True)])
    everything = lab.get(limit=1000)
    assert {"DINKES", "DISDIK"} <= {i["pd"] for i in everything["items"]}
    mine = lab.get("viewer", limit=1000)
    assert mine["items"] and {i["pd"] for i in mine["items"]} == {"DINKES"}
    assert "scope-dinkes" in {i["target"] for i in mine["items"]}
    assert mine["total"] == lab.get(pd="DINKES", limit=1000)["total"]
    # another PD, asked for by name or through its agent or target, stays out of reach
    assert lab.status("viewer", pd="DISDIK") == 403
    assert lab.get("viewer", agent="disdik-gw")["total"] == 0
    assert lab.get("viewer", target="scope-disdik")["total"] == 0
    assert lab.get("viewer", pd="DINKES", target="scope-dinkes")["total"] == 1


def test_bad_periods_are_422(lab: Lab) -> None:
    assert lab.status(start=ts(60), end=ts(0)) == 422
    assert lab.status(grace_s=-1) == 422
    assert lab.status(grace_s="inf") == 422
    assert lab.status(period="1y") == 422
