"""The in-process search of small L1 scopes (`cache/scope_search.py`): it must find what any
process on the home wrote or deleted since, agree with Chroma on the nearest entries, hand large
scopes to Chroma (and only those: `cache/chroma_mirror.py`), and stay within its memory bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferscale.cache.chroma_index import ChromaIndex, IndexUnavailable
from inferscale.cache.eviction import Limits
from inferscale.cache.scope import build_query
from inferscale.cache.scope_search import ScopeSearch
from inferscale.cache.semantic import SemanticCache, Vectors
from inferscale.db import Database, apply_migrations
from inferscale.embeddings import DIM, Embedder
from inferscale.schema import MIGRATIONS

_EMBEDDER = Embedder()


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _q(text: str, **scope: object) -> object:
    return build_query([{"role": "user", "content": text}], **({"strategy": "single"} | scope))


def _put(cache: SemanticCache, text: str, seed: int, **scope: object) -> str:
    key = cache.put(_q(text, **scope), {"answer": text}, 0.0, 1.0, vectors=Vectors(_unit(seed), None))
    assert key is not None
    return key


def test_a_second_process_sees_rows_written_deleted_and_a_reused_rowid(home: Path) -> None:
    home.mkdir(parents=True)
    writer = SemanticCache(Database(home / "t.db"), ChromaIndex(home / "chroma"), _EMBEDDER)
    reader = ScopeSearch(Database(home / "t.db"))  # another process: its own handle, its own copy
    scope = _q("anything").scope_key
    first = [_put(writer, f"entry {i}", i) for i in range(5)]
    assert reader.nearest(scope, _unit(3), 1) == [(first[3], pytest.approx(1.0))]
    later = _put(writer, "entry five", 50)  # caught up by rowid
    assert reader.nearest(scope, _unit(50), 1)[0][0] == later
    # The newest row (the highest rowid) goes and, before the reader searches again, a new row
    # takes its rowid: told apart by its hash.
    writer.delete([later])
    reused = _put(writer, "entry six", 60)
    rowid = writer._dbh.db.execute("SELECT rowid FROM semantic_index WHERE key = ?", [reused]).fetchone()[0]
    assert rowid == 6  # the same rowid `later` had
    got = reader.nearest(scope, _unit(60), 10)
    assert got[0] == (reused, pytest.approx(1.0)) and {k for k, _ in got} == set(first) | {reused}
    writer.delete(first[:2])  # rows in the middle
    assert {k for k, _ in reader.nearest(scope, _unit(0), 10)} == set(first[2:]) | {reused}
    assert reader.nearest(_q("anything", tenant="another scope").scope_key, _unit(0), 4) == []


def test_the_nearest_entries_are_chromas_and_a_large_scope_is_left_to_chroma(home: Path) -> None:
    home.mkdir(parents=True)
    cache = SemanticCache(Database(home / "t.db"), ChromaIndex(home / "chroma"), _EMBEDDER, max_scope=0)
    keys = [_put(cache, f"entry {i}", i) for i in range(40)]
    scope = _q("x").scope_key
    assert cache.scopes.nearest(scope, _unit(0), 4) is None  # promoted at its first entry: Chroma's
    scan = ScopeSearch(cache._dbh)  # a process with the default bound scans the same scope
    for probe in (3, 17, 101, 202):
        v = _unit(probe) + 0.5 * _unit(probe + 1)
        v /= np.linalg.norm(v)
        mine = scan.nearest(scope, v, 4)
        theirs = cache.index.query(v, scope, 4)
        assert [k for k, _ in mine] == [k for k, _ in theirs]
        assert [s for _, s in mine] == pytest.approx([s for _, s in theirs], abs=1e-4)
    # Through Chroma, a vector whose row is gone is an orphan, and dropped.
    with cache._dbh.tx() as db:
        db.execute("DELETE FROM cache_entries WHERE key = ?", [keys[5]])
    r = cache.lookup(_q("entry 5"), vectors=Vectors(_unit(5), None))
    assert r.error is None and keys[5] not in cache.index.ids()


def _flags(cache: SemanticCache) -> dict[str, int]:
    return dict(cache._dbh.db.execute("SELECT scope, indexed FROM semantic_scopes").fetchall())


def test_a_scope_goes_to_chroma_only_when_it_outgrows_the_scan(home: Path) -> None:
    home.mkdir(parents=True)
    cache = SemanticCache(Database(home / "t.db"), ChromaIndex(home / "chroma"), _EMBEDDER, max_scope=6)
    big, small = _q("x").scope_key, _q("x", tenant="small").scope_key
    keys = [_put(cache, f"entry {i}", i) for i in range(6)]
    other = [_put(cache, f"entry {i}", 100 + i, tenant="small") for i in range(3)]
    assert cache.index.ids() == set() and _flags(cache) == {big: 0, small: 0}
    assert cache.lookup(_q("entry 2"), vectors=Vectors(_unit(2), None)).match.key == keys[2]
    # The 7th and 8th entries, written together, take the scope past the bound: all of its
    # vectors go to Chroma, which then answers its lookups; the small scope stays out.
    more = cache.put_many([(_q(f"entry {i}"), {"answer": str(i)}, 0.0, 1.0) for i in (6, 7)],
                          [Vectors(_unit(i), None) for i in (6, 7)])
    assert _flags(cache) == {big: 2, small: 0} and cache.index.ids() == set(keys) | set(more)
    assert cache.scopes.nearest(big, _unit(7), 1) is None
    assert cache.lookup(_q("entry 7"), vectors=Vectors(_unit(7), None)).match.key == more[1]
    assert cache.lookup(_q("entry 1", tenant="small"), vectors=Vectors(_unit(101), None)).match.key == other[1]
    # Eviction takes vectors with their rows; a shrunken scope stays with Chroma.
    cache.evict(Limits(max_entries=5, max_bytes=10**9, ttl_s=0))
    left = {r[0] for r in cache._dbh.db.execute("SELECT key FROM semantic_index WHERE scope = ?", [big])}
    assert cache.index.ids() == left and _flags(cache)[big] == 2
    assert cache.reconcile() == {"removed_vectors": 0, "added_vectors": 0}


def test_a_promotion_cut_short_is_searched_in_process_and_finished_by_the_next_process(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True)
    cache = SemanticCache(Database(home / "t.db"), ChromaIndex(home / "chroma"), _EMBEDDER, max_scope=3)
    scope = _q("x").scope_key
    keys = [_put(cache, f"entry {i}", i) for i in range(3)]
    real_add = cache.index.add

    def down(*_: object) -> None:
        raise IndexUnavailable("Chroma is down")
    monkeypatch.setattr(cache.index, "add", down)
    keys.append(_put(cache, "entry 3", 3))  # the promotion fails: the entry is kept all the same
    assert _flags(cache) == {scope: 1}
    assert cache.lookup(_q("entry 3"), vectors=Vectors(_unit(3), None)).match.key == keys[3]
    monkeypatch.setattr(cache.index, "add", real_add)
    keys.append(_put(cache, "entry 4", 4))  # a writer of a promoting scope adds its own vector
    assert cache.index.ids() == {keys[4]}
    # The next process to look up finishes the promotion before its first search.
    again = SemanticCache(Database(home / "t.db"), cache.index, _EMBEDDER, max_scope=3)
    assert again.lookup(_q("entry 0"), vectors=Vectors(_unit(0), None)).match.key == keys[0]
    assert _flags(again) == {scope: 2} and again.index.ids() == set(keys)
    assert again.scopes.nearest(scope, _unit(0), 1) is None


def test_copies_stay_within_their_bound_and_still_answer(home: Path) -> None:
    home.mkdir(parents=True)
    cache = SemanticCache(Database(home / "t.db"), ChromaIndex(home / "chroma"), _EMBEDDER)
    search = ScopeSearch(cache._dbh, max_rows=12)
    keys = {t: [_put(cache, f"entry {i}", 10 * t + i, tenant=t) for i in range(5)] for t in range(3)}
    for _ in range(2):
        for t in range(3):
            sk = _q("x", tenant=t).scope_key
            assert search.nearest(sk, _unit(10 * t + 2), 1)[0][0] == keys[t][2]
            assert sum(c.n for c in search._copies.values()) <= 12


def test_counters_follow_every_write_and_the_migration_counts_existing_rows(home: Path) -> None:
    home.mkdir(parents=True)
    old = Database(home / "old.db")
    cache = SemanticCache(old, ChromaIndex(home / "chroma"), _EMBEDDER, max_scope=0)
    for i in range(4):  # as before the counters: rows, and every vector in Chroma
        _put(cache, f"entry {i}", i, tenant=f"s{i % 2}")
    # A home from before the counters: its rows are counted when the migration runs.
    with old.tx() as db:
        db.execute("DELETE FROM _migrations WHERE name IN ('m013_l1_scope_counters', 'm014_l1_scope_promotion')")
        db.execute("DROP TABLE semantic_scopes")
        for name in ("insert", "delete", "update"):
            db.execute(f"DROP TRIGGER semantic_scopes_{name}")
    assert apply_migrations(old.db, MIGRATIONS) == ["m013_l1_scope_counters", "m014_l1_scope_promotion"]
    counted = dict(old.db.execute("SELECT scope, entries FROM semantic_scopes").fetchall())
    assert sorted(counted.values()) == [2, 2] and len(counted) == 2
    # Scopes this small are searched in-process now, and the next reconcile takes their vectors
    # out of Chroma.
    assert set(_flags(cache).values()) == {0} and len(cache.index.ids()) == 4
    assert cache.reconcile() == {"removed_vectors": 4, "added_vectors": 0} and cache.index.ids() == set()
    cache = SemanticCache(old, cache.index, _EMBEDDER)
    # Re-puts (a delete and an insert), eviction, a replaced cache row (its index row cascades).
    key = _put(cache, "entry 0", 0, tenant="s0")
    _put(cache, "entry 0", 0, tenant="s0")
    with cache._dbh.tx() as db:
        db.execute("INSERT OR REPLACE INTO cache_entries (key, level, value, created_at, last_hit_at, hits,"
                   " priority) VALUES (?, 'L1', '{}', 0, 0, 0, 0)", [key])
    cache.evict(Limits(max_entries=2, max_bytes=10**9, ttl_s=0))
    truth = dict(old.db.execute("SELECT scope, COUNT(*) FROM semantic_index GROUP BY scope").fetchall())
    kept = dict(old.db.execute("SELECT scope, entries FROM semantic_scopes WHERE entries > 0").fetchall())
    assert kept == truth and sum(truth.values()) == 2


def test_the_scan_bound_comes_from_the_environment_and_a_bad_one_is_named(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from inferscale.errors import ConfigError
    from inferscale.settings import Settings

    monkeypatch.setenv("INFERSCALE_L1_SCAN_MAX", "250")
    assert Settings.from_env(home).l1_scan_max == 250
    for bad, says in (("lots", "is not a whole number"), ("-1", "must be >= 0"), ("2.5", "is not a whole number")):
        monkeypatch.setenv("INFERSCALE_L1_SCAN_MAX", bad)
        with pytest.raises(ConfigError, match=f"INFERSCALE_L1_SCAN_MAX={bad!r} {says}"):
            Settings.from_env(home)
