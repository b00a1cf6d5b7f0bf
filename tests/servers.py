"""Real servers for integration tests: InfluxDB 1.x, VictoriaMetrics, PostgreSQL.

Each server listens only on 127.0.0.1 on a free port chosen once per instance
(kept across stop()/start()) and keeps its data under a temp dir. Servers still
running at interpreter exit are stopped; ``setpriv --pdeathsig`` kills them if
the Python thread that started them dies. Binaries come from Debian packages:
run ``scripts/install-test-deps.sh`` first.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip as gzip_mod
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from glob import glob
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "InfluxD",
    "InfluxError",
    "Postgres",
    "ServerError",
    "VictoriaMetrics",
    "free_port",
    "http_request",
]

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server failed to start, become ready or answer."""


class InfluxError(ServerError):
    """InfluxDB answered a query or write with an error."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_request(
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """One HTTP request; return (status, body) for any status, raise on I/O errors."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


def _require(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise ServerError(f"{name} not found; run scripts/install-test-deps.sh")
    return path


_live: set[_Server] = set()  # started and not yet stopped
_private_dirs: set[Path] = set()  # made outside workdir; removed at exit


@atexit.register
def _close_all() -> None:
    for server in list(_live):
        server.stop()
    for path in list(_private_dirs):
        shutil.rmtree(path, ignore_errors=True)


class _Server:
    """A child process with a log file, readiness wait and graceful stop."""

    name = "server"
    stop_signal = signal.SIGTERM
    start_timeout = 30.0
    stop_timeout = 15.0
    _run_as: str | None = None  # system user to drop to when running as root
    _cwd: Path | None = None

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # --- to override -------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config / init data dirs before each start (must be idempotent)."""

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _after_ready(self) -> None:
        """One-time setup once the server answers (e.g. create roles)."""

    # --- public API --------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> Self:
        if self.running:
            return self
        self._prepare()
        # the server gets SIGKILL if the thread that started it dies
        wrapper = [_require("setpriv"), "--pdeathsig", "KILL"]
        if (user := self._run_as) and os.geteuid() == 0:
            wrapper += ["--reuid", user, "--regid", user, "--init-groups"]
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%T')} starting {self.name} ===\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*wrapper, "--", *self._command()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._cwd or self.workdir,
                start_new_session=True,  # terminal Ctrl-C goes to pytest only
            )
        _live.add(self)
        self._wait(self._is_ready, self.start_timeout, "become ready")
        self._after_ready()
        return self

    def stop(self) -> None:
        """Stop gracefully, then kill the process group; idempotent."""
        proc, self.proc = self.proc, None
        _live.discard(self)
        if proc is None or proc.poll() is not None:
            return
        try:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.send_signal(self.stop_signal)
                proc.wait(self.stop_timeout)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # hung server or leftovers
            proc.wait()

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and drop anything this object created outside workdir."""
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.url} {state} {self.workdir}>"

    # --- helpers -----------------------------------------------------------
    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                self._fail(f"exited with code {self.proc.returncode} before it could {what}")
            try:
                if check():
                    return
            except (OSError, ServerError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                self._fail(f"did not {what} within {timeout:.0f}s")
            time.sleep(0.05)

    def _fail(self, msg: str) -> None:
        raise ServerError(
            f"{self.name} on port {self.port} {msg}; log {self.log_path} ends with:\n"
            f"{self.log_tail()}"
        )

    def _http_ok(self, path: str, *codes: int) -> bool:
        status, _ = http_request(self.url + path, timeout=1.0)
        return status in (codes or (200,))


class InfluxD(_Server):
    """InfluxDB 1.x (Debian's ``influxd``) with auth disabled."""

    name = "influxd"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.rpc_port = free_port()
        self.config_path = self.workdir / "influxdb.conf"

    def _prepare(self) -> None:
        d = self.workdir
        self.config_path.write_text(
            f"""\
reporting-disabled = true
bind-address = "{LOOPBACK}:{self.rpc_port}"

[meta]
  dir = "{d / "meta"}"
  retention-autocreate = true
  logging-enabled = true

[data]
  dir = "{d / "data"}"
  wal-dir = "{d / "wal"}"
  index-version = "inmem"
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{LOOPBACK}:{self.port}"
  auth-enabled = false
  log-enabled = true
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false

[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true

[ifql]
  enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""
        )

    def _command(self) -> list[str]:
        return [_require("influxd"), "run", "-config", str(self.config_path)]

    def _is_ready(self) -> bool:
        return self.ping()

    def ping(self) -> bool:
        """True if /ping answers 204 (False when stopped or not answering)."""
        try:
            return self._http_ok("/ping", 204)
        except OSError:
            return False

    def query(self, q: str, db: str | None = None, *, epoch: str = "ns") -> dict[str, Any]:
        """Run InfluxQL (POST /query); return parsed JSON, raise InfluxError if any."""
        params = {"q": q, "epoch": epoch, **({"db": db} if db else {})}
        body = urllib.parse.urlencode(params).encode()
        status, raw = http_request(
            self.url + "/query",
            body,
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            result: dict[str, Any] = json.loads(raw or b"{}")
        except ValueError as e:
            raise InfluxError(f"{q!r}: HTTP {status}, not JSON: {raw[:500]!r}") from e
        errors = [result.get("error")] + [r.get("error") for r in result.get("results", [])]
        if status >= 300 or any(errors):
            raise InfluxError(f"{q!r}: HTTP {status}: {[e for e in errors if e] or raw[:500]!r}")
        return result

    def create_database(self, name: str) -> None:
        self.query(f"CREATE DATABASE {_influx_ident(name)}")

    def write(
        self,
        lines: str | list[str],
        db: str,
        *,
        precision: str = "ns",
        gzip: bool = False,
    ) -> None:
        """Write line protocol via POST /write; raise InfluxError unless 204."""
        body = ("\n".join(lines) if isinstance(lines, list) else lines).encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if gzip:
            body, headers["Content-Encoding"] = gzip_mod.compress(body), "gzip"
        qs = urllib.parse.urlencode({"db": db, "precision": precision})
        status, raw = http_request(f"{self.url}/write?{qs}", body, headers)
        if status != 204:
            raise InfluxError(f"write to {db}: HTTP {status}: {raw[:500]!r}")

    def points(self, measurement: str, db: str) -> list[dict[str, Any]]:
        """All points of a measurement, each a dict column (time/tag/field) -> value."""
        result = self.query(f"SELECT * FROM {_influx_ident(measurement)}", db)
        rows: list[dict[str, Any]] = []
        for series in result["results"][0].get("series", []):
            cols = series["columns"]
            rows += [dict(zip(cols, v, strict=True)) for v in series["values"]]
        return rows

    def count(self, measurement: str, db: str, field: str | None = None) -> int:
        """Number of points in a measurement (or non-null values of ``field``)."""
        if field is None:
            return len(self.points(measurement, db))
        q = f"SELECT COUNT({_influx_ident(field)}) FROM {_influx_ident(measurement)}"
        series = self.query(q, db)["results"][0].get("series", [])
        return sum(int(v[1]) for s in series for v in s["values"])


def _influx_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class VictoriaMetrics(_Server):
    """Single-node VictoriaMetrics (Debian's ``victoria-metrics``).

    Line protocol written to /write or /api/v2/write is stored as metric
    ``<measurement>_<field>`` with tags as labels (plus ``db`` when given).
    """

    name = "victoria-metrics"

    def _command(self) -> list[str]:
        return [
            _require("victoria-metrics"),
            f"-storageDataPath={self.workdir / 'data'}",
            f"-httpListenAddr={LOOPBACK}:{self.port}",
            "-retentionPeriod=100y",  # accept old timestamps used by tests
            "-search.latencyOffset=0s",  # query results include the newest samples
            "-search.disableCache",
            "-search.cacheTimestampOffset=0s",
            "-loggerLevel=INFO",
        ]

    def _is_ready(self) -> bool:
        return self._http_ok("/health")

    def flush(self) -> None:
        """Make just-ingested samples searchable (/internal/force_flush)."""
        status, raw = http_request(self.url + "/internal/force_flush")
        if status != 200:
            raise ServerError(f"force_flush: HTTP {status}: {raw[:300]!r}")

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        """Series matching a selector, as /api/v1/export JSON lines (after flush())."""
        self.flush()
        qs = urllib.parse.urlencode({"match[]": match, "start": "0", "end": "9999999999"})
        status, raw = http_request(f"{self.url}/api/v1/export?{qs}")
        if status != 200:
            raise ServerError(f"export {match!r}: HTTP {status}: {raw[:500]!r}")
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def series_values(self, metric: str) -> list[float]:
        """Values of every sample of ``metric`` (all label sets), oldest first."""
        samples = [
            (ts, float(v))
            for s in self.export(metric)
            for v, ts in zip(s["values"], s["timestamps"], strict=True)
        ]
        return [v for _, v in sorted(samples)]

    def count_samples(self, match: str) -> int:
        """Number of stored samples matching a series selector or metric name."""
        return sum(len(s["values"]) for s in self.export(match))


class Postgres(_Server):
    """PostgreSQL (Debian's /usr/lib/postgresql/<ver>) with db ``spbe``, role ``spbe``.

    When run as root the server runs as the ``postgres`` system user, and its
    data lives in a private /tmp dir it can reach (pytest's tmp dirs are 0700
    root); ``workdir/pgdata`` links to it and close() removes it.
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: don't wait for clients
    user = "spbe"
    password = "spbe-test"
    database = "spbe"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.bindir = _pg_bindir()
        self._run_as = "postgres" if os.geteuid() == 0 else None
        if self._run_as:
            self.root = Path(tempfile.mkdtemp(prefix="spbe-pg-"))
            _private_dirs.add(self.root)
            shutil.chown(self.root, self._run_as, self._run_as)
            link = self.workdir / "pgdata"
            link.unlink(missing_ok=True)
            link.symlink_to(self.root)
        else:
            self.root = self.workdir / "pgdata"
            self.root.mkdir(exist_ok=True)
        self._cwd = self.root
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"

    @property
    def sqlalchemy_url(self) -> str:
        return (
            f"postgresql+psycopg://{self.user}:{self.password}"
            f"@{LOOPBACK}:{self.port}/{self.database}"
        )

    @property
    def dsn(self) -> str:
        """libpq URL for psycopg.connect() and psql."""
        return self.sqlalchemy_url.replace("+psycopg", "")

    def _as_pg(self, cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self._run_as, "--"] if self._run_as else []
        return subprocess.run(
            prefix + cmd,
            input=stdin,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
        )

    def _prepare(self) -> None:
        if (self.datadir / "PG_VERSION").exists():
            return
        r = self._as_pg(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", "postgres",
                "-E", "UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-instructions",
            ]
        )  # fmt: skip
        if r.returncode:
            raise ServerError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        self.sockdir.mkdir()
        if self._run_as:
            shutil.chown(self.sockdir, self._run_as, self._run_as)
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '{LOOPBACK}'\n"
                f"unix_socket_directories = '{self.sockdir}'\n"
                "password_encryption = 'scram-sha-256'\n"
                "max_connections = 50\n"
                "shared_buffers = 32MB\n"
            )

    def _command(self) -> list[str]:
        pg = self.bindir / "postgres"
        return [str(pg), "-D", str(self.datadir), "-p", str(self.port)]

    def _where(self) -> list[str]:  # client args: unix socket dir and port
        return ["-h", str(self.sockdir), "-p", str(self.port)]

    def _is_ready(self) -> bool:
        cmd = [str(self.bindir / "pg_isready"), "-q", *self._where()]
        return subprocess.run(cmd, check=False).returncode == 0

    def _after_ready(self) -> None:
        marker = self.root / ".spbe-created"
        if marker.exists():
            return
        self.psql(
            f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}';"
            f"CREATE DATABASE {self.database} OWNER {self.user};",
            db="postgres",
        )
        marker.touch()

    def psql(self, sql: str, db: str | None = None) -> str:
        """Run SQL as superuser ``postgres`` via the unix socket; return its output."""
        r = self._as_pg(
            [
                str(self.bindir / "psql"),
                "-X", "-A", "-t", "-q",
                "-v", "ON_ERROR_STOP=1",
                *self._where(),
                "-U", "postgres",
                "-d", db or self.database,
            ],
            stdin=sql,
        )  # fmt: skip
        if r.returncode:
            raise ServerError(f"psql failed ({r.returncode}) for {sql!r}:\n{r.stderr}")
        return r.stdout

    def close(self) -> None:
        self.stop()
        if self._run_as:
            shutil.rmtree(self.root, ignore_errors=True)
            _private_dirs.discard(self.root)
            (self.workdir / "pgdata").unlink(missing_ok=True)


def _pg_bindir() -> Path:
    found = glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        raise ServerError("PostgreSQL not found; run scripts/install-test-deps.sh")
    newest = max(found, key=lambda p: int(Path(p).parts[-3].split(".")[0]))
    return Path(newest).parent
