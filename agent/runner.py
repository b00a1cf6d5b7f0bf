"""The running agent: scheduled collectors -> reports -> durable spool -> shipper thread."""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from agent import collectors, configbackup
from agent.collectors import Collector, Obs
from agent.config import AgentConfig
from agent.memory import release_freed_memory
from agent.shipper import Shipper
from agent.spool import Spool
from contract.report import MAX_OBSERVATIONS, Report, new_report_id, utcnow

log = logging.getLogger(__name__)
BUILTIN = ("heartbeat", "host_facts", "probes", "backups", "devices", "config_backup",
           "server_scan")


def fingerprint_key(state_dir: Path) -> bytes:
    """The agent's own random key for fingerprinting masked config secrets (so a password
    change shows as a config change without the password ever leaving the device)."""
    path = state_dir / "config-fingerprint.key"
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = os.urandom(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key


def build_report(cfg: AgentConfig, observations: Sequence[Obs]) -> Report:
    return Report(report_id=new_report_id(), agent_id=cfg.agent_id, pd_code=cfg.pd_code,
                  sent_at=utcnow(), observations=list(observations))


def encode(report: Report) -> bytes:
    return gzip.compress(report.model_dump_json(exclude_none=True).encode(), compresslevel=6)


def split_reports(cfg: AgentConfig, observations: Sequence[Obs]) -> list[tuple[Report, bytes]]:
    """Reports with their gzip'd bodies, in observation order. Usually one; several when the
    observations exceed ``MAX_OBSERVATIONS`` or ``shipping.max_report_bytes`` of JSON (then
    packed greedily by their own JSON size). One observation larger than the limit travels
    alone (the collector may refuse it; the spool then keeps it aside, counted)."""
    limit = cfg.shipping.max_report_bytes
    obs = list(observations)
    if len(obs) <= MAX_OBSERVATIONS:
        report = build_report(cfg, obs)
        raw = report.model_dump_json(exclude_none=True).encode()
        if len(raw) <= limit:
            return [(report, gzip.compress(raw, compresslevel=6))]
    chunks: list[list[Obs]] = []
    current: list[Obs] = []
    size = 0
    for o in obs:
        n = len(o.model_dump_json(exclude_none=True)) + 1
        if current and (size + n > limit - _ENVELOPE_BYTES or len(current) >= MAX_OBSERVATIONS):
            chunks.append(current)
            current, size = [], 0
        current.append(o)
        size += n
    if current:
        chunks.append(current)
    out = []
    for chunk in chunks:
        report = build_report(cfg, chunk)
        out.append((report, encode(report)))
    big = [len(r.observations) for r, _ in out]
    log.info("observations split into %d reports (%s observations each) to stay under %d "
             "bytes", len(out), ", ".join(map(str, big)), limit)
    return out


_ENVELOPE_BYTES = 512   # the report's own fields around its observations


def open_spool(cfg: AgentConfig) -> Spool:
    return Spool(cfg.spool.path, max_bytes=cfg.spool.max_bytes,
                 max_age_s=cfg.spool.max_age_days * 86400,
                 max_rejected_bytes=cfg.spool.max_rejected_bytes)


class Agent:
    def __init__(self, cfg: AgentConfig, *, with_spool: bool = True) -> None:
        self.cfg = cfg
        self.started = time.monotonic()
        self.spool = open_spool(cfg) if with_spool else None
        if with_spool:
            configbackup.set_fingerprint_key(fingerprint_key(cfg.spool.path.parent))
        collectors.load_builtin()
        self.collectors: list[Collector] = [collectors.get(n)(cfg, self) for n in BUILTIN]
        self.shipper = Shipper(self.spool, cfg.collector, cfg.shipping) if self.spool else None

    # AgentContext
    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def spool_counts(self) -> tuple[int, int, int]:
        if self.spool is None:
            return 0, 0, 0
        s = self.spool.stats()
        return s.pending, s.dropped_total, s.rejected_total

    async def collect_all(self) -> list[Obs]:
        results = await asyncio.gather(*(self._safe_collect(c) for c in self.collectors))
        return [o for r in results for o in r]

    async def _safe_collect(self, c: Collector) -> list[Obs]:
        try:
            return await c.collect()
        except Exception:
            log.exception("collector %s failed", c.name)
            return []

    def enqueue(self, observations: Sequence[Obs]) -> list[Report]:
        """Spool a cycle's observations: one report, or several when they are too many or too
        large for one (``shipping.max_report_bytes``, the contract's observation limit)."""
        if not observations or self.spool is None:
            return []
        out = []
        for report, body in split_reports(self.cfg, observations):
            self.spool.put(str(report.report_id), body)
            log.info("spooled report %s (%d observations)", report.report_id,
                     len(report.observations))
            out.append(report)
        if self.shipper:
            self.shipper.wake.set()
        return out

    async def run_job(self, c: Collector) -> None:
        self.enqueue(await self._safe_collect(c))
        release_freed_memory()   # the cycle's observations and report are garbage now

    def run(self) -> None:
        """Run until SIGTERM/SIGINT: collectors on their schedules, shipping in a thread."""
        assert self.shipper is not None
        stop = threading.Event()
        ship_thread = threading.Thread(target=self.shipper.run_forever, args=(stop,),
                                       name="shipper", daemon=True)
        ship_thread.start()
        asyncio.run(self._main(stop))
        self.shipper.wake.set()
        ship_thread.join(timeout=15)
        self.shipper.close()

    async def _main(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        sched = AsyncIOScheduler(event_loop=loop)
        for c in self.collectors:
            sched.add_job(self.run_job, "interval", args=[c], seconds=c.interval_s(),
                          next_run_time=utcnow(), id=c.name, max_instances=1, coalesce=True,
                          misfire_grace_time=max(1, int(c.interval_s())))
        sched.start()
        log.info("agent %s (PD %s) running; %d probes", self.cfg.agent_id, self.cfg.pd_code,
                 len(self.cfg.probes))
        await done.wait()
        log.info("stopping")
        sched.shutdown(wait=False)
        stop.set()
