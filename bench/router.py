"""Issue 15 speed goals: the learned router's decision, the what-if replay, training.

    PYTHONPATH=. python bench/router.py [--quick] [--requests 100000] [--labelled 10000]
                                        [--only decision|whatif|training ...]

  decision  `LearnedRouter.decide` (predict + the caller's threshold rule + the reason naming the
            neighbours or factors) with 10,000 labelled prompts x 5 models, knn and mf; the prompt's
            vector is given (the analysis step has already embedded it: it is memoised)
  whatif    `inferscale whatif` end to end (`whatif.report.whatif`: read the log from SQLite,
            neighbours, the cache replayed twice with the cache's own verifier, routing replayed)
            over 100,000 logged requests written into a temporary home's tables
  training  `training.train` on 10,000 prompts x 5 models: both methods fitted on 80%, compared by
            Brier score, the winner refitted (the default); and each method alone. Vectors are
            given; embedding the prompts with MiniLM is timed separately (1,000 real prompts).
Synthetic data: clustered unit vectors (prompts of a cluster are near each other, as paraphrases
are) and labels that depend on the cluster. The machine is shared: figures are noisy, re-run it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DIM = 384
VOCAB = ("reset", "router", "garden", "invoice", "kettle", "printer", "passport", "bicycle", "lantern",
         "budget", "recipe", "laptop", "account", "heater", "ticket", "window", "mortgage", "camera",
         "battery", "engine", "parcel", "license", "contract", "server", "roof", "boiler", "phone",
         "wallet", "schedule", "fence", "piano")
FILLERS = ("", "please tell me ", "quick question: ", "hey, ")


def clustered(n: int, clusters: int, rng: np.random.Generator, noise: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.standard_normal((clusters, DIM)).astype(np.float32)
    which = rng.integers(0, clusters, n)
    X = centres[which] + noise * rng.standard_normal((n, DIM)).astype(np.float32) * np.sqrt(1 / DIM) * 10
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), which


def labels_for(which: np.ndarray, models: int, rng: np.random.Generator) -> np.ndarray:
    skill = rng.random((which.max() + 1, models))
    skill[:, -1] = np.maximum(skill[:, -1], 0.8)  # the last (most expensive) model is good everywhere
    Y = (rng.random((len(which), models)) < skill[which]).astype(np.float32)
    Y[rng.random(Y.shape) < 0.1] = np.nan  # some prompts lack a label for some models
    return Y


def specs(m: int) -> list:
    from inferscale.registry import ModelSpec

    return [ModelSpec(id=f"m{j}", model=f"openai/m{j}", api_base="http://127.0.0.1:9/v1",
                      input_price_per_1m=0.1 * 4 ** j, output_price_per_1m=0.2 * 4 ** j,
                      quality_prior=0.2 + 0.15 * j) for j in range(m)]


def bench_decision(home: Path, n: int, reps: int) -> list[tuple[str, float, float]]:
    from inferscale.analysis import Analyzer  # noqa: F401 - import cost outside the timing
    from inferscale.routing import RouteRequest, artefact
    from inferscale.routing.learned import LearnedRouter
    from inferscale.routing.training import Matrix, fit
    from inferscale.settings import Tunables
    from inferscale.types import Analysis

    rng = np.random.default_rng(1)
    X, which = clustered(n, 200, rng)
    Y = labels_for(which, 5, rng)
    mx = Matrix(tuple(f"prompt {i}" for i in range(n)), tuple(str(i) for i in range(n)),
                tuple(f"m{j}" for j in range(5)), Y, np.array([1e-6 * 4 ** j for j in range(5)]))
    cands = tuple(specs(5))
    out = []
    for method in ("knn", "mf"):
        h = home / method
        artefact.save(h, fit(mx, X, method))
        router = LearnedRouter()
        queries, _ = clustered(reps, 200, np.random.default_rng(2))
        an = Analysis(0.4, "chat", 20, "chat", ())
        times = []
        for i in range(reps):
            req = RouteRequest(an, cands, "single", Tunables(), lambda s, a, b: (a * (s.input_price_per_1m or 0)
                               + b * (s.output_price_per_1m or 0)) / 1e6, embedding=queries[i], home=h)
            t0 = time.perf_counter()
            d = router.decide(req)
            times.append((time.perf_counter() - t0) * 1000)
            assert d.policy == "learned", d.reason
        times = times[5:]  # the first calls load the artefact
        out.append((method, statistics.median(times), float(np.percentile(times, 95))))
    return out


def bench_training(n: int) -> list[tuple[str, float]]:
    from inferscale.routing.training import Label, train

    rng = np.random.default_rng(3)
    X, which = clustered(n, 200, rng)
    Y = labels_for(which, 5, rng)
    labels = [Label(f"item-{i}", f"prompt number {i}", f"m{j}", float(Y[i, j]), 1e-6 * 4 ** j, None)
              for i in range(n) for j in range(5) if not np.isnan(Y[i, j])]
    vec = {f"prompt number {i}": X[i] for i in range(n)}

    def embed(texts: list[str]) -> np.ndarray:
        return np.stack([vec[t] for t in texts])

    out = []
    for method in (None, "knn", "mf"):  # feedback-like labels (no experiment): all 10,000 train
        t0 = time.perf_counter()
        model = train(labels, embed, method)
        out.append((f"{method or 'default (both measured)'} -> {model.method}, {model.meta['prompts']} prompts",
                    time.perf_counter() - t0))
    return out


def bench_embedding(k: int) -> float:
    from inferscale.embeddings import Embedder

    emb = Embedder()
    emb.embed(["warm up"])
    texts = [f"How would I go about task number {i} with {uuid.uuid4().hex[:6]}?" for i in range(k)]
    t0 = time.perf_counter()
    emb.embed(texts)
    return time.perf_counter() - t0


def write_log(engine, n: int, rng: np.random.Generator) -> None:
    """`n` logged requests: 20 scopes, ~30% exact repeats, paraphrase-like clusters."""
    uniques = int(n * 0.7)
    X, which = clustered(uniques, max(50, uniques // 8), rng, noise=0.6)
    picks = np.concatenate([np.arange(uniques), rng.integers(0, uniques, n - uniques)])
    rng.shuffle(picks)
    models = json.dumps(["m0"])
    t = time.time() - n
    db = engine.database
    with db.tx() as d:
        req_rows, log_rows, call_rows = [], [], []
        for i, u in enumerate(picks):
            rid = f"r{i}"
            scope = f"S:{u % 20}"
            c = int(which[u])
            text = (f"{FILLERS[u % len(FILLERS)]}how do I {VOCAB[c % 31]} the {VOCAB[(c // 31) % 31]} "
                    f"of my {VOCAB[(c * 7 + 3) % 31]} {VOCAB[(c * 13 + 5) % 31]}?")
            req_rows.append((rid, t + i, "ok", "h", text[:200], "single", "complexity", "chat", 0.3, models,
                             f"answer {u}", None, None, 1e-5, 0.0, 300.0, None, 0, "bench", None))
            log_rows.append((rid, t + i, text, None, scope, f"L4:{scope}:{u}", text, "", f"x{u}",
                             X[u].tobytes(), None, 12, 0.3, "chat", "chat", "single", "complexity", None))
            call_rows.append((rid, t + i, "m0", 12, 20, 1e-5, 300.0))
        d.conn.executemany("INSERT INTO requests (id, ts, status, prompt_hash, prompt_preview, strategy,"
                           " router, domain, complexity, models, answer, confidence, cache_level, cost_usd,"
                           " saved_usd, latency_ms, error, synthetic, source, tenant)"
                           " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", req_rows)
        d.conn.executemany("INSERT INTO request_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", log_rows)
        d.conn.executemany("INSERT INTO model_calls (request_id, ts, model, tokens_in, tokens_out, cost_usd,"
                           " latency_ms) VALUES (?,?,?,?,?,?,?)", call_rows)


def bench_whatif(home: Path, n: int) -> tuple[float, dict]:
    from inferscale.orchestration.engine import Engine
    from inferscale.settings import Settings
    from inferscale.whatif.report import parse_sets, whatif

    engine = Engine(Settings.from_env(home))
    engine.registry.import_yaml(_registry(home))
    for s in engine.registry.list():
        if s.is_local:
            engine.registry.set_enabled(s.id, False)
    write_log(engine, n, np.random.default_rng(4))
    proposed = parse_sets(engine.tunables(), ["semantic_threshold=0.7", "complexity_thresholds=0.2,0.5"])
    t0 = time.perf_counter()
    report = whatif(engine, proposed)
    total = time.perf_counter() - t0
    from inferscale.whatif.report import Replay

    t0 = time.perf_counter()
    rp = Replay(engine)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    rp.served(proposed)
    t_cache = time.perf_counter() - t0
    t0 = time.perf_counter()
    rp.routes(proposed)
    t_route = time.perf_counter() - t0
    return total, report.to_json() | {"breakdown": f"read log + neighbours {t_load:.1f} s, one cache replay "
                                                    f"{t_cache:.1f} s, one routing replay {t_route:.1f} s"}


def _registry(home: Path) -> Path:
    import yaml

    p = home / "bench-models.yaml"
    home.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump({"models": [s.model_dump(exclude_none=True) | {"tags": ["chat"]}
                                            for s in specs(3)]}))
    return p


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--labelled", type=int, default=10_000)
    ap.add_argument("--only", choices=("decision", "whatif", "training"), action="append",
                    help="run only these parts (repeatable); default: all")
    ap.add_argument("--whatif-json", type=Path, metavar="PATH",
                    help="write the what-if report's --json figures here (to check a speed-up changes none)")
    args = ap.parse_args()
    parts = set(args.only or ("decision", "whatif", "training"))
    n_req = 5_000 if args.quick else args.requests
    n_lab = 1_000 if args.quick else args.labelled
    os.environ.setdefault("INFERSCALE_MODELS_DIR", str(REPO / "data" / "models"))
    with tempfile.TemporaryDirectory(prefix="inferscale-bench-router-") as tmp:
        root = Path(tmp)
        os.environ["INFERSCALE_HOME"] = str(root / "home")
        print(f"# learned router and what-if ({os.cpu_count()} cores, shared machine: noisy)\n")
        print("| goal | measured | target | verdict |\n|---|---|---|---|")
        if "decision" in parts:
            for method, p50, p95 in bench_decision(root / "decision", n_lab, 300):
                print(f"| routing decision, {method}, {n_lab:,} labelled prompts x 5 models | p50 {p50:.2f} ms"
                      f" (p95 {p95:.2f}) | p50 <= 2 ms | {'PASS' if p50 <= 2 else 'FAIL'} |")
        if "whatif" in parts:
            secs, rep = bench_whatif(root / "whatif", n_req)
            if args.whatif_json:
                figures = {k: v for k, v in rep.items() if k != "breakdown"}
                args.whatif_json.write_text(json.dumps(figures, indent=1, sort_keys=True) + "\n")
            print(f"| whatif over {n_req:,} logged requests ({rep['breakdown']}) | {secs:.2f} s | <= 10 s | "
                  f"{'PASS' if secs <= 10 else 'FAIL'} |")
        if "training" in parts:
            for what, s in bench_training(n_lab):
                print(f"| training {what} x 5 models | {s:.2f} s | <= 30 s | {'PASS' if s <= 30 else 'FAIL'} |")
            e = bench_embedding(1000)
            print(f"| (embedding 1,000 prompts with MiniLM, not in the training figure) | {e:.2f} s | info | - |")
        if "whatif" in parts:
            print(f"\nwhatif hit rates now -> proposed: {rep['current']['hit_rate']:.3f} -> "
                  f"{rep['proposed']['hit_rate']:.3f} (L1 {rep['current']['hit_rate_by_level']['L1']:.3f} -> "
                  f"{rep['proposed']['hit_rate_by_level']['L1']:.3f})")


if __name__ == "__main__":
    main()
