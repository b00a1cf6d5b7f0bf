"""``/api/v1/health``: is the collector able to do its job (no authentication, no secrets)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import text

from collector import __version__

router = APIRouter(prefix="/api/v1", tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    checks: dict[str, Any] = {}
    try:
        await run_in_threadpool(state.store.scalar, text("SELECT 1"))
        pending, failed = await run_in_threadpool(state.store.outbox_depth)
        checks["database"] = "ok"
        checks["outbox_pending"] = pending
        checks["outbox_failed"] = failed
        counters = await run_in_threadpool(state.store.counters)
        checks["outbox_written_total"] = counters.get("outbox_written", 0)
    except Exception as e:  # report, never crash the health check
        checks["database"] = f"error: {type(e).__name__}"
    influx_ok = await run_in_threadpool(state.influx_query.ping)
    checks["influxdb"] = "ok" if influx_ok else "unreachable"
    healthy = checks["database"] == "ok"
    body = {"status": ("ok" if influx_ok else "degraded") if healthy else "error",
            "version": __version__, "checks": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)
