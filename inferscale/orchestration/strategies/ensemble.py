"""`ensemble`: fan out to k models at once; the consensus answer is the one the others agree with
most (mean cosine similarity of MiniLM embeddings); that agreement is reported as confidence.
Once a strict majority of the k members gives the same normalised answer, the rest are cancelled."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from ...registry import ModelSpec
from ...types import MemberResult
from .answers import answer_key, consensus, majority_settled, tally
from .base import Answer, ExecContext, Strategy, StrategyConfig, race, with_fallback


class EnsembleConfig(StrategyConfig):
    early_stop: bool = True  # cancel the stragglers once a strict majority agrees exactly
    numeric: bool = True  # compare maths answers by their final number


class EnsembleStrategy(Strategy[EnsembleConfig]):
    """k models answer at once; the answer the others agree with most wins.

    Detail: {kind, consensus_model, agreement {model: score}, failed [model],
    members [{call, model, ok, key}], early_stop {stopped, cancelled}, budget}."""

    name: ClassVar[str] = "ensemble"

    async def answer(self, ctx: ExecContext) -> Answer | None:
        cfg = self.config
        spare = list(ctx.fallbacks)
        slots = ctx.chosen

        async def slot(spec: ModelSpec) -> MemberResult | None:
            # A failed member is replaced by the next unused fallback, so one bad provider
            # does not shrink the ensemble.
            return await with_fallback(ctx, spec, spare, role="member")

        def settled(done: list[MemberResult | None]) -> bool:
            keys = [answer_key(m.answer, cfg.numeric) for m in done if m is not None and m.ok]
            return cfg.early_stop and majority_settled(tally(keys)[1], len(slots) - len(done))

        _, cancelled = await race([slot(s) for s in slots], settled)
        members = ctx.members
        ok = [m for m in members if m.ok]
        if not ok:
            return None
        # Embedding is CPU work: off the event loop, so other requests' timeouts stay honest.
        best, confidence, agreement = await asyncio.to_thread(
            consensus, [m.answer or "" for m in ok], ctx.embedder)
        return Answer(ok[best].answer or "", confidence, {
            "consensus_model": ok[best].model,
            "agreement": {m.model: round(a, 4) for m, a in zip(ok, agreement, strict=True)},
            "failed": [m.model for m in members if not m.ok],
            "members": [
                {"call": i, "model": m.model, "ok": m.ok, "key": answer_key(m.answer, cfg.numeric)}
                for i, m in enumerate(members)
            ],
            "early_stop": {"stopped": cancelled > 0, "cancelled": cancelled},
        })
