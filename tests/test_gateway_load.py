"""The gateway under load and under faults, through the official async `openai` client:
500 requests 50 at a time plus 50 concurrent streams with zero errors and exact row counts, and the
strategies' fault mix (chaos-* models) with every request answered while one model is healthy."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.support.fakes import fake_model
from tests.support.gateway import Gateway


def _prompt(i: int) -> str:
    # Distinct numbers: the semantic level must tell them apart (and does), so each is a new question.
    return f"What is {i} plus {i * 7 + 3}?"


async def _load(g: Gateway, key: str, n: int, streams: int, concurrency: int) -> tuple[list, list]:
    client = g.async_client(key, timeout=120)
    gate = asyncio.Semaphore(concurrency)

    async def plain(i: int):
        async with gate:
            raw = await client.chat.completions.with_raw_response.create(
                model="fake-echo", messages=[{"role": "user", "content": _prompt(i % 450)}])
            return raw.headers["x-inferscale-cache"], raw.parse().choices[0].message.content, i

    async def streamed(i: int):
        text = []
        async with client.chat.completions.with_streaming_response.create(
                model="fake-echo", stream=True,
                messages=[{"role": "user", "content": f"Stream the number {i * 13 + 1}"}]) as resp:
            level = resp.headers["x-inferscale-cache"]
            async for chunk in await resp.parse():
                if chunk.choices:
                    text.append(chunk.choices[0].delta.content or "")
        return level, "".join(text), i

    plain_out = asyncio.gather(*(plain(i) for i in range(n)))
    stream_out = asyncio.gather(*(streamed(i) for i in range(streams)))
    out = await asyncio.gather(plain_out, stream_out)
    await client.close()
    return out[0], out[1]


def test_500_requests_50_at_a_time_and_50_concurrent_streams(make_engine, server) -> None:
    g = Gateway(make_engine(fake_model("fake-echo", "echo")))
    try:
        plain, streams = asyncio.run(_load(g, g.key("load"), 500, 50, 50))
    finally:
        g.stop()
    # Every answer right (a repeated question is served from the cache with the same text).
    assert all(text == f"echo: {_prompt(i % 450)}" for _, text, i in plain)
    assert all(text == f"echo: Stream the number {i * 13 + 1}" for _, text, i in streams)
    levels = Counter(level for level, _, _ in plain + streams)
    misses = levels["miss"]
    assert misses >= 500 and set(levels) <= {"miss", "L4", "L1"}
    db = g.engine.database.db
    assert db.execute("SELECT status, source, tenant, COUNT(*) FROM requests GROUP BY 1, 2, 3").fetchall() == [
        ("ok", "gateway", "load", 550)]
    # One model call per miss, one upstream request per call, no failure anywhere.
    assert db.execute("SELECT COUNT(*), COUNT(error_class) FROM model_calls").fetchone() == (misses, 0)
    assert server.calls["echo"] == misses
    assert g.keys.list()[0].requests == 550


CHAOS = [fake_model(f"chaos-{x}", f"chaos-{x}") for x in "ab"]


def test_the_fault_mix_through_the_gateway_answers_every_request(make_engine, server) -> None:
    # Two models failing 40% of the time (5xx, 429, hangs, malformed bodies) and one healthy one:
    # `single` with fallback, cooldowns on, the cache off (every prompt is new anyway).
    engine = make_engine(*CHAOS, fake_model("fake-echo", "echo"), call_timeout_s=2.0,
                         retry_backoff_s=0.01, max_attempts=2, cooldown_s=2.0)
    server.hang_s = 4.0
    g = Gateway(engine)
    key = g.key("chaos")

    async def run():
        client = g.async_client(key, timeout=120)
        gate = asyncio.Semaphore(16)
        models = ["chaos-a", "chaos-b", "fake-echo"]

        async def one(i: int):
            async with gate:
                r = await client.chat.completions.create(
                    model="inferscale/single", messages=[{"role": "user", "content": f"chaos number {i}"}],
                    extra_body={"inferscale": {"models": models, "router": "fixed",
                                               "cache": {"no-cache": True, "no-store": True}}})
                return i, r

        out = await asyncio.gather(*(one(i) for i in range(150)))
        await client.close()
        return out

    try:
        out = asyncio.run(run())
    finally:
        g.stop()
    assert all(r.choices[0].message.content == f"echo: chaos number {i}" for i, r in out)
    failures = Counter(m["error_class"] for _, r in out for m in r.model_extra["inferscale"]["members"]
                       if m["error_class"])
    assert sum(failures.values()) > 0  # faults were really injected and survived
    assert sum(n for (_, kind), n in server.injected.items() if kind != "ok") > 0
    db = engine.database.db
    assert db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall() == [("ok", 150)]
