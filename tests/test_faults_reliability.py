"""Provider reliability: retries with backoff and Retry-After, per-model timeouts, malformed bodies,
context-window checks, fallbacks and cooldowns — against the fake server through litellm."""

from __future__ import annotations

import json
import logging
import time

import pytest

from inferscale.providers.health import Cooldown, HealthTracker
from inferscale.providers.llm import context_problem
from inferscale.providers.retry import RetryPolicy
from inferscale.registry import ModelSpec
from inferscale.settings import Settings
from tests.support.fakes import fake_model

ECHO = fake_model("echo", "echo")


def _calls(engine) -> list[dict]:
    return list(engine.database.db.query(
        "SELECT model, error_class, attempts, attempt_errors FROM model_calls ORDER BY id"))


def test_retry_after_is_honoured(make_engine, server) -> None:
    engine = make_engine(fake_model("limited", "ratelimit-400"))
    result = engine.ask("please wait for me", models=["limited"], use_cache=False)
    (m,) = result.members
    assert m.ok and m.attempts == 2 and m.attempt_errors == ("RateLimitError",)
    assert m.latency_ms >= 400  # waited as long as the provider asked, not the 10 ms backoff
    assert _calls(engine) == [
        {"model": "limited", "error_class": None, "attempts": 2, "attempt_errors": '["RateLimitError"]'}]


def test_a_long_retry_after_falls_back_instead_of_waiting(make_engine, server) -> None:
    engine = make_engine(fake_model("limited", "ratelimit-9000"), ECHO, retry_after_max_s=1.0)
    result = engine.ask("no time to wait", strategy="single", models=["limited", "echo"], use_cache=False)
    limited, echo = result.members
    assert limited.error_class == "RateLimitError" and limited.attempts == 1 and limited.latency_ms < 1000
    assert echo.ok and result.answer == "echo: no time to wait"


def test_exponential_backoff_on_5xx(make_engine, server) -> None:
    engine = make_engine(fake_model("down", "fail-503"), ECHO, max_attempts=4, retry_backoff_s=0.05)
    result = engine.ask("are you up", strategy="single", models=["down", "echo"], use_cache=False)
    down = result.members[0]
    assert down.attempts == 4 and down.attempt_errors == ("ServiceUnavailableError",) * 4
    assert server.calls["fail-503"] == 4
    assert down.latency_ms >= 0.05 * 0.5 * (1 + 2 + 4) * 1000  # three growing waits, jitter >= 0.5
    assert result.answer == "echo: are you up"


def test_retry_policy_delays() -> None:
    p = RetryPolicy(max_attempts=5, backoff_s=0.1, backoff_max_s=0.3, retry_after_max_s=2)
    for attempt, base in ((1, 0.1), (2, 0.2)):
        assert base * 0.5 <= p.delay(attempt, None) <= base * 1.5
    assert p.delay(4, None) <= 0.3  # capped
    assert p.delay(5, None) is None  # out of attempts
    assert p.delay(1, 1.5) == 1.5 and p.delay(1, 3.0) is None  # Retry-After: honoured, or go elsewhere


@pytest.mark.parametrize(("behaviour", "error_class", "attempts"), [
    ("malformed", "MalformedResponseError", 2),
    ("empty", "MalformedResponseError", 2),
    ("fail-400", "BadRequestError", 1),
    ("fail-401", "AuthenticationError", 1),
    ("fail-502", "BadGatewayError", 2),
])
def test_error_classes_and_what_is_retried(make_engine, server, behaviour, error_class, attempts) -> None:
    engine = make_engine(fake_model("bad", behaviour), ECHO)
    result = engine.ask(f"probe {behaviour}", strategy="single", models=["bad", "echo"], use_cache=False)
    bad = result.members[0]
    assert bad.error_class == error_class and bad.attempts == attempts
    assert server.calls[behaviour] == attempts
    assert _calls(engine)[0]["attempt_errors"] == json.dumps([error_class] * attempts)
    assert result.answer.startswith("echo:")


def test_per_model_timeout(make_engine, server) -> None:
    engine = make_engine(fake_model("hung", "hang", timeout_s=0.3), ECHO, call_timeout_s=30)
    t0 = time.perf_counter()
    result = engine.ask("hello?", strategy="single", models=["hung", "echo"], use_cache=False)
    hung = result.members[0]
    assert hung.error_class == "Timeout" and hung.attempts == 2
    assert 600 <= hung.latency_ms < 3000 and time.perf_counter() - t0 < 10


def test_failures_are_logged_with_their_class(make_engine, server, caplog) -> None:
    engine = make_engine(fake_model("down", "fail-500"), ECHO)
    with caplog.at_level(logging.INFO, logger="inferscale.providers"):
        engine.ask("log it", strategy="single", models=["down", "echo"], use_cache=False)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("InternalServerError" in m for m in messages) == 3  # 2 attempts + the final failure


def test_context_window_is_checked_before_calling(make_engine, server) -> None:
    # The question fits every model; the aggregator's prompt (question + proposals) does not fit
    # the small one, which is therefore never called and the next model aggregates.
    engine = make_engine(fake_model("p1", "const-alpha"), fake_model("p2", "const-beta"),
                         fake_model("small", "const-never", context_window=60))
    engine.tunables_store.set("max_tokens", "16")
    result = engine.ask("Why is the sky blue?", strategy="moa", models=["p1", "p2"], use_cache=False,
                        strategy_options={"aggregator": "small"})
    small = next(m for m in result.members if m.model == "small")
    assert small.error_class == "ContextWindowExceededError" and small.attempts == 0
    assert server.calls["const-never"] == 0
    assert result.detail["aggregator"]["model"] == "p1" and result.answer == "alpha"
    spec = ModelSpec(id="tiny", model="openai/x", context_window=40)
    settings = Settings.from_env()
    assert context_problem(spec, [{"role": "user", "content": "hi"}], {"max_tokens": 8}, settings) is None
    assert "context window (40)" in context_problem(
        spec, [{"role": "user", "content": "word " * 40}], {"max_tokens": 8}, settings)


def test_cooldown_skips_a_failing_model_and_is_visible_in_stats(make_engine, server, cli) -> None:
    engine = make_engine(fake_model("bad", "fail-500"), ECHO, cooldown_failures=2, cooldown_s=120)
    for i in range(4):
        result = engine.ask(f"request {i}", strategy="single", models=["bad", "echo"], use_cache=False)
        assert result.answer == f"echo: request {i}"
    assert server.calls["fail-500"] == 4  # 2 requests x 2 attempts, then the model was cooling down
    skipped = result.members[0]
    assert skipped.error_class == "ModelCoolingDown" and skipped.attempts == 0
    stats = engine.monitor.stats()["cooldowns"]["bad"]
    assert stats["cooling_down"] and stats["cooldowns"] == 1
    assert stats["last_error_class"] == "InternalServerError"
    assert 100 < stats["remaining_s"] <= 120

    # Another process sees it: `inferscale stats` (--json and text), and a new engine respects it.
    proc = cli("stats", "--json")
    assert json.loads(proc.stdout)["cooldowns"]["bad"]["cooling_down"] is True
    assert "bad: cooling down for" in cli("stats").stdout
    fresh = make_engine(cooldown_failures=2, cooldown_s=120)
    again = fresh.ask("request 5", strategy="single", models=["bad", "echo"], use_cache=False)
    assert again.members[0].error_class == "ModelCoolingDown" and server.calls["fail-500"] == 4


def test_a_cooling_model_is_still_tried_when_no_routed_model_is_healthy(make_engine, server) -> None:
    engine = make_engine(fake_model("flaky", "flaky-2"), ECHO, cooldown_failures=1, cooldown_s=120)
    engine.ask("first", strategy="single", models=["flaky", "echo"], use_cache=False)  # trips it
    assert engine.health.cooling("flaky") is not None
    result = engine.ask("first", strategy="single", models=["flaky"], use_cache=False)
    assert result.answer == "echo: first" and result.members[0].attempts == 1


def test_health_tracker_window_and_ignored_errors() -> None:
    now = [1000.0]
    seen: list[Cooldown] = []
    h = HealthTracker(failures=3, window_s=10, cooldown_s=5, on_cooldown=seen.append, clock=lambda: now[0])
    h.record("m", "Timeout")
    now[0] += 11  # the first failure leaves the window
    h.record("m", "InternalServerError")
    h.record("m", "ContextWindowExceededError")  # the prompt's fault, not the model's
    h.record("m", "Cancelled")
    assert h.cooling("m") is None and not seen
    h.record("m", "RateLimitError")
    h.record("m", "Timeout", "Timeout: slow")
    assert h.cooling("m") == 1016.0 and seen[0].failures == 3 and seen[0].error_class == "Timeout"
    now[0] += 6
    assert h.cooling("m") is None and h.snapshot() == {}
    h2 = HealthTracker(clock=lambda: now[0])
    h2.restore([Cooldown("x", now[0] + 3, 3, "Timeout", ""), Cooldown("old", now[0] - 1, 3, "Timeout", "")])
    assert h2.snapshot() == {"x": now[0] + 3}
