"""Real net-snmp ``snmpd`` processes on 127.0.0.1 for SNMP tests and benchmarks.

Each :class:`Snmpd` is one snmpd with a private config, persistent dir and log under a work
directory, listening on one or more UDP ports of 127.0.0.1 (every port looks like a separate
device to a poller). v2c community and a v3 authPriv user (SHA/AES) come from files, as the
agent reads them. ``pass`` scripts can shadow subtrees to serve broken data.

``ensure_snmpd()`` installs net-snmp with ``scripts/install-netlab-deps.sh`` when missing.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "scripts" / "install-netlab-deps.sh"
SNMPD_BIN = "/usr/sbin/snmpd"


def ensure_snmpd() -> str:
    """Path of snmpd (installing net-snmp and its tools if needed)."""
    if not (Path(SNMPD_BIN).exists() and shutil.which("snmpbulkwalk")):
        r = subprocess.run(["bash", str(INSTALL)], cwd=REPO, capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0 or not Path(SNMPD_BIN).exists():
            raise RuntimeError(f"cannot install snmpd with {INSTALL}:\n{r.stdout}\n{r.stderr}")
    return SNMPD_BIN


def ensure_netlab_deps() -> None:
    """Everything tests/netlab.py needs (snmpd, lldpd, sshd, FakeNOS): the install script
    is idempotent and returns at once when all is present."""
    r = subprocess.run(["bash", str(INSTALL)], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{INSTALL} failed:\n{r.stdout}\n{r.stderr}")


def free_udp_ports(n: int) -> list[int]:
    """``n`` UDP ports of 127.0.0.1 that are free right now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(int(s.getsockname()[1]))
    finally:
        for s in socks:
            s.close()
    return ports


def tool_env(workdir: Path) -> dict[str, str]:
    """Environment for net-snmp tools: no MIB files, a private persistent dir."""
    persist = workdir / "client-persist"
    persist.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent",
            "SNMP_PERSISTENT_DIR": str(persist)}


class Snmpd:
    """One snmpd process; see the module docstring."""

    def __init__(self, workdir: Path, *, ports: Sequence[int] | None = None,
                 sys_name: str = "snmp-lab", location: str = "Ruang Server Lt.2",
                 contact: str = "noc@diskominfo.example.go.id", v3_user: str = "spbe-ro",
                 community: str | None = None, auth_key: str | None = None,
                 priv_key: str | None = None, extra_config: str = "") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.ports = list(ports) if ports else free_udp_ports(1)
        self.port = self.ports[0]
        self.sys_name, self.location, self.contact = sys_name, location, contact
        self.v3_user = v3_user
        self.community = community or f"c{secrets.token_hex(6)}"
        self.auth_key = auth_key or secrets.token_hex(10)
        self.priv_key = priv_key or secrets.token_hex(10)
        self.extra_config = extra_config
        sdir = workdir / "secrets"
        sdir.mkdir(mode=0o700, exist_ok=True)
        self.community_file = sdir / "community"
        self.auth_key_file = sdir / "auth-key"
        self.priv_key_file = sdir / "priv-key"
        for path, value in ((self.community_file, self.community),
                            (self.auth_key_file, self.auth_key),
                            (self.priv_key_file, self.priv_key)):
            path.write_text(value + "\n")
            path.chmod(0o600)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "snmpd.log"

    def config_text(self) -> str:
        return "\n".join([
            f"rocommunity {self.community} 127.0.0.1",
            f'createUser {self.v3_user} SHA "{self.auth_key}" AES "{self.priv_key}"',
            f"rouser {self.v3_user} priv",
            f"sysName {self.sys_name}",
            f"sysLocation {self.location}",
            f"sysContact {self.contact}",
            "dontLogTCPWrappersConnects yes",
            self.extra_config, ""])

    def start(self, timeout: float = 20.0) -> Snmpd:
        ensure_snmpd()
        conf = self.workdir / "snmpd.conf"
        conf.write_text(self.config_text())
        conf.chmod(0o600)
        persist = self.workdir / "persist"
        persist.mkdir(exist_ok=True)
        listen = ",".join(f"udp:127.0.0.1:{p}" for p in self.ports)
        env = {**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent",
               "SNMP_PERSISTENT_DIR": str(persist)}
        # -C: only our config; -I -smux: no SMUX port 199 (other snmpds run too)
        self.proc = subprocess.Popen(
            [SNMPD_BIN, "-f", "-C", "-c", str(conf), "-I", "-smux", "-Lf", str(self.log),
             "-p", str(self.workdir / "snmpd.pid"), listen],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"snmpd on {listen} did not start:\n{self.log_tail()}")

    def _answers(self) -> bool:
        r = subprocess.run(["snmpget", "-v2c", "-c", self.community, "-On", "-t", "0.3",
                            "-r", "0", f"127.0.0.1:{self.ports[-1]}", "1.3.6.1.2.1.1.5.0"],
                           env=tool_env(self.workdir), capture_output=True, text=True,
                           timeout=10, check=False)
        return r.returncode == 0 and self.sys_name in r.stdout

    def log_tail(self, n: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> Snmpd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
