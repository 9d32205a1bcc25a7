"""The contract every registered strategy keeps, run through the real engine against the fake server
(no local models): it answers, stays inside the call and dollar budgets, survives a failing member,
reports every call it starts as finished or failed, and leaves nothing running when it stops early.

A new strategy is checked here as soon as it is in `STRATEGIES`; `OPTIONS` only makes a strategy
that needs a scorer use the exact-answer check instead of a judge model.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from inferscale.errors import AllModelsFailedError, FailureKind
from inferscale.orchestration.engine import Event
from inferscale.orchestration.strategies import STRATEGIES
from tests.support.fakes import fake_model

Q = "Which number do you pick when asked for one?"
OPTIONS: dict[str, dict[str, Any]] = {
    "best-of-n": {"scorer": "exact", "expected": "42"},
    "tree-search": {"scorer": "exact", "expected": "42"},
}
NAMES = list(STRATEGIES)
SLOW_MS = 3000


def _ask(engine: Any, name: str, models: list[str], **kw: Any) -> Any:
    return engine.ask(Q, strategy=name, models=models, use_cache=False,
                      strategy_options=OPTIONS.get(name, {}), **kw)


def _requests(server: Any) -> int:
    return sum(server.calls.values())


def _check_outcome(name: str, result: Any) -> None:
    assert result.strategy == name
    assert result.detail["kind"] == name
    assert set(result.detail["budget"]) >= {"calls", "max_calls", "spent_usd", "max_usd", "denied"}
    assert result.members, "every outcome lists the calls it made"
    assert result.cost_usd == pytest.approx(sum(m.cost_usd for m in result.members if not m.cached))


@pytest.mark.parametrize("name", NAMES)
def test_answers(make_engine, server, name: str) -> None:
    engine = make_engine(fake_model("a", "const-42"), fake_model("b", "const-42"))
    result = _ask(engine, name, ["a", "b"])
    assert result.answer == "42"
    _check_outcome(name, result)
    # Every call answered, except stragglers an early stop cancelled (a race on a busy machine).
    ok = [m for m in result.members if m.ok]
    assert all(m.ok or m.error_class == "Cancelled" for m in result.members), result.members
    assert ok
    assert len(result.members) == result.detail["budget"]["calls"]
    assert len(ok) <= _requests(server) <= len(result.members)


@pytest.mark.parametrize("name", NAMES)
def test_respects_the_call_budget(make_engine, server, name: str) -> None:
    engine = make_engine(fake_model("a", "cycle-42_7"), fake_model("b", "cycle-7_42"))
    engine.tunables_store.set("call_budget", "2")
    engine.tunables_store.set("samples_n", "6")
    engine.tunables_store.set("tree_budget", "6")
    try:
        result = _ask(engine, name, ["a", "b"])
    except AllModelsFailedError as exc:
        assert "budget" in str(exc)
    else:
        _check_outcome(name, result)
        assert result.detail["budget"]["calls"] <= 2
    assert _requests(server) <= 2


@pytest.mark.parametrize("name", NAMES)
def test_respects_the_dollar_budget(make_engine, server, name: str) -> None:
    # ~$0.15 predicted per call (prompt + 128 answer tokens at $1000 per 1M), ~$0.03 really spent:
    # $0.35 admits two calls at once, a few more one after another; never more than $0.35.
    price = {"input_price_per_1m": 1000, "output_price_per_1m": 1000}
    engine = make_engine(fake_model("a", "cycle-42_7", **price), fake_model("b", "cycle-7_42", **price))
    engine.tunables_store.set("budget_usd", "0.35")
    engine.tunables_store.set("samples_n", "6")
    try:
        result = _ask(engine, name, ["a", "b"])
    except AllModelsFailedError as exc:
        assert "budget" in str(exc)
    else:
        _check_outcome(name, result)
        assert 0 < result.cost_usd <= 0.35
        assert result.detail["budget"]["spent_usd"] <= 0.35
        assert result.detail["budget"]["calls"] == _requests(server)
    assert _requests(server) <= 0.35 / 0.02


@pytest.mark.parametrize("name", NAMES)
def test_survives_one_member_failing(make_engine, server, name: str) -> None:
    # The failing model is listed first and is the cheapest and weakest, so every strategy meets it
    # where it would start.
    engine = make_engine(fake_model("bad", "fail-500", quality_prior=0.1),
                         fake_model("a", "const-42", quality_prior=0.5, input_price_per_1m=1,
                                    output_price_per_1m=1),
                         fake_model("b", "const-42", quality_prior=0.6, input_price_per_1m=1,
                                    output_price_per_1m=1))
    result = _ask(engine, name, ["bad", "a", "b"])
    assert result.answer == "42"
    _check_outcome(name, result)
    failed = [m for m in result.members if not m.ok]
    # The failing model's calls fail; any other failure is a straggler cancelled once the answer
    # was settled (self-consistency stops when the majority cannot change, whoever is sampled).
    assert all((m.model == "bad" and m.error_class == "InternalServerError")
               or m.error_class == FailureKind.CANCELLED for m in failed), failed
    assert bool(failed) == (server.calls["fail-500"] > 0)
    if name != "tree-search":  # the search may never pick the failing action
        assert failed, "the failing model was called"


@pytest.mark.parametrize("name", NAMES)
def test_every_started_call_is_reported_finished_or_failed(make_engine, server, name: str) -> None:
    engine = make_engine(fake_model("bad", "fail-500", quality_prior=0.1), fake_model("a", "const-42"),
                         fake_model("b", "const-42"))
    events: list[Event] = []
    result = _ask(engine, name, ["bad", "a", "b"], on_event=events.append)
    started = [e.call_id for e in events if e.kind == "started"]
    ended = [e.call_id for e in events if e.kind in ("finished", "failed")]
    assert started and sorted(started) == sorted(ended) == list(range(len(started)))
    assert len(started) == len([m for m in result.members if m.error_class != FailureKind.COOLING_DOWN])
    for e in events:
        if e.kind == "started":
            assert e.role and e.model in ("bad", "a", "b")
    assert {e.step.name for e in events if e.kind == "step" and e.step} >= {"analysis", "execution"}


@pytest.mark.parametrize("name", NAMES)
def test_stopping_early_leaves_nothing_running(make_engine, server, name: str) -> None:
    # "seq" answers fast three times, then slowly; "slow" always answers late. A strategy that
    # races its calls must cancel the stragglers once its answer is settled.
    engine = make_engine(fake_model("seq", f"cycle-42_42_42_42@{SLOW_MS}_42@{SLOW_MS}", quality_prior=0.1),
                         fake_model("b", "const-42", quality_prior=0.5),
                         fake_model("slow", f"cycle-42@{SLOW_MS}", quality_prior=0.9))
    events: list[Event] = []
    t0 = time.perf_counter()
    result = _ask(engine, name, ["seq", "b", "slow"], on_event=events.append)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    assert result.answer == "42"
    _check_outcome(name, result)
    started = {e.call_id for e in events if e.kind == "started"}
    ended = {e.call_id for e in events if e.kind in ("finished", "failed")}
    assert started == ended, "a call was still running when the request returned"
    cancelled = [m for m in result.members if m.error_class == FailureKind.CANCELLED]
    early = result.detail.get("early_stop")
    if early is not None:  # the strategy races its calls and says what it cancelled
        assert early["stopped"] and early["cancelled"] == len(cancelled) >= 1
        assert elapsed_ms < SLOW_MS, "the stragglers were waited for"
    else:
        assert not cancelled
