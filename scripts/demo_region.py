"""Register the simulated region of the demo lab with the collector and write one agent
config per PD (used by scripts/demo.sh; the lab itself is tests/netlab.py).

    python scripts/demo_region.py LAB_STATE.json DEMO_DIR COLLECTOR_URL CA_FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from collector.config import load
from collector.db import make_engine, migrate
from collector.store import Store, StoreError

PD_NAMES = {
    "DISKOMINFO": "Dinas Komunikasi dan Informatika",
    "DINKES": "Dinas Kesehatan",
    "DISDIK": "Dinas Pendidikan",
    "BAPPEDA": "Badan Perencanaan Pembangunan Daerah",
}


def main() -> int:
    state_file, demo_dir, url, ca = sys.argv[1:5]
    lab = json.loads(Path(state_file).read_text())
    root = Path(demo_dir)
    cfg = load(None)  # the demo passes everything through SPBE_COLLECTOR_* variables
    engine = make_engine(cfg.database_url)
    migrate(engine)
    store = Store(engine)
    snmp = lab["snmp"]
    dc_core = lab["devices"]["dc-core"]["mgmt_ip"]
    pds = sorted({d["pd"] for d in lab["devices"].values()})
    for pd in pds:
        agent_id = f"{pd.lower()}-office"
        token_file = root / f"agent-{pd.lower()}.token"
        with contextlib.suppress(StoreError):
            store.add_pd(pd, PD_NAMES.get(pd, pd))
        if not token_file.exists():
            token_file.write_text(store.add_agent(agent_id, pd))
            token_file.chmod(0o600)
        devices = [{"name": name, "host": d["mgmt_ip"], "platform": "snmp",
                    "snmp": {"version": "2c", "port": snmp["port"],
                             "community": {"file": snmp["community_file"]}}}
                   for name, d in sorted(lab["devices"].items())
                   if d["pd"] == pd and d["role"] != "server"]
        agent_cfg = {
            "agent_id": agent_id, "pd_code": pd, "server_mode": pd == "DISKOMINFO",
            "collector": {"url": url, "token_file": str(token_file), "ca_bundle": ca},
            "spool": {"path": str(root / f"spool-{pd.lower()}.sqlite")},
            "intervals": {"heartbeat_s": 15, "probes_s": 15, "host_facts_s": 120,
                          "devices_s": 30, "config_backup_s": 3600},
            "probes": [{"name": "pusat-data-core", "type": "icmp", "host": dc_core, "count": 2}],
            "devices": devices,
        }
        (root / f"agent-{pd.lower()}.yaml").write_text(yaml.safe_dump(agent_cfg,
                                                                      sort_keys=False))
        print(root / f"agent-{pd.lower()}.yaml")
    store.close()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
