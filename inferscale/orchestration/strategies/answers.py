"""Answer comparison shared by the strategies, batch accuracy and the benchmarks: normalisation,
votes, agreement between two answers and the consensus of several.

`answer_key` turns a free-text answer into something votes can be counted on: the final number for
maths ("#### 42", "the answer is 42", "\\boxed{42}", else the last number), otherwise the text
lower-cased without punctuation, articles or extra spaces (SQuAD-style).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ...embeddings import Embedder

_NUM = r"-?\d[\d,]*(?:\.\d+)?"
_MARKED = [
    re.compile(r"####\s*\$?\s*(" + _NUM + ")"),
    re.compile(r"\\boxed\{\s*\$?(" + _NUM + r")\s*\}"),
    re.compile(r"answer\s*(?:is|:|=)\s*\**\$?\s*(" + _NUM + ")", re.IGNORECASE),
]
_ANY_NUM = re.compile(_NUM)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PREFIX = re.compile(r"^\s*(the\s+)?(final\s+)?answer\s*(is|:)\s*", re.IGNORECASE)


def canonical_number(raw: str) -> str | None:
    """'1,234.50' -> '1234.5'; '7.0' -> '7'; None if it is not a number."""
    try:
        value = float(raw.replace(",", "").rstrip("."))
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return str(int(value)) if value == int(value) else f"{value:g}"


def extract_number(text: str) -> str | None:
    """The final numeric answer in `text`: an explicitly marked one first, else the last number."""
    for pattern in _MARKED:
        found = pattern.findall(text)
        if found:
            return canonical_number(found[-1])
    found = _ANY_NUM.findall(text)
    return canonical_number(found[-1]) if found else None


def normalize_text(text: str) -> str:
    text = _PREFIX.sub("", text.strip()).lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_key(text: str | None, numeric: bool = True) -> str | None:
    """The vote key of an answer: '#<number>' for a numeric answer, else normalised text."""
    if text is None or not text.strip():
        return None
    if numeric and (n := extract_number(text)) is not None:
        return f"#{n}"
    return normalize_text(text) or None


def tally(keys: Sequence[str | None]) -> tuple[str | None, Counter[str]]:
    """The majority key (the earliest seen wins a tie) and the vote counts."""
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return None, votes
    top = max(votes.values())
    winner = next(k for k in keys if k is not None and votes[k] == top)
    return winner, votes


def majority_settled(votes: Counter[str], remaining: int) -> bool:
    """True once the leader cannot be caught even if every remaining vote goes to the runner-up."""
    if not votes:
        return False
    ranked = votes.most_common(2)
    second = ranked[1][1] if len(ranked) > 1 else 0
    return ranked[0][1] > second + remaining


def agreement(a: str, b: str, embedder: Embedder, numeric: bool = True) -> float:
    """How much two answers agree, in [0, 1]: 1 for the same key, 0 for different numbers,
    else the cosine similarity of their embeddings."""
    ka, kb = answer_key(a, numeric), answer_key(b, numeric)
    if ka is not None and ka == kb:
        return 1.0
    if ka and kb and ka.startswith("#") and kb.startswith("#"):
        return 0.0
    vecs = embedder.embed([a, b])
    return float(np.clip(vecs[0] @ vecs[1], 0.0, 1.0))


def consensus(answers: list[str], embedder: Embedder) -> tuple[int, float | None, list[float]]:
    """Index of the most agreed-with answer, its agreement in [0, 1] (None for a lone answer),
    and every answer's agreement score (mean cosine similarity to the others)."""
    if len(answers) == 1:
        return 0, None, [1.0]
    if len(set(answers)) == 1:  # unanimous: nothing to embed
        return 0, 1.0, [1.0] * len(answers)
    vecs = embedder.embed(answers)
    sims = np.clip(vecs @ vecs.T, 0.0, 1.0)
    np.fill_diagonal(sims, 0.0)
    scores = (sims.sum(axis=1) / (len(answers) - 1)).tolist()
    best = int(np.argmax(scores))
    return best, float(scores[best]), [float(a) for a in scores]


def matches(answer: str | None, expected: str | float | int) -> bool:
    """Exact-answer check: numbers compare numerically, text after normalisation (a normalised
    expected answer standing as whole words inside the answer also counts)."""
    if answer is None:
        return False
    exp = str(expected).strip()
    if (num := canonical_number(exp)) is not None:
        return extract_number(answer) == num
    want, got = normalize_text(exp), normalize_text(answer)
    if not want:
        return False
    return got == want or f" {want} " in f" {got} "
