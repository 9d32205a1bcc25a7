"""Labelled pair sets side by side: inferscale's L1 at the shipped defaults vs GPTCache 0.1.44.

    .venv/bin/pip install -r bench/requirements-bench.txt
    .venv/bin/python bench/cache_eval.py [--limit N] [--sets fow-single,fow-conversations,stsb]

Sets: fow-cache's single and conversation pairs, and STS-B (`inferscale.tools.benchmarks`). Every
scorer sees the same pairs through fow-cache's own protocol: an empty cache per pair, store the
cached side, look up the new one. inferscale runs `cache.evaluate` (the cache's own decision code,
reported on the dev half parameters were chosen on and on the held-out test half). GPTCache runs
through fow-cache's `gptcache_check` adapter, keyed on the last message (its default pre-processing):
  * "defaults": `init_similar_cache()` as shipped; its ONNX model is fetched from a model hub on
    first use, which this offline machine cannot do, so the row reports that instead of numbers;
  * "MiniLM": the same cache with our all-MiniLM-L6-v2 embedding (sqlite + faiss, its default
    distance evaluation and 0.8 similarity threshold).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _fmt(r: dict) -> tuple[str, str, str]:
    h = r.get("halves", {})

    def cell(key: str) -> str:
        if not h:
            return pct(r[key])
        return f"{pct(r[key])} (dev {pct(h['dev'][key])}, test {pct(h['test'][key])})"
    return cell("recall"), cell("false_hit_rate"), cell("precision")


def inferscale_rows(sets: list[str], limit: int | None) -> list[tuple[str, ...]]:
    from inferscale.cache.evaluate import evaluate
    from inferscale.cache.levels import verify_config
    from inferscale.embeddings import Embedder
    from inferscale.settings import Tunables
    from inferscale.tools.benchmarks import load_set

    emb, cfg = Embedder(memo_size=20000), verify_config(Tunables())
    rows = []
    for name in sets:
        pairs = load_set(name)[:limit]
        r = evaluate(pairs, cfg, emb, halves=True)
        rows.append((f"inferscale L1 (defaults: threshold {cfg.threshold})", f"{name} ({len(pairs)})", *_fmt(r)))
    return rows


class MiniLM:
    """GPTCache embedding interface over inferscale's MiniLM."""

    def __init__(self) -> None:
        from inferscale.embeddings import Embedder

        self._e = Embedder(memo_size=20000)

    def to_embeddings(self, data, **_kw):  # noqa: ANN001 - GPTCache's duck-typed interface
        return self._e.embed_one(str(data))

    @property
    def dimension(self) -> int:
        return 384


def gptcache_rows(sets: list[str], limit: int | None) -> list[tuple[str, ...]]:
    try:
        from fow_cache import evaluate
        from fow_cache.adapters import gptcache_check
        from gptcache import Cache
        from gptcache.adapter.api import init_similar_cache
    except ImportError as exc:
        return [("GPTCache 0.1.44", "-", f"not installed ({exc.name}); "
                 "pip install -r bench/requirements-bench.txt", "-", "-")]
    from inferscale.tools.benchmarks import load_set

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="gptcache-bench-"))
    counter = iter(range(10**9))

    def make_default():
        c = Cache()
        init_similar_cache(data_dir=str(tmp / f"d{next(counter)}"), cache_obj=c)
        return c

    try:
        make_default()
        default_error = None
    except Exception as exc:  # noqa: BLE001 - offline: the hub download fails
        default_error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:90]}"
    if default_error:
        rows.append(("GPTCache 0.1.44 defaults", "all", "not runnable offline", default_error, "-"))
    minilm = MiniLM()

    def make_minilm():
        c = Cache()
        init_similar_cache(data_dir=str(tmp / f"m{next(counter)}"), cache_obj=c, embedding=minilm)
        return c

    makers = [("GPTCache 0.1.44, MiniLM embedding", make_minilm)]
    if not default_error:
        makers.insert(0, ("GPTCache 0.1.44 defaults", make_default))
    fow_names = {"fow-single": "questions", "fow-conversations": "conversations"}
    for label, make in makers:
        for name in sets:
            if name in fow_names:
                rep = evaluate(gptcache_check(make), dataset=fow_names[name])
                res = rep.results[:limit] if limit else rep.results
                served = [(r.same_answer, r.served) for r in res]
            else:  # another set: the same adapter, pair by pair
                check = gptcache_check(make)
                served = [(p.same, check(p.a, p.b)) for p in load_set(name)[:limit]]
            tp = sum(s and h for s, h in served)
            fp = sum(h and not s for s, h in served)
            pos = sum(s for s, _ in served)
            rows.append((label, f"{name} ({len(served)})", pct(tp / pos if pos else None),
                         pct(fp / (len(served) - pos) if len(served) > pos else None),
                         pct(tp / (tp + fp) if tp + fp else None)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, help="first N pairs of each set (a quick look)")
    ap.add_argument("--sets", default="fow-single,fow-conversations,stsb")
    ap.add_argument("--no-gptcache", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("INFERSCALE_HOME", tempfile.mkdtemp(prefix="inferscale-bench-"))
    from inferscale.settings import prepare_offline_env

    prepare_offline_env()
    sets = args.sets.split(",")
    rows = inferscale_rows(sets, args.limit) + ([] if args.no_gptcache else gptcache_rows(sets, args.limit))
    print("| cache | set | should-hit served | different served wrongly | hit precision |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
