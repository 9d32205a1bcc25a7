"""What a semantic (L1) lookup compares, and what it must never cross.

A cached answer is only ever a candidate inside its *scope*: the same system prompt, sampling
parameters, strategy, model set and router configuration, hashed into `scope_key`. Inside a scope
the whole conversation is compared, not just the last message: `Query` carries the last user message
and the turns before it, so "cancel it" after a chat about a gym never meets "cancel it" after a chat
about a streaming plan.

Texts of any size are accepted: the key hashes the whole text, the embedding reads a bounded
prefix (MiniLM reads 256 word pieces anyway).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidPromptError

TURN_SEP = "\x1e"  # separates turns in `Query.history`; never typed by a user
EMBED_CHARS = 2000  # what the embedding and the token comparison read of one text
HISTORY_CHARS = 40000  # of the earlier turns, the most recent part is compared (turn by turn)


def digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def clean_text(text: Any, what: str = "prompt") -> str:
    """Reject what cannot be embedded or stored; bytes must be valid UTF-8."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidPromptError(f"{what} is not valid UTF-8 text") from None
    if not isinstance(text, str):
        raise InvalidPromptError(f"{what} must be text, got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a bad decode upstream
        raise InvalidPromptError(f"{what} is not valid UTF-8 text (lone surrogate)") from None
    if not text.strip():
        raise InvalidPromptError(f"{what} is empty")
    return text


@dataclass(frozen=True)
class Query:
    """One request as the semantic level sees it."""

    scope_key: str
    last: str  # the final user message, truncated to EMBED_CHARS
    history: str  # earlier turns "role: text" joined by TURN_SEP, newest last, truncated from the front
    exact_hash: str  # hash of the whole conversation in full, untruncated

    @property
    def has_history(self) -> bool:
        return bool(self.history)

    @property
    def preview(self) -> str:
        return self.last[:200]


def scope_key(**parts: Any) -> str:
    """Hash of everything that must match exactly: system prompt, params, strategy, models…"""
    return "S:" + digest(parts)


def build_query(messages: list[dict[str, str]], **scope_parts: Any) -> Query:
    """Split a chat into scope (system prompt + `scope_parts`), earlier turns and last message."""
    if not messages:
        raise InvalidPromptError("no messages")
    system = [clean_text(m["content"], "system prompt") for m in messages if m.get("role") == "system"]
    turns = [m for m in messages if m.get("role") != "system"]
    if not turns or turns[-1].get("role") != "user":
        raise InvalidPromptError("the conversation must end with a user message")
    last = clean_text(turns[-1].get("content"), "prompt")
    earlier = [(m.get("role", "user"), clean_text(m.get("content"), "message")) for m in turns[:-1]]
    history = TURN_SEP.join(f"{role}: {text}" for role, text in earlier)
    return Query(
        scope_key=scope_key(system=system, **scope_parts),
        last=last[:EMBED_CHARS],
        history=history[-HISTORY_CHARS:],
        exact_hash=digest([system, [(m.get("role"), m.get("content")) for m in turns]]),
    )
