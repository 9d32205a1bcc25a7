"""Writes and reads of the monitor tables. One transaction per request finish, so the rows of a
request (its calls, cache events and routing decision) land together or not at all."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from typing import Any

from ..db import Database
from ..redact import redact
from ..types import CACHE_LEVELS, AskResult, Cooldown, MemberResult
from . import owner


class Monitor:
    """Writes of the monitor tables (requests, calls, cache events, routing, cooldowns) and the
    reads `stats` and the dashboard need. Every write is one transaction."""

    def __init__(self, database: Database) -> None:
        self._dbh = database

    # -- writes ---------------------------------------------------------------------------------
    def start_request(self, request_id: str, prompt: str, strategy: str, router: str, *,
                      source: str = "api", tenant: str | None = None) -> None:
        with self._dbh.tx() as db:
            _insert(db, "requests", [{
                "id": request_id,
                "ts": time.time(),
                "status": "running",
                "prompt_hash": hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest(),
                "prompt_preview": prompt[:200],
                "strategy": strategy,
                "router": router,
                "source": source,
                "tenant": tenant,
                "owner_pid": owner.me()[0],
                "owner_start": owner.me()[1],
            }])

    def mark_interrupted(self, legacy_after_s: float = 3600.0) -> int:
        """Mark `running` requests whose process has died as `interrupted`; returns how many.
        Rows from before owners were recorded count as dead once older than `legacy_after_s`."""
        rows = self._dbh.db.execute(
            "SELECT id, owner_pid, owner_start, ts FROM requests WHERE status = 'running'").fetchall()
        now = time.time()
        dead = [(rid, pid) for rid, pid, start, ts in rows
                if (pid is None and (ts or 0) < now - legacy_after_s)
                or (pid is not None and not owner.alive(pid, start))]
        if not dead:
            return 0
        with self._dbh.tx() as db:
            for rid, pid in dead:
                db.execute(
                    "UPDATE requests SET status = 'interrupted', error = ? WHERE id = ? AND status = 'running'",
                    [f"Interrupted: process {pid or '?'} ended while the request was running", rid])
        return len(dead)

    def finish_request(
        self,
        result: AskResult,
        calls: list[MemberResult],
        cache_events: list[dict[str, Any]],
        saved_usd: float,
        replay: dict[str, Any] | None = None,
    ) -> None:
        """Mark the request complete and store everything that happened in it, atomically.
        `replay` is the request's row for the what-if replay (`request_log`)."""
        now = time.time()
        with self._dbh.tx() as db:
            if replay is not None:
                _insert(db, "request_log", [{"request_id": result.request_id, "ts": now, **replay}],
                        replace=True)
            _update(db, "requests", result.request_id, {
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
                _insert(db, "model_calls", [
                    {
                        "request_id": result.request_id,
                        "ts": now,
                        "model": m.model,
                        "tokens_in": m.tokens_in,
                        "tokens_out": m.tokens_out,
                        "cost_usd": m.cost_usd,
                        "latency_ms": m.latency_ms,
                        "error_class": m.error_class,
                        "error": redact(m.error) or None,
                        "attempts": m.attempts,
                        "attempt_errors": _attempt_errors(m),
                    }
                    for m in calls
                ])
            if cache_events:
                _insert(db, "cache_events", [{"request_id": result.request_id, "ts": now, **e}
                                             for e in cache_events])
            r = result.routing
            _insert(db, "routing_decisions", [{
                "request_id": result.request_id,
                "ts": now,
                "policy": r.policy,
                "strategy": r.strategy,
                "models": json.dumps(list(r.models)),
                "reason": r.reason,
                "predicted_cost_usd": r.predicted_cost_usd,
                "complexity": result.analysis.score,
                "domain": result.analysis.domain,
            }], replace=True)

    def fail_request(self, request_id: str, error: str, calls: list[MemberResult]) -> None:
        now = time.time()
        with self._dbh.tx() as db:
            _update(db, "requests", request_id, {"status": "error", "error": redact(error)})
            if calls:
                _insert(db, "model_calls", [
                    {
                        "request_id": request_id, "ts": now, "model": m.model,
                        "tokens_in": m.tokens_in, "tokens_out": m.tokens_out, "cost_usd": m.cost_usd,
                        "latency_ms": m.latency_ms, "error_class": m.error_class, "error": redact(m.error) or None,
                        "attempts": m.attempts, "attempt_errors": _attempt_errors(m),
                    }
                    for m in calls
                ])

    def record_cooldown(self, cd: Cooldown) -> None:
        """Persist a model's cooldown so other processes (`inferscale stats`, the dashboard) see it."""
        with self._dbh.tx() as db:
            db.execute(
                "INSERT INTO model_health (model, cooldown_until, cooldowns, failures, last_error_class,"
                " last_error, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?)"
                " ON CONFLICT(model) DO UPDATE SET cooldown_until = excluded.cooldown_until,"
                " cooldowns = cooldowns + 1, failures = excluded.failures,"
                " last_error_class = excluded.last_error_class, last_error = excluded.last_error,"
                " updated_at = excluded.updated_at",
                [cd.model, cd.until, cd.failures, cd.error_class, redact(cd.error), time.time()],
            )

    def cooldowns(self, active_only: bool = True) -> list[Cooldown]:
        sql = "SELECT model, cooldown_until, failures, last_error_class, last_error FROM model_health"
        rows = self._dbh.db.execute(
            sql + (" WHERE cooldown_until > ?" if active_only else ""), [time.time()] if active_only else []
        ).fetchall()
        return [Cooldown(r[0], r[1], r[2] or 0, r[3] or "", r[4] or "") for r in rows]

    # -- reads ----------------------------------------------------------------------------------
    def count(self, table: str, where: str | None = None, params: list | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM [{table}]" + (f" WHERE {where}" if where else "")
        return int(self._dbh.db.execute(sql, params or []).fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Totals for `inferscale stats`: requests, hit rate per level, cost, savings, latency."""
        db = self._dbh.db
        req = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_usd),0), COALESCE(SUM(saved_usd),0),"
            " SUM(status='ok'), SUM(status='error'), SUM(status='running'), SUM(status='interrupted')"
            " FROM requests"
        ).fetchone()
        levels = {}
        for level in CACHE_LEVELS:
            hits, misses, saved_usd, saved_ms = db.execute(
                "SELECT COALESCE(SUM(hit),0), COALESCE(SUM(1-hit),0), COALESCE(SUM(saved_usd),0),"
                " COALESCE(SUM(saved_ms),0) FROM cache_events WHERE level = ?",
                [level],
            ).fetchone()
            total = hits + misses
            evictions, entries, size = db.execute(
                "SELECT (SELECT COUNT(*) FROM cache_evictions WHERE level = ?),"
                " (SELECT COUNT(*) FROM cache_entries WHERE level = ?),"
                " (SELECT COALESCE(SUM(bytes), 0) FROM cache_entries WHERE level = ?)",
                [level, level, level],
            ).fetchone()
            levels[level] = {
                "hits": hits,
                "misses": misses,
                "hit_rate": (hits / total) if total else None,
                "saved_usd": saved_usd,
                "saved_ms": saved_ms,  # latency saved
                "evictions": evictions,
                "entries": entries,
                "bytes": size,
            }
        per_model = {}
        for (model,) in db.execute("SELECT DISTINCT model FROM model_calls ORDER BY model").fetchall():
            rows = db.execute(
                "SELECT latency_ms FROM model_calls WHERE model = ? AND error_class IS NULL"
                " ORDER BY latency_ms",
                [model],
            ).fetchall()
            lat = [r[0] for r in rows]
            calls, errors, cost, tin, tout, cancelled = db.execute(
                "SELECT COUNT(*), SUM(error_class IS NOT NULL AND error_class != 'Cancelled'),"
                " COALESCE(SUM(cost_usd),0), COALESCE(SUM(tokens_in),0), COALESCE(SUM(tokens_out),0),"
                " SUM(error_class = 'Cancelled') FROM model_calls WHERE model = ?",
                [model],
            ).fetchone()
            per_model[model] = {
                "calls": calls,
                "errors": errors,
                "cancelled": cancelled or 0,  # stragglers a strategy stopped early, not failures
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
            "requests_interrupted": req[6] or 0,  # left running by a process that died
            "cost_usd": req[1],
            "saved_usd": req[2],
            "cache": levels,
            "models": per_model,
            "cooldowns": self._cooldown_stats(),
        }

    def _cooldown_stats(self) -> dict[str, dict[str, Any]]:
        """Every model that was ever cooled down; `cooling_down` is true while it still is."""
        now = time.time()
        rows = self._dbh.db.execute(
            "SELECT model, cooldown_until, cooldowns, failures, last_error_class FROM model_health"
            " ORDER BY model"
        ).fetchall()
        return {
            model: {"cooling_down": until > now, "cooldown_until": until,
                    "remaining_s": max(0.0, until - now), "cooldowns": n, "failures": failures,
                    "last_error_class": cls}
            for model, until, n, failures, cls in rows
        }


def _percentile(sorted_values: list[float], pct: float) -> float | None:
    if not sorted_values:
        return None
    # nearest-rank (the ceil(p*n)-th value): a value that was really observed. Not round(x + 0.5):
    # banker's rounding makes that ceil(x) + 1 for some integer x (the p50 of [1, 2] came out 2).
    k = max(0, min(len(sorted_values) - 1, math.ceil(pct / 100 * len(sorted_values) - 1e-9) - 1))
    return sorted_values[k]


# The rows of every request are written with plain statements: sqlite-utils' `insert` and `update`
# read the table's schema on every call (a one-row insert cost 0.06 ms of CPU, an update 0.16,
# against 0.02 and 0.01 for the same statements plain), and a gateway miss writes six such rows.
def _insert(db: Any, table: str, rows: list[dict[str, Any]], replace: bool = False) -> None:
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    for cols, group in itertools.groupby(rows, key=tuple):  # one statement per run of like rows
        db.conn.executemany(f"{verb} INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [tuple(r.values()) for r in group])


def _update(db: Any, table: str, pk: str, values: dict[str, Any]) -> None:
    cur = db.conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                          [*values.values(), pk])
    if cur.rowcount == 0:  # as sqlite-utils' update: a missing row is an error, not a silent no-op
        raise LookupError(f"no row {pk!r} in {table}")


def _attempt_errors(m: MemberResult) -> str | None:
    return json.dumps(list(m.attempt_errors)) if m.attempt_errors else None
