"""The alert engine and the delivery workers as background threads of the collector."""

from __future__ import annotations

import threading

from collector.alerts.config import AlertsCfg
from collector.alerts.delivery import Dispatcher
from collector.alerts.engine import AlertEngine
from collector.compliance.profile import RegionProfile
from collector.store import Store


class AlertService:
    def __init__(self, store: Store, cfg: AlertsCfg,
                 profile: RegionProfile | None = None) -> None:
        wake = threading.Event()
        self.cfg = cfg
        self.engine = AlertEngine(store, cfg, wake=wake, profile=profile)
        self.dispatcher = Dispatcher(store, cfg, wake=wake)
        self._threads: list[threading.Thread] = []

    def start(self, stop: threading.Event) -> None:
        self._threads = [
            threading.Thread(target=self.engine.run, args=(stop,), name="alert-engine",
                             daemon=True),
            threading.Thread(target=self.dispatcher.run, args=(stop,), name="alert-delivery",
                             daemon=True)]
        for t in self._threads:
            t.start()

    def join(self, timeout: float) -> None:
        """Wait for the threads after ``stop`` was set (a send in flight ends by its timeout)."""
        self.dispatcher.wake.set()
        for t in self._threads:
            t.join(timeout=timeout)
