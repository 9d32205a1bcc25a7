"""The optional judge of L1's borderline band: a remote model asked whether one answer serves both.

Verification rejects some candidates outright (another number, an antonym, roles exchanged) and
requires a similarity of the others. A candidate that is not rejected but falls short only on
similarity, and is at least `floor` similar, is *borderline*: when a judge is configured
(`semantic_judge_model`, off by default), the best borderline candidate of a lookup is shown to it
with both requests, and only a plain "yes" serves it. "no", an answer that is neither, an error or
a timeout is a miss: a failing judge never turns a miss into a hit.

The cache does not call models itself (it sits below the providers): the engine hands in `ask`,
which sends the judge's messages to the model and returns the call's record (cost, tokens, error),
so the call is logged with the request like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..errors import InferscaleError
from ..redact import clip
from ..types import MemberResult, Message
from .exact import cache_key
from .scope import TURN_SEP
from .turns import Candidate
from .verdict import REJECT, Verdict, VerifyConfig

log = logging.getLogger(__name__)

Ask = Callable[[list[Message]], MemberResult]  # the judge's messages -> the call's record; never raises

INSTRUCTION = (
    "You decide whether a cached answer may be reused. Two requests follow, each with the "
    "conversation before it, if any. Would one answer serve both requests equally well: do they ask "
    "for the same thing, with the same facts, numbers, names and conditions? Answer with one word: "
    "yes or no."
)
CHARS = 4000  # of each side's earlier turns, the most recent part is shown (the last message in full)


@dataclass(frozen=True)
class JudgeCall:
    """What the judge said about one candidate, and the model call it cost (None if none was made)."""

    model: str
    confirmed: bool
    reason: str
    call: MemberResult | None

    @property
    def cost_usd(self) -> float:
        return self.call.cost_usd if self.call is not None else 0.0


@dataclass(frozen=True)
class Judge:
    """A configured judge: its registry id, how to ask it, and the lowest similarity it is asked at."""

    model: str
    ask: Ask
    floor: float = 0.0

    def confirm(self, cached: Candidate, query: Candidate) -> JudgeCall:
        """Ask whether the answer cached for `cached` serves `query`; only "yes" confirms."""
        try:
            result = self.ask(messages(cached, query))
        except Exception as exc:  # noqa: BLE001 - a judge that fails is a miss, never an error
            # Our own errors say what to do (and carry no key); others are named by their class.
            why = f"{type(exc).__name__}: {clip(str(exc), 160)}" if isinstance(exc, InferscaleError) \
                else type(exc).__name__
            log.warning("cache judge %s failed: %s", self.model, why)
            return JudgeCall(self.model, False, f"judge {self.model} failed ({why}): a miss", None)
        if not result.ok:
            return JudgeCall(self.model, False,
                             f"judge {self.model} failed ({result.error_class or 'error'}): a miss", result)
        answer = result.answer or ""
        word = verdict_word(answer)
        again = " (remembered)" if result.cached else ""
        if word == "yes":
            return JudgeCall(self.model, True, f"confirmed by judge {self.model}{again}", result)
        if word == "no":
            return JudgeCall(self.model, False, f"judge {self.model} said no{again}", result)
        return JudgeCall(self.model, False, f"judge {self.model} gave no yes/no answer "
                                            f"({answer[:40]!r}): a miss", result)


def remembering(judge: Judge, scope_key: str, recall: Callable[[str], str | None],
                keep: Callable[[str, MemberResult], None] | None) -> Judge:
    """`judge` with its verdicts kept (by the caller, under the key given): a verdict is a function of
    the two conversations and the model at temperature 0, so a borderline request asked again costs
    no second call. A remembered answer comes back as a cached record (no cost, no call made).
    `keep` None remembers nothing new (a request that may not store)."""

    def ask(msgs: list[Message]) -> MemberResult:
        key = cache_key("L2", kind="cache-judge", model=judge.model, scope=scope_key, messages=msgs)
        if (answer := recall(key)) is not None:
            return MemberResult(model=judge.model, answer=answer, latency_ms=0.0, cached=True, attempts=0)
        result = judge.ask(msgs)
        if keep is not None and result.ok and verdict_word(result.answer or "") is not None:
            keep(key, result)  # failures and non-answers are asked again next time
        return result

    return replace(judge, ask=ask)


def in_band(verdict: Verdict, similarity: float, config: VerifyConfig, judge: Judge | None) -> bool:
    """Whether `judge` may be asked about a candidate: not rejected outright, short only on
    similarity, and at least `semantic_floor` and the judge's own floor similar."""
    return (judge is not None and not verdict.ok and verdict.required < REJECT
            and similarity >= max(config.floor, judge.floor))


def verdict_word(answer: str) -> str | None:
    """"yes" or "no" when the answer is that word (any case, with punctuation around it), else None:
    "Yes." is yes; "yes and no", "maybe" or a sentence are not an answer."""
    words = answer.strip().split()
    if len(words) != 1:
        return None
    word = words[0].strip(".,!?;:\"'`*()[]").lower()
    return word if word in ("yes", "no") else None


def _side(c: Candidate) -> str:
    earlier = c.history[-CHARS:].replace(TURN_SEP, "\n") if c.history else "(none)"
    return f"Conversation before it:\n{earlier}\nRequest:\n{c.last}"


def messages(cached: Candidate, query: Candidate) -> list[Message]:
    """The judge's prompt: the instruction, then both requests with their earlier turns."""
    return [{"role": "system", "content": INSTRUCTION},
            {"role": "user", "content": f"[First]\n{_side(cached)}\n\n[Second]\n{_side(query)}\n\n"
                                        "Would one answer serve both? yes or no:"}]
