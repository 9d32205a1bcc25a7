"""`cascade` (after FrugalGPT): ask the cheapest model first and escalate to the next tier while
the answer's confidence is below tau.

Confidence, by `confidence`:
- `agreement`: two samples of the tier (temperature 0 and `temperature`) — 1 if their normalised
  answers match, 0 if they give different numbers, else their embedding similarity;
- `logprobs`: exp(mean token log-probability) where the provider returns them (falls back to
  agreement for a tier that does not);
- `judge`: a judge model's 0-10 rubric score / 10;
- `verifier`: the request's verifier score of the tier's answer (a gate that knows no expected answer).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, ClassVar, Literal

from pydantic import Field

from ...registry import ModelSpec
from ...settings import Tunables, like_tunable
from ...types import MemberResult
from .answers import agreement
from .base import Answer, ExecContext, Strategy, StrategyConfig
from .judge import Scorer


class CascadeConfig(StrategyConfig):
    tau: float = like_tunable("cascade_tau")
    confidence: Literal["agreement", "logprobs", "judge", "verifier"] = "agreement"
    temperature: float = like_tunable("sample_temperature")  # the second sample's (agreement)
    max_tiers: int = Field(4, ge=1, le=16)
    judge_model: str = ""
    numeric: bool = True

    @classmethod
    def defaults(cls, t: Tunables) -> dict[str, Any]:
        return {"tau": t.cascade_tau, "temperature": t.sample_temperature, "judge_model": t.judge_model}


class CascadeStrategy(Strategy[CascadeConfig]):
    """The cheapest model first; escalate while the answer's confidence is below tau.

    Detail: {kind, tau, confidence_source, ladder [model, cheapest first], tiers [{tier, model,
    calls [i], answer, confidence,
    confidence_source, escalated, cost_usd, error}], answered_by, answered_tier,
    escalation_cost_usd, budget}."""

    name: ClassVar[str] = "cascade"

    def ladder(self, ctx: ExecContext) -> list[ModelSpec]:
        """Every routed model, cheapest first (predicted cost, then quality prior)."""
        def cost(s: ModelSpec) -> float:
            return ctx.predict(s, 100, int(ctx.params.get("max_tokens") or 0)) if ctx.predict else 0.0
        return sorted(ctx.pool, key=lambda s: (cost(s), s.quality_prior))[: self.config.max_tiers]

    async def answer(self, ctx: ExecContext) -> Answer | None:
        cfg = self.config
        ladder = self.ladder(ctx)
        scorer = Scorer.build(ctx, cfg.confidence, cfg.judge_model, None) \
            if cfg.confidence in ("judge", "verifier") else None
        tiers: list[dict[str, Any]] = []
        answered: tuple[MemberResult, int] | None = None  # the highest tier that answered
        for n, spec in enumerate(ladder, start=1):
            first = len(ctx.members)
            answer, conf, source = await self._tier(ctx, spec, scorer, n, last=n == len(ladder))
            calls = list(range(first, len(ctx.members)))
            tier = {
                "tier": n, "model": spec.id, "calls": calls,
                "answer": answer.answer if answer is not None else None,
                "confidence": None if conf is None else round(conf, 4), "confidence_source": source,
                "escalated": False,
                "cost_usd": sum(m.cost_usd for m in ctx.members[first:] if not m.cached),
                "error": None if answer is None or answer.ok else answer.error,
            }
            tiers.append(tier)
            if answer is not None and answer.ok:
                answered = (answer, n)
                if conf is not None and conf >= cfg.tau:
                    break
            if ctx.budget.exhausted:
                break
            tier["escalated"] = n < len(ladder)
        if answered is None:
            return None
        answer, answered_tier = answered
        escalation = sum(t["cost_usd"] for t in tiers if t["tier"] != answered_tier)
        return Answer(answer.answer or "", tiers[answered_tier - 1]["confidence"], {
            "tau": cfg.tau, "confidence_source": cfg.confidence,
            "ladder": [s.id for s in ladder], "tiers": tiers,
            "answered_by": answer.model, "answered_tier": answered_tier,
            "escalation_cost_usd": escalation,
        })

    async def _tier(self, ctx: ExecContext, spec: ModelSpec, scorer: Scorer | None, n: int,
                    last: bool) -> tuple[MemberResult | None, float | None, str]:
        """One tier's answer, its confidence (None: not measured) and how it was measured."""
        cfg = self.config
        want_lp = cfg.confidence == "logprobs"
        first = await ctx.invoke(spec, role=f"tier {n}", temperature=0.0, logprobs=want_lp)
        if first is None or not first.ok:
            return first, None, cfg.confidence
        if want_lp and first.mean_logprob is not None:
            return first, math.exp(first.mean_logprob), "logprobs"
        if last:
            # Nothing to escalate to: another call would only measure, so save it.
            return first, None, cfg.confidence
        if scorer is not None:
            scored = await scorer.score(ctx, first.answer or "", role=f"tier {n} {scorer.kind}")
            return first, scored.score or 0.0, scorer.kind  # an unreadable verdict is no confidence
        second = await ctx.invoke(spec, role=f"tier {n} check", temperature=cfg.temperature, sample=1)
        if second is None or not second.ok:
            return first, 0.0, "agreement"
        score = await asyncio.to_thread(agreement, first.answer or "", second.answer or "", ctx.embedder,
                                        cfg.numeric)  # embeddings: CPU work, off the event loop
        return first, score, "agreement"
