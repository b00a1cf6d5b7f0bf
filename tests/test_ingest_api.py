"""The agent-facing ingest API over real HTTPS: auth, limits, validation, idempotency."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from contract.report import Heartbeat, ProbeKind, ProbeResult, Report, new_report_id, utcnow
from tests.procs import Collector, TestCA, ledger
from tests.servers import InfluxD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def col(tmp_path_factory: pytest.TempPathFactory, ca: TestCA,
        influxd: InfluxD) -> Iterator[Collector]:
    c = Collector(tmp_path_factory.mktemp("ingest"), ca, influxd.url, influx_db="spbe_ingest",
                  extra={"limits": {"max_body_bytes": 64 * 1024,
                                    "max_decompressed_bytes": 512 * 1024},
                         "clock_skew_max_s": 30})
    c.add_pd("DINKES")
    c.add_pd("DISDIK")
    c.tokens = {"dinkes-gw": c.add_agent("dinkes-gw", "DINKES")}  # type: ignore[attr-defined]
    c.admin = c.add_key("admin", "admin")  # type: ignore[attr-defined]
    c.start()
    yield c
    c.stop()


def report(agent: str = "dinkes-gw", pd: str = "DINKES", n_probes: int = 1) -> Report:
    now = utcnow()
    obs: list[Any] = [Heartbeat(observed_at=now, agent_version="t", uptime_s=1)]
    obs += [ProbeResult(observed_at=now + timedelta(microseconds=i), target=f"t{i}",
                        probe=ProbeKind.TCP, address="127.0.0.1:1", up=True, rtt_ms=1.0)
            for i in range(n_probes)]
    return Report(report_id=new_report_id(), agent_id=agent, pd_code=pd, sent_at=now,
                  observations=obs)


def post(col: Collector, body: bytes, token: str | None, gz: bool = True,
         headers: dict[str, str] | None = None) -> httpx.Response:
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    if gz:
        body = gzip.compress(body)
        h["Content-Encoding"] = "gzip"
    with col.client() as c:
        return c.post("/api/v1/reports", content=body, headers=h)


def token(col: Collector) -> str:
    t: str = col.tokens["dinkes-gw"]  # type: ignore[attr-defined]
    return t


def test_accepts_and_dedupes(col: Collector) -> None:
    r = report(n_probes=3)
    body = r.model_dump_json().encode()
    first = post(col, body, token(col))
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted" and first.json()["points"] == 4
    again = post(col, body, token(col))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    rows = [x for x in ledger(col) if x["report_id"] == str(r.report_id)]
    assert rows == [{"report_id": str(r.report_id), "points": 4}]


def test_unknown_or_missing_token_401(col: Collector) -> None:
    body = report().model_dump_json().encode()
    assert post(col, body, "spbe_agent_nope").status_code == 401
    assert post(col, body, None).status_code == 401


def test_report_for_another_pd_403(col: Collector) -> None:
    before = len(ledger(col))
    resp = post(col, report(pd="DISDIK").model_dump_json().encode(), token(col))
    assert resp.status_code == 403
    assert "DISDIK" in resp.json()["detail"]
    resp = post(col, report(agent="other-gw").model_dump_json().encode(), token(col))
    assert resp.status_code == 403
    assert len(ledger(col)) == before


def test_body_over_limit_413(col: Collector) -> None:
    big = report(n_probes=1000).model_dump_json().encode()  # > 64 KiB compressed? no: raw
    assert post(col, big, token(col), gz=False).status_code == 413
    # a gzip bomb: small on the wire, huge when inflated
    bomb = gzip.compress(b'{"a": "' + b"x" * (8 * 1024 * 1024) + b'"}')
    assert len(bomb) < 64 * 1024
    resp = post(col, bomb, token(col), gz=False, headers={"Content-Encoding": "gzip"})
    assert resp.status_code == 413


def test_invalid_report_422_with_field_paths_and_no_partial_write(col: Collector) -> None:
    before = ledger(col)
    good = json.loads(report(n_probes=2).model_dump_json())
    good["observations"][2]["rtt_ms"] = -5  # third observation is invalid; first two are fine
    resp = post(col, json.dumps(good).encode(), token(col))
    assert resp.status_code == 422
    locs = [d["loc"] for d in resp.json()["detail"]]
    assert any(loc.startswith("observations.2.") and loc.endswith("rtt_ms") for loc in locs), locs
    assert "-5" not in resp.text  # the input is not echoed back
    assert ledger(col) == before


@pytest.mark.parametrize("body,status", [
    (b"not json at all", 422),
    (b'{"schema_version": 99}', 422),
    (b"[]", 422),
    (b'{"observations": [' + b"{}," * 10 + b"{}]}", 422),
])
def test_garbage_bodies(col: Collector, body: bytes, status: int) -> None:
    assert post(col, body, token(col)).status_code == status


def test_bad_encodings(col: Collector) -> None:
    body = report().model_dump_json().encode()
    assert post(col, body, token(col), gz=False,
                headers={"Content-Encoding": "br"}).status_code == 415
    assert post(col, b"\x1f\x8b\x08garbage", token(col), gz=False,
                headers={"Content-Encoding": "gzip"}).status_code == 400
    truncated = gzip.compress(body)[:-12]
    assert post(col, truncated, token(col), gz=False,
                headers={"Content-Encoding": "gzip"}).status_code == 400


def test_naive_timestamps_refused(col: Collector) -> None:
    data = json.loads(report().model_dump_json())
    data["sent_at"] = "2026-11-25T10:00:00"
    resp = post(col, json.dumps(data).encode(), token(col))
    assert resp.status_code == 422
    assert any(d["loc"] == "sent_at" for d in resp.json()["detail"])


def test_clock_skew_is_detected_per_agent(col: Collector) -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    resp = post(col, report().model_dump_json().encode(), token(col),
                headers={"X-Agent-Time": ahead})
    assert resp.status_code == 202
    assert 590 < resp.json()["clock_skew_s"] < 610
    agents = col.get("/api/v1/agents", col.admin)["items"]  # type: ignore[attr-defined]
    me = next(a for a in agents if a["agent_id"] == "dinkes-gw")
    assert me["clock_skew_ok"] is False and 590 < me["clock_skew_s"] < 610
    now = datetime.now(UTC).isoformat()
    post(col, report().model_dump_json().encode(), token(col), headers={"X-Agent-Time": now})
    me = next(a for a in col.get("/api/v1/agents", col.admin)["items"]  # type: ignore[attr-defined]
              if a["agent_id"] == "dinkes-gw")
    assert me["clock_skew_ok"] is True


def test_whoami(col: Collector) -> None:
    with col.client() as c:
        r = c.get("/api/v1/agent/whoami", headers={"Authorization": f"Bearer {token(col)}"})
    assert r.json() == {"agent_id": "dinkes-gw", "pd_code": "DINKES"}


@pytest.mark.parametrize("mutate,loc_part", [
    (lambda d: d["observations"][0].update(agent_version="v\u0000"), "(body)"),
    (lambda d: d["observations"][0].update(observed_at="2999-01-01T00:00:00Z"), "observed_at"),
    (lambda d: d["observations"][0].update(spool_pending=2**70), "spool_pending"),
])
def test_hostile_values_are_422_not_500(col: Collector, mutate: Any, loc_part: str) -> None:
    """Values that would poison PostgreSQL text, InfluxDB time or SQL integers are refused
    up front, so a bad report can never block the agent's spool with endless 5xx."""
    before = ledger(col)
    data = json.loads(report().model_dump_json())
    mutate(data)
    resp = post(col, json.dumps(data).encode(), token(col))
    assert resp.status_code == 422, resp.text
    assert any(loc_part in d["loc"] for d in resp.json()["detail"])
    assert ledger(col) == before


def test_admin_cli_revoke_rotate_list_and_code_checks(col: Collector) -> None:
    """Tokens and keys are revoked and rotated with the CLI; lists never show a secret;
    codes the report contract would refuse are refused when registered."""
    a = col.add_agent("revoked-gw", "DINKES")
    b = col.add_agent("rotated-gw", "DINKES")
    col.cli("agent", "revoke", "revoked-gw")
    assert post(col, report("revoked-gw").model_dump_json().encode(), a).status_code == 401
    new_b = col.cli("agent", "rotate", "rotated-gw")
    assert new_b != b
    assert post(col, report("rotated-gw").model_dump_json().encode(), b).status_code == 401
    assert post(col, report("rotated-gw").model_dump_json().encode(), new_b).status_code == 202
    key = col.add_key("temp-eng", "engineer")
    with col.client(key) as c:
        assert c.get("/api/v1/pds").status_code == 200
        col.cli("apikey", "revoke", "temp-eng")
        assert c.get("/api/v1/pds").status_code == 401
    agents_out = col.cli("agent", "list")
    keys_out = col.cli("apikey", "list")
    assert any(ln.split()[:3] == ["revoked-gw", "DINKES", "True"]
               for ln in agents_out.splitlines()), agents_out
    assert any(ln.split()[:4] == ["temp-eng", "engineer", "-", "True"]
               for ln in keys_out.splitlines()), keys_out
    for secret in (a, b, new_b, key):
        assert secret not in agents_out + keys_out
    for args, says in ((("pd", "add", "dinas kesehatan", "Dinas Kesehatan"), "PD code"),
                       (("agent", "add", "a b/../c", "--pd", "DINKES"), "agent id"),
                       (("agent", "revoke", "nobody-gw"), "unknown agent")):
        with pytest.raises(RuntimeError, match=f"{says}.*"):
            col.cli(*args)


def test_escaped_backslash_before_u0000_is_not_a_nul(col: Collector) -> None:
    rep = report()
    data = json.loads(rep.model_dump_json())
    data["observations"][0]["agent_version"] = "C:\\u0000dir"   # the text, no NUL in it
    r = post(col, json.dumps(data).encode(), token(col))
    assert r.status_code == 202, r.text


def test_future_stamped_observations_are_taken_as_observed_at_arrival(col: Collector) -> None:
    """An agent whose clock was a year ahead once: its 'up' must not hold the target's state
    against later real 'down' results."""
    now = utcnow()
    ahead = Report(report_id=new_report_id(), agent_id="dinkes-gw", pd_code="DINKES",
                   sent_at=now, observations=[ProbeResult(
                       observed_at=now + timedelta(days=365), target="skewed",
                       probe=ProbeKind.TCP, address="10.0.0.9:22", up=True, rtt_ms=1.0)])
    r = post(col, ahead.model_dump_json().encode(), token(col))
    assert r.status_code == 202 and r.json()["future_clamped"] == 1, r.text
    later = utcnow() + timedelta(seconds=1)
    down = Report(report_id=new_report_id(), agent_id="dinkes-gw", pd_code="DINKES",
                  sent_at=later, observations=[ProbeResult(
                      observed_at=later, target="skewed", probe=ProbeKind.TCP,
                      address="10.0.0.9:22", up=False, error="timeout")])
    r = post(col, down.model_dump_json().encode(), token(col))
    assert r.status_code == 202 and r.json()["future_clamped"] == 0, r.text
    with col.client(col.admin) as c:  # type: ignore[attr-defined]
        items = c.get("/api/v1/probes", params={"pd": "DINKES"}).json()["items"]
    (t,) = [i for i in items if i["target"] == "skewed"]
    assert t["state"] == "down"
    assert t["last_checked"] <= time.time() + 1   # not a year ahead
