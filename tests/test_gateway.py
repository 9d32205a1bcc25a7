"""The gateway through the official `openai` client: plain, async, streaming, extra_body, cache per
key, budgets, every error class, metrics — against a real uvicorn on 127.0.0.1 over a real engine
backed by the loopback fake OpenAI server."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.support.fakes import fake_model
from tests.support.gateway import Gateway

PRICED = {"input_price_per_1m": 1000.0, "output_price_per_1m": 2000.0}
MODELS = [
    fake_model("fake-echo", "echo", quality_prior=0.6, **PRICED),
    fake_model("fake-yes", "const-yes", quality_prior=0.5),
    fake_model("fake-drip", "drip-150", quality_prior=0.4),
    fake_model("fake-500", "fail-500", quality_prior=0.2),
    fake_model("fake-503", "fail-503", quality_prior=0.2),
    fake_model("fake-hang", "hang", quality_prior=0.1, timeout_s=0.5),
    fake_model("fake-off", "echo", enabled=False),
]


@pytest.fixture
def gw(make_engine):
    g = Gateway(make_engine(*MODELS, max_attempts=1))
    yield g
    g.stop()


def ask(client, prompt: str, model: str = "fake-echo", **kw):
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kw)


def test_plain_client_answers_explains_and_hits_the_cache_on_repeat(gw, server) -> None:
    client = gw.client(gw.key("team-a"))
    raw = ask(client, "how do tides work?", max_tokens=40, temperature=0.2)
    r = raw.parse()
    assert r.choices[0].message.content == "echo: how do tides work?"
    assert r.object == "chat.completion" and r.model == "fake-echo" and r.usage.total_tokens > 0
    info = r.model_extra["inferscale"]
    assert info["strategy"] == "single" and info["routing"]["models"] == ["fake-echo"]
    assert info["cache"] is None and info["members"][0]["model"] == "fake-echo"
    assert info["cost_usd"] > 0 and info["request_id"] == raw.headers["x-inferscale-request-id"]
    assert raw.headers["x-inferscale-cache"] == "miss" and raw.headers["x-inferscale-models"] == "fake-echo"
    assert server.last_request["max_tokens"] == 40 and server.last_request["temperature"] == 0.2

    again = ask(client, "how do tides work?", max_tokens=40, temperature=0.2)
    assert again.headers["x-inferscale-cache"] == "L4"
    hit = again.parse().model_extra["inferscale"]
    assert hit["cache"]["level"] == "L4" and hit["cost_usd"] == 0
    assert again.parse().choices[0].message.content == r.choices[0].message.content
    assert server.calls["echo"] == 1
    # A reworded question is served semantically, and says what it matched.
    sem = ask(client, "How do tides work", max_tokens=40, temperature=0.2)
    assert sem.headers["x-inferscale-cache"] == "L1"
    c = sem.parse().model_extra["inferscale"]["cache"]
    assert c["matched_prompt"] == "how do tides work?" and 0 < c["similarity"] <= 1
    assert gw.engine.flush(30)  # the gateway answers first and records behind the answer
    rows = gw.engine.database.db.execute("SELECT source, tenant FROM requests").fetchall()
    assert rows == [("gateway", "team-a")] * 3


def test_two_keys_never_share_an_entry_at_any_level(gw, server) -> None:
    a, b = gw.client(gw.key("alpha")), gw.client(gw.key("beta"))
    assert ask(a, "what is a monad?").headers["x-inferscale-cache"] == "miss"
    assert ask(b, "what is a monad?").headers["x-inferscale-cache"] == "miss"
    assert ask(b, "What is a monad").headers["x-inferscale-cache"] == "L1"  # b's own entry
    assert ask(a, "what is a monad?").headers["x-inferscale-cache"] == "L4"
    assert server.calls["echo"] == 2
    c = gw.client(gw.key("gamma"))
    assert ask(c, "What is a monad").headers["x-inferscale-cache"] == "miss"
    assert server.calls["echo"] == 3


def test_async_client_extra_body_strategy_models_and_cache_controls(gw, server) -> None:
    key = gw.key("async")

    async def run():
        client = gw.async_client(key)
        body = {"inferscale": {"strategy": "ensemble", "models": ["fake-echo", "fake-yes"]}}
        r = await client.chat.completions.create(
            model="inferscale/auto", messages=[{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "name a prime"}],
            extra_body=body)
        fresh = await client.chat.completions.with_raw_response.create(
            model="inferscale/auto", messages=[{"role": "system", "content": "Be brief."},
                                               {"role": "user", "content": "name a prime"}],
            extra_body={"inferscale": {**body["inferscale"], "cache": {"no-cache": True}}})
        stored = await client.chat.completions.with_raw_response.create(
            model="fake-yes", messages=[{"role": "user", "content": "leave no trace"}],
            extra_body={"inferscale": {"cache": {"no-store": True}}})
        again = await client.chat.completions.with_raw_response.create(
            model="fake-yes", messages=[{"role": "user", "content": "leave no trace"}])
        await client.close()
        return r, fresh, stored, again

    r, fresh, stored, again = asyncio.run(run())
    info = r.model_extra["inferscale"]
    assert info["strategy"] == "ensemble" and sorted(info["routing"]["models"]) == ["fake-echo", "fake-yes"]
    assert {m["model"] for m in info["members"]} == {"fake-echo", "fake-yes"}
    assert server.last_headers  # the system prompt reached the model
    assert fresh.headers["x-inferscale-cache"] == "miss"  # no-cache: not read, though stored
    assert stored.headers["x-inferscale-cache"] == "miss" and again.headers["x-inferscale-cache"] == "miss"
    assert server.calls["const-yes"] == 4


def test_strategy_as_model_name_and_the_model_list(gw) -> None:
    client = gw.client(gw.key("lister"))
    ids = [m.id for m in client.models.list().data]
    assert {"fake-echo", "fake-yes", "inferscale/auto", "inferscale/single", "inferscale/ensemble",
            "inferscale/self-consistency", "inferscale/moa"} <= set(ids)
    assert "fake-off" not in ids
    r = client.chat.completions.create(model="inferscale/self-consistency",
                                       messages=[{"role": "user", "content": "pick a colour"}],
                                       extra_body={"inferscale": {"models": ["fake-yes"], "options": {"n": 3}}})
    info = r.model_extra["inferscale"]
    assert info["strategy"] == "self-consistency" and len(info["members"]) == 3
    assert r.choices[0].message.content == "yes"


def _stream(client, prompt: str, model: str = "fake-echo", **kw):
    chunks, t0, first = [], time.perf_counter(), None
    with client.chat.completions.with_streaming_response.create(
            model=model, messages=[{"role": "user", "content": prompt}], stream=True, **kw) as resp:
        headers = dict(resp.headers)
        for chunk in resp.parse():
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.perf_counter() - t0
            chunks.append(chunk)
    return chunks, headers, first, time.perf_counter() - t0


def _text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_stream_then_replay_from_the_cache_as_a_stream(gw, server) -> None:
    client = gw.client(gw.key("streamer"))
    _stream(client, "a first stream warms litellm's streaming path", model="fake-drip")
    prompt = "stream these five words please"
    chunks, headers, first, total = _stream(client, prompt, model="fake-drip")
    text = _text(chunks)
    assert text == f"echo: {prompt}" and headers["x-inferscale-cache"] == "miss"
    assert headers["x-inferscale-models"] == "fake-drip"
    # Tokens were forwarded as the model wrote them (150 ms apart), not after it finished.
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 6
    assert first < total - 0.5
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.usage.completion_tokens > 0
    assert last.model_extra["inferscale"]["request_id"] == headers["x-inferscale-request-id"]

    replay, h2, _, total2 = _stream(client, prompt, model="fake-drip")
    assert _text(replay) == text and h2["x-inferscale-cache"] == "L4"
    assert replay[-1].model_extra["inferscale"]["cache"]["level"] == "L4" and total2 < total
    assert server.calls["drip-150"] == 2
    # The streamed answer is an ordinary entry: a plain request is served from it too.
    assert ask(client, prompt, model="fake-drip").headers["x-inferscale-cache"] == "L4"


def test_a_multi_model_strategy_streams_its_final_answer(gw) -> None:
    client = gw.client(gw.key("ens"))
    chunks, headers, _, _ = _stream(client, "say yes", model="inferscale/ensemble",
                                    extra_body={"inferscale": {"models": ["fake-yes", "fake-echo"]}})
    assert headers["x-inferscale-cache"] == "miss" and set(headers["x-inferscale-models"].split(",")) == {
        "fake-yes", "fake-echo"}
    info = chunks[-1].model_extra["inferscale"]
    assert gw.engine.flush(30)
    assert _text(chunks) and _text(chunks) == gw.engine.database.db.execute(
        "SELECT answer FROM requests WHERE id = ?", [info["request_id"]]).fetchone()[0]


def test_budget_refuses_a_spent_key_with_429_naming_the_budget(gw) -> None:
    client = gw.client(gw.key("capped", budget_usd=0.001))
    ask(client, "spend something on this question")  # ~0.02 USD at the fake model's prices
    with pytest.raises(openai.RateLimitError) as err:
        ask(client, "and another question")
    body = err.value.response.json()["error"]
    assert body["code"] == "budget_exceeded" and "budget" in body["message"] and "capped" in body["message"]
    # The charge is written behind the answer (the 429 above counted it before it was written).
    deadline = time.monotonic() + 30
    while (spent := gw.keys.list()[0]).requests == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert spent.spent_usd > 0.001 and spent.requests == 1
    free = gw.client(gw.key("free"))
    assert ask(free, "and another question").parse().choices[0].message.content


def test_auth_errors(gw) -> None:
    key = gw.key("soon-gone")
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        ask(gw.client("isk_000000000000_" + "x" * 43), "hello")
    with pytest.raises(openai.AuthenticationError):
        ask(gw.client(key[:-1] + ("a" if key[-1] != "a" else "b")), "hello")  # wrong secret
    missing = httpx.post(gw.url + "/v1/chat/completions", json={"model": "fake-echo", "messages": []})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"
    assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
    gw.keys.revoke("soon-gone")
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        ask(gw.client(key), "hello")
    assert httpx.get(gw.url + "/health").json()["status"] == "ok"  # probes need no key


BAD_BODIES = [
    ({"model": "fake-echo", "messages": []}, "messages"),
    ({"model": "fake-echo", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"model": "fake-echo", "messages": [{"role": "user", "content": ["not", "text"]}]}, "messages.0.content"),
    ({"model": "fake-echo", "messages": [{"role": "user", "content": 42}]}, "messages.0.content"),
    ({"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
    ({"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"model": "fake-echo", "messages": [{"role": "assistant", "content": "hi"}]}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ({"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}],
      "inferscale": {"strategy": "nonsense"}}, "inferscale.strategy"),
    ({"model": "fake-echo", "messages": [{"role": "user", "content": "hi"}],
      "inferscale": {"cache": {"no-cahce": True}}}, "inferscale.cache.no-cahce"),
]


def test_malformed_bodies_are_400_in_openai_shape(gw) -> None:
    key = gw.key("bad")
    auth = {"Authorization": f"Bearer {key}"}
    for body, param in BAD_BODIES:
        r = httpx.post(gw.url + "/v1/chat/completions", json=body, headers=auth)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert err["param"] == param and err["type"] == "invalid_request_error" and err["message"], body
    r = httpx.post(gw.url + "/v1/chat/completions", content=b'{"model": "fake-echo", "messages": [',
                   headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    with pytest.raises(openai.BadRequestError, match="n=3"):
        ask(gw.client(key), "hello", n=3)
    assert gw.engine.flush(30)
    assert gw.engine.database.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0


def test_bodies_over_10_mb_are_refused_before_they_are_read(gw) -> None:
    auth = {"Authorization": f"Bearer {gw.key('big')}", "content-type": "application/json"}
    big = b'{"model": "fake-echo", "messages": [{"role": "user", "content": "' + b"a" * (11 << 20) + b'"}]}'
    r = httpx.post(gw.url + "/v1/chat/completions", content=big, headers=auth, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_too_large"

    def chunked():  # no Content-Length: counted as it arrives
        yield big[:1000]
        for i in range(1000, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]

    r = httpx.post(gw.url + "/v1/chat/completions", content=chunked(), headers=auth, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "request_too_large"


def test_unknown_model_404_and_failed_models_502_504_with_each_members_error(gw) -> None:
    client = gw.client(gw.key("errs"))
    for model in ("no-such-model", "inferscale/no-such-strategy", "fake-off"):
        with pytest.raises(openai.NotFoundError) as err:
            ask(client, "hello", model=model)
        assert err.value.response.json()["error"]["code"] == "model_not_found"
    with pytest.raises(openai.InternalServerError) as err:
        ask(client, "fail please", model="inferscale/ensemble",
            extra_body={"inferscale": {"models": ["fake-500", "fake-503"]}})
    assert err.value.status_code == 502
    members = err.value.response.json()["inferscale"]["members"]
    assert {m["model"]: m["error_class"] for m in members} == {
        "fake-500": "InternalServerError", "fake-503": "ServiceUnavailableError"}
    with pytest.raises(openai.InternalServerError) as err:
        ask(client, "hang please", model="fake-hang")
    assert err.value.status_code == 504
    assert [m["error_class"] for m in err.value.response.json()["inferscale"]["members"]] == ["Timeout"]
    # A streamed request that fails before its first token is the same JSON error.
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="fake-500", stream=True,
                                       messages=[{"role": "user", "content": "fail streamed"}])
    assert err.value.status_code == 502
    assert gw.engine.flush(30)
    failed = gw.engine.database.db.execute(
        "SELECT COUNT(*) FROM requests WHERE status = 'error' AND source = 'gateway'").fetchone()[0]
    assert failed == 3


def test_no_key_in_clear_anywhere_the_server_writes(gw, home, server, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    key = gw.key("secretive")
    client = gw.client(key)
    ask(client, "keep my secrets")
    _stream(client, "keep my streamed secrets")
    with pytest.raises(openai.AuthenticationError):
        ask(gw.client(key + "x"), "wrong")
    secret = key.split("_", 2)[2]
    gw.engine.database.db.execute("PRAGMA wal_checkpoint(FULL)")
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and b"fake-key-for-tests" not in data, path
    assert secret not in caplog.text and "fake-key-for-tests" not in caplog.text


def test_metrics_count_requests_hits_latency_and_dollars(gw) -> None:
    key = gw.key("metered")
    client = gw.client(key)
    ask(client, "count me")
    ask(client, "count me")
    text = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {key}"}).text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(lines['inferscale_requests_total{source="gateway",status="ok"}']) == 2
    assert float(lines['inferscale_cache_hits_total{level="L4"}']) == 1
    assert float(lines['inferscale_request_latency_seconds_count{source="gateway"}']) == 2
    assert float(lines['inferscale_cost_usd_total{source="gateway"}']) > 0
    assert float(lines['inferscale_saved_usd_total{source="gateway"}']) > 0
    assert httpx.get(gw.url + "/metrics").status_code == 401


def test_no_auth_gateway_needs_no_key(make_engine) -> None:
    g = Gateway(make_engine(*MODELS[:2]), auth=False)
    try:
        r = g.client("anything").chat.completions.create(
            model="fake-yes", messages=[{"role": "user", "content": "open door"}])
        assert r.choices[0].message.content == "yes"
        assert g.engine.flush(30)
        assert g.engine.database.db.execute("SELECT tenant FROM requests").fetchone() == (None,)
    finally:
        g.stop()


def test_a_provider_that_ignores_stream_is_parsed_and_an_empty_answer_is_a_failure(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-nostream", "nostream"), fake_model("fake-blank", "blank"))
    seen: list[str] = []
    r = engine.ask("are you streaming?", models=["fake-nostream"],
                   on_event=lambda e: seen.append(e.text) if e.kind == "token" else None)
    assert r.answer == "echo: are you streaming?" and "".join(seen) == r.answer
    assert r.members[0].tokens_out > 0
    from inferscale.errors import AllModelsFailedError

    with pytest.raises(AllModelsFailedError, match="empty answer"):
        engine.ask("say nothing", models=["fake-blank"])
    with pytest.raises(AllModelsFailedError, match="empty answer"):
        engine.ask("say nothing, streamed", models=["fake-blank"], on_event=lambda e: None)
    levels = engine.database.db.execute(
        "SELECT level FROM cache_entries WHERE level IN ('L1', 'L3', 'L4')").fetchall()
    assert levels.count(("L3",)) == 1 and levels.count(("L4",)) == 1  # only the real answer


def test_an_unusable_answer_is_still_billed_on_the_call_record(make_engine, server) -> None:
    # The provider bills the prompt of every answer it sends, used or not (both attempts here).
    engine = make_engine(fake_model("fake-blank-priced", "blank", input_price_per_1m=1000.0,
                                    output_price_per_1m=0.0), max_attempts=2)
    from inferscale.errors import AllModelsFailedError

    with pytest.raises(AllModelsFailedError) as info:
        engine.ask("charge me for an empty reply", models=["fake-blank-priced"])
    m = info.value.members[0]
    one = len("charge me for an empty reply".split())  # the fake server counts a token per word
    assert m.attempts == 2 and m.tokens_in >= 2 * one
    assert m.cost_usd == pytest.approx(m.tokens_in * 1000.0 / 1e6)
    assert engine.flush(30)
    assert engine.database.db.execute("SELECT cost_usd, tokens_in FROM model_calls").fetchall() == [
        (pytest.approx(m.cost_usd), m.tokens_in)]


def test_keys_cli_and_serve_refusals(cli) -> None:
    from tests.support.fakes import assert_one_line_error

    made = cli("keys", "create", "ci-bot", "--budget-usd", "2.5")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("isk_") and len(key.split("_", 2)[2]) >= 32
    assert all(ch.isalnum() or ch in "-_" for ch in key)
    listed = cli("keys", "list", "--json")
    rows = json.loads(listed.stdout)
    assert rows[0]["name"] == "ci-bot" and rows[0]["budget_usd"] == 2.5 and rows[0]["active"]
    assert key not in listed.stdout and key.split("_", 2)[2] not in cli("keys", "list").stdout
    assert "revoke" in assert_one_line_error(cli("keys", "create", "ci-bot"))
    assert cli("keys", "revoke", "ci-bot").returncode == 0
    assert "no active key" in assert_one_line_error(cli("keys", "revoke", "ci-bot"))
    assert "budget" in assert_one_line_error(cli("keys", "create", "x", "--budget-usd", "-1"))
    assert "non-loopback" in assert_one_line_error(cli("serve", "--no-auth", "--host", "0.0.0.0"))


def test_a_streamed_single_falls_back_before_its_first_token(gw) -> None:
    client = gw.client(gw.key("fallback"))
    chunks, headers, _, _ = _stream(client, "fall back then stream", model="inferscale/single",
                                    extra_body={"inferscale": {"models": ["fake-500", "fake-drip"],
                                                               "router": "fixed"}})
    assert _text(chunks) == "echo: fall back then stream"
    assert headers["x-inferscale-models"] == "fake-drip"  # the model whose tokens were sent
    members = chunks[-1].model_extra["inferscale"]["members"]
    assert [(m["model"], m["error_class"]) for m in members] == [
        ("fake-500", "InternalServerError"), ("fake-drip", None)]


def test_an_embedded_owner_keeps_other_processes_off_the_chroma_directory(make_engine, home, cli,
                                                                         monkeypatch) -> None:
    from inferscale.cache import chroma_server
    from inferscale.settings import Settings
    from tests.support.fakes import assert_one_line_error

    make_engine(*MODELS[:1])
    chroma_dir = Settings.from_env(home).chroma_dir
    chroma_server.acquire(chroma_dir, "embedded")  # this process now owns it, as the CLI would
    try:
        # Another process still answers. Its scope is small, searched in-process from SQLite and
        # never written to Chroma, so L1 works there without the directory...
        proc = cli("ask", "who owns the index?", "--models", "fake-echo", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["answer"] == "echo: who owns the index?"
        again = cli("ask", "Who owns the index", "--models", "fake-echo", "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["cache"]["level"] == "L1", again.stdout
        # ...while a scope Chroma holds is skipped there (a miss, never a second writer).
        with make_engine(*MODELS[:1]).database.tx() as db:
            db.execute("UPDATE semantic_scopes SET indexed = 2")
        monkeypatch.setenv("INFERSCALE_L1_SCAN_MAX", "0")  # its one entry is then past the scan
        third = cli("ask", "Who owns the index?!", "--models", "fake-echo", "--json")
        assert third.returncode == 0 and json.loads(third.stdout)["cache"] is None, third.stdout
        # ...and serve refuses to start a server over a directory someone has open.
        line = assert_one_line_error(cli("serve", "--port", "1", timeout=120))
        assert "open in another process" in line and "inferscale serve" in line
    finally:
        chroma_server.release(chroma_dir)
