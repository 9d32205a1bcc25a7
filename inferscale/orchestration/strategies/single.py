"""`single`: one model; on failure, the next eligible model in the router's fallback order."""

from __future__ import annotations

from .base import ExecContext, StrategyOutcome, all_failed


class SingleStrategy:
    name = "single"

    async def run(self, ctx: ExecContext) -> StrategyOutcome:
        members = []
        for spec in ctx.chosen[:1] + ctx.fallbacks:
            result = await ctx.call(spec)
            members.append(result)
            if result.ok:
                return StrategyOutcome(
                    answer=result.answer or "",
                    confidence=None,
                    members=tuple(members),
                    detail={"answered_by": spec.id, "fallbacks_used": len(members) - 1},
                )
        raise all_failed(members)
