"""Ships spooled reports to the collector: gzip'd JSON over HTTPS with a bearer token.

A report leaves the spool only after the collector answered 2xx (it has committed it, or it
already had it). Network errors, 5xx, 401 and 403 are retried with exponential back-off and
jitter; 400, 413 and 422 mean the report itself is unacceptable, so it is moved aside to the
spool's ``rejected`` table (kept and counted, never silently lost). A report the collector
answers 500 for ``max_server_errors`` times in a row is set aside the same way, so that one
report a collector bug trips on does not hold up all the others; outages (network errors,
502, 503, 504) are never counted against a report.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from agent.config import CollectorCfg, ShippingCfg
from agent.httpclient import Connection, HttpError, Response
from agent.spool import Spool, SpoolItem

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
AGENT_TIME_HEADER = "X-Agent-Time"  # the agent's clock at sending time, for skew detection
PERMANENT = {400, 413, 422}


class Outcome(Enum):
    ACKED = "acked"
    REJECTED = "rejected"
    RETRY = "retry"


@dataclass(frozen=True)
class ShipResult:
    outcome: Outcome
    detail: str
    status: int = 0


def ssl_context(cfg: CollectorCfg) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cfg.ca_bundle) if cfg.ca_bundle else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def make_client(cfg: CollectorCfg, token: str) -> Connection:
    url = str(cfg.url)
    return Connection(url, timeout_s=cfg.timeout_s,
                      context=ssl_context(cfg) if url.startswith("https:") else None,
                      headers={"Authorization": f"Bearer {token}", "User-Agent": "spbe-agent"})


def _reason(resp: Response) -> str:
    try:
        body = resp.json()
        detail = body.get("detail", resp.text) if isinstance(body, dict) else resp.text
    except ValueError:
        detail = resp.text
    return f"HTTP {resp.status}: {str(detail)[:500]}"


def ship_one(client: Connection, item: SpoolItem) -> ShipResult:
    try:
        resp = client.request("POST", REPORTS_PATH, body=item.body, headers={
            "Content-Type": "application/json", "Content-Encoding": "gzip",
            AGENT_TIME_HEADER: datetime.now(UTC).isoformat()},
            deadline_s=client.timeout_s * 2)
    except HttpError as e:
        return ShipResult(Outcome.RETRY, str(e))
    if 200 <= resp.status < 300:
        return ShipResult(Outcome.ACKED, resp.text[:200])
    if resp.status in PERMANENT:
        return ShipResult(Outcome.REJECTED, _reason(resp), resp.status)
    return ShipResult(Outcome.RETRY, _reason(resp), resp.status)


class Backoff:
    """Exponential back-off with jitter: ``initial * 2**n``, capped, then +-50 % random."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.failures = initial, maximum, 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * (2 ** min(self.failures, 30)))
        self.failures += 1
        return float(base / 2 + random.uniform(0, base / 2))

    def reset(self) -> None:
        self.failures = 0


class Shipper:
    def __init__(self, spool: Spool, collector: CollectorCfg, shipping: ShippingCfg) -> None:
        self.spool, self.cfg, self.shipping = spool, collector, shipping
        self.backoff = Backoff(shipping.backoff_initial_s, shipping.backoff_max_s)
        self.wake = threading.Event()
        self._client: Connection | None = None

    def _get_client(self) -> Connection:
        if self._client is None:
            self._client = make_client(self.cfg, self.cfg.token())
        return self._client

    def drain_once(self) -> tuple[int, str | None]:
        """Ship what is spooled, oldest first, until empty or a retryable failure.

        Returns (number acked or rejected, last retryable error or None).
        """
        done = 0
        client = self._get_client()
        while True:
            batch = self.spool.peek(self.shipping.batch_reports)
            if not batch:
                return done, None
            for item in batch:
                res = ship_one(client, item)
                if res.outcome is Outcome.ACKED:
                    self.spool.ack(item.report_id)
                elif res.outcome is Outcome.REJECTED:
                    log.error("collector rejected report %s for good (%s); kept in the spool's "
                              "rejected table", item.report_id, res.detail)
                    self.spool.reject(item.report_id, res.status, res.detail)
                elif res.status == 500 and item.attempts + 1 >= self.shipping.max_server_errors:
                    # the collector fails on this very report: set it aside so the reports
                    # behind it flow; `spbe-agent spool requeue` sends it again
                    log.error("collector failed on report %s %d times (%s); set aside in the "
                              "spool's rejected table", item.report_id, item.attempts + 1,
                              res.detail)
                    self.spool.reject(item.report_id, res.status,
                                      f"set aside after {item.attempts + 1} server errors: "
                                      f"{res.detail}")
                else:
                    if res.status == 500:   # outages (network, 502-504) are not counted
                        self.spool.attempt_failed(item.report_id)
                    if res.status == 401:   # token rotated? read the token file again
                        self.close()
                    return done, res.detail
                done += 1

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                _, error = self.drain_once()
            except Exception as e:  # the shipping loop must survive anything
                error = f"{type(e).__name__}: {e}"
            if error is None:
                self.backoff.reset()
                self.wake.wait(self.shipping.idle_poll_s)
                self.wake.clear()
            else:
                delay = self.backoff.next_delay()
                log.warning("shipping paused %.1fs: %s", delay, error)
                stop.wait(delay)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
