"""`ensemble`: fan out to k models at once; the consensus answer is the one the others agree with
most (mean cosine similarity of MiniLM embeddings); that agreement is reported as confidence."""

from __future__ import annotations

import asyncio

import numpy as np

from ...embeddings import Embedder
from ...registry import ModelSpec
from ...types import MemberResult
from .base import ExecContext, StrategyOutcome, all_failed


def consensus(answers: list[str], embedder: Embedder) -> tuple[int, float | None, list[float]]:
    """Index of the most agreed-with answer, its agreement in [0, 1] (None for a lone answer),
    and every answer's agreement score."""
    if len(answers) == 1:
        return 0, None, [1.0]
    vecs = embedder.embed(answers)
    sims = np.clip(vecs @ vecs.T, 0.0, 1.0)
    np.fill_diagonal(sims, 0.0)
    agreement = (sims.sum(axis=1) / (len(answers) - 1)).tolist()
    best = int(np.argmax(agreement))
    return best, float(agreement[best]), [float(a) for a in agreement]


class EnsembleStrategy:
    name = "ensemble"

    async def run(self, ctx: ExecContext) -> StrategyOutcome:
        spare = list(ctx.fallbacks)
        lock = asyncio.Lock()

        async def slot(spec: ModelSpec) -> list[MemberResult]:
            # A failed member is replaced by the next unused fallback, so one bad provider
            # does not shrink the ensemble.
            tried = [await ctx.call(spec)]
            while not tried[-1].ok:
                async with lock:
                    if not spare:
                        break
                    nxt = spare.pop(0)
                tried.append(await ctx.call(nxt))
            return tried

        per_slot = await asyncio.gather(*(slot(s) for s in ctx.chosen))
        members = [m for slot_results in per_slot for m in slot_results]
        ok = [m for m in members if m.ok]
        if not ok:
            raise all_failed(members)
        best, confidence, agreement = consensus([m.answer or "" for m in ok], ctx.embedder)
        return StrategyOutcome(
            answer=ok[best].answer or "",
            confidence=confidence,
            members=tuple(members),
            detail={
                "consensus_model": ok[best].model,
                "agreement": {m.model: round(a, 4) for m, a in zip(ok, agreement, strict=True)},
                "failed": [m.model for m in members if not m.ok],
            },
        )
