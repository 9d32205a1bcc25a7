"""Goal 3: latency of a request answered from the L4 (final result) cache.

Twenty distinct prompts are asked once through `Engine.ask` (miss: fake server call, result stored),
then asked again in rotation. Every repeat must be an L4 hit. Measured: the wall time of the sync
`Engine.ask` from the calling thread (what a CLI or dashboard caller waits), and the engine's own
`AskResult.latency_ms` plus its steps, so a reader can see what a hit still costs.
"""

from __future__ import annotations

import time

from bench.common import ECHO_ID, Env, Goal, ms, p50, p95, table

GOAL_MS = 10.0


def run(env: Env) -> list[Goal]:
    engine = env.engine("cache", echo=True)
    prompts = [f"Cached question number {i}: what is {i} plus {i}?" for i in range(20)]
    engine.ask("Warm-up: load litellm and MiniLM before timing anything.", models=[ECHO_ID])
    calls_before = env.server.calls["echo"]
    miss = []
    for p in prompts:
        t0 = time.perf_counter()
        r = engine.ask(p, models=[ECHO_ID])
        miss.append((time.perf_counter() - t0) * 1000)
        assert r.cache is None and r.answer == f"echo: {p}"
    calls_after_prime = env.server.calls["echo"]

    n = 100 if env.quick else 400
    warm = 10
    wall: list[float] = []
    internal: list[float] = []
    steps: dict[str, list[float]] = {}
    for i in range(-warm, n):
        p = prompts[i % len(prompts)]
        t0 = time.perf_counter()
        r = engine.ask(p, models=[ECHO_ID])
        dt = (time.perf_counter() - t0) * 1000
        assert r.cache is not None and r.cache.level == "L4", "expected an L4 hit"
        assert r.answer == f"echo: {p}"
        if i < 0:
            continue
        wall.append(dt)
        internal.append(r.latency_ms)
        for s in r.steps:
            steps.setdefault(s.name, []).append(s.ms)
    assert env.server.calls["echo"] == calls_after_prime, "a cache hit reached the provider"

    print(f"\n### 3. Cache-hit latency (L4 hit, {len(prompts)} prompts x {n // len(prompts)} repeats, "
          f"`Engine.ask` from the main thread)\n")
    rows = [
        ("`Engine.ask` wall time, L4 hit", len(wall), ms(p50(wall)), ms(p95(wall))),
        ("`AskResult.latency_ms` (inside the engine)", len(internal), ms(p50(internal)), ms(p95(internal))),
    ]
    rows += [(f"  step: {name}", len(v), ms(p50(v)), ms(p95(v))) for name, v in steps.items()]
    rows.append(("first ask (miss: analysis + fake server + store)", len(miss), ms(p50(miss)), ms(p95(miss))))
    print(table(["measurement", "n", "p50 ms", "p95 ms"], rows))
    print(f"\nProvider calls: {calls_after_prime - calls_before} while priming, 0 during the "
          f"{n + warm} hits.")
    return [Goal("3. cache-hit `Engine.ask` latency (p50)", f"<= {GOAL_MS:g} ms",
                 f"{p50(wall):.2f} ms (p95 {p95(wall):.2f})", p50(wall) <= GOAL_MS,
                 f"engine-internal p50 {p50(internal):.2f} ms")]


if __name__ == "__main__":
    from bench.common import standalone

    standalone(run)
