"""The records of verification: the config it reads, what one check says, what the verifier decides."""

from __future__ import annotations

from dataclasses import dataclass

REJECT = 1.01  # the similarity a pair "needs" when it is rejected outright: no cosine reaches it


@dataclass(frozen=True)
class VerifyConfig:
    """Every threshold that changes a cache decision (mapped from the tunables in `levels.verify_config`)."""

    threshold: float = 0.85  # a broad rewording needs this similarity
    floor: float = 0.40  # the same meaningful words (typos matched), differently worded
    focused_threshold: float = 0.90  # one or two content words substituted
    qualifier_threshold: float = 0.90  # one or two content words added on one side only
    history_threshold: float = 0.70  # earlier turns of a conversation, compared as one text
    rewrite_threshold: float = 0.62  # a full rewrite that keeps little of the wording
    # A focused substitution below `focused_threshold` is still served from `context_floor` when the
    # swapped words' states in their sentences agree to `context_threshold` (tests/test_cache_context.py).
    context_floor: float = 0.80
    context_threshold: float = 0.60
    # A focused substitution of words WordNet gives as the same (synonyms, inflections, derivations).
    synonym_threshold: float = 0.70
    # The same content words in another order need evidence the relation is symmetric.
    check_word_order: bool = True
    role_span: int = 3  # at most this many words between two words whose roles a relation assigns
    # Share of the longer text's words the other keeps in order: below it the pair is a rewrite.
    rewrite_frame: float = 0.5


@dataclass(frozen=True)
class Opinion:
    """What one check says about a pair: reject it outright, or require a similarity (with why)."""

    reason: str
    required: float = REJECT

    @property
    def rejects(self) -> bool:
        return self.required >= REJECT


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    required: float  # the similarity this pair needed (REJECT when rejected outright)
    check: str = ""  # the check that decided (its function name), for `cache-eval --details`


def reject(reason: str) -> Opinion:
    return Opinion(reason, REJECT)


def require(similarity: float, reason: str) -> Opinion:
    return Opinion(reason, similarity)
