"""Text bound for a terminal: control characters escaped, so an id, an answer or a provider error
can never move the cursor, retitle the window, hide text or fake a line (ESC sequences, CR, BEL,
bidi overrides all become visible `\\x1b`, `\\r`, `\\u202e`)."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidi embedding/override/isolate marks, lone surrogates.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_KEEP_MULTILINE = {"\n", "\t"}


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(text: object, multiline: bool = False) -> str:
    """`text` with control characters escaped; `multiline` keeps newlines and tabs (answers)."""
    s = "" if text is None else str(text)
    if multiline:
        return _CONTROL.sub(lambda m: m.group() if m.group() in _KEEP_MULTILINE else _escape(m.group()), s)
    return _CONTROL.sub(lambda m: _escape(m.group()), s)
