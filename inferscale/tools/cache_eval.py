"""`inferscale cache-eval`: precision/recall of the semantic level (L1) on labelled pairs.

    inferscale cache-eval --fow [--json]            fow-cache single + conversations
    inferscale cache-eval --set stsb [--set ...]     any set of `tools.benchmarks.SETS`
    inferscale cache-eval --pairs FILE.jsonl         your own {"a", "b", "same"} lines
    ... --details FILE.csv                           one row per pair: similarity, served, check, reason
    ... --judge                                      borderline pairs decided by `semantic_judge_model`
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

from ..errors import InferscaleError


def _write_details(path: Path, rows: list[tuple[str, Any]]) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["set", "id", "half", "group", "same", "served", "similarity", "check", "reason",
                        "cached_last", "query_last"])
            for name, o in rows:
                p = o.pair
                w.writerow([name, p.id, p.half, p.group, int(p.same), int(o.served),
                            f"{o.similarity:.4f}", o.check, o.reason, p.a[-1]["content"], p.b[-1]["content"]])
    except OSError as exc:
        raise InferscaleError(f"cannot write --details file {path}: {exc.strerror}") from None


def run(args: argparse.Namespace) -> int:  # noqa: C901 - flag checks, then one report per set
    from ..cache.evaluate import evaluate, load_pairs
    from ..cache.levels import verify_config
    from ..config_store import TunablesStore
    from ..db import Database
    from ..embeddings import Embedder
    from ..settings import Settings
    from .benchmarks import load_set

    if not args.pairs and not args.fow and not args.set:
        raise InferscaleError("cache-eval needs --pairs FILE.jsonl, --fow or --set NAME")
    details = Path(args.details) if args.details else None
    if details is not None and not details.parent.is_dir():
        raise InferscaleError(f"--details: no such directory: {details.parent}")
    settings = Settings.from_env()
    settings.ensure_dirs()
    tun = TunablesStore(Database(settings.db_path)).load()
    if args.threshold is not None:
        if not math.isfinite(args.threshold) or not 0 <= args.threshold <= 1:
            raise InferscaleError(f"--threshold must be in [0, 1], got {args.threshold}")
        tun = tun.with_value("semantic_floor", str(min(tun.semantic_floor, args.threshold)))
        tun = tun.with_value("semantic_threshold", str(args.threshold))
    if args.pairs:
        sets = {"pairs": load_pairs(args.pairs)}
    else:
        sets = {"single": load_set("fow-single"), "conversations": load_set("fow-conversations")} \
            if args.fow else {}
        sets.update({name: load_set(name) for name in args.set or ()})
    config = verify_config(tun)
    judge = None
    if args.judge:  # opt-in even when a judge is configured: every borderline pair is a paid call
        if not tun.semantic_judge_model:
            raise InferscaleError("--judge: no semantic_judge_model is set "
                                  "(inferscale config set semantic_judge_model MODEL_ID)")
        from ..orchestration.cache_judge import build_judge
        from ..registry import Registry

        judge = build_judge(tun, Registry(Database(settings.db_path)), settings)
    embedder = Embedder(memo_size=20000, backend=settings.embedding_backend)
    from ..cache.lexicon import Lexicon
    lexicon = Lexicon.open(settings.models_dir)
    out: dict[str, Any] = {}
    rows: list[tuple[str, Any]] = []
    for name, pairs in sets.items():
        outcomes: list[Any] = []
        out[name] = evaluate(pairs, config, embedder, sweep=args.sweep, halves=any(p.half for p in pairs),
                             faithful=args.faithful, lexicon=lexicon, outcomes=outcomes, judge=judge)
        rows += [(name, o) for o in outcomes]
    if details is not None:
        _write_details(details, rows)
    if args.pairs:
        out = out["pairs"]
    if args.json:
        print(json.dumps(out))
        return 0
    for name, r in ({"pairs": out} if args.pairs else out).items():
        c = r["counts"]
        fmt = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        print(f"{name}: {r['pairs']} pairs at threshold {r['threshold']:.2f}: recall {fmt(r['recall'])}, "
              f"false hits {fmt(r['false_hit_rate'])}, precision {fmt(r['precision'])} "
              f"(hits {c['true_hits']}, false hits {c['false_hits']}, missed {c['missed']}, "
              f"correct misses {c['correct_misses']})")
        if j := r.get("judge"):
            print(f"  judge {j['model']}: {j['calls']} call(s), {j['confirmed']} confirmed, "
                  f"{j['failed']} failed, ${j['cost_usd']:.6f}")
        for half, h in r.get("halves", {}).items():
            print(f"  {half} half: recall {fmt(h['recall'])}, false hits {fmt(h['false_hit_rate'])}, "
                  f"precision {fmt(h['precision'])}")
        for row in r.get("sweep", []):
            print(f"  threshold {row['threshold']:.2f}: recall {fmt(row['recall'])}, "
                  f"false hits {fmt(row['false_hit_rate'])}")
    return 0


def register(sub: Any) -> None:
    from .benchmarks import SETS

    ce = sub.add_parser("cache-eval", help="precision/recall of the semantic cache on labelled pairs")
    ce.add_argument("--pairs", help='JSONL: {"a": str, "b": str, "same": bool} per line')
    ce.add_argument("--fow", action="store_true", help="run fow-cache's single and conversation sets")
    ce.add_argument("--set", action="append", choices=sorted(SETS), help="a public labelled set (repeatable)")
    ce.add_argument("--details", metavar="FILE.csv", help="write one row per pair: similarity, served, "
                                                          "the check that decided and its reason")
    ce.add_argument("--threshold", type=float, help="semantic_threshold to evaluate (default: tunables)")
    ce.add_argument("--sweep", action="store_true", help="also print the threshold curve")
    ce.add_argument("--faithful", action="store_true",
                    help="a real SQLite+Chroma cache per pair instead of the batched fast path (slow)")
    ce.add_argument("--judge", action="store_true",
                    help="let semantic_judge_model decide the borderline pairs (one paid call each)")
    ce.add_argument("--json", action="store_true")
    ce.set_defaults(fn=run)
