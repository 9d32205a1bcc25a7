"""Size limits at the edges: prompts coming in, provider answers coming back.

A prompt longer than `MAX_PROMPT_CHARS` is refused before anything runs (no model has a window
that large on this machine and nothing is stored). A provider answer is cut to what `max_tokens`
allows, with room to spare (`answer_char_cap`), and to `MAX_ANSWER_BYTES` of UTF-8, and marked
`truncated`: a provider ignoring `max_tokens` cannot fill the caches with megabytes per call.
"""

from __future__ import annotations

import math
import re

MAX_PROMPT_CHARS = 1_000_000  # ~250k tokens; the CLI, batch files and the engine refuse longer
MAX_ANSWER_BYTES = 1_000_000  # UTF-8 bytes of one provider answer, whatever max_tokens says
CHARS_PER_TOKEN = 32  # generous: real tokens average ~4 characters, the longest are ~30
MIN_ANSWER_CHARS = 4096


def answer_char_cap(max_tokens: int | None) -> int:
    """Most characters an answer of `max_tokens` tokens can honestly have."""
    return max(MIN_ANSWER_CHARS, CHARS_PER_TOKEN * int(max_tokens or 0))


def cap_answer(text: str, max_tokens: int | None) -> tuple[str, bool]:
    """(answer cut to the caps, whether it was cut)."""
    cap = answer_char_cap(max_tokens)
    cut = len(text) > cap
    if cut:
        text = text[:cap]
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_ANSWER_BYTES:
        text = data[:MAX_ANSWER_BYTES].decode("utf-8", "ignore")
        cut = True
    return text, cut


_WORD = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> int:
    """A tokenizer-free estimate of `text`'s tokens (~1.3 word pieces per word or punctuation
    mark): cheap and stable; the analysis and the context-window check both count with it."""
    return math.ceil(len(_WORD.findall(text)) * 1.3)
