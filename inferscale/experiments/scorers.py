"""Scorers: a registry `name → class`; each compares one candidate with the item's expected answer
and returns a score in [0, 1] and a short reason.

Which scorer an item gets (`resolve`): the item's own `scorer`, else `--scorer`, else the dataset's
own, else `numeric` when `expected` is a number and `normalized` otherwise.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import InferscaleError
from ..orchestration.strategies.answers import canonical_number, extract_number, normalize_text
from .datasets import Item


class ScorerError(InferscaleError):
    """An unknown scorer, or an item the scorer cannot score (e.g. no expected answer)."""


@dataclass(frozen=True)
class Score:
    score: float
    reason: str
    calls: int = 0  # model calls the scorer made (judge)
    cost_usd: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0):
            raise ValueError(f"score {self.score} outside [0, 1]")

    @property
    def correct(self) -> bool:
        return self.score >= 0.5


class Scorer:
    name: ClassVar[str] = ""
    needs_expected: ClassVar[bool] = True

    def __init__(self, engine: Any = None, option: str = "") -> None:
        self.engine = engine
        self.option = option

    def score(self, answer: str, item: Item) -> Score:
        raise NotImplementedError

    async def ascore(self, answer: str, item: Item) -> Score:
        return self.score(answer, item)


def _yes(ok: bool, why_yes: str, why_no: str) -> Score:
    return Score(1.0 if ok else 0.0, why_yes if ok else why_no)


class ExactScorer(Scorer):
    name = "exact"

    def score(self, answer: str, item: Item) -> Score:
        return _yes(answer.strip() == (item.expected or "").strip(), "exact match", "differs")


class NormalizedScorer(Scorer):
    """Case, whitespace, punctuation and articles ignored."""

    name = "normalized"

    def score(self, answer: str, item: Item) -> Score:
        a, e = normalize_text(answer), normalize_text(item.expected or "")
        return _yes(bool(e) and a == e, "match after normalising", f"normalised {a[:40]!r} != {e[:40]!r}")


class NumericScorer(Scorer):
    """The final number of the answer equals the expected number within a tolerance
    (`numeric:0.01` = relative 1%; default 1e-6)."""

    name = "numeric"

    def score(self, answer: str, item: Item) -> Score:
        want = canonical_number(item.expected or "") or extract_number(item.expected or "")
        got = extract_number(answer)
        if want is None:
            raise ScorerError(f"item {item.id}: expected {item.expected!r} is not a number")
        if got is None:
            return Score(0.0, "no number in the answer")
        tol = float(self.option) if self.option else 1e-6
        a, b = float(got), float(want)
        return _yes(math.isclose(a, b, rel_tol=tol, abs_tol=tol), f"{got} == {want}", f"{got} != {want}")


class NumbersScorer(Scorer):
    """Every number of the answer, in order, equals the expected list (a sorted list, a sequence)."""

    name = "numbers"
    _NUM = re.compile(r"-?\d+(?:\.\d+)?")

    def score(self, answer: str, item: Item) -> Score:
        got = [float(x) for x in self._NUM.findall(answer)]
        want = [float(x) for x in self._NUM.findall(item.expected or "")]
        return _yes(bool(want) and got == want, "same numbers in order", f"{len(got)} number(s), differ")


class ChoiceScorer(Scorer):
    """A multiple-choice letter A–E: the marked one ("answer: C", "(C)"), else a lone letter."""

    name = "choice"
    _MARKED = re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-E])\b", re.IGNORECASE)
    _LONE = re.compile(r"(?<![A-Za-z])\(?([A-E])\)?(?![A-Za-z])")

    def score(self, answer: str, item: Item) -> Score:
        want = (item.expected or "").strip().strip("()").upper()[:1]
        m = self._MARKED.search(answer) or self._LONE.search(answer)
        got = m.group(1).upper() if m else None
        if got is None:
            return Score(0.0, "no choice letter in the answer")
        return _yes(got == want, f"chose {got}", f"chose {got}, expected {want}")


class RegexScorer(Scorer):
    """`expected` is a regular expression searched in the answer (case-insensitive)."""

    name = "regex"

    def score(self, answer: str, item: Item) -> Score:
        try:
            found = re.search(item.expected or "", answer, re.IGNORECASE | re.DOTALL)
        except re.error as exc:
            raise ScorerError(f"item {item.id}: expected is not a valid regex ({exc})") from None
        return _yes(found is not None, "pattern found", "pattern not found")


class ContainsScorer(Scorer):
    name = "contains"

    def score(self, answer: str, item: Item) -> Score:
        e = " ".join((item.expected or "").lower().split())
        return _yes(bool(e) and e in " ".join(answer.lower().split()), "contains the expected text",
                    "expected text absent")


class CodeScorer(Scorer):
    """Runs the candidate program with the item's tests in the sandbox: 1 if every test passes."""

    name = "code"

    def score(self, answer: str, item: Item) -> Score:
        from .code import run_tests

        ok, reason = run_tests(answer, item)
        return Score(1.0 if ok else 0.0, reason)

    async def ascore(self, answer: str, item: Item) -> Score:
        return await asyncio.to_thread(self.score, answer, item)  # a subprocess: off the loop


class ArcGridScorer(Scorer):
    """The candidate's output grid for the test input equals the expected grid, cell for cell. A
    candidate is a `transform(grid)` program (run in the sandbox) or a grid written out."""

    name = "arc-grid"

    def score(self, answer: str, item: Item) -> Score:
        from .arc import score_test

        ok, reason = score_test(answer, item)
        return Score(1.0 if ok else 0.0, reason)

    async def ascore(self, answer: str, item: Item) -> Score:
        return await asyncio.to_thread(self.score, answer, item)


class JudgeScorer(Scorer):
    """A registry model grades the answer 0–10 against a rubric (`judge:MODEL` picks the model;
    default: the tunables' judge model, else the strongest available). Its calls and cost are
    counted in the experiment."""

    name = "judge"
    needs_expected = False
    RUBRIC = ("You grade answers. Question:\n{q}\n\n{ref}Answer to grade:\n{a}\n\nScore it from 0 "
              "(wrong or off-topic) to 10 (correct and complete). Reply with the number only.")

    def judge_model(self) -> str:
        if self.option:
            return self.option
        tun = self.engine.tunables()
        if tun.judge_model:
            return tun.judge_model
        specs = sorted(self.engine.registry.available(), key=lambda s: -s.quality_prior)
        if not specs:
            raise ScorerError("the judge scorer needs an available model")
        return specs[0].id

    def score(self, answer: str, item: Item) -> Score:
        raise ScorerError("the judge scorer is async only")

    async def ascore(self, answer: str, item: Item) -> Score:
        from ..types import CacheControl

        ref = f"Reference answer:\n{item.expected}\n\n" if item.expected else ""
        r = await self.engine.aask(self.RUBRIC.format(q=item.prompt, ref=ref, a=answer),
                                   strategy="single", models=[self.judge_model()],
                                   cache=CacheControl(namespace="experiment-judge"), source="experiment")
        cost = sum(m.cost_usd for m in r.members)
        got = extract_number(r.answer)
        if got is None:
            return Score(0.0, "judge gave no score", len(r.members), cost)
        value = min(10.0, max(0.0, float(got))) / 10
        return Score(value, f"judge {got}/10", len(r.members), cost)


SCORERS: dict[str, type[Scorer]] = {
    s.name: s for s in (ExactScorer, NormalizedScorer, NumericScorer, NumbersScorer, ChoiceScorer,
                        RegexScorer, ContainsScorer, CodeScorer, ArcGridScorer, JudgeScorer)
}


def check_name(name: str) -> str:
    base = name.split(":", 1)[0]
    if base not in SCORERS:
        raise ScorerError(f"unknown scorer {name!r}: choose one of {', '.join(SCORERS)}")
    return name


def resolve(item: Item, cli_scorer: str | None) -> str:
    """The scorer name for this item (see the module docstring)."""
    if item.scorer:
        return item.scorer
    if cli_scorer:
        return cli_scorer
    if item.default_scorer:
        return item.default_scorer
    return "numeric" if item.expected is not None and canonical_number(item.expected) else "normalized"


def build(name: str, engine: Any = None) -> Scorer:
    base, _, option = check_name(name).partition(":")
    return SCORERS[base](engine, option)


def validate(items: Any, cli_scorer: str | None, where: str) -> None:
    """Every item has a known scorer and what that scorer needs; the error names the item's line."""
    for item in items:
        name = resolve(item, cli_scorer)
        at = f"{where} line {item.line}" if item.line else f"{where} item {item.id}"
        base = name.split(":", 1)[0]
        if base not in SCORERS:
            field = "field \"scorer\": " if item.scorer else ""
            raise ScorerError(f"{at}: {field}unknown scorer {name!r} (choose one of {', '.join(SCORERS)})")
        cls = SCORERS[base]
        has_tests = bool(item.payload.get("tests") or item.payload.get("test_input") is not None)
        if cls.needs_expected and item.expected is None and not has_tests:
            raise ScorerError(f"{at}: field \"expected\" is missing and scorer {name!r} needs it")
        if base == "numeric" and item.expected is not None and extract_number(item.expected) is None:
            raise ScorerError(f"{at}: field \"expected\": {item.expected!r} is not a number (scorer numeric)")
