"""The engine's side of the L1 judge: `semantic_judge_model` resolved in the registry and called
through `providers.call_model` like any model (its price from the registry or litellm's cost map),
with one attempt bounded by `semantic_judge_timeout_s`. The cache decides when to ask
(`cache.judge`); this module only knows how."""

from __future__ import annotations

from dataclasses import replace

from ..cache.judge import Judge
from ..errors import ConfigError, ModelUnavailableError
from ..providers.health import HealthTracker
from ..providers.llm import call_model
from ..registry import Registry
from ..settings import Settings, Tunables
from ..types import MemberResult, Message
from .runner import run_sync

# "yes" or "no" is one token; a few more leave room for a capital and a full stop.
JUDGE_PARAMS = {"max_tokens": 5, "temperature": 0.0}
ROLE = "cache judge"  # how the call is named in the request's records


def build_judge(tun: Tunables, registry: Registry, settings: Settings,
                health: HealthTracker | None = None) -> Judge | None:
    """The judge the tunables configure, or None when `semantic_judge_model` is empty (the default).

    The model is looked up when a borderline candidate is actually judged, so a lookup without one
    costs nothing; a model removed, disabled, without its key or made local since it was set is a
    failed judgement (a miss, with the reason), never a hit. With the engine's `health`, its failures
    count towards a cooldown as any call's do, and a judge cooling down is not asked (no wait)."""
    model_id = tun.semantic_judge_model
    if not model_id:
        return None
    timeout = tun.semantic_judge_timeout_s
    one_attempt = replace(settings, max_attempts=1)  # a retry would double the wait of the lookup

    def ask(messages: list[Message]) -> MemberResult:
        spec = registry.require_available(model_id)
        if spec.is_local:
            raise ConfigError(f"semantic_judge_model {model_id!r} is a local model; it must be remote")
        if health is not None and health.cooling(model_id) is not None:
            raise ModelUnavailableError(f"{model_id} is cooling down after failures")
        # The lookup runs in a worker thread; the call runs on the shared loop, which is free.
        result = run_sync(call_model(spec, messages, dict(JUDGE_PARAMS), one_attempt, timeout=timeout),
                          timeout=timeout + 5.0)
        if health is not None:
            health.record(model_id, result.error_class, result.error)
        return replace(result, role=ROLE)

    return Judge(model_id, ask, tun.semantic_judge_floor)
