"""The agent-facing API: ``POST /api/v1/reports`` and ``GET /api/v1/agent/whoami``.

Order of checks: token (401) -> size (413) -> encoding (400/415) -> schema (422) ->
PD/agent binding (403) -> one transaction (2xx only after it committed).
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from collector.store import AgentAuth, Store
from contract.report import Ack, Report

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["agents"])
AGENT_TIME_HEADER = "X-Agent-Time"


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def agent_auth(request: Request) -> AgentAuth:
    token = _bearer(request)
    store = _store(request)
    agent = None
    if token:
        agent = store.agent_by_token_cached(token) or await run_in_threadpool(
            store.agent_by_token, token)
    if agent is None:
        raise HTTPException(401, "missing or unknown agent token",
                            headers={"WWW-Authenticate": "Bearer"})
    return agent


async def read_body(request: Request, max_bytes: int, max_decompressed: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise HTTPException(413, f"report body over the limit of {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise HTTPException(413, f"report body over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").lower().strip()
    if encoding in ("identity", ""):
        if len(body) > max_decompressed:
            raise HTTPException(413, f"report over the limit of {max_decompressed} bytes")
        return body
    if encoding != "gzip":
        raise HTTPException(415, f"unsupported Content-Encoding {encoding!r}; use gzip")
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(body, max_decompressed + 1)
    except zlib.error as e:
        raise HTTPException(400, f"body is not valid gzip: {e}") from e
    if len(out) > max_decompressed or d.unconsumed_tail:
        raise HTTPException(413, f"decompressed report over the limit of {max_decompressed} bytes")
    if not d.eof:
        raise HTTPException(400, "body is not valid gzip: truncated stream")
    return out


def validation_detail(err: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": ".".join(str(p) for p in e["loc"]) or "(body)", "msg": e["msg"],
             "type": e["type"]}
            for e in err.errors(include_url=False, include_input=False, include_context=False)][:50]


def clock_skew(header: str | None, received_at: float) -> float | None:
    if not header:
        return None
    try:
        t = datetime.fromisoformat(header)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    return round(t.timestamp() - received_at, 3)


# a JSON \u0000 escape: preceded by an even number of backslashes (an escaped backslash
# followed by the text "u0000" is not a NUL)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def clamp_future(report: Report, received_at: float, tolerance_s: float) -> tuple[Report, int]:
    """Observations stamped more than ``tolerance_s`` after arrival are taken as observed at
    arrival: a future time would hold a target's state (newer than anything real) and land
    in InfluxDB where no query looks. Returns the report and how many were clamped."""
    limit = received_at + tolerance_s
    if all(o.observed_at.timestamp() <= limit for o in report.observations):
        return report, 0
    arrival = datetime.fromtimestamp(received_at, UTC)
    fixed = [o if o.observed_at.timestamp() <= limit
             else o.model_copy(update={"observed_at": arrival}) for o in report.observations]
    clamped = sum(a is not b for a, b in zip(fixed, report.observations, strict=True))
    return report.model_copy(update={"observations": fixed}), clamped


@router.post("/reports", status_code=202, response_model=Ack,
             responses={200: {"model": Ack, "description": "duplicate report, already applied"},
                        401: {}, 403: {}, 413: {}, 415: {}, 422: {}})
async def post_report(request: Request, response: Response,
                      agent: Annotated[AgentAuth, Depends(agent_auth)]) -> Ack:
    limits = request.app.state.config.limits
    body = await read_body(request, limits.max_body_bytes, limits.max_decompressed_bytes)
    received_at = time.time()
    if _NUL_ESCAPE.search(body):
        raise HTTPException(422, [{"loc": "(body)", "type": "value_error",
                                   "msg": "NUL characters (\\u0000) are not allowed in strings"}])
    try:
        report = Report.model_validate_json(body)
    except ValidationError as e:
        raise HTTPException(422, validation_detail(e)) from None
    if report.agent_id != agent.agent_id:
        raise HTTPException(403, f"this token belongs to agent {agent.agent_id!r}, "
                                 f"not {report.agent_id!r}")
    if report.pd_code != agent.pd_code:
        raise HTTPException(403, f"agent {agent.agent_id!r} is bound to PD {agent.pd_code!r}; "
                                 f"it may not report for PD {report.pd_code!r}")
    skew = clock_skew(request.headers.get(AGENT_TIME_HEADER), received_at)
    report, clamped = clamp_future(report, received_at,
                                   request.app.state.config.clock_skew_max_s)
    if clamped:
        log.warning("agent %s: %d observation(s) of report %s stamped in the future (agent "
                    "clock wrong?); taken as observed at arrival", agent.agent_id, clamped,
                    report.report_id)
    result = await _store(request).ingest_async(agent, report, received_at, skew)
    if result.duplicate:
        response.status_code = 200
    return Ack(report_id=report.report_id, status="duplicate" if result.duplicate else "accepted",
               points=result.points, clock_skew_s=skew or 0.0, future_clamped=clamped)


@router.get("/agent/whoami")
async def whoami(agent: Annotated[AgentAuth, Depends(agent_auth)]) -> dict[str, str]:
    """What the collector knows this token as (used by ``spbe-agent check``)."""
    return {"agent_id": agent.agent_id, "pd_code": agent.pd_code}
