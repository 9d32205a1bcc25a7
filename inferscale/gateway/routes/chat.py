"""POST /v1/chat/completions: validate (schemas), plan (adapter), `Engine.aask`, answer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from ...types import AskResult
from .. import streaming
from ..adapter import completion, headers, plan
from ..auth import Spender
from ..schemas import ChatCompletion, ChatCompletionRequest

router = APIRouter()


@router.post("/v1/chat/completions", response_model=ChatCompletion)
async def chat_completions(body: ChatCompletionRequest, request: Request, response: Response,
                           tenant: Spender) -> ChatCompletion | Response:
    state = request.app.state.gateway
    engine = state.engine
    p = plan(body, engine.registry, namespace=tenant.namespace, tenant=tenant.name,
             default_strategy=engine.tunables().default_strategy)

    def charge(result: AskResult) -> None:
        if tenant.key is not None:
            state.keys.charge_later(engine.writer, tenant.key.id, result.cost_usd)

    if body.stream:
        return await streaming.respond(engine, p, body.model, uuid.uuid4().hex, charge)
    result = await engine.aask(p.prompt, **p.kwargs)
    charge(result)
    response.headers.update(headers(result))
    return completion(result, body.model)
