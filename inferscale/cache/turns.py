"""What a chat message points at: does the last message of a conversation mean the same after other
earlier turns? Lexicons and message-shape tests for `verify.decide`, no model."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .scope import TURN_SEP
from .textdiff import FRAMING, profile, stem


@dataclass(frozen=True)
class Candidate:
    """What the verifier needs of a cached entry (or of a query)."""

    last: str
    history: str
    exact_hash: str


# Words that point back into the conversation: a message holding one means something only with
# the turns before it ("cancel it", "how much is that one?", "and with the sports bundle?").
ANAPHORA = frozenset("""
it its that this these those them they their he him his she her one ones then there instead same
such else above former latter option options both either another other
""".split())
# Days and months are capitalised but name no subject: "Is the dental surgery open on Saturdays?" still
# means the surgery the chat was about.
CALENDAR = frozenset(stem(w) for w in """
monday tuesday wednesday thursday friday saturday sunday mondays tuesdays wednesdays thursdays
fridays saturdays sundays january february march april may june july august september october
november december today tomorrow yesterday weekend weekends
""".split())
# "this year", "that morning": a time, not something said earlier.
TIMES = CALENDAR | frozenset(stem(w) for w in "year month week day morning afternoon evening night time".split())
# Light words take their meaning from what they govern: "how long will the reimbursement take?" says only
# "refund", and which refund is in the earlier turns.
LIGHT = frozenset(stem(w) for w in """
get take give send bring come go put make do have keep need want long back much many
""".split())
# Openers that continue a thread rather than start a new question.
CONTINUATIONS = frozenset("and so ok okay yes yeah yep no nope great cool fine right then also but".split()
                          + ["go ahead"])
# A bare reply: it accepts or picks whatever the preceding turn offered.
REPLIES = frozenset("""
yes yeah yep yup ok okay sure please go ahead on do that it the first second third last one option
let's lets fine great perfect sounds good thanks thank you then with
""".split())


@lru_cache(maxsize=4096)  # a pure function of the text; a replay asks it of the same texts often
def refers_back(text: str) -> bool:
    """Does the message point at something earlier in the chat (a pronoun, "instead", an opener
    that continues a thread), or is it too short to carry its own subject?"""
    words = [w.lower().strip("'’,.!?") for w in text.replace("?", " ").split()]
    if len(words) < 4 or words[0] in CONTINUATIONS or " ".join(words[:2]) in CONTINUATIONS:
        return True
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if w not in ANAPHORA:
            continue
        if w == "there" and i and words[i - 1] in ("is", "are", "was", "were", "be"):
            continue  # "is there a lounge?": existential, not a place named earlier
        if w in ("this", "that") and stem(nxt) in TIMES:
            continue  # "this year", "that day": a time, not something said earlier
        if (w, nxt) == ("instead", "of") or (w == "another" and nxt and nxt not in ANAPHORA):
            continue  # "instead of direct debit", "another network": the thing is named here
        return True
    return False


def _names(text: str) -> frozenset[str]:
    return profile(text).entities - CALENDAR


def _says_what(text: str) -> bool:
    """At least two meaningful words beyond light verbs and framing ("free wifi in your waiting rooms",
    not "how long will the reimbursement take")."""
    return len(profile(text).content - FRAMING - LIGHT) >= 2


def parties(history: str) -> frozenset[str]:
    """Names in the earlier turns: who the chat is with and about."""
    names: set[str] = set()
    for turn in history.split(TURN_SEP) if history else ():
        names |= _names(turn)
    return frozenset(names)


def stands_alone(cached: Candidate, query: Candidate) -> str:
    """Why the question means the same after either chat, or "" when it may not.

    Both last messages must refer back to nothing, and then either name their subject ("Do you
    take Diners Club cards?"), or, asked at the end of two chats, say what they ask about in two or more
    meaningful words ("Is there free wifi in your waiting rooms?") or be asked of the same named party (a
    Kestrel question after two different Kestrel chats). Against a fresh prompt a chat is
    different: "Is the dental surgery open on Saturdays?" after "I use the Hexham dental surgery" means that surgery."""
    if refers_back(cached.last) or refers_back(query.last):
        return ""
    if _names(cached.last) and _names(query.last):
        return "it names its subject"
    if _says_what(cached.last) and _says_what(query.last) and cached.history and query.history:
        return "it says what it asks about"
    if shared := sorted(parties(cached.history) & parties(query.history)):
        return f"both chats are with {', '.join(shared[:2])}"
    return ""


def bare_reply(text: str) -> bool:
    words = [w.strip(",.!?").lower() for w in text.split()]
    return len(words) <= 8 and all(w in REPLIES for w in words if w)
