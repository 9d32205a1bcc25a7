"""`self-consistency` (Wang et al. 2022): N samples of one model at temperature T; the majority over
normalised answers wins (final number for maths); confidence = the winner's vote share.

Samples stop as soon as the majority is settled (the leader cannot be caught by the remaining
samples); the stragglers are cancelled. If the model fails every sample, the next routed model
takes over with the samples that are left.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ...settings import Tunables, like_tunable
from ...types import MemberResult
from .answers import answer_key, majority_settled, tally
from .base import Answer, ExecContext, Strategy, StrategyConfig, race


class SelfConsistencyConfig(StrategyConfig):
    n: int = like_tunable("samples_n")
    temperature: float = like_tunable("sample_temperature")
    numeric: bool = True
    early_stop: bool = True

    @classmethod
    def defaults(cls, t: Tunables) -> dict[str, Any]:
        return {"n": t.samples_n, "temperature": t.sample_temperature}


class SelfConsistencyStrategy(Strategy[SelfConsistencyConfig]):
    """N samples of one model; the majority answer wins.

    Detail: {kind, model, n, temperature, samples [{call, model, key, error}], votes {key: count},
    winner, vote_share, early_stop {stopped, cancelled}, budget}."""

    name: ClassVar[str] = "self-consistency"

    async def answer(self, ctx: ExecContext) -> Answer | None:
        cfg = self.config
        samples: list[MemberResult] = []
        cancelled = 0
        next_index = 0
        for spec in ctx.pool:
            need = cfg.n - len([s for s in samples if s.ok])
            if need <= 0 or ctx.budget.exhausted:
                break
            start, next_index = next_index, next_index + need

            def settled(done: list[MemberResult | None], left: int = need,
                        before: tuple[MemberResult, ...] = tuple(samples)) -> bool:
                finished = [m for m in done if m is not None]
                keys = [answer_key(m.answer, cfg.numeric) for m in (*before, *finished) if m.ok]
                return cfg.early_stop and majority_settled(tally(keys)[1], left - len(done))

            got, cancelled = await race(
                [ctx.invoke(spec, role=f"sample {i + 1}", temperature=cfg.temperature, sample=i)
                 for i in range(start, start + need)],
                settled,
            )
            samples += [m for m in got if m is not None]
            if cancelled or any(m.ok for m in samples):
                break  # a model that answered keeps the vote; fall back only when it failed outright
        ok = [m for m in samples if m.ok]
        if not ok:
            return None
        keys = [answer_key(m.answer, cfg.numeric) for m in ok]
        winner, votes = tally(keys)
        share = votes[winner] / len(ok) if winner is not None else None
        chosen = next((m for m, k in zip(ok, keys, strict=True) if k == winner), ok[0])
        return Answer(chosen.answer or "", share, {
            "model": chosen.model, "n": cfg.n, "temperature": cfg.temperature,
            "samples": [
                {"call": i, "model": m.model,
                 "key": answer_key(m.answer, cfg.numeric) if m.ok else None, "error": m.error}
                for i, m in enumerate(ctx.members)
            ],
            "votes": dict(votes.most_common()), "winner": winner, "vote_share": share,
            "early_stop": {"stopped": cancelled > 0, "cancelled": cancelled},
        })
