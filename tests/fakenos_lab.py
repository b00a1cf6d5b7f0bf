"""FakeNOS network-OS emulators for the test network (tests/netlab.py).

One runner process serves any number of emulated devices. Each device listens on its own
address (normally its management address inside its network namespace, port 22): the runner
enters the namespace with ``setns(2)`` only for the moment it creates the listening socket,
so one Python process (one FakeNOS import, ~0.5 s of CPU) serves the whole lab.

The runner is started by netlab as ``python tests/fakenos_lab.py CONFIG.json``; it prints
``READY`` once every device listens. On stdin it takes ``stop NAME`` (stop serving one
device, e.g. before its namespace is deleted); it exits on stdin EOF and on SIGTERM.
``CONFIG.json``::

    {"hosts": [{"name": "dinkes-rtr", "platform": "huawei_vrp", "netns": "/run/netns/...",
                "address": "10.254.1.21", "port": 22, "username": "netops",
                "password_file": "/tmp/spbe-netlab/<lab>/secrets/device-password"}]}

Passwords are read from files, never passed on the command line. What a FakeNOS device
answers is canned per platform (``show version``, ``display version``, ...); only the prompt
(``<name>>``) is per device. Live data (interfaces, LLDP, ARP, routes) comes from SNMP.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "FAKENOS_PLATFORMS",
    "FakeNosHost",
    "netns_entered",
    "read_config",
    "write_config",
]

#: FakeNOS platforms the lab offers (FakeNOS ships more; these are the ones the project uses).
FAKENOS_PLATFORMS: frozenset[str] = frozenset(
    {
        "cisco_ios",
        "cisco_nxos",
        "cisco_xr",
        "arista_eos",
        "huawei_vrp",
        "juniper_junos",
        "mikrotik_routeros",
        "hp_comware",
        "fortinet",
    }
)

_CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class FakeNosHost:
    """One emulated device: where it listens and how to log in."""

    name: str
    platform: str
    netns: str  # path of the network namespace to listen in, "" = the runner's own
    address: str
    port: int
    username: str
    password_file: str


def write_config(path: Path, hosts: list[FakeNosHost]) -> None:
    """Write a runner config file (mode 0600)."""
    data = {"hosts": [asdict(h) for h in hosts]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)


def read_config(path: Path) -> list[FakeNosHost]:
    """Read a runner config file; raise ValueError naming what is wrong."""
    try:
        data: Any = json.loads(path.read_text())
        hosts = [FakeNosHost(**h) for h in data["hosts"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"bad FakeNOS runner config {path}: {e}") from e
    for h in hosts:
        if h.platform not in FAKENOS_PLATFORMS:
            raise ValueError(f"{h.name}: unknown FakeNOS platform {h.platform!r}")
    return hosts


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@contextmanager
def netns_entered(netns_path: str) -> Iterator[None]:
    """Move the calling thread into a network namespace, and back on exit.

    Sockets created inside stay in that namespace; so do child processes forked inside
    (their mount namespace, and so /sys, stays the caller's).
    """
    if not netns_path:
        yield
        return
    libc = _libc()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(netns_path, os.O_RDONLY)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({netns_path}): {os.strerror(err)}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            if libc.setns(own, _CLONE_NEWNET) != 0:  # pragma: no cover - cannot happen as root
                err = ctypes.get_errno()
                raise OSError(err, f"setns back to own namespace: {os.strerror(err)}")
    finally:
        os.close(own)


# RouterOS reads terminal options appended to the login name ("admin+ct511w4098h", which
# netmiko sends); FakeNOS compares names exactly. Devices of these platforms get a marker
# banner, and the patched check strips the options for them only.
_LOGIN_OPTIONS_BANNER = "MikroTik RouterOS (FakeNOS)"
_LOGIN_OPTIONS_PLATFORMS = frozenset({"mikrotik_routeros"})
# FakeNOS prompts are "<base_prompt>>"; platforms whose real prompt differs in a way that
# clients (netmiko) check get the real shape here. Default base prompt: the device name.
_BASE_PROMPTS = {"mikrotik_routeros": "[{username}@{name}] "}


def _patch_login_options() -> None:
    from fakenos.plugins.servers import ssh_server_paramiko as srv  # type: ignore[import-untyped]

    iface = srv.ParamikoSshServerInterface
    original = iface.check_auth_password

    def check_auth_password(self: Any, username: str, password: str) -> Any:
        if self.ssh_banner == _LOGIN_OPTIONS_BANNER and "+" in username:
            username = username.split("+", 1)[0]
        return original(self, username, password)

    iface.check_auth_password = check_auth_password


def _run(config: Path) -> int:
    from fakenos import FakeNOS  # type: ignore[import-untyped]  # no type hints upstream

    _patch_login_options()
    hosts = read_config(config)
    nets: dict[str, Any] = {}  # one FakeNOS per device: FakeNOS refuses a port used twice
    for h in hosts:
        password = Path(h.password_file).read_text().strip()
        banner = ({"ssh_banner": _LOGIN_OPTIONS_BANNER}
                  if h.platform in _LOGIN_OPTIONS_PLATFORMS else {})
        prompt = _BASE_PROMPTS.get(h.platform, "{name}").format(name=h.name, username=h.username)
        nets[h.name] = FakeNOS(inventory={"hosts": {h.name: {
            "username": h.username,
            "password": password,
            "port": h.port,
            "platform": h.platform,
            "server": {
                "plugin": "ParamikoSshServer",
                "configuration": {"address": h.address, "timeout": 1, **banner},
            },
            "shell": {"plugin": "CMDShell", "configuration": {"base_prompt": prompt}},
        }}})
    # SIGTERM/SIGINT: exit at once (stopping each server cleanly takes ~2 s per device)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    for h in hosts:
        with netns_entered(h.netns):
            nets[h.name].start()
    print("READY " + " ".join(f"{h.name}={h.address}:{h.port}" for h in hosts), flush=True)
    # control on stdin: "stop NAME" stops serving one device; EOF (parent gone) ends all
    serving = {h.name for h in hosts}
    for line in sys.stdin:
        cmd, _, name = line.strip().partition(" ")
        if cmd == "stop" and name in serving:
            nets[name].stop()
            serving.discard(name)
            print(f"STOPPED {name}", flush=True)
        elif cmd:
            print(f"ignored: {line.strip()!r}", flush=True)
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: fakenos_lab.py CONFIG.json", file=sys.stderr)
        return 2
    try:
        return _run(Path(args[0]))
    except (OSError, ValueError) as e:
        print(f"fakenos_lab: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
