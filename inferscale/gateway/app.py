"""The FastAPI application: one Engine per process (built at startup), the routers, the body-size
guard and the one exception handler. `factory()` is what `uvicorn --factory` imports in each worker;
its configuration comes from the environment `inferscale serve` sets."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import InferscaleError
from ..settings import Settings
from . import errors
from .keys import KeyStore

MAX_BODY_BYTES = 10 * 1024 * 1024
AUTH_ENV = "INFERSCALE_GATEWAY_AUTH"  # "0" = --no-auth (serve checks the host is loopback)


@dataclass
class GatewayState:
    engine: Any
    keys: KeyStore
    auth: bool


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
        await asyncio.to_thread(_warm, eng)
        app.state.gateway = GatewayState(eng, KeyStore(eng.database), auth)
        yield

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


def _warm(engine: Any) -> None:
    """Load the embedding model and litellm before the first request, not during it (~8 s cold)."""
    from ..providers.llm import litellm_module

    litellm_module(engine.settings)
    engine.embedder.embed(["warm-up"])


def factory() -> FastAPI:
    """Entry point for uvicorn workers (`inferscale serve` sets the environment)."""
    return create_app(auth=os.environ.get(AUTH_ENV, "1") != "0")
