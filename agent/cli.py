"""``spbe-agent``: run | once [--dry-run] | check | backup-report | spool list/requeue."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from agent.collectors.probes import run_probes
from agent.config import AgentConfig, load
from agent.httpclient import HttpError
from agent.shipper import make_client
from contract.configfile import ConfigError

DEFAULT_CONFIG = Path("/etc/spbe-agent/agent.yaml")


def _config_path(arg: str | None) -> Path:
    return Path(arg or os.environ.get("SPBE_AGENT_CONFIG") or DEFAULT_CONFIG)


def cmd_once(cfg: AgentConfig, dry_run: bool) -> int:
    from agent.runner import Agent, build_report

    agent = Agent(cfg, with_spool=not dry_run)
    observations = asyncio.run(agent.collect_all())
    if dry_run:
        print(build_report(cfg, observations).model_dump_json(indent=2, exclude_none=True))
        return 0
    reports = agent.enqueue(observations)
    assert agent.shipper is not None
    shipped, error = agent.shipper.drain_once()
    agent.shipper.close()
    ids = ", ".join(str(r.report_id) for r in reports) or "-"
    print(f"report {ids} spooled; shipped {shipped}"
          + (f"; collector unreachable, kept in spool: {error}" if error else ""))
    return 0 if error is None else 1


def check_collector(cfg: AgentConfig) -> list[str]:
    try:
        token = cfg.collector.token()
    except ConfigError as e:
        return [str(e)]
    try:
        with make_client(cfg.collector, token) as client:
            resp = client.request("GET", "/api/v1/agent/whoami")
    except HttpError as e:
        return [f"collector {cfg.collector.url}: unreachable: {e}"]
    if resp.status == 401:
        return [f"collector {cfg.collector.url}: refused the agent token (401)"]
    if resp.status != 200:
        return [f"collector {cfg.collector.url}: HTTP {resp.status}"]
    try:
        who = resp.json()
    except ValueError:
        who = None
    if not isinstance(who, dict):
        return [f"collector {cfg.collector.url}: /api/v1/agent/whoami did not answer JSON "
                f"(is the URL the collector's?)"]
    problems = []
    if who.get("agent_id") != cfg.agent_id:
        problems.append(f"collector: the token belongs to agent {who.get('agent_id')!r}, "
                        f"config says agent_id {cfg.agent_id!r}")
    if who.get("pd_code") != cfg.pd_code:
        problems.append(f"collector: the token is bound to PD {who.get('pd_code')!r}, "
                        f"config says pd_code {cfg.pd_code!r}")
    return problems


def cmd_spool(cfg: AgentConfig, sub: str, report_ids: list[str]) -> int:
    from agent.runner import open_spool

    spool = open_spool(cfg)
    try:
        if sub == "requeue":
            n = spool.requeue(report_ids or None)
            print(f"{n} report(s) back in the spool; the running agent ships them")
            return 0 if n or not report_ids else 1
        st = spool.stats()
        print(f"pending {st.pending} report(s), {st.pending_bytes} bytes; dropped by the "
              f"bounds {st.dropped_total}; set aside {st.rejected_total} in all")
        for r in spool.rejected():
            when = datetime.fromtimestamp(float(r["rejected_at"]), UTC)  # type: ignore[arg-type]
            print(f"set aside {r['report_id']} at {when:%Y-%m-%dT%H:%M:%SZ} "
                  f"(HTTP {r['status']}, {r['bytes']} bytes): {r['reason']}")
        return 0
    finally:
        spool.close()


def check_spool(path: Path) -> str | None:
    """Whether the agent can keep its spool at ``path`` (without creating anything)."""
    if path.exists():
        if not path.is_file():
            return f"spool {path}: exists and is not a file"
        return None if os.access(path, os.R_OK | os.W_OK) else f"spool {path}: not writable"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent   # the agent creates missing directories below this one
    if not parent.is_dir():
        return f"spool {path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"spool {path}: directory {parent} is not writable"
    return None


def cmd_check(cfg: AgentConfig, path: Path) -> int:
    problems: list[str] = []
    print(f"OK   config {path}")
    for r in asyncio.run(run_probes(list(cfg.probes))):
        if r.up:
            extra = f" rtt {r.rtt_ms:.1f} ms" if r.rtt_ms is not None else ""
            if r.tls_days_left is not None:
                extra += f", TLS certificate expires in {r.tls_days_left:.0f} days"
            print(f"OK   probe {r.target} ({r.probe.value} {r.address}){extra}")
        else:
            problems.append(f"probe {r.target} ({r.probe.value} {r.address}): {r.error}")
    spool_problem = check_spool(cfg.spool.path)
    if spool_problem:
        problems.append(spool_problem)
    else:
        print(f"OK   spool {cfg.spool.path} writable")
    collector_problems = check_collector(cfg)
    if not collector_problems:
        print(f"OK   collector {cfg.collector.url} accepts this agent")
    problems += collector_problems
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spbe-agent", description=__doc__)
    ap.add_argument("-c", "--config", help=f"config file (default: $SPBE_AGENT_CONFIG or "
                                           f"{DEFAULT_CONFIG})")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run as a service")
    once = sub.add_parser("once", help="collect once and ship (or print with --dry-run)")
    once.add_argument("--dry-run", action="store_true", help="print the report, send nothing")
    sub.add_parser("check", help="validate config, test every target and the collector")
    rep = sub.add_parser("backup-report", help="record the result of a backup run "
                                               "(for backup jobs of type reported)")
    rep.add_argument("--job", required=True, help="backup job name in the config")
    rep.add_argument("--status", required=True, choices=["success", "failure"])
    rep.add_argument("--size", type=int, help="size of the backup in bytes")
    rep.add_argument("--duration", type=float, help="duration of the run in seconds")
    rep.add_argument("--destination", help="host/address the backup was written to")
    rep.add_argument("--replica", help="host/address of the DRC copy written by this run")
    rep.add_argument("--checksum", help="SHA-256 of the backup")
    rep.add_argument("--message", help="free text, e.g. why the run failed")
    sp = sub.add_parser("spool", help="what waits in the spool, what was set aside"
                        ).add_subparsers(dest="sub", required=True)
    sp.add_parser("list", help="pending count and the reports set aside, with the reason")
    rq = sp.add_parser("requeue", help="send reports that were set aside again")
    rq.add_argument("report_ids", nargs="*", help="report ids (default: all set aside)")
    args = ap.parse_args(argv)
    path = _config_path(args.config)
    try:
        cfg = load(path)
    except ConfigError as e:
        print(f"FAIL config: {e}" if args.cmd == "check" else f"config error: {e}",
              file=sys.stderr if args.cmd != "check" else sys.stdout)
        return 2
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.cmd == "run":
            from agent.runner import Agent

            Agent(cfg).run()
            return 0
        if args.cmd == "backup-report":
            from agent.backup_checks.reported import ReportArgs, cmd_backup_report

            return cmd_backup_report(cfg, ReportArgs(
                job=args.job, status=args.status, size=args.size, duration=args.duration,
                destination=args.destination, replica=args.replica, checksum=args.checksum,
                message=args.message))
        if args.cmd == "once":
            return cmd_once(cfg, args.dry_run)
        if args.cmd == "spool":
            return cmd_spool(cfg, args.sub, args.report_ids if args.sub == "requeue" else [])
        return cmd_check(cfg, path)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
