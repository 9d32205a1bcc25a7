"""The FastAPI application: one Engine per process (built at startup), the routers, the body-size
guard and the one exception handler. `factory()` is what `uvicorn --factory` imports in each worker;
its configuration comes from the environment `inferscale serve` sets."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InferscaleError
from ..settings import Settings
from . import errors
from .keys import KeyStore

MAX_BODY_BYTES = 10 * 1024 * 1024
log = logging.getLogger("inferscale.gateway")
WARM_JOIN_S = 60.0  # a worker stopped while warming waits this long for it
AUTH_ENV = "INFERSCALE_GATEWAY_AUTH"  # "0" = --no-auth (serve checks the host is loopback)


@dataclass
class GatewayState:
    engine: Any
    keys: KeyStore
    auth: bool
    # Set once the worker is warm (litellm, the embedding graphs, the L1 index): /health says 503
    # until then. Requests are served meanwhile; they wait for whatever part they need.
    ready: threading.Event = field(default_factory=threading.Event)


class BodyLimit:
    """Refuse bodies over `limit` bytes before they are read: by Content-Length at once, and by
    counting for chunked uploads (which carry no length)."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(send)
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise errors.BodyTooLarge(self.limit)
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except errors.BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        from fastapi.responses import JSONResponse

        err = errors.BodyTooLarge(self.limit)
        resp = JSONResponse(err.body(), status_code=err.status, headers={"connection": "close"})
        await resp({"type": "http"}, None, send)  # type: ignore[arg-type]  # a response never reads


def create_app(settings: Settings | None = None, *, auth: bool = True, engine: Any = None) -> FastAPI:
    """The gateway app. `engine` may be handed in (tests, one process); else one is built at
    startup from `settings` (default: the environment)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from ..orchestration.engine import Engine

        eng = engine or Engine(settings or Settings.from_env())
        state = app.state.gateway = GatewayState(eng, KeyStore(eng.database), auth)
        # Warm after the socket is listening, not before: importing litellm alone is most of a
        # start (seconds, tens of seconds on a loaded machine), and a probe can tell "up" from "warm".
        warm = threading.Thread(target=_warm, args=(eng, state.ready), name="gateway-warm-up", daemon=True)
        warm.start()
        try:
            yield
        finally:  # answers go out before their records are written: write them before exiting
            await asyncio.to_thread(eng.flush)
            # A daemon thread frozen mid-import at exit holds the import lock, and a finaliser that
            # imports then hangs the worker (`orchestration/runner.shutdown`): let warming finish.
            await asyncio.to_thread(warm.join, WARM_JOIN_S)

    from .routes import chat, feedback, models, ops

    app = FastAPI(title="inferscale gateway", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    for r in (chat.router, models.router, ops.router, feedback.router):
        app.include_router(r)
    for exc in (errors.GatewayError, RequestValidationError, StarletteHTTPException, InferscaleError,
                Exception):
        app.add_exception_handler(exc, errors.handle)
    app.add_middleware(BodyLimit)
    return app


def _warm(engine: Any, ready: threading.Event) -> None:
    """Load what a first request would otherwise wait for (litellm, the analysis and both
    embedding graphs, the L1 index's client), then mark the worker ready. Warming is only an
    optimisation: a part that fails is loaded (or fails) again by the request that needs it."""
    t0 = time.perf_counter()
    try:
        engine.warm_up(background=False)
        engine.levels.semantic.index.count()  # imports chromadb and connects to the L1 index
    except Exception as exc:  # noqa: BLE001 - IndexUnavailable: L1 is skipped per request anyway
        log.warning("warm-up incomplete: %s: %s", type(exc).__name__, exc)
    finally:
        # What start-up and warming allocated (litellm, chromadb, the models: most of the heap)
        # lives as long as the worker. Frozen, full collections stop walking it: under the gateway
        # bench's misses one took 505 ms, every thread waiting (the p99), and 44 ms once frozen.
        gc.freeze()
        ready.set()
        log.info("gateway worker %d warm after %.1f s", os.getpid(), time.perf_counter() - t0)


def factory() -> FastAPI:
    """Entry point for uvicorn workers (`inferscale serve` sets the environment)."""
    return create_app(auth=os.environ.get(AUTH_ENV, "1") != "0")
