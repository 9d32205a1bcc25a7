"""`single`: one model; on failure, the next eligible model in the router's fallback order."""

from __future__ import annotations

from typing import ClassVar

from .base import Answer, ExecContext, Strategy, StrategyConfig, with_fallback


class SingleConfig(StrategyConfig):
    pass


class SingleStrategy(Strategy[SingleConfig]):
    """One routed model answers; the router's other models are its fallbacks, in order.

    Detail: {kind, answered_by, fallbacks_used, budget}."""

    name: ClassVar[str] = "single"
    models_needed: ClassVar[int | None] = 1  # the other models stay as fallbacks

    async def answer(self, ctx: ExecContext) -> Answer | None:
        result = await with_fallback(ctx, ctx.chosen[0], list(ctx.fallbacks), role="answer")
        if result is None or not result.ok:
            return None
        return Answer(result.answer or "", None,
                      {"answered_by": result.model, "fallbacks_used": len(ctx.members) - 1})
