"""The engine against the fake OpenAI-compatible server, through litellm's real HTTP path:
answers, cost, the L3/L4 caches, retries, fallbacks, ensembles with failing members, timeouts,
streaming."""

from __future__ import annotations

import pytest

from inferscale.errors import AllModelsFailedError, InvalidPromptError, ModelUnavailableError
from tests.support.fakes import fake_model

ECHO = fake_model("fake-echo", "echo", input_price_per_1m=3.0, output_price_per_1m=7.0)


def _count(engine, table: str, where: str = "1", params: tuple = ()) -> int:
    return engine.monitor.count(table, where, list(params))


def _request_row(engine, request_id: str) -> dict:
    return next(engine.database.db.query("SELECT * FROM requests WHERE id = ?", [request_id]))


def test_answer_and_cost_from_registry_prices(make_engine, server) -> None:
    engine = make_engine(ECHO)
    prompt = "tell me about sqlite write ahead logging"

    result = engine.ask(prompt, models=["fake-echo"])

    assert result.answer == f"echo: {prompt}"
    (member,) = result.members
    assert member.ok and member.attempts == 1
    # The fake server counts whitespace-separated words as tokens.
    assert member.tokens_in == len(prompt.split())
    assert member.tokens_out == len(f"echo: {prompt}".split())
    expected = (member.tokens_in * 3.0 + member.tokens_out * 7.0) / 1e6
    assert member.cost_usd == pytest.approx(expected)
    assert result.cost_usd == pytest.approx(expected)
    assert server.calls["echo"] == 1
    # The prices litellm is given for its own logging stay out of the provider's request body.
    assert not {k for k in server.last_request if "cost" in k}

    row = _request_row(engine, result.request_id)
    assert row["status"] == "ok" and row["answer"] == result.answer
    assert row["cost_usd"] == pytest.approx(expected)
    calls = list(engine.database.db.query(
        "SELECT * FROM model_calls WHERE request_id = ?", [result.request_id]))
    assert [(c["model"], c["tokens_in"], c["error_class"]) for c in calls] == [
        ("fake-echo", member.tokens_in, None)]
    assert calls[0]["cost_usd"] == pytest.approx(expected)


def test_repeated_ask_is_an_l4_hit(make_engine, server) -> None:
    engine = make_engine(ECHO)
    first = engine.ask("what is a write ahead log?", models=["fake-echo"])
    calls_before = _count(engine, "model_calls")
    server_before = server.calls["echo"]

    again = engine.ask("what is a write ahead log?", models=["fake-echo"])

    cache = again.to_json()["cache"]
    assert cache is not None and cache["level"] == "L4"
    assert cache["original_request_id"] == first.request_id
    assert cache["saved_usd"] == pytest.approx(first.cost_usd)
    assert again.answer == first.answer
    assert again.cost_usd == 0.0
    assert all(m.cached for m in again.members)
    assert _count(engine, "model_calls") == calls_before
    assert server.calls["echo"] == server_before
    row = _request_row(engine, again.request_id)
    assert row["status"] == "ok" and row["cache_level"] == "L4"
    assert row["saved_usd"] == pytest.approx(first.cost_usd)
    assert _count(engine, "cache_events", "request_id = ? AND level = 'L4' AND hit = 1",
                  (again.request_id,)) == 1


def test_use_cache_false_bypasses_every_level(make_engine, server) -> None:
    engine = make_engine(ECHO)
    engine.ask("cache me", models=["fake-echo"])
    bypass = engine.ask("cache me", models=["fake-echo"], use_cache=False)
    assert bypass.cache is None
    assert not bypass.members[0].cached
    assert server.calls["echo"] == 2
    assert _count(engine, "model_calls") == 2
    assert _count(engine, "cache_events", "request_id = ?", (bypass.request_id,)) == 0


def test_cache_disabled_by_tunable(make_engine, server) -> None:
    engine = make_engine(ECHO)
    engine.tunables_store.set("cache_enabled", "false")
    engine.ask("cache me", models=["fake-echo"])
    second = engine.ask("cache me", models=["fake-echo"])
    assert second.cache is None
    assert server.calls["echo"] == 2


def test_l3_reuses_one_models_output_across_strategies(make_engine, server) -> None:
    engine = make_engine(ECHO, fake_model("fake-const", "const-yes"))
    prompt = "is sqlite a good embedded database?"
    ens = engine.ask(prompt, strategy="ensemble", models=["fake-echo", "fake-const"])
    assert {m.model for m in ens.members if m.ok} == {"fake-echo", "fake-const"}
    server_before = sum(server.calls.values())
    calls_before = _count(engine, "model_calls")

    single = engine.ask(prompt, strategy="single", models=["fake-echo"])

    assert single.cache is None  # a different request scope: not an L4 hit
    (member,) = single.members
    assert member.cached and member.answer == f"echo: {prompt}"
    assert single.answer == f"echo: {prompt}"
    assert sum(server.calls.values()) == server_before
    assert _count(engine, "model_calls") == calls_before
    assert _count(engine, "cache_events", "request_id = ? AND level = 'L3' AND hit = 1 AND model = ?",
                  (single.request_id, "fake-echo")) == 1


def test_flaky_model_succeeds_after_one_retry(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-flaky", "flaky-1"))
    result = engine.ask("try again please", models=["fake-flaky"])
    (member,) = result.members
    assert member.ok and member.attempts == 2
    assert result.answer == "echo: try again please"
    assert server.calls["flaky-1"] == 2  # our one retry, and no hidden SDK retries on top
    row = next(engine.database.db.query("SELECT attempts, error_class FROM model_calls"))
    assert row == {"attempts": 2, "error_class": None}


def test_failing_first_choice_falls_back(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-fail", "fail-500"), ECHO)
    result = engine.ask("fall back", strategy="single", models=["fake-fail", "fake-echo"])
    failed, ok = result.members
    assert failed.model == "fake-fail" and failed.error_class == "InternalServerError"
    assert failed.attempts == 2
    assert ok.model == "fake-echo" and ok.ok
    assert result.answer == "echo: fall back"
    assert server.calls["fail-500"] == 2
    rows = engine.database.db.execute(
        "SELECT model, error_class FROM model_calls WHERE request_id = ? ORDER BY id", [result.request_id]
    ).fetchall()
    assert rows == [("fake-fail", "InternalServerError"), ("fake-echo", None)]


def test_auth_errors_are_not_retried(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-401", "fail-401"), ECHO)
    result = engine.ask("who am i", models=["fake-401", "fake-echo"])
    assert result.members[0].error_class == "AuthenticationError"
    assert result.members[0].attempts == 1
    assert server.calls["fail-401"] == 1
    assert result.answer == "echo: who am i"


def test_ensemble_survives_failing_members(make_engine, server) -> None:
    engine = make_engine(
        ECHO,
        fake_model("fake-const", "const-agreed"),
        fake_model("fake-fail", "fail-500"),
        fake_model("fake-malformed", "malformed"),
        fake_model("fake-empty", "empty"),
    )
    ids = ["fake-echo", "fake-const", "fake-fail", "fake-malformed", "fake-empty"]
    result = engine.ask("vote on this", strategy="ensemble", models=ids)

    by_model = {m.model: m for m in result.members}
    assert set(by_model) == set(ids)
    assert by_model["fake-echo"].ok and by_model["fake-const"].ok
    assert result.answer in {"echo: vote on this", "agreed"}
    assert result.confidence is not None and 0.0 <= result.confidence <= 1.0
    assert by_model["fake-fail"].error_class == "InternalServerError"
    # A body that does not parse and a reply without choices: failures with a named class.
    assert by_model["fake-malformed"].error_class and by_model["fake-empty"].error_class
    reported = {m["model"]: m["error"] for m in result.to_json()["members"]}
    for failed in ("fake-fail", "fake-malformed", "fake-empty"):
        assert reported[failed].startswith(by_model[failed].error_class + ":")
    errors = dict(engine.database.db.execute(
        "SELECT model, error_class FROM model_calls WHERE request_id = ?", [result.request_id]).fetchall())
    assert errors == {m: by_model[m].error_class for m in ids}


def test_all_members_failing_raises_and_records_an_error(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-fail", "fail-500"), fake_model("fake-malformed", "malformed"))
    with pytest.raises(AllModelsFailedError) as info:
        engine.ask("nobody answers", strategy="ensemble", models=["fake-fail", "fake-malformed"])
    assert "fake-fail" in str(info.value) and "fake-malformed" in str(info.value)

    (row,) = engine.database.db.query("SELECT * FROM requests")
    assert row["status"] == "error"
    assert "fake-fail" in row["error"]
    failed = engine.database.db.execute(
        "SELECT model, error_class FROM model_calls WHERE request_id = ? ORDER BY model", [row["id"]]
    ).fetchall()
    assert [m for m, _ in failed] == ["fake-fail", "fake-malformed"]
    assert all(cls for _, cls in failed)
    # A failure is never cached: the next identical ask calls the models again.
    before = server.calls["fail-500"]
    with pytest.raises(AllModelsFailedError):
        engine.ask("nobody answers", strategy="ensemble", models=["fake-fail", "fake-malformed"])
    assert server.calls["fail-500"] == before + 2


def test_hanging_model_times_out_and_falls_back(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-hang", "hang"), ECHO, call_timeout_s=0.5)
    result = engine.ask("are you there?", strategy="single", models=["fake-hang", "fake-echo"])
    hung, ok = result.members
    assert hung.error_class == "Timeout"
    assert hung.latency_ms >= 500
    assert ok.ok and result.answer == "echo: are you there?"


def test_streaming_events_carry_tokens_and_the_answer(make_engine, server) -> None:
    engine = make_engine(ECHO)
    events = []
    prompt = "stream these few words back"
    result = engine.ask(prompt, models=["fake-echo"], on_event=events.append)

    kinds = [e.kind for e in events]
    tokens = [e.text for e in events if e.kind == "token"]
    assert len(tokens) > 1
    assert "".join(tokens) == result.answer == f"echo: {prompt}"
    assert kinds.index("started") < kinds.index("token")
    last_token = len(kinds) - 1 - kinds[::-1].index("token")
    finished = [i for i, e in enumerate(events) if e.kind == "finished"]
    assert finished and finished[0] > last_token
    assert events[finished[0]].member.answer == result.answer
    assert {e.step.name for e in events if e.kind == "step"} >= {"analysis", "cache", "routing", "execution"}
    (member,) = result.members
    assert member.tokens_in > 0 and member.tokens_out > 0  # usage from the final stream chunk
    assert member.cost_usd > 0


def test_a_broken_event_callback_does_not_fail_the_request(make_engine, server) -> None:
    engine = make_engine(ECHO)

    def explode(event) -> None:
        raise RuntimeError("ui went away")

    result = engine.ask("still answer", models=["fake-echo"], on_event=explode)
    assert result.answer == "echo: still answer"


@pytest.mark.parametrize("prompt", ["", "   \n\t ", "nul\x00byte"])
def test_invalid_prompts_are_rejected(make_engine, server, prompt: str) -> None:
    engine = make_engine(ECHO)
    with pytest.raises(InvalidPromptError):
        engine.ask(prompt, models=["fake-echo"])
    assert sum(server.calls.values()) == 0


def test_disabled_model_cannot_be_asked_for(make_engine, server) -> None:
    engine = make_engine(ECHO)
    engine.registry.set_enabled("fake-echo", False)
    with pytest.raises(ModelUnavailableError, match="disabled"):
        engine.ask("hello", models=["fake-echo"])
    assert server.calls["echo"] == 0


def test_prompt_longer_than_the_context_window(make_engine, server) -> None:
    engine = make_engine(ECHO, fake_model("fake-tiny", context_window=64))
    engine.tunables_store.set("max_tokens", "16")
    long_prompt = " ".join(f"word{i}" for i in range(200))
    with pytest.raises(InvalidPromptError, match="context window"):
        engine.ask(long_prompt, models=["fake-tiny"])
    # Without an explicit choice the model that fits is used.
    assert engine.ask(long_prompt).routing.models == ("fake-echo",)
    assert server.calls["echo"] == 1
