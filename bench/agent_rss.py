"""Agent memory benchmark: steady RSS of an agent process polling 50 SNMP devices.

Starts real net-snmp snmpd processes on 127.0.0.1 (``--devices`` agents spread over
``--snmpd`` processes), writes an agent config with those devices (v2c, community in a file)
and runs a separate agent process: the real :class:`agent.runner.Agent` with every built-in
collector and its spool, collecting and spooling ``--cycles`` times back to back (the
collector URL is unreachable, so nothing is shipped; the spool keeps the reports). The
agent prints its RSS (VmRSS) after every cycle; the steady RSS is the median of the last
three cycles.

    .venv/bin/python bench/agent_rss.py [--devices 50] [--cycles 8]

Last line: ``RESULT devices=50 rss_mb=...``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(config: Path, cycles: int) -> int:
    from agent.config import load
    from agent.memory import release_freed_memory
    from agent.runner import Agent
    from contract.report import DeviceObservation, PollStatus

    cfg = load(config)
    agent = Agent(cfg, with_spool=True)
    print(f"RSS cycle=0 mb={rss_mb():.1f} (after start)", flush=True)
    for i in range(1, cycles + 1):
        t0 = time.monotonic()
        obs = asyncio.run(agent.collect_all())
        agent.enqueue(obs)
        devices = [o for o in obs if isinstance(o, DeviceObservation)]
        ok = sum(o.status is PollStatus.OK for o in devices)
        bad = next((o for o in devices if o.status is not PollStatus.OK), None)
        n_obs, n_dev = len(obs), len(devices)
        del obs, devices
        release_freed_memory()   # what Agent.run_job does after each report
        print(f"RSS cycle={i} mb={rss_mb():.1f} devices_ok={ok}/{n_dev} "
              f"observations={n_obs} took={time.monotonic() - t0:.1f}s", flush=True)
        if ok != len(cfg.devices):
            if bad is not None:
                print(f"device {bad.device}: {bad.status} {bad.error}", file=sys.stderr)
            return 1
    if agent.shipper:
        agent.shipper.close()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--snmpd", type=int, default=5)
    ap.add_argument("--cycles", type=int, default=8)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.cycles)

    from tests.snmpd import Snmpd, free_udp_ports

    work = Path(tempfile.mkdtemp(prefix="spbe-bench-rss-"))
    ports = free_udp_ports(args.devices)
    per = -(-args.devices // args.snmpd)
    daemons = []
    try:
        for i in range(args.snmpd):
            chunk = ports[i * per:(i + 1) * per]
            if chunk:
                daemons.append(Snmpd(work / f"snmpd{i}", ports=chunk, sys_name=f"rss{i}",
                                     community="bench-community").start())
        token = work / "token"
        token.write_text("unused-token\n")
        cfg = {
            "agent_id": "rss-bench", "pd_code": "BENCH",
            "collector": {"url": "https://127.0.0.1:9/", "token_file": str(token)},
            "spool": {"path": str(work / "spool.sqlite")},
            "devices": [
                {"name": f"dev{p}", "host": "127.0.0.1", "platform": "snmp",
                 "snmp": {"version": "2c", "port": p,
                          "community": {"file": str(d.community_file)}}}
                for d in daemons for p in d.ports],
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPBE_AGENT_")}
        steady: dict[str, float] = {}
        for label, devices in (("no devices", []), (f"{args.devices} devices",
                                                    cfg["devices"])):
            config = work / "agent.yaml"
            config.write_text(yaml.safe_dump({**cfg, "devices": devices}))
            (work / "spool.sqlite").unlink(missing_ok=True)
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child",
                                   str(config), "--cycles", str(args.cycles)],
                                  env=env, capture_output=True, text=True, timeout=1800)
            print(f"--- agent with {label}")
            print(proc.stdout, end="")
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            rss = [float(line.split("mb=")[1].split()[0]) for line in proc.stdout.splitlines()
                   if line.startswith("RSS cycle=") and not line.startswith("RSS cycle=0 ")]
            steady[label] = statistics.median(rss[-3:])
            print(f"peak {max(rss):.1f} MB; steady (median of the last 3 cycles) "
                  f"{steady[label]:.1f} MB")
    finally:
        for d in daemons:
            d.stop()
    with_devices = steady[f"{args.devices} devices"]
    print(f"devices add {with_devices - steady['no devices']:.1f} MB to the agent's "
          f"{steady['no devices']:.1f} MB")
    print(f"RESULT devices={args.devices} rss_mb={with_devices:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
