"""Network devices: poll every configured device with its platform's driver; back up configs.

Two collectors share one runner:

* ``devices`` (every ``intervals.devices_s``): one :class:`~contract.report.DeviceObservation`
  per device in ``cfg.devices``. Async drivers (SNMP) are awaited on the agent's loop, at most
  ``2 * device_workers`` (up to 64) at a time; blocking drivers (netmiko/NAPALM over SSH) run in a
  pool of ``cfg.device_workers`` threads. Each device gets its ``timeout_s``; a hung, failing
  or misconfigured device yields a ``failed`` observation (``error_type`` + message) and never
  stops or delays the others beyond its own timeout.
* ``config_backup`` (every ``intervals.config_backup_s``): ``driver.get_config(device)`` for
  devices with ``config_backup: true``, in the same kind of thread pool; failures are logged.

Driver modules (``agent/drivers/<platform>.py``) are imported only for platforms that appear
in the configuration, so heavy libraries stay out of an agent that does not need them.

A worker thread cannot be killed: a blocking poll that outlives its timeout keeps its worker
until it returns, later polls of that device fail fast ("previous poll still running"), and
the pool never grows past ``device_workers``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import logging
import pkgutil
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from agent import drivers
from agent.collectors import AgentContext, Obs, register
from agent.config import AgentConfig, DeviceCfg, SecretRef
from agent.drivers import AsyncDriver, Driver, DriverError
from contract.configfile import ConfigError
from contract.report import ConfigSnapshot, DeviceObservation, PollStatus, utcnow

log = logging.getLogger(__name__)

MAX_ASYNC_CONCURRENCY = 64  # async (SNMP) device polls in flight at once: 2 x device_workers
MAX_ERROR = 2048
_PLATFORM = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
T = TypeVar("T")


def _helper_modules() -> set[str]:
    return {"ssh_common", "snmp_profiles", "templates"}


def load_driver(platform: str) -> Driver:
    """A driver instance for ``platform``, importing ``agent.drivers.<platform>`` on first use.
    Raises :class:`DriverError` (kind ``config``) naming the valid platforms."""
    if platform not in drivers.REGISTRY:
        valid = sorted({m.name for m in pkgutil.iter_modules(drivers.__path__)
                        if not m.name.startswith("_")} - _helper_modules()
                       | set(drivers.REGISTRY))
        if not _PLATFORM.match(platform) or platform in _helper_modules():
            raise DriverError("config", f"unknown platform {platform!r}; valid: "
                                        f"{', '.join(valid)}")
        module = f"{drivers.__name__}.{platform}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                raise DriverError("config", f"unknown platform {platform!r}; valid: "
                                            f"{', '.join(valid)}") from e
            raise DriverError("config", f"driver {platform!r} needs the Python package "
                                        f"{e.name!r}, which is not installed") from e
    try:
        return drivers.get(platform)()
    except KeyError as e:
        raise DriverError("config", str(e.args[0]) if e.args else str(e)) from e


def _secrets(device: DeviceCfg) -> list[str]:
    refs: list[tuple[SecretRef | None, str]] = []
    if device.snmp:
        refs += [(device.snmp.community, "community"), (device.snmp.auth_key, "auth key"),
                 (device.snmp.priv_key, "priv key")]
    if device.ssh:
        refs += [(device.ssh.password, "password"), (device.ssh.enable_secret, "enable")]
    out = []
    for ref, what in refs:
        if ref is None:
            continue
        try:
            value = ref.value(what)
        except ConfigError:
            continue
        if len(value) >= 3:
            out.append(value)
    return out


def scrub(message: str, device: DeviceCfg) -> str:
    """Remove the device's secrets from a message (drivers should never put them there; this
    is the last line of defence for text that comes from third-party libraries)."""
    for secret in sorted(_secrets(device), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def failed_observation(device: DeviceCfg, kind: str, message: str, *,
                       started: float | None = None, driver: str | None = None
                       ) -> DeviceObservation:
    return DeviceObservation(
        observed_at=utcnow(), device=device.name, mgmt_address=device.host,
        driver=(driver or device.platform)[:64], status=PollStatus.FAILED,
        error_type=kind[:64], error=scrub(message, device)[:MAX_ERROR] or kind,
        duration_s=round(time.monotonic() - started, 3) if started is not None else None)


class DeviceRunner:
    """Drivers, the worker pool and its accounting, shared by one collector's runs."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.workers = cfg.device_workers
        self._drivers: dict[str, Driver] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._running = 0            # worker threads in use, including hung ones
        self._busy: set[str] = set()  # devices whose blocking call has not returned yet

    def driver(self, platform: str) -> Driver:
        if platform not in self._drivers:
            self._drivers[platform] = load_driver(platform)
        return self._drivers[platform]

    def hung(self) -> int:
        with self._lock:
            return len(self._busy)

    async def blocking(self, device: DeviceCfg, fn: Callable[[DeviceCfg], T],
                       wait_until: float) -> T:
        """Run ``fn(device)`` on a worker thread with ``device.timeout_s``. The timeout runs
        from the moment a worker is free; waiting for one ends at ``wait_until``."""
        with self._lock:
            if device.name in self._busy:
                raise DriverError("timeout", "previous poll of this device is still running "
                                             f"(hung longer than timeout_s={device.timeout_s:g})")
        while True:
            with self._lock:
                if self._running < self.workers:
                    self._running += 1
                    self._busy.add(device.name)
                    break
                hung = len(self._busy)
            if time.monotonic() >= wait_until:
                raise DriverError("timeout", f"no free worker within the collection interval "
                                             f"({self.workers} workers, {hung} busy)")
            await asyncio.sleep(0.05)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix="device")
        try:
            fut = self._pool.submit(fn, device)
        except RuntimeError:
            self._release(device.name)
            raise
        fut.add_done_callback(lambda _f: self._release(device.name))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), device.timeout_s)
        except TimeoutError:
            raise DriverError("timeout", f"no result within timeout_s={device.timeout_s:g} s "
                                         "(device or session hung)") from None

    def _release(self, name: str) -> None:
        with self._lock:
            self._running -= 1
            self._busy.discard(name)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


async def poll_device(runner: DeviceRunner, device: DeviceCfg, sem: asyncio.Semaphore,
                      wait_until: float) -> DeviceObservation:
    """One device, never raising: failures become a ``failed`` observation."""
    started = time.monotonic()
    try:
        drv = runner.driver(device.platform)
        if isinstance(drv, AsyncDriver):
            async with sem:
                started = time.monotonic()
                try:
                    obs = await asyncio.wait_for(drv.poll_async(device), device.timeout_s)
                except TimeoutError:
                    raise DriverError("timeout", f"no result within timeout_s="
                                                 f"{device.timeout_s:g} s") from None
        else:
            obs = await runner.blocking(device, drv.poll, wait_until)
        if not isinstance(obs, DeviceObservation):
            raise DriverError("protocol", f"driver {device.platform!r} returned "
                                          f"{type(obs).__name__}, not a DeviceObservation")
    except DriverError as e:
        return failed_observation(device, e.kind, str(e), started=started)
    except Exception as e:  # isolation boundary: a driver bug must not stop the others
        log.exception("device %s: driver %s failed", device.name, device.platform)
        return failed_observation(device, "internal", f"{type(e).__name__}: {e}",
                                  started=started)
    if obs.error:
        clean = scrub(obs.error, device)
        if clean != obs.error:
            obs = obs.model_copy(update={"error": clean})
    return obs


async def poll_devices(runner: DeviceRunner, devices: list[DeviceCfg], *,
                       budget_s: float) -> list[DeviceObservation]:
    sem = asyncio.Semaphore(min(MAX_ASYNC_CONCURRENCY, 2 * runner.workers))
    wait_until = time.monotonic() + budget_s
    return list(await asyncio.gather(*(poll_device(runner, d, sem, wait_until)
                                       for d in devices)))


class DevicesCollector:
    name = "devices"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg = cfg
        self.runner = DeviceRunner(cfg)

    def interval_s(self) -> float:
        return self.cfg.intervals.devices_s

    async def collect(self) -> list[Obs]:
        if not self.cfg.devices:
            return []
        try:
            return list(await poll_devices(self.runner, list(self.cfg.devices),
                                           budget_s=self.interval_s()))
        finally:
            if "agent.snmp_engine" in sys.modules:
                # one SNMP engine per run: its memory (MIB tables, per-target config) is
                # given back between runs and never outlives the event loop
                from agent.snmp_engine import SnmpHub

                SnmpHub.close_current()


class ConfigBackupCollector:
    name = "config_backup"

    def __init__(self, cfg: AgentConfig, ctx: AgentContext) -> None:
        self.cfg = cfg
        self.runner = DeviceRunner(cfg)

    def interval_s(self) -> float:
        return self.cfg.intervals.config_backup_s

    async def _one(self, device: DeviceCfg, wait_until: float) -> ConfigSnapshot | None:
        try:
            drv = self.runner.driver(device.platform)
            snap = await self.runner.blocking(device, drv.get_config, wait_until)
        except DriverError as e:
            log.warning("config backup of %s failed (%s): %s", device.name, e.kind,
                        scrub(str(e), device))
            return None
        except Exception as e:  # isolation boundary
            log.warning("config backup of %s failed: %s", device.name,
                        scrub(f"{type(e).__name__}: {e}", device))
            return None
        if snap is None:
            log.warning("config backup of %s: platform %s cannot read the configuration",
                        device.name, device.platform)
            return None
        if not isinstance(snap, ConfigSnapshot):
            log.warning("config backup of %s: driver returned %s", device.name,
                        type(snap).__name__)
            return None
        return snap

    async def collect(self) -> list[Obs]:
        devices = [d for d in self.cfg.devices if d.config_backup]
        if not devices:
            return []
        wait_until = time.monotonic() + self.interval_s()
        snaps = await asyncio.gather(*(self._one(d, wait_until) for d in devices))
        return [s for s in snaps if s is not None]


@register("devices")
def _devices(cfg: AgentConfig, ctx: AgentContext) -> DevicesCollector:
    return DevicesCollector(cfg, ctx)


@register("config_backup")
def _config_backup(cfg: AgentConfig, ctx: AgentContext) -> ConfigBackupCollector:
    return ConfigBackupCollector(cfg, ctx)
