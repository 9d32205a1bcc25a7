"""Every model call goes through `litellm.acompletion`: timeouts, retries with backoff, cost.

`call_model` never raises for a provider failure: it returns a `MemberResult` whose `error` names
the error class, so one member failing never takes the others' answers with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from ..errors import FailureKind
from ..limits import answer_char_cap, cap_answer, word_tokens
from ..redact import clip, remember_secret
from ..registry import ModelSpec
from ..settings import Settings, prepare_offline_env
from ..types import MemberResult, Message
from .local import LocalConfig, make_handler
from .modelfiles import LOCAL_MODELS
from .retry import MalformedResponseError, RetryPolicy, classify, retry_after

OnToken = Callable[[str, str], Awaitable[None] | None]  # (model_id, text_delta)

log = logging.getLogger("inferscale.providers")
log.addHandler(logging.NullHandler())  # a library logs; the application decides where it goes
ERROR_CHARS = 300  # a provider error is cut to this many characters, after redaction


_setup_lock = threading.Lock()
_local_cfg: LocalConfig | None = None
_litellm: Any = None


def litellm_module(settings: Settings) -> Any:
    """Import and configure litellm once per process (offline cost map, local provider, quiet)."""
    global _litellm, _local_cfg
    with _setup_lock:
        _local_cfg = LocalConfig(settings.models_dir, settings.n_threads, settings.local_n_ctx)
        if _litellm is None:
            prepare_offline_env()
            import litellm

            # A call cancelled by an early-stopping strategy can leave litellm holding a provider
            # coroutine it never awaits; the cancellation itself is already recorded.
            warnings.filterwarnings(
                "ignore", message=r"coroutine '[\w.<>]*\.a(completion|streaming)' was never awaited",
                category=RuntimeWarning,
            )
            litellm.suppress_debug_info = True
            litellm.telemetry = False
            logging.getLogger("LiteLLM").setLevel(logging.CRITICAL)
            litellm.custom_provider_map = [
                {"provider": "local", "custom_handler": make_handler(lambda: _local_cfg)}
            ]
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
            _litellm = litellm
        _register_local_prices(_litellm, settings.cpu_hour_usd)
        return _litellm


async def aclose_clients() -> None:
    """Close litellm's pooled async HTTP clients, on the loop they are bound to (call it there);
    nothing when litellm was never loaded in this process."""
    if _litellm is None:
        return
    try:
        from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients
    except ImportError:  # another litellm layout: its own exit hook still closes them
        return
    await close_litellm_async_clients()


_registered_cpu_hour_usd: float | None = None


def _register_local_prices(litellm: Any, cpu_hour_usd: float) -> None:
    # Local calls are priced by wall-clock seconds, so litellm.completion_cost works for them too.
    # Registering rebuilds litellm's model maps (~1 ms): only when the price really changed.
    global _registered_cpu_hour_usd
    if _registered_cpu_hour_usd == cpu_hour_usd:
        return
    _registered_cpu_hour_usd = cpu_hour_usd
    per_second = cpu_hour_usd / 3600.0
    litellm.register_model({
        f"local/{name}": {
            "input_cost_per_second": per_second,
            "output_cost_per_second": 0.0,
            "litellm_provider": "local",
            "mode": "chat",
        }
        for name in LOCAL_MODELS
    })


def local_cost(seconds: float, settings: Settings) -> float:
    return seconds * settings.cpu_hour_usd / 3600.0


def _tokens(resp: Any) -> tuple[int, int]:
    """(prompt, completion) tokens a response's usage reports; 0 for what it leaves out."""
    usage = getattr(resp, "usage", None)
    return int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


def _registry_priced(spec: ModelSpec) -> bool:
    return spec.input_price_per_1m is not None or spec.output_price_per_1m is not None


def _cost(litellm: Any, spec: ModelSpec, resp: Any, seconds: float, settings: Settings) -> float:
    tin, tout = _tokens(resp)
    if spec.is_local:
        return local_cost(seconds, settings)
    if _registry_priced(spec):
        return (tin * (spec.input_price_per_1m or 0) + tout * (spec.output_price_per_1m or 0)) / 1e6
    if spec.model in _UNPRICED:
        return 0.0
    try:
        return float(litellm.completion_cost(completion_response=resp, model=spec.model))
    except Exception:  # noqa: BLE001 - a model missing from the cost map is priced at 0, not fatal
        _UNPRICED.add(spec.model)  # litellm raises on every lookup of it: remember, don't re-raise
        return 0.0


_UNPRICED: set[str] = set()


def call_kwargs(spec: ModelSpec, messages: list[Message], params: dict[str, Any], timeout: float) -> dict:
    kw: dict[str, Any] = {"model": spec.model, "messages": messages, "timeout": timeout, **params}
    if params.get("logprobs"):
        kw["drop_params"] = True  # providers without log-probabilities simply return none
    if not spec.is_local:
        # We retry ourselves; the provider SDK's own retries (openai: 2, with backoff) would
        # multiply calls, eat the timeout and turn a 500 into a misleading Timeout.
        kw["max_retries"] = 0
    if not spec.is_local and _registry_priced(spec):
        # litellm prices every response for its own logging, searching its cost map (and its
        # fallbacks, for a model it does not know) each time; given the registry's prices it
        # skips that: 0.4-0.5 ms less CPU per call (3.6-3.8 against 4.0-4.2 ms, loopback fake
        # backend). Our own cost (`_cost`) is computed from the same prices either way.
        kw["input_cost_per_token"] = (spec.input_price_per_1m or 0.0) / 1e6
        kw["output_cost_per_token"] = (spec.output_price_per_1m or 0.0) / 1e6
    if spec.api_base:
        kw["api_base"] = spec.api_base
    if spec.api_key_env:
        # Read at call time, passed straight to litellm; never stored or logged by inferscale.
        kw["api_key"] = os.environ.get(spec.api_key_env, "")
        remember_secret(kw["api_key"])  # so any text carrying it later is redacted
    return kw


async def _one_attempt(
    litellm: Any, kw: dict[str, Any], spec: ModelSpec, timeout: float, on_token: OnToken | None
) -> Any:
    if on_token is None:
        return await asyncio.wait_for(litellm.acompletion(**kw), timeout)

    async def consume() -> Any:
        chunks = []
        opts = {} if spec.is_local else {"stream_options": {"include_usage": True}}
        stream = await litellm.acompletion(stream=True, **opts, **kw)
        if (whole := await _unstreamed(litellm, stream)) is not None:
            text = whole.choices[0].message.content if whole.choices else None
            if isinstance(text, str) and text.strip():
                r = on_token(spec.id, text)
                if asyncio.iscoroutine(r):
                    await r
            return whole
        received, cap = 0, answer_char_cap(kw.get("max_tokens"))
        async for chunk in stream:
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if received > cap:
                break  # past the cap: stop reading (the answer is cut to the cap anyway)
            chunks.append(chunk)
            if delta:
                received += len(delta)
                r = on_token(spec.id, delta)
                if asyncio.iscoroutine(r):
                    await r
        return litellm.stream_chunk_builder(chunks, messages=kw["messages"])

    return await asyncio.wait_for(consume(), timeout)


async def _unstreamed(litellm: Any, stream: Any) -> Any:
    """The provider ignored `stream: true` and sent one JSON body (litellm would read it as an
    empty stream: an empty answer reported as a success). Parse that body instead; None when the
    answer really is a stream."""
    response = getattr(getattr(stream, "completion_stream", None), "response", None)
    ctype = str(getattr(response, "headers", {}).get("content-type", ""))
    if response is None or "json" not in ctype:
        return None
    import json

    try:
        return litellm.ModelResponse(**json.loads(await response.aread()))
    except Exception as exc:  # noqa: BLE001
        raise MalformedResponseError("the provider ignored stream: true and its JSON body is not a "
                                     f"chat completion ({type(exc).__name__})") from exc


async def call_model(
    spec: ModelSpec,
    messages: list[Message],
    params: dict[str, Any],
    settings: Settings,
    on_token: OnToken | None = None,
    timeout: float | None = None,
    on_cancel: Callable[[MemberResult], None] | None = None,
) -> MemberResult:
    """Call one model: context-window check, per-model timeout, retries with exponential backoff
    on 429/5xx/timeouts/malformed bodies (honouring Retry-After), cost.

    Never raises for a provider failure. If the caller cancels it (a strategy stopping early), the
    partial record is handed to `on_cancel` first, so the attempts already made are still counted.
    """
    litellm = litellm_module(settings)
    timeout = timeout or spec.timeout_s or (settings.local_timeout_s if spec.is_local else settings.call_timeout_s)
    policy = RetryPolicy.from_settings(settings)
    started = time.perf_counter()
    if problem := context_problem(spec, messages, params, settings):
        return _failed(spec, started, FailureKind.CONTEXT, problem, 0, ())
    kw = call_kwargs(spec, messages, params, timeout)
    errors: list[str] = []
    kind, why = "", ""
    made = 0  # attempts started
    # Answers that arrived but could not be used (empty, no content) were still billed by the
    # provider: their tokens and cost go on the call's record, whatever the retries then do.
    billed = Billed()
    try:
        for attempt in range(1, policy.max_attempts + 1):
            made = attempt
            t0 = time.perf_counter()
            resp = None
            try:
                resp = await _one_attempt(litellm, kw, spec, timeout, on_token)
                return billed.onto(_result(litellm, spec, resp, started, t0, attempt, tuple(errors), settings,
                                           params.get("max_tokens")))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - classified and reported, never propagated
                if resp is not None:
                    billed.add(resp, _cost(litellm, spec, resp, time.perf_counter() - t0, settings))
                kind, retryable = classify(exc)
                why = f"no answer within {timeout:g} s" if kind == "Timeout" else _short(exc, spec)
                errors.append(kind)
                log.info("%s attempt %d failed: %s: %s", spec.id, attempt, kind, why)
                delay = policy.delay(attempt, retry_after(exc)) if retryable else None
                if delay is None:
                    break
                await asyncio.sleep(delay)
    except asyncio.CancelledError:
        if on_cancel is not None:
            in_flight = (FailureKind.CANCELLED,) if made > len(errors) else ()
            on_cancel(billed.onto(_failed(spec, started, FailureKind.CANCELLED, "the strategy stopped early",
                                          made, (*errors, *in_flight))))
        raise
    if errors and errors[-1] == "Timeout":
        # Say what was really waited: a per-attempt figure alone hid the retries (245 s reported
        # as "no answer within 120 s").
        waited = time.perf_counter() - started
        why = (f"no answer within {timeout:g} s per attempt, {len(errors)} attempt(s), "
               f"{waited:.0f} s waited in all")
    log.warning("%s failed after %d attempt(s): %s: %s", spec.id, len(errors), kind, why)
    return billed.onto(_failed(spec, started, kind, why, len(errors), tuple(errors)))


def estimate_tokens(messages: list[Message]) -> int:
    """Tokenizer-free upper-side estimate (~1.3 tokens per word or mark, +4 per message)."""
    return sum(word_tokens(m.get("content") or "") + 4 for m in messages)


def context_problem(spec: ModelSpec, messages: list[Message], params: dict[str, Any],
                    settings: Settings) -> str | None:
    """Why this call cannot fit the model's context window, or None when it fits."""
    window = min(spec.context_window, settings.local_n_ctx) if spec.is_local else spec.context_window
    need = estimate_tokens(messages) + int(params.get("max_tokens") or 0)
    if need <= window:
        return None
    return f"~{need} tokens with the answer, more than {spec.id}'s context window ({window})"


def _result(litellm: Any, spec: ModelSpec, resp: Any, started: float, t0: float, attempt: int,
            errors: tuple[str, ...], settings: Settings, max_tokens: int | None = None) -> MemberResult:
    choices = getattr(resp, "choices", None) or []
    content = choices[0].message.content if choices else None
    if not isinstance(content, str):
        raise MalformedResponseError("provider returned no message content")
    if not content.strip():  # never a success, so never cached
        raise MalformedResponseError("provider returned an empty answer")
    tokens_in, tokens_out = _tokens(resp)
    answer, truncated = cap_answer(content.strip(), max_tokens)
    if truncated:
        log.warning("%s answered %d characters, more than max_tokens allows: cut", spec.id, len(content))
    return MemberResult(
        model=spec.id,
        answer=answer,
        truncated=truncated,
        latency_ms=(time.perf_counter() - started) * 1000,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=_cost(litellm, spec, resp, time.perf_counter() - t0, settings),
        attempts=attempt,
        attempt_errors=errors,
        mean_logprob=_mean_logprob(choices[0]),
    )


def _mean_logprob(choice: Any) -> float | None:
    lp = getattr(choice, "logprobs", None)
    content = lp.get("content") if isinstance(lp, dict) else getattr(lp, "content", None)
    values = [
        v for t in content or []
        if isinstance(v := (t.get("logprob") if isinstance(t, dict) else getattr(t, "logprob", None)),
                      int | float)
    ]
    return sum(values) / len(values) if values else None


class Billed:
    """Tokens and cost of the responses a call received but could not use."""

    def __init__(self) -> None:
        self.tokens_in = self.tokens_out = 0
        self.cost_usd = 0.0

    def add(self, resp: Any, cost_usd: float) -> None:
        tin, tout = _tokens(resp)
        self.tokens_in += tin
        self.tokens_out += tout
        self.cost_usd += cost_usd

    def onto(self, m: MemberResult) -> MemberResult:
        if not (self.tokens_in or self.tokens_out or self.cost_usd):
            return m
        return replace(m, tokens_in=m.tokens_in + self.tokens_in, tokens_out=m.tokens_out + self.tokens_out,
                       cost_usd=m.cost_usd + self.cost_usd)


def _failed(spec: ModelSpec, started: float, kind: str, why: str, attempts: int,
            errors: tuple[str, ...]) -> MemberResult:
    return MemberResult.failure(spec.id, kind, why, latency_ms=(time.perf_counter() - started) * 1000,
                                attempts=attempts, attempt_errors=errors)


def _short(exc: BaseException, spec: ModelSpec) -> str:
    # Redacted before the cut: providers sometimes echo the key back, and a key straddling the
    # cut would no longer be recognised (see inferscale/redact.py).
    key_var = spec.api_key_env
    return clip(str(exc), ERROR_CHARS, [os.environ.get(key_var) if key_var else None]) or type(exc).__name__
