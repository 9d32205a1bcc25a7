"""The chat layer of verification: does the last message of a conversation, after its earlier turns,
ask what the cached conversation asked? Built on `verify.verify` for each comparison it makes; what a
message points back at is in `turns`."""

from __future__ import annotations

from dataclasses import replace

from .checks import reordered_numbers
from .lexicon import Lexicon, default_lexicon
from .scope import EMBED_CHARS
from .textdiff import profile
from .turns import TURN_SEP, Candidate, bare_reply, stands_alone
from .verdict import REJECT, Verdict, VerifyConfig
from .verify import SpanSimilarity, frame, verify

LONG_TEXT = EMBED_CHARS  # a last message this long was truncated


def _turns_conflict(a: list[str], b: list[str], config: VerifyConfig, lexicon: Lexicon,
                    strict: bool = False) -> Verdict | None:
    """Conversations of the same shape are compared turn by turn: a changed order number or name in
    the first turn changes the answer however similar the rest is."""
    if len(a) != len(b):
        return None
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y or frame(profile(x), profile(y)) < config.rewrite_frame:
            continue  # a rewritten turn is compared with the rest, as facts of the whole chat
        v = verify(x, y, 1.0, config, conflicts_only=not strict, lexicon=lexicon)
        if not v.ok:
            return Verdict(False, f"turn {i + 1} differs: {v.reason}", REJECT, f"chat: turn {i + 1}: {v.check}")
        if reordered_numbers(profile(x), profile(y)):
            return Verdict(False, f"turn {i + 1} differs: same numbers in another order", REJECT,
                           f"chat: turn {i + 1}: number_order")
    return None


def decide(cached: Candidate, query: Candidate, sim_last: float, sim_history: float | None,
           config: VerifyConfig = VerifyConfig(),  # noqa: B008
           context: SpanSimilarity | None = None, lexicon: Lexicon | None = None) -> Verdict:
    """Verify a candidate conversation against the query conversation: the last messages must
    match, and so must the earlier turns (the same words in another conversation never hit) unless
    the last message stands alone."""
    if cached.exact_hash == query.exact_hash:
        return Verdict(True, "identical conversation", 0.0, "chat: identical")
    if max(len(cached.last), len(query.last)) >= LONG_TEXT:
        # Only a prefix of such a text is embedded and compared: exact matches only (the key above).
        return Verdict(False, "text too long to compare semantically; exact match only", REJECT, "chat: too long")
    lex = lexicon or default_lexicon()
    last = verify(cached.last, query.last, sim_last, config, context=context, lexicon=lex)
    if not last.ok:
        return last
    # A question that stands alone is served after any chat, unless the chat is the cached one
    # with a fact changed: that fact may be what it is about.
    turns_a, turns_b = cached.history.split(TURN_SEP), query.history.split(TURN_SEP)
    if (why := stands_alone(cached, query)) and _turns_conflict(turns_a, turns_b, config, lex) is None:
        note = f"; earlier turns not compared: the question stands alone ({why})" \
            if cached.history or query.history else ""
        return Verdict(True, f"{last.reason}{note}", last.required, last.check)
    if bool(cached.history) != bool(query.history):
        return Verdict(False, "different conversation: earlier turns on one side only", REJECT,
                       "chat: history on one side")
    if not cached.history or cached.history == query.history:
        return last
    *earlier_a, turn_a = turns_a
    *earlier_b, turn_b = turns_b
    # The turn just before the question is what "yes please" or "option two" answers: for such a
    # bare reply it must be the same turn; otherwise only a conflicting fact (another number,
    # another name) rejects.
    reply = bare_reply(cached.last) or bare_reply(query.last)
    if reply:
        turn = verify(turn_a, turn_b, 1.0, config, lexicon=lex)
        if turn.ok and turn_a != turn_b:
            turn = Verdict(False, "a bare reply to an offer worded differently", REJECT, "bare reply")
    else:
        turn = verify(turn_a, turn_b, 1.0, config, conflicts_only=True, lexicon=lex)
    if not turn.ok:
        return Verdict(False, f"the preceding turn differs: {turn.reason}", turn.required,
                       f"chat: preceding turn: {turn.check}")
    # A bare reply accepts what was offered, perhaps turns earlier: every edited turn must then
    # pass every check, not only the conflicting-facts one.
    if (clash := _turns_conflict(earlier_a, earlier_b, config, lex, strict=reply)) is not None:
        return clash
    h = config.history_threshold
    hist_cfg = replace(config, threshold=h, floor=h, rewrite_threshold=h)
    hist = verify(TURN_SEP.join(earlier_a), TURN_SEP.join(earlier_b),
                  sim_history if sim_history is not None else 0.0, hist_cfg, conflicts_only=True,
                  whole_chat=True, lexicon=lex)
    if not hist.ok:
        return Verdict(False, f"earlier turns differ: {hist.reason}", hist.required,
                       f"chat: earlier turns: {hist.check}")
    return Verdict(True, f"last message: {last.reason}; earlier turns: {hist.reason}",
                   max(last.required, hist.required), last.check if last.required >= hist.required
                   else f"chat: earlier turns: {hist.check}")
