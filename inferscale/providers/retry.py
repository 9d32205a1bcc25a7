"""Retry policy for provider calls: which failures are worth another attempt, and how long to wait.

Rate limits, server errors, timeouts, dropped connections and bodies that did not parse are
retried with exponential backoff and jitter; a provider's Retry-After (or retry-after-ms) replaces
the backoff, and one longer than `retry_after_max_s` means "go elsewhere": the caller falls back.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass

from ..settings import Settings

# Errors a second attempt cannot fix: wrong key, bad request, unknown model, prompt too long.
_NO_RETRY = {
    "AuthenticationError",
    "PermissionDeniedError",
    "BadRequestError",
    "NotFoundError",
    "ContextWindowExceededError",
    "UnsupportedParamsError",
    "ModelUnavailableError",
}


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 2
    backoff_s: float = 0.25  # first wait; doubles every attempt, with jitter
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0  # a longer Retry-After means "go elsewhere": fall back instead

    @classmethod
    def from_settings(cls, s: Settings) -> RetryPolicy:
        return cls(s.max_attempts, s.retry_backoff_s, s.retry_backoff_max_s, s.retry_after_max_s)

    def delay(self, attempt: int, retry_after_s: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to stop retrying this model."""
        if attempt >= self.max_attempts:
            return None
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= self.retry_after_max_s else None
        return min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))


# Errors worth another attempt: rate limits, server errors, timeouts, dropped connections, bodies
# that did not parse. Everything else (bad key, bad request, unknown model…) fails at once.
_RETRYABLE = {
    "Timeout",
    "APIConnectionError",
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailableError",
    "BadGatewayError",
    "MalformedResponseError",
}


def classify(exc: BaseException) -> tuple[str, bool]:
    """(error class recorded for this failure, whether retrying may help)."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "Timeout", True
    if isinstance(exc, MalformedResponseError) or _caused_by(exc, json.JSONDecodeError):
        return "MalformedResponseError", True
    name = type(exc).__name__
    if name in _NO_RETRY:
        return name, False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status == 429 or status >= 500):
        return name, True
    return name, name in _RETRYABLE


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # cause chains are short; the bound guards against cycles
        if seen is None:
            return False
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked us to wait (retry-after-ms, or Retry-After seconds / HTTP date)."""
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    try:
        if (ms := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(ms) / 1000)
        raw = headers.get("retry-after")
        if raw is None:
            return None
        try:
            return max(0.0, float(raw))
        except ValueError:
            when = email.utils.parsedate_to_datetime(raw)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


class MalformedResponseError(Exception):
    """The provider answered 200 but the body had no usable message."""
