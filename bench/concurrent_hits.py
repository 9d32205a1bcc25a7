"""Throughput of concurrent cache hits: 100 requests at once on one event loop.

Twenty prompts are asked once (misses, stored), then 100 requests for them (L4 hits, and L1 hits for
reworded ones) are started together with `asyncio.gather` on the engine's own loop. What blocks the
loop (SQLite, Chroma, the embedding model) serialises these requests; work handed to threads lets
the loop keep serving the others. Reported: wall time of the batch, requests per second, and the
p50/p95 latency each request saw. Run: `python -m bench.concurrent_hits [--quick]`.
"""

from __future__ import annotations

import asyncio
import time

from bench.common import ECHO_ID, Env, Goal, ms, p50, p95, table

CONCURRENT = 100


def run(env: Env) -> list[Goal]:
    from inferscale.orchestration.runner import run_sync

    engine = env.engine("concurrent", echo=True)
    prompts = [f"Concurrent question {i}: name one use of the number {i * 7}." for i in range(20)]
    engine.ask("Warm-up: load litellm and the embedding model before timing.", models=[ECHO_ID])
    for p in prompts:
        assert engine.ask(p, models=[ECHO_ID]).cache is None
    rounds = 3 if env.quick else 10

    async def one(p: str) -> float:
        t0 = time.perf_counter()
        r = await engine.aask(p, models=[ECHO_ID])
        assert r.cache is not None and r.answer == f"echo: {p}", r.cache
        return (time.perf_counter() - t0) * 1000

    async def batch() -> tuple[float, list[float]]:
        t0 = time.perf_counter()
        lat = await asyncio.gather(*(one(prompts[i % len(prompts)]) for i in range(CONCURRENT)))
        return (time.perf_counter() - t0) * 1000, list(lat)

    walls: list[float] = []
    lats: list[float] = []
    run_sync(batch())  # warm-up batch
    for _ in range(rounds):
        wall, lat = run_sync(batch())
        walls.append(wall)
        lats += lat
    rps = CONCURRENT / (p50(walls) / 1000)
    print(f"\n### Concurrent cache hits ({CONCURRENT} at once, {rounds} rounds)\n")
    print(table(["batch wall p50 ms", "requests/s", "request p50 ms", "request p95 ms"],
                [(ms(p50(walls)), f"{rps:.0f}", ms(p50(lats)), ms(p95(lats)))]))
    return [Goal(f"{CONCURRENT} concurrent L4 hits", "informational", f"{rps:.0f} req/s "
                 f"(batch {p50(walls):.0f} ms)", None, f"request p50 {p50(lats):.1f} ms")]


if __name__ == "__main__":
    from bench.common import standalone

    standalone(run)
