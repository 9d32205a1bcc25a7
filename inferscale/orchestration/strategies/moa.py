"""`moa` (Mixture-of-Agents, Wang et al. 2024): the routed models propose answers in parallel; in
each further layer they see the previous layer's answers and propose again; an aggregator model
synthesises the last layer into the final answer.

If every proposer of a layer gives the same normalised answer, consensus is reached: the remaining
layers and the aggregator are skipped. A failing proposer is replaced by an unused fallback; a
failing aggregator by the next model; if no aggregator answers, the proposal the others agree with
most is returned, so proposers' answers are never lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

from ...settings import Tunables, like_tunable
from ...types import MemberResult, Message
from .answers import answer_key, consensus
from .base import Answer, ExecContext, Strategy, StrategyConfig, strongest, with_fallback

AGGREGATE = (
    "You have been provided with a set of responses from various models to the latest user query. "
    "Synthesize them into a single, high-quality response. Critically evaluate the information: "
    "some of it may be biased or incorrect. Do not simply replicate the given answers; offer a "
    "refined, accurate and comprehensive reply.\n\nResponses from models:"
)


def synth_messages(conversation: Sequence[Message], responses: Sequence[str]) -> list[Message]:
    """The conversation with the responses to synthesise added to its system message."""
    listed = "\n".join(f"{i}. {r}" for i, r in enumerate(responses, start=1))
    system = " ".join(m["content"] for m in conversation if m["role"] == "system").strip()
    prompt = (system + "\n\n" if system else "") + f"{AGGREGATE}\n{listed}"
    return [{"role": "system", "content": prompt}, *(m for m in conversation if m["role"] != "system")]


class MoAConfig(StrategyConfig):
    layers: int = like_tunable("moa_layers")  # proposer layers before the aggregator
    aggregator: str = ""  # model id; "" = the strongest available model
    early_stop: bool = True  # skip the rest when a layer's proposers all agree
    numeric: bool = True

    @classmethod
    def defaults(cls, t: Tunables) -> dict[str, Any]:
        return {"layers": t.moa_layers, "aggregator": t.judge_model}


class MoAStrategy(Strategy[MoAConfig]):
    """Proposers answer in layers; an aggregator synthesises the last layer.

    Detail: {kind, layers [[{call, model, ok}]], aggregator {call, model, ok} | null,
    consensus_skip, budget}."""

    name: ClassVar[str] = "moa"

    async def answer(self, ctx: ExecContext) -> Answer | None:
        cfg = self.config
        aggregator = strongest(ctx.pool, cfg.aggregator, ctx.specs)
        layers: list[list[MemberResult]] = []
        proposals: list[MemberResult] = []
        agreed = False
        for level in range(1, cfg.layers + 1):
            msgs = synth_messages(ctx.messages, [m.answer or "" for m in proposals]) if proposals else None
            spare = list(ctx.fallbacks)
            got = await asyncio.gather(*(
                with_fallback(ctx, spec, spare, role=f"proposer L{level}", messages=msgs)
                for spec in ctx.chosen
            ))
            layer = [m for m in got if m is not None and m.ok]
            layers.append([m for m in ctx.members if m.role == f"proposer L{level}"])
            if not layer:
                break  # keep the previous layer's proposals
            proposals = layer
            keys = {answer_key(m.answer, cfg.numeric) for m in layer}
            if cfg.early_stop and len(layer) > 1 and len(keys) == 1:
                agreed = True
                break
        if not proposals:
            return None
        final = None
        if not agreed and len(proposals) > 1:
            order = [aggregator, *(s for s in ctx.pool if s.id != aggregator.id)]
            final = await with_fallback(ctx, order[0], order[1:], role="aggregator",
                                        messages=synth_messages(ctx.messages,
                                                                [m.answer or "" for m in proposals]))
        if final is not None and final.ok:
            answer, confidence = final.answer or "", None
        else:
            best, confidence, _ = await asyncio.to_thread(
                consensus, [m.answer or "" for m in proposals], ctx.embedder)
            answer = proposals[best].answer or ""
        return Answer(answer, confidence, {
            "layers": [[{"call": ctx.index_of(m), "model": m.model, "ok": m.ok} for m in layer]
                       for layer in layers],
            "aggregator": None if final is None else
            {"call": ctx.index_of(final), "model": final.model, "ok": final.ok},
            "consensus_skip": agreed,
        })
