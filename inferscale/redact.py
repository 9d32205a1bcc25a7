"""The one redaction rule for text that may carry a key: provider errors, echoed headers, messages.

Apply it *before* a text is cut, formatted, stored or shown: a key straddling a cut is no longer
recognisable as the whole key, so the rule also removes any run of >= `MIN_RUN` consecutive
characters of a known key, and anything that looks like a bearer token or an authorization value.

Known keys are the values of the environment variables the registry names (`api_key_env`), the
ones `remember_secret` was handed (a provider call, the gateway's key), and any variable whose
name says it holds a secret (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_KEY`).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable

MASK = "***"
MIN_RUN = 8  # a run this long of a key's characters is hidden; shorter runs are too common to mean it
MIN_SECRET = 6  # a "key" shorter than this is not treated as one (it would mask ordinary words)
_SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
# A credential after a scheme or header name, whatever the key: "Bearer abc…", "Authorization: …",
# "api_key=…", "x-api-key: …", and OpenAI-style "sk-…" tokens.
_PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic)(\s+|%20)[^\s'\",;)}\]]+"),
    re.compile(r"(?i)\b(authorization|proxy-authorization|x-api-key|api[-_]?key|access[-_]?token|"
               r"auth[-_]?token|token|password|secret)(\"?\s*[:=]\s*\"?)(?!\*\*\*)"
               r"(?:(?:bearer|basic)\s+)?[^\s'\",;)}\]]+"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
)

_lock = threading.Lock()
_remembered: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Register a key this process handles (read at call time), so every later text is cleaned."""
    if value and len(value) >= MIN_SECRET:
        with _lock:
            _remembered.add(value)


def known_secrets(extra: Iterable[str | None] = ()) -> set[str]:
    found = {v for k, v in os.environ.items() if v and len(v) >= MIN_SECRET and _SECRET_NAME.search(k)}
    with _lock:
        found |= _remembered
    found |= {v for v in extra if v and len(v) >= MIN_SECRET}
    return found


def redact(text: str | None, extra: Iterable[str | None] = ()) -> str:
    """`text` with every known key (whole, or any run of >= 8 of its characters) and every
    bearer/authorization credential replaced by `***`. Idempotent; cheap on text without keys."""
    if not text:
        return text or ""
    spans: list[tuple[int, int]] = []
    for secret in known_secrets(extra):
        spans += _key_spans(text, secret)
    if spans:
        text = _mask(text, spans)
    for i, pattern in enumerate(_PATTERNS):
        text = pattern.sub(MASK, text) if i == 2 else pattern.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return text


def _key_spans(text: str, secret: str) -> list[tuple[int, int]]:
    if len(secret) < MIN_RUN:
        return [(m.start(), m.end()) for m in re.finditer(re.escape(secret), text)]
    windows = {secret[i:i + MIN_RUN] for i in range(len(secret) - MIN_RUN + 1)}
    spans = []
    for i in range(len(text) - MIN_RUN + 1):
        if text[i:i + MIN_RUN] in windows:
            spans.append((i, i + MIN_RUN))
    return spans


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    spans.sort()
    out, pos = [], 0
    start, end = spans[0]
    for s, e in spans[1:]:
        if s <= end:
            end = max(end, e)
            continue
        out += [text[pos:start], MASK]
        pos, (start, end) = end, (s, e)
    out += [text[pos:start], MASK, text[end:]]
    return "".join(out)


def clip(text: str | None, limit: int, extra: Iterable[str | None] = ()) -> str:
    """Redact, collapse whitespace, then cut to `limit` characters: the order that keeps keys out."""
    cleaned = " ".join(redact(text, extra).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
