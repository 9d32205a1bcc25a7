"""POST /v1/feedback: 👍/👎 (and an optional corrected answer) on a request the gateway answered —
what `inferscale feedback REQUEST_ID good|bad [--answer TEXT]` does, over HTTP, stored through the
same `FeedbackStore` with source `gateway`.

A key rates only its own requests: the `tenant` column the chat route records is the key's name, and
a name can be reused once its key is revoked, so a request must also be younger than the key (the new
key is created after the old one's revocation, hence after all of its requests). Another key's
request id, or one made outside the gateway, answers 404 exactly like an unknown id, so a key cannot
probe which ids exist. Without auth (`--no-auth`, one local user) any request can be rated.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ...errors import ConfigError
from ..auth import Reader, Tenant
from ..errors import GatewayError

router = APIRouter()


class FeedbackRequest(BaseModel):
    # Unknown fields are refused: a misspelt `answer` would silently drop the correction.
    model_config = ConfigDict(extra="forbid")

    request_id: StrictStr = Field(min_length=1, max_length=200)
    rating: Literal["good", "bad"]
    answer: StrictStr | None = None  # the corrected answer
    model: StrictStr | None = None  # rate one member's answer instead of the final one


class FeedbackRecord(BaseModel):
    object: Literal["inferscale.feedback"] = "inferscale.feedback"
    request_id: str
    rating: str
    answer: str | None
    model: str | None
    source: str
    ts: float


def _not_found(request_id: str) -> GatewayError:
    return GatewayError(404, f"unknown request id {request_id!r}", param="request_id",
                        code="request_not_found")


def _store(database: Any, tenant: Tenant, body: FeedbackRequest) -> dict[str, Any]:
    from ...monitor.feedback import FeedbackStore, UnknownRequestError

    row = database.db.execute("SELECT tenant, ts FROM requests WHERE id = ?", [body.request_id]).fetchone()
    if row is None or (tenant.key is not None and (row[0] != tenant.name or row[1] < tenant.key.created_at)):
        raise _not_found(body.request_id)
    try:
        fb = FeedbackStore(database).add(body.request_id, body.rating, answer=body.answer,
                                         model=body.model, source="gateway")
    except UnknownRequestError:  # deleted between the check and the insert
        raise _not_found(body.request_id) from None
    except ConfigError as exc:  # a model that did not answer this request
        raise GatewayError(400, str(exc), param="model", code="invalid_model") from None
    return asdict(fb)


# Feedback spends nothing, so a key over its budget may still rate its answers (`Reader`, not `Spender`).
@router.post("/v1/feedback", response_model=FeedbackRecord)
async def feedback(body: FeedbackRequest, request: Request, tenant: Reader) -> FeedbackRecord:
    engine = request.app.state.gateway.engine
    # A client rates an answer the moment it arrives, and the request's row is written behind the
    # answer (`Engine.aask`): wait for the rows already queued, or a fresh id would be "not found".
    await asyncio.to_thread(engine.flush, 10.0)
    # SQLite reads and the insert transaction: off the loop the chat requests share.
    return FeedbackRecord(**await asyncio.to_thread(_store, engine.database, tenant, body))
