"""What sharing the L1 index costs: ChromaIndex embedded (PersistentClient, one process only) vs
through Chroma's server (`chroma run`, what `inferscale serve` starts so several processes can use
one home). Same vectors, same queries; p50/p99 of one add and one k=4 query.

    python bench/chroma_modes.py [--entries 5000] [--queries 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from inferscale.cache import chroma_server
from inferscale.cache.chroma_index import ChromaIndex


def _pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def run(index: ChromaIndex, vecs: np.ndarray, queries: int) -> dict[str, float]:
    scope = "bench-scope"
    adds = []
    for i in range(0, len(vecs) - 200, 500):  # bulk-load most, time single adds on the rest
        index.add([f"k{j}" for j in range(i, i + 500)], vecs[i:i + 500], [scope] * 500)
    for j in range(len(vecs) - 200, len(vecs)):
        t0 = time.perf_counter()
        index.add([f"k{j}"], vecs[j:j + 1], [scope])
        adds.append((time.perf_counter() - t0) * 1000)
    rng = np.random.default_rng(1)
    qs = []
    for _ in range(queries):
        q = vecs[rng.integers(len(vecs))] + rng.normal(0, 0.01, vecs.shape[1]).astype(np.float32)
        t0 = time.perf_counter()
        index.query(q / np.linalg.norm(q), scope, 4)
        qs.append((time.perf_counter() - t0) * 1000)
    return {"add_p50_ms": _pct(adds, 50), "add_p99_ms": _pct(adds, 99),
            "query_p50_ms": _pct(qs, 50), "query_p99_ms": _pct(qs, 99)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(args.entries, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        embedded = ChromaIndex(Path(tmp) / "a" / "chroma")
        out["embedded"] = run(embedded, vecs, args.queries)
        server = chroma_server.ChromaServer(Path(tmp) / "b" / "chroma").start()
        os.environ[chroma_server.URL_ENV] = server.url
        try:
            remote = ChromaIndex(Path(tmp) / "b" / "chroma")
            out["server"] = run(remote, vecs, args.queries)
            assert remote.remote == server.url
        finally:
            server.stop()
            os.environ.pop(chroma_server.URL_ENV, None)
    print(f"{args.entries} vectors, load average {os.getloadavg()[0]:.1f}")
    for mode, r in out.items():
        print(f"{mode:9} add p50 {r['add_p50_ms']:.2f} ms p99 {r['add_p99_ms']:.2f} ms | "
              f"query p50 {r['query_p50_ms']:.2f} ms p99 {r['query_p99_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
