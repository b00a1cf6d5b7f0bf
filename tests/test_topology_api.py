"""Inventory, topology, baseline/changes and config versions through the real collector
process over HTTPS: real gzip'd reports posted with an agent token, read back with API keys."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.report import ConfigSnapshot, DeviceObservation, Report, new_report_id
from tests.procs import Agent, Collector, TestCA, wait_for
from tests.servers import InfluxD, InfluxError

pytestmark = pytest.mark.integration

SVG = "{http://www.w3.org/2000/svg}"
_seq = itertools.count(1)


@dataclass
class Shared:
    """One collector for the module (starting one costs many seconds on a busy machine);
    every test works in a PD of its own."""

    col: Collector
    admin: str
    engineer: str
    other_viewer: str  # pd-viewer of DISDIK
    other_token: str   # agent of DISDIK


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, ca: TestCA,
           influxd: InfluxD) -> Iterator[Shared]:
    col = Collector(tmp_path_factory.mktemp("topology-api"), ca, influxd.url,
                    influx_db="spbe_topology_api")
    try:
        col.add_pd("DISDIK", "Dinas Pendidikan")
        yield Shared(col, col.add_key("admin", "admin"), col.add_key("eng-budi", "engineer"),
                     col.add_key("viewer-disdik", "pd-viewer", "DISDIK"),
                     col.add_agent("disdik-gw", "DISDIK"))
    finally:
        col.stop()


@dataclass
class Lab:
    col: Collector
    pd: str
    agent: str
    token: str
    admin: str
    engineer: str
    viewer: str        # pd-viewer of this test's PD
    other_viewer: str  # pd-viewer of DISDIK
    other_token: str   # agent of DISDIK
    t: datetime

    def post(self, *observations: Any, token: str | None = None, agent: str | None = None,
             pd: str | None = None) -> str:
        rep = Report(report_id=new_report_id(), agent_id=agent or self.agent,
                     pd_code=pd or self.pd,
                     sent_at=datetime.now(UTC), observations=list(observations))
        body = gzip.compress(rep.model_dump_json().encode())
        with self.col.client() as c:
            r = c.post("/api/v1/reports", content=body,
                       headers={"Authorization": f"Bearer {token or self.token}",
                                "Content-Encoding": "gzip",
                                "Content-Type": "application/json"})
        assert r.status_code == 202, r.text
        return str(rep.report_id)

    def tick(self, minutes: int = 5) -> datetime:
        self.t += timedelta(minutes=minutes)
        return self.t

    def call(self, method: str, path: str, key: str, **kw: Any) -> Any:
        with self.col.client(key) as c:
            return c.request(method, path, **kw)

    def changes(self, key: str | None = None, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.col.get(f"/api/v1/pds/{self.pd}/changes",
                                                   key or self.engineer, **params)["items"]
        return items


@pytest.fixture
def lab(shared: Shared) -> Lab:
    col, n = shared.col, next(_seq)
    pd, agent = f"DINKES{n}", f"dinkes{n}-gw"
    col.add_pd(pd, "Dinas Kesehatan")
    token = col.add_agent(agent, pd)
    viewer = col.add_key(f"viewer-{pd}", "pd-viewer", pd)
    if col.proc is None:
        col.start()
    return Lab(col, pd, agent, token, shared.admin, shared.engineer, viewer,
               shared.other_viewer, shared.other_token, t=datetime.now(UTC) - timedelta(hours=2))


def lldp(local: str, system: str, port: str, **kw: Any) -> dict[str, Any]:
    return {"local_port": local, "remote_system_name": system, "remote_port_id": port, **kw}


def iface(name: str, index: int, **kw: Any) -> dict[str, Any]:
    return {"name": name, "index": index, "oper_up": True, "speed_mbps": 1000,
            "in_octets": 1000 * index, "out_octets": 2000 * index, "in_errors": 0,
            "out_errors": 0, **kw}


def network(t: datetime, *, cut: bool = False, sw3: bool = False, moved: bool = False
            ) -> list[DeviceObservation]:
    """rtr --Gi0/0/1:Gi1/0/48-- sw1 --Gi1/0/47:Gi0/1-- sw2; sw1 Gi1/0/3 -- AP (unregistered);
    rtr Gi0/0/0 -> intranet (default route via 172.16.0.1)."""
    sw1_port = "Gi1/0/46" if moved else "Gi1/0/47"
    sw1_lldp = [lldp("Gi1/0/48", "rtr.dinkes.local", "Gi0/0/1"),
                lldp("Gi1/0/3", "AP-Lantai2", "eth0", remote_mgmt_address="10.20.0.9")]
    sw2_lldp = []
    if not cut:
        sw1_lldp.append(lldp(sw1_port, "sw2", "Gi0/1"))
        sw2_lldp.append(lldp("Gi0/1", "sw1", sw1_port))
    if sw3:
        sw1_lldp.append(lldp("Gi1/0/2", "sw3", "Gi0/24"))
    out = [
        DeviceObservation.model_validate(dict(
            observed_at=t, device="rtr", mgmt_address="10.20.0.1", driver="napalm:ios",
            status="ok", hostname="rtr.dinkes.local", vendor="Cisco", model="C1111-4P",
            serial="FGL2231A0BC", os_version="17.3.4a", role="router", uptime_s=86400,
            duration_s=2.5,
            interfaces=[iface("Gi0/0/0", 1), iface("Gi0/0/1", 2)],
            addresses=[{"interface": "Gi0/0/1", "address": "10.20.0.1", "prefix_len": 24},
                       {"interface": "Gi0/0/0", "address": "172.16.0.2", "prefix_len": 30}],
            routes=[{"destination": "0.0.0.0/0", "gateway": "172.16.0.1",
                     "interface": "Gi0/0/0"}],
            arp=[{"ip": "10.20.0.50", "mac": "aa:00:00:00:00:50", "interface": "Gi0/0/1"},
                 {"ip": "10.20.0.51", "mac": "aa:00:00:00:00:51", "interface": "Gi0/0/1"}],
            lldp_neighbors=[lldp("Gi0/0/1", "sw1", "Gi1/0/48")])),
        DeviceObservation.model_validate(dict(
            observed_at=t, device="sw1", mgmt_address="10.20.0.2", driver="snmp", status="ok",
            vendor="Cisco", model="WS-C2960X-48TS-L", serial="=HYPERLINK(\"x\")",
            os_version="15.2(7)E4", role="switch", location='Ruang Server, "Lt 1"',
            interfaces=[iface(n, i) for i, n in enumerate(
                ["Gi1/0/1", "Gi1/0/2", "Gi1/0/3", "Gi1/0/46", "Gi1/0/47", "Gi1/0/48"], 1)],
            fdb=[{"mac": "aa:00:00:00:00:50", "port": "Gi1/0/1"}],
            lldp_neighbors=sw1_lldp)),
        DeviceObservation.model_validate(dict(
            observed_at=t, device="sw2", mgmt_address="10.20.0.3", driver="snmp", status="ok",
            vendor="Huawei", model="S5735-L24T4S", serial="2102351", os_version="V200R021",
            role="switch", interfaces=[iface("Gi0/1", 1)], lldp_neighbors=sw2_lldp)),
    ]
    if sw3:
        out.append(DeviceObservation.model_validate(dict(
            observed_at=t, device="sw3", mgmt_address="10.20.0.4", driver="snmp",
            status="ok", vendor="MikroTik", model="CRS326", role="switch",
            interfaces=[iface("Gi0/24", 24)],
            lldp_neighbors=[lldp("Gi0/24", "sw1", "Gi1/0/2")])))
    return out


def config(t: datetime, content: str) -> ConfigSnapshot:
    return ConfigSnapshot(observed_at=t, device="rtr", driver="napalm:ios", content=content,
                          sha256=hashlib.sha256(content.encode()).hexdigest(),
                          masked_secrets=2, ignored_lines=1)


CFG1 = ("hostname rtr\n!\nusername admin secret <masked>\nsnmp-server community <masked> RO\n"
        "interface Gi0/0/1\n description LAN\n")
CFG2 = CFG1.replace(" description LAN\n", " description LAN-DINKES\n shutdown\n")


def test_inventory_list_detail_csv_and_metrics(lab: Lab, influxd: InfluxD) -> None:
    lab.post(*network(lab.tick()), config(lab.t, CFG1))
    lab.post(DeviceObservation.model_validate(dict(
        observed_at=lab.t, device="rtr", mgmt_address="10.30.0.1", driver="snmp",
        status="ok", vendor="HPE", model="1920S", interfaces=[iface("1", 1)])),
        token=lab.other_token, agent="disdik-gw", pd="DISDIK")
    page = lab.col.get("/api/v1/devices", lab.admin, pd=lab.pd)
    assert page["total"] == 3
    # "rtr" exists in two PDs now: the name alone is ambiguous for a key that sees both
    r = lab.call("GET", "/api/v1/devices/rtr", lab.admin)
    assert r.status_code == 409 and "?pd=" in r.json()["detail"]
    rtr = lab.col.get("/api/v1/devices/rtr", lab.engineer, pd=lab.pd)
    assert rtr == lab.col.get("/api/v1/devices/rtr", lab.viewer)  # the viewer's PD is implied
    assert {k: rtr[k] for k in ("pd", "agent", "vendor", "model", "serial", "os_version",
                                "mgmt_address", "role", "last_status", "hostname")} == {
        "pd": lab.pd, "agent": lab.agent, "vendor": "Cisco", "model": "C1111-4P",
        "serial": "FGL2231A0BC", "os_version": "17.3.4a", "mgmt_address": "10.20.0.1",
        "role": "router", "last_status": "ok", "hostname": "rtr.dinkes.local"}
    assert rtr["first_seen"] == rtr["last_seen"] == lab.t.timestamp()
    assert [i["name"] for i in rtr["interfaces"]] == ["Gi0/0/0", "Gi0/0/1"]
    assert rtr["interfaces"][1]["in_octets"] == 2000 and rtr["config_versions"] == 1
    assert [n["remote_system_name"] for n in rtr["lldp_neighbors"]] == ["sw1"]
    assert len(rtr["addresses"]) == 2 and rtr["arp_entries"] == 2

    # filters and pagination
    def names(**params: Any) -> list[str]:
        return [d["name"] for d in lab.col.get("/api/v1/devices", lab.admin, pd=lab.pd,
                                               **params)["items"]]
    assert names() == ["rtr", "sw1", "sw2"]
    assert names(role="switch") == ["sw1", "sw2"]
    assert names(vendor="huawei") == ["sw2"]
    assert names(q="c2960") == ["sw1"]
    assert names(q="10.20.0.1") == ["rtr"]
    assert names(q="%") == []                 # LIKE wildcards are literal
    assert names(status="failed") == [] and names(status="ok") == ["rtr", "sw1", "sw2"]
    assert names(limit=2, offset=1) == ["sw1", "sw2"]
    assert [d["pd"] for d in lab.col.get("/api/v1/devices", lab.admin, vendor="hpe",
                                         q="10.30.0.1")["items"]] == ["DISDIK"]

    # CSV export: proper quoting and formula injection defused
    r = lab.call("GET", "/api/v1/devices.csv", lab.admin, params={"pd": lab.pd})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["name"] for x in rows] == ["rtr", "sw1", "sw2"]
    sw1 = rows[1]
    assert sw1["serial"] == "'=HYPERLINK(\"x\")"
    assert sw1["location"] == 'Ruang Server, "Lt 1"'
    assert sw1["pd"] == lab.pd and sw1["model"] == "WS-C2960X-48TS-L"
    assert rows[0]["first_seen"] == lab.t.isoformat(timespec="seconds")
    assert '"Ruang Server, ""Lt 1"""' in r.text

    # device and interface points reach InfluxDB (3 devices, 2 + 6 + 1 interfaces)
    def points(m: str) -> list[dict[str, Any]]:
        try:
            return [p for p in influxd.points(m, "spbe_topology_api") if p["pd"] == lab.pd]
        except InfluxError:
            return []
    wait_for(lambda: len(points("device")) == 3 and len(points("interface")) == 9, 20,
             "device/interface points in InfluxDB")
    dev = {p["device"]: p for p in points("device")}
    assert (dev["rtr"]["up"], dev["rtr"]["uptime_s"], dev["rtr"]["duration_s"]) == (1, 86400, 2.5)
    (gi,) = [p for p in points("interface") if (p["device"], p["ifname"]) == ("rtr", "Gi0/0/1")]
    assert (gi["in_octets"], gi["out_octets"], gi["oper_up"], gi["speed_mbps"]) == (
        2000, 4000, 1, 1000)


def test_topology_graph_and_svg(lab: Lab) -> None:
    lab.post(*network(lab.tick()))
    topo = lab.col.get(f"/api/v1/pds/{lab.pd}/topology", lab.viewer)
    assert topo["pd"] == {"code": lab.pd, "name": "Dinas Kesehatan"}
    assert topo["baseline"] is None
    kinds = {n["id"]: n["kind"] for n in topo["nodes"]}
    assert kinds == {"rtr": "managed", "sw1": "managed", "sw2": "managed",
                     "AP-Lantai2": "unmanaged", "uplink:172.16.0.1": "uplink",
                     "hosts:sw1:Gi1/0/1": "hosts", "hosts:rtr:Gi0/0/1": "hosts"}
    links = sorted((lk["a"], lk["a_port"], lk["b"], lk["b_port"], lk["kind"])
                   for lk in topo["links"] if lk["kind"] != "hosts")
    # rtr-sw1 and sw1-sw2 are each reported from both ends: one link each
    assert links == [
        ("AP-Lantai2", "eth0", "sw1", "Gi1/0/3", "lldp"),
        ("rtr", "Gi0/0/0", "uplink:172.16.0.1", "", "uplink"),
        ("rtr", "Gi0/0/1", "sw1", "Gi1/0/48", "lldp"),
        ("sw1", "Gi1/0/47", "sw2", "Gi0/1", "lldp"),
    ]
    assert topo["uplinks"] == [{"device": "rtr", "interface": "Gi0/0/0",
                                "next_hop": "172.16.0.1", "peer": "uplink:172.16.0.1"}]

    r = lab.call("GET", f"/api/v1/pds/{lab.pd}/topology.svg", lab.viewer)
    assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(r.content)
    assert root.tag == f"{SVG}svg"
    texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
    for want in ("rtr", "sw1", "sw2", "AP-Lantai2", "C1111-4P", "10.20.0.1", "Gi1/0/48",
                 "Dinas Kesehatan", datetime.now(UTC).strftime("%Y-%m-%d"), "Keterangan"):
        assert want in texts, want
    en = lab.call("GET", f"/api/v1/pds/{lab.pd}/topology.svg", lab.viewer,
                  params={"lang": "en"})
    assert "Legend" in en.text and "LAN Diagram" in en.text

    # pd-viewer of another PD: 403 on graph and diagram; unknown PD: 404
    for path in (f"/api/v1/pds/{lab.pd}/topology", f"/api/v1/pds/{lab.pd}/topology.svg"):
        assert lab.call("GET", path, lab.other_viewer).status_code == 403
    assert lab.call("GET", "/api/v1/pds/NOPE/topology", lab.admin).status_code == 404


def test_baseline_changes_and_ack(lab: Lab) -> None:
    bl = f"/api/v1/pds/{lab.pd}/topology/baseline"
    # no devices yet: nothing to approve
    assert lab.call("POST", bl, lab.engineer).status_code == 409
    assert lab.call("GET", bl, lab.engineer).status_code == 404
    lab.post(*network(lab.tick()))
    # read-only keys cannot approve
    assert lab.call("POST", bl, lab.viewer).status_code == 403
    r = lab.call("POST", bl, lab.engineer)
    assert r.status_code == 201, r.text
    assert r.json()["approved_by"] == "eng-budi"
    base = lab.col.get(bl, lab.viewer)
    assert base["approved_by"] == "eng-budi" and len(base["links"]) == 4
    topo = lab.col.get(f"/api/v1/pds/{lab.pd}/topology", lab.viewer)
    assert topo["baseline"]["id"] == base["id"]

    lab.post(*network(lab.tick()))
    assert lab.changes() == []

    # a link is cut: exactly one "link removed", also after the same observation again
    cut_report = lab.post(*network(lab.tick(), cut=True))
    lab.post(*network(lab.tick(), cut=True))
    (ch,) = lab.changes()
    assert (ch["type"], ch["status"], ch["acknowledged"]) == ("link_removed", "open", False)
    assert ch["detail"]["link"]["a_port"] == "Gi1/0/47" and ch["detail"]["link"]["b"] == "sw2"
    assert ch["evidence"]["report_id"] == cut_report == ch["report_id"]
    assert ch["first_seen"] == (lab.t - timedelta(minutes=5)).timestamp()
    assert ch["last_seen"] == lab.t.timestamp()
    assert {row["device"] for row in ch["evidence"]["baseline_lldp"]} == {"sw1", "sw2"}
    assert "Link terputus" in ch["summary"] and "Link removed" in ch["summary_en"]

    # restored before anyone acknowledged it: resolved, not deleted
    lab.post(*network(lab.tick()))
    (ch,) = lab.changes()
    assert (ch["status"], ch["resolution"]) == ("resolved", "restored")

    # a new device
    lab.post(*network(lab.tick(), sw3=True))
    lab.post(*network(lab.tick(), sw3=True))  # the same again: no duplicate
    open_ = lab.changes(status="open")
    assert [(c["type"], c["detail"]["node"]["id"]) for c in open_] == [("device_added", "sw3")]

    # approve again (sw3 accepted), then the sw1-sw2 cable moves to another sw1 port
    assert lab.call("POST", bl, lab.admin).status_code == 201
    assert lab.changes(status="open") == []
    lab.post(*network(lab.tick(), sw3=True, moved=True))
    (mv,) = lab.changes(status="open")
    assert mv["type"] == "port_moved"
    assert (mv["detail"]["from"]["a_port"], mv["detail"]["to"]["a_port"]) == ("Gi1/0/47",
                                                                              "Gi1/0/46")

    # acknowledge: engineers only, with a note, once
    path = f"/api/v1/changes/{mv['id']}/ack"
    assert lab.call("POST", path, lab.viewer, json={"note": "x"}).status_code == 403
    assert lab.call("POST", path, lab.engineer, json={}).status_code == 422
    r = lab.call("POST", path, lab.engineer, json={"note": "Pindah port saat penataan rak"})
    assert r.status_code == 200, r.text
    assert lab.call("POST", path, lab.admin, json={"note": "again"}).status_code == 409
    assert lab.call("POST", "/api/v1/changes/999999/ack", lab.admin,
                    json={"note": "x"}).status_code == 404
    got = lab.col.get(f"/api/v1/changes/{mv['id']}", lab.viewer)
    assert (got["acknowledged"], got["acked_by"], got["ack_note"]) == (
        True, "eng-budi", "Pindah port saat penataan rak")
    assert lab.changes(status="open")[0]["acknowledged"] is True  # acked, still present

    # global list and its filters; pd-viewer scoping
    assert lab.col.get("/api/v1/changes", lab.admin, pd=lab.pd)["total"] == 3
    assert [c["type"] for c in lab.col.get("/api/v1/changes", lab.admin, pd=lab.pd,
                                           type="port_moved", acknowledged="true")["items"]] \
        == ["port_moved"]
    assert lab.col.get("/api/v1/changes", lab.admin, pd=lab.pd,
                       acknowledged="false")["total"] == 2
    assert [c["type"] for c in lab.col.get("/api/v1/changes", lab.admin, pd=lab.pd,
                                           type="link_removed")["items"]] == ["link_removed"]
    assert lab.col.get("/api/v1/changes", lab.viewer)["total"] == 3
    assert lab.col.get("/api/v1/changes", lab.other_viewer)["total"] == 0
    assert lab.call("GET", "/api/v1/changes", lab.other_viewer,
                    params={"pd": lab.pd}).status_code == 403
    assert lab.call("GET", f"/api/v1/changes/{mv['id']}", lab.other_viewer).status_code == 403
    assert lab.call("GET", f"/api/v1/pds/{lab.pd}/changes",
                    lab.other_viewer).status_code == 403


def test_pd_viewer_scope_on_devices(lab: Lab) -> None:
    lab.post(*network(lab.tick()))
    assert lab.col.get("/api/v1/devices", lab.viewer)["total"] == 3
    assert {d["pd"] for d in lab.col.get("/api/v1/devices", lab.other_viewer)["items"]} <= {
        "DISDIK"}
    assert lab.call("GET", "/api/v1/devices/sw2", lab.other_viewer).status_code == 403
    assert lab.call("GET", "/api/v1/devices", lab.other_viewer,
                    params={"pd": lab.pd}).status_code == 403
    r = lab.call("GET", "/api/v1/devices.csv", lab.other_viewer)
    assert r.status_code == 200 and lab.pd not in r.text
    assert lab.call("GET", "/api/v1/devices/nope", lab.admin).status_code == 404


def test_config_versions_and_diff(lab: Lab) -> None:
    lab.post(*network(lab.tick()), config(lab.t, CFG1))
    lab.post(config(lab.tick(60), CFG1))  # unchanged: no new version
    lab.post(config(lab.tick(60), CFG2))
    versions = lab.col.get("/api/v1/devices/rtr/configs", lab.viewer)["items"]
    assert [v["sha256"] for v in versions] == [hashlib.sha256(c.encode()).hexdigest()
                                               for c in (CFG2, CFG1)]
    assert versions[1]["last_seen"] == (lab.t - timedelta(minutes=60)).timestamp()
    assert {(v["size"], v["masked_secrets"]) for v in versions} == {
        (len(CFG1), 2), (len(CFG2), 2)}
    assert all("content" not in v for v in versions)
    new, old = versions
    base = "/api/v1/devices/rtr/configs"
    params = {"from": old["id"], "to": new["id"], "pd": lab.pd}
    r = lab.call("GET", f"{base}/diff", lab.engineer, params=params)
    assert r.status_code == 200, r.text
    d = r.json()
    assert "- description LAN\n" in d["diff"] and "+ description LAN-DINKES\n" in d["diff"]
    assert "+ shutdown\n" in d["diff"] and (d["added"], d["removed"]) == (2, 1)
    assert d["diff"].startswith("--- rtr@")
    # content is for engineers only
    assert lab.call("GET", f"{base}/diff", lab.viewer, params=params).status_code == 403
    assert lab.call("GET", f"{base}/{old['id']}", lab.viewer).status_code == 403
    full = lab.col.get(f"{base}/{old['id']}", lab.admin, pd=lab.pd)
    assert full["content"] == CFG1
    assert lab.call("GET", f"{base}/diff", lab.admin,
                    params={**params, "to": 999999}).status_code == 404
    assert lab.call("GET", "/api/v1/devices/sw1/configs", lab.other_viewer).status_code == 403


# --- on the real network lab (tests/netlab.py): SNMP polls by a real agent ------------------

@pytest.mark.timeout(600)
def test_real_lab_inventory_topology_and_cut_link(shared: Shared, tmp_path: Path) -> None:
    from tests.netlab import Lab as NetLab
    from tests.netlab import default_spec

    col = shared.col
    col.add_pd("LABDINKES", "Dinas Kesehatan (netlab)")
    token = col.add_agent("labdinkes-gw", "LABDINKES")
    if col.proc is None:
        col.start()
    net = NetLab.start(default_spec(), timeout=120)
    try:
        community = {"file": str(net.snmp.community.path)}
        devices = [{"name": n, "host": net.devices[n].mgmt_ip, "platform": "snmp",
                    "snmp": {"version": "2c", "community": community, "timeout_s": 3,
                             "retries": 2}}
                   for n in ("dinkes-rtr", "dinkes-sw1")]
        agent = Agent(tmp_path / "agent", col, "labdinkes-gw", "LABDINKES", token,
                      devices=devices)

        def once() -> None:
            out = agent.run_cli("once", timeout=300)
            assert out.returncode == 0 and "shipped 1" in out.stdout, out.stdout + out.stderr

        once()
        eng = shared.engineer
        devs = {d["name"]: d for d in col.get("/api/v1/devices", eng, pd="LABDINKES")["items"]}
        assert set(devs) == {"dinkes-rtr", "dinkes-sw1"}
        rtr = devs["dinkes-rtr"]
        assert (rtr["vendor"], rtr["model"], rtr["os_version"], rtr["role"], rtr["last_status"],
                rtr["mgmt_address"]) == ("Huawei", "AR1200", "V200R010C10SPC700", "router", "ok",
                                         net.devices["dinkes-rtr"].mgmt_ip)
        assert devs["dinkes-sw1"]["last_status"] == "ok"
        detail = col.get("/api/v1/devices/dinkes-rtr", eng, pd="LABDINKES")
        assert {"eth1", "eth2"} <= {i["name"] for i in detail["interfaces"]}

        topo = col.get("/api/v1/pds/LABDINKES/topology", eng)
        links = sorted((lk["a"], lk["a_port"], lk["b"], lk["b_port"], lk["kind"])
                       for lk in topo["links"] if lk["kind"] != "hosts")
        assert links == [("dc-core", "eth1", "dinkes-rtr", "eth1", "uplink"),
                         ("dinkes-rtr", "eth2", "dinkes-sw1", "eth1", "lldp")]
        kinds = {n["id"]: n["kind"] for n in topo["nodes"]}
        assert kinds["dc-core"] == "unmanaged"
        hosts = {ip for n in topo["nodes"] if n["kind"] == "hosts" for ip in n["host_sample"]}
        assert {"10.253.16.101", "10.253.16.102"} <= hosts   # the PCs, from the router's ARP
        with col.client(eng) as c:
            svg = c.get("/api/v1/pds/LABDINKES/topology.svg")
        texts = " ".join(t.text or "" for t in ET.fromstring(svg.content).iter(f"{SVG}text"))
        assert "dinkes-rtr" in texts and "dinkes-sw1" in texts and "AR1200" in texts

        with col.client(eng) as c:
            assert c.post("/api/v1/pds/LABDINKES/topology/baseline").status_code == 201
        net.cut_link("dinkes-rtr", "dinkes-sw1")
        once()
        (ch,) = col.get("/api/v1/pds/LABDINKES/changes", eng)["items"]
        assert (ch["type"], ch["status"]) == ("link_removed", "open")
        assert (ch["detail"]["link"]["a"], ch["detail"]["link"]["a_port"],
                ch["detail"]["link"]["b"], ch["detail"]["link"]["b_port"]) == (
            "dinkes-rtr", "eth2", "dinkes-sw1", "eth1")
        net.restore_link("dinkes-rtr", "dinkes-sw1")
        once()
        (ch,) = col.get("/api/v1/pds/LABDINKES/changes", eng)["items"]
        assert (ch["status"], ch["resolution"]) == ("resolved", "restored")

        # a switch added behind sw1 (not in the agent's list: seen through sw1's LLDP)
        net.add_device("dinkes-sw2", "DINKES", ["dinkes-sw1"], role="switch")
        once()
        new = [c for c in col.get("/api/v1/pds/LABDINKES/changes", eng)["items"]
               if c["status"] == "open"]
        # exactly one change: the device, its cable and LLDP evidence inside it (a link of
        # an added device is not a separate change)
        (added,) = new
        assert (added["type"], added["summary"]) == (
            "device_added", "Perangkat baru terdeteksi: dinkes-sw2"), new
        (cable,) = added["detail"]["links"]
        assert {cable["a"], cable["b"]} == {"dinkes-sw1", "dinkes-sw2"}, cable
        assert added["evidence"]["lldp"], added
        topo = col.get("/api/v1/pds/LABDINKES/topology", eng)
        assert any({lk["a"], lk["b"]} == {"dinkes-sw1", "dinkes-sw2"}
                   for lk in topo["links"]), topo["links"]
        once()   # nothing more changes
        assert [c["id"] for c in col.get("/api/v1/pds/LABDINKES/changes", eng)["items"]
                if c["status"] == "open"] == [added["id"]]
    finally:
        net.stop()
