"""The collector process: ingest API + dashboard API + the outbox flusher, in one app."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from collector import __version__, ingest
from collector.alerts.service import AlertService
from collector.compliance.engine import ComplianceService
from collector.config import CollectorConfig
from collector.db import make_engine, migrate
from collector.influx import V1Client, make_writer
from collector.outbox import OutboxFlusher
from collector.store import Store
from dashboard_api.main import include_routers

log = logging.getLogger(__name__)


class ApiBodyLimit:
    """Refuse oversized dashboard-API bodies before anything reads them (413), and bodies of
    unknown length (411). Ingest has its own streaming limits (collector/ingest.py)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/api/v1/reports" \
                or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is None and b"chunked" in headers.get(b"transfer-encoding", b""):
            return await JSONResponse({"detail": "Content-Length required"},
                                      status_code=411)(scope, receive, send)
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await JSONResponse({"detail": f"request body over the limit of "
                                                 f"{self.limit} bytes"},
                                      status_code=413)(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(cfg: CollectorConfig, *, run_flusher: bool = True) -> FastAPI:
    engine = make_engine(cfg.database_url)
    migrate(engine)
    store = Store(engine)
    compliance = ComplianceService(store, cfg.compliance)
    store.report_listeners.append(compliance.report_applied)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        writer = make_writer(cfg.influxdb)
        flusher = OutboxFlusher(store, writer, cfg.influxdb)
        app.state.flusher = flusher
        thread = threading.Thread(target=flusher.run, args=(stop,), name="outbox", daemon=True)
        if run_flusher:
            thread.start()
        alerting = AlertService(store, cfg.alerts, profile=cfg.compliance.profile)
        app.state.alerts = alerting
        if run_flusher and cfg.alerts.enabled:
            alerting.start(stop)  # alert engine + delivery workers, their own threads
        if run_flusher:
            compliance.start(stop)  # rule evaluation: on ingest and every interval
        try:
            yield
        finally:
            stop.set()
            if run_flusher:
                thread.join(timeout=cfg.influxdb.timeout_s + 5)
            alerting.join(timeout=15)
            compliance.join(timeout=30)
            writer.close()
            app.state.influx_query.close()
            store.close()
            engine.dispose()

    app = FastAPI(title="spbe-monitor collector", version=__version__, lifespan=lifespan,
                  description="Agent ingest and the dashboard API for Diskominfo engineers.")
    app.state.config = cfg
    app.state.store = store
    app.state.compliance = compliance
    app.state.influx_query = V1Client(cfg.influxdb)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # never echo the offending input back (it may be hostile or carry secrets)
        detail = [{"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": e.get("msg", "")}
                  for e in exc.errors()][:50]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _store_down(request: Request, exc: OperationalError) -> JSONResponse:
        # the state database is unreachable, locked or full: a temporary condition, so the
        # agent keeps the report and retries (500 stays for faults in the collector itself)
        log.error("state store unavailable on %s %s: %s", request.method, request.url.path,
                  str(exc.orig)[:300] if exc.orig else type(exc).__name__)
        return JSONResponse({"detail": "state store unavailable, retry later"},
                            status_code=503, headers={"Retry-After": "30"})

    app.add_middleware(ApiBodyLimit, limit=cfg.limits.max_api_body_bytes)
    app.include_router(ingest.router)
    include_routers(app)
    return app
