"""Experiments harness overhead: 1,000 items × 3 configs against the fake server with no latency.

    PYTHONPATH=$PWD python bench/experiments_overhead.py [--items 1000] [--concurrency 8]

Two loops over the same (item, config) pairs, with the cache off so every pair is a real call:
  bare     `Engine.aask` per pair, nothing else (the floor)
  harness  `run_experiment`: the same calls plus scoring, pass@k, a SQLite row per pair, budget and
           progress bookkeeping
Both run sequentially (concurrency 1) to get ms added per item-config, then the harness runs at
`--concurrency` for throughput. Machine noise matters (shared cores): re-run and compare.
Goal: ≤ 2 ms added per item-config.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
GOAL_MS = 2.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--chunk", type=int, default=50, help="items per alternating bare/harness chunk")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="inferscale-bench-exp-"))
    os.environ["INFERSCALE_HOME"] = str(home)
    os.environ["BENCH_KEY"] = "bench"
    from inferscale.experiments.datasets import Dataset, Item
    from inferscale.experiments.runner import ExperimentSpec, RunConfig, prepare, run_experiment
    from inferscale.orchestration.engine import Engine
    from inferscale.orchestration.runner import run_sync
    from inferscale.registry import ModelSpec
    from inferscale.settings import Settings
    from inferscale.types import CacheControl
    from tests.support.openai_server import FakeOpenAIServer

    server = FakeOpenAIServer().start()
    engine = Engine(Settings.from_env(home))
    models = ("b-even", "b-odd", "b-sure")
    engine.registry.upsert([ModelSpec(id=m, model=f"openai/{b}", api_base=server.base_url, api_key_env="BENCH_KEY",
                                      input_price_per_1m=0, output_price_per_1m=1000)
                            for m, b in zip(models, ("parity-even", "parity-odd", "nth-1"), strict=True)])
    for m in ("local/smollm2-135m-instruct", "local/gemma-3-270m"):
        engine.registry.set_enabled(m, False)
    items = tuple(Item(f"q{i}", f"item {i}: say {i}", expected=str(i)) for i in range(args.items))
    ds = Dataset("bench", items)
    configs = tuple(RunConfig(m, "single", (m,)) for m in models)
    pairs = [(it, c) for it in items for c in configs]

    async def bare(chunk: list) -> float:
        t0 = time.perf_counter()
        for it, c in chunk:
            await engine.aask(it.prompt, strategy="single", models=list(c.models), cache=CacheControl.off(),
                              source="experiment")
        return time.perf_counter() - t0

    def harness(name: str, part: Dataset, concurrency: int) -> float:
        spec = ExperimentSpec(name, "bench", configs, concurrency=concurrency, cache=False, items=len(part.items))
        prepare(engine, spec, part, resume=False)
        t0 = time.perf_counter()
        status = run_sync(run_experiment(engine, spec, part))
        assert status == "done", status
        return time.perf_counter() - t0

    # Warm litellm, the embedder and SQLite before timing anything.
    run_sync(engine.aask("warm up 1", strategy="single", models=[models[0]], cache=CacheControl.off()))
    # The machine is shared: alternate bare and harness chunks of the same pairs (order rotated each
    # round) so a noisy minute hits both; report the median per-chunk difference.
    step = max(1, args.chunk)
    diffs, bare_t, harness_t = [], 0.0, 0.0
    for r, lo in enumerate(range(0, len(items), step)):
        part = Dataset("bench", items[lo:lo + step])
        chunk = [(it, c) for it in part.items for c in configs]
        if r % 2:
            h = harness(f"seq-{r}", part, 1)
            b = run_sync(bare(chunk))
        else:
            b = run_sync(bare(chunk))
            h = harness(f"seq-{r}", part, 1)
        bare_t, harness_t = bare_t + b, harness_t + h
        diffs.append((h - b) / len(chunk) * 1000)
    hc = harness("conc", ds, args.concurrency)
    n = len(pairs)
    diffs.sort()
    added = diffs[len(diffs) // 2]
    print("| measure | value |\n|---|---|")
    print(f"| item-configs | {n} ({args.items} items × {len(configs)} configs), chunks of {step} items |")
    print(f"| bare Engine.aask loop, sequential | {bare_t / n * 1000:.2f} ms per item-config ({bare_t:.1f} s) |")
    print(f"| harness, sequential | {harness_t / n * 1000:.2f} ms per item-config ({harness_t:.1f} s) |")
    print(f"| **added by the harness** (median of {len(diffs)} chunks; min {diffs[0]:.2f}, max {diffs[-1]:.2f}) | "
          f"**{added:.2f} ms per item-config** (goal ≤ {GOAL_MS} ms: {'PASS' if added <= GOAL_MS else 'FAIL'}) |")
    print(f"| harness at concurrency {args.concurrency} | {n / hc:.0f} item-configs/s ({hc:.1f} s) |")
    print(f"| harness sequential | {n / harness_t:.0f} item-configs/s |")
    server.stop()


if __name__ == "__main__":
    main()
