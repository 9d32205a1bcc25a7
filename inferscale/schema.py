"""The whole SQLite schema, as ordered migration functions (one module beside `db.py`, for every
component: settings, registry, monitor, cache). `db.apply_migrations` runs them in order and
records applied names in `_migrations`.

One schema module rather than one per component: the tables reference each other (calls →
requests) and one ordered list is the only order a fresh database and an old one can agree on.
Add a table with one decorated function appended at the END of this file; never edit one that has
shipped.
"""

from __future__ import annotations

import sqlite_utils

from .db import Migration

MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_settings_and_models(db: sqlite_utils.Database) -> None:
    db["settings"].create({"key": str, "value": str, "updated_at": float}, pk="key")
    db["models"].create(
        {"id": str, "spec": str, "enabled": int, "position": int, "updated_at": float}, pk="id"
    )


@migration
def m002_monitor(db: sqlite_utils.Database) -> None:
    db["requests"].create(
        {
            "id": str,
            "ts": float,
            "status": str,  # running | ok | error
            "prompt_hash": str,
            "prompt_preview": str,
            "strategy": str,
            "router": str,
            "domain": str,
            "complexity": float,
            "models": str,
            "answer": str,
            "confidence": float,
            "cache_level": str,
            "cost_usd": float,
            "saved_usd": float,
            "latency_ms": float,
            "error": str,
            "synthetic": int,
        },
        pk="id",
        defaults={"synthetic": 0, "cost_usd": 0.0, "saved_usd": 0.0},
    )
    db["requests"].create_index(["ts"])
    db["model_calls"].create(
        {
            "id": int,
            "request_id": str,
            "ts": float,
            "model": str,
            "tokens_in": int,
            "tokens_out": int,
            "cost_usd": float,
            "latency_ms": float,
            "error_class": str,
            "error": str,
            "attempts": int,
            "synthetic": int,
        },
        pk="id",
        defaults={"synthetic": 0},
    )
    db["model_calls"].create_index(["request_id"])
    db["model_calls"].create_index(["ts"])
    db["cache_events"].create(
        {
            "id": int,
            "request_id": str,
            "ts": float,
            "level": str,
            "hit": int,
            "model": str,
            "saved_usd": float,
            "saved_ms": float,
            "synthetic": int,
        },
        pk="id",
        defaults={"synthetic": 0, "saved_usd": 0.0, "saved_ms": 0.0},
    )
    db["cache_events"].create_index(["ts"])
    db["routing_decisions"].create(
        {
            "request_id": str,
            "ts": float,
            "policy": str,
            "strategy": str,
            "models": str,
            "reason": str,
            "predicted_cost_usd": float,
            "complexity": float,
            "domain": str,
            "synthetic": int,
        },
        pk="request_id",
        defaults={"synthetic": 0},
    )
    db["routing_decisions"].create_index(["ts"])


@migration
def m003_exact_cache(db: sqlite_utils.Database) -> None:
    db["cache_entries"].create(
        {
            "key": str,
            "level": str,  # L3 model output | L4 final result
            "model": str,
            "value": str,  # JSON payload
            "cost_usd": float,  # what a hit saves
            "latency_ms": float,
            "bytes": int,
            "created_at": float,
            "last_hit_at": float,
            "hits": int,
        },
        pk="key",
        defaults={"hits": 0},
    )
    db["cache_entries"].create_index(["level", "created_at"])


@migration
def m004_cache_levels(db: sqlite_utils.Database) -> None:
    """L1 semantic index beside cache_entries, GDSF priorities, and the eviction log."""
    db["cache_entries"].add_column("priority", float, not_null_default=0.0)
    db["cache_entries"].create_index(["level", "priority"])
    db.execute(
        "CREATE TABLE semantic_index ("
        " key TEXT PRIMARY KEY REFERENCES cache_entries(key) ON DELETE CASCADE,"
        " scope TEXT NOT NULL, last TEXT NOT NULL, history TEXT NOT NULL, exact_hash TEXT NOT NULL,"
        " v_last BLOB NOT NULL, v_hist BLOB)"
    )
    db.execute("CREATE INDEX idx_semantic_index_scope ON semantic_index(scope, exact_hash)")
    db["cache_evictions"].create(
        {"id": int, "ts": float, "level": str, "key": str, "reason": str, "bytes": int, "hits": int,
         "priority": float, "saved_usd": float},
        pk="id",
    )
    db["cache_evictions"].create_index(["level", "ts"])
    db["cache_clock"].create({"level": str, "inflation": float}, pk="level")


@migration
def m005_reliability(db: sqlite_utils.Database) -> None:
    """Every failed attempt's error class (retries included), and model cooldowns."""
    db["model_calls"].add_column("attempt_errors", str)  # JSON list, e.g. ["RateLimitError"]
    db["model_health"].create(
        {
            "model": str,
            "cooldown_until": float,  # epoch seconds
            "cooldowns": int,  # how many times the model was cooled down
            "failures": int,  # failures in the window that tripped the last cooldown
            "last_error_class": str,
            "last_error": str,
            "updated_at": float,
        },
        pk="model",
        defaults={"cooldowns": 0},
    )


@migration
def m006_request_source(db: sqlite_utils.Database) -> None:
    """Where a request came from (cli, batch, playground, gateway, experiment, api) and for whom
    (a gateway key's name), so traffic can be filtered by either."""
    db["requests"].add_column("source", str, not_null_default="api")
    db["requests"].add_column("tenant", str)
    db["requests"].create_index(["source"])


@migration
def m007_request_owner(db: sqlite_utils.Database) -> None:
    """Which process runs a request (pid + its start time, so a reused pid is not mistaken for
    it): a request left `running` by a process that died is marked `interrupted` at next start."""
    db["requests"].add_column("owner_pid", int)
    db["requests"].add_column("owner_start", str)
    db.execute("CREATE INDEX idx_requests_running ON requests(status) WHERE status = 'running'")


@migration
def m008_experiments(db: sqlite_utils.Database) -> None:
    """Experiments (issue 12) and one row per (experiment, config, item) as it completes; the
    learned router reads `experiment_results` (see the contract in the experiments package)."""
    db["experiments"].create(
        {"name": str, "dataset": str, "created_at": float, "updated_at": float,
         "status": str,  # running | done | stopped (budget) | interrupted
         "spec": str},  # JSON: configs, limit, seed, scorer, verifier, budget_usd…
        pk="name",
    )
    db["experiment_results"].create(
        {"experiment": str, "config": str, "item_id": str, "prompt": str, "system": str,
         "expected": str, "answer": str, "score": float, "correct": int, "error": str,
         "strategy": str, "models": str, "answered_by": str, "cost_usd": float, "latency_ms": float,
         "calls": int, "pass_at_k": int, "request_id": str, "ts": float,
         "reason": str, "candidates": int, "scorer": str, "scorer_calls": int,
         "scorer_cost_usd": float, "spent_usd": float, "seq": int},
        pk=("experiment", "config", "item_id"),
    )
    db["experiment_results"].create_index(["experiment", "config", "seq"])


@migration
def m009_gateway_keys(db: sqlite_utils.Database) -> None:
    """Gateway API keys (inferscale/gateway/keys.py): a salted hash per key, never the key; a
    budget and what the key has spent, so every worker process enforces one shared budget."""
    db["gateway_keys"].create(
        {
            "id": str,  # public part of the key, also the key's cache namespace
            "name": str,
            "salt": str,  # hex
            "hash": str,  # hex sha256(salt + secret)
            "budget_usd": float,  # NULL = no budget
            "spent_usd": float,
            "requests": int,
            "created_at": float,
            "last_used_at": float,
            "revoked_at": float,  # NULL while the key is active
        },
        pk="id",
        defaults={"spent_usd": 0.0, "requests": 0},
    )
    db["gateway_keys"].create_index(["name"])


@migration
def m010_feedback_and_replay_log(db: sqlite_utils.Database) -> None:
    """Feedback on answers (the learned router trains on it) and, per request, what the what-if
    replay needs to re-run the cache and the router: the full prompt, its L1 query and L4 key, and
    the prompt's embedding when it was already computed (NULL: embedded later, by the replay)."""
    db["feedback"].create(
        {
            "id": int,
            "request_id": str,
            "ts": float,
            "rating": str,  # good | bad
            "answer": str,  # a corrected answer, when the user gave one
            "model": str,  # the model card rated; NULL = the request's final answer
            "source": str,  # cli | playground | gateway | api
        },
        pk="id",
    )
    db["feedback"].create_index(["request_id"])
    db["feedback"].create_index(["ts"])
    db.execute(
        "CREATE TABLE request_log ("
        " request_id TEXT PRIMARY KEY, ts REAL NOT NULL, prompt TEXT NOT NULL, system TEXT,"
        " scope TEXT NOT NULL, l4_key TEXT NOT NULL, last TEXT NOT NULL, history TEXT NOT NULL,"
        " exact_hash TEXT NOT NULL, v_last BLOB, v_hist BLOB, tokens INTEGER, complexity REAL,"
        " domain TEXT, capability TEXT, strategy TEXT, router TEXT, explicit_models TEXT)"
    )
    db.execute("CREATE INDEX idx_request_log_ts ON request_log(ts)")


@migration
def m011_cache_totals(db: sqlite_utils.Database) -> None:
    """Entries and bytes per cache level, kept by triggers. Eviction checks a level's limits after
    every store, and counting the level each time cost ~230 ms at 100,000 entries (a row lookup per
    entry for its size). `Database` turns `recursive_triggers` on, so the delete an INSERT OR
    REPLACE does is counted too."""
    db.execute("CREATE TABLE cache_totals (level TEXT PRIMARY KEY, entries INTEGER NOT NULL DEFAULT 0,"
               " bytes INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO cache_totals (level, entries, bytes)"
               " SELECT level, COUNT(*), COALESCE(SUM(bytes), 0) FROM cache_entries GROUP BY level")
    # No INSERT OR IGNORE: inside a trigger the outer statement's conflict policy wins, and an
    # outer INSERT OR REPLACE would replace the level's row (resetting its totals).
    add = ("INSERT INTO cache_totals (level) SELECT NEW.level"
           " WHERE NOT EXISTS (SELECT 1 FROM cache_totals WHERE level = NEW.level);"
           " UPDATE cache_totals SET entries = entries + 1, bytes = bytes + COALESCE(NEW.bytes, 0)"
           " WHERE level = NEW.level;")
    sub = ("UPDATE cache_totals SET entries = entries - 1, bytes = bytes - COALESCE(OLD.bytes, 0)"
           " WHERE level = OLD.level;")
    db.execute(f"CREATE TRIGGER cache_totals_insert AFTER INSERT ON cache_entries BEGIN {add} END")
    db.execute(f"CREATE TRIGGER cache_totals_delete AFTER DELETE ON cache_entries BEGIN {sub} END")
    db.execute(f"CREATE TRIGGER cache_totals_update AFTER UPDATE OF level, bytes ON cache_entries"
               f" BEGIN {sub} {add} END")


@migration
def m012_l1_approximate_vectors(db: sqlite_utils.Database) -> None:
    """An L1 entry stored by the writer keeps the fast graph's vectors it already has (`approx` 1);
    its exact ones are computed the first time a lookup needs them, as most entries are never a
    candidate that could pass (the gateway's misses paid an exact pass each for nothing)."""
    db.execute("ALTER TABLE semantic_index ADD COLUMN approx INTEGER NOT NULL DEFAULT 0")


@migration
def m013_l1_scope_counters(db: sqlite_utils.Database) -> None:
    """Entries, inserts and deletes per L1 scope, kept by triggers: a process searching a scope
    from its own copy of the vectors (`cache/scope_search.py`) reads one row to know whether any
    process changed the scope since, and whether rows only came (read by rowid) or also went."""
    db.execute("CREATE TABLE semantic_scopes (scope TEXT PRIMARY KEY, entries INTEGER NOT NULL DEFAULT 0,"
               " inserts INTEGER NOT NULL DEFAULT 0, deletes INTEGER NOT NULL DEFAULT 0)")
    db.execute("INSERT INTO semantic_scopes (scope, entries, inserts)"
               " SELECT scope, COUNT(*), COUNT(*) FROM semantic_index GROUP BY scope")
    # As in m011: no INSERT OR IGNORE, the outer statement's conflict policy would win.
    add = ("INSERT INTO semantic_scopes (scope) SELECT NEW.scope"
           " WHERE NOT EXISTS (SELECT 1 FROM semantic_scopes WHERE scope = NEW.scope);"
           " UPDATE semantic_scopes SET entries = entries + 1, inserts = inserts + 1 WHERE scope = NEW.scope;")
    sub = "UPDATE semantic_scopes SET entries = entries - 1, deletes = deletes + 1 WHERE scope = OLD.scope;"
    db.execute(f"CREATE TRIGGER semantic_scopes_insert AFTER INSERT ON semantic_index BEGIN {add} END")
    db.execute(f"CREATE TRIGGER semantic_scopes_delete AFTER DELETE ON semantic_index BEGIN {sub} END")
    # A row moved to another scope keeps its rowid, which need not be above that scope's others:
    # counted as a delete there too, so a copy finds it by comparing rowids.
    moved = add.replace("inserts = inserts + 1", "inserts = inserts + 1, deletes = deletes + 1")
    db.execute(f"CREATE TRIGGER semantic_scopes_update AFTER UPDATE OF scope ON semantic_index"
               f" WHEN NEW.scope IS NOT OLD.scope BEGIN {sub} {moved} END")


@migration
def m014_l1_scope_promotion(db: sqlite_utils.Database) -> None:
    """Whether Chroma holds a scope's vectors (`cache/chroma_mirror.py`): 0 SQLite only (searched
    in-process), 1 being promoted, 2 promoted. Every scope of an existing home is in Chroma; those
    over 5,000 entries (the default `l1_scan_max` when this was written) stay there, the smaller
    ones are searched in-process and their vectors leave Chroma at the next `reconcile`."""
    db.execute("ALTER TABLE semantic_scopes ADD COLUMN indexed INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE semantic_scopes SET indexed = 2 WHERE entries > 5000")
