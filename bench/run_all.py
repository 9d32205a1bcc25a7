"""Run every inferscale benchmark in one process and print Markdown tables plus a goal summary.

    .venv/bin/python bench/run_all.py            # full run: ~1.5 min on 2 idle cores, ~2.5 min busy
    .venv/bin/python bench/run_all.py --quick    # fewer rounds: under a minute idle
    .venv/bin/python bench/run_all.py --only 2,3 # just some goals

Everything happens under a temporary INFERSCALE_HOME that is deleted at the end; the repository's
data/ is only read (models.yaml as the registry seed; data/models for model files when it exists).
Each benchmark interleaves its variants so that the noise of a shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = {  # goal number -> module
    "1": "bench.local_tps",
    "2": "bench.overhead",
    "3": "bench.cache_hit",
    "4": "bench.analysis_time",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds (about a minute)")
    ap.add_argument("--only", default="", help="comma-separated goal numbers to run, e.g. 2,3")
    args = ap.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    common = importlib.import_module("bench.common")

    wanted = [k for k in BENCHMARKS if not args.only or k in args.only.split(",")]
    env = common.Env(quick=args.quick)
    started = time.perf_counter()
    load_start = os.getloadavg()[0]
    print("# inferscale benchmarks\n")
    print(f"- mode: {'quick' if args.quick else 'full'}; python {platform.python_version()}; "
          f"{os.cpu_count()} CPU(s); load average at start {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"- INFERSCALE_HOME (temporary): `{os.environ['INFERSCALE_HOME']}`; "
          f"INFERSCALE_MODELS_DIR: `{os.environ['INFERSCALE_MODELS_DIR']}`")
    goals = []
    crashed = False
    try:
        for key in wanted:
            module = importlib.import_module(BENCHMARKS[key])
            t0 = time.perf_counter()
            try:
                goals += module.run(env)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
                crashed = True
                traceback.print_exc()
                goals.append(common.Goal(f"{key}. {BENCHMARKS[key]}", "-", "not measured", None,
                                         f"crashed: {type(exc).__name__}: {exc}"))
            print(f"\n_{BENCHMARKS[key]} took {time.perf_counter() - t0:.1f} s_", flush=True)
    finally:
        env.close()

    print("\n## Summary\n")
    print(common.goals_table(goals))
    n_pass = sum(g.passed is True for g in goals)
    n_fail = sum(g.passed is False for g in goals)
    print(f"\n{n_pass} passed, {n_fail} failed, {len(goals) - n_pass - n_fail} informational; "
          f"total {time.perf_counter() - started:.1f} s; load average at end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if max(load_start, os.getloadavg()[0]) > cores:
        print(f"\nNote: the machine was busy (1-minute load average up to "
              f"{max(load_start, os.getloadavg()[0]):.1f} on {cores} core(s)); absolute timings are "
              "inflated by other processes. The side-by-side ratios and differences (variants "
              "interleaved) are the more trustworthy numbers; rerun on an idle machine for absolutes.")
    return 2 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
