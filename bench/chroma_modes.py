"""What sharing the L1 index costs: ChromaIndex embedded (PersistentClient, one process only) vs
through Chroma's server (`chroma run`, what `inferscale serve` starts so several processes can use
one home), the server with and without its collection cache (`chroma_server.server_config`). Same
vectors, same queries; p50/p99 of one add and one k=4 query, and for the server the CPU it spends
(from /proc) per query and per vector upserted in batches of 1 to 32 (what the L1 writer's batches
save, `cache.levels.L1_BATCH`).

    python bench/chroma_modes.py [--entries 5000] [--queries 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.gateway import tree_cpu_s  # noqa: E402 - after the repo is on the path
from inferscale.cache import chroma_server  # noqa: E402
from inferscale.cache.chroma_index import ChromaIndex  # noqa: E402

BATCHES = (1, 4, 8, 16, 32)


def _pct(v: list[float], p: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]


def server_cpu(index: ChromaIndex, pid: int, vecs: np.ndarray, queries: int) -> dict[str, float]:
    """The server's CPU ms per k=4 query, and per vector for upserts of each batch size."""
    scope, rng, out = "bench-scope", np.random.default_rng(2), {}
    c0 = tree_cpu_s(pid)
    for _ in range(queries):
        index.query(vecs[rng.integers(len(vecs))], scope, 4)
    out["query_cpu_ms"] = (tree_cpu_s(pid) - c0) / queries * 1000
    for batch in BATCHES:
        calls = max(8, 256 // batch)
        new = rng.normal(size=(calls * batch, vecs.shape[1])).astype(np.float32)
        c0 = tree_cpu_s(pid)
        for i in range(calls):
            rows = slice(i * batch, (i + 1) * batch)
            index.add([f"b{batch}-{j}" for j in range(rows.start, rows.stop)], new[rows], [scope] * batch)
        out[f"upsert{batch}_cpu_ms"] = (tree_cpu_s(pid) - c0) / (calls * batch) * 1000
    return out


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
        for mode, cache in (("server, no collection cache", False), ("server (as shipped)", True)):
            server = chroma_server.ChromaServer(Path(tmp) / mode[:6] / str(cache) / "chroma",
                                                collection_cache=cache).start()
            os.environ[chroma_server.URL_ENV] = server.url
            try:
                remote = ChromaIndex(server.chroma_dir)
                out[mode] = run(remote, vecs, args.queries)
                assert remote.remote == server.url and server.proc is not None
                out[mode] |= server_cpu(remote, server.proc.pid, vecs, args.queries)
            finally:
                server.stop()
                os.environ.pop(chroma_server.URL_ENV, None)
    print(f"{args.entries} vectors, load average {os.getloadavg()[0]:.1f}")
    print(f"| mode | add p50 / p99 ms | query p50 / p99 ms | server CPU per query | "
          f"{' | '.join(f'per vector, batch {b}' for b in BATCHES)} |")
    print("|---|---:|---:|---:|" + "---:|" * len(BATCHES))
    for mode, r in out.items():
        cpu = [f"{r[k]:.2f} ms" if k in r else "-" for k in ["query_cpu_ms", *(f"upsert{b}_cpu_ms" for b in BATCHES)]]
        print(f"| {mode} | {r['add_p50_ms']:.2f} / {r['add_p99_ms']:.2f} | "
              f"{r['query_p50_ms']:.2f} / {r['query_p99_ms']:.2f} | {' | '.join(cpu)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
