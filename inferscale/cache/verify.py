"""Verification of a semantic-cache candidate: does the cached answer fit the new prompt?

Embedding similarity says two prompts are *about* the same thing; it cannot see that they ask
different things ("parcel 70512" / "parcel 70521", "safe" / "unsafe", "from savings to current" /
"from current to savings"). `verify` runs the checks of `checks.CHECKS` over the two texts in order:

1. any check may reject outright (numbers, dates or IDs; opposite words; roles swapped; a name on each
   side; in an edit, a negation or an operator on one side only);
2. the others may each require a similarity, with a reason; the pair needs the highest of them, and
   the last check (`edit_shape`) always sets one from the shape of the edit;
3. the verdict names the check that decided, and says why.

A chat is compared by `chat.decide`, a layer above this one.
"""

from __future__ import annotations

from .checks import CHECKS, Comparison, SpanSimilarity, compare, frame
from .lexicon import Lexicon, default_lexicon
from .textdiff import Profile, profile
from .verdict import REJECT, Opinion, Verdict, VerifyConfig, reject, require

__all__ = ["REJECT", "Comparison", "Opinion", "SpanSimilarity", "Verdict", "VerifyConfig", "compose",
           "frame", "reject", "require", "verify"]


def compose(c: Comparison) -> Verdict:
    """Run every check on one comparison: the first rejection decides; otherwise the pair needs the
    highest similarity any check requires."""
    required: list[tuple[str, Opinion]] = []
    for check in CHECKS:
        op = check(c)
        if op is None:
            continue
        if op.rejects:
            return Verdict(False, op.reason, REJECT, check.__name__)
        required.append((check.__name__, op))
    *raises, (shape_name, shape) = required  # `edit_shape` runs last and always has an opinion
    name, top = max(required, key=lambda t: t[1].required)
    reason = shape.reason
    if raises:
        reason = f"{reason}, {'; '.join(op.reason for _, op in raises)}"
    if not raises or top.required <= shape.required:
        name = shape_name
    need = top.required
    if c.similarity >= need:
        return Verdict(True, f"{reason}, similarity {c.similarity:.3f} >= {need:.2f}", need, name)
    return Verdict(False, f"{reason}, similarity {c.similarity:.3f} < {need:.2f}", need, name)


def verify(a: str | Profile, b: str | Profile, similarity: float,
           config: VerifyConfig = VerifyConfig(),  # noqa: B008 - frozen, immutable
           conflicts_only: bool = False, whole_chat: bool = False,
           context: SpanSimilarity | None = None, lexicon: Lexicon | None = None) -> Verdict:
    """Decide whether the answer cached for `a` may be served for `b`, given their cosine.

    `conflicts_only` is for earlier turns of a chat, where one side may add small talk: a number or
    name then only counts when *both* sides have one the other lacks (a changed value), and
    negations and operators are left to the last turns. `whole_chat` compares all earlier turns as
    one text: names are left to the turn-by-turn comparison. `context`, when given, lets a focused
    substitution of words that mean the same in their sentences pass below `focused_threshold`.
    `lexicon` defaults to the one in the configured models directory (`lexicon.default_lexicon`)."""
    pa = a if isinstance(a, Profile) else profile(a)
    pb = b if isinstance(b, Profile) else profile(b)
    return compose(compare(pa, pb, similarity, config, lexicon=lexicon or default_lexicon(),
                           conflicts_only=conflicts_only, whole_chat=whole_chat, context=context))
