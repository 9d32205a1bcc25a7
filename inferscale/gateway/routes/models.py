"""GET /v1/models: every available registry model, then the virtual ones (auto, each strategy)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ..adapter import virtual_models
from ..auth import Reader
from ..schemas import ModelCard, ModelList

router = APIRouter()


@router.get("/v1/models", response_model=ModelList)
async def list_models(request: Request, _tenant: Reader) -> ModelList:
    registry = request.app.state.gateway.engine.registry
    cards = [ModelCard(id=s.id, owned_by="local" if s.is_local else s.model.split("/", 1)[0])
             for s in registry.available()]
    cards += [ModelCard(id=v, owned_by="inferscale") for v in virtual_models()]
    return ModelList(data=cards)
