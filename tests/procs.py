"""Real collector and agent processes for integration tests.

The collector runs as ``python -m collector.cli serve`` under uvicorn on a loopback port with a
TLS certificate from a test CA (trustme); the agent runs as ``python -m agent.cli`` and ships to
it over real HTTPS. Admin actions go through the real CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import trustme
import yaml

from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent


class TestCA:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost."""

    __test__ = False

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = workdir / "ca.pem"
        self.cert_file = workdir / "server.pem"
        self.key_file = workdir / "server.key"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        cert.cert_chain_pems[0].write_to_path(str(self.cert_file))
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(str(self.cert_file), append=True)
        cert.private_key_pem.write_to_path(str(self.key_file))

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SPBE_AGENT_", "SPBE_COLLECTOR_"))}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra or {})
    return env


class Collector:
    """A real ``spbe-collector serve`` process (restartable on the same port and database)."""

    def __init__(self, workdir: Path, ca: TestCA, influx_url: str, *,
                 database_url: str | None = None, influx_db: str = "spbe",
                 extra: dict[str, Any] | None = None) -> None:
        self.workdir, self.ca = workdir, ca
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.config = workdir / "collector.yaml"
        cfg: dict[str, Any] = {
            "database_url": database_url or f"sqlite:///{workdir / 'state.sqlite'}",
            "listen": {"host": "127.0.0.1", "port": self.port,
                       "tls_cert_file": str(ca.cert_file), "tls_key_file": str(ca.key_file)},
            "influxdb": {"url": influx_url, "database": influx_db, "flush_interval_s": 0.2,
                         "backoff_max_s": 1.0, "timeout_s": 5},
            "log_level": "INFO",
        }
        for k, v in (extra or {}).items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k].update(v)
            else:
                cfg[k] = v
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = workdir / "collector.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "collector.cli", "-c", str(self.config),
                              *args], env=_env(), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError(f"spbe-collector {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def add_pd(self, code: str, name: str | None = None) -> None:
        self.cli("pd", "add", code, name or f"Dinas {code}")

    def add_agent(self, agent_id: str, pd: str) -> str:
        return self.cli("agent", "add", agent_id, "--pd", pd)

    def add_key(self, name: str, role: str, pd: str | None = None) -> str:
        return self.cli("apikey", "add", name, "--role", role, *(["--pd", pd] if pd else []))

    def start(self) -> Collector:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "-c",
                                      str(self.config), "serve"], env=_env(), stdout=logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                r = httpx.get(f"{self.url}/api/v1/health", verify=self.ca.ssl_context(),
                              timeout=2)
                if r.status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"collector not ready in 30 s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def client(self, api_key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": api_key} if api_key else {}
        return httpx.Client(base_url=self.url, verify=self.ca.ssl_context(), headers=headers,
                            timeout=15)

    def get(self, path: str, api_key: str, **params: Any) -> Any:
        with self.client(api_key) as c:
            r = c.get(path, params=params)
        r.raise_for_status()
        return r.json()


class Agent:
    """A real agent: config file, token file, spool, and ``spbe-agent`` subprocesses."""

    def __init__(self, workdir: Path, collector: Collector, agent_id: str, pd: str, token: str,
                 **overrides: Any) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        token_file = workdir / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        self.spool = workdir / "spool.sqlite"
        cfg: dict[str, Any] = {
            "agent_id": agent_id, "pd_code": pd,
            "collector": {"url": collector.url, "token_file": str(token_file),
                          "ca_bundle": str(collector.ca.ca_file), "timeout_s": 5},
            "spool": {"path": str(self.spool)},
            "shipping": {"backoff_initial_s": 0.2, "backoff_max_s": 1.0, "idle_poll_s": 0.2},
            "probes": [],
            "log_level": "INFO",
        }
        cfg.update(overrides)
        self.config = workdir / "agent.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = workdir / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def run_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agent.cli", "-c", str(self.config), *args],
                              env=_env(), capture_output=True, text=True, timeout=timeout)

    def start(self) -> Agent:
        logf = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "-c", str(self.config),
                                      "run"], env=_env(), stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        logf.close()
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def spooled_ids(self) -> list[str]:
        """Report IDs the agent logged as spooled (its own record of what it produced)."""
        ids = []
        for line in self.log.read_text(errors="replace").splitlines():
            if "spooled report" in line:
                ids.append(line.split("spooled report", 1)[1].split()[0])
        return ids

    def pending(self) -> int:
        import sqlite3

        if not self.spool.exists():
            return 0
        with contextlib.closing(sqlite3.connect(str(self.spool), timeout=30)) as db:
            try:
                return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):   # the agent has just created the file
                    return 0
                raise


def ledger(collector: Collector) -> list[dict[str, Any]]:
    """The collector's report ledger, straight from its state database."""
    import sqlalchemy as sa

    cfg = yaml.safe_load(collector.config.read_text())
    engine = sa.create_engine(cfg["database_url"])
    try:
        with engine.connect() as c:
            rows = c.execute(sa.text("SELECT report_id, points FROM reports")).all()
    finally:
        engine.dispose()
    return [{"report_id": r[0], "points": r[1]} for r in rows]


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
