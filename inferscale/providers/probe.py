"""`test connection`: one tiny call to a model, reporting its latency or the provider's error.

Works for disabled models too (so a model can be checked before it is enabled); a missing key
variable is reported by name without calling anything. Run it with the shared loop, e.g.
`run_sync(probe_model(spec, settings))` from `inferscale.orchestration.runner`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import ModelSpec
from ..settings import Settings
from .llm import call_model

PROBE_PROMPT = "Reply with the word OK."


@dataclass(frozen=True)
class ProbeResult:
    model: str
    ok: bool
    latency_ms: float
    answer: str | None = None
    error: str | None = None


async def probe_model(spec: ModelSpec, settings: Settings, max_tokens: int = 3,
                      timeout: float = 60.0) -> ProbeResult:
    """Call `spec` once with a short prompt and at most `max_tokens` (1-5) output tokens."""
    if not 1 <= max_tokens <= 5:
        raise ValueError("a probe asks for 1-5 tokens")
    if var := spec.missing_key():
        return ProbeResult(spec.id, False, 0.0, error=f"environment variable {var} is not set")
    m = await call_model(
        spec,
        [{"role": "user", "content": PROBE_PROMPT}],
        {"max_tokens": max_tokens, "temperature": 0.0},
        settings,
        timeout=timeout,
    )
    return ProbeResult(spec.id, m.ok, m.latency_ms, m.answer, m.error)
