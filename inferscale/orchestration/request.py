"""Per-request helpers of the engine: input validation, the request's scratchpad, cache notes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidPromptError
from ..limits import MAX_PROMPT_CHARS
from ..types import AskResult, MemberResult, Message, StepTiming


@dataclass
class Trace:
    """Per-request scratchpad (never stored on the engine)."""

    calls: list[MemberResult] = field(default_factory=list)
    cache_events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)
    saved_usd: float = 0.0
    replay: dict[str, Any] | None = None  # this request's row for the what-if replay


def build_messages(prompt: str, system: str | None, history: list[Message] | None) -> list[Message]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidPromptError("prompt is empty")
    if "\x00" in prompt:
        raise InvalidPromptError("prompt contains a NUL byte")
    total = len(prompt) + len(system or "") + sum(len(str(m.get("content") or "")) for m in history or [])
    if total > MAX_PROMPT_CHARS:
        raise InvalidPromptError(f"prompt has {total:,} characters (system and history included), "
                                 f"over the {MAX_PROMPT_CHARS:,} limit")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPromptError("prompt is not valid UTF-8 text") from None
    msgs: list[Message] = []
    if system and system.strip():
        msgs.append({"role": "system", "content": system})
    for m in history or []:
        if m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
            raise InvalidPromptError("history entries need role user|assistant and text content")
        msgs.append({"role": m["role"], "content": m["content"]})
    msgs.append({"role": "user", "content": prompt})
    return msgs


def dedupe(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in ids if i.strip()))


def cache_note(read: bool, hit: Any, sem: Any) -> str:
    if not read:
        return "cache bypassed"
    if hit is not None:
        return "L4 hit"
    if sem is None:
        return "L4 miss"
    if sem.match is not None:
        return f"L4 miss; L1 hit ({sem.match.reason}) on {sem.match.matched_prompt[:80]!r}"
    why = sem.error or (f"{sem.candidates} candidate(s) rejected: " + "; ".join(sem.rejected[:2])
                        if sem.candidates else "no candidate in scope")
    return f"L4 miss; L1 miss ({why})"


def cache_event(level: str, hit: Any, model: str | None = None) -> dict[str, Any]:
    return {
        "level": level,
        "hit": int(hit is not None),
        "model": model,
        "saved_usd": hit.cost_usd if hit else 0.0,
        "saved_ms": hit.latency_ms if hit else 0.0,
    }


def with_steps(result: AskResult, trace: Trace) -> AskResult:
    return replace(result, steps=tuple(trace.steps))
