"""Backup destinations: the host named by a repository location, and its IP addresses.

Names are resolved with ``getaddrinfo`` in a daemon thread that is waited on for a bounded
time, so a dead resolver never hangs a collection.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from urllib.parse import urlsplit

RESOLVE_TIMEOUT_S = 3.0
_SCP_LIKE = re.compile(r"^(?:[^@/\s]+@)?(\[[^\]]+\]|[^:/\s\[\]]+):")
_NO_HOST_BACKENDS = ("local", "b2", "azure", "gs", "swift", "rclone")


def host_from_location(location: str | None) -> str | None:
    """The server host of a restic/borg repository location; None for local paths and for
    cloud backends without a host in the location.

    >>> host_from_location("sftp:backup@10.10.5.20:/srv/restic/dinkes")
    '10.10.5.20'
    >>> host_from_location("rest:https://backup.pusatdata.local:8000/dinkes/")
    'backup.pusatdata.local'
    >>> host_from_location("ssh://borg@[fd00::5]:2222/./dinkes") is None
    False
    >>> host_from_location("/srv/backup/repo") is None
    True
    """
    if not location:
        return None
    s = location.strip()
    if s.startswith(("/", ".", "~")):
        return None
    m = re.match(r"^(sftp|rest|s3|local|b2|azure|gs|swift|rclone):(.*)$", s)
    if m:
        backend, rest = m.groups()
        if backend in _NO_HOST_BACKENDS:
            return None
        if backend == "sftp" and rest.startswith("//"):
            return _url_host("sftp:" + rest)
        if backend in ("rest", "s3") and "://" in rest:
            return _url_host(rest)
        if backend == "s3":  # s3:host[:port]/bucket
            return rest.split("/", 1)[0].rsplit(":", 1)[0] or None
        s = rest
    if "://" in s:
        return _url_host(s)
    m2 = _SCP_LIKE.match(s)
    if m2:
        return m2.group(1).strip("[]") or None
    return None


def _url_host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


def resolve(host: str, timeout: float = RESOLVE_TIMEOUT_S) -> tuple[list[str], str | None]:
    """(addresses, error). An IP literal is returned as is; a name is looked up with a
    bounded wait. IPv4 addresses first, each address once."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))], None
    except ValueError:
        pass
    box: dict[str, object] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as e:
            box["error"] = e

    t = threading.Thread(target=lookup, name=f"resolve-{host[:40]}", daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return [], f"cannot resolve {host}: no answer within {timeout:g} s"
    err = box.get("error")
    if err is not None:
        detail = getattr(err, "strerror", None) or str(err) or type(err).__name__
        return [], f"cannot resolve {host}: {detail}"
    infos = box.get("infos")
    addrs: list[str] = []
    for info in infos if isinstance(infos, list) else []:
        addr = str(info[4][0]).split("%", 1)[0]
        if addr not in addrs:
            addrs.append(addr)
    addrs.sort(key=lambda a: ipaddress.ip_address(a).version)
    return addrs[:64], None
