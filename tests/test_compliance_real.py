"""Compliance scenarios with real components end to end: real agent processes read real
sources and ship to real collector processes (one per region profile) over HTTPS.

- the network lab (tests/netlab.py: snmpd + lldpd in network namespaces), polled over SNMP
  by ``spbe-agent run``: an up port without a description (LAN-4), a default route through a
  namespace playing an unauthorised ISP (NET-1, NET-2), a device missing from the registered
  inventory (ASSET-1);
- real restic repositories checked by ``spbe-agent run``: a stale repository (BAK-1), a
  backup with no DRC copy (BAK-2);
- a real PostgreSQL listening on 5432 in a PD LAN namespace, found by the agent's server
  scan (``spbe-agent once --dry-run`` inside the agent's namespace; its report is posted to
  the collectors as is) (DC-1).

Each violation is checked with its article in two regions (LAN-4: Solok only), then the
cause is removed in the real source and the violation must resolve.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.report import Report, ServerScan, utcnow
from tests.procs import REPO, Agent, TestCA
from tests.servers import InfluxD
from tests.test_compliance_collector import Region, start_regions

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
REGIONS = ("lebak-2024", "bogor-2021", "solok-2020", "bogor-perda")
PDS = ("DINKES", "BAK", "DC1", "NOBODY")


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory, ca: TestCA,
            influxd: InfluxD) -> Iterator[dict[str, Region]]:
    out = start_regions(tmp_path_factory, ca, influxd.url, REGIONS, PDS, "real")
    try:
        yield out
    finally:
        for r in out.values():
            r.col.stop()


@contextlib.contextmanager
def agents(made: list[Agent]) -> Iterator[list[Agent]]:
    try:
        yield made
    finally:
        for a in made:
            a.stop()


FAST = {"heartbeat_s": 2, "host_facts_s": 60, "probes_s": 30, "devices_s": 3,
        "config_backup_s": 3600, "backups_s": 3}


# --- the network lab: LAN-4, NET-1, NET-2, ASSET-1 -----------------------------------------

def test_network_lab_label_isp_uplink_and_inventory(regions: dict[str, Region],
                                                    tmp_path: Path) -> None:
    from tests.netlab import DeviceSpec, Lab, LinkSpec, PortSpec

    with Lab.start() as lab:
        community = str(lab.snmp.community.path)
        polled = [{"name": n, "host": lab.devices[n].mgmt_ip, "platform": "snmp",
                   "snmp": {"version": "2c", "community": {"file": community},
                            "timeout_s": 3, "retries": 1}}
                  for n in ("dinkes-rtr", "dinkes-sw1")]
        made = [Agent(tmp_path / f"agent-{r.key}", r.col, "dinkes-gw", "DINKES",
                      r.tokens["DINKES"], devices=polled, intervals=FAST).start()
                for r in regions.values()]
        with agents(made):
            lebak, bogor, solok, perda = (regions[k] for k in REGIONS)
            # LAN-4: dinkes-sw1 eth3 carries a cable (to pc2) and has no description
            port = solok.wait_open("DINKES", "LAN-4", "port:dinkes-sw1/eth3", timeout=180)
            assert port["evidence"]["description"] == ""
            assert "Port dinkes-sw1 eth3 aktif tetapi kabelnya tidak berlabel" in \
                port["message"]
            # ASSET-1: only the router is in the registered inventory
            asset = {}
            for r in (lebak, solok):
                resp = r.call("PUT", "/api/v1/pds/DINKES/registered-devices", json={
                    "devices": [{"name": "dinkes-rtr", "vendor": "Huawei", "model": "AR1200",
                                 "serial": "LAB-RTR-0001"}]})
                assert resp.status_code == 200, resp.text
                asset[r.key] = r.wait_open("DINKES", "ASSET-1", "device:dinkes-sw1")
                r.wait_open("DINKES", "ASSET-1", "neighbor:dc-core")   # LLDP, not polled
            lebak.none_of("DINKES", "LAN-4")      # polled for a while: no such obligation
            # an unauthorised ISP: a new router behind dinkes-rtr becomes its default route
            lab.add_device(DeviceSpec("isp-rtr", "ISP", "router"), links=[LinkSpec(
                PortSpec("dinkes-rtr", "eth3", "10.253.200.1/30", "ISP-UPLINK"),
                PortSpec("isp-rtr", "eth1", "10.253.200.2/30", "TO-DINKES"))])
            lab.run_in("dinkes-rtr", ["ip", "route", "replace", "default", "via",
                                      "10.253.200.2"])
            net = {r.key: r.wait_open("DINKES", "NET-1", "device:dinkes-rtr", timeout=90)
                   for r in (solok, perda)}
            assert net["solok-2020"]["evidence"]["outside_default_routes"][0]["gateway"] == \
                "10.253.200.2"
            assert net["bogor-perda"]["severity"] == "warning"
            fw = {r.key: r.wait_open("DINKES", "NET-2", "device:dinkes-rtr", timeout=90)
                  for r in (lebak, bogor)}
            assert "tanpa perangkat firewall" in fw["lebak-2024"]["message"]
            # remove the causes in the lab and in the inventory
            lab.set_alias("dinkes-sw1", "eth3", "R101-A02")
            lab.run_in("dinkes-rtr", ["ip", "route", "replace", "default", "via",
                                      "10.253.0.1"])
            for r in (lebak, solok):
                resp = r.call("PUT", "/api/v1/pds/DINKES/registered-devices", json={
                    "devices": [{"name": n, "model": "lab", "serial": f"LAB-{n}"} for n in
                                ("dinkes-rtr", "dinkes-sw1", "dc-core", "isp-rtr")]})
                assert resp.status_code == 200, resp.text
            solok.wait_resolved(port["id"], timeout=90)
            for key, v in {**net, **fw}.items():
                regions[key].wait_resolved(v["id"], timeout=90)
            for key, v in asset.items():
                regions[key].wait_resolved(v["id"], timeout=90)


# --- real restic repositories: BAK-1, BAK-2 ------------------------------------------------

def _restic(tmp: Path) -> Any:
    from tests.test_backups import new_restic

    if not shutil.which("restic"):
        r = subprocess.run([str(REPO / "scripts/install-backup-deps.sh")], capture_output=True,
                           text=True, timeout=900)
        assert r.returncode == 0, f"install-backup-deps.sh failed:\n{r.stdout}\n{r.stderr}"
    return new_restic(tmp, "primary")


def test_stale_restic_repository_and_no_drc_copy(regions: dict[str, Region],
                                                 tmp_path: Path) -> None:
    from tests.test_backups import local_time, make_data, new_restic

    primary = _restic(tmp_path)
    data = make_data(tmp_path)
    primary("backup", "--time", local_time(utcnow() - timedelta(days=40)), str(data))
    job = {"name": "simpeg-db", "type": "restic", "repository": str(primary.repo),
           "password": {"file": str(primary.pwfile)}, "destination": "10.10.5.20",
           "expected_interval_s": 86400}
    keys = ("lebak-2024", "bogor-2021", "solok-2020")

    def start(jobs: list[dict[str, Any]], tag: str) -> list[Agent]:
        return [Agent(tmp_path / f"agent-{k}-{tag}", regions[k].col, "bak-gw", "BAK",
                      regions[k].tokens["BAK"], backups=jobs, intervals=FAST).start()
                for k in keys]

    subject = "backup:bak-gw/simpeg-db"
    with agents(start([job], "stale")):
        stale = {k: regions[k].wait_open("BAK", "BAK-1", subject, timeout=120,
                                         says="terlambat") for k in keys[:2]}
        nodrc = {k: regions[k].wait_open("BAK", "BAK-2", subject, timeout=120)
                 for k in (keys[0], keys[2])}
    ev = stale["lebak-2024"]["evidence"]
    assert ev["type"] == "restic" and ev["status"] == "success"
    assert time.time() - ev["last_success_at"] > 39 * 86400
    assert "tidak memiliki salinan di DRC" in nodrc["solok-2020"]["message"]
    regions["solok-2020"].none_of("BAK", "BAK-1")        # no BAK-1 article in Solok
    # a fresh backup, and a DRC copy in a second real repository
    primary("backup", str(data))
    drc = new_restic(tmp_path, "drc")
    drc("backup", str(data))
    fixed = {**job, "replica": {"repository": str(drc.repo), "destination": "10.99.5.20"}}
    with agents(start([fixed], "fixed")):
        for k, v in {**stale}.items():
            regions[k].wait_resolved(v["id"], timeout=120)
        for k, v in nodrc.items():
            regions[k].wait_resolved(v["id"], timeout=120)
    jobs = regions["lebak-2024"].call("GET", "/api/v1/backups", params={"pd": "BAK"}).json()
    (j,) = jobs["items"]
    assert j["replica_destination"] == "10.99.5.20" and j["replica_age_s"] < 600


# --- a real database server in a PD LAN: DC-1 ----------------------------------------------

_NS_RE = re.compile(r"^cmp(\d+)-")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    r = subprocess.run([ip, *args], capture_output=True, text=True, timeout=30, check=False)
    if check and r.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _del_ns(name: str) -> None:
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", name, check=False)


def _stale_namespaces() -> None:
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = _NS_RE.match(name)
        if m and int(m.group(1)) != os.getpid():
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                _del_ns(name)


@pytest.fixture
def pd_lan(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two namespaces on one LAN: the PD agent's (10.251.7.1) and a server (10.251.7.10)."""
    if os.geteuid() != 0:
        pytest.fail("needs root (network namespaces)")
    _stale_namespaces()
    ag, srv = f"cmp{os.getpid()}-agent", f"cmp{os.getpid()}-srv"
    try:
        for ns in (ag, srv):
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ag, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
            "netns", srv)
        _ip("-n", ag, "addr", "add", "10.251.7.1/24", "dev", "lan0")
        _ip("-n", srv, "addr", "add", "10.251.7.10/24", "dev", "eth0")
        _ip("-n", ag, "link", "set", "lan0", "up")
        _ip("-n", srv, "link", "set", "eth0", "up")
        yield ag, srv
    finally:
        for ns in (ag, srv):
            _del_ns(ns)


def _scan_once(tmp: Path, ns: str) -> bytes:
    """``spbe-agent once --dry-run`` in the agent's namespace: the report it would ship."""
    cfg = {"agent_id": "dc1-gw", "pd_code": "DC1", "log_level": "WARNING",
           "collector": {"url": "https://127.0.0.1:9/", "token_env": "SPBE_TEST_UNUSED"},
           "spool": {"path": str(tmp / "spool.sqlite")},
           "server_scan": {"enabled": True, "subnets": ["10.251.7.0/24"],
                           "ports": [22, 80, 443, 3306, 5432], "connect_timeout_s": 1.0}}
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_AGENT_")}
    env["PYTHONPATH"] = str(REPO)
    ip = shutil.which("ip") or "/usr/sbin/ip"
    subprocess.run([ip, "netns", "exec", ns, "ping", "-c", "1", "-W", "2", "10.251.7.10"],
                   capture_output=True, timeout=30, check=False)   # the neighbour entry
    r = subprocess.run([ip, "netns", "exec", ns, sys.executable, "-m", "agent.cli", "-c",
                        str(path), "once", "--dry-run"], capture_output=True, timeout=180,
                       env=env, cwd=REPO, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout


def _post_as_is(r: Region, body: bytes) -> None:
    import gzip

    with r.col.client() as c:
        resp = c.post("/api/v1/reports", content=gzip.compress(body),
                      headers={"Authorization": f"Bearer {r.tokens['DC1']}",
                               "Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert resp.status_code == 202, resp.text


def test_database_server_in_a_pd_lan(regions: dict[str, Region], pd_lan: tuple[str, str],
                                     tmp_path: Path) -> None:
    from tests.test_server_scan import _NetnsPostgres

    ag, srv = pd_lan
    pg = _NetnsPostgres(tmp_path / "pg", f"/run/netns/{srv}")
    pg.start()
    try:
        body = _scan_once(tmp_path, ag)
        scan = [o for o in Report.model_validate_json(body).observations
                if isinstance(o, ServerScan)]
        assert [(h.ip, h.open_ports) for h in scan[0].hosts] == [("10.251.7.10", [5432])]
        found = {}
        for key in ("lebak-2024", "solok-2020"):
            _post_as_is(regions[key], body)
            found[key] = regions[key].wait_open("DC1", "DC-1", "server:10.251.7.10")
            assert found[key]["evidence"]["roles"] == ["database"]
            assert "5432" in found[key]["message"]
    finally:
        pg.close()
    body = _scan_once(tmp_path, ag)       # the database is gone from the PD LAN
    for key, v in found.items():
        _post_as_is(regions[key], body)
        regions[key].wait_resolved(v["id"])
