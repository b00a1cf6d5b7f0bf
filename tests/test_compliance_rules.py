"""Unit tests of the compliance rules and the violation lifecycle.

Each test builds state in a real SQLite state store through the real ingest path
(``Store.ingest`` of reports built from the contract models) at chosen times, runs the engine
with a chosen ``now``, and reads the violations table back. No network, no mocks.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import insert, select, update

from collector import inventory
from collector.compliance.engine import ComplianceEngine, Conflict, acknowledge, waive
from collector.compliance.profile import Obligation, RegionProfile, SiteCfg, parse_profile
from collector.db import make_engine, migrate
from collector.db_compliance import registered_devices, violation_events, violations
from collector.db_inventory import topology_changes
from collector.store import AgentAuth, Store
from contract.report import (
    BackupStatus,
    DeviceObservation,
    Heartbeat,
    HostFacts,
    ProbeResult,
    Report,
    ServerScan,
    new_report_id,
)

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ROOT / "configs" / "regions"
T0 = 1_800_000_000.0          # 2027-01-15 08:00 UTC: every in-force profile is enforced
H, D = 3600.0, 86400.0
_seq = itertools.count(1)

SITE: dict[str, Any] = {
    "pusat_data_subnets": ["10.10.0.0/16"],
    "drc_subnets": ["10.99.0.0/16"],
    "intranet_gateways": ["10.253.0.1", "10.253.0.5"],
    "public_allocation": ["36.91.10.0/24"],
    "indonesia_prefixes": ["36.64.0.0/11"],
    "pds": {"DISKOMINFO": {"dinas": True}},
}


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def load(key: str, **params: dict[str, Any]) -> RegionProfile:
    """A region profile from configs/regions, with parameters changed for the test."""
    path = REGIONS / f"{key}.yaml"
    data = yaml.safe_load(path.read_text())
    for ob, p in params.items():
        data["obligations"][ob.replace("_", "-")].setdefault("params", {}).update(p)
    return parse_profile(data, str(path))


class World:
    def __init__(self, tmp: Path, region: str | RegionProfile = "lebak-2024",
                 site: dict[str, Any] | None = None) -> None:
        self.engine = make_engine(f"sqlite:///{tmp / f'state{next(_seq)}.sqlite'}")
        migrate(self.engine)
        self.store = Store(self.engine)
        self.profile = load(region) if isinstance(region, str) else region
        self.site = SiteCfg.model_validate(SITE if site is None else site)
        self.eng = ComplianceEngine(self.store, self.profile, self.site)
        self.agents: dict[str, AgentAuth] = {}

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()

    def agent(self, pd: str, name: str | None = None) -> AgentAuth:
        name = name or f"{pd.lower()}-gw"
        if name not in self.agents:
            if self.store.scalar(select(inventory.pds.c.id).where(
                    inventory.pds.c.code == pd)) is None:
                self.store.add_pd(pd, f"PD {pd}")
            token = self.store.add_agent(name, pd)
            auth = self.store.agent_by_token(token)
            assert auth is not None
            self.agents[name] = auth
        return self.agents[name]

    def send(self, agent: str, *obs: Any, at: float = T0) -> str:
        a = self.agents[agent]
        rep = Report(report_id=new_report_id(), agent_id=a.agent_id, pd_code=a.pd_code,
                     sent_at=dt(at), observations=list(obs))
        res = self.store.ingest(a, rep, at, 0.0)
        assert not res.duplicate
        return str(rep.report_id)

    def evaluate(self, at: float = T0, pd: str | None = None) -> Any:
        ids = None
        if pd is not None:
            ids = [self.agents[f"{pd.lower()}-gw"].pd_id]
        stats = self.eng.evaluate(now=at, pd_ids=ids)
        assert not stats.errors, stats.errors
        return stats

    def rows(self, ob: str | None = None) -> list[dict[str, Any]]:
        stmt = select(violations).order_by(violations.c.id)
        if ob:
            stmt = stmt.where(violations.c.obligation == ob)
        return [dict(r._mapping) for r in self.store.rows(stmt)]

    def active(self, ob: str) -> dict[str, dict[str, Any]]:
        return {r["subject"]: r for r in self.rows(ob) if r["status"] != "resolved"}

    def keys(self, ob: str, subject: str) -> list[str]:
        row = self.active(ob)[subject]
        return [m["key"] for m in row["messages"]]

    def events(self, vid: int) -> list[str]:
        return [r.event for r in self.store.rows(
            select(violation_events.c.event).where(violation_events.c.violation_id == vid)
            .order_by(violation_events.c.id))]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Any]:
    made: list[World] = []

    def make(region: str | RegionProfile = "lebak-2024",
             site: dict[str, Any] | None = None) -> World:
        w = World(tmp_path, region, site)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


# --- observation builders ------------------------------------------------------------------

def hb(at: float = T0) -> Heartbeat:
    return Heartbeat(observed_at=dt(at), agent_version="test", uptime_s=10)


def probe(target: str, address: str, up: bool, at: float = T0, kind: str = "icmp"
          ) -> ProbeResult:
    return ProbeResult(observed_at=dt(at), target=target, probe=kind, address=address, up=up,
                       error=None if up else "timeout")


def device(name: str, at: float = T0, *, status: str = "ok", **kw: Any) -> DeviceObservation:
    data: dict[str, Any] = {"observed_at": dt(at), "device": name, "mgmt_address": "10.20.0.2",
                            "driver": "snmp", "status": status}
    if status == "failed":
        data.update(error_type="timeout", error="no SNMP answer within 2 s")
    data.update(kw)
    return DeviceObservation.model_validate(data)


def backup(job: str, at: float = T0, **kw: Any) -> BackupStatus:
    data: dict[str, Any] = {
        "observed_at": dt(at), "job": job, "type": "restic", "status": "success",
        "last_success_at": dt(at - H), "size_bytes": 1_000_000, "destination": "bak.pd.local",
        "destination_ips": ["10.10.5.20"], "expected_interval_s": D,
        "replica": {"destination": "drc.pd.local", "destination_ips": ["10.99.5.20"],
                    "last_success_at": dt(at - 2 * H)}}
    data.update(kw)
    return BackupStatus.model_validate(data)


def host(name: str, addrs: list[str], at: float = T0, *, server: bool = False,
         gateway: str | None = None) -> HostFacts:
    return HostFacts.model_validate({
        "observed_at": dt(at), "hostname": name, "os": "Debian 12", "kernel": "6.1",
        "uptime_s": 100, "server_mode": server,
        "addresses": [{"interface": "eth0", "address": a, "prefix_len": 24, "family": "ipv4"}
                      for a in addrs],
        "routes": [] if gateway is None else [{"destination": "0.0.0.0/0", "gateway": gateway,
                                               "interface": "eth0"}]})


def scan(hosts: list[dict[str, Any]], at: float = T0, complete: bool = True) -> ServerScan:
    return ServerScan.model_validate({
        "observed_at": dt(at), "subnets": ["10.20.16.0/24"], "ports": [22, 80, 443, 5432],
        "hosts": [{"scanned_at": dt(at), **h} for h in hosts], "complete": complete})


# --- profiles ------------------------------------------------------------------------------

def test_every_rule_is_registered_once_and_named_after_its_module() -> None:
    from collector.compliance.rules import REGISTRY, build_registry, get_rule
    from collector.compliance.rules.bak_1 import Bak1

    assert set(REGISTRY) == set(Obligation)
    for ob, rule in REGISTRY.items():
        module = type(rule).__module__.rsplit(".", 1)[1]
        assert module == ob.value.lower().replace("-", "_")
    with pytest.raises(ValueError, match="BAK-1 has two rules"):
        build_registry((Bak1, Bak1))
    with pytest.raises(KeyError, match="valid: INTRA-1, LAN-1"):
        get_rule("BAK-9")


# --- INTRA-1 -------------------------------------------------------------------------------

def test_intra1_pd_without_agent_then_connected(world: World) -> None:
    world.store.add_pd("BAPPEDA", "Bappeda")
    world.evaluate()
    row = world.active("INTRA-1")["pd:BAPPEDA"]
    assert row["article"] == "Pasal 19 ayat (2)" and row["regulation"] == "Perbup Lebak 24/2024"
    assert row["severity"] == "major" and row["status"] == "open"
    world.agent("BAPPEDA")
    world.send("bappeda-gw", hb(), probe("pusat-data", "10.10.0.1", True))
    world.evaluate()
    assert "pd:BAPPEDA" not in world.active("INTRA-1")
    assert world.rows("INTRA-1")[0]["resolution"] == "cleared"


def test_intra1_pusat_data_unreachable_over_15_minutes(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", hb(T0 - 20 * 60), probe("pusat-data", "10.10.0.1", True,
                                                     T0 - 20 * 60))
    # down for 10 minutes: not yet
    world.send("dinkes-gw", hb(T0 - 10 * 60), probe("pusat-data", "10.10.0.1", False,
                                                     T0 - 10 * 60), at=T0 - 10 * 60)
    world.send("dinkes-gw", hb(), probe("pusat-data", "10.10.0.1", False))
    world.evaluate()
    assert world.active("INTRA-1") == {}
    world.send("dinkes-gw", hb(T0 + 6 * 60), probe("pusat-data", "10.10.0.1", False,
                                                    T0 + 6 * 60), at=T0 + 6 * 60)
    world.evaluate(T0 + 6 * 60)
    row = world.active("INTRA-1")["agent:dinkes-gw"]
    assert world.keys("INTRA-1", "agent:dinkes-gw") == ["intra1.unreachable"]
    assert row["evidence"]["targets"][0]["down_since"] == T0 - 10 * 60
    # a target named otherwise but in a Pusat Data subnet counts as well, up -> resolved
    world.send("dinkes-gw", hb(T0 + 7 * 60), probe("simpeg", "https://10.10.8.8/", True,
                                                    T0 + 7 * 60, "http"), at=T0 + 7 * 60)
    world.evaluate(T0 + 7 * 60)
    assert world.active("INTRA-1") == {}


def test_intra1_silent_agent_and_agent_without_pusat_data_probe(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", hb(T0 - 300), probe("pusat-data", "10.10.0.1", True, T0 - 300),
               at=T0 - 300)
    world.agent("DISDIK")
    world.send("disdik-gw", hb(), probe("internet", "1.1.1.1", True))
    world.evaluate()
    assert world.keys("INTRA-1", "agent:dinkes-gw") == ["intra1.silent"]   # 300 s > 3 x 60 s
    assert world.keys("INTRA-1", "agent:disdik-gw") == ["intra1.no_probe"]
    world.send("dinkes-gw", hb(), probe("pusat-data", "10.10.0.1", True))
    world.evaluate()
    assert set(world.active("INTRA-1")) == {"agent:disdik-gw"}


@pytest.mark.parametrize("region,net", [("solok-2020", "NET-1"), ("lebak-2024", "NET-2")])
def test_intra1_and_net_leave_a_pds_server_agent_in_the_pusat_data_alone(
        make_world: Any, region: str, net: str) -> None:
    """A PD's server-mode agent on a host in the Pusat Data (or DRC), routed via a Pusat
    Data gateway and probing nothing, is neither a PD-side agent (INTRA-1) nor an internet
    path of the PD (NET-1, NET-2). A PD with only such agents has no PD-side agent."""
    from collector.compliance import messages

    w = make_world(region)
    w.agent("DINKES")
    w.send("dinkes-gw", hb(), probe("pusat-data", "10.10.0.1", True),
           host("dinkes-gw", ["10.20.16.9"], gateway="192.168.1.1"))     # PD side: judged
    w.agent("DINKES", "dinkes-srv")
    w.send("dinkes-srv", hb(T0 - 600), host("simpus-app", ["10.10.3.5"], T0 - 600, server=True,
                                            gateway="10.10.0.1"), at=T0 - 600)  # silent too
    w.agent("BAPPEDA", "bappeda-srv")
    w.send("bappeda-srv", hb(), host("bappeda-db", ["10.99.4.4", "172.17.0.1"], server=True,
                                     gateway="10.99.0.1"))
    w.agent("DISDIK")                  # server mode in its own LAN: still a PD-side agent
    w.send("disdik-gw", hb(), host("disdik-gw", ["10.20.30.4"], server=True))
    w.evaluate()
    assert set(w.active("INTRA-1")) == {"pd:BAPPEDA", "agent:disdik-gw"}
    assert w.keys("INTRA-1", "agent:disdik-gw") == ["intra1.no_probe"]
    row = w.active("INTRA-1")["pd:BAPPEDA"]
    assert w.keys("INTRA-1", "pd:BAPPEDA") == ["intra1.no_pd_agent"]
    assert row["evidence"]["colocated_agents"] == ["bappeda-srv"]
    for lang in ("id", "en"):
        text = messages.render_all(row["messages"], lang, w.profile.tz)
        assert "BAPPEDA" in text and "bappeda-srv" in text and "{" not in text
    assert set(w.active(net)) == {"host:dinkes-gw"}
    assert set(w.active("DC-1")) == {"host:disdik-gw"}   # the colocated ones are placed
    # the PD gets an agent in its own network: no longer a PD without one
    w.agent("BAPPEDA")
    w.send("bappeda-gw", hb(), probe("pusat-data", "10.10.0.1", True))
    w.evaluate()
    assert set(w.active("INTRA-1")) == {"agent:disdik-gw"}


# --- LAN-1 ---------------------------------------------------------------------------------

def test_lan1_device_unpollable_for_more_than_24_hours(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", device("sw1", T0 - 30 * H), at=T0 - 30 * H)
    world.send("dinkes-gw", device("sw2", T0 - 2 * H, status="failed"), at=T0 - 2 * H)
    world.send("dinkes-gw", device("sw1", T0 - 60, status="failed"), at=T0 - 60)
    world.evaluate()
    assert set(world.active("LAN-1")) == {"device:sw1"}     # sw2: failing for only 2 h
    row = world.active("LAN-1")["device:sw1"]
    assert row["article"] == "Pasal 20 ayat (2)"
    assert row["evidence"]["error_type"] == "timeout"
    assert row["evidence"]["last_answered_at"] == T0 - 30 * H
    world.send("dinkes-gw", device("sw1", T0 + 60), at=T0 + 60)
    world.evaluate(T0 + 60)
    assert world.active("LAN-1") == {}


# --- LAN-2 / LAN-3 -------------------------------------------------------------------------

def lldp(local: str, name: str, port: str) -> dict[str, Any]:
    return {"local_port": local, "remote_system_name": name, "remote_port_id": port}


def test_lan2_no_approved_diagram_until_a_baseline_is_approved(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", hb(), device("sw1", lldp_neighbors=[lldp("Gi1", "rtr", "Gi0")]))
    world.evaluate()
    row = world.active("LAN-2")["pd:DINKES"]
    assert row["evidence"]["devices_discovered"] == 1
    assert row["article"] == "Pasal 21 ayat (1)"
    with world.store.tx() as c:
        inventory.approve_baseline(c, "DINKES", "eng-budi", T0)
    world.evaluate(T0 + 1)
    assert world.active("LAN-2") == {}


def test_lan3_change_not_acknowledged_within_7_days(world: World) -> None:
    world.agent("DINKES")
    t = T0 - 9 * D
    world.send("dinkes-gw", device("sw1", t, lldp_neighbors=[lldp("Gi1", "rtr", "Gi0")]), at=t)
    with world.store.tx() as c:
        inventory.approve_baseline(c, "DINKES", "eng-budi", t)
    t2 = T0 - 8 * D
    world.send("dinkes-gw", device("sw1", t2, lldp_neighbors=[
        lldp("Gi1", "rtr", "Gi0"), lldp("Gi5", "ap-lantai2", "eth0")]), at=t2)
    world.evaluate(T0 - 2 * D)      # 6 days: not yet
    assert world.active("LAN-3") == {}
    world.evaluate()
    (row,) = world.active("LAN-3").values()
    assert row["subject"].startswith("change:")
    assert "ap-lantai2" in row["evidence"]["summary"]
    assert row["evidence"]["detected_at"] == t2
    change_id = row["evidence"]["change_id"]
    with world.store.tx() as c:
        inventory.ack_change(c, change_id, "teknisi-dinkes", "AP baru lantai 2", T0)
    world.evaluate(T0 + 1)
    assert world.active("LAN-3") == {}


# --- LAN-4 ---------------------------------------------------------------------------------

def iface(name: str, descr: str, up: bool = True, **kw: Any) -> dict[str, Any]:
    return {"name": name, "description": descr, "oper_up": up, "admin_up": True, **kw}


def test_lan4_up_port_without_or_with_a_bad_label(make_world: Any) -> None:
    w = make_world("solok-2020")
    w.agent("DINKES")
    w.send("dinkes-gw", device("sw1", interfaces=[
        iface("Gi1/0/1", "R101-A01"), iface("Gi1/0/2", ""), iface("Gi1/0/3", "ke printer"),
        iface("Gi1/0/4", "", up=False), iface("lo", "", type="softwareLoopback"),
        iface("Vlan10", "")]))
    w.evaluate()
    assert set(w.active("LAN-4")) == {"port:sw1/Gi1/0/2", "port:sw1/Gi1/0/3"}
    assert w.keys("LAN-4", "port:sw1/Gi1/0/2") == ["lan4.no_label"]
    assert w.keys("LAN-4", "port:sw1/Gi1/0/3") == ["lan4.bad_label"]
    assert w.active("LAN-4")["port:sw1/Gi1/0/2"]["article"] == "Pasal 28 ayat (1)"
    w.send("dinkes-gw", device("sw1", T0 + 60, interfaces=[
        iface("Gi1/0/1", "R101-A01"), iface("Gi1/0/2", "R101-A02"),
        iface("Gi1/0/3", "R101-PRN01")]), at=T0 + 60)
    w.evaluate(T0 + 60)
    assert w.active("LAN-4") == {}


def test_lan4_is_not_an_obligation_in_lebak(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", device("sw1", interfaces=[iface("Gi1/0/2", "")]))
    world.evaluate()
    assert world.rows("LAN-4") == []


# --- NET-1 / NET-2 -------------------------------------------------------------------------

def router(name: str, gw: str, at: float = T0, role: str = "router",
           addrs: tuple[str, ...] = ("10.20.16.1",)) -> DeviceObservation:
    return device(name, at, role=role, mgmt_address=addrs[0],
                  addresses=[{"interface": "eth1", "address": a, "prefix_len": 24}
                             for a in addrs],
                  routes=[{"destination": "0.0.0.0/0", "gateway": gw, "interface": "eth2"}])


def test_net1_default_route_to_an_unauthorised_isp_and_foreign_public_ip(make_world: Any
                                                                          ) -> None:
    w = make_world("solok-2020")
    w.agent("DINKES")
    w.send("dinkes-gw", router("dinkes-rtr", "10.253.0.1"),
           router("dinkes-sw1", "10.20.16.1", addrs=("10.20.16.2",), role="switch"))
    w.evaluate()
    assert w.active("NET-1") == {}      # via the intranet; the switch via its own router
    w.send("dinkes-gw", router("dinkes-rtr", "192.168.1.1", T0 + 60,
                               addrs=("10.20.16.1", "180.252.3.4")), at=T0 + 60)
    w.evaluate(T0 + 60)
    row = w.active("NET-1")["device:dinkes-rtr"]
    assert [m["key"] for m in row["messages"]] == ["net1.default_route", "net1.public_address"]
    assert row["evidence"]["outside_default_routes"][0]["gateway"] == "192.168.1.1"
    assert row["article"] == "Pasal 28 ayat (2)" and row["severity"] == "major"
    # Dinas' own allocation is fine; back through the intranet -> resolved
    w.send("dinkes-gw", router("dinkes-rtr", "10.253.0.1", T0 + 120,
                               addrs=("10.20.16.1", "36.91.10.7")), at=T0 + 120)
    w.evaluate(T0 + 120)
    assert w.active("NET-1") == {}


def test_net1_under_the_draft_bogor_perda_is_a_warning(make_world: Any) -> None:
    w = make_world("bogor-perda")
    w.agent("DINKES")
    w.send("dinkes-gw", router("dinkes-rtr", "192.168.1.1"))
    w.evaluate()
    row = w.active("NET-1")["device:dinkes-rtr"]
    assert row["severity"] == "warning"
    assert row["article"] == "Pasal 13 ayat (3)"


def test_net2_internet_path_without_a_firewall(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", router("dinkes-rtr", "192.168.1.1"))
    world.evaluate()
    row = world.active("NET-2")["device:dinkes-rtr"]
    assert row["article"] == "Pasal 13 ayat (2) huruf c dan huruf d"
    assert world.rows("NET-1") == []          # NET-1 is not an obligation in Lebak
    # the path now leaves through the PD's firewall
    world.send("dinkes-gw", router("dinkes-rtr", "10.20.99.1", T0 + 60),
               router("dinkes-fw", "192.168.1.1", T0 + 60, role="firewall",
                      addrs=("10.20.99.1",)), at=T0 + 60)
    world.evaluate(T0 + 60)
    assert world.active("NET-2") == {}


# --- ASSET-1 -------------------------------------------------------------------------------

def register(w: World, pd: str, *devices: dict[str, Any]) -> None:
    pd_id = w.agents[f"{pd.lower()}-gw"].pd_id
    with w.store.tx() as c:
        c.execute(registered_devices.delete().where(registered_devices.c.pd_id == pd_id))
        for d in devices:
            c.execute(insert(registered_devices).values(pd_id=pd_id, updated_at=T0,
                                                        updated_by="test", **d))


def test_asset1_unregistered_device_neighbour_and_incomplete_record(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", device("sw1", serial="FOC123", model="C2960X", lldp_neighbors=[
        {"local_port": "Gi1/0/3", "remote_system_name": "AP-Lantai2",
         "remote_chassis_id": "aa:bb:cc:00:11:22", "remote_mgmt_address": "10.20.0.9"}]),
        device("rtr", mgmt_address="10.20.0.1", serial="FGL1"))
    register(world, "DINKES", {"name": "sw1", "serial": "FOC123", "model": "C2960X"},
             {"name": "printer-1", "model": "LaserJet"})
    world.evaluate()
    active = world.active("ASSET-1")
    assert set(active) == {"device:rtr", "neighbor:AP-Lantai2", "registered:printer-1"}
    assert active["neighbor:AP-Lantai2"]["evidence"]["lldp"][0]["seen_by"] == "sw1"
    assert [m["key"] for m in active["registered:printer-1"]["messages"]] == [
        "asset1.missing_serial"]
    assert active["device:rtr"]["article"] == "Pasal 36"
    # registered by serial (a different name), by chassis MAC, and completed
    register(world, "DINKES", {"name": "sw1", "serial": "FOC123", "model": "C2960X"},
             {"name": "router-utama", "serial": "fgl1", "model": "C1111"},
             {"name": "ap-2", "mac": "aa:bb:cc:00:11:22", "serial": "X", "model": "U6"},
             {"name": "printer-1", "model": "LaserJet", "serial": "CN123"})
    world.evaluate(T0 + 1)
    assert world.active("ASSET-1") == {}


def test_asset1_names_and_addresses_match_only_the_same_pds_inventory(world: World) -> None:
    """"sw1" and 10.20.0.9 registered by another PD do not register this PD's "sw1" or a
    neighbour at 10.20.0.9; a serial or chassis MAC registered anywhere does."""
    world.agent("DISDIK")
    register(world, "DISDIK",
             {"name": "sw1", "serial": "D-SW1", "model": "C1000", "mgmt_address": "10.20.0.2"},
             {"name": "ap-1", "serial": "D-AP1", "model": "U6", "mgmt_address": "10.20.0.9"},
             {"name": "core", "serial": "FOC999", "model": "C9300"},
             {"name": "ap-2", "serial": "D-AP2", "model": "U6", "mac": "aa:bb:cc:00:11:33"})
    world.agent("DINKES")
    world.send("dinkes-gw", device("sw1", serial="FOC1", model="C2960X", lldp_neighbors=[
        {"local_port": "Gi1/0/3", "remote_system_name": "ap-1",
         "remote_chassis_id": "aa:bb:cc:00:11:22", "remote_mgmt_address": "10.20.0.9"},
        {"local_port": "Gi1/0/4", "remote_system_name": "ap-gudang",
         "remote_chassis_id": "aa:bb:cc:00:11:33"}]),
        device("rtr", mgmt_address="10.20.0.1", serial="FOC999"))
    world.evaluate()
    assert set(world.active("ASSET-1")) == {"device:sw1", "neighbor:ap-1"}
    assert world.active("ASSET-1")["device:sw1"]["pd_id"] == world.agents["dinkes-gw"].pd_id
    # registered by DINKES itself: by name, and by management address
    register(world, "DINKES", {"name": "SW1", "serial": "FOC1", "model": "C2960X"},
             {"name": "ap lantai 1", "serial": "AP1", "model": "U6",
              "mgmt_address": "10.20.0.9"})
    world.evaluate(T0 + 1)
    assert world.active("ASSET-1") == {}


# --- DC-1 ----------------------------------------------------------------------------------

def test_dc1_server_mode_host_in_the_pd_lan_then_moved(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", host("simpus-srv", ["10.20.16.5", "127.0.0.1"], server=True),
               host("pc-admin", ["10.20.16.50"]))
    world.evaluate()
    row = world.active("DC-1")["host:simpus-srv"]
    assert row["evidence"]["addresses"] == ["10.20.16.5"]
    assert row["article"] == "Pasal 15 ayat (5) dan Pasal 16 ayat (1)"
    world.send("dinkes-gw", host("simpus-srv", ["10.10.3.5"], T0 + 60, server=True),
               at=T0 + 60)
    world.evaluate(T0 + 60)
    assert world.active("DC-1") == {}


def test_dc1_lan_host_listening_on_a_database_port(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", scan([
        {"ip": "10.20.16.50", "open_ports": [5432], "roles": ["database"], "role": "database"},
        {"ip": "10.20.16.60", "open_ports": [80], "roles": ["web"], "role": "web"},
        {"ip": "10.10.0.7", "open_ports": [3306], "roles": ["database"], "role": "database"},
    ]))
    world.evaluate()
    assert set(world.active("DC-1")) == {"server:10.20.16.50"}   # web: not a server role
    # an incomplete scan that does not see it proves nothing
    world.send("dinkes-gw", scan([], T0 + 60, complete=False), at=T0 + 60)
    world.evaluate(T0 + 60)
    assert set(world.active("DC-1")) == {"server:10.20.16.50"}
    world.send("dinkes-gw", scan([], T0 + 120), at=T0 + 120)
    world.evaluate(T0 + 120)
    assert world.active("DC-1") == {}


def test_dc1_same_private_lan_in_two_pds_one_pd_and_full_pass_agree(world: World) -> None:
    """DISDIK's switch and agent host use the same addresses as DINKES' scanned servers
    (private LANs repeat): only DINKES' own devices and hosts excuse a scanned address, so
    the pass after a DINKES report and the scheduled pass over every PD give the same
    findings (no resolve/reopen flapping)."""
    db = {"open_ports": [5432], "roles": ["database"], "role": "database"}
    world.agent("DISDIK")
    world.send("disdik-gw", device("disdik-sw", mgmt_address="10.20.16.50"),
               host("disdik-gw", ["10.20.16.51"]))
    world.agent("DINKES")
    world.send("dinkes-gw", device("dinkes-rtr", mgmt_address="10.20.16.1"),
               scan([{"ip": "10.20.16.1", **db}, {"ip": "10.20.16.50", **db},
                     {"ip": "10.20.16.51", **db}]))
    expected = {"server:10.20.16.50", "server:10.20.16.51"}   # .1: DINKES' own router
    world.evaluate(pd="DINKES")
    one = world.active("DC-1")
    assert set(one) == expected
    world.evaluate(T0 + 60)
    full = world.active("DC-1")
    assert set(full) == expected
    assert {s: r["id"] for s, r in one.items()} == {s: r["id"] for s, r in full.items()}
    assert [r["status"] for r in world.rows("DC-1")] == ["open", "open"]
    world.evaluate(T0 + 120, pd="DINKES")
    assert {s: r["id"] for s, r in world.active("DC-1").items()} == \
        {s: r["id"] for s, r in full.items()}


def test_dc1_mandiri_tik_exemption_is_a_parameter(make_world: Any) -> None:
    site = {**SITE, "pds": {"DINKES": {"mandiri_tik": True}}}
    w = make_world(load("bogor-2021", DC_1={"exempt_mandiri_tik": True}), site)
    w.agent("DINKES")
    w.send("dinkes-gw", host("srv", ["10.20.16.5"], server=True))
    w.evaluate()
    assert w.rows("DC-1") == []
    w2 = make_world("bogor-2021", site)
    w2.agent("DINKES")
    w2.send("dinkes-gw", host("srv", ["10.20.16.5"], server=True))
    w2.evaluate()
    assert w2.active("DC-1")["host:srv"]["article"] == "Pasal 14 ayat (5) dan Pasal 15 ayat (1)"


# --- DC-2 ----------------------------------------------------------------------------------

def test_dc2_monthly_availability_below_the_sla(world: World) -> None:
    # January 2027 (WIB) has 31 days: 0.5 % of it is 3 h 43 min
    start = datetime(2027, 1, 1, tzinfo=world.profile.tz).timestamp()
    world.agent("DISKOMINFO")
    world.agent("DINKES")
    world.send("diskominfo-gw", probe("simpeg", "10.10.1.10:443", True, start + H, "tcp"),
               at=start + H)
    world.send("diskominfo-gw", probe("simpeg", "10.10.1.10:443", False, start + 2 * H, "tcp"),
               at=start + 2 * H)
    world.send("diskominfo-gw", probe("simpeg", "10.10.1.10:443", True, start + 5 * H, "tcp"),
               at=start + 5 * H)
    # a PD's own probe of the same service is not a Pusat Data SLA measurement
    world.send("dinkes-gw", probe("simpeg", "10.10.1.10:443", False, start + H, "tcp"),
               at=start + H)
    world.evaluate(start + 6 * H)
    assert world.active("DC-2") == {}                       # 3 h down < 3 h 43 min
    world.send("diskominfo-gw", probe("simpeg", "10.10.1.10:443", False, start + 7 * H, "tcp"),
               at=start + 7 * H)
    world.send("diskominfo-gw", probe("simpeg", "10.10.1.10:443", False, start + 8 * H, "tcp"),
               at=start + 8 * H)
    world.evaluate(start + 8 * H)
    row = world.active("DC-2")["service:diskominfo-gw/simpeg"]
    ev = row["evidence"]
    assert ev["month"] == "2027-01" and ev["downtime_s"] == pytest.approx(4 * H)
    assert len(ev["outages"]) == 2 and ev["outages"][0]["to"] == start + 5 * H
    assert row["article"] == "Pasal 15 ayat (6)"
    # February starts clean: resolved, kept in the history
    feb = datetime(2027, 2, 1, 0, 30, tzinfo=world.profile.tz).timestamp()
    world.send("diskominfo-gw", probe("simpeg", "10.10.1.10:443", True, feb - 60, "tcp"),
               at=feb - 60)
    world.evaluate(feb)
    assert world.active("DC-2") == {}
    assert world.rows("DC-2")[0]["resolution"] == "cleared"


# --- DC-3 ----------------------------------------------------------------------------------

def test_dc3_backup_destination_and_website_outside_indonesia(make_world: Any) -> None:
    site = {**SITE, "pds": {"DINKES": {"websites": [
        {"url": "https://dinkes.solokkab.go.id/", "hosting_addresses": ["104.21.3.4"]}]}}}
    w = make_world("solok-2020", site)
    w.agent("DINKES")
    w.send("dinkes-gw", backup("arsip", destination="s3.eu.example", destination_ips=["8.8.8.8"],
                               replica={"destination": "drc.local",
                                        "destination_ips": ["36.70.1.2"],
                                        "last_success_at": dt(T0 - H)}))
    w.evaluate()
    active = w.active("DC-3")
    assert set(active) == {"backup:dinkes-gw/arsip", "website:dinkes.solokkab.go.id"}
    assert active["backup:dinkes-gw/arsip"]["evidence"]["outside"] == [
        {"role": "destination", "host": "s3.eu.example", "address": "8.8.8.8"}]
    assert active["website:dinkes.solokkab.go.id"]["article"] == \
        "Pasal 31 ayat (4) dan Pasal 23 ayat (4)"
    w.send("dinkes-gw", backup("arsip", T0 + 60, destination_ips=["36.66.0.1"]), at=T0 + 60)
    w.evaluate(T0 + 60)
    assert set(w.active("DC-3")) == {"website:dinkes.solokkab.go.id"}


def test_dc3_needs_the_prefix_list(make_world: Any) -> None:
    w = make_world("solok-2020", {**SITE, "indonesia_prefixes": []})
    w.agent("DINKES")
    w.send("dinkes-gw", backup("arsip", destination_ips=["8.8.8.8"]))
    w.evaluate()
    assert w.rows("DC-3") == []


# --- BAK-1 ---------------------------------------------------------------------------------

def test_bak1_each_condition_then_fixed(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", hb(),
               backup("fresh"),
               backup("stale", last_success_at=dt(T0 - 40 * H)),           # > 24 h x 1.5
               backup("weekly", last_success_at=dt(T0 - 6 * D), expected_interval_s=7 * D),
               backup("broken", status="failed", error_type="auth",
                      last_failure_at=dt(T0 - H), last_failure_reason="wrong password"),
               backup("new", status="never_run", last_success_at=None),
               backup("offsite", destination="backup.vendor.example",
                      destination_ips=["36.70.9.9"]),
               backup("unresolved", destination="nas", destination_ips=[],
                      destination_error="cannot resolve nas"))
    world.send("dinkes-gw", backup("shrunk", T0 - 2 * D, last_success_at=dt(T0 - 2 * D - H),
                                   size_bytes=1_000_000), at=T0 - 2 * D)
    world.send("dinkes-gw", backup("shrunk", size_bytes=400_000))
    world.evaluate()
    got = {s.split("/")[1]: world.keys("BAK-1", s) for s in world.active("BAK-1")}
    assert got == {"stale": ["bak1.overdue"], "broken": ["bak1.failed"],
                   "new": ["bak1.never_run"], "offsite": ["bak1.destination_outside"],
                   "unresolved": ["bak1.destination_unknown"], "shrunk": ["bak1.size_drop"]}
    row = world.active("BAK-1")["backup:dinkes-gw/shrunk"]
    assert row["evidence"]["previous_size_bytes"] == 1_000_000
    assert row["article"] == "Pasal 17 ayat (1)"
    t = T0 + 60
    world.send("dinkes-gw", hb(t), *[backup(j, t) for j in (
        "stale", "broken", "new", "offsite", "unresolved")],
        backup("shrunk", t, last_success_at=dt(t - 60), size_bytes=450_000), at=t)
    world.evaluate(t)
    assert world.active("BAK-1") == {}


def test_bak1_a_job_removed_from_the_agent_is_not_judged(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", backup("old", T0 - 5 * D, status="failed"), at=T0 - 5 * D)
    world.send("dinkes-gw", hb())
    world.evaluate()
    assert world.rows("BAK-1") == []


# --- BAK-2 ---------------------------------------------------------------------------------

def test_bak2_each_condition_then_fixed(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", backup("ok"), backup("none", replica=None),
               backup("old", replica={"destination": "drc", "destination_ips": ["10.99.1.1"],
                                      "last_success_at": dt(T0 - 9 * D)}),
               backup("unreadable", replica={"destination": "drc", "error": "wrong password",
                                             "error_type": "auth",
                                             "destination_ips": ["10.99.1.2"]}),
               backup("samesite", replica={"destination": "nas2",
                                           "destination_ips": ["10.10.9.9"],
                                           "last_success_at": dt(T0 - H)}),
               backup("damaged", integrity="failed", integrity_checked_at=dt(T0 - H),
                      integrity_message="pack 3f2a: checksum mismatch"))
    world.evaluate()
    got = {s.split("/")[1]: world.keys("BAK-2", s) for s in world.active("BAK-2")}
    assert got == {"none": ["bak2.no_replica"], "old": ["bak2.replica_stale"],
                   "unreadable": ["bak2.replica_unreadable"],
                   "samesite": ["bak2.replica_not_drc"],
                   "damaged": ["bak2.integrity_failed"]}
    assert world.active("BAK-2")["backup:dinkes-gw/none"]["article"] == "Pasal 26 ayat (4)"
    t = T0 + 60
    world.send("dinkes-gw", *[backup(j, t) for j in ("none", "old", "unreadable", "samesite")],
               backup("damaged", t, integrity="ok"), at=t)
    world.evaluate(t)
    assert world.active("BAK-2") == {}


def test_bak2_copy_whose_location_is_unknown(make_world: Any) -> None:
    """A DRC copy with no resolved address (its name did not resolve, or none is given)
    cannot be shown to be at a DRC site; without DRC subnets nothing can be judged."""
    w = make_world()
    w.agent("DINKES")
    fresh = dt(T0 - H)
    w.send("dinkes-gw",
           backup("unresolved", replica={"destination": "drc.pd.local", "destination_ips": [],
                                         "destination_error": "cannot resolve drc.pd.local",
                                         "last_success_at": fresh}),
           backup("nameless", replica={"last_success_at": fresh}),
           backup("unreadable", replica={"destination": "drc.pd.local", "error": "timeout",
                                         "error_type": "timeout"}))
    w.evaluate()
    got = {s.split("/")[1]: w.keys("BAK-2", s) for s in w.active("BAK-2")}
    assert got == {"unresolved": ["bak2.replica_location_unknown"],
                   "nameless": ["bak2.replica_location_unknown"],
                   "unreadable": ["bak2.replica_unreadable", "bak2.replica_location_unknown"]}
    row = w.active("BAK-2")["backup:dinkes-gw/unresolved"]
    assert row["messages"][0]["params"]["error"] == "cannot resolve drc.pd.local"
    from collector.compliance import messages
    for lang in ("id", "en"):
        text = messages.render_all(row["messages"], lang, w.profile.tz)
        assert "unresolved" in text and "drc.pd.local" in text and "{" not in text
    t = T0 + 60
    w.send("dinkes-gw", *[backup(j, t) for j in ("unresolved", "nameless", "unreadable")],
           at=t)
    w.evaluate(t)
    assert w.active("BAK-2") == {}
    w2 = make_world(site={**SITE, "drc_subnets": []})
    w2.agent("DINKES")
    w2.send("dinkes-gw", backup("nameless", replica={"last_success_at": fresh}))
    w2.evaluate()
    assert w2.rows("BAK-2") == []


# --- WEB-1 ---------------------------------------------------------------------------------

def test_web1_outside_the_portal_and_unavailable(make_world: Any) -> None:
    site = {**SITE, "pds": {"DINKES": {"websites": [
        "https://dinkes.lebakkab.go.id/", "https://dinkes-lebak.example.com/"]},
        "DISKOMINFO": {"dinas": True}}}
    w = make_world("lebak-2024", site)
    w.agent("DINKES")
    w.agent("DISKOMINFO")
    start = datetime(2027, 1, 1, tzinfo=w.profile.tz).timestamp()
    # probed from the Dinas (another PD's agent): down 5 h this month
    w.send("diskominfo-gw", probe("web-dinkes", "https://dinkes.lebakkab.go.id/", False,
                                  start + H, "http"), at=start + H)
    w.send("diskominfo-gw", probe("web-dinkes", "https://dinkes.lebakkab.go.id/", True,
                                  start + 6 * H, "http"), at=start + 6 * H)
    w.send("dinkes-gw", hb(start + 6 * H), at=start + 6 * H)
    w.evaluate(start + 6 * H, pd="DINKES")     # an ingest evaluation of DINKES alone
    active = w.active("WEB-1")
    assert set(active) == {"website:dinkes.lebakkab.go.id", "website:dinkes-lebak.example.com"}
    assert [m["key"] for m in active["website:dinkes-lebak.example.com"]["messages"]] == [
        "web1.outside_portal"]
    assert [m["key"] for m in active["website:dinkes.lebakkab.go.id"]["messages"]] == [
        "web1.unavailable"]
    assert active["website:dinkes.lebakkab.go.id"]["article"] == "Pasal 22 ayat (2)"


# --- region figures ------------------------------------------------------------------------

def test_region_placement_figure_counts_pds_without_evidence_as_unknown(world: World) -> None:
    """A PD with no agent, server scan or backup job has shown nothing about where its
    servers and data are: unknown, not in the Pusat Data."""
    from collector.compliance.summary import ActiveRow, region_figures

    world.agent("DINKES")                                   # backups in the Pusat Data
    world.send("dinkes-gw", hb(), probe("pusat-data", "10.10.0.1", True), backup("j"))
    world.agent("DISDIK")                                   # a server in its LAN
    world.send("disdik-gw", hb(), host("srv", ["10.20.16.5"], server=True))
    world.store.add_pd("BAPPEDA", "Bappeda")                # nothing at all
    world.store.add_pd("ARSIP", "Arsip")                    # a backup job, agent revoked
    world.evaluate()
    pds = {r.id: r.code for r in world.store.rows(select(inventory.pds.c.id,
                                                         inventory.pds.c.code))}
    ids = {code: pd_id for pd_id, code in pds.items()}
    rows = [ActiveRow(r["pd_id"], r["obligation"], r["status"], r["severity"],
                      tuple(m["key"] for m in r["messages"]))
            for r in world.rows() if r["status"] != "resolved"]
    with_agents = {ids["DINKES"], ids["DISDIK"]}
    reg = region_figures(world.profile, pds, with_agents, rows, "en", T0)
    placed = reg["servers_and_data_in_pusat_data"]
    assert placed == {"pds": 1, "share_pct": 25.0, "unknown_pds": 2,
                      "unknown_share_pct": 50.0, "outside_pds": 1}
    reg = region_figures(world.profile, pds, with_agents, rows, "en", T0,
                         pds_with_data={ids["ARSIP"]})
    placed = reg["servers_and_data_in_pusat_data"]
    assert (placed["pds"], placed["unknown_pds"], placed["outside_pds"]) == (2, 1, 1)
    assert reg["connected_to_intranet"] == {"pds": 1, "share_pct": 25.0}


# --- lifecycle -----------------------------------------------------------------------------

def test_acknowledge_waive_expiry_resolution_and_recurrence(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", host("srv", ["10.20.16.5"], server=True))
    world.evaluate()
    (row,) = world.active("DC-1").values()
    vid = row["id"]
    with world.store.tx() as c:
        acknowledge(c, vid, "eng-budi", "server lama, dipindah Maret", T0 + 10)
        with pytest.raises(Conflict, match="only an open violation"):
            acknowledge(c, vid, "eng-budi", None, T0 + 11)
        with pytest.raises(Conflict, match="at most 366 days"):
            waive(c, vid, "eng-budi", "sementara", T0 + 400 * D, T0 + 12, 366)
        waive(c, vid, "eng-budi", "menunggu rak di Pusat Data", T0 + 2 * D, T0 + 12, 366)
    world.send("dinkes-gw", host("srv", ["10.20.16.5"], T0 + D, server=True), at=T0 + D)
    world.evaluate(T0 + D)
    r = world.active("DC-1")["host:srv"]
    assert r["status"] == "waived" and r["waived_by"] == "eng-budi"
    world.send("dinkes-gw", host("srv", ["10.20.16.5"], T0 + 3 * D - 60, server=True),
               at=T0 + 3 * D - 60)
    world.evaluate(T0 + 3 * D - 60)       # the waiver expired by itself
    r = world.active("DC-1")["host:srv"]
    assert r["status"] == "open" and r["id"] == vid
    # evidence clears -> resolved; comes back -> a new occurrence linked to the old one
    world.send("dinkes-gw", host("srv", ["10.10.3.5"], T0 + 3 * D, server=True),
               at=T0 + 3 * D)
    world.evaluate(T0 + 3 * D)
    world.send("dinkes-gw", host("srv", ["10.20.16.5"], T0 + 4 * D, server=True),
               at=T0 + 4 * D)
    world.evaluate(T0 + 4 * D)
    again = world.active("DC-1")["host:srv"]
    assert again["id"] != vid and again["previous_id"] == vid and again["occurrence"] == 2
    assert world.events(vid) == ["opened", "acknowledged", "waived", "waiver_expired",
                                 "resolved"]
    assert world.events(again["id"]) == ["opened"]


def test_waived_violation_resolves_when_the_evidence_clears(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", backup("j", replica=None))
    world.evaluate()
    vid = world.active("BAK-2")["backup:dinkes-gw/j"]["id"]
    with world.store.tx() as c:
        waive(c, vid, "eng", "DRC sedang dibangun", T0 + 30 * D, T0, 366)
    world.send("dinkes-gw", backup("j", T0 + 60), at=T0 + 60)
    world.evaluate(T0 + 60)
    assert world.active("BAK-2") == {}
    assert world.events(vid)[-1] == "resolved"


def test_warning_before_enforcement_then_enforced(make_world: Any, tmp_path: Path) -> None:
    data = yaml.safe_load((REGIONS / "lebak-2024.yaml").read_text())
    data["enforcement_start"] = "2027-01-16"     # T0 is 2027-01-15 in WIB
    w = make_world(parse_profile(data, "test"))
    w.agent("DINKES")
    w.send("dinkes-gw", backup("j", replica=None))
    w.evaluate()
    row = w.active("BAK-2")["backup:dinkes-gw/j"]
    assert row["severity"] == "warning"
    w.evaluate(T0 + D)
    row = w.active("BAK-2")["backup:dinkes-gw/j"]
    assert row["severity"] == "major"
    assert w.events(row["id"]) == ["opened", "severity_changed"]


def test_dedup_one_violation_per_pd_obligation_subject(world: World) -> None:
    world.agent("DINKES")
    world.agent("DISDIK")
    for who in ("dinkes-gw", "disdik-gw"):
        world.send(who, backup("j", replica=None))
    for _ in range(3):
        world.evaluate()
    rows = world.rows("BAK-2")
    assert len(rows) == 2 and {r["subject"] for r in rows} == {
        "backup:dinkes-gw/j", "backup:disdik-gw/j"}


def test_pd_scoped_evaluation_leaves_other_pds_alone(world: World) -> None:
    world.agent("DINKES")
    world.agent("DISDIK")
    world.send("dinkes-gw", backup("j", replica=None))
    world.send("disdik-gw", backup("j", replica=None))
    world.evaluate()
    world.send("disdik-gw", backup("j", T0 + 60), at=T0 + 60)
    world.evaluate(T0 + 60, pd="DINKES")
    assert set(world.active("BAK-2")) == {"backup:dinkes-gw/j", "backup:disdik-gw/j"}
    world.evaluate(T0 + 60, pd="DISDIK")
    assert set(world.active("BAK-2")) == {"backup:dinkes-gw/j"}


def test_a_failing_rule_neither_opens_nor_resolves(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", backup("j", replica=None))
    world.evaluate()

    class Broken:
        obligation = Obligation.BAK_2
        default_severity = world.eng.rules[Obligation.BAK_2].default_severity
        Params = world.eng.rules[Obligation.BAK_2].Params

        def evaluate(self, ctx: Any, params: Any) -> Any:
            raise RuntimeError("bug")

    world.eng.rules[Obligation.BAK_2] = Broken()
    stats = world.eng.evaluate(now=T0 + 60)
    assert stats.errors == {"BAK-2": "RuntimeError: bug"}
    assert set(world.active("BAK-2")) == {"backup:dinkes-gw/j"}


def test_obligation_dropped_from_the_profile_is_resolved_as_not_applicable(
        make_world: Any) -> None:
    w = make_world("lebak-2024")
    w.agent("DINKES")
    w.send("dinkes-gw", backup("j", status="failed", replica=None))
    w.evaluate()
    assert set(w.active("BAK-1")) == {"backup:dinkes-gw/j"}
    w.eng = ComplianceEngine(w.store, load("solok-2020"), w.site)   # no BAK-1 in Solok
    assert not w.eng.evaluate(now=T0 + 60).errors
    (row,) = w.rows("BAK-1")
    assert row["status"] == "resolved" and row["resolution"] == "not_applicable"
    assert w.active("BAK-2")["backup:dinkes-gw/j"]["status"] == "open"


class _RacingEngine(ComplianceEngine):
    """Holds each pass at a barrier between reading the state and writing, so that two
    engines (two collectors) reconcile the same findings at the same moment."""

    def __init__(self, *a: Any, barrier: threading.Barrier, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.barrier = barrier

    def _reconcile(self, *a: Any, **kw: Any) -> None:
        self.barrier.wait(timeout=30)
        super()._reconcile(*a, **kw)


@pytest.mark.integration
def test_two_collectors_on_postgresql_keep_one_active_occurrence(tmp_path: Path) -> None:
    """Two engines, each with its own connection pool (as two collector processes), open the
    same 30 violations at the same moment on a real PostgreSQL: one row and one 'opened'
    event each; a resolution race gives one 'resolved' event each."""
    from tests.servers import Postgres

    pg = Postgres(tmp_path / "pg")
    pg.start()
    engines = []
    try:
        seed = make_engine(pg.sqlalchemy_url)
        engines.append(seed)
        migrate(seed)
        w = World.__new__(World)
        w.engine, w.store, w.agents = seed, Store(seed), {}
        w.profile, w.site = load("lebak-2024"), SiteCfg.model_validate(SITE)
        w.agent("DINKES")
        w.send("dinkes-gw", *[backup(f"j{i}", replica=None) for i in range(30)])
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        conflicts: list[int] = []
        racers = []
        for _ in range(2):
            e = make_engine(pg.sqlalchemy_url)
            engines.append(e)
            racers.append(_RacingEngine(Store(e), w.profile, w.site, barrier=barrier))

        def race(at: float) -> None:
            def run(eng: ComplianceEngine) -> None:
                try:
                    stats = eng.evaluate(now=at)
                    assert not stats.errors
                    conflicts.append(stats.conflicts)
                except BaseException as ex:
                    errors.append(ex)
            threads = [threading.Thread(target=run, args=(r,)) for r in racers]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors

        race(T0)
        assert sorted(conflicts) == [0, 32]    # the loser met all 32 rows of the winner
        race(T0 + 60)
        assert len(w.active("BAK-2")) == 30 and len(w.rows("BAK-2")) == 30
        opened = [r.violation_id for r in w.store.rows(select(
            violation_events.c.violation_id).where(violation_events.c.event == "opened"))]
        assert sorted(opened) == sorted(r["id"] for r in w.rows())   # once per violation
        w.send("dinkes-gw", *[backup(f"j{i}", T0 + 120) for i in range(30)], at=T0 + 120)
        race(T0 + 120)
        assert w.active("BAK-2") == {}
        resolved = [r.violation_id for r in w.store.rows(select(
            violation_events.c.violation_id).where(violation_events.c.event == "resolved"))]
        assert sorted(resolved) == sorted(r["id"] for r in w.rows("BAK-2"))
        for r in racers:
            r.store.close()
        w.store.close()
    finally:
        for e in engines:
            e.dispose()
        pg.close()


def test_topology_change_rows_are_what_lan3_reads(world: World) -> None:
    """LAN-3 reads open, unacknowledged changes only (a resolved change is not a report
    due)."""
    world.agent("DINKES")
    t = T0 - 9 * D
    world.send("dinkes-gw", device("sw1", t, lldp_neighbors=[lldp("Gi1", "rtr", "Gi0")]), at=t)
    with world.store.tx() as c:
        inventory.approve_baseline(c, "DINKES", "eng", t)
    world.send("dinkes-gw", device("sw1", T0 - 8 * D, lldp_neighbors=[]), at=T0 - 8 * D)
    world.evaluate()
    assert len(world.active("LAN-3")) == 1
    with world.store.tx() as c:
        c.execute(update(topology_changes).values(status="resolved", open_key=None))
    world.evaluate(T0 + 1)
    assert world.active("LAN-3") == {}


# --- collector side of backup monitoring and server scans ----------------------------------

def test_backup_state_and_history_rows(world: World) -> None:
    from collector.db_compliance import backup_history, backup_jobs

    world.agent("DINKES")
    for i, size in enumerate((1000, 1000, 1200)):
        t = T0 + i * H
        world.send("dinkes-gw", backup("j", t, last_success_at=dt(t - 60), size_bytes=size),
                   at=t)
    # the same backup seen again (nothing new): no history row
    world.send("dinkes-gw", backup("j", T0 + 2.5 * H, last_success_at=dt(T0 + 2 * H - 60),
                                   size_bytes=1200, replica={
                                       "destination": "drc.pd.local",
                                       "destination_ips": ["10.99.5.20"],
                                       "last_success_at": dt(T0)}), at=T0 + 2.5 * H)
    # a replayed, older observation: history only, the state is kept
    world.send("dinkes-gw", backup("j", T0 - H, status="failed", last_success_at=None),
               at=T0 + 3 * H)
    (job,) = world.store.rows(select(backup_jobs))
    assert job.size_bytes == 1200 and job.prev_size_bytes == 1000
    assert job.prev_success_at == T0 + H - 60 and job.observed_at == T0 + 2.5 * H
    assert job.status == "success" and job.replica["destination"] == "drc.pd.local"
    hist = world.store.rows(select(backup_history.c.observed_at, backup_history.c.status)
                            .order_by(backup_history.c.observed_at))
    assert [(h.observed_at - T0) / H for h in hist] == [-1, 0, 1, 2]
    assert hist[0].status == "failed"


def test_backup_text_with_nul_characters_is_stored(world: World) -> None:
    world.agent("DINKES")
    world.send("dinkes-gw", backup("j", status="failed", last_failure_reason="bad\x00output"))
    world.evaluate()
    ev = world.active("BAK-1")["backup:dinkes-gw/j"]["evidence"]
    assert ev["last_failure_reason"] == "bad\ufffdoutput"


def test_server_scan_state(world: World) -> None:
    from collector.db_compliance import server_hosts, server_scans

    world.agent("DINKES")
    db = {"open_ports": [5432], "roles": ["database"], "role": "database"}
    world.send("dinkes-gw", scan([{"ip": "10.20.16.50", **db}, {"ip": "10.20.16.51", **db}]))
    world.send("dinkes-gw", scan([{"ip": "10.20.16.52", **db}], T0 + 60, complete=False),
               at=T0 + 60)
    assert {r.ip for r in world.store.rows(select(server_hosts.c.ip))} == {
        "10.20.16.50", "10.20.16.51", "10.20.16.52"}
    world.send("dinkes-gw", scan([{"ip": "10.20.16.51", **db}], T0 - 60), at=T0 + 90)  # old
    assert len(world.store.rows(select(server_hosts.c.ip))) == 3
    world.send("dinkes-gw", scan([{"ip": "10.20.16.51", **db}], T0 + 120), at=T0 + 120)
    rows = world.store.rows(select(server_hosts.c.ip, server_hosts.c.first_seen))
    assert [(r.ip, r.first_seen) for r in rows] == [("10.20.16.51", T0)]
    (s,) = world.store.rows(select(server_scans))
    assert s.observed_at == T0 + 120 and s.complete


def test_dc2_only_counts_pusat_data_services(world: World) -> None:
    start = datetime(2027, 1, 1, tzinfo=world.profile.tz).timestamp()
    world.agent("DISKOMINFO")
    for t in (start + H, start + 10 * H):   # down all along (the agent keeps reporting)
        world.send("diskominfo-gw", probe("google", "8.8.8.8", False, t),
                   probe("pusat-data-core", "10.253.9.1", False, t), at=t)
    world.evaluate(start + 10 * H)
    assert set(world.active("DC-2")) == {"service:diskominfo-gw/pusat-data-core"}


def test_service_evaluates_the_pd_of_a_report_once_it_is_committed(world: World) -> None:
    """The background service: a full pass at start, then only the PDs of committed reports
    (the scheduled pass is an hour away here); a report that never commits is given up."""
    from collector.compliance.engine import ComplianceService
    from collector.compliance.profile import ComplianceCfg

    cfg = ComplianceCfg.model_validate({
        "region_profile": str(REGIONS / "lebak-2024.yaml"), "site": SITE,
        "evaluate_interval_s": 3600, "ingest_delay_s": 0.05})
    svc = ComplianceService(world.store, cfg)
    svc.PENDING_GIVE_UP_S = 0.5
    world.store.report_listeners.append(svc.report_applied)
    stop = threading.Event()
    svc.start(stop)
    try:
        deadline = time.monotonic() + 30
        while svc.last_full is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.last_full is not None
        world.agent("DINKES")
        now = time.time()
        world.send("dinkes-gw", backup("j", now, replica=None), at=now)
        while "backup:dinkes-gw/j" not in world.active("BAK-2") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "backup:dinkes-gw/j" in world.active("BAK-2")
        assert svc.passes >= 2 and svc.last_error is None
        svc.report_applied(world.agents["dinkes-gw"].pd_id, "never-committed")
        time.sleep(1.5)
        assert svc._pending == {}
    finally:
        stop.set()
        svc.join(10)
