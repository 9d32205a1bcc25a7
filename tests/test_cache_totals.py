"""The per-level entry and byte totals eviction reads (kept by triggers, `schema.m011_cache_totals`)
must equal a fresh count after every kind of write: new keys, a key stored again with another size
(INSERT OR REPLACE), hit updates, deletes, evictions, a clear — and an old database's rows are
counted when the migration runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from inferscale.cache.eviction import Evictor, Limits
from inferscale.cache.exact import ExactCache
from inferscale.db import Database
from inferscale.schema import MIGRATIONS


def counted(db: Database) -> dict[str, tuple[int, int]]:
    rows = db.db.execute("SELECT level, COUNT(*), COALESCE(SUM(bytes), 0) FROM cache_entries"
                         " GROUP BY level").fetchall()
    return {lvl: (n, b) for lvl, n, b in rows}


def totals(db: Database) -> dict[str, tuple[int, int]]:
    ev = Evictor(db)
    return {lvl: t for lvl in ("L2", "L3", "L4") if (t := ev.totals(lvl)) != (0, 0)}


def test_totals_follow_every_kind_of_write(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db")
    cache = ExactCache(db)
    for i in range(30):
        cache.put(f"k{i}", "L3" if i % 3 else "L4", {"answer": "x" * (10 + i)}, 0.001 * i, 50.0)
    assert totals(db) == counted(db) and counted(db)["L3"][0] == 20
    cache.put("k1", "L3", {"answer": "a much longer answer than before " * 20}, 0.5, 10.0)  # replaced
    cache.put("k3", "L3", {"answer": "moved from L4 to L3"}, 0.1, 10.0)  # replaced, other level
    assert cache.get("k2") is not None  # a hit updates hits and priority, not the size
    assert totals(db) == counted(db)
    evicted = Evictor(db).enforce("L3", Limits(max_entries=12, max_bytes=10**9, ttl_s=0))
    assert len(evicted) == 9 and totals(db) == counted(db) and counted(db)["L3"][0] == 12
    l4_bytes = counted(db)["L4"][1]
    Evictor(db).enforce("L4", Limits(max_entries=100, max_bytes=l4_bytes // 2, ttl_s=0))
    assert totals(db) == counted(db) and counted(db)["L4"][1] <= l4_bytes // 2
    assert cache.clear() > 0
    assert totals(db) == {} and counted(db) == {}


def test_the_migration_counts_rows_an_older_database_already_has(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = [(name, fn) for name, fn in MIGRATIONS if name != "m011_cache_totals"]
    import sqlite_utils

    from inferscale.db import apply_migrations

    conn = sqlite3.connect(path)
    apply_migrations(sqlite_utils.Database(conn), old)
    conn.executemany("INSERT INTO cache_entries (key, level, value, cost_usd, latency_ms, bytes, created_at,"
                     " last_hit_at, hits) VALUES (?, ?, '{}', 0, 0, ?, 0, 0, 0)",
                     [(f"old{i}", "L4", 100 + i) for i in range(7)])
    conn.commit()
    conn.close()
    db = Database(path)  # applies what is pending: the totals table, filled from the rows there
    assert totals(db) == counted(db) == {"L4": (7, sum(100 + i for i in range(7)))}
    ExactCache(db).put("new", "L4", {"answer": "y"}, 0.0, 1.0)
    assert totals(db) == counted(db)
