"""The whole translation between OpenAI's API and `Engine.aask`, both ways. No pipeline here:
what runs, the cache, routing and recording are the engine's; this only maps fields.

`model` chooses what runs:
  <registry id>           that model (`single`, router `fixed`), still cached and recorded
  inferscale/auto         the default router and the default strategy (tunables)
  inferscale/<strategy>   that strategy over the default router's choice
The optional body field `inferscale` refines it (strategy, models, router, options, cache).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import UnknownModelError
from ..registry import Registry
from ..settings import STRATEGY_NAMES
from ..types import AskResult, CacheControl, MemberResult, Message
from .errors import GatewayError, bad_request
from .schemas import (
    AssistantMessage,
    CacheInfo,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    InferscaleInfo,
    Member,
    Routing,
    Usage,
)

VIRTUAL_PREFIX = "inferscale/"
AUTO = VIRTUAL_PREFIX + "auto"


def virtual_models() -> list[str]:
    return [AUTO, *(VIRTUAL_PREFIX + s for s in STRATEGY_NAMES)]


@dataclass(frozen=True)
class Plan:
    """What one request asks the engine for."""

    prompt: str
    kwargs: dict[str, Any]  # the keyword arguments of Engine.aask (besides the prompt)
    single: bool  # the `single` strategy: tokens can stream as the model writes them


def plan(req: ChatCompletionRequest, registry: Registry, *, namespace: str, tenant: str | None,
         default_strategy: str) -> Plan:
    """Check the request against what can run and turn it into `aask` arguments."""
    if req.n != 1:
        raise bad_request(f"n={req.n} is not supported: inferscale returns one choice per request "
                          "(use the strategies for several samples)", param="n", code="unsupported_n")
    opts = req.inferscale
    strategy, models = opts.strategy, list(opts.models or [])
    if req.model == AUTO:
        pass
    elif req.model.startswith(VIRTUAL_PREFIX):
        name = req.model.removeprefix(VIRTUAL_PREFIX)
        if name not in STRATEGY_NAMES:
            raise _unknown_model(req.model)
        strategy = strategy or name
    else:
        _check_model(registry, req.model)
        models = models or [req.model]
        strategy = strategy or "single"
    for m in models:
        _check_model(registry, m, param="inferscale.models")
    if strategy is not None and strategy not in STRATEGY_NAMES:
        raise bad_request(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGY_NAMES)}",
                          param="inferscale.strategy", code="unknown_strategy")
    system, history = _split(req.messages)
    params: dict[str, Any] = {}
    if req.temperature is not None:
        params["temperature"] = req.temperature
    if (mt := req.max_completion_tokens or req.max_tokens) is not None:
        params["max_tokens"] = mt
    c = opts.cache
    kwargs = {
        "system": system, "history": history, "strategy": strategy, "models": models or None,
        "router": opts.router, "strategy_options": opts.options, "params": params,
        "cache": CacheControl(read=not c.no_cache, write=not c.no_store, ttl_s=c.ttl, namespace=namespace),
        "source": "gateway", "tenant": tenant,
    }
    return Plan(req.messages[-1].content, kwargs, (strategy or default_strategy) == "single")


def _split(messages: Iterable[Any]) -> tuple[str | None, list[Message]]:
    """System turns (joined, in order) and the user/assistant turns before the last one."""
    msgs = list(messages)
    system = [m.content for m in msgs if m.role == "system" and m.content.strip()]
    history = [{"role": m.role, "content": m.content} for m in msgs[:-1] if m.role != "system"]
    return ("\n\n".join(system) or None), history


def _unknown_model(model: str) -> GatewayError:
    return GatewayError(404, f"model {model!r} not found; GET /v1/models lists what this gateway serves",
                        param="model", code="model_not_found")


def _check_model(registry: Registry, model_id: str, param: str = "model") -> None:
    try:
        spec = registry.get(model_id)
    except UnknownModelError:
        raise GatewayError(404, _unknown_model(model_id).message, param=param,
                           code="model_not_found") from None
    if (why := spec.unavailable_reason()) is not None:
        raise GatewayError(404, f"model {model_id!r} is not available: {why}", param=param,
                           code="model_not_found")


# -- responses ------------------------------------------------------------------------------------
def members_json(members: Iterable[MemberResult]) -> list[dict[str, Any]]:
    return [member(m).model_dump() for m in members]


def member(m: MemberResult) -> Member:
    return Member(model=m.model, latency_ms=round(m.latency_ms, 2), cost_usd=m.cost_usd, error=m.error,
                  error_class=m.error_class, cached=m.cached, role=m.role)


def usage(result: AskResult) -> Usage:
    tin = sum(m.tokens_in for m in result.members)
    tout = sum(m.tokens_out for m in result.members)
    return Usage(prompt_tokens=tin, completion_tokens=tout, total_tokens=tin + tout)


def cache_level(result: AskResult) -> str:
    """The x-inferscale-cache header: miss, or the level that served the answer (L3 when every
    answering model call came from the model-output cache, e.g. under another strategy's scope)."""
    if result.cache is not None:
        return result.cache.level
    answered = [m for m in result.members if m.ok]
    return "L3" if answered and all(m.cached for m in answered) else "miss"


def info(result: AskResult) -> InferscaleInfo:
    c, level = result.cache, cache_level(result)
    cache = None if level == "miss" else CacheInfo(level=level, similarity=1.0) if c is None else CacheInfo(
        level=c.level, similarity=c.detail.get("similarity", 1.0 if c.level != "L1" else None),
        matched_prompt=c.detail.get("matched_prompt"), saved_usd=c.saved_usd)
    return InferscaleInfo(
        request_id=result.request_id,
        strategy=result.strategy,
        routing=Routing(models=list(result.routing.models), reason=result.routing.reason,
                        complexity=round(result.analysis.score, 4), policy=result.routing.policy),
        cache=cache,
        members=[member(m) for m in result.members],
        confidence=result.confidence,
        cost_usd=result.cost_usd,
        latency_ms=round(result.latency_ms, 2),
    )


def completion_id(request_id: str) -> str:
    return f"chatcmpl-{request_id}"


def completion(result: AskResult, model: str) -> ChatCompletion:
    return ChatCompletion(
        id=completion_id(result.request_id), created=int(time.time()), model=model,
        choices=[Choice(message=AssistantMessage(content=result.answer))],
        usage=usage(result), inferscale=info(result),
    )


def headers(result: AskResult) -> dict[str, str]:
    return {"x-inferscale-request-id": result.request_id, "x-inferscale-cache": cache_level(result),
            "x-inferscale-models": ",".join(result.routing.models)}
