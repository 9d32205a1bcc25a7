"""Exact-match cache levels in SQLite.

L3 keys a single model's output on (model, messages, sampling params); L4 keys a request's final
answer on its whole scope (conversation, system prompt, params, strategy, model set or router
config). Keys are SHA-256 of canonical JSON, so equal inputs always hash alike and large prompts
cost nothing extra to store as keys.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from ..db import Database
from .eviction import Evictor, gdsf_priority
from .scope import digest


def cache_key(level: str, **parts: Any) -> str:
    """`<level>:<digest of parts>`: the key of an exact entry."""
    return level + ":" + digest(parts)


@dataclass(frozen=True)
class Entry:
    key: str
    level: str
    value: dict[str, Any]
    cost_usd: float
    latency_ms: float
    created_at: float
    hits: int


class ExactCache:
    """Exact lookups by key. `get(ttl_s=…)` treats an entry older than the level's TTL as a miss
    (the evictor removes it); every hit raises the entry's GDSF priority."""

    def __init__(self, database: Database) -> None:
        self._dbh = database
        self.evictor = Evictor(database)

    def get(self, key: str, ttl_s: float = 0.0) -> Entry | None:
        row = self._dbh.db.execute(
            "SELECT key, level, value, cost_usd, latency_ms, created_at, hits, bytes FROM cache_entries"
            " WHERE key = ?",
            [key],
        ).fetchone()
        now = time.time()
        if row is None or (ttl_s and ttl_s > 0 and row[5] < now - ttl_s):
            return None
        prio = gdsf_priority(self.evictor.clock(row[1]), row[6] + 1, row[3], row[4], row[7])
        with self._dbh.tx() as db:
            db.execute(
                "UPDATE cache_entries SET hits = hits + 1, last_hit_at = ?, priority = ? WHERE key = ?",
                [now, prio, key],
            )
        return Entry(row[0], row[1], json.loads(row[2]), row[3], row[4], row[5], row[6] + 1)

    def put(self, key: str, level: str, value: dict[str, Any], cost_usd: float, latency_ms: float,
            model: str | None = None) -> None:
        blob = json.dumps(value, ensure_ascii=False)
        size = len(blob.encode("utf-8", "replace"))
        now = time.time()
        prio = gdsf_priority(self.evictor.clock(level), 0, cost_usd, latency_ms, size)
        with self._dbh.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO cache_entries (key, level, model, value, cost_usd, latency_ms,"
                " bytes, created_at, last_hit_at, hits, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                [key, level, model, blob, cost_usd, latency_ms, size, now, now, prio],
            )

    def count(self, level: str | None = None) -> int:
        if level is None:
            return int(self._dbh.db.execute("SELECT COUNT(*) FROM cache_entries").fetchone()[0])
        return int(self._dbh.db.execute(
            "SELECT COUNT(*) FROM cache_entries WHERE level = ?", [level]).fetchone()[0])

    def clear(self) -> int:
        with self._dbh.tx() as db:
            return db.execute("DELETE FROM cache_entries").rowcount
