"""L1 and exact-level lookup latency with 100,000 entries, and resident memory.

    .venv/bin/python bench/cache_latency.py [--entries 100000] [--lookups 300]

Fills a temporary home with N L1 entries (random unit vectors stand in for embeddings so filling is
quick; the lookups embed real text with MiniLM) and N exact entries, then times:
  * L1 cold: embed (not memoised) + Chroma query + verification, the full `SemanticCache.lookup`,
    as shipped (fast int8 vectors find candidates and rule out clear misses; anything that could hit
    is decided on exact vectors) and with exact vectors only, side by side
  * L1 in a request: the same with the prompt's fast vectors memoised (the analysis step has just
    embedded it with the fast graph), so this is what L1 adds to a request
  * L1 with exact vectors given (a caller that embedded the prompt itself): no embedding pass,
    except the word states a words-in-context check reads (not memoised for these prompts)
  * exact (L4) lookup by key
  * the capacity check that follows every store (eviction's entries/bytes of a level)
and reports RSS before and after filling. Not a test: figures go in the README's Cache section.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p))


def time_l1(cache: Any, cache_exact: Any, emb: Any, emb_exact: Any, lookups: int) -> tuple[Any, ...]:
    """The four L1 rows (cold as shipped, cold exact-only, in a request, exact vectors given) and
    the hits of the two cold rows."""
    from inferscale.cache.scope import build_query
    from inferscale.cache.semantic import Vectors
    from inferscale.embeddings import Embedder

    # One stored prompt per lookup, so no lookup repeats a prompt (a memoised embedding would make
    # it warm); each is stored alone, as at low load, so its word states are memoised as a serving
    # process has them.
    stored = [f"How do I reset the password for my account number {i}?" for i in range(lookups)]
    for p in stored:
        cache.put(build_query([{"role": "user", "content": p}], strategy="single"), {"answer": "x"}, 0.001, 500)
        emb_exact.embed([p])  # what storing it would have left in that embedder too
    # Queries near the stored ones: the same account number with a verb swapped, so verification
    # runs its lexical checks (WordNet look-ups, memoised per word) rather than stopping at a number.
    # Each pass below asks a new set (the verb shifted), never a prompt an earlier pass asked.
    verbs = ("reset", "renew", "change", "update", "recover", "restore")

    def queries(shift: int) -> list:
        return [build_query([{"role": "user", "content":
                             f"How do I {verbs[(i + shift) % len(verbs)]} the password for my account number {i}?"}],
                            strategy="single") for i in range(lookups)]

    cold, cold_exact = [], []
    hits = {"shipped": 0, "exact": 0}
    # In blocks, twice each (A B A B): alternating per lookup would make the two graphs evict each
    # other's weights from the CPU caches, which a process running one of them never sees.
    passes = {"shipped": 0.0, "exact": 0.0}
    for block in range(2):
        for c, out, name in ((cache, cold, "shipped"), (cache_exact, cold_exact, "exact")):
            runs_before = len(RUNS)
            for q in queries(1 + block):
                t = time.perf_counter()
                r = c.lookup(q)
                out.append((time.perf_counter() - t) * 1000)
                hits[name] += r.match is not None
            passes[name] += (len(RUNS) - runs_before) / (2 * lookups)
    warm, given = [], []
    runs_before = len(RUNS)
    for q in queries(3):  # as in a request: the analysis step has embedded it with the fast graph
        emb.embed_fast([q.last])
        t = time.perf_counter()
        cache.lookup(q)
        warm.append((time.perf_counter() - t) * 1000)
    passes["request"] = (len(RUNS) - runs_before) / lookups - 1  # less the untimed fast pass
    # Exact vectors given, from an embedder of their own: the lookup's embedder has no word states
    # of these prompts (the cached texts' it has, as the process that stored them would).
    real = queries(4)
    memo = Embedder(memo_size=100_000)
    vecs = {q.last: Vectors(memo.embed([q.last])[0], None) for q in real}
    runs_before = len(RUNS)
    for q in real:
        t = time.perf_counter()
        cache.lookup(q, vectors=vecs[q.last])
        given.append((time.perf_counter() - t) * 1000)
    passes["given"] = (len(RUNS) - runs_before) / lookups
    return cold, cold_exact, warm, given, hits, passes


RUNS: list[int] = []  # one item per MiniLM run (either graph), counted by `count_model_runs`


def count_model_runs() -> None:
    """Count the model's runs (the real ones still happen): a lookup's cost is mostly its passes."""
    from inferscale import embeddings

    real = embeddings._OnnxMiniLM._run

    def counted(self: Any, enc: Any, mask: Any) -> Any:
        RUNS.append(1)
        return real(self, enc, mask)

    embeddings._OnnxMiniLM._run = counted  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--lookups", type=int, default=300)
    args = ap.parse_args(argv)

    from inferscale.cache.chroma_index import ChromaIndex
    from inferscale.cache.exact import ExactCache, cache_key
    from inferscale.cache.scope import build_query
    from inferscale.cache.semantic import SemanticCache
    from inferscale.db import Database
    from inferscale.embeddings import Embedder, fast_model
    from inferscale.settings import Settings

    home = Path(tempfile.mkdtemp(prefix="inferscale-bench-"))
    fast = fast_model(Settings.from_env().models_dir)
    if fast is None:
        print("no fast embedding model (pip install onnx): the shipped and exact-only rows will match")
    emb, emb_exact = Embedder(memo_size=10, fast=fast), Embedder(memo_size=10)
    emb.embed(["warm up"]), emb.embed_fast(["warm up"])
    db = Database(home / "b.db")
    from inferscale.cache.lexicon import Lexicon

    lexicon = Lexicon.open(Settings.from_env().models_dir)  # opened (built once) before timing
    cache = SemanticCache(db, ChromaIndex(home / "chroma"), emb, lexicon=lexicon)
    cache_exact = SemanticCache(db, cache.index, emb_exact, lexicon=lexicon)
    exact = ExactCache(db)
    base = rss_mb()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    scope = build_query([{"role": "user", "content": "x"}], strategy="single").scope_key
    n, chunk = args.entries, 2000
    for start in range(0, n, chunk):
        ids, vecs, rows, erows = [], [], [], []
        for i in range(start, min(n, start + chunk)):
            v = rng.standard_normal(384).astype(np.float32)
            v /= np.linalg.norm(v)
            key = f"L1:bench{i}"
            ids.append(key)
            vecs.append(v)
            text = f"Synthetic question {i} about topic {i % 977}?"
            rows.append((key, scope, text, "", f"h{i}", v.tobytes(), None, 0))
            erows.append((key, "L1", '{"answer": "a"}', 0.001, 500.0, 100, time.time(), time.time(), 0, 1.0))
            erows.append((cache_key("L4", i=i), "L4", '{"answer": "a"}', 0.001, 500.0, 100, time.time(),
                          time.time(), 0, 1.0))
        with db.tx() as d:
            d.conn.executemany("INSERT INTO cache_entries (key, level, value, cost_usd, latency_ms, bytes,"
                               " created_at, last_hit_at, hits, priority) VALUES (?,?,?,?,?,?,?,?,?,?)",
                               erows)
            d.conn.executemany("INSERT INTO semantic_index (key, scope, last, history, exact_hash, v_last,"
                               " v_hist, approx) VALUES (?,?,?,?,?,?,?,?)", rows)
            # The vectors go to Chroma directly below: the scope is one Chroma holds (promoted).
            d.execute("UPDATE semantic_scopes SET indexed = 2 WHERE scope = ?", [scope])
        cache.index.add(ids, np.stack(vecs), [scope] * len(ids))
    fill_s = time.perf_counter() - t0
    filled = rss_mb()

    count_model_runs()
    cold, cold_exact, warm, given, hits, passes = time_l1(cache, cache_exact, emb, emb_exact, args.lookups)
    ex = []
    for _ in range(args.lookups * 3):
        k = cache_key("L4", i=int(rng.integers(0, n)))
        t = time.perf_counter()
        exact.get(k)
        ex.append((time.perf_counter() - t) * 1000)
    exact_read = []
    for _ in range(args.lookups * 3):  # the read alone (a hit also writes hits/priority)
        k = cache_key("L4", i=int(rng.integers(0, n)) + n)  # absent keys: a miss is a pure read
        t = time.perf_counter()
        exact.get(k)
        exact_read.append((time.perf_counter() - t) * 1000)
    # The capacity check every store is followed by: as shipped (the level's totals kept by triggers)
    # and the way it was done before (counting the level), side by side.
    from inferscale.cache.eviction import Evictor, Limits

    evictor, roomy = Evictor(db), Limits(max_entries=10 * n, max_bytes=1 << 40, ttl_s=0)
    check, recount = [], []
    for _ in range(30):
        t = time.perf_counter()
        evictor.enforce("L4", roomy)
        check.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        db.db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM cache_entries WHERE level = 'L4'").fetchone()
        recount.append((time.perf_counter() - t) * 1000)
    print(f"entries: {n} L1 + {n} L4, filled in {fill_s:.0f} s")
    print("| lookup | p50 ms | p99 ms |\n|---|---|---|")
    print(f"| L1 cold (embed + Chroma query + verify), as shipped | {pct(cold, 50):.2f} "
          f"| {pct(cold, 99):.2f} |")
    print(f"| L1 cold, exact vectors only | {pct(cold_exact, 50):.2f} | {pct(cold_exact, 99):.2f} |")
    print(f"| L1 in a request (fast vectors memoised by the analysis step) | {pct(warm, 50):.2f} "
          f"| {pct(warm, 99):.2f} |")
    print(f"| L1 with exact vectors given (no word states memoised) | {pct(given, 50):.2f} "
          f"| {pct(given, 99):.2f} |")
    print(f"| exact L4 hit (read + hit counter update) | {pct(ex, 50):.3f} | {pct(ex, 99):.3f} |")
    print(f"| exact L4 miss (read only) | {pct(exact_read, 50):.3f} | {pct(exact_read, 99):.3f} |")
    print(f"| capacity check after a store (L4), as shipped: trigger-kept totals | {pct(check, 50):.3f} "
          f"| {pct(check, 99):.3f} |")
    print(f"| the same by counting the level (before) | {pct(recount, 50):.3f} | {pct(recount, 99):.3f} |")
    print(f"model passes per lookup: cold {passes['shipped']:.2f} as shipped, {passes['exact']:.2f} exact "
          f"vectors only; in a request "
          f"{passes['request']:.2f}, exact vectors given {passes['given']:.2f}")
    print(f"hits: {hits['shipped']} as shipped, {hits['exact']} with exact vectors only (of {2 * args.lookups})")
    print(f"resident memory: {base:.0f} MB before filling, {filled:.0f} MB with {n} L1 entries "
          f"(+{filled - base:.0f} MB); after lookups {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
