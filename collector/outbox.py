"""The metric outbox: points committed with their report, written to InfluxDB in batches.

InfluxDB down means the outbox grows and ingest goes on; when it is back, the backlog is
written oldest first. A batch is deleted only after InfluxDB accepted it; a batch InfluxDB
refuses for good (HTTP 400, malformed) is moved to ``outbox_failed`` rather than blocking.
"""

from __future__ import annotations

import logging
import random
import threading

from collector.config import InfluxCfg
from collector.influx import InfluxError, Writer
from collector.store import Store

log = logging.getLogger(__name__)


class OutboxFlusher:
    def __init__(self, store: Store, writer: Writer, cfg: InfluxCfg) -> None:
        self.store, self.writer, self.cfg = store, writer, cfg
        self.written_total = 0
        self.last_error: str | None = None

    def flush_once(self) -> int:
        """Write one batch; returns its size (0 when the outbox is empty)."""
        batch = self.store.outbox_batch(self.cfg.batch_lines)
        if not batch:
            return 0
        try:
            self.writer.write([line for _, line in batch])
        except InfluxError as e:
            if not e.permanent:
                raise
            log.error("InfluxDB refused %d points for good, moved to outbox_failed: %s",
                      len(batch), e)
            self.store.outbox_fail(batch, str(e))
            return len(batch)
        self.store.outbox_done([i for i, _ in batch])
        self.written_total += len(batch)
        return len(batch)

    def run(self, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                n = self.flush_once()
                failures, self.last_error = 0, None
                if n < self.cfg.batch_lines:
                    stop.wait(self.cfg.flush_interval_s)
            except Exception as e:  # keep flushing whatever happens; data stays in the outbox
                failures += 1
                self.last_error = str(e)
                delay = min(self.cfg.backoff_max_s, 0.5 * 2 ** min(failures, 20))
                delay = delay / 2 + random.uniform(0, delay / 2)
                log.warning("InfluxDB write failed (%s); outbox kept, retry in %.1fs", e, delay)
                stop.wait(delay)
