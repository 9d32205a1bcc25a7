"""Complexity analysis: prompt → features → a score in [0, 1], a domain, and a readable breakdown.

The score is a transparent weighted sum, not a learned model: users tune routing thresholds against
it, so every point of it must be explainable in the breakdown. Domain is the nearest set of prototype
sentences in MiniLM embedding space.

The domain is read from the *fast* int8 graph (`Embedder.embed_fast`, ~2 ms instead of ~6 ms for a
prompt): picking the nearest prototype needs a vector close to the exact one, not one exact enough
to decide a cache hit. Prototypes and prompts are embedded by the same graph, so they compare in one
space. The semantic cache still decides hits on exact vectors.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict

import numpy as np

from .embeddings import Embedder
from .limits import word_tokens
from .types import Analysis

# A few prototypes per domain; the domain is the one whose best prototype is most similar.
DOMAIN_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "code": (
        "Write a Python function that parses a CSV file.",
        "Why does this JavaScript code throw a TypeError?",
        "Implement a binary search tree in Rust with insert and delete.",
        "Fix the bug in this SQL query.",
        "Refactor this class to use dependency injection.",
        "Write a function that merges two sorted lists.",
        "How do I reverse a linked list in Java?",
    ),
    "math": (
        "Solve for x: 3x + 7 = 22.",
        "What is the integral of x squared?",
        "Prove that the square root of 2 is irrational.",
        "A train travels 60 km in 45 minutes. What is its speed?",
        "Compute the probability of rolling two sixes.",
    ),
    "reasoning": (
        "Compare the trade-offs between these two architectures and recommend one.",
        "If all bloops are razzies and some razzies are lazzies, what follows?",
        "Plan a three-step strategy to reduce customer churn and justify each step.",
        "Analyze the causes of the 2008 financial crisis.",
        "Which option is better under these constraints, and why?",
    ),
    "creative": (
        "Write a short poem about the sea.",
        "Tell me a story about a dragon who loves books.",
        "Write a product description for a new coffee mug.",
        "Compose a haiku about autumn.",
    ),
    "factual": (
        "What is the capital of France?",
        "Who wrote Pride and Prejudice?",
        "Name three primary colors.",
        "When did World War II end?",
        "How many legs does a spider have?",
    ),
    "chat": (
        "Hello, how are you today?",
        "Thanks, that was helpful!",
        "Can you help me with something?",
        "Good morning!",
    ),
}

# The registry capability tag a model needs to serve a domain well.
DOMAIN_CAPABILITY = {
    "code": "code",
    "math": "math",
    "reasoning": "reasoning",
    "creative": "chat",
    "factual": "chat",
    "chat": "chat",
}

_REASONING = re.compile(
    r"\b(why|explain|prove|derive|justify|compare|contrast|analy[sz]e|evaluate|reason|step[- ]by[- ]step"
    r"|trade-?offs?|implications?|design|plan|strategy|critique|infer|deduce|what follows)\b",
    re.I,
)
_CONSTRAINT = re.compile(
    r"\b(must|must not|exactly|at least|at most|no more than|without|only|do not|don't|never|always"
    r"|in \d+ words|format|json|table|bullet|cite|constraint|requirement)\b",
    re.I,
)
_CODE = re.compile(
    r"```|\bdef |\bclass |\bfunction\b|\breturn\b|=>|#include|\bimport \w|\bSELECT\b.*\bFROM\b|[{};]\s*$"
    r"|\b(python|javascript|typescript|rust|golang|java|c\+\+|sql|regex|api|bug|compile|stack trace)\b",
    re.I | re.M,
)
_MATH = re.compile(
    r"\d\s*[-+*/^=]\s*\d|\\frac|\\sum|\\int|\$[^$]+\$|\b(solve|equation|integral|derivative|matrix"
    r"|probability|theorem|proof|sqrt|log|sin|cos|percent|ratio)\b",
    re.I,
)

# Weights of the score; they sum to 1 so a prompt that maxes every feature scores 1.
WEIGHTS = {"length": 0.25, "reasoning": 0.25, "constraints": 0.15, "code": 0.15, "math": 0.1, "domain": 0.1}
DOMAIN_DIFFICULTY = {"reasoning": 1.0, "math": 0.9, "code": 0.9, "creative": 0.4, "factual": 0.1, "chat": 0.0}


# Bump when features or weights change: cached analyses are keyed on it. 2: domain from the fast graph.
ANALYSIS_VERSION = 2


def analysis_from_dict(d: dict) -> Analysis:
    return Analysis(
        score=d["score"], domain=d["domain"], tokens=d["tokens"], capability=d["capability"],
        breakdown=tuple(tuple(b) for b in d["breakdown"]),
        domain_scores=tuple(tuple(x) for x in d["domain_scores"]),
    )


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate (~1.3 word pieces per word/punctuation mark): cheap and stable."""
    return max(1, word_tokens(text))


class Analyzer:
    """Prompt → `Analysis` (score, domain, breakdown). Holds the domain prototypes' vectors."""

    def __init__(self, embedder: Embedder, memo_size: int = 4096) -> None:
        self._embedder = embedder
        self._proto: tuple[list[str], np.ndarray] | None = None
        # Domain scores of recent prompts: a repeated prompt skips the embedding pass (the
        # embedder memoises only exact vectors, never these approximate ones).
        self._scores: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()

    def _prototypes(self) -> tuple[list[str], np.ndarray]:
        if self._proto is None:
            labels = [d for d, ps in DOMAIN_PROTOTYPES.items() for _ in ps]
            texts = [p for ps in DOMAIN_PROTOTYPES.values() for p in ps]
            self._proto = (labels, self._embedder.embed_fast(texts))
        return self._proto

    def domain_scores(self, text: str) -> dict[str, float]:
        with self._lock:
            if (known := self._scores.get(text)) is not None:
                self._scores.move_to_end(text)
                return dict(known)
        labels, mat = self._prototypes()
        sims = mat @ self._embedder.embed_fast([text])[0]
        best: dict[str, float] = {}
        for label, sim in zip(labels, sims.tolist(), strict=True):
            best[label] = max(best.get(label, -1.0), sim)
        with self._lock:
            self._scores[text] = dict(best)
            while len(self._scores) > self._memo_size:
                self._scores.popitem(last=False)
        return best

    def analyze(self, prompt: str, system: str | None = None) -> Analysis:
        text = prompt if not system else f"{system}\n{prompt}"
        tokens = approx_tokens(text)
        dscores = self.domain_scores(prompt)
        domain = max(dscores, key=dscores.__getitem__)

        n_reason = len(_REASONING.findall(text))
        n_constraint = len(_CONSTRAINT.findall(text))
        has_code = bool(_CODE.search(text))
        has_math = bool(_MATH.search(text))
        # Length saturates: 8 tokens is trivial, ~800 is as long as it gets for routing purposes.
        length = min(1.0, max(0.0, math.log(tokens / 8) / math.log(100))) if tokens > 8 else 0.0
        features = {
            "length": (length, f"{tokens} tokens"),
            "reasoning": (min(1.0, n_reason / 3), f"{n_reason} reasoning marker(s)"),
            "constraints": (min(1.0, n_constraint / 3), f"{n_constraint} constraint marker(s)"),
            "code": (1.0 if has_code else 0.0, "code present" if has_code else "no code"),
            "math": (1.0 if has_math else 0.0, "maths present" if has_math else "no maths"),
            "domain": (DOMAIN_DIFFICULTY[domain], f"domain {domain} (sim {dscores[domain]:.2f})"),
        }
        breakdown = tuple(
            (name, round(WEIGHTS[name] * value, 4), why) for name, (value, why) in features.items()
        )
        score = min(1.0, max(0.0, sum(c for _, c, _ in breakdown)))
        return Analysis(
            score=round(score, 4),
            domain=domain,
            tokens=tokens,
            capability=DOMAIN_CAPABILITY[domain],
            breakdown=breakdown,
            domain_scores=tuple(sorted(((d, round(s, 4)) for d, s in dscores.items()), key=lambda x: -x[1])),
        )
