"""Device drivers: one file per platform, registered by platform name.

A driver polls one device and returns a :class:`contract.report.DeviceObservation`; drivers
that can read the running configuration also return a :class:`ConfigSnapshot`. Drivers are
blocking or async as their library is; the ``devices`` collector runs blocking ones in a
thread pool with a per-device timeout, so one hung device never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from agent.config import DeviceCfg
from contract.report import ConfigSnapshot, DeviceObservation


class DriverError(Exception):
    """A device could not be polled. ``kind`` is one of: timeout, auth, refused, unreachable,
    protocol, parse, unsupported, config."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Driver(Protocol):
    platform: str

    def poll(self, device: DeviceCfg) -> DeviceObservation:
        """Read facts, interfaces, addresses, routes, ARP, LLDP and FDB from the device."""
        ...

    def get_config(self, device: DeviceCfg) -> ConfigSnapshot | None:
        """The running configuration (masked), or None if this driver cannot read it."""
        ...


@runtime_checkable
class AsyncDriver(Protocol):
    """Optional: a driver whose library is asyncio-native (SNMP) also offers
    :meth:`poll_async`; the ``devices`` collector then awaits it on the agent's event loop
    (bounded by a semaphore) instead of using a worker thread."""

    platform: str

    async def poll_async(self, device: DeviceCfg) -> DeviceObservation: ...


DriverFactory = Callable[[], Driver]
REGISTRY: dict[str, DriverFactory] = {}


def register(platform: str) -> Callable[[DriverFactory], DriverFactory]:
    def deco(factory: DriverFactory) -> DriverFactory:
        if platform in REGISTRY:
            raise ValueError(f"driver for platform {platform!r} is registered twice")
        REGISTRY[platform] = factory
        return factory
    return deco


def get(platform: str) -> DriverFactory:
    try:
        return REGISTRY[platform]
    except KeyError:
        valid = ", ".join(sorted(REGISTRY)) or "(none)"
        raise KeyError(f"no driver for platform {platform!r}; valid: {valid}") from None
