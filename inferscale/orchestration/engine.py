"""The engine: analyze → cache → route → execute → monitor, written once as async; `ask` wraps it.

The engine holds no per-request state, so one instance is safely shared by every caller (the
dashboard's sessions, CLI, tests). Tunables are read once at the start of every request: a change
saved from the dashboard applies to the next request without a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from dataclasses import asdict, replace
from typing import Any

from ..analysis import ANALYSIS_VERSION, Analyzer, analysis_from_dict
from ..background import WriteBehind
from ..cache import CacheLevels
from ..cache.request import RequestScope
from ..cache.scope import Query
from ..config_store import TunablesStore
from ..db import Database
from ..embeddings import Embedder, fast_model, run_in_background
from ..errors import InferscaleError
from ..monitor.store import Monitor
from ..providers.health import HealthTracker
from ..providers.llm import call_model, litellm_module
from ..providers.pricing import predicted_cost
from ..redact import clip
from ..registry import ModelSpec, Registry
from ..routing import RouteRequest
from ..routing.policies import route
from ..settings import Settings, Tunables
from ..types import Analysis, AskResult, CacheControl, CacheHit, MemberResult, Message, StepTiming, Verifier
from .cache_judge import build_judge
from .events import Emit, Event, OnEvent
from .replay import replay_row
from .request import Handoff, Plan, Trace, cache_event, cache_note, lookup_cache, plan_request, with_steps
from .runner import Hops, run_sync
from .strategies import Budget, ExecContext
from .strategies.base import CallFn

log = logging.getLogger(__name__)
ASK_FLUSH_WAIT_S = 120.0  # how long the sync `ask` waits for its records before returning anyway


class Engine:
    """The composition root and the pipeline: one instance, shared by every caller of a process.

    `aask` runs analyze → cache → route → execute → monitor for one request; `ask` is its sync
    wrapper. The engine holds no per-request state. Tunables are read once per request (a change
    saved from the dashboard applies to the next one) and passed down to every step.

    Blocking work before the model call (SQLite, Chroma, the embedding model) runs in one hop to
    the engine's own worker threads (`runner.Hops`), never on the event loop, and what follows the
    answer is written behind it (`background.WriteBehind`): concurrent requests keep being served.
    Model calls are async.
    """

    def __init__(self, settings: Settings) -> None:
        settings.ensure_dirs()
        self.settings = settings
        self.database = Database(settings.db_path)
        self.registry = Registry(self.database, seed=settings.models_yaml)
        self.monitor = Monitor(self.database)
        self.monitor.mark_interrupted()  # honest state after a crash: nothing stays `running`
        self.tunables_store = TunablesStore(self.database)
        self.embedder = Embedder(backend=settings.embedding_backend,
                                 fast=fast_model(settings.models_dir, settings.embedding_backend))
        self.analyzer = Analyzer(self.embedder)
        # The bookkeeping a response need not wait for, in order (L1 stores on a writer of their own);
        # `cache` stays the exact store for older callers.
        self.writer = WriteBehind(on_start=run_in_background)
        self.levels = CacheLevels(settings, self.database, self.embedder, writer=self.writer,
                                  l1_writer=WriteBehind("inferscale-l1-writes", on_start=run_in_background))
        self.cache = self.levels.exact
        # Cooldowns are shared by every request of this process and persisted for `stats`.
        self.health = HealthTracker(settings.cooldown_failures, settings.cooldown_window_s,
                                    settings.cooldown_s, on_cooldown=self.monitor.record_cooldown)
        self.health.restore(self.monitor.cooldowns())
        self._warm_lock, self._warmed = threading.Lock(), False
        self.hops = Hops(max(2, settings.n_threads))

    # -- settings -------------------------------------------------------------------------------
    def tunables(self) -> Tunables:
        return self.tunables_store.load()

    def predicted_cost(self, spec: ModelSpec, tokens_in: int, tokens_out: int) -> float:
        """Predicted USD of one call (routers and budgets); see `providers.pricing`."""
        return predicted_cost(spec, tokens_in, tokens_out, self.settings)

    def warm_up(self, background: bool = True) -> threading.Thread | None:
        """Load what a first request would otherwise wait for: litellm, both embedding graphs and
        the analysis prototypes. Once per engine; in a background thread by default (the Playground
        starts it when it opens, so its first request does not pay seconds of imports). Not a
        daemon: exit waits for it, since a daemon frozen mid-import at exit keeps the import lock
        and a finaliser that imports then hangs the process (`runner.shutdown`)."""
        with self._warm_lock:
            if self._warmed:
                return None
            self._warmed = True

        def work() -> None:
            try:
                litellm_module(self.settings)
                self.analyzer.analyze("warm up")
                self.embedder.embed(["warm up"])
            except Exception as exc:  # noqa: BLE001 - warming is an optimisation; requests still work
                log.warning("warm-up failed: %s: %s", type(exc).__name__, exc)

        if not background:
            work()
            return None
        thread = threading.Thread(target=work, name="inferscale-warm-up")
        thread.start()
        return thread

    # -- the five steps -------------------------------------------------------------------------
    def ask(self, prompt: str, **kw: Any) -> AskResult:
        """Sync wrapper around `aask`; safe to call from any thread. Returns once the request's
        cache entries and monitor rows are written, so what follows sees them."""
        try:
            return run_sync(self.aask(prompt, **kw))
        finally:
            # Bounded: a stuck store (a hung Chroma server) must not hang the caller with its answer.
            if not self.flush(ASK_FLUSH_WAIT_S):
                log.warning("the request's records are still being written after %.0f s", ASK_FLUSH_WAIT_S)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the writes of every request answered so far (`aask` returns before them)."""
        return self.writer.flush(timeout) and self.levels.flush(timeout)

    def close(self) -> None:
        """Finish the queued writes and stop the worker and writer threads."""
        self.hops.close()
        self.writer.close()
        self.levels.close()

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
        params: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> AskResult:
        """`strategy_options` override the strategy's defaults for this request, e.g.
        {"n": 7} for self-consistency or {"tau": 0.6} for cascade (see strategies/).

        `cache` sets what this request may read and write and its partition (`use_cache=False` is
        `CacheControl.off()`); `source` (cli, batch, playground, gateway, experiment…) and `tenant`
        (e.g. a gateway key's name) are recorded with the request; `verifier` scores a candidate
        answer in [0, 1] for strategies that search (it never sees an expected answer).
        `params` override the tunables' call parameters (the gateway's temperature, max_tokens);
        `request_id` lets a caller name the request before it ends (streamed response headers)."""
        t_start = time.perf_counter()
        request_id = request_id or uuid.uuid4().hex
        trace = Trace()
        emit = Emit(on_event)

        def step(name: str, t0: float, note: str = "") -> None:
            s = StepTiming(name, (time.perf_counter() - t0) * 1000, note)
            trace.steps.append(s)
            emit(Event("step", step=s))

        # One worker-thread hop for all the blocking work before the model call (tunables and
        # registry reads, the start row, the analysis, the cache lookup): a hop is a loop round
        # trip, and on a busy machine each one cost more than the work it carried.
        handoff = Handoff()
        try:
            plan, analysis, (hit, sem, l1_query) = await self.hops.run(
                self._prepare, request_id, prompt, system, history, strategy, models, router, use_cache, cache,
                strategy_options, params, source, tenant, trace, handoff)
        except asyncio.CancelledError as exc:  # the worker goes on; one of us ends the request it started
            if handoff.caller_cancelled():
                self._failed(request_id, exc, trace)
            raise
        for s in trace.steps:  # timed in the worker, announced from the loop (callbacks live here)
            emit(Event("step", step=s))
        tun, messages, strategy, strat = plan.tun, list(plan.messages), plan.strategy, plan.strat
        router_obj = plan.router
        explicit, candidates, cc, params, scope = plan.explicit, plan.candidates, plan.cc, plan.params, plan.scope
        try:
            if cc.read or cc.write:  # what the cache may see, the what-if replay may replay
                trace.replay = replay_row(self.embedder, prompt, system, scope, analysis, strategy,
                                          router_obj.name, list(scope.models))
            if hit is not None:
                return await self._from_cache(request_id, hit, analysis, trace, t_start, emit)
            if sem is not None and sem.match is not None:
                m = sem.match
                return await self._from_cache(request_id, m, analysis, trace, t_start, emit, level="L1",
                                              extra={"matched_prompt": m.matched_prompt,
                                                     "similarity": round(m.similarity, 4),
                                                     "verification": m.reason,
                                                     **({"judge": sem.judged.model,
                                                         "judge_cost_usd": sem.judged.cost_usd}
                                                        if sem.judged else {})})

            t0 = time.perf_counter()
            req = RouteRequest(analysis, candidates, strategy, tun, self.predicted_cost, explicit,
                               models_needed=strat.models_needed, prompt=prompt,
                               embed=self.embedder.embed_one, home=self.settings.home)
            decision = route(router_obj, req)
            step("routing", t0, decision.reason)

            t0 = time.perf_counter()
            specs = {s.id: s for s in (*candidates, *explicit)}
            ctx = ExecContext(
                decision, specs, self._member_caller(messages, params, cc, scope, tun, trace, emit),
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
                cost_usd=sum(m.cost_usd for m in members if not m.cached) + trace.judge_usd,
                latency_ms=(time.perf_counter() - t_start) * 1000,
                steps=tuple(trace.steps),
                detail=outcome.detail,
            )
            self._finish(result, scope, l1_query, tun, cc, trace)
            step("monitoring", t0, "request, calls, cache events and routing handed to the writer")
            return with_steps(result, trace)
        except BaseException as exc:
            self._failed(request_id, exc, trace)
            raise

    def _failed(self, request_id: str, exc: BaseException, trace: Trace) -> None:
        msg = str(exc) if isinstance(exc, InferscaleError) else f"{type(exc).__name__}: {exc}"
        self.writer.submit(self.monitor.fail_request, request_id, clip(msg, 500), list(trace.calls))

    # -- blocking parts, run in a worker thread ---------------------------------------------------
    def _prepare(self, request_id: str, prompt: str, system: str | None, history: list[Message] | None,
                 strategy: str | None, models: list[str] | None, router: str | None, use_cache: bool,
                 cache: CacheControl | None, strategy_options: dict[str, Any] | None,
                 params: dict[str, Any] | None, source: str, tenant: str | None, trace: Trace,
                 handoff: Handoff) -> tuple[Plan, Analysis, tuple[Any, Any, Query | None]]:
        """Plan, record the start, analyse, look up the cache; the steps' timings go to `trace`.
        A request starts once the writers have room: on the loop their `submit` does not wait."""
        self.writer.wait_for_room()
        self.levels.wait_for_room()
        plan = plan_request(self.tunables(), self.registry, self.settings.home, prompt, system, history,
                            strategy, models, router, use_cache, cache, strategy_options, params)
        t0 = time.perf_counter()
        analysis, reused = self._start(request_id, prompt, system, plan.strategy, plan.router.name, source,
                                       tenant, plan.tun, plan.cc, plan.scope, trace)
        trace.steps.append(StepTiming("analysis", (time.perf_counter() - t0) * 1000,
                                      ("reused from L2: " if reused else "") + analysis.explain()))
        t0 = time.perf_counter()
        try:
            looked = lookup_cache(self.levels, plan.scope, plan.tun, plan.cc, trace,
                                  build_judge(plan.tun, self.registry, self.settings, self.health))
        except BaseException as exc:
            self._failed(request_id, exc, trace)
            raise
        trace.steps.append(StepTiming("cache", (time.perf_counter() - t0) * 1000,
                                      cache_note(plan.cc.read, looked[0], looked[1])))
        if handoff.worker_done():  # its caller was cancelled meanwhile: nobody else will end it
            self._failed(request_id, asyncio.CancelledError(), trace)
        return plan, analysis, looked

    def _start(self, request_id: str, prompt: str, system: str | None, strategy: str, router: str,
               source: str, tenant: str | None, tun: Tunables, cc: CacheControl, scope: RequestScope,
               trace: Trace) -> tuple[Analysis, bool]:
        """Record the request as running, then analyse it. Complexity features are a pure function
        of the text: keep them (L2) so a repeated prompt skips the embedding model entirely."""
        # Written now, not behind: a request that started is on record even if the process dies
        # before it ends (it then shows as interrupted). Only what follows the answer is deferred.
        self.monitor.start_request(request_id, prompt, strategy, router, source=source, tenant=tenant)
        try:
            if not (cc.read or cc.write):
                return self.analyzer.analyze(prompt, system), False
            key = scope.l2_key(prompt, system, ANALYSIS_VERSION)
            hit = self.levels.get(key, tun, max_age_s=cc.ttl_s) if cc.read else None
            if cc.read:
                trace.cache_events.append(cache_event("L2", hit))
            if hit is not None:
                return analysis_from_dict(hit.value), True
            t0 = time.perf_counter()
            analysis = self.analyzer.analyze(prompt, system)
            if cc.write:
                self.levels.put_later(key, "L2", asdict(analysis), 0.0, (time.perf_counter() - t0) * 1000, tun)
            return analysis, False
        except BaseException as exc:
            self._failed(request_id, exc, trace)
            raise

    def _finish(self, result: AskResult, scope: RequestScope, l1_query: Query | None, tun: Tunables,
                cc: CacheControl, trace: Trace) -> None:
        """Hand the request's cache entries and monitor rows to the writer (off the response path)."""
        if cc.write:
            value = result.to_json()
            self.levels.put_later(scope.l4_key(), "L4", value, result.cost_usd, result.latency_ms, tun)
            if l1_query is not None:
                self.levels.store_later(l1_query, value, result.cost_usd, result.latency_ms, tun)
        self.writer.submit(self.monitor.finish_request, result, list(trace.calls), list(trace.cache_events),
                           trace.saved_usd, replay=trace.replay)

    async def _from_cache(self, request_id: str, hit: Any, analysis: Analysis, trace: Trace,
                          t_start: float, emit: Emit, level: str = "L4",
                          extra: dict[str, Any] | None = None) -> AskResult:
        stored = AskResult.from_json(hit.value)
        decision = replace(stored.routing, reason=f"served from the {level} cache (originally: "
                           f"{stored.routing.reason})", predicted_cost_usd=0.0)
        members = tuple(replace(m, cached=True) for m in stored.members)
        for m in members:
            emit(Event("finished", model=m.model, member=m))
        trace.saved_usd = hit.cost_usd
        trace.cache_events[-1].update(saved_usd=hit.cost_usd, saved_ms=hit.latency_ms)
        t0 = time.perf_counter()
        result = replace(
            stored, request_id=request_id, analysis=analysis, routing=decision,
            cache=CacheHit(level, hit.key, hit.cost_usd, hit.latency_ms, hit.created_at,
                           {"hits": hit.hits, "original_request_id": stored.request_id, **(extra or {})}),
            members=members, cost_usd=trace.judge_usd, latency_ms=(time.perf_counter() - t_start) * 1000,
            steps=tuple(trace.steps),
        )
        # No model answered; an L1 judge's call, if one was made, is this request's only call.
        self.writer.submit(self.monitor.finish_request, result, list(trace.calls), list(trace.cache_events),
                           trace.saved_usd, trace.replay)
        trace.steps.append(StepTiming("monitoring", (time.perf_counter() - t0) * 1000, "handed to the writer"))
        return with_steps(result, trace)

    def _member_caller(self, messages: list[Message], params: dict[str, Any], cc: CacheControl,
                       scope: RequestScope, tun: Tunables, trace: Trace,
                       emit: Emit) -> CallFn:
        call_ids = itertools.count()
        request_messages, request_params = messages, params

        async def call(spec: ModelSpec, *, messages: list[Message] | None = None,
                       params: dict[str, Any] | None = None, sample: int = 0,
                       role: str = "") -> MemberResult:
            """Strategies may send their own messages (judge, aggregator, refinement) and params
            (sample temperature); `sample` > 0 keeps repeated samples apart in the L3 cache."""
            messages = request_messages if messages is None else messages
            params = request_params if params is None else params
            call_id = next(call_ids)
            key = scope.l3_key(spec, messages, params, sample)
            emit(Event("started", model=spec.id, call_id=call_id, role=role))
            if cc.read:
                hit = await self.hops.run(self.levels.get, key, tun, cc.ttl_s)
                trace.cache_events.append(cache_event("L3", hit, spec.id))
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
                                                         "tokens_out", "cost_usd", "mean_logprob",
                                                         "truncated")}
                self.levels.put_later(key, "L3", value, result.cost_usd, result.latency_ms, tun, spec.id)
            emit(Event("finished" if result.ok else "failed", model=spec.id, member=result,
                       call_id=call_id, role=role))
            return result

        return call


__all__ = ["Engine", "Event", "OnEvent"]
