"""A 5-model parallel ensemble where every model takes 200 ms (fake server `slow-200`).

    .venv/bin/python -m bench.ensemble_latency [--quick]

Goal: the ensemble completes in <= 230 ms p50 — the five calls overlap, so it costs one model's
latency plus the fan-out and consensus overhead. Every round uses a new prompt (no cache can
help) and the cache is bypassed. Measured three ways: the engine's "execution" step (fan-out,
calls, consensus), the engine's whole request (`latency_ms`: analysis, routing, execution,
monitoring) and the caller's wall time of the sync `Engine.ask`.
"""

from __future__ import annotations

import time

from bench.common import DUMMY_KEY_ENV, Env, Goal, ms, p50, p95, standalone, table

MODELS = [f"slow-{i}" for i in range(1, 6)]
FULL = {"early_stop": False}  # all five must answer: no early stop on the (identical) echoes


def run(env: Env) -> list[Goal]:
    engine = env.engine("ensemble-latency")
    yaml_path = env.root / "ensemble-models.yaml"
    yaml_path.write_text("models:\n" + "".join(
        f"  - id: {m}\n    model: openai/slow-200\n    api_base: {env.server.base_url}\n"
        f"    api_key_env: {DUMMY_KEY_ENV}\n    input_price_per_1m: 1\n    output_price_per_1m: 1\n"
        for m in MODELS), encoding="utf-8")
    engine.registry.import_yaml(yaml_path)
    rounds = 10 if env.quick else 40
    for i in range(3):  # warm: embedder, litellm, HTTP pool
        engine.ask(f"warm-up {i}", strategy="ensemble", models=MODELS, use_cache=False, strategy_options=FULL)
    execution, request, wall = [], [], []
    for i in range(rounds):
        t0 = time.perf_counter()
        r = engine.ask(f"ensemble latency round {i}: how are you?", strategy="ensemble", models=MODELS,
                       use_cache=False, strategy_options=FULL)
        wall.append((time.perf_counter() - t0) * 1000)
        assert len(r.members) == 5 and all(m.ok for m in r.members), r.members
        request.append(r.latency_ms)
        execution.append(next(s.ms for s in r.steps if s.name == "execution"))
    print(f"\n### 5-model ensemble, 200 ms per model ({rounds} rounds)\n")
    print(table(["measure", "p50 ms", "p95 ms"], [
        ("execution step (fan-out + consensus)", ms(p50(execution)), ms(p95(execution))),
        ("engine request latency_ms", ms(p50(request)), ms(p95(request))),
        ("caller wall time of Engine.ask", ms(p50(wall)), ms(p95(wall))),
    ]))
    return [
        Goal("5-model ensemble @200 ms each, p50 (the ensemble: execution step)", "<= 230 ms",
             f"{p50(execution):.1f} ms", p50(execution) <= 230, f"p95 {p95(execution):.1f} ms"),
        Goal("same, whole request incl. complexity analysis and monitoring", "info",
             f"{p50(request):.1f} ms", None, f"caller wall p50 {p50(wall):.1f} ms"),
    ]

if __name__ == "__main__":
    standalone(run)
