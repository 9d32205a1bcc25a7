"""GET /health (no key: load balancers probe it) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from .. import metrics
from ..auth import Reader

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict:
    state = request.app.state.gateway
    return {"status": "ok", "auth": state.auth, "models": len(state.engine.registry.available())}


@router.get("/metrics")
async def prometheus(request: Request, _tenant: Reader) -> Response:
    # The aggregate queries scan the monitor tables: off the loop the requests share. Requests
    # already answered count, though their rows are written behind the answers: wait for them.
    engine = request.app.state.gateway.engine
    await asyncio.to_thread(engine.flush, 10.0)
    body = await asyncio.to_thread(metrics.render, engine.database)
    return Response(body, media_type=metrics.CONTENT_TYPE)
