"""SNMP discovery benchmark: our driver (pysnmp, one asyncio engine) vs net-snmp's tools.

Starts ``--snmpd`` real net-snmp snmpd processes on 127.0.0.1, each listening on several UDP
ports, for ``--devices`` agents in all (every port is a device to the pollers). Then, per round:

* **driver**: :class:`agent.drivers.snmp.SnmpDriver` polls every device for the full
  discovery set (system, IF-MIB, IP-MIB addresses/ARP/routes, LLDP, ENTITY, BRIDGE/Q-BRIDGE),
  ``--concurrency`` devices at a time on one event loop, and builds the observations;
* **net-snmp**: the same OIDs of the same agents with ``snmpget`` (the scalars) and one
  ``snmpbulkwalk`` per walked column (the tool walks one subtree per run), ``--concurrency``
  devices at a time in parallel processes, same max-repetitions, timeout and retries.
  The OID list is what the driver actually asked a device for (traced in a warm-up poll).

Varbinds count values inside the walked subtrees / returned by GET (what each tool prints), not
the overshoot past a table's end. The two run alternately ``--rounds`` times; medians are
printed. ``--tables`` adds a net-snmp run walking whole tables (fewer processes, more columns)
for context.

    .venv/bin/python bench/snmp_poll.py [--devices 200] [--snmpd 20] [--concurrency 32]

Last line: ``RESULT devices=... seconds=... varbinds_per_s=... netsnmp_varbinds_per_s=...
ratio=...``
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import DeviceCfg
from agent.drivers.snmp import SnmpDriver
from agent.snmp_engine import OID, SnmpHub, SnmpSession, oid_str
from contract.report import PollStatus
from tests.snmpd import Snmpd, free_udp_ports, tool_env

TABLES = ["1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1", "1.3.6.1.2.1.4.20", "1.3.6.1.2.1.4.34",
          "1.3.6.1.2.1.4.35", "1.3.6.1.2.1.4.24.7", "1.0.8802.1.1.2.1.4",
          "1.3.6.1.2.1.47.1.1.1", "1.3.6.1.2.1.17.7.1.2.2", "1.3.6.1.2.1.17.4.3"]


def devices_for(daemons: list[Snmpd], timeout_s: float, retries: int,
                max_rep: int) -> list[DeviceCfg]:
    out = []
    for d in daemons:
        for p in d.ports:
            out.append(DeviceCfg.model_validate({
                "name": f"dev{p}", "host": "127.0.0.1", "platform": "snmp",
                "snmp": {"version": "2c", "port": p, "community": {"file": str(d.community_file)},
                         "timeout_s": timeout_s, "retries": retries,
                         "max_repetitions": max_rep}}))
    return out


def trace_requests(device: DeviceCfg) -> tuple[list[OID], list[OID]]:
    """Poll one device and record what the driver asked for: (scalars, walked columns)."""
    scalars: list[OID] = []
    columns: list[OID] = []
    orig_get, orig_walk = SnmpSession.get, SnmpSession.walk

    async def get(self: SnmpSession, oids: Any) -> Any:
        scalars.extend(oids)
        return await orig_get(self, oids)

    async def walk(self: SnmpSession, cols: Any, **kw: Any) -> Any:
        columns.extend(cols)
        return await orig_walk(self, cols, **kw)

    setattr(SnmpSession, "get", get)  # noqa: B010 - instrumentation for this trace only
    setattr(SnmpSession, "walk", walk)  # noqa: B010
    try:
        obs = SnmpDriver().poll(device)
    finally:
        setattr(SnmpSession, "get", orig_get)  # noqa: B010
        setattr(SnmpSession, "walk", orig_walk)  # noqa: B010
    assert obs.status is PollStatus.OK, obs.error
    return scalars, columns


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_driver(devices: list[DeviceCfg], concurrency: int) -> dict[str, float]:
    driver = SnmpDriver()

    async def main() -> tuple[float, int, int, int, list[Any]]:
        sem = asyncio.Semaphore(concurrency)

        async def one(d: DeviceCfg) -> Any:
            async with sem:
                return await driver.poll_async(d)

        hub = SnmpHub.current()
        t0 = time.perf_counter()
        res = await asyncio.gather(*(one(d) for d in devices))
        took = time.perf_counter() - t0
        useful, requests, received = hub.useful, hub.requests, hub.varbinds
        SnmpHub.close_current()
        return took, useful, requests, received, res

    c0 = cpu_s()
    took, useful, requests, received, res = asyncio.run(main())
    failed = [r for r in res if r.status is not PollStatus.OK]
    if failed:
        raise SystemExit(f"driver: {len(failed)} polls not ok, e.g. {failed[0].device}: "
                         f"{failed[0].error}")
    return {"seconds": took, "varbinds": useful, "requests": requests, "received": received,
            "cpu_s": cpu_s() - c0}


def run_netsnmp(devices: list[DeviceCfg], community: dict[int, str], scalars: list[OID],
                subtrees: list[str], concurrency: int, env: dict[str, str], timeout_s: float,
                retries: int, max_rep: int) -> dict[str, float]:
    common = ["-v2c", "-On", "-t", str(timeout_s), "-r", str(retries)]
    scalar_args = [oid_str(o) for o in scalars]

    def one(d: DeviceCfg) -> tuple[int, float]:
        assert d.snmp is not None
        target = f"127.0.0.1:{d.snmp.port}"
        comm = ["-c", community[d.snmp.port]]
        count = 0
        child_cpu = 0.0
        cmds = [["snmpget", *common, *comm, target, *scalar_args]]
        cmds += [["snmpbulkwalk", *common, *comm, f"-Cr{max_rep}", target, s]
                 for s in subtrees]
        for cmd in cmds:
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise SystemExit(f"{' '.join(cmd[:1])} {target}: {r.stderr.strip()}")
            count += sum(1 for line in r.stdout.splitlines()
                         if line.startswith(".") and "= No Such" not in line
                         and "= No more variables" not in line)
        return count, child_cpu

    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, devices))
    took = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": took, "varbinds": sum(c for c, _ in results),
            "processes": len(devices) * (1 + len(subtrees)),
            "cpu_s": c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--snmpd", type=int, default=20, help="snmpd processes (ports spread)")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--retries", type=int, default=1)
    ap.add_argument("--max-repetitions", type=int, default=25)
    ap.add_argument("--tables", action="store_true",
                    help="also time net-snmp walking whole tables")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="spbe-bench-snmp-"))
    n_snmpd = max(1, min(args.snmpd, args.devices))
    ports = free_udp_ports(args.devices)
    per = -(-args.devices // n_snmpd)
    daemons: list[Snmpd] = []
    try:
        t0 = time.perf_counter()
        for i in range(n_snmpd):
            chunk = ports[i * per:(i + 1) * per]
            if chunk:
                daemons.append(Snmpd(work / f"snmpd{i}", ports=chunk, sys_name=f"bench{i}",
                                     community="bench-community").start())
        print(f"started {len(daemons)} snmpd with {args.devices} agents on 127.0.0.1 in "
              f"{time.perf_counter() - t0:.1f}s; {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f}")
        devices = devices_for(daemons, args.timeout, args.retries, args.max_repetitions)
        community = {p: d.community for d in daemons for p in d.ports}
        scalars, columns = trace_requests(devices[0])
        subtrees = [oid_str(c) for c in columns]
        print(f"discovery set per device: GET of {len(scalars)} scalars + walks of "
              f"{len(columns)} columns")
        env = tool_env(work)
        run_driver(devices[: min(20, len(devices))], args.concurrency)  # warm snmpd caches

        rows: dict[str, list[dict[str, float]]] = {"driver": [], "netsnmp": [], "tables": []}
        for r in range(args.rounds):
            order = ["driver", "netsnmp"] if r % 2 == 0 else ["netsnmp", "driver"]
            for what in order:
                if what == "driver":
                    res = run_driver(devices, args.concurrency)
                else:
                    res = run_netsnmp(devices, community, scalars, subtrees, args.concurrency,
                                      env, args.timeout, args.retries, args.max_repetitions)
                rows[what].append(res)
                print(f"round {r + 1} {what:8s} {res['seconds']:6.2f}s "
                      f"{res['varbinds']:8.0f} varbinds "
                      f"{res['varbinds'] / res['seconds']:8.0f}/s cpu {res['cpu_s']:.1f}s")
            if args.tables:
                res = run_netsnmp(devices, community, scalars, TABLES, args.concurrency, env,
                                  args.timeout, args.retries, args.max_repetitions)
                rows["tables"].append(res)
                print(f"round {r + 1} tables   {res['seconds']:6.2f}s "
                      f"{res['varbinds']:8.0f} varbinds "
                      f"{res['varbinds'] / res['seconds']:8.0f}/s cpu {res['cpu_s']:.1f}s")
    finally:
        for d in daemons:
            d.stop()

    def med(what: str, key: str) -> float:
        return statistics.median(x[key] for x in rows[what])

    def rate(what: str) -> float:
        return statistics.median(x["varbinds"] / x["seconds"] for x in rows[what])

    drv_rate, ns_rate = rate("driver"), rate("netsnmp")
    print(f"driver:   median {med('driver', 'seconds'):.2f}s for {args.devices} devices, "
          f"{drv_rate:.0f} varbinds/s, {med('driver', 'requests'):.0f} requests, "
          f"{med('driver', 'received'):.0f} varbinds received, "
          f"cpu {med('driver', 'cpu_s'):.1f}s")
    print(f"net-snmp: median {med('netsnmp', 'seconds'):.2f}s, {ns_rate:.0f} varbinds/s, "
          f"{med('netsnmp', 'processes'):.0f} processes, cpu {med('netsnmp', 'cpu_s'):.1f}s")
    if rows["tables"]:
        print(f"net-snmp whole tables: median {med('tables', 'seconds'):.2f}s, "
              f"{rate('tables'):.0f} varbinds/s (ratio driver/tables "
              f"{drv_rate / rate('tables'):.2f})")
    print(f"RESULT devices={args.devices} seconds={med('driver', 'seconds'):.2f} "
          f"varbinds_per_s={drv_rate:.0f} netsnmp_varbinds_per_s={ns_rate:.0f} "
          f"ratio={drv_rate / ns_rate:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
