"""Collector plugins: each one observes something and returns typed observations.

A collector is anything that satisfies :class:`Collector`. They are registered by name in one
explicit registry (:data:`REGISTRY`) that refuses duplicates and lists valid names on a miss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from agent.config import AgentConfig
from contract.report import (
    BackupStatus,
    ConfigSnapshot,
    DeviceObservation,
    Heartbeat,
    HostFacts,
    ProbeResult,
    ServerScan,
)

Obs = (Heartbeat | HostFacts | ProbeResult | DeviceObservation | ConfigSnapshot | BackupStatus
       | ServerScan)


class Collector(Protocol):
    name: str

    def interval_s(self) -> float:
        """How often the runner calls :meth:`collect`."""
        ...

    async def collect(self) -> list[Obs]:
        """Observe once. Must not raise for a failing target: failures are observations too."""
        ...


Factory = Callable[[AgentConfig, "AgentContext"], Collector]
REGISTRY: dict[str, Factory] = {}


class AgentContext(Protocol):
    """What collectors may read from the running agent (kept tiny on purpose)."""

    def uptime_s(self) -> float: ...
    def spool_counts(self) -> tuple[int, int, int]:
        """(pending, dropped_total, rejected_total)"""
        ...


def register(name: str) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        if name in REGISTRY:
            raise ValueError(f"collector {name!r} is registered twice")
        REGISTRY[name] = factory
        return factory
    return deco


def get(name: str) -> Factory:
    try:
        return REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown collector {name!r}; valid: {valid}") from None


def load_builtin() -> None:
    """Import the built-in collector modules so they register themselves."""
    from agent.collectors import (  # noqa: F401
        backups,
        devices,
        heartbeat,
        host_facts,
        probes,
        server_scan,
    )
