"""Eviction per level: TTL first, then capacity (entries and bytes) by GreedyDual-Size-Frequency.

GDSF gives each entry the priority  H = L + frequency × cost / size,  where cost is what a hit saves
(dollars, plus latency valued at LATENCY_USD_PER_S), size is its bytes, and L is the level's
"clock": the priority of the last entry evicted. A new or just-hit entry starts from the current
clock, so recency counts; an entry hit often, or one that saves an expensive call, climbs above it;
a big cheap entry goes first. The victim is always the lowest H, not simply the least recent.

Every eviction is written to `cache_evictions`. Callers that keep data outside SQLite (the L1
vectors in Chroma) pass `before_delete`, which runs before the rows go, so a failure there leaves
both sides in place rather than orphaning either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..db import Database

LATENCY_USD_PER_S = 0.0001  # a second of waiting is worth this much when comparing entries
_BATCH = 500


@dataclass(frozen=True)
class Limits:
    max_entries: int
    max_bytes: int
    ttl_s: float  # 0 = entries never expire


@dataclass(frozen=True)
class Eviction:
    level: str
    key: str
    reason: str  # ttl | entries | bytes
    bytes: int
    hits: int
    priority: float


def value_of(cost_usd: float, latency_ms: float) -> float:
    return max(0.0, cost_usd or 0.0) + max(0.0, latency_ms or 0.0) / 1000 * LATENCY_USD_PER_S


def gdsf_priority(clock: float, hits: int, cost_usd: float, latency_ms: float, size: int) -> float:
    """H = L + frequency × cost / size (size in KiB so values stay readable)."""
    kib = max(1, size) / 1024
    return clock + (1 + max(0, hits)) * value_of(cost_usd, latency_ms) * 1e4 / kib


class Evictor:
    def __init__(self, database: Database) -> None:
        self._dbh = database

    def clock(self, level: str) -> float:
        row = self._dbh.db.execute("SELECT inflation FROM cache_clock WHERE level = ?", [level]).fetchone()
        return float(row[0]) if row else 0.0

    def totals(self, level: str) -> tuple[int, int]:
        """(entries, bytes) of `level`, kept by triggers (`schema.m011_cache_totals`)."""
        row = self._dbh.db.execute("SELECT entries, bytes FROM cache_totals WHERE level = ?", [level]).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def enforce(self, level: str, limits: Limits, *, now: float | None = None,
                before_delete: Callable[[list[str]], None] | None = None) -> list[Eviction]:
        """Evict expired entries, then the lowest-priority ones until the level fits its limits."""
        now = time.time() if now is None else now
        out: list[Eviction] = []
        if limits.ttl_s and limits.ttl_s > 0:
            while True:
                rows = self._dbh.db.execute(
                    "SELECT key, bytes, hits, priority FROM cache_entries WHERE level = ? AND created_at < ?"
                    " LIMIT ?", [level, now - limits.ttl_s, _BATCH]).fetchall()
                if not rows:
                    break
                out += self._delete(level, rows, "ttl", now, before_delete)
        n, size = self.totals(level)
        while n > limits.max_entries or size > limits.max_bytes:
            reason = "entries" if n > limits.max_entries else "bytes"
            want = min(_BATCH, max(1, n - limits.max_entries)) if reason == "entries" else 1
            rows = self._dbh.db.execute(
                "SELECT key, bytes, hits, priority FROM cache_entries WHERE level = ?"
                " ORDER BY priority ASC, last_hit_at ASC LIMIT ?", [level, want]).fetchall()
            if reason == "bytes":  # take just enough of the lowest-priority entries
                rows = self._dbh.db.execute(
                    "SELECT key, bytes, hits, priority FROM cache_entries WHERE level = ?"
                    " ORDER BY priority ASC, last_hit_at ASC LIMIT ?", [level, _BATCH]).fetchall()
                over, picked = size - limits.max_bytes, []
                for r in rows:
                    picked.append(r)
                    over -= r[1] or 0
                    if over <= 0:
                        break
                rows = picked
            if not rows:
                break
            done = self._delete(level, rows, reason, now, before_delete)
            out += done
            n -= len(done)
            size -= sum(e.bytes for e in done)
        return out

    def _delete(self, level: str, rows: list, reason: str, now: float,
                before_delete: Callable[[list[str]], None] | None) -> list[Eviction]:
        keys = [r[0] for r in rows]
        if before_delete is not None:
            before_delete(keys)
        evs = [Eviction(level, r[0], reason, int(r[1] or 0), int(r[2] or 0), float(r[3] or 0.0))
               for r in rows]
        top = max((e.priority for e in evs if math.isfinite(e.priority)), default=0.0)
        with self._dbh.tx() as db:
            db.conn.executemany("DELETE FROM cache_entries WHERE key = ?", [[k] for k in keys])
            db["cache_evictions"].insert_all(
                {"ts": now, "level": level, "key": e.key, "reason": e.reason, "bytes": e.bytes,
                 "hits": e.hits, "priority": e.priority, "saved_usd": 0.0} for e in evs)
            if reason != "ttl":  # GDSF: the clock rises to the priority of what was evicted
                db.execute(
                    "INSERT INTO cache_clock (level, inflation) VALUES (?, ?) ON CONFLICT(level)"
                    " DO UPDATE SET inflation = MAX(inflation, excluded.inflation)", [level, top])
        return evs
