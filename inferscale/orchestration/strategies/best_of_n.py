"""`best-of-n`: N candidates from the routed models (round-robin, temperature T); each is scored as
soon as it arrives (a judge model with a rubric, or the exact-answer verifier); the best wins and
its score is the confidence. A candidate reaching `stop_score` ends the search early.

When the judge gives no usable score at all, the candidates' majority answer wins instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import Field

from ...settings import Tunables, like_tunable
from ...types import MemberResult
from .answers import answer_key, tally
from .base import Answer, ExecContext, Strategy, StrategyConfig, race, with_fallback
from .judge import Scorer, ScorerName


class BestOfNConfig(StrategyConfig):
    n: int = like_tunable("samples_n")
    temperature: float = like_tunable("sample_temperature")
    scorer: ScorerName = "judge"
    judge_model: str = ""
    expected: str | None = None  # for scorer=exact
    stop_score: float = Field(1.0, ge=0, le=1)
    early_stop: bool = True
    numeric: bool = True

    @classmethod
    def defaults(cls, t: Tunables) -> dict[str, Any]:
        return {"n": t.samples_n, "temperature": t.sample_temperature, "judge_model": t.judge_model}


@dataclass(frozen=True)
class _Candidate:
    index: int
    answer: MemberResult | None
    score: float | None = None
    judge_call: MemberResult | None = None


class BestOfNStrategy(Strategy[BestOfNConfig]):
    """N candidates, each scored as it arrives; the best one wins.

    Detail: {kind, n, scorer, judge, candidates [{index, call, model, answer, score, judge_call}],
    best (candidate index), early_stop {stopped, cancelled}, budget}."""

    name: ClassVar[str] = "best-of-n"

    async def answer(self, ctx: ExecContext) -> Answer | None:
        cfg = self.config
        scorer = Scorer.build(ctx, cfg.scorer, cfg.judge_model, cfg.expected)
        models = ctx.chosen
        spare = list(ctx.fallbacks)

        async def candidate(i: int) -> _Candidate:
            spec = models[i % len(models)]
            got = await with_fallback(ctx, spec, spare, role=f"candidate {i + 1}",
                                      temperature=cfg.temperature, sample=i // len(models))
            if got is None or not got.ok:
                return _Candidate(i, got)
            scored = await scorer.score(ctx, got.answer or "", role=f"judge {i + 1}")
            return _Candidate(i, got, scored.score, scored.judge_call)

        def good_enough(done: list[_Candidate]) -> bool:
            return cfg.early_stop and any(c.score is not None and c.score >= cfg.stop_score for c in done)

        done, cancelled = await race([candidate(i) for i in range(cfg.n)], good_enough)
        done.sort(key=lambda c: c.index)
        ok = [c for c in done if c.answer is not None and c.answer.ok]
        if not ok:
            return None
        best = self._pick(ok)
        return Answer(best.answer.answer or "" if best.answer else "", best.score, {
            "n": cfg.n, "scorer": scorer.kind,
            "judge": scorer.judge.id if scorer.judge else None,
            "candidates": [
                {"index": c.index, "call": ctx.index_of(c.answer),
                 "model": c.answer.model if c.answer else None,
                 "answer": c.answer.answer if c.answer else None,
                 "score": c.score, "judge_call": ctx.index_of(c.judge_call)}
                for c in done
            ],
            "best": best.index,
            "early_stop": {"stopped": cancelled > 0, "cancelled": cancelled},
        })

    def _pick(self, ok: list[_Candidate]) -> _Candidate:
        scored = [c for c in ok if c.score is not None]
        if scored:
            return max(scored, key=lambda c: (c.score, -c.index))
        keys = [answer_key(c.answer.answer if c.answer else None, self.config.numeric) for c in ok]
        winner, _ = tally(keys)
        return next((c for c, k in zip(ok, keys, strict=True) if k == winner), ok[0])
