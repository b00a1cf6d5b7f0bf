"""``spbe-collector``: serve | migrate | pd add/list | agent add/list/revoke/rotate |
apikey add/list/revoke."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig, load
from collector.db import make_engine, migrate
from collector.store import AUTH_CACHE_S, Role, Store, StoreError
from contract.configfile import ConfigError


def _store(cfg: CollectorConfig) -> Store:
    engine = make_engine(cfg.database_url)
    migrate(engine)
    return Store(engine)


def serve(cfg: CollectorConfig) -> None:
    import uvicorn

    from collector.app import create_app

    ssl = {}
    if cfg.listen.tls_cert_file and cfg.listen.tls_key_file:
        ssl = {"ssl_certfile": str(cfg.listen.tls_cert_file),
               "ssl_keyfile": str(cfg.listen.tls_key_file)}
    uvicorn.run(create_app(cfg), host=cfg.listen.host, port=cfg.listen.port,
                log_level=cfg.log_level.lower(), access_log=False, proxy_headers=False,
                timeout_graceful_shutdown=10, limit_concurrency=1000, timeout_keep_alive=30, **ssl)  # type: ignore[arg-type]


def _table(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> None:
    def fmt(v: Any) -> str:
        if isinstance(v, float):   # epoch seconds
            return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(cols)]
    for row in [list(cols), *cells]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spbe-collector", description=__doc__)
    ap.add_argument("-c", "--config", help="config file (default: $SPBE_COLLECTOR_CONFIG, "
                                           "else embedded defaults)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve", help="run the collector and dashboard API")
    sub.add_parser("migrate", help="create or upgrade the state database schema")
    pd = sub.add_parser("pd", help="manage Perangkat Daerah").add_subparsers(dest="sub",
                                                                           required=True)
    pd_add = pd.add_parser("add")
    pd_add.add_argument("code")
    pd_add.add_argument("name")
    pd.add_parser("list")
    ag = sub.add_parser("agent", help="manage agents").add_subparsers(dest="sub", required=True)
    ag_add = ag.add_parser("add", help="register an agent; prints its token once")
    ag_add.add_argument("agent_id")
    ag_add.add_argument("--pd", required=True, help="the PD code the agent is bound to")
    ag.add_parser("list", help="agents, their PD, last seen, revoked")
    ag.add_parser("revoke", help="the agent's token stops working (its data stays)"
                  ).add_argument("agent_id")
    ag.add_parser("rotate", help="a new token for the agent (printed once); the old one "
                                 "stops working").add_argument("agent_id")
    ak = sub.add_parser("apikey", help="manage API keys").add_subparsers(dest="sub",
                                                                        required=True)
    ak_add = ak.add_parser("add", help="create an API key; prints it once")
    ak_add.add_argument("name")
    ak_add.add_argument("--role", required=True, choices=[r.value for r in Role])
    ak_add.add_argument("--pd", help="PD code (pd-viewer keys only)")
    ak.add_parser("list", help="API keys by name, role and PD (never the keys)")
    ak.add_parser("revoke", help="the key stops working at once").add_argument("name")
    args = ap.parse_args(argv)

    path = args.config or os.environ.get("SPBE_COLLECTOR_CONFIG")
    try:
        cfg = load(Path(path) if path else None)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "httpcore", "alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        if args.cmd == "serve":
            serve(cfg)
            return 0
        store = _store(cfg)
        if args.cmd == "migrate":
            print("schema is up to date")
        elif (args.cmd, args.sub) == ("pd", "add"):
            store.add_pd(args.code, args.name)
            print(f"PD {args.code} added")
        elif (args.cmd, args.sub) == ("pd", "list"):
            _table(store.list_pds(), ("code", "name"))
        elif (args.cmd, args.sub) == ("agent", "add"):
            print(store.add_agent(args.agent_id, args.pd))
        elif (args.cmd, args.sub) == ("agent", "list"):
            _table(store.list_agents(), ("agent_id", "pd", "revoked", "created_at",
                                         "last_seen_at", "agent_version"))
        elif (args.cmd, args.sub) == ("agent", "revoke"):
            store.revoke_agent(args.agent_id)
            print(f"agent {args.agent_id} revoked (its token is refused within "
                  f"{AUTH_CACHE_S:.0f} s)")
        elif (args.cmd, args.sub) == ("agent", "rotate"):
            print(store.rotate_agent_token(args.agent_id))
        elif (args.cmd, args.sub) == ("apikey", "add"):
            print(store.add_api_key(args.name, Role(args.role), args.pd))
        elif (args.cmd, args.sub) == ("apikey", "list"):
            _table(store.list_api_keys(), ("name", "role", "pd", "revoked", "created_at"))
        elif (args.cmd, args.sub) == ("apikey", "revoke"):
            store.revoke_api_key(args.name)
            print(f"API key {args.name} revoked")
        return 0
    except (StoreError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
