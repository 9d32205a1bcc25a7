"""GET /health (no key: load balancers probe it; 503 until warm) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .. import metrics
from ..auth import Reader

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> Response:
    # 503 while the worker warms up (litellm, embeddings, L1 index): a readiness probe then waits
    # for a worker that answers at full speed, though requests sent meanwhile are served too.
    state = request.app.state.gateway
    ready = state.ready.is_set()
    body = {"status": "ok" if ready else "warming", "ready": ready, "auth": state.auth,
            "models": len(state.engine.registry.available())}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def prometheus(request: Request, _tenant: Reader) -> Response:
    # The aggregate queries scan the monitor tables: off the loop the requests share. Requests
    # already answered count, though their rows are written behind the answers: wait for them.
    engine = request.app.state.gateway.engine
    await asyncio.to_thread(engine.flush, 10.0)
    body = await asyncio.to_thread(metrics.render, engine.database)
    return Response(body, media_type=metrics.CONTENT_TYPE)
