"""The engine: analyze → cache → route → execute → monitor, written once as async; `ask` wraps it.

The engine holds no per-request state, so one instance is safely shared by every caller (the
dashboard's sessions, CLI, tests). Tunables are re-read on every request: a change saved from the
dashboard applies to the next request without a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..analysis import ANALYSIS_VERSION, Analyzer, analysis_from_dict
from ..cache import CacheLevels, cache_key
from ..config_store import TunablesStore
from ..db import Database
from ..embeddings import Embedder, fast_model
from ..errors import ConfigError, InferscaleError, InvalidPromptError
from ..monitor.store import Monitor
from ..providers.health import HealthTracker
from ..providers.llm import call_model, local_cost
from ..registry import ModelSpec, Registry
from ..routing import RouteRequest
from ..routing.policies import get_router, route
from ..settings import STRATEGY_NAMES, Settings, Tunables
from ..types import (
    Analysis,
    AskResult,
    CacheControl,
    CacheHit,
    MemberResult,
    Message,
    RoutingDecision,
    StepTiming,
    Verifier,
)
from ..whatif.log import replay_row
from .runner import run_sync
from .strategies import STRATEGIES, Budget, ExecContext, build_strategy


@dataclass(frozen=True)
class Event:
    """A live event for the dashboard: kind is started | token (streaming text) | finished |
    failed | step. `call_id` tells apart several calls to one model (samples, judge calls) and
    `role` says what the call is for in its strategy ("sample 2", "judge 1", "tier 1", "node 3")."""

    kind: str
    model: str | None = None
    text: str = ""
    member: MemberResult | None = None
    step: StepTiming | None = None
    call_id: int | None = None
    role: str = ""


OnEvent = Callable[[Event], Any]


@dataclass
class _Trace:
    """Per-request scratchpad (never stored on the engine)."""

    calls: list[MemberResult] = field(default_factory=list)
    cache_events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[StepTiming] = field(default_factory=list)
    saved_usd: float = 0.0
    replay: dict[str, Any] | None = None  # this request's row for the what-if replay


class Engine:
    def __init__(self, settings: Settings) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.database = Database(settings.db_path)
        self.registry = Registry(self.database, seed=settings.models_yaml)
        self.monitor = Monitor(self.database)
        self.tunables_store = TunablesStore(self.database)
        self.embedder = Embedder(backend=settings.embedding_backend,
                                 fast=fast_model(settings.models_dir, settings.embedding_backend))
        self.analyzer = Analyzer(self.embedder)
        # L1 semantic + L2/L3/L4 exact levels; `cache` stays the exact store for older callers.
        self.levels = CacheLevels(settings, self.database, self.embedder)
        self.cache = self.levels.exact
        # Cooldowns are shared by every request of this process and persisted for `stats`.
        self.health = HealthTracker(settings.cooldown_failures, settings.cooldown_window_s,
                                    settings.cooldown_s, on_cooldown=self.monitor.record_cooldown)
        self.health.restore(self.monitor.cooldowns())

    # -- settings -------------------------------------------------------------------------------
    def tunables(self) -> Tunables:
        return self.tunables_store.load()

    # -- pricing (used by routers for predictions) ----------------------------------------------
    def predicted_cost(self, spec: ModelSpec, tokens_in: int, tokens_out: int) -> float:
        if spec.is_local:
            return local_cost(spec.latency_prior_ms / 1000, self.settings)
        pin, pout = spec.input_price_per_1m, spec.output_price_per_1m
        if pin is None or pout is None:
            from ..providers.llm import litellm_module

            cost_map = litellm_module(self.settings).model_cost
            info = cost_map.get(spec.model.split("/", 1)[-1]) or cost_map.get(spec.model, {})
            pin = pin if pin is not None else (info.get("input_cost_per_token") or 0) * 1e6
            pout = pout if pout is not None else (info.get("output_cost_per_token") or 0) * 1e6
        return (tokens_in * pin + tokens_out * pout) / 1e6

    # -- the five steps -------------------------------------------------------------------------
    def ask(self, prompt: str, **kw: Any) -> AskResult:
        """Sync wrapper around `aask`; safe to call from any thread."""
        return run_sync(self.aask(prompt, **kw))

    async def aask(
        self,
        prompt: str,
        *,
        system: str | None = None,
        history: list[Message] | None = None,
        strategy: str | None = None,
        models: list[str] | None = None,
        router: str | None = None,
        use_cache: bool = True,
        on_event: OnEvent | None = None,
        strategy_options: dict[str, Any] | None = None,
        cache: CacheControl | None = None,
        source: str = "api",
        tenant: str | None = None,
        verifier: Verifier | None = None,
    ) -> AskResult:
        """`strategy_options` override the strategy's defaults for this request, e.g.
        {"n": 7} for self-consistency or {"tau": 0.6} for cascade (see strategies/).

        `cache` sets what this request may read and write and its partition (`use_cache=False` is
        `CacheControl.off()`); `source` (cli, batch, playground, gateway, experiment…) and `tenant`
        (e.g. a gateway key's name) are recorded with the request; `verifier` scores a candidate
        answer in [0, 1] for strategies that search (it never sees an expected answer)."""
        t_start = time.perf_counter()
        tun = self.tunables()
        messages = _messages(prompt, system, history)
        strategy = strategy or tun.default_strategy
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGY_NAMES)}")
        strat = build_strategy(strategy, tun, strategy_options)
        router_obj = get_router(router or ("fixed" if models else tun.default_router))
        explicit = tuple(self.registry.require_available(m) for m in _dedupe(models or []))
        cc = (cache or CacheControl()) if use_cache and tun.cache_enabled else CacheControl.off()
        # The partition joins every key only when set, so unpartitioned entries keep their keys.
        part = {"namespace": cc.namespace} if cc.namespace else {}
        params = {"max_tokens": tun.max_tokens, "temperature": tun.temperature}
        trace = _Trace()
        emit = _Emit(on_event)

        def step(name: str, t0: float, note: str = "") -> None:
            s = StepTiming(name, (time.perf_counter() - t0) * 1000, note)
            trace.steps.append(s)
            emit(Event("step", step=s))

        request_id = uuid.uuid4().hex
        self.monitor.start_request(request_id, prompt, strategy, router_obj.name, source=source,
                                   tenant=tenant)
        try:
            t0 = time.perf_counter()
            analysis, reused = self._analyze(prompt, system, cc, part, trace)
            step("analysis", t0, ("reused from L2: " if reused else "") + analysis.explain())

            t0 = time.perf_counter()
            candidates = tuple(self.registry.available())
            scope = {
                "messages": messages, "params": params, "strategy": strategy,
                "models": [s.id for s in explicit], "router": router_obj.name,
                "router_config": [tun.complexity_thresholds, tun.budget_usd, tun.fixed_models,
                                  tun.ensemble_k,
                                  *([tun.learned_threshold, tun.learned_lambda]
                                    if router_obj.name == "learned" else [])],
                "strategy_config": [strat.config.model_dump(mode="json"), tun.call_budget],
                "available": [s.id for s in candidates],
                **part,
            }
            l4_key = cache_key("L4", **scope)
            if use_cache and (cache is None or cache.read or cache.write):  # what the cache may see
                trace.replay = replay_row(self.embedder, prompt, system, scope, l4_key, analysis, strategy,
                                          router_obj.name, [s.id for s in explicit])
            hit = self.levels.get(l4_key, tun, max_age_s=cc.ttl_s) if cc.read else None
            if cc.read:
                trace.cache_events.append(_cache_event("L4", hit))
            # Cheapest first: the exact L4 key, then the semantic L1 search within the same scope.
            l1_query, sem = None, None
            if (cc.read or cc.write) and tun.semantic_enabled and hit is None:
                l1_query = self.levels.query(messages, **{k: v for k, v in scope.items() if k != "messages"})
            if cc.read and l1_query is not None:
                # Chroma and SQLite calls block: keep them off the event loop other requests share.
                sem = await asyncio.to_thread(self.levels.lookup, l1_query, tun, max_age_s=cc.ttl_s)
                trace.cache_events.append(_cache_event("L1", sem.match))
            step("cache", t0, _cache_note(cc.read, hit, sem))
            if hit is not None:
                return self._from_cache(request_id, hit, analysis, trace, t_start, emit)
            if sem is not None and sem.match is not None:
                m = sem.match
                return self._from_cache(request_id, m, analysis, trace, t_start, emit, level="L1", extra={
                    "matched_prompt": m.matched_prompt, "similarity": round(m.similarity, 4),
                    "verification": m.reason})

            t0 = time.perf_counter()
            req = RouteRequest(analysis, candidates, strategy, tun, self.predicted_cost, explicit,
                               prompt=prompt, embed=self.embedder.embed_one, home=self.settings.home)
            decision = route(router_obj, req)
            step("routing", t0, decision.reason)

            t0 = time.perf_counter()
            specs = {s.id: s for s in (*candidates, *explicit)}
            ctx = ExecContext(
                decision, specs, self._member_caller(messages, params, cc, part, trace, emit),
                self.embedder, messages=tuple(messages), params=params,
                budget=Budget(max_calls=tun.call_budget, max_usd=tun.budget_usd),
                predict=self.predicted_cost, health=self.health, verifier=verifier,
            )
            outcome = await strat.run(ctx)
            step("execution", t0, f"{len(outcome.members)} member call(s)")

            t0 = time.perf_counter()
            members = outcome.members
            result = AskResult(
                request_id=request_id,
                answer=outcome.answer,
                strategy=strategy,
                analysis=analysis,
                routing=decision,
                cache=None,
                members=members,
                confidence=outcome.confidence,
                cost_usd=sum(m.cost_usd for m in members if not m.cached),
                latency_ms=(time.perf_counter() - t_start) * 1000,
                steps=tuple(trace.steps),
                detail=outcome.detail,
            )
            if cc.write:
                self.levels.put(l4_key, "L4", result.to_json(), result.cost_usd, result.latency_ms, tun)
                if l1_query is not None:
                    await asyncio.to_thread(self.levels.store, l1_query, result.to_json(), result.cost_usd,
                                            result.latency_ms, tun)
            self.monitor.finish_request(result, trace.calls, trace.cache_events, trace.saved_usd,
                                       replay=trace.replay)
            step("monitoring", t0, "request, calls, cache events and routing recorded")
            return _with_steps(result, trace)
        except BaseException as exc:
            msg = str(exc) if isinstance(exc, InferscaleError) else f"{type(exc).__name__}: {exc}"
            self.monitor.fail_request(request_id, msg[:500], trace.calls)
            raise

    def _analyze(self, prompt: str, system: str | None, cc: CacheControl, part: dict[str, str],
                 trace: _Trace) -> tuple[Analysis, bool]:
        """Complexity features are a pure function of the text: keep them (L2) so a repeated
        prompt skips the embedding model entirely."""
        if not (cc.read or cc.write):
            return self.analyzer.analyze(prompt, system), False
        key = cache_key("L2", kind="analysis", version=ANALYSIS_VERSION, prompt=prompt, system=system,
                        **part)
        tun = self.tunables()
        hit = self.levels.get(key, tun, max_age_s=cc.ttl_s) if cc.read else None
        if cc.read:
            trace.cache_events.append(_cache_event("L2", hit))
        if hit is not None:
            return analysis_from_dict(hit.value), True
        t0 = time.perf_counter()
        analysis = self.analyzer.analyze(prompt, system)
        ms = (time.perf_counter() - t0) * 1000
        if cc.write:
            self.levels.put(key, "L2", asdict(analysis), 0.0, ms, tun)
        return analysis, False

    def _from_cache(self, request_id: str, hit: Any, analysis: Any, trace: _Trace,
                    t_start: float, emit: Callable[[Event], None], level: str = "L4",
                    extra: dict[str, Any] | None = None) -> AskResult:
        v = hit.value
        r = v["routing"]
        decision = RoutingDecision(
            policy=r.get("policy", "cache"), models=tuple(r["models"]), strategy=v["strategy"],
            reason=f"served from the {level} cache (originally: {r['reason']})",
            predicted_cost_usd=0.0,
        )
        members = tuple(
            MemberResult(
                model=m["model"], answer=m["answer"], latency_ms=m["latency_ms"],
                tokens_in=m["tokens_in"], tokens_out=m["tokens_out"], cost_usd=m["cost_usd"],
                error=m["error"], cached=True,
            )
            for m in v["members"]
        )
        for m in members:
            emit(Event("finished", model=m.model, member=m))
        trace.saved_usd = hit.cost_usd
        trace.cache_events[-1].update(saved_usd=hit.cost_usd, saved_ms=hit.latency_ms)
        t0 = time.perf_counter()
        result = AskResult(
            request_id=request_id,
            answer=v["answer"],
            strategy=v["strategy"],
            analysis=analysis,
            routing=decision,
            cache=CacheHit(level, hit.key, hit.cost_usd, hit.latency_ms, hit.created_at,
                           {"hits": hit.hits, "original_request_id": v["request_id"], **(extra or {})}),
            members=members,
            confidence=v.get("confidence"),
            cost_usd=0.0,
            latency_ms=(time.perf_counter() - t_start) * 1000,
            steps=tuple(trace.steps),
            detail=v.get("detail") or {},
        )
        self.monitor.finish_request(result, [], trace.cache_events, trace.saved_usd, replay=trace.replay)
        trace.steps.append(StepTiming("monitoring", (time.perf_counter() - t0) * 1000, "recorded"))
        return _with_steps(result, trace)

    def _member_caller(self, messages: list[Message], params: dict[str, Any], cc: CacheControl,
                       part: dict[str, str], trace: _Trace, emit: Callable[[Event], None]) -> Callable:
        call_ids = itertools.count()
        request_messages, request_params = messages, params
        tun = self.tunables()

        async def call(spec: ModelSpec, *, messages: list[Message] | None = None,
                       params: dict[str, Any] | None = None, sample: int = 0,
                       role: str = "") -> MemberResult:
            """Strategies may send their own messages (judge, aggregator, refinement) and params
            (sample temperature); `sample` > 0 keeps repeated samples apart in the L3 cache."""
            messages = request_messages if messages is None else messages
            params = request_params if params is None else params
            call_id = next(call_ids)
            key = cache_key("L3", model=spec.id, litellm_model=spec.model, api_base=spec.api_base,
                            messages=messages, params=params, **({"sample": sample} if sample else {}),
                            **part)
            emit(Event("started", model=spec.id, call_id=call_id, role=role))
            if cc.read:
                hit = self.levels.get(key, tun, max_age_s=cc.ttl_s)
                trace.cache_events.append(_cache_event("L3", hit, spec.id))
                if hit is not None:
                    trace.saved_usd += hit.cost_usd
                    m = MemberResult(**{**hit.value, "cached": True, "attempts": 0})
                    emit(Event("finished", model=spec.id, member=m, call_id=call_id, role=role))
                    return m

            async def on_token(model_id: str, delta: str) -> None:
                emit(Event("token", model=model_id, text=delta, call_id=call_id, role=role))

            def on_cancel(m: MemberResult) -> None:
                trace.calls.append(m)
                emit(Event("failed", model=spec.id, member=m, call_id=call_id, role=role))

            result = await call_model(
                spec, messages, params, self.settings, on_token=on_token if emit.live else None,
                on_cancel=on_cancel,
            )
            trace.calls.append(result)
            self.health.record(spec.id, result.error_class, result.error)
            if cc.write and result.ok:
                value = {k: getattr(result, k) for k in ("model", "answer", "latency_ms", "tokens_in",
                                                         "tokens_out", "cost_usd", "mean_logprob")}
                self.levels.put(key, "L3", value, result.cost_usd, result.latency_ms, tun, model=spec.id)
            emit(Event("finished" if result.ok else "failed", model=spec.id, member=result,
                       call_id=call_id, role=role))
            return result

        return call


def _messages(prompt: str, system: str | None, history: list[Message] | None) -> list[Message]:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidPromptError("prompt is empty")
    if "\x00" in prompt:
        raise InvalidPromptError("prompt contains a NUL byte")
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


def _dedupe(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(i.strip() for i in ids if i.strip()))


def _cache_note(read: bool, hit: Any, sem: Any) -> str:
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


def _cache_event(level: str, hit: Any, model: str | None = None) -> dict[str, Any]:
    return {
        "level": level,
        "hit": int(hit is not None),
        "model": model,
        "saved_usd": hit.cost_usd if hit else 0.0,
        "saved_ms": hit.latency_ms if hit else 0.0,
    }


def _with_steps(result: AskResult, trace: _Trace) -> AskResult:
    return replace(result, steps=tuple(trace.steps))


class _Emit:
    def __init__(self, on_event: OnEvent | None) -> None:
        self._cb = on_event
        self.live = on_event is not None

    def __call__(self, event: Event) -> None:
        if self._cb is not None:
            try:
                self._cb(event)
            except Exception:  # noqa: BLE001 - a broken UI callback must not fail the request
                self._cb = None
                self.live = False


