"""Token-level facts about a prompt, for comparing two prompts that embed alike.

Pure functions, no model: a `Profile` holds the normalised content words of a text (lower-cased, light
stemming, fillers and function words dropped), its numbers, its negations and the tokens that look
like names or identifiers (capitalised mid-sentence, acronyms, mixed case, letters with digits).
`verify.py` compares two profiles; the lexicons below are general English, not benchmark pairs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

_CONTRACTIONS = (
    (re.compile(r"\bcan['’]t\b", re.I), "can not"),
    (re.compile(r"\bcannot\b", re.I), "can not"),
    (re.compile(r"\bwon['’]t\b", re.I), "will not"),
    (re.compile(r"\bshan['’]t\b", re.I), "shall not"),
    (re.compile(r"n['’]t\b", re.I), " not"),
    (re.compile(r"['’]re\b", re.I), " are"),
    (re.compile(r"['’]ll\b", re.I), " will"),
    (re.compile(r"['’]ve\b", re.I), " have"),
    (re.compile(r"['’]d\b", re.I), " would"),
    (re.compile(r"\bi['’]m\b", re.I), "i am"),
    (re.compile(r"\b(it|that|there|what|where|when|who|how|here|he|she)['’]s\b", re.I), r"\1 is"),
    (re.compile(r"['’]s\b", re.I), ""),  # possessive
)
# "2pm" / "7 a.m." → number + a meridiem marker that cannot be confused with the verb "am"
_MERIDIEM = re.compile(r"(\d)\s*([ap])\.?m\b\.?", re.I)
_TOKEN = re.compile(r"\d+(?:[.,:/]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)?|[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"^\d+(?:[.,:/]\d+)*$")

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
    "thousand": 1000, "million": 1000000, "twice": 2,
    "dozen": 12,
}
_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                       "nine": "ninth", "twelve": "twelfth"}
# "3rd" is "third": one name written two ways, a word, not an identifier.
ORDINALS = {v: _IRREGULAR_ORDINALS.get(w, w[:-1] + "ieth" if w.endswith("y") else w + "th")
            for w, v in NUMBER_WORDS.items() if 0 < v <= 20 and w not in ("twice", "dozen")}
_DIGIT_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
_TENS_WORDS = frozenset("twenty thirty forty fifty sixty seventy eighty ninety".split())
NEGATORS = frozenset(
    "not no never without nor none nothing nobody neither nowhere non".split()
)
# Words that, added on one side only, turn a request into its opposite ("stop watering").
POLARITY_OPERATORS = frozenset(
    "stop avoid cancel prevent quit undo reverse remove revoke block decline refuse reject opt except instead "
    "unless excluding exclude minus less fewer least lack missing fail".split()
)
# The operators among them that undo an action, as a negation does ("stop it renewing" = "don't let it
# renew"); "except", "instead", "less" narrow or swap, they do not negate.
FLIP_OPERATORS = frozenset("stop avoid cancel prevent quit undo reverse revoke block decline refuse reject fail"
                           .split())
# Filler, politeness, pronouns, auxiliaries and question framing: they never change what is asked.
STOPWORDS = frozenset("""
a an the this that these those it its itself i me my mine myself we us our ours you your yours
he him his she her hers they them their theirs one ones someone something anything everything
is am are was were be been being do does did doing done have has had having will would shall
should can could may might must need needs ought to of in on at by for with from into onto
about as than then so too very really just also again still even only ever quite rather
and or but if because while whether though although either both each any all some such what
which who whom whose when where why how there here whats whos hows please thanks thank cheers
hi hello hey hiya morning afternoon evening team folks guys ok okay um uh erm er so well yeah
yep yes sure right quick question wondering wonder just sorry bother excuse mind hope lol haha
tell let know like want wanted would possible able way help get got go going out up many much
anyone somebody anybody ask asking guess think kind sort bit lot lots via per own else
""".split())
# Words that frame a question without adding a constraint ("what's the process for …").
FRAMING = frozenset("""
process procedure steps step way ways option options find out tell show explain info information
details detail happen happens work works best easiest simplest correct right proper exactly
actually currently still new current normally usually generally available offer offered provide
""".split())


@dataclass(frozen=True)
class Profile:
    text: str
    tokens: tuple[str, ...]  # normalised, stemmed word tokens in order (stopwords kept)
    words: tuple[str, ...]  # the same tokens as written (lower-cased), for the lexicon
    content: frozenset[str]  # stems that carry meaning
    numbers: frozenset[str]
    entities: frozenset[str]  # stems of tokens that look like names or identifiers
    negations: int
    roles: tuple[tuple[str, str], ...]  # (direction preposition, the content word that follows)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = _MERIDIEM.sub(lambda m: f"{m.group(1)} {'antemeridiem' if m.group(2) in 'aA' else 'postmeridiem'}", text)
    for pat, rep in _CONTRACTIONS:
        text = pat.sub(rep, text)
    return _DIGIT_ORDINAL.sub(lambda m: ORDINALS.get(int(m.group(1)), m.group(0)), text)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 5 and w.endswith("ing"):
        w = w[:-3]
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] else w
    if len(w) > 4 and w.endswith("ed") and not w.endswith("eed"):
        w = w[:-2] if not w.endswith("ied") else w[:-3] + "y"
        return w[:-1] if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "ls" else w
    if len(w) > 3 and w.endswith("es") and w[-3] in "sxz":
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def _base(word: str) -> str:
    """Stem with a final 'e' dropped, so 'increase' and 'increased' ('increas') meet."""
    s = stem(word)
    return s[:-1] if len(s) > 3 and s.endswith("e") else s


_POLARITY_STEMS = frozenset(_base(w) for w in POLARITY_OPERATORS)
_FLIP_STEMS = frozenset(_base(w) for w in FLIP_OPERATORS)


def is_polarity_operator(word: str) -> bool:
    return _base(word) in _POLARITY_STEMS


def is_flip(word: str) -> bool:
    return _base(word) in _FLIP_STEMS


def _number(tok: str) -> str | None:
    low = tok.lower()
    if _NUMBER.match(tok):
        return tok.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", tok) else tok
    if low in NUMBER_WORDS:
        v = NUMBER_WORDS[low]
        return str(int(v)) if float(v).is_integer() else str(v)
    return None


_PRONOUN_ONE_AFTER = frozenset(stem(w) for w in
                               "a an the this that which each every another new old other any quick "
                               "big small same right wrong best last first".split())
_DIRECTIONS = frozenset({"from", "to", "into", "than", "vs", "versus", "over", "between", "instead"})


def profile(text: str) -> Profile:
    """Analyse one text. Safe on any str (empty, huge, odd unicode)."""
    # A lookup profiles the query once per candidate: short texts are memoised (Profile is frozen);
    # whole chats are not, so the memo stays small.
    return _profile_short(text) if len(text) <= 4000 else _profile(text)


@lru_cache(maxsize=4096)
def _profile_short(text: str) -> Profile:
    return _profile(text)


def _profile(text: str) -> Profile:
    norm = normalise(text)
    raw = _TOKEN.findall(norm)
    tokens: list[str] = []
    words: list[str] = []
    content: set[str] = set()
    numbers: set[str] = set()
    entities: set[str] = set()
    negations = 0
    roles: list[tuple[str, str]] = []
    pending: str | None = None
    tens: str | None = None
    prev_end = 0
    sentence_start = True
    for m in re.finditer(_TOKEN, norm):
        tok = m.group(0)
        start = m.start()
        before = norm[max(0, start - 3):start]
        if any(c in ".?!:\n" for c in before.strip()[-1:]):
            sentence_start = True
        low = tok.lower()
        num = _number(tok)
        if low == "one" and (tokens and tokens[-1] in _PRONOUN_ONE_AFTER
                             or not re.match(r"\s*[^\W_]", norm[m.end():])):
            num = None  # "a new one", "quick one:", "which one?" point at a thing, they count nothing
        if num is not None:
            if tens and low in NUMBER_WORDS and 0 < NUMBER_WORDS[low] < 10 \
                    and norm[prev_end:start].strip(" -") == "":
                # "twenty-three" / "twenty three" is one number, 23
                numbers.discard(tokens.pop())
                words.pop()
                num = str(int(tens) + NUMBER_WORDS[low])
            tens = num if low in _TENS_WORDS else None
            prev_end = m.end()
            numbers.add(num)
            tokens.append(num)
            words.append(low)
            sentence_start = False
            continue
        tens = None
        if any(ch.isdigit() for ch in tok):  # "10GB", "2FA", "A12": identifiers
            digits = re.findall(r"\d+", tok)
            numbers.update(digits)
            s = low
            entities.add(s)
            content.add(s)
            tokens.append(s)
            words.append(low)
            sentence_start = False
            continue
        s = stem(low)
        tokens.append(s)
        words.append(low)
        if low in NEGATORS:
            negations += 1
        if low in _DIRECTIONS:
            pending = low
        elif pending and low not in STOPWORDS:
            roles.append((pending, s))
            pending = None
        if low in STOPWORDS or low in NEGATORS or len(low) < 2 and not low.isalpha():
            sentence_start = False
            continue
        content.add(s)
        looks_named = (
            (tok[0].isupper() and not sentence_start and low != "i")
            or (len(tok) >= 2 and tok.isupper())
            or any(c.isupper() for c in tok[1:])
        )
        if looks_named:
            entities.add(s)
        sentence_start = False
    del raw
    return Profile(text, tuple(tokens), tuple(words), frozenset(content), frozenset(numbers), frozenset(entities),
                   negations, tuple(roles))


def similar_spelling(x: str, y: str, strict: bool = False) -> bool:
    """Typos and inflections: 'allowence'/'allowance', 'clean'/'cleans'. `strict` for names, where
    a near spelling is usually another name ('Austria'/'Australia')."""
    if x == y:
        return True
    if min(len(x), len(y)) < 4:
        return False
    if x.endswith(y) or y.endswith(x):
        return False  # a prefix makes another word ("mute" / "unmute", "install" / "reinstall")
    if (x.startswith(y) or y.startswith(x)) and not strict:
        return abs(len(x) - len(y)) <= 3
    return SequenceMatcher(None, x, y).ratio() >= (0.88 if strict else 0.8)


def word_spans(text: str, stems: frozenset[str]) -> tuple[str, list[tuple[int, int]]]:
    """The normalised text and the character spans of its words whose stems are in `stems`, so a
    model can look at those words in their sentence (see `verify`'s context check)."""
    norm = normalise(text)
    spans = []
    for m in _TOKEN.finditer(norm):
        low = m.group(0).lower()
        if (low if any(ch.isdigit() for ch in low) else stem(low)) in stems:
            spans.append((m.start(), m.end()))
    return norm, spans


def pair_acronyms(pa: Profile, pb: Profile, a_only: set[str], b_only: set[str]) -> None:
    """Drop from the one-sided word sets an acronym spelled out on the other side ("PAC" /
    "porting authorisation code", "2FA" / "two-factor authentication"): one thing named twice."""
    for mine, p, theirs, q in ((a_only, pa, b_only, pb), (b_only, pb, a_only, pa)):
        for x in sorted(mine & p.entities):
            if 2 <= len(x) <= 5 and x.isalpha() and (words := spelled_out(x, q.tokens, q.content)):
                mine.discard(x)
                theirs.difference_update(words)


def spelled_out(acronym: str, tokens: tuple[str, ...], content: frozenset[str]) -> tuple[str, ...]:
    """The run of content words whose initials spell `acronym` ("pac" in "a porting authorisation
    code"), or () when there is none."""
    n = len(acronym)
    for i in range(len(tokens) - n + 1):
        window = tokens[i:i + n]
        if all(t[:1] == c and t in content and t.isalpha() for t, c in zip(window, acronym, strict=True)):
            return window
    return ()
