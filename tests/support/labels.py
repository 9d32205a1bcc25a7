"""Labelled data for the learned router, made for real: the fake models answer prompts of two kinds
through `Engine.aask`, the answers are scored against the expected ones, and the rows are written
to `experiment_results` as the experiments contract defines it (that branch owns the migration;
this helper only creates the table if it is missing)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from inferscale.types import CacheControl

CONTRACT_TABLE = """CREATE TABLE IF NOT EXISTS experiment_results (
  experiment TEXT, config TEXT, item_id TEXT,
  prompt TEXT, system TEXT, expected TEXT,
  answer TEXT, score REAL, correct INTEGER, error TEXT,
  strategy TEXT, models TEXT, answered_by TEXT,
  cost_usd REAL, latency_ms REAL, calls INTEGER, pass_at_k INTEGER,
  request_id TEXT, ts REAL,
  PRIMARY KEY (experiment, config, item_id))"""

WORDS = ("garden", "lantern", "pebble", "orchid", "harbor", "meadow", "copper", "violin", "thunder",
         "saddle", "biscuit", "walnut", "canyon", "feather", "marble", "tunnel", "parrot", "cobweb",
         "blanket", "compass", "shovel", "velvet", "pickle", "anchor", "glacier", "raisin", "spindle")
SUM_FORMS = ("What is {a} plus {b}?", "Compute {a} plus {b}.", "Tell me what {a} plus {b} equals.",
             "How much is {a} plus {b}?", "Quick maths: {a} plus {b}?")
REV_FORMS = ("Spell the word '{w}' backwards.", "Write '{w}' backwards, letter by letter.",
             "What is '{w}' spelled backwards?", "Reverse the letters: '{w}' backwards please.")


def two_kinds(n_sum: int, n_rev: int, seed: int = 7) -> list[dict[str, str]]:
    """`n_sum` sum prompts and `n_rev` reversal prompts, each with its expected answer."""
    rng = random.Random(seed)
    out = []
    for i in range(n_sum):
        a, b = rng.randint(2, 400), rng.randint(2, 400)
        out.append({"id": f"sum-{i}", "kind": "sum", "prompt": SUM_FORMS[i % len(SUM_FORMS)].format(a=a, b=b),
                    "expected": str(a + b)})
    for i in range(n_rev):
        w = WORDS[i % len(WORDS)] + ("" if i < len(WORDS) else WORDS[(i * 7) % len(WORDS)][:3])
        out.append({"id": f"rev-{i}", "kind": "rev", "prompt": REV_FORMS[i % len(REV_FORMS)].format(w=w),
                    "expected": w[::-1]})
    return out


def write_results(engine: Any, rows: list[dict[str, Any]]) -> None:
    with engine.database.tx() as db:
        db.execute(CONTRACT_TABLE)
        for r in rows:
            db["experiment_results"].insert(r, replace=True)


async def _label(engine: Any, experiment: str, items: list[dict[str, str]], models: list[str]) -> list[dict]:
    sem = asyncio.Semaphore(8)

    async def one(item: dict[str, str], model: str) -> dict[str, Any]:
        async with sem:
            res = await engine.aask(item["prompt"], models=[model], strategy="single",
                                    cache=CacheControl.off(), source="experiment")
        correct = int(res.answer.strip() == item["expected"])
        return {"experiment": experiment, "config": f"single-{model}", "item_id": item["id"],
                "prompt": item["prompt"], "system": None, "expected": item["expected"], "answer": res.answer,
                "score": float(correct), "correct": correct, "error": None, "strategy": "single",
                "models": json.dumps([model]), "answered_by": json.dumps([model]), "cost_usd": res.cost_usd,
                "latency_ms": res.latency_ms, "calls": 1, "pass_at_k": None, "request_id": res.request_id,
                "ts": time.time()}

    return list(await asyncio.gather(*(one(it, m) for it in items for m in models)))


def label(engine: Any, experiment: str, items: list[dict[str, str]], models: list[str]) -> list[dict]:
    """Ask every model every item (cache off), score, store; returns the rows."""
    from inferscale.orchestration.runner import run_sync

    rows = run_sync(_label(engine, experiment, items, models))
    engine.flush()  # the requests the rows point at are written behind the answers
    write_results(engine, rows)
    return rows
