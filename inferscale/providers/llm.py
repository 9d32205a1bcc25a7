"""Every model call goes through `litellm.acompletion`: timeout, one retry with backoff, cost.

`call_model` never raises for a provider failure: it returns a `MemberResult` whose `error` names
the error class, so one member failing never takes the others' answers with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..registry import ModelSpec
from ..settings import Settings, prepare_offline_env
from ..types import MemberResult, Message
from .local import LocalConfig, make_handler
from .modelfiles import LOCAL_MODELS

OnToken = Callable[[str, str], Awaitable[None] | None]  # (model_id, text_delta)

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

_setup_lock = threading.Lock()
_local_cfg: LocalConfig | None = None
_litellm: Any = None


def litellm_module(settings: Settings) -> Any:
    """Import and configure litellm once per process (offline cost map, local provider, quiet)."""
    global _litellm, _local_cfg
    with _setup_lock:
        _local_cfg = LocalConfig(settings.models_dir, settings.n_threads, settings.local_n_ctx)
        if _litellm is None:
            prepare_offline_env()
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
            litellm.custom_provider_map = [
                {"provider": "local", "custom_handler": make_handler(lambda: _local_cfg)}
            ]
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
            _litellm = litellm
        _register_local_prices(_litellm, settings.cpu_hour_usd)
        return _litellm


def _register_local_prices(litellm: Any, cpu_hour_usd: float) -> None:
    # Local calls are priced by wall-clock seconds, so litellm.completion_cost works for them too.
    per_second = cpu_hour_usd / 3600.0
    litellm.register_model({
        f"local/{name}": {
            "input_cost_per_second": per_second,
            "output_cost_per_second": 0.0,
            "litellm_provider": "local",
            "mode": "chat",
        }
        for name in LOCAL_MODELS
    })


def local_cost(seconds: float, settings: Settings) -> float:
    return seconds * settings.cpu_hour_usd / 3600.0


def _cost(litellm: Any, spec: ModelSpec, resp: Any, seconds: float, settings: Settings) -> float:
    usage = getattr(resp, "usage", None)
    tin = getattr(usage, "prompt_tokens", 0) or 0
    tout = getattr(usage, "completion_tokens", 0) or 0
    if spec.is_local:
        return local_cost(seconds, settings)
    if spec.input_price_per_1m is not None or spec.output_price_per_1m is not None:
        return (tin * (spec.input_price_per_1m or 0) + tout * (spec.output_price_per_1m or 0)) / 1e6
    try:
        return float(litellm.completion_cost(completion_response=resp, model=spec.model))
    except Exception:  # noqa: BLE001 - a model missing from the cost map is priced at 0, not fatal
        return 0.0


def call_kwargs(spec: ModelSpec, messages: list[Message], params: dict[str, Any], timeout: float) -> dict:
    kw: dict[str, Any] = {"model": spec.model, "messages": messages, "timeout": timeout, **params}
    if spec.api_base:
        kw["api_base"] = spec.api_base
    if spec.api_key_env:
        # Read at call time, passed straight to litellm; never stored or logged by inferscale.
        kw["api_key"] = os.environ.get(spec.api_key_env, "")
    return kw


async def _one_attempt(
    litellm: Any, kw: dict[str, Any], spec: ModelSpec, timeout: float, on_token: OnToken | None
) -> Any:
    if on_token is None:
        return await asyncio.wait_for(litellm.acompletion(**kw), timeout)

    async def consume() -> Any:
        chunks = []
        opts = {} if spec.is_local else {"stream_options": {"include_usage": True}}
        stream = await litellm.acompletion(stream=True, **opts, **kw)
        async for chunk in stream:
            chunks.append(chunk)
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                r = on_token(spec.id, delta)
                if asyncio.iscoroutine(r):
                    await r
        return litellm.stream_chunk_builder(chunks, messages=kw["messages"])

    return await asyncio.wait_for(consume(), timeout)


async def call_model(
    spec: ModelSpec,
    messages: list[Message],
    params: dict[str, Any],
    settings: Settings,
    on_token: OnToken | None = None,
    timeout: float | None = None,
) -> MemberResult:
    """Call one model with a timeout and one retry (exponential backoff with jitter)."""
    litellm = litellm_module(settings)
    timeout = timeout or settings.call_timeout_s
    kw = call_kwargs(spec, messages, params, timeout)
    started = time.perf_counter()
    error = None
    attempts = 0
    for attempt in range(2):
        attempts = attempt + 1
        t0 = time.perf_counter()
        try:
            resp = await _one_attempt(litellm, kw, spec, timeout, on_token)
            seconds = time.perf_counter() - t0
            content = resp.choices[0].message.content if resp and resp.choices else None
            if content is None:
                raise ValueError("provider returned no message content")
            usage = getattr(resp, "usage", None)
            return MemberResult(
                model=spec.id,
                answer=content.strip(),
                latency_ms=(time.perf_counter() - started) * 1000,
                tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
                tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
                cost_usd=_cost(litellm, spec, resp, seconds, settings),
                attempts=attempts,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified and reported, never propagated
            name = "Timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
            error = f"{name}: {_short(exc, spec)}"
            if name in _NO_RETRY or attempt == 1:
                break
            await asyncio.sleep(settings.retry_backoff_s * (2**attempt) * (0.5 + random.random()))
    return MemberResult(
        model=spec.id,
        answer=None,
        latency_ms=(time.perf_counter() - started) * 1000,
        error=error,
        attempts=attempts,
    )


def _short(exc: BaseException, spec: ModelSpec) -> str:
    text = " ".join(str(exc).split())[:300] or type(exc).__name__
    key_var = spec.api_key_env
    secret = os.environ.get(key_var) if key_var else None
    if secret:
        text = text.replace(secret, "***")  # providers sometimes echo the key back
    return text
