"""Writes and reads of the monitor tables. One transaction per request finish, so the rows of a
request (its calls, cache events and routing decision) land together or not at all."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from ..db import Database
from ..types import AskResult, MemberResult

CACHE_LEVELS = ("L1", "L2", "L3", "L4")


class Monitor:
    def __init__(self, database: Database) -> None:
        self._dbh = database

    # -- writes ---------------------------------------------------------------------------------
    def start_request(self, request_id: str, prompt: str, strategy: str, router: str) -> None:
        with self._dbh.tx() as db:
            db["requests"].insert({
                "id": request_id,
                "ts": time.time(),
                "status": "running",
                "prompt_hash": hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest(),
                "prompt_preview": prompt[:200],
                "strategy": strategy,
                "router": router,
            })

    def finish_request(
        self,
        result: AskResult,
        calls: list[MemberResult],
        cache_events: list[dict[str, Any]],
        saved_usd: float,
    ) -> None:
        """Mark the request complete and store everything that happened in it, atomically."""
        now = time.time()
        with self._dbh.tx() as db:
            db["requests"].update(result.request_id, {
                "status": "ok",
                "domain": result.analysis.domain,
                "complexity": result.analysis.score,
                "models": json.dumps(list(result.routing.models)),
                "answer": result.answer,
                "confidence": result.confidence,
                "cache_level": result.cache.level if result.cache else None,
                "cost_usd": result.cost_usd,
                "saved_usd": saved_usd,
                "latency_ms": result.latency_ms,
            })
            if calls:
                db["model_calls"].insert_all(
                    {
                        "request_id": result.request_id,
                        "ts": now,
                        "model": m.model,
                        "tokens_in": m.tokens_in,
                        "tokens_out": m.tokens_out,
                        "cost_usd": m.cost_usd,
                        "latency_ms": m.latency_ms,
                        "error_class": m.error_class,
                        "error": m.error,
                        "attempts": m.attempts,
                    }
                    for m in calls
                )
            if cache_events:
                db["cache_events"].insert_all(
                    {"request_id": result.request_id, "ts": now, **e} for e in cache_events
                )
            r = result.routing
            db["routing_decisions"].insert({
                "request_id": result.request_id,
                "ts": now,
                "policy": r.policy,
                "strategy": r.strategy,
                "models": json.dumps(list(r.models)),
                "reason": r.reason,
                "predicted_cost_usd": r.predicted_cost_usd,
                "complexity": result.analysis.score,
                "domain": result.analysis.domain,
            }, replace=True)

    def fail_request(self, request_id: str, error: str, calls: list[MemberResult]) -> None:
        now = time.time()
        with self._dbh.tx() as db:
            db["requests"].update(request_id, {"status": "error", "error": error})
            if calls:
                db["model_calls"].insert_all(
                    {
                        "request_id": request_id, "ts": now, "model": m.model,
                        "tokens_in": m.tokens_in, "tokens_out": m.tokens_out, "cost_usd": m.cost_usd,
                        "latency_ms": m.latency_ms, "error_class": m.error_class, "error": m.error,
                        "attempts": m.attempts,
                    }
                    for m in calls
                )

    # -- reads ----------------------------------------------------------------------------------
    def count(self, table: str, where: str | None = None, params: list | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM [{table}]" + (f" WHERE {where}" if where else "")
        return int(self._dbh.db.execute(sql, params or []).fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Totals for `inferscale stats`: requests, hit rate per level, cost, savings, latency."""
        db = self._dbh.db
        req = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_usd),0), COALESCE(SUM(saved_usd),0),"
            " SUM(status='ok'), SUM(status='error'), SUM(status='running') FROM requests"
        ).fetchone()
        levels = {}
        for level in CACHE_LEVELS:
            hits, misses, saved_usd, saved_ms = db.execute(
                "SELECT COALESCE(SUM(hit),0), COALESCE(SUM(1-hit),0), COALESCE(SUM(saved_usd),0),"
                " COALESCE(SUM(saved_ms),0) FROM cache_events WHERE level = ?",
                [level],
            ).fetchone()
            total = hits + misses
            levels[level] = {
                "hits": hits,
                "misses": misses,
                "hit_rate": (hits / total) if total else None,
                "saved_usd": saved_usd,
                "saved_ms": saved_ms,
            }
        per_model = {}
        for (model,) in db.execute("SELECT DISTINCT model FROM model_calls ORDER BY model").fetchall():
            rows = db.execute(
                "SELECT latency_ms FROM model_calls WHERE model = ? AND error_class IS NULL"
                " ORDER BY latency_ms",
                [model],
            ).fetchall()
            lat = [r[0] for r in rows]
            calls, errors, cost, tin, tout = db.execute(
                "SELECT COUNT(*), SUM(error_class IS NOT NULL), COALESCE(SUM(cost_usd),0),"
                " COALESCE(SUM(tokens_in),0), COALESCE(SUM(tokens_out),0) FROM model_calls WHERE model = ?",
                [model],
            ).fetchone()
            per_model[model] = {
                "calls": calls,
                "errors": errors,
                "cost_usd": cost,
                "tokens_in": tin,
                "tokens_out": tout,
                "latency_p50_ms": _percentile(lat, 50),
                "latency_p95_ms": _percentile(lat, 95),
            }
        return {
            "requests": req[0],
            "requests_ok": req[3] or 0,
            "requests_failed": req[4] or 0,
            "requests_running": req[5] or 0,
            "cost_usd": req[1],
            "saved_usd": req[2],
            "cache": levels,
            "models": per_model,
        }


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    # nearest-rank: a value that was really observed
    k = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]
