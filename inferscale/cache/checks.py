"""The checks that verify one text against another, each a small pure function of a `Comparison`.

A check returns `reject(reason)`, `require(similarity, reason)` or None (no opinion); `verify.verify`
runs them in order and composes what they say. The language-neutral ones (numbers, IDs, operand order,
negation markers, names) are rules; what words mean comes from the lexicon (`lexicon.Lexicon`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cached_property, lru_cache

from .lexicon import Lexicon
from .textdiff import (
    FRAMING,
    Profile,
    is_flip,
    is_polarity_operator,
    pair_acronyms,
    similar_spelling,
    word_spans,
)
from .verdict import Opinion, VerifyConfig, reject, require

Spans = list[tuple[int, int]]
# How alike the marked words of two texts are *in their sentences* (pooled token states of the
# embedding model; `Embedder.span_similarity`), or None when it cannot tell.
SpanSimilarity = Callable[[str, Spans, str, Spans], "float | None"]
REPLY_PARTICLES = frozenset({"yes", "no"})  # "Yes, it's kept" = "No, it's not lost"
# Between two words these say nothing about who does what to whom: "apples and pears" = "pears and
# apples"; any other word between them may be a relation that exchanging them reverses.
SYMMETRIC_GLUE = frozenset("and or nor vs versus the a an my your our their his her its".split())


@dataclass(frozen=True)
class Comparison:
    """Everything the checks read about one pair, computed once."""

    a: Profile
    b: Profile
    similarity: float
    config: VerifyConfig
    conflicts_only: bool  # earlier turns of a chat: only a changed value counts
    whole_chat: bool  # all earlier turns as one text
    context: SpanSimilarity | None
    lexicon: Lexicon
    a_only: frozenset[str]  # content words on one side only, typos and acronyms paired off
    b_only: frozenset[str]

    @cached_property
    def rewrite(self) -> bool:
        """Under `rewrite_frame` of the wording kept: judged by meaning. Computed when a check first
        asks: the word alignment is most of a comparison's cost, and a pair whose numbers differ is
        rejected by the first check without it (the lookups of templated prompts, mostly)."""
        return frame(self.a, self.b) < self.config.rewrite_frame


@lru_cache(maxsize=4096)
def _diff(ta: tuple[str, ...], tb: tuple[str, ...]) -> tuple[int, tuple[tuple[str, int, int, int, int], ...]]:
    """Words matched in order and the edit, from one matcher: a comparison reads both, and a replay
    of logged traffic compares the same pairs of short texts again and again."""
    sm = SequenceMatcher(None, ta, tb, autojunk=False)
    return sum(m.size for m in sm.get_matching_blocks()), tuple(sm.get_opcodes())


def frame(pa: Profile, pb: Profile) -> float:
    """How much of the wording survives: matched words in order / words in the longer text."""
    return _diff(pa.tokens, pb.tokens)[0] / max(len(pa.tokens), len(pb.tokens), 1)


def _pair_off(xs: set[str], ys: set[str], match) -> None:
    pairs = []
    for x in sorted(xs):
        for y in sorted(ys):
            if match(x, y):
                pairs.append((x, y))
                ys.discard(y)
                break
    for x, _ in pairs:
        xs.discard(x)


def compare(pa: Profile, pb: Profile, similarity: float, config: VerifyConfig, *,
            lexicon: Lexicon, conflicts_only: bool = False, whole_chat: bool = False,
            context: SpanSimilarity | None = None) -> Comparison:
    a_only = set(pa.content - pb.content)
    b_only = set(pb.content - pa.content)
    wa, wb = surface(pa), surface(pb)
    # A typo is a near spelling that is not itself another word: "allowence" is "allowance", but
    # "bake" is not "bike" and "dessert" is not "desert".
    _pair_off(a_only, b_only, lambda x, y: similar_spelling(
        x, y, strict=x in pa.entities or y in pb.entities)
        and not (lexicon.known(wa[x]) and lexicon.known(wb[y]) and not lexicon.lemmas(wa[x]) & lexicon.lemmas(wb[y])))
    pair_acronyms(pa, pb, a_only, b_only)
    return Comparison(pa, pb, similarity, config, conflicts_only, whole_chat, context, lexicon,
                      frozenset(a_only), frozenset(b_only))


def surface(p: Profile) -> dict[str, str]:
    """Each stem's first form as written, which is what the lexicon looks up (read-only: memoised)."""
    return _surface(p.tokens, p.words)


@lru_cache(maxsize=4096)
def _surface(tokens: tuple[str, ...], words: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for t, w in zip(tokens, words, strict=True):
        out.setdefault(t, w)
    return out


def reordered_numbers(pa: Profile, pb: Profile) -> tuple[list[str], list[str]] | None:
    """The same numbers in another order ask something else: "is 7 > 3" vs "is 3 > 7"."""
    if pa.numbers != pb.numbers or len(pa.numbers) < 2:
        return None
    seq_a = [t for t in dict.fromkeys(pa.tokens) if t in pa.numbers]
    seq_b = [t for t in dict.fromkeys(pb.tokens) if t in pb.numbers]
    return (seq_a, seq_b) if seq_a != seq_b else None


# -- the checks, in the order they run ------------------------------------------------------------

def numbers(c: Comparison) -> Opinion | None:
    """Numbers, dates and IDs must match; in earlier turns only a changed value (one on each side)."""
    pa, pb = c.a, c.b
    differ = pa.numbers != pb.numbers
    if c.conflicts_only:
        differ = bool(pa.numbers - pb.numbers) and bool(pb.numbers - pa.numbers)
    if not differ:
        return None
    only_a, only_b = sorted(pa.numbers - pb.numbers), sorted(pb.numbers - pa.numbers)
    return reject(f"numbers differ: {only_a or '-'} vs {only_b or '-'}")


def number_order(c: Comparison) -> Opinion | None:
    if not c.conflicts_only and (seqs := reordered_numbers(c.a, c.b)):
        return reject(f"same numbers in another order: {seqs[0]} vs {seqs[1]}")
    return None


def opposites(c: Comparison) -> Opinion | None:
    """A word replaced in place by its antonym, particles included ("turn on"/"turn off", "opt in"/
    "opt out"). Only words that stand in each other's place: two texts always hold some pair of
    words that are antonyms in some sense ("leave" / "arrives"), and a rewrite's similarity decides."""
    if c.whole_chat or c.rewrite:
        return None
    wa, wb = surface(c.a), surface(c.b)
    shared = set(c.a.tokens) & set(c.b.tokens)
    for tag, i1, i2, j1, j2 in _opcodes(c):
        if tag != "replace":
            continue
        for x in dict.fromkeys(t for t in c.a.tokens[i1:i2] if t not in shared):
            for y in dict.fromkeys(t for t in c.b.tokens[j1:j2] if t not in shared):
                if c.lexicon.opposite(wa[x], wb[y]) and not (c.conflicts_only and {wa[x], wb[y]} <= REPLY_PARTICLES):
                    return reject(f"opposite words (WordNet antonyms): {wa[x]!r} vs {wb[y]!r}")
    return None


def _opcodes(c: Comparison) -> tuple[tuple[str, int, int, int, int], ...]:
    return _diff(c.a.tokens, c.b.tokens)[1]


def _polarity(c: Comparison) -> tuple[list[str], bool]:
    ops = sorted(w for w in c.a_only | c.b_only if is_polarity_operator(w))
    # A negation and a verb that undoes an action count together: "stop it renewing" / "I don't
    # want it to renew": each flips once, the same polarity.
    flips_a = c.a.negations + sum(map(is_flip, c.a_only))
    flips_b = c.b.negations + sum(map(is_flip, c.b_only))
    return ops, flips_a % 2 == flips_b % 2 and all(map(is_flip, ops))


def negation(c: Comparison) -> Opinion | None:
    """A negation on one side only: rejects in an edit; in a rewrite (other words often carry one)
    it raises the similarity needed to the main threshold."""
    if c.conflicts_only or c.a.negations % 2 == c.b.negations % 2 or _polarity(c)[1]:
        return None
    why = "negation on one side only"
    return require(c.config.threshold, why) if c.rewrite else reject(why)


def operators(c: Comparison) -> Opinion | None:
    """An operator such as "stop", "except", "instead" on one side only, as a negation."""
    ops, balanced = _polarity(c)
    if c.conflicts_only or not ops or balanced:
        return None
    why = f"operator on one side only: {ops[0]!r}"
    return require(c.config.threshold, why) if c.rewrite else reject(why)


def roles(c: Comparison) -> Opinion | None:
    """The same two words swapped around a direction word ("from savings to current")."""
    if c.conflicts_only:
        return None
    roles_b = dict(c.b.roles)
    shared = c.a.content & c.b.content

    def before(tokens: tuple[str, ...], x: str, y: str) -> bool:
        return tokens.index(x) < tokens.index(y)
    for prep, obj in c.a.roles:
        other = roles_b.get(prep)
        if other and other != obj and obj in shared and other in shared \
                and before(c.a.tokens, obj, other) != before(c.b.tokens, obj, other):
            return reject(f"roles swapped around {prep!r}: {obj!r} vs {other!r}")
    return None


def names(c: Comparison) -> Opinion | None:
    """A name or identifier on each side is a swap ("Tesco" / "Asda"), even in a rewrite; one on one
    side of a rewrite is often the same thing named ("cashpoint" / "ATM")."""
    ent_a, ent_b = c.a_only & c.a.entities, c.b_only & c.b.entities
    found = sorted(ent_a | ent_b)
    if c.conflicts_only and not (ent_a and ent_b) or c.whole_chat or not found:
        # Across whole chats a name on each side is two things mentioned in passing; names that
        # change the answer are caught turn by turn and in the turn before the question.
        return None
    if not c.rewrite or (ent_a and ent_b):
        return reject(f"different name or identifier: {', '.join(found[:3])}")
    # Weaker evidence than a negation: halfway between the rewrite and the main threshold.
    return require((c.config.rewrite_threshold + c.config.threshold) / 2,
                   f"a name on one side only: {', '.join(found[:3])}")


def word_order(c: Comparison) -> Opinion | None:
    """The same two content words with roles exchanged around what relates them ("a cat chasing a
    dog" / "a dog chasing a cat", "X instead of Y" / "Y instead of X"): a miss unless the relation is
    shown to be symmetric ("and", "or" between them). A phrase moved as a whole ("On the menu, what
    …?") keeps its roles: the words between the two then differ."""
    if c.conflicts_only or c.whole_chat or not c.config.check_word_order:
        return None
    shared = (c.a.content & c.b.content) - FRAMING
    seq_a = [t for t in dict.fromkeys(c.a.tokens) if t in shared]
    pos_b = {t: i for i, t in enumerate(t for t in dict.fromkeys(c.b.tokens) if t in shared)}
    for i, x in enumerate(seq_a):
        for y in seq_a[i + 1:]:
            if pos_b[x] < pos_b[y]:
                continue
            between_a, between_b = _between(c.a, x, y), _between(c.b, y, x)
            if not between_a or not between_b or max(len(between_a), len(between_b)) > c.config.role_span:
                continue  # a relation is a word or three ("instead of", "faster than", "into")
            if relation := sorted((set(between_a) & set(between_b)) - SYMMETRIC_GLUE):
                w = surface(c.a)
                return reject(f"roles exchanged: {w[x]!r} and {w[y]!r} swap places around "
                              f"{' '.join(relation)!r} (nothing shows the relation is symmetric)")
    return None


def _between(p: Profile, x: str, y: str) -> tuple[str, ...]:
    """The tokens strictly between the first `x` and the first `y` after it."""
    i = p.tokens.index(x)
    try:
        j = p.tokens.index(y, i + 1)
    except ValueError:
        return ()
    return p.tokens[i + 1:j]


def _substituted(c: Comparison) -> list[tuple[str, str]]:
    """Content words swapped in place: the pairs within each replaced stretch of the edit."""
    a_only, b_only = c.a_only - FRAMING, c.b_only - FRAMING
    wa, wb = surface(c.a), surface(c.b)
    out = []
    for tag, i1, i2, j1, j2 in _opcodes(c):
        if tag != "replace":
            continue
        xs = [t for t in dict.fromkeys(c.a.tokens[i1:i2]) if t in a_only]
        ys = [t for t in dict.fromkeys(c.b.tokens[j1:j2]) if t in b_only]
        out += [(wa[x], wb[y]) for x in xs for y in ys]
    return out


def lexical(c: Comparison) -> Opinion | None:
    """A word swapped in place for its antonym, or for another kind of the same thing ("kitten" /
    "puppy", "Celsius" / "Fahrenheit", "boil" / "simmer"), asks something else (WordNet)."""
    if c.rewrite or c.conflicts_only or c.whole_chat:
        return None
    pairs = _substituted(c)
    same = {x for x, y in pairs if c.lexicon.relation(x, y).kind == "same"} | \
        {y for x, y in pairs if c.lexicon.relation(x, y).kind == "same"}
    for x, y in pairs:
        rel = c.lexicon.relation(x, y)
        if rel.kind == "opposite":
            return reject(f"opposite words (WordNet antonyms): {x!r} vs {y!r}")
        if rel.kind == "sister" and x not in same and y not in same:
            return reject(f"{x!r} vs {y!r}: {rel.detail} (WordNet sister terms)")
    return None


def _in_context(c: Comparison, a_only: frozenset[str], b_only: frozenset[str]) -> float | None:
    ta, sa = word_spans(c.a.text, a_only)
    tb, sb = word_spans(c.b.text, b_only)
    return c.context(ta, sa, tb, sb) if c.context and sa and sb else None


def edit_shape(c: Comparison) -> Opinion:
    """The similarity the pair needs from the shape of what is left: a focused substitution of one or
    two content words must be very close (that is how a trap looks) unless the swapped words mean
    the same in their sentences; the same meaningful words may be served from the floor; a broad
    rewording needs the threshold; a full rewrite is judged by meaning (`rewrite_threshold`)."""
    cfg = c.config
    a_only, b_only = c.a_only - FRAMING, c.b_only - FRAMING
    n_a, n_b = len(a_only), len(b_only)
    shared = c.a.content & c.b.content
    if not n_a and not n_b:
        return require(cfg.floor, "same meaningful words")
    if c.rewrite:
        return require(cfg.rewrite_threshold, "rewritten")
    if n_a and n_b and n_a + n_b <= 3 and len(shared) >= 1:
        return _focused(c, a_only, b_only)
    if (not n_a or not n_b) and n_a + n_b <= 2:
        return require(max(cfg.threshold, cfg.qualifier_threshold), "added qualifier")
    return require(cfg.threshold, "reworded")


def _focused(c: Comparison, a_only: frozenset[str], b_only: frozenset[str]) -> Opinion:
    """One or two content words substituted: served when WordNet gives them as the same (synonyms,
    one inflected or derived from the other), or when the model reads them alike in their sentences
    (strong evidence); otherwise a miss, whatever the similarity: that is how a trap looks."""
    cfg = c.config
    wa, wb = surface(c.a), surface(c.b)
    rels = [(wa[x], wb[y], c.lexicon.relation(wa[x], wb[y])) for x in sorted(a_only) for y in sorted(b_only)]
    same_a = {x for x, _, r in rels if r.kind == "same"}
    same_b = {y for _, y, r in rels if r.kind == "same"}
    if len(same_a) == len(a_only) and len(same_b) == len(b_only):
        why = "; ".join(f"{x} = {y}: {r.detail}" for x, y, r in rels if r.kind == "same")
        return require(cfg.synonym_threshold, f"focused substitution of words WordNet gives as the same ({why})")
    x, y, rel = next(((x, y, r) for x, y, r in rels if x not in same_a or y not in same_b), rels[0])
    unproven = f"{x!r} vs {y!r} not shown to mean the same ({rel.detail})"
    if c.context is None:
        # Only the chat layer's turn-by-turn comparisons run without the model (at similarity 1.0).
        return require(max(cfg.threshold, cfg.focused_threshold), f"focused substitution, {unproven}")
    # Evidence for "the same" must be strong: the swapped words read alike in their sentences, and
    # the sentences close.
    need = cfg.context_floor
    if c.similarity < need:
        return require(need, f"focused substitution, {unproven}")
    ctx = _in_context(c, a_only, b_only)
    if ctx is not None and ctx >= cfg.context_threshold:
        return require(need, f"focused substitution of words that mean the same in context "
                             f"({ctx:.2f} >= {cfg.context_threshold:.2f}; WordNet: {rel.detail})")
    return reject(f"focused substitution, {unproven}; in context "
                  f"{'-' if ctx is None else f'{ctx:.2f}'} < {cfg.context_threshold:.2f}")


CHECKS: tuple[Callable[[Comparison], Opinion | None], ...] = (
    numbers, number_order, opposites, negation, operators, roles, word_order, names, lexical, edit_shape,
)
