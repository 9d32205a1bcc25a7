"""Verification of a semantic-cache candidate: does the cached answer fit the new prompt?

Embedding similarity says two prompts are *about* the same thing; it cannot see that they ask
different things ("order 48213" / "order 48231", "safe" / "unsafe", "from savings to current" /
"from current to savings"). The verifier compares the two texts token by token (see `textdiff`) and

1. rejects outright on a difference that changes the answer whatever the similarity: numbers, dates or
   IDs; an opposite word pair; the same names in swapped roles around from/to; a name on each side
   (after typo matching, and an acronym spelled out on the other side is the same name); and, in an
   edit that keeps half or more of the wording, a negation, an operator such as "stop" or "except",
   or a name on one side only (in a full rewrite those only raise the similarity needed: other
   words often carry them). A negation and a verb that undoes an action on either side cancel out;
2. otherwise sets the similarity the pair needs from the *shape* of what is left: an edit focused on
   one or two content words (a substitution or an added qualifier such as "extended" warranty) must
   be very close (`focused_threshold`), because that is exactly how a trap looks, unless the model
   reads the swapped words alike in their sentences (`context`: "store"/"shop", not
   "puppy"/"kitten"); a pair whose
   meaningful words are the same and only wording or filler differs may be served from the candidate
   floor; a broader rewording needs the configured threshold; a full rewrite, keeping under half of
   the wording in order, is judged by meaning alone (`rewrite_threshold`): traps are edits of a
   question, paraphrases rarely are.
3. in a chat, compares the whole conversation (see `decide`; what a message points back at is in
   `turns`).

The decision comes with its reason, which the cache shows and `cache-eval` counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from difflib import SequenceMatcher

from .textdiff import (
    FRAMING,
    Profile,
    is_flip,
    is_polarity_operator,
    opposite,
    pair_acronyms,
    profile,
    similar_spelling,
    word_spans,
)
from .turns import TURN_SEP, Candidate, bare_reply, stands_alone

Spans = list[tuple[int, int]]
# How alike the marked words of two texts are *in their sentences* (pooled token states of the
# embedding model; `Embedder.span_similarity`), or None when it cannot tell.
SpanSimilarity = Callable[[str, Spans, str, Spans], "float | None"]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    required: float  # the similarity this pair needed (1.01 when rejected outright)


@dataclass(frozen=True)
class VerifyConfig:
    threshold: float = 0.85  # a broad rewording needs this similarity
    floor: float = 0.40  # the same meaningful words (typos matched), differently worded
    focused_threshold: float = 0.90  # one or two content words substituted
    qualifier_threshold: float = 0.90  # one or two content words added on one side only
    history_threshold: float = 0.70  # earlier turns of a conversation, compared as one text
    rewrite_threshold: float = 0.62  # a full rewrite that keeps little of the wording
    # A focused substitution below `focused_threshold` is still served from `context_floor` when the
    # swapped words' states in their sentences agree to `context_threshold` ("store"/"shop" 0.75,
    # "mute"/"silence" 0.77; "puppy"/"kitten" 0.56, "cash"/"card" 0.35; tests/test_cache_context.py).
    context_floor: float = 0.80
    context_threshold: float = 0.60


REJECT = 1.01
# Share of the longer text's words that the other keeps, in order (longest common subsequence).
# Below this the new prompt is a rewrite, judged by meaning; at or above it, it is an edit of the
# cached prompt, and an edit that swaps words is how a trap looks.
REWRITE_FRAME = 0.5
LONG_TEXT = 2000  # = scope.EMBED_CHARS: a last message this long was truncated
REPLY_PARTICLES = frozenset({"yes", "no"})  # "Yes, it's kept" = "No, it's not lost"


def _pair_off(xs: set[str], ys: set[str], match) -> list[tuple[str, str]]:
    pairs = []
    for x in sorted(xs):
        for y in sorted(ys):
            if match(x, y):
                pairs.append((x, y))
                ys.discard(y)
                break
    for x, _ in pairs:
        xs.discard(x)
    return pairs


def frame(pa: Profile, pb: Profile) -> float:
    """How much of the wording survives: matched words in order / words in the longer text."""
    kept = sum(m.size for m in SequenceMatcher(None, pa.tokens, pb.tokens,
                                               autojunk=False).get_matching_blocks())
    return kept / max(len(pa.tokens), len(pb.tokens), 1)


def _reordered_numbers(pa: Profile, pb: Profile) -> tuple[list[str], list[str]] | None:
    """The same numbers in another order ask something else: "is 7 > 3" vs "is 3 > 7"."""
    if pa.numbers != pb.numbers or len(pa.numbers) < 2:
        return None
    seq_a = [t for t in dict.fromkeys(pa.tokens) if t in pa.numbers]
    seq_b = [t for t in dict.fromkeys(pb.tokens) if t in pb.numbers]
    return (seq_a, seq_b) if seq_a != seq_b else None


def _in_context(pa: Profile, pb: Profile, a_only: set[str], b_only: set[str],
                context: SpanSimilarity) -> float | None:
    ta, sa = word_spans(pa.text, frozenset(a_only))
    tb, sb = word_spans(pb.text, frozenset(b_only))
    return context(ta, sa, tb, sb) if sa and sb else None


def _order(tokens: tuple[str, ...], x: str, y: str) -> bool:
    return tokens.index(x) < tokens.index(y)


def verify(a: str | Profile, b: str | Profile, similarity: float,
           config: VerifyConfig = VerifyConfig(),  # noqa: B008 - frozen, immutable
           conflicts_only: bool = False, whole_chat: bool = False,
           context: SpanSimilarity | None = None) -> Verdict:
    """Decide whether the answer cached for `a` may be served for `b`, given their cosine.

    `conflicts_only` is for earlier turns of a chat, where one side may add small talk: a number or
    name then only counts when *both* sides have one the other lacks (a changed value), and
    negations and operators are left to the last turns. `whole_chat` compares all earlier turns as
    one text: names are left to the turn-by-turn comparison. `context`, when given, lets a focused
    substitution of words that mean the same in their sentences pass below `focused_threshold`."""
    pa = a if isinstance(a, Profile) else profile(a)
    pb = b if isinstance(b, Profile) else profile(b)
    differ = pa.numbers != pb.numbers
    if conflicts_only:
        differ = bool(pa.numbers - pb.numbers) and bool(pb.numbers - pa.numbers)
    if differ:
        only_a = sorted(pa.numbers - pb.numbers)
        only_b = sorted(pb.numbers - pa.numbers)
        return Verdict(False, f"numbers differ: {only_a or '-'} vs {only_b or '-'}", REJECT)
    if not conflicts_only and (seqs := _reordered_numbers(pa, pb)):
        return Verdict(False, f"same numbers in another order: {seqs[0]} vs {seqs[1]}", REJECT)
    # A rewrite says the same thing in other words, and other words often carry a negation, an
    # operator or a name the original lacked ("How do I reset my password?" / "I can't remember my
    # password, how do I get back in?"): in a rewrite those do not reject outright, they raise the
    # similarity needed to the configured threshold. An *edit* of the cached prompt that adds one
    # is how a trap looks and still rejects.
    rewrite = frame(pa, pb) < REWRITE_FRAME
    soft: list[tuple[str, float]] = []  # (what, the similarity it requires)
    # Opposites among all words, particles included: "turn on"/"turn off", "opt in"/"opt out".
    # Not across whole chats: two long texts always hold some pair of opposite words.
    ta, tb = (set(), set()) if whole_chat else (set(pa.tokens), set(pb.tokens))
    for x in ta - tb:
        for y in tb - ta:
            if opposite(x, y) and not (conflicts_only and {x, y} <= REPLY_PARTICLES):
                return Verdict(False, f"opposite words: {x!r} vs {y!r}", REJECT)
    a_only = set(pa.content - pb.content)
    b_only = set(pb.content - pa.content)
    _pair_off(a_only, b_only, lambda x, y: similar_spelling(
        x, y, strict=x in pa.entities or y in pb.entities))
    pair_acronyms(pa, pb, a_only, b_only)
    ops = sorted(w for w in a_only | b_only if is_polarity_operator(w))
    # A negation and a verb that undoes an action count together: "How do I stop my plan renewing?"
    # / "I don't want it to renew, how do I switch that off?" flip once each, the same polarity.
    flips_a = pa.negations + sum(map(is_flip, a_only))
    flips_b = pb.negations + sum(map(is_flip, b_only))
    balanced = flips_a % 2 == flips_b % 2 and all(map(is_flip, ops))
    if pa.negations % 2 != pb.negations % 2 and not conflicts_only and not balanced:
        if not rewrite:
            return Verdict(False, "negation on one side only", REJECT)
        soft.append(("negation on one side only", config.threshold))
    if ops and not conflicts_only and not balanced:
        if not rewrite:
            return Verdict(False, f"operator on one side only: {ops[0]!r}", REJECT)
        soft.append((f"operator on one side only: {ops[0]!r}", config.threshold))
    roles_b = dict(pb.roles)
    shared = pa.content & pb.content
    # Roles only within one sentence-sized text: across a whole chat "to Bristol" and "to see" are
    # different sentences, not one swapped.
    for prep, obj in () if conflicts_only else pa.roles:
        other = roles_b.get(prep)
        if other and other != obj and obj in shared and other in shared \
                and _order(pa.tokens, obj, other) != _order(pb.tokens, obj, other):
            return Verdict(False, f"roles swapped around {prep!r}: {obj!r} vs {other!r}", REJECT)
    names = sorted((a_only & pa.entities) | (b_only & pb.entities))
    if conflicts_only and not (a_only & pa.entities and b_only & pb.entities) or whole_chat:
        # Across whole chats a name on each side is two things mentioned in passing; names that
        # change the answer are caught turn by turn and in the turn before the question.
        names = []
    if names:
        # A name on each side is a swap ("Tesco" / "Asda") even in a rewrite; a name on one side
        # of a rewrite is often the same thing named ("cashpoint" / "ATM").
        if not rewrite or (a_only & pa.entities and b_only & pb.entities):
            return Verdict(False, f"different name or identifier: {', '.join(names[:3])}", REJECT)
        # Weaker evidence than a negation: halfway between the rewrite and the main threshold.
        soft.append((f"a name on one side only: {', '.join(names[:3])}",
                     (config.rewrite_threshold + config.threshold) / 2))
    a_only -= FRAMING
    b_only -= FRAMING
    n_a, n_b = len(a_only), len(b_only)
    if not n_a and not n_b:
        need, shape = config.floor, "same meaningful words"
    elif rewrite:
        need, shape = config.rewrite_threshold, "rewritten"
    elif n_a and n_b and n_a + n_b <= 3 and len(shared) >= 1:
        need, shape = max(config.threshold, config.focused_threshold), "focused substitution"
    elif (not n_a or not n_b) and n_a + n_b <= 2:
        need, shape = max(config.threshold, config.qualifier_threshold), "added qualifier"
    else:
        need, shape = config.threshold, "reworded"
    if soft:
        need = max(need, *(n for _, n in soft))
        shape = f"{shape}, {'; '.join(w for w, _ in soft)}"
    elif shape == "focused substitution" and context is not None and config.context_floor <= similarity < need:
        # Embedding similarity cannot tell "store"/"shop" from "puppy"/"kitten"; the swapped words'
        # own states in their sentences can. Asked only in this band, so it costs a lookup nothing
        # otherwise.
        ctx = _in_context(pa, pb, a_only, b_only, context)
        if ctx is not None and ctx >= config.context_threshold:
            return Verdict(True, f"{shape} of words that mean the same in context ({ctx:.2f} >= "
                                 f"{config.context_threshold:.2f}), similarity {similarity:.3f} >= "
                                 f"{config.context_floor:.2f}", config.context_floor)
        if ctx is not None:
            shape = f"{shape}, swapped words differ in context ({ctx:.2f} < {config.context_threshold:.2f})"
    if similarity >= need:
        return Verdict(True, f"{shape}, similarity {similarity:.3f} >= {need:.2f}", need)
    return Verdict(False, f"{shape}, similarity {similarity:.3f} < {need:.2f}", need)



def _turns_conflict(a: list[str], b: list[str], config: VerifyConfig,
                    strict: bool = False) -> Verdict | None:
    """Conversations of the same shape are compared turn by turn: a changed order number or name in
    the first turn changes the answer however similar the rest is."""
    if len(a) != len(b):
        return None
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y or frame(profile(x), profile(y)) < REWRITE_FRAME:
            continue  # a rewritten turn is compared with the rest, as facts of the whole chat
        v = verify(x, y, 1.0, config, conflicts_only=not strict)
        if not v.ok:
            return Verdict(False, f"turn {i + 1} differs: {v.reason}", REJECT)
        if _reordered_numbers(profile(x), profile(y)):
            return Verdict(False, f"turn {i + 1} differs: same numbers in another order", REJECT)
    return None


def decide(cached: Candidate, query: Candidate, sim_last: float, sim_history: float | None,
           config: VerifyConfig = VerifyConfig(),  # noqa: B008
           context: SpanSimilarity | None = None) -> Verdict:
    """Verify a candidate conversation against the query conversation: the last messages must
    match, and so must the earlier turns (the same words in another conversation never hit) unless
    the last message stands alone."""
    if cached.exact_hash == query.exact_hash:
        return Verdict(True, "identical conversation", 0.0)
    if max(len(cached.last), len(query.last)) >= LONG_TEXT:
        # Only a prefix of such a text is embedded and compared: exact matches only (the key above).
        return Verdict(False, "text too long to compare semantically; exact match only", REJECT)
    last = verify(cached.last, query.last, sim_last, config, context=context)
    if not last.ok:
        return last
    # A question that stands alone is served after any chat, unless the chat is the cached one
    # with a fact changed: that fact may be what it is about.
    turns_a, turns_b = cached.history.split(TURN_SEP), query.history.split(TURN_SEP)
    if (why := stands_alone(cached, query)) and _turns_conflict(turns_a, turns_b, config) is None:
        note = f"; earlier turns not compared: the question stands alone ({why})" \
            if cached.history or query.history else ""
        return Verdict(True, f"{last.reason}{note}", last.required)
    if bool(cached.history) != bool(query.history):
        return Verdict(False, "different conversation: earlier turns on one side only", REJECT)
    if not cached.history or cached.history == query.history:
        return last
    *earlier_a, turn_a = turns_a
    *earlier_b, turn_b = turns_b
    # The turn just before the question is what "yes please" or "the first one" answers: for such a
    # bare reply it must be the same turn; otherwise only a conflicting fact (another number,
    # another name) rejects.
    reply = bare_reply(cached.last) or bare_reply(query.last)
    if reply:
        turn = verify(turn_a, turn_b, 1.0, config)
        if turn.ok and turn_a != turn_b:
            turn = Verdict(False, "a bare reply to an offer worded differently", REJECT)
    else:
        turn = verify(turn_a, turn_b, 1.0, config, conflicts_only=True)
    if not turn.ok:
        return Verdict(False, f"the preceding turn differs: {turn.reason}", turn.required)
    # A bare reply accepts what was offered, perhaps turns earlier: every edited turn must then
    # pass every check, not only the conflicting-facts one.
    if (clash := _turns_conflict(earlier_a, earlier_b, config, strict=reply)) is not None:
        return clash
    h = config.history_threshold
    hist_cfg = replace(config, threshold=h, floor=h, rewrite_threshold=h)
    hist = verify(TURN_SEP.join(earlier_a), TURN_SEP.join(earlier_b),
                  sim_history if sim_history is not None else 0.0, hist_cfg, conflicts_only=True,
                  whole_chat=True)
    if not hist.ok:
        return Verdict(False, f"earlier turns differ: {hist.reason}", hist.required)
    return Verdict(True, f"last message: {last.reason}; earlier turns: {hist.reason}",
                   max(last.required, hist.required))
