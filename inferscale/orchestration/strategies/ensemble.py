"""`ensemble`: fan out to k models at once; the consensus answer is the one the others agree with
most (mean cosine similarity of MiniLM embeddings); that agreement is reported as confidence.
Once a strict majority of the k members gives the same normalised answer, the rest are cancelled."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import numpy as np

from ...embeddings import Embedder
from ...registry import ModelSpec
from ...types import MemberResult
from .answers import answer_key, majority_settled, tally
from .base import ExecContext, StrategyConfig, StrategyOutcome, all_failed, race, with_fallback


def consensus(answers: list[str], embedder: Embedder) -> tuple[int, float | None, list[float]]:
    """Index of the most agreed-with answer, its agreement in [0, 1] (None for a lone answer),
    and every answer's agreement score."""
    if len(answers) == 1:
        return 0, None, [1.0]
    if len(set(answers)) == 1:  # unanimous: nothing to embed
        return 0, 1.0, [1.0] * len(answers)
    vecs = embedder.embed(answers)
    sims = np.clip(vecs @ vecs.T, 0.0, 1.0)
    np.fill_diagonal(sims, 0.0)
    agreement = (sims.sum(axis=1) / (len(answers) - 1)).tolist()
    best = int(np.argmax(agreement))
    return best, float(agreement[best]), [float(a) for a in agreement]


class EnsembleConfig(StrategyConfig):
    early_stop: bool = True  # cancel the stragglers once a strict majority agrees exactly
    numeric: bool = True  # compare maths answers by their final number


class EnsembleStrategy:
    """Detail: {kind, consensus_model, agreement {model: score}, failed [model],
    members [{call, model, ok, key}], early_stop {stopped, cancelled}, budget}."""

    name: ClassVar[str] = "ensemble"
    Config: ClassVar[type[StrategyConfig]] = EnsembleConfig

    def __init__(self, config: StrategyConfig | None = None) -> None:
        self.config: EnsembleConfig = config or EnsembleConfig()  # type: ignore[assignment]

    async def run(self, ctx: ExecContext) -> StrategyOutcome:
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
            raise all_failed(members, ctx.budget)
        # Embedding is CPU work: off the event loop, so other requests' timeouts stay honest.
        best, confidence, agreement = await asyncio.to_thread(
            consensus, [m.answer or "" for m in ok], ctx.embedder)
        detail: dict[str, Any] = {
            "kind": self.name,
            "consensus_model": ok[best].model,
            "agreement": {m.model: round(a, 4) for m, a in zip(ok, agreement, strict=True)},
            "failed": [m.model for m in members if not m.ok],
            "members": [
                {"call": i, "model": m.model, "ok": m.ok, "key": answer_key(m.answer, cfg.numeric)}
                for i, m in enumerate(members)
            ],
            "early_stop": {"stopped": cancelled > 0, "cancelled": cancelled},
            "budget": ctx.budget.to_dict(),
        }
        return StrategyOutcome(ok[best].answer or "", confidence, members, detail)
