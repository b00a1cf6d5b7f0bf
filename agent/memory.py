"""Give freed heap back to the operating system after each report.

A collection cycle builds large short-lived structures (SNMP responses, observations, the
report's JSON and gzip). CPython frees them, but glibc keeps the freed pages in its heap, so
the agent's RSS would stay at its highest point. ``malloc_trim(0)`` returns those pages; it
costs a few milliseconds once per report. Not glibc (musl, other systems): a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_trim: Callable[[int], int] | None = None
_loaded = False


def _load() -> Callable[[int], int] | None:
    global _trim, _loaded
    if not _loaded:
        _loaded = True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            fn = libc.malloc_trim
            fn.argtypes = [ctypes.c_size_t]
            fn.restype = ctypes.c_int
            _trim = fn
        except (OSError, AttributeError):
            log.debug("malloc_trim not available; freed heap stays with the process")
            _trim = None
    return _trim


def release_freed_memory() -> bool:
    """Return free heap pages to the OS; True if anything was released."""
    trim = _load()
    return bool(trim(0)) if trim is not None else False
