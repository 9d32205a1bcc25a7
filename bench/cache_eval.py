"""fow-cache side by side: inferscale's L1 at the shipped defaults vs GPTCache 0.1.44.

    .venv/bin/pip install -r bench/requirements-bench.txt
    .venv/bin/python bench/cache_eval.py [--limit N]

Every scorer sees the same pairs through fow-cache's own protocol: an empty cache per pair, store the
cached side, look up the new one. inferscale runs `cache.evaluate` (the cache's own decision code,
reported on the dev half used to develop the verifier and on the held-out test half). GPTCache runs
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


def inferscale_rows(limit: int | None) -> list[tuple[str, str, str, str]]:
    from inferscale.cache.evaluate import evaluate, fow_pairs
    from inferscale.cache.levels import verify_config
    from inferscale.embeddings import Embedder
    from inferscale.settings import Tunables

    emb, cfg = Embedder(memo_size=20000), verify_config(Tunables())
    rows = []
    for name in ("single", "conversations"):
        pairs = fow_pairs(name)[:limit]
        r = evaluate(pairs, cfg, emb, halves=True)
        h = r["halves"]
        rows.append((f"inferscale L1 (defaults: threshold {cfg.threshold})", name,
                     f"{pct(r['recall'])} (dev {pct(h['dev']['recall'])}, test {pct(h['test']['recall'])})",
                     f"{pct(r['false_hit_rate'])} (dev {pct(h['dev']['false_hit_rate'])}, "
                     f"test {pct(h['test']['false_hit_rate'])})"))
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


def gptcache_rows(limit: int | None) -> list[tuple[str, str, str, str]]:
    try:
        from fow_cache import evaluate
        from fow_cache.adapters import gptcache_check
        from gptcache import Cache
        from gptcache.adapter.api import init_similar_cache
    except ImportError as exc:
        return [("GPTCache 0.1.44", "-", f"not installed ({exc.name}); "
                 "pip install -r bench/requirements-bench.txt", "-")]
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
        rows.append(("GPTCache 0.1.44 defaults", "both", "not runnable offline", default_error))
    minilm = MiniLM()

    def make_minilm():
        c = Cache()
        init_similar_cache(data_dir=str(tmp / f"m{next(counter)}"), cache_obj=c, embedding=minilm)
        return c

    makers = [("GPTCache 0.1.44, MiniLM embedding", make_minilm)]
    if not default_error:
        makers.insert(0, ("GPTCache 0.1.44 defaults", make_default))
    for label, make in makers:
        for ds, name in (("questions", "single"), ("conversations", "conversations")):
            rep = evaluate(gptcache_check(make), dataset=ds)
            if limit:
                rep.results = rep.results[:limit]
            rows.append((label, name, pct(rep.hit_rate), pct(rep.wrong_rate)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, help="first N pairs of each set (a quick look)")
    args = ap.parse_args(argv)
    os.environ.setdefault("INFERSCALE_HOME", tempfile.mkdtemp(prefix="inferscale-bench-"))
    from inferscale.settings import prepare_offline_env

    prepare_offline_env()
    rows = inferscale_rows(args.limit) + gptcache_rows(args.limit)
    print("| cache | set | should-hit served | traps served wrongly |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
