"""Every error leaves the gateway in OpenAI's shape, through one handler:

    {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}

so the official clients raise their usual classes (BadRequestError, AuthenticationError,
NotFoundError, RateLimitError, InternalServerError…). Messages never contain a key: the gateway
key is never echoed, and provider errors are already redacted by the provider layer.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AllModelsFailedError,
    ConfigError,
    InvalidPromptError,
    ModelUnavailableError,
    RoutingError,
    UnknownModelError,
)

log = logging.getLogger("inferscale.gateway")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
          502: "upstream_error", 504: "upstream_timeout", 500: "server_error"}


class GatewayError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 type_: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.type = type_ or _TYPES.get(status, "server_error")
        self.extra = extra or {}  # more top-level fields (the failed members of a 502/504)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}, **self.extra}


class BodyTooLarge(GatewayError):
    def __init__(self, limit: int) -> None:
        super().__init__(400, f"request body larger than {limit // (1024 * 1024)} MB",
                         code="request_too_large")


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def from_exception(exc: Exception) -> GatewayError:
    """Map anything raised while serving a request to its OpenAI-style error."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _validation(exc)
    if isinstance(exc.__cause__, GatewayError):  # raised while FastAPI read the body
        return exc.__cause__
    if isinstance(exc, StarletteHTTPException):
        return GatewayError(exc.status_code, str(exc.detail), code=_TYPES.get(exc.status_code))
    if isinstance(exc, AllModelsFailedError):
        from .adapter import members_json

        members = members_json(exc.members)
        timed_out = bool(members) and all(m["error_class"] == "Timeout" for m in members)
        status = 504 if timed_out else 502
        return GatewayError(status, str(exc)[:2000], code="all_models_timed_out" if timed_out
                            else "all_models_failed", extra={"inferscale": {"members": members}})
    if isinstance(exc, UnknownModelError | ModelUnavailableError):
        return GatewayError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, InvalidPromptError):
        return bad_request(str(exc), param="messages")
    if isinstance(exc, RoutingError | ConfigError):
        return bad_request(str(exc), param="inferscale")
    log.exception("unexpected error while serving a request")
    return GatewayError(500, f"internal error: {type(exc).__name__}", code="internal_error")


def _validation(exc: RequestValidationError) -> GatewayError:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        return bad_request("the request body is not valid JSON", code="invalid_json")
    param = ".".join(loc) or None
    msg = first.get("msg", "invalid request body")
    if first.get("type") == "missing":
        msg = "field required"
    elif first.get("type") in ("string_type", "model_type", "dict_type") and loc and loc[-1] == "content":
        msg = "message content must be a string"
    return bad_request(f"{param or 'body'}: {msg}", param=param)


async def handle(request: Request, exc: Exception) -> JSONResponse:
    """The one exception handler (registered for GatewayError, validation, HTTP and the rest)."""
    err = from_exception(exc)
    return JSONResponse(err.body(), status_code=err.status)
