"""Running restic/borg: no shell, a clean environment, a timeout, secrets kept out of errors.

The child gets the agent's environment minus every ``RESTIC_*``/``BORG_*`` variable (so only
what the job configures reaches the tool), plus the job's variables. It runs in its own
session; on timeout the whole process group is terminated (SIGTERM, then SIGKILL), and
children still running when the agent exits are stopped the same way, so restic/borg get the
chance to remove their repository locks.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent.backup_checks.base import ToolMissing, ToolTimeout

_DROP_PREFIXES = ("RESTIC_", "BORG_")
_URL_PASSWORD = re.compile(r"(://[^/@\s:]*):[^/@\s]*@")
MAX_STREAM = 64 * 1024 * 1024  # restic snapshot lists of big repositories are a few MB

_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class ToolOutput:
    returncode: int
    stdout: str
    stderr: str


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}
    env["LC_ALL"] = "C.UTF-8"  # messages in English, whatever the host locale
    env.update(extra)
    return env


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove secret values and URL passwords from text that may end up in a report."""
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(s, "***")
    return _URL_PASSWORD.sub(r"\1:***@", text)


def summarize(text: str, secrets: Iterable[str], limit: int = 600) -> str:
    """The meaningful end of a tool's stderr, on one line, scrubbed and truncated."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("[")]  # restic progress bars
    out = scrub(" | ".join(lines), secrets)
    return out if len(out) <= limit else "…" + out[-(limit - 1):]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


@atexit.register
def _stop_all() -> None:
    with _running_lock:
        procs = list(_running)
    for p in procs:
        _stop(p)


def run_tool(argv: Sequence[str], *, env: Mapping[str, str], timeout: float,
             secrets: Iterable[str], package: str) -> ToolOutput:
    """Run ``argv`` (``argv[0]`` looked up on the child's PATH) and return its output.

    Raises :class:`ToolMissing` when the program is not there and :class:`ToolTimeout`
    when it does not finish in time; a non-zero exit is returned, not raised.
    """
    secrets = list(secrets)
    name = argv[0]
    exe = shutil.which(name, path=env.get("PATH", os.defpath))
    if exe is None:
        raise ToolMissing(f"{name} not found on PATH (install the Debian package {package})")
    try:
        proc = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env),
                                start_new_session=True, close_fds=True)
    except OSError as e:
        raise ToolMissing(f"cannot run {name}: {e.strerror or type(e).__name__}") from e
    with _running_lock:
        _running.add(proc)
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as e:
            _stop(proc)
            with contextlib.suppress(subprocess.TimeoutExpired, OSError, ValueError):
                proc.communicate(timeout=5)
            raise ToolTimeout(f"{os.path.basename(name)} {_verb(argv)} did not finish within "
                              f"{timeout:g} s") from e
    finally:
        with _running_lock:
            _running.discard(proc)
    return ToolOutput(proc.returncode, out[:MAX_STREAM].decode("utf-8", "replace"),
                      err[-MAX_STREAM:].decode("utf-8", "replace"))


def _verb(argv: Sequence[str]) -> str:
    return next((a for a in argv[1:] if not a.startswith("-")), "")
