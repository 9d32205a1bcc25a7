"""Per-request helpers of the engine: input validation, the request's scratchpad, cache notes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..cache import CacheLevels
from ..cache.judge import Judge
from ..cache.request import RequestScope
from ..cache.scope import Query
from ..errors import ConfigError, InvalidPromptError
from ..limits import MAX_PROMPT_CHARS
from ..registry import ModelSpec, Registry
from ..routing.artefact import current_version
from ..routing.policies import get_router
from ..settings import STRATEGY_NAMES, Tunables
from ..types import AskResult, CacheControl, MemberResult, Message, StepTiming
from .strategies import STRATEGIES, build_strategy


@dataclass(frozen=True)
class Plan:
    """What one request runs under, read once before it starts (`Engine._plan`)."""

    tun: Tunables
    messages: tuple[Message, ...]
    strategy: str
    strat: Any  # the built strategy
    router: Any  # the router object
    explicit: tuple[ModelSpec, ...]
    candidates: tuple[ModelSpec, ...]
    cc: CacheControl
    params: dict[str, Any]
    scope: RequestScope


def plan_request(tun: Tunables, registry: Registry, home: Path, prompt: str, system: str | None,
                 history: list[Message] | None, strategy: str | None, models: list[str] | None,
                 router: str | None, use_cache: bool, cache: CacheControl | None,
                 strategy_options: dict[str, Any] | None, params: dict[str, Any] | None) -> Plan:
    """What the request runs under, read once: the tunables, its strategy, router, models and scope."""
    messages = build_messages(prompt, system, history)
    strategy = strategy or tun.default_strategy
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGY_NAMES)}")
    strat = build_strategy(strategy, tun, strategy_options)
    router_obj = get_router(router or ("fixed" if models else tun.default_router))
    explicit = tuple(registry.require_available(m) for m in dedupe(models or []))
    candidates: tuple[ModelSpec, ...] = tuple(registry.available())
    cc = (cache or CacheControl()) if use_cache and tun.cache_enabled else CacheControl.off()
    params = {"max_tokens": tun.max_tokens, "temperature": tun.temperature, **(params or {})}
    scope = RequestScope(
        tuple(messages), params, strategy, strat.config.model_dump(mode="json"),
        tuple(s.id for s in explicit), router_obj.name, tuple(s.id for s in candidates), tun,
        namespace=cc.namespace,
        router_version=current_version(home) if router_obj.name == "learned" else "",
    )
    return Plan(tun, tuple(messages), strategy, strat, router_obj, explicit, candidates, cc, params, scope)


class Handoff:
    """Who ends a request whose caller is cancelled while its worker thread runs the steps before
    the model call: the worker goes on (a thread cannot be stopped), so exactly one of the two must
    record it as failed, or it would stay `running` in a live process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "running"

    def worker_done(self) -> bool:
        """The worker got through; True if its caller is already gone (the worker ends it)."""
        with self._lock:
            gone, self._state = self._state == "cancelled", "done"
            return gone

    def caller_cancelled(self) -> bool:
        """The caller is cancelled; True if the worker already got through (the caller ends it)."""
        with self._lock:
            done, self._state = self._state == "done", "cancelled"
            return done


@dataclass
class Trace:
    """Per-request scratchpad (never stored on the engine)."""

    calls: list[MemberResult] = field(default_factory=list)
    cache_events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)
    saved_usd: float = 0.0
    judge_usd: float = 0.0  # what the L1 judge's call cost (it is in `calls` too)
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
    if sem.judged is not None and sem.judged.reason not in why:  # its candidate was not among those shown
        why = f"{why}; {sem.judged.reason}"
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


def lookup_cache(levels: CacheLevels, scope: RequestScope, tun: Tunables, cc: CacheControl, trace: Trace,
                 judge: Judge | None = None) -> tuple[Any, Any, Query | None]:
    """Cheapest first: the exact L4 key, then the semantic L1 search within the same scope. A call
    of the L1 judge is recorded with the request's calls, and names the judge in the L1 event."""
    hit = levels.get(scope.l4_key(), tun, max_age_s=cc.ttl_s) if cc.read else None
    if cc.read:
        trace.cache_events.append(cache_event("L4", hit))
    l1_query, sem = None, None
    if (cc.read or cc.write) and tun.semantic_enabled and hit is None:
        l1_query = scope.l1_query()
    if cc.read and l1_query is not None:
        sem = levels.lookup(l1_query, tun, max_age_s=cc.ttl_s, judge=judge, remember=cc.write)
        said = sem.judged
        trace.cache_events.append(cache_event("L1", sem.match, said.model if said else None))
        if said is not None and said.call is not None and not said.call.cached:  # a remembered verdict cost nothing
            trace.calls.append(said.call)
            trace.judge_usd += said.cost_usd
    return hit, sem, l1_query
