"""More compliance scenarios with real sources (see tests/test_compliance_real.py): real agent
processes ship to real collector processes, one per region profile.

- a real TCP listener standing for the Pusat Data, probed by ``spbe-agent run``; the listener
  is stopped, so the Pusat Data becomes unreachable from the PD (INTRA-1);
- the network lab (tests/netlab.py) polled over SNMP: a LAN device polled with a wrong
  community (LAN-1), a PD without an approved LAN diagram (LAN-2), a cut cable that nobody
  reports (LAN-3);
- a real TCP service of the Pusat Data probed by the Dinas' agent, down for longer than its
  monthly SLA allows (DC-2);
- a real restic repository checked by the agent, its backup server abroad (DC-3).

Each violation is checked with its article in two regions, then the cause is removed in the
real source (or the diagram approved / the change acknowledged through the API) and the
violation must resolve. DC-2 is the exception: a month whose downtime broke the SLA stays
broken until the next month (tests/test_compliance_rules.py runs that with a set clock).
Thresholds are shortened through the profiles' ``params``. WEB-1 is not here: its
portal-domain check reads the site model only, and a website under the portal domain cannot
be resolved by DNS on a test machine.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.test_compliance_collector as tcc
from tests.procs import Agent, TestCA, wait_for
from tests.servers import InfluxD
from tests.test_compliance_collector import Region, start_regions
from tests.test_compliance_real import FAST, _restic, agents

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REGIONS = ("lebak-2024", "bogor-2021", "solok-2020", "bogor-perda")
PDS = ("INTRA", "LANPD", "DCX", "DISKOMINFO", "NOBODY")
QUICK = {**FAST, "probes_s": 2}
_SCENARIO_PROFILE = tcc.scenario_profile


def _short_profile(key: str, tmp: Path) -> Path:
    """The scenario profile with INTRA-1 and LAN-1 thresholds of seconds."""
    path = _SCENARIO_PROFILE(key, tmp)
    data = yaml.safe_load(path.read_text())
    obs = data["obligations"]
    if "INTRA-1" in obs:
        obs["INTRA-1"].setdefault("params", {})["unreachable_after_minutes"] = 0.1
    if "LAN-1" in obs:
        obs["LAN-1"]["params"] = {"unpollable_after_hours": 5 / 3600}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory, ca: TestCA,
            influxd: InfluxD) -> Iterator[dict[str, Region]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tcc, "scenario_profile", _short_profile)
        out = start_regions(tmp_path_factory, ca, influxd.url, REGIONS, PDS, "real2")
    try:
        yield out
    finally:
        for r in out.values():
            r.col.stop()


# --- a Pusat Data service that stops answering: INTRA-1 ------------------------------------

class _Quiet(socketserver.BaseRequestHandler):
    def handle(self) -> None:   # accept and close: enough for a TCP probe
        return


class _Listener(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class TcpService:
    """A TCP listener on 127.0.0.1 standing for a Pusat Data service (stop/start at will)."""

    def __init__(self) -> None:
        self.port = 0
        self._srv: _Listener | None = None
        self._th: threading.Thread | None = None

    def start(self) -> int:
        self._srv = _Listener(("127.0.0.1", self.port), _Quiet)
        self.port = int(self._srv.server_address[1])
        self._th = threading.Thread(target=self._srv.serve_forever,
                                    kwargs={"poll_interval": 0.1}, daemon=True)
        self._th.start()
        return self.port

    def stop(self) -> None:
        if self._srv is not None:
            self._srv.shutdown()
            self._srv.server_close()
            self._srv = None
        if self._th is not None:
            self._th.join(10)
            self._th = None


def _probe_state(r: Region, state: str) -> dict[str, Any] | None:
    items = r.call("GET", "/api/v1/probes", params={"pd": "INTRA"}).json()["items"]
    found: dict[str, Any] | None = next(
        (p for p in items if p["target"] == "pusat-data-core" and p["state"] == state), None)
    return found


def test_pusat_data_unreachable_from_a_pd(regions: dict[str, Region], tmp_path: Path) -> None:
    keys = ("lebak-2024", "solok-2020")
    svc = TcpService()
    port = svc.start()
    probe = {"name": "pusat-data-core", "type": "tcp", "host": "127.0.0.1", "port": port,
             "timeout_s": 1}
    try:
        with agents([Agent(tmp_path / f"agent-{k}", regions[k].col, "intra-gw", "INTRA",
                           regions[k].tokens["INTRA"], probes=[probe], intervals=QUICK).start()
                     for k in keys]):
            for k in keys:    # reachable first: no violation (an agent registered long
                # before it first reports may have been flagged silent; that clears now)
                wait_for(lambda k=k: _probe_state(regions[k], "up"), 60, f"{k}: probe up")
                wait_for(lambda k=k: not [
                    v for v in regions[k].violations(pd="INTRA", obligation="INTRA-1",
                                                     status="active")
                    if v["subject"] == "agent:intra-gw"], 30, f"{k}: no INTRA-1")
            svc.stop()        # the Pusat Data service is gone
            cut = {k: regions[k].wait_open("INTRA", "INTRA-1", "agent:intra-gw", timeout=60,
                                           says="Pusat Data tidak dapat dijangkau")
                   for k in keys}
            (t,) = cut["lebak-2024"]["evidence"]["targets"]
            assert (t["name"], t["state"]) == ("pusat-data-core", "down")
            assert "127.0.0.1" in t["address"] and t["last_error"]
            assert "pusat-data-core" in cut["solok-2020"]["message"]
            svc.start()       # it answers again on the same port
            for k, v in cut.items():
                regions[k].wait_resolved(v["id"], timeout=60)
    finally:
        svc.stop()


# --- the network lab: LAN-1, LAN-2, LAN-3 --------------------------------------------------

def test_lan_unpollable_device_diagram_and_unreported_change(regions: dict[str, Region],
                                                             tmp_path: Path) -> None:
    from tests.netlab import Lab

    keys = ("lebak-2024", "bogor-2021")
    bad = tmp_path / "sw1-community"
    bad.write_text("not-the-community\n")
    bad.chmod(0o600)
    with Lab.start() as lab:
        good = lab.snmp.community.path
        snmp = {"version": "2c", "timeout_s": 1, "retries": 0}
        polled = [{"name": n, "host": lab.devices[n].mgmt_ip, "platform": "snmp",
                   "snmp": {**snmp, "community": {"file": str(c)}}}
                  for n, c in (("dinkes-rtr", good), ("dinkes-sw1", bad))]
        made = [Agent(tmp_path / f"agent-{k}", regions[k].col, "lanpd-gw", "LANPD",
                      regions[k].tokens["LANPD"], devices=polled, intervals=QUICK).start()
                for k in keys]
        with agents(made):
            # LAN-1: dinkes-sw1 does not answer the agent's community
            unpolled = {k: regions[k].wait_open("LANPD", "LAN-1", "device:dinkes-sw1",
                                                timeout=90) for k in keys}
            ev = unpolled["lebak-2024"]["evidence"]
            assert (ev["last_status"], ev["mgmt_address"]) == (
                "failed", lab.devices["dinkes-sw1"].mgmt_ip)
            assert ev["last_answered_at"] is None and ev["error"]
            # LAN-2: no approved LAN diagram (the router is discovered meanwhile)
            nodiag = {k: regions[k].wait_open("LANPD", "LAN-2", "pd:LANPD", timeout=60)
                      for k in keys}
            for k in keys:
                assert not [v for v in regions[k].violations(pd="LANPD", obligation="LAN-1",
                                                             status="active")
                            if v["subject"] == "device:dinkes-rtr"]
            # the right community: polling works again
            bad.write_text(good.read_text())
            for a in made:
                a.stop()
                a.start()
            for k, v in unpolled.items():
                regions[k].wait_resolved(v["id"], timeout=90)
            # the diagram is approved (the rtr - sw1 cable is in it)
            for k in keys:
                resp = regions[k].call("POST", "/api/v1/pds/LANPD/topology/baseline")
                assert resp.status_code == 201, resp.text
                base = regions[k].call("GET", "/api/v1/pds/LANPD/topology/baseline").json()
                links = {frozenset((lk["a"], lk["b"])) for lk in base["links"]}
                assert {"dinkes-rtr", "dinkes-sw1"} in links, links
            for k, v in nodiag.items():
                regions[k].wait_resolved(v["id"], timeout=60)
            # the rtr - sw1 cable is cut and nobody reports it
            lab.cut_link("dinkes-rtr", "dinkes-sw1")
            unreported = {}
            for k in keys:
                (ch,) = wait_for(lambda k=k: regions[k].call(
                    "GET", "/api/v1/pds/LANPD/changes",
                    params={"status": "open"}).json()["items"] or None, 60, f"{k}: change")
                assert ch["type"] == "link_removed"
                unreported[k] = (ch, regions[k].wait_open("LANPD", "LAN-3",
                                                          f"change:{ch['id']}", timeout=60))
                assert "Link terputus" in unreported[k][1]["message"]
            # reported (acknowledged) through the API
            for k, (ch, v) in unreported.items():
                resp = regions[k].call("POST", f"/api/v1/changes/{ch['id']}/ack",
                                       json={"note": "Kabel diputus untuk penataan rak"})
                assert resp.status_code == 200, resp.text
                regions[k].wait_resolved(v["id"], timeout=60)


# --- the Pusat Data's own service below its SLA: DC-2 -------------------------------------

def test_pusat_data_service_down_longer_than_its_sla(regions: dict[str, Region],
                                                     tmp_path: Path) -> None:
    keys = [k for k in REGIONS if regions[k].has("DC-2")][:2]
    assert len(keys) == 2
    svc = TcpService()
    port = svc.start()
    probe = {"name": "pusat-data-simpeg", "type": "tcp", "host": "127.0.0.1", "port": port,
             "timeout_s": 1}
    subject = "service:diskominfo-gw/pusat-data-simpeg"
    try:
        with agents([Agent(tmp_path / f"agent-{k}", regions[k].col, "diskominfo-gw",
                           "DISKOMINFO", regions[k].tokens["DISKOMINFO"], probes=[probe],
                           intervals=QUICK).start() for k in keys]):
            for k in keys:
                wait_for(lambda k=k: [p for p in regions[k].call(
                    "GET", "/api/v1/probes", params={"pd": "DISKOMINFO"}).json()["items"]
                    if p["target"] == "pusat-data-simpeg" and p["state"] == "up"] or None,
                    60, f"{k}: service up")
                assert not [v for v in regions[k].violations(obligation="DC-2")
                            if v["subject"] == subject]
            svc.stop()   # the outage: 99.999 % of a month allows 26 s
            broken = {k: regions[k].wait_open("DISKOMINFO", "DC-2", subject, timeout=90)
                      for k in keys}
            svc.start()
            for k, v in broken.items():
                ev = v["evidence"]
                assert ev["downtime_s"] > 26 and ev["sla_target_pct"] == 99.999, ev
                # the service answers again; the month stays below its SLA
                wait_for(lambda k=k: [p for p in regions[k].call(
                    "GET", "/api/v1/probes", params={"pd": "DISKOMINFO"}).json()["items"]
                    if p["target"] == "pusat-data-simpeg" and p["state"] == "up"] or None,
                    60, f"{k}: service back")
                again = regions[k].call("GET", f"/api/v1/violations/{v['id']}").json()
                assert again["status"] == "open"
    finally:
        svc.stop()


# --- a backup server abroad: DC-3 ----------------------------------------------------------

def test_backup_server_outside_indonesia(regions: dict[str, Region], tmp_path: Path) -> None:
    from tests.test_backups import make_data

    keys = [k for k in REGIONS if regions[k].has("DC-3")][:2]
    assert len(keys) == 2
    repo = _restic(tmp_path)
    repo("backup", str(make_data(tmp_path)))
    job = {"name": "arsip", "type": "restic", "repository": str(repo.repo),
           "password": {"file": str(repo.pwfile)}, "destination": "8.8.8.8",
           "expected_interval_s": 86400}
    subject = "backup:dcx-gw/arsip"

    def start(dest: str, tag: str) -> list[Agent]:
        return [Agent(tmp_path / f"agent-{k}-{tag}", regions[k].col, "dcx-gw", "DCX",
                      regions[k].tokens["DCX"], backups=[{**job, "destination": dest}],
                      intervals=FAST).start() for k in keys]

    with agents(start("8.8.8.8", "abroad")):
        abroad = {k: regions[k].wait_open("DCX", "DC-3", subject, timeout=120) for k in keys}
    (found,) = abroad[keys[0]]["evidence"]["outside"]
    assert (found["role"], found["address"]) == ("destination", "8.8.8.8"), found
    assert "8.8.8.8" in abroad[keys[1]]["message"]
    with agents(start("36.66.1.1", "home")):   # a server in Indonesia (Telkom's prefix)
        for k, v in abroad.items():
            regions[k].wait_resolved(v["id"], timeout=120)
