"""Synthetic monitor rows (`synthetic = 1`) for demos and for load-testing the dashboard's charts.

`inferscale seed --requests 100000` fills requests, model_calls, cache_events and
routing_decisions in one transaction with `executemany`, spread over the last `days`. The rows are
plausible (per-model latency and price, cache hits that save the original cost) but made up; every
chart can exclude them, and `clear_synthetic` removes them.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from ..db import Database
from ..settings import ROUTER_NAMES, STRATEGY_NAMES

TABLES = ("requests", "model_calls", "cache_events", "routing_decisions")
DOMAINS = ("chat", "factual", "code", "math", "reasoning", "creative")
DEFAULT_MODELS = ("local/smollm2-135m-instruct", "local/gemma-3-270m", "gpt-4o-mini", "gpt-4o")
CHUNK = 5000

# Per-lookup hit probabilities by level (L4 final answer, L3 per model, L2 analysis, L1 semantic).
HIT_P = {"L1": 0.12, "L2": 0.35, "L3": 0.15, "L4": 0.2}

STRATEGY_WEIGHTS = [3 if s == "single" else 1 for s in STRATEGY_NAMES]
ROUTER_WEIGHTS = [6 if r == "complexity" else 1 for r in ROUTER_NAMES]

Progress = Callable[[int, int], None]  # (requests done, total)


@dataclass(frozen=True)
class _Model:
    id: str
    latency_ms: float
    usd_per_call: float


def _models(database: Database) -> list[_Model]:
    rows = database.db.execute("SELECT spec FROM models ORDER BY position").fetchall()
    specs = [json.loads(r[0]) for r in rows] or [{"id": m} for m in DEFAULT_MODELS]
    out = []
    for s in specs:
        local = str(s.get("model", s["id"])).startswith("local/")
        price = ((s.get("input_price_per_1m") or 0.15) * 300
                 + (s.get("output_price_per_1m") or 0.6) * 120) / 1e6
        out.append(_Model(s["id"], float(s.get("latency_prior_ms") or 1000),
                          2e-5 if local else price))
    return out


def seed_synthetic(
    database: Database,
    requests: int,
    *,
    days: float = 30.0,
    rng_seed: int | None = 0,
    now: float | None = None,
    on_progress: Progress | None = None,
) -> dict[str, int]:
    """Insert `requests` synthetic requests with their calls, cache events and routing decisions.

    Returns the number of rows written per table. Runs in one transaction: all or nothing.
    """
    if requests < 0:
        raise ValueError("requests must be >= 0")
    rng = random.Random(rng_seed)
    models = _models(database)
    end = time.time() if now is None else now
    start = end - days * 86400
    run = uuid.uuid4().hex[:8]
    counts = dict.fromkeys(TABLES, 0)
    with database.tx() as db:
        conn = db.conn
        for lo in range(0, requests, CHUNK):
            rows = _chunk(rng, models, run, lo, min(requests, lo + CHUNK), start, end)
            conn.executemany(
                "INSERT INTO requests (id, ts, status, prompt_hash, prompt_preview, strategy, router,"
                " domain, complexity, models, answer, confidence, cache_level, cost_usd, saved_usd,"
                " latency_ms, error, synthetic) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                rows["requests"])
            conn.executemany(
                "INSERT INTO model_calls (request_id, ts, model, tokens_in, tokens_out, cost_usd,"
                " latency_ms, error_class, error, attempts, synthetic) VALUES (?,?,?,?,?,?,?,?,?,?,1)",
                rows["model_calls"])
            conn.executemany(
                "INSERT INTO cache_events (request_id, ts, level, hit, model, saved_usd, saved_ms,"
                " synthetic) VALUES (?,?,?,?,?,?,?,1)", rows["cache_events"])
            conn.executemany(
                "INSERT INTO routing_decisions (request_id, ts, policy, strategy, models, reason,"
                " predicted_cost_usd, complexity, domain, synthetic) VALUES (?,?,?,?,?,?,?,?,?,1)",
                rows["routing_decisions"])
            for t in TABLES:
                counts[t] += len(rows[t])
            if on_progress:
                on_progress(min(requests, lo + CHUNK), requests)
    return counts


def _chunk(rng: random.Random, models: list[_Model], run: str, lo: int, hi: int,
           start: float, end: float) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {t: [] for t in TABLES}
    ladder = sorted(models, key=lambda m: m.usd_per_call)
    for i in range(lo, hi):
        rid = f"syn-{run}-{i}"
        ts = rng.uniform(start, end)
        domain = rng.choice(DOMAINS)
        complexity = min(1.0, max(0.0, rng.betavariate(2, 4) + (0.2 if domain in ("code", "math") else 0)))
        strategy = rng.choices(STRATEGY_NAMES, weights=STRATEGY_WEIGHTS)[0]
        router = rng.choices(ROUTER_NAMES, weights=ROUTER_WEIGHTS)[0]
        idx = min(len(ladder) - 1, int(complexity * len(ladder)))
        k = 1 if strategy == "single" else min(len(ladder), 2)
        chosen = [ladder[(idx + j) % len(ladder)] for j in range(k)]
        ids = json.dumps([m.id for m in chosen])
        events = out["cache_events"]
        original = sum(m.usd_per_call for m in chosen) * rng.uniform(0.5, 1.5)
        # Lookup order as in the engine: exact final result (L4), then semantic (L1); a hit serves
        # the request. Otherwise the analysis (L2) and each member (L3) may still be reused.
        served = None
        for level in ("L4", "L1"):
            hit = served is None and rng.random() < HIT_P[level]
            if served is None:
                events.append((rid, ts, level, int(hit), None, original if hit else 0.0,
                               900.0 if hit else 0.0))
            served = level if hit else served
        if served is None:
            l2_hit = rng.random() < HIT_P["L2"]
            events.append((rid, ts, "L2", int(l2_hit), None, 0.0, 25.0 if l2_hit else 0.0))
        cost = saved = 0.0
        latency = rng.uniform(3, 15)
        status, error, cache_level = "ok", None, None
        if served:
            saved, cache_level = original, served
        else:
            member_lat = []
            for m in chosen:
                if rng.random() < HIT_P["L3"]:
                    c = m.usd_per_call * rng.uniform(0.5, 1.5)
                    events.append((rid, ts, "L3", 1, m.id, c, m.latency_ms))
                    saved += c
                    continue
                events.append((rid, ts, "L3", 0, m.id, 0.0, 0.0))
                lat = m.latency_ms * rng.lognormvariate(0, 0.45)
                failed = rng.random() < 0.02
                c = 0.0 if failed else m.usd_per_call * rng.uniform(0.5, 1.5)
                tin, tout = rng.randint(8, 400), 0 if failed else rng.randint(5, 300)
                out["model_calls"].append((
                    rid, ts, m.id, tin, tout, c, lat, "Timeout" if failed else None,
                    "Timeout: synthetic" if failed else None, 2 if failed else 1))
                cost += c
                member_lat.append(lat)
            latency += max(member_lat, default=0.0)
            if rng.random() < 0.01:
                status, error = "error", "AllModelsFailedError: synthetic failure"
        out["requests"].append((
            rid, ts, status, uuid.UUID(int=rng.getrandbits(128)).hex, f"synthetic {domain} prompt #{i}",
            strategy, router, domain, complexity, ids, None if error else f"synthetic answer #{i}",
            None if strategy == "single" else rng.uniform(0.4, 0.95), cache_level, cost, saved,
            latency, error))
        out["routing_decisions"].append((
            rid, ts, router, strategy, ids, f"synthetic: complexity {complexity:.2f} ({domain})",
            sum(m.usd_per_call for m in chosen), complexity, domain))
    return out


def clear_synthetic(database: Database) -> dict[str, int]:
    """Delete every synthetic row; returns rows deleted per table."""
    with database.tx() as db:
        return {t: db.execute(f"DELETE FROM [{t}] WHERE synthetic = 1").rowcount for t in TABLES}


def seed_home(home: str | None, requests: int, *, days: float = 30.0, clear: bool = False,
              echo: Callable[[str], None] = print) -> dict[str, int]:
    """`inferscale seed`: open (or create) the home's database and seed or clear synthetic rows.

    Needs no engine: only the database, and the registry so the rows name the home's models.
    """
    from ..registry import Registry
    from ..settings import Settings

    settings = Settings.from_env(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    database = Database(settings.db_path)
    Registry(database, seed=settings.models_yaml)
    t0 = time.perf_counter()
    if clear:
        counts = clear_synthetic(database)
        echo(f"removed synthetic rows from {settings.db_path}: "
             + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
        return counts
    step = max(CHUNK, requests // 10)

    def progress(done: int, total: int) -> None:
        if done % step < CHUNK or done == total:
            echo(f"  {done:,}/{total:,} requests")

    counts = seed_synthetic(database, requests, days=days, rng_seed=None, on_progress=progress)
    echo(f"seeded {settings.db_path} in {time.perf_counter() - t0:.1f} s (synthetic=1): "
         + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
    return counts
