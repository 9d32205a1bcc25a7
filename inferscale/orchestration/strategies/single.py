"""`single`: one model; on failure, the next eligible model in the router's fallback order."""

from __future__ import annotations

from typing import ClassVar

from .base import ExecContext, StrategyConfig, StrategyOutcome, all_failed, with_fallback


class SingleConfig(StrategyConfig):
    pass


class SingleStrategy:
    """Detail: {kind, answered_by, fallbacks_used, budget}."""

    name: ClassVar[str] = "single"
    Config: ClassVar[type[StrategyConfig]] = SingleConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        self.config = config or SingleConfig()

    async def run(self, ctx: ExecContext) -> StrategyOutcome:
        result = await with_fallback(ctx, ctx.chosen[0], list(ctx.fallbacks), role="answer")
        if result is None or not result.ok:
            raise all_failed(ctx.members, ctx.budget)
        return StrategyOutcome(
            answer=result.answer or "",
            confidence=None,
            members=ctx.members,
            detail={
                "kind": self.name,
                "answered_by": result.model,
                "fallbacks_used": len(ctx.members) - 1,
                "budget": ctx.budget.to_dict(),
            },
        )
