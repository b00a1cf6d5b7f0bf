"""Unit tests of the network inventory: topology building, baseline diffing, ingest into a
real SQLite state store, config versions, LAN diagram rendering and the metric points."""

from __future__ import annotations

import hashlib
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collector import diagram
from collector.db import make_engine, migrate
from collector.db_inventory import config_versions, device_interfaces, devices, topology_changes
from collector.inventory import (
    ChangeType,
    DeviceInfo,
    Iface,
    LinkKind,
    Neighbor,
    NodeKind,
    approve_baseline,
    build_topology,
    current_topology,
    diff_graphs,
    link_key,
    mac_norm,
)
from collector.metrics import report_lines
from collector.store import AgentAuth, Store
from contract.report import (
    ConfigSnapshot,
    DeviceObservation,
    Report,
    new_report_id,
)
from tests.servers import Postgres

NOW = 1_800_000_000.0


# --- pure topology -------------------------------------------------------------------------

def dev(name: str, *ifaces: str, lldp: tuple[Neighbor, ...] = (), **kw: Any) -> DeviceInfo:
    tag = hashlib.sha256(name.encode()).hexdigest()[:4]
    interfaces = tuple(Iface(n, i + 1, f"02:00:{tag[:2]}:{tag[2:]}:00:{i + 1:02x}")
                       for i, n in enumerate(ifaces))
    kw.setdefault("last_poll_at", NOW - 60)
    return DeviceInfo(name=name, pd="DINKES", interfaces=interfaces, lldp=lldp, **kw)


def nb(local: str, system: str, port: str, **kw: Any) -> Neighbor:
    return Neighbor(local_port=local, remote_system_name=system, remote_port_id=port, **kw)


def lldp_links(topo: Any) -> list[tuple[str, str, str, str]]:
    return sorted((lk.a, lk.a_port, lk.b, lk.b_port) for lk in topo.links
                  if lk.kind is not LinkKind.HOSTS)


def test_link_seen_from_both_ends_is_one_link() -> None:
    topo = build_topology([
        dev("rtr", "Gi0/0", "Gi0/1", lldp=(nb("Gi0/1", "sw1", "Gi1/0/48"),)),
        dev("sw1", "Gi1/0/1", "Gi1/0/48", lldp=(nb("Gi1/0/48", "rtr.dinkes.local", "Gi0/1"),)),
    ], now=NOW)
    assert lldp_links(topo) == [("rtr", "Gi0/1", "sw1", "Gi1/0/48")]
    (link,) = topo.links
    assert {e["device"] for e in link.evidence} == {"rtr", "sw1"}  # both LLDP rows kept
    assert link.key == link_key("sw1", "Gi1/0/48", "rtr", "Gi0/1")


def test_mac_port_ids_resolve_to_interface_names() -> None:
    # lldpd announces the port ID as the interface MAC, the name in the port description
    sw = dev("sw1", "eth0", "eth1")
    rtr = dev("rtr", "ge-0", "ge-1")
    sw_mac = sw.interfaces[1].mac
    rtr_mac = rtr.interfaces[0].mac
    assert sw_mac and rtr_mac
    rtr = DeviceInfo(**{**rtr.__dict__, "lldp": (
        Neighbor("ge-0", "sw1", "", sw_mac.upper().replace(":", "-"), "eth1"),)})
    sw = DeviceInfo(**{**sw.__dict__, "lldp": (Neighbor("eth1", "rtr", "", rtr_mac, ""),)})
    assert lldp_links(build_topology([rtr, sw], now=NOW)) == [("rtr", "ge-0", "sw1", "eth1")]


def test_unresolvable_remote_port_merges_with_the_other_ends_report() -> None:
    topo = build_topology([
        dev("rtr", "Gi0/1", lldp=(nb("Gi0/1", "sw1", "7"),)),      # ifIndex 7: no such index
        dev("sw1", "Gi1/0/1", "Gi1/0/48", lldp=(nb("Gi1/0/48", "rtr", "Gi0/1"),)),
    ], now=NOW)
    assert lldp_links(topo) == [("rtr", "Gi0/1", "sw1", "Gi1/0/48")]


def test_two_cables_between_the_same_pair_stay_two_links() -> None:
    topo = build_topology([
        dev("sw1", "p1", "p2", lldp=(nb("p1", "sw2", "q1"), nb("p2", "sw2", "q2"))),
        dev("sw2", "q1", "q2", lldp=(nb("q1", "sw1", "p1"), nb("q2", "sw1", "p2"))),
    ], now=NOW)
    assert lldp_links(topo) == [("sw1", "p1", "sw2", "q1"), ("sw1", "p2", "sw2", "q2")]


def test_unmanaged_neighbour_uplink_and_hosts() -> None:
    rtr = dev("rtr", "wan0", "lan0", mgmt_address="10.20.0.1", addresses=("10.20.0.1",),
              routes=({"destination": "0.0.0.0/0", "gateway": "172.16.0.1",
                       "interface": "wan0"},),
              arp=({"ip": "10.20.0.2", "mac": "02:00:00:00:00:99"},      # the switch: infra
                   {"ip": "10.20.0.50", "mac": "aa:00:00:00:00:01", "interface": "lan0"},
                   {"ip": "10.20.0.51", "mac": "aa:00:00:00:00:02", "interface": "lan0"},
                   {"ip": "10.20.0.52", "mac": "aa:00:00:00:00:03", "interface": "lan0"},
                   {"ip": "172.16.0.1", "mac": "aa:00:00:00:00:ff", "interface": "wan0"}),
              lldp=(nb("lan0", "sw1", "p24"),))
    sw = dev("sw1", "p1", "p2", "p24", mgmt_address="10.20.0.2",
             fdb=({"mac": "aa:00:00:00:00:01", "port": "p1"},
                  {"mac": "aa:00:00:00:00:02", "port": "p1"},
                  {"mac": "aa:00:00:00:00:03", "port": "p24"}),   # learnt on the uplink port
             lldp=(nb("p24", "rtr", "lan0"),
                   Neighbor("p2", "AP-Lantai2", "", "", "", "10.20.0.9")))
    topo = build_topology([rtr, sw], now=NOW)
    kinds = {n.id: n.kind for n in topo.nodes.values()}
    assert kinds["AP-Lantai2"] is NodeKind.UNMANAGED
    assert kinds["uplink:172.16.0.1"] is NodeKind.UPLINK
    assert topo.uplinks == [{"device": "rtr", "interface": "wan0", "next_hop": "172.16.0.1",
                             "peer": "uplink:172.16.0.1"}]
    hosts = {n.id: n.hosts for n in topo.nodes.values() if n.kind is NodeKind.HOSTS}
    # two hosts located on the switch access port p1, one only known to the router's ARP
    assert hosts == {"hosts:sw1:p1": 2, "hosts:rtr:lan0": 1}
    assert ("rtr", "wan0", "uplink:172.16.0.1", "") in lldp_links(topo)


def test_uplink_is_the_lldp_neighbour_on_the_default_route_interface() -> None:
    rtr = dev("rtr", "eth1", "eth2",
              routes=({"destination": "0.0.0.0/0", "gateway": "10.253.0.1",
                       "interface": "eth1"},),
              arp=({"ip": "10.253.0.1", "mac": "b6:00:00:00:00:01", "interface": "eth1"},),
              lldp=(Neighbor("eth1", "dc-core", "b6:00:00:00:00:09", "eth1", "INTRANET",
                             "10.254.1.11"),))
    topo = build_topology([rtr], now=NOW)
    assert set(topo.nodes) == {"rtr", "dc-core"}  # no extra intranet node; gateway no host
    (link,) = topo.links
    assert (link.kind, link.a_port, link.b_port) == (LinkKind.UPLINK, "eth1", "eth1")
    assert topo.uplinks == [{"device": "rtr", "interface": "eth1", "next_hop": "10.253.0.1",
                             "peer": "dc-core"}]


def test_gateway_that_is_a_device_of_another_pd_is_the_uplink_peer() -> None:
    core = DeviceInfo(name="dc-core", pd="DISKOMINFO", mgmt_address="172.16.0.1",
                      model="C9300")
    rtr = dev("rtr", "wan0", routes=({"destination": "0.0.0.0/0", "gateway": "172.16.0.1",
                                      "interface": "wan0"},),
              lldp=(nb("wan0", "dc-core", "Gi1/0/5"),))
    topo = build_topology([rtr], [core], now=NOW)
    assert topo.nodes["DISKOMINFO:dc-core"].kind is NodeKind.EXTERNAL
    (link,) = topo.links
    assert (link.kind, link.a_port, link.b_port) == (LinkKind.UPLINK, "Gi1/0/5", "wan0")


def test_device_nobody_polls_any_more_leaves_the_topology() -> None:
    topo = build_topology([dev("sw1"), dev("old", last_poll_at=NOW - 4 * 86400)], now=NOW)
    assert set(topo.nodes) == {"sw1"}


def test_mac_norm() -> None:
    assert mac_norm("AA-BB-CC-00-11-22") == "aa:bb:cc:00:11:22"
    assert mac_norm("aabb.cc00.1122") == "aa:bb:cc:00:11:22"
    assert mac_norm("Gi0/1") is None and mac_norm("") is None


# --- diffing against a baseline ------------------------------------------------------------

def graph(*devs: DeviceInfo) -> dict[str, Any]:
    return build_topology(list(devs), now=NOW).to_dict(hosts=False)


BASE = (dev("rtr", "g1", lldp=(nb("g1", "sw1", "p48"),)),
        dev("sw1", "p1", "p47", "p48", lldp=(nb("p48", "rtr", "g1"), nb("p47", "sw2", "q1"))),
        dev("sw2", "q1", lldp=(nb("q1", "sw1", "p47"),)))


def test_same_topology_no_findings() -> None:
    assert diff_graphs(graph(*BASE), graph(*BASE)) == []


def test_cut_link_is_one_link_removed() -> None:
    rtr, sw1, sw2 = BASE
    cut = (rtr, DeviceInfo(**{**sw1.__dict__, "lldp": sw1.lldp[:1]}),
           DeviceInfo(**{**sw2.__dict__, "lldp": ()}))
    (f,) = diff_graphs(graph(*BASE), graph(*cut))
    assert f.type is ChangeType.LINK_REMOVED
    assert f.detail["link"]["a"] == "sw1" and f.detail["link"]["a_port"] == "p47"
    assert {r["device"] for r in f.evidence["baseline_lldp"]} == {"sw1", "sw2"}
    assert "Link terputus" in f.summary and "Link removed" in f.summary_en


def test_new_device_is_one_device_added() -> None:
    rtr, sw1, sw2 = BASE
    sw1b = DeviceInfo(**{**sw1.__dict__, "lldp": (*sw1.lldp, nb("p1", "sw3", "x1"))})
    sw3 = dev("sw3", "x1", lldp=(nb("x1", "sw1", "p1"),))
    (f,) = diff_graphs(graph(*BASE), graph(rtr, sw1b, sw2, sw3))
    assert f.type is ChangeType.DEVICE_ADDED and f.detail["node"]["id"] == "sw3"
    assert [lk["b"] for lk in f.detail["links"]] == ["sw3"]
    assert f.evidence["lldp"]


def test_port_moved() -> None:
    rtr, sw1, sw2 = BASE
    sw1b = DeviceInfo(**{**sw1.__dict__, "interfaces": (*sw1.interfaces, Iface("p46")),
                         "lldp": (sw1.lldp[0], nb("p46", "sw2", "q1"))})
    sw2b = DeviceInfo(**{**sw2.__dict__, "lldp": (nb("q1", "sw1", "p46"),)})
    (f,) = diff_graphs(graph(*BASE), graph(rtr, sw1b, sw2b))
    assert f.type is ChangeType.PORT_MOVED
    assert (f.detail["from"]["a_port"], f.detail["to"]["a_port"]) == ("p47", "p46")


def test_removed_device_is_one_finding_not_one_per_link() -> None:
    rtr, sw1, _ = BASE
    gone = (rtr, DeviceInfo(**{**sw1.__dict__, "lldp": sw1.lldp[:1]}))
    (f,) = diff_graphs(graph(*BASE), graph(*gone))
    assert f.type is ChangeType.DEVICE_REMOVED and f.detail["node"]["id"] == "sw2"


# --- ingest into a real SQLite state store -------------------------------------------------

_dbs = itertools.count(1)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    pg = Postgres(tmp_path_factory.mktemp("pg"))
    pg.start()
    yield pg
    pg.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    if request.param == "postgres":
        pg: Postgres = request.getfixturevalue("postgres")
        name = f"inventory_{next(_dbs)}"
        pg.psql(f"CREATE DATABASE {name} OWNER {pg.user};")
        url = pg.sqlalchemy_url.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    migrate(engine)
    s = Store(engine)
    s.add_pd("DINKES", "Dinas Kesehatan")
    s.add_agent("dinkes-gw", "DINKES")
    yield s
    engine.dispose()


def auth(store: Store) -> AgentAuth:
    with store.engine.connect() as c:
        from collector.db import agents

        pk = c.execute(select(agents.c.id).where(agents.c.agent_id == "dinkes-gw")).scalar_one()
    return AgentAuth(pk, "dinkes-gw", 1, "DINKES")


T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def obs(name: str, t: datetime, **kw: Any) -> DeviceObservation:
    kw.setdefault("status", "ok")
    return DeviceObservation(observed_at=t, device=name, mgmt_address=kw.pop("mgmt", "10.0.0.1"),
                             driver="snmp", **kw)


def ingest(store: Store, *observations: Any) -> str:
    rep = Report(report_id=new_report_id(), agent_id="dinkes-gw", pd_code="DINKES",
                 sent_at=datetime.now(UTC), observations=list(observations))
    result = store.ingest(auth(store), rep, datetime.now(UTC).timestamp(), None)
    assert not result.duplicate
    return str(rep.report_id)


def device_row(store: Store, name: str) -> Any:
    return store.rows(select(devices).where(devices.c.name == name))[0]


def test_poll_status_rules(store: Store) -> None:
    ingest(store, obs("sw1", T0, vendor="Cisco", model="C2960X", serial="FOC1",
                      interfaces=[{"name": "Gi1", "oper_up": True}, {"name": "Gi2"}],
                      arp=[{"ip": "10.0.0.9", "mac": "aa:00:00:00:00:01"}]))
    # partial: facts it has update, tables it could not read stay
    ingest(store, obs("sw1", T0 + timedelta(minutes=5), status="partial", os_version="15.2",
                      error="ipNetToMediaTable: timeout"))
    r = device_row(store, "sw1")
    assert (r.model, r.os_version, r.last_status, r.arp[0]["ip"]) == ("C2960X", "15.2",
                                                                      "partial", "10.0.0.9")
    assert len(store.rows(select(device_interfaces))) == 2
    # failed: status and error recorded, facts and last_seen kept
    ingest(store, obs("sw1", T0 + timedelta(minutes=10), status="failed", error_type="timeout",
                      error="no response from 10.0.0.1:161"))
    r = device_row(store, "sw1")
    assert (r.last_status, r.last_error_type, r.serial) == ("failed", "timeout", "FOC1")
    assert r.last_seen == (T0 + timedelta(minutes=5)).timestamp()
    # an older observation (replayed spool) does not roll the state back
    ingest(store, obs("sw1", T0 + timedelta(minutes=1), model="OLD"))
    assert device_row(store, "sw1").model == "C2960X"


def test_values_the_database_cannot_hold_do_not_break_ingest(store: Store) -> None:
    ingest(store, obs("sw1", T0, interfaces=[
        {"name": "Gi1", "index": 2**40, "in_octets": 2**63 - 1, "out_octets": 5},
        {"name": "Gi1", "index": 3}, {"name": ""}], location="lab\x00rack"))
    (i,) = store.rows(select(device_interfaces))
    assert (i.if_index, i.in_octets, i.out_octets) == (None, 2**63 - 1, 5)
    assert "\x00" not in device_row(store, "sw1").location


def cfg(name: str, t: datetime, content: str, masked: int = 0) -> ConfigSnapshot:
    return ConfigSnapshot(observed_at=t, device=name, driver="napalm:ios", content=content,
                          sha256=hashlib.sha256(content.encode()).hexdigest(),
                          masked_secrets=masked)


def test_config_version_only_when_sha_changes(store: Store) -> None:
    ingest(store, obs("rtr", T0), cfg("rtr", T0, "hostname rtr\n", 1))
    ingest(store, cfg("rtr", T0 + timedelta(hours=1), "hostname rtr\n", 1))
    ingest(store, cfg("rtr", T0 + timedelta(hours=2), "hostname rtr2\n", 1))
    ingest(store, cfg("rtr", T0 + timedelta(hours=3), "hostname rtr\n", 1))  # reverted
    rows = store.rows(select(config_versions).order_by(config_versions.c.observed_at))
    assert [r.content for r in rows] == ["hostname rtr\n", "hostname rtr2\n", "hostname rtr\n"]
    assert rows[0].last_seen == (T0 + timedelta(hours=1)).timestamp()
    # a config of a device never polled for facts creates its inventory record
    ingest(store, cfg("fw1", T0, "set system host-name fw1\n"))
    assert device_row(store, "fw1").last_status == "unknown"


def lldp(local: str, system: str, port: str) -> dict[str, str]:
    return {"local_port": local, "remote_system_name": system, "remote_port_id": port}


def net(t: datetime, *, cut: bool = False) -> list[DeviceObservation]:
    return [obs("sw1", t, interfaces=[{"name": "p47"}, {"name": "p48"}],
                lldp_neighbors=[lldp("p48", "rtr", "g1")] + ([] if cut else
                                                             [lldp("p47", "sw2", "q1")])),
            obs("sw2", t, interfaces=[{"name": "q1"}],
                lldp_neighbors=[] if cut else [lldp("q1", "sw1", "p47")]),
            obs("rtr", t, interfaces=[{"name": "g1"}], lldp_neighbors=[lldp("g1", "sw1", "p48")])]


def changes(store: Store) -> list[Any]:
    return list(store.rows(select(topology_changes).order_by(topology_changes.c.id)))


def test_changes_detected_on_ingest_idempotent_and_resolved(store: Store) -> None:
    ingest(store, *net(T0))
    assert changes(store) == []  # no baseline, nothing to compare with
    with store.tx() as c:
        approve_baseline(c, "DINKES", "eng-budi", T0.timestamp() + 1)
    ingest(store, *net(T0 + timedelta(minutes=5)))
    assert changes(store) == []
    rid = ingest(store, *net(T0 + timedelta(minutes=10), cut=True))
    ingest(store, *net(T0 + timedelta(minutes=15), cut=True))  # same difference again
    (ch,) = changes(store)
    assert (ch.change_type, ch.status, ch.report_id) == ("link_removed", "open", rid)
    assert ch.first_seen == (T0 + timedelta(minutes=10)).timestamp()
    assert ch.last_seen == (T0 + timedelta(minutes=15)).timestamp()
    assert ch.evidence["report_id"] == rid and ch.evidence["baseline_lldp"]
    restored = ingest(store, *net(T0 + timedelta(minutes=20)))
    (ch,) = changes(store)
    assert (ch.status, ch.resolution, ch.resolved_report_id, ch.open_key) == (
        "resolved", "restored", restored, None)
    # cut again: a new occurrence, a new change
    ingest(store, *net(T0 + timedelta(minutes=25), cut=True))
    assert [c.status for c in changes(store)] == ["resolved", "open"]
    # a new baseline supersedes the open change
    with store.tx() as c:
        approve_baseline(c, "DINKES", "eng-budi", T0.timestamp() + 2000)
    assert [c.resolution for c in changes(store)] == ["restored", "superseded"]


def test_current_topology_from_the_database(store: Store) -> None:
    ingest(store, *net(T0))
    with store.engine.connect() as c:
        topo = current_topology(c, 1, T0.timestamp() + 60)
    assert lldp_links(topo) == [("rtr", "g1", "sw1", "p48"), ("sw1", "p47", "sw2", "q1")]


# --- diagram -------------------------------------------------------------------------------

HOSTILE = 'sw"1\\N<script>&amp;</script>'


def hostile_graph() -> dict[str, Any]:
    return build_topology([
        dev(HOSTILE, "p1", model='C2960"X <b>', mgmt_address="10.0.0.2",
            lldp=(nb("p1", "rtr]; evil [label=x", 'Gi"0\\1'),)),
    ], now=NOW).to_dict()


def test_svg_escapes_device_strings() -> None:
    dot = diagram.to_dot(hostile_graph(), "DINKES", 'Dinas "Kesehatan" & <Co>',
                         datetime(2026, 11, 25, tzinfo=UTC))
    svg = diagram.render_svg(dot)
    root = ET.fromstring(svg)
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert HOSTILE in texts                            # shown literally, \N not expanded
    assert "rtr]; evil [label=x" in texts and 'Gi"0\\1' in texts
    assert 'Dinas "Kesehatan" & <Co>' in texts and "2026-11-25" in texts
    assert "Keterangan" in texts                       # the legend
    assert root.find(".//{http://www.w3.org/2000/svg}script") is None


def test_svg_without_graphviz_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on this PATH
    with pytest.raises(diagram.DiagramUnavailable, match="graphviz"):
        diagram.render_svg("digraph {}")


# --- metric points -------------------------------------------------------------------------

def test_device_and_interface_points() -> None:
    rep = Report(report_id=new_report_id(), agent_id="gw", pd_code="DINKES", sent_at=T0,
                 observations=[obs("sw1", T0, uptime_s=10, duration_s=1.5, interfaces=[
                     {"name": "Gi1/0/1 x", "in_octets": 100, "out_octets": 2**63 - 1,
                      "oper_up": True, "speed_mbps": 1000},
                     {"name": "Gi1/0/2"}]),
                     obs("sw2", T0, status="failed")])
    lines = report_lines(rep)
    ns = int(T0.timestamp()) * 10**9
    assert lines == [
        f"device,agent=gw,device=sw1,pd=DINKES duration_s=1.5,up=1i,uptime_s=10 {ns}",
        f"interface,agent=gw,device=sw1,ifname=Gi1/0/1\\ x,pd=DINKES in_octets=100i,"
        f"oper_up=1i,out_octets=9223372036854775807i,speed_mbps=1000 {ns}",
        f"device,agent=gw,device=sw2,pd=DINKES up=0i {ns}",
    ]
