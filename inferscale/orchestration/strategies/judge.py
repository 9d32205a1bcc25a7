"""Scoring answers in [0, 1]: a judge model with a rubric, the exact-answer check, or the request's
verifier (which checks a candidate without knowing the expected answer).

The judge is asked for one integer from 0 to 10; `parse_score` reads the first number it wrote
("8", "Score: 8/10", "0.8"). A judge that writes no number gives no score (None), which ranks
below every scored answer — small models often do this, and a made-up number would be worse.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Literal

from ...errors import ConfigError
from ...registry import ModelSpec
from ...types import MemberResult, Message
from .answers import matches
from .base import ExecContext, strongest

RUBRIC = (
    "You are a strict grader. Rate the RESPONSE to the QUESTION from 0 to 10.\n"
    "10 = correct, complete and clear; 5 = partly correct or vague; 0 = wrong, off-topic or empty.\n"
    "Judge correctness first. Reply with a single integer from 0 to 10 and nothing else."
)
_SCORE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*(/\s*10|out of 10)?")

ScorerName = Literal["judge", "exact", "verifier"]


def judge_messages(question: str, answer: str) -> list[Message]:
    return [
        {"role": "system", "content": RUBRIC},
        {"role": "user", "content": f"QUESTION:\n{question}\n\nRESPONSE:\n{answer}\n\nScore (0-10):"},
    ]


def parse_score(text: str | None) -> float | None:
    """A judge's reply → score in [0, 1], or None if it holds no usable number."""
    if not text:
        return None
    m = _SCORE.search(text)
    if m is None:
        return None
    value = float(m.group(1))
    if m.group(2) is None and "." in m.group(1) and value <= 1.0:
        return value  # already on a 0-1 scale
    return value / 10 if 0 <= value <= 10 else None


@dataclass(frozen=True)
class Scored:
    score: float | None
    judge_call: MemberResult | None = None  # None for the exact verifier


@dataclass(frozen=True)
class Scorer:
    """Scores one answer. `exact` needs `expected`; `judge` needs a judge model."""

    kind: ScorerName
    judge: ModelSpec | None = None
    expected: str | None = None

    @classmethod
    def build(cls, ctx: ExecContext, kind: ScorerName, judge_model: str, expected: str | None) -> Scorer:
        if kind == "exact":
            if expected is None:
                raise ConfigError("scorer 'exact' needs the option expected=<answer>")
            return cls("exact", expected=expected)
        if kind == "verifier":
            if ctx.verifier is None:
                raise ConfigError("scorer 'verifier' needs a verifier for this request "
                                  "(e.g. inferscale eval … --verifier auto)")
            return cls("verifier")
        return cls("judge", judge=strongest(ctx.pool, judge_model, ctx.specs))

    async def score(self, ctx: ExecContext, answer: str, role: str) -> Scored:
        if self.kind == "exact":
            return Scored(1.0 if matches(answer, self.expected or "") else 0.0)
        if self.kind == "verifier":
            assert ctx.verifier is not None
            # A verifier may run a candidate program or a solver: keep it off the event loop.
            value = await asyncio.to_thread(ctx.verifier, answer)
            return Scored(min(1.0, max(0.0, float(value))) if value == value else 0.0)
        assert self.judge is not None
        call = await ctx.invoke(self.judge, role=role, messages=judge_messages(ctx.question, answer),
                                temperature=0.0)
        return Scored(parse_score(call.answer) if call is not None and call.ok else None, call)
