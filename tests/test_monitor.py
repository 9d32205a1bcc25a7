"""Monitor store: migrations applied once, WAL, and no lost rows under concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inferscale import Engine, Settings
from inferscale.db import Database, apply_migrations
from inferscale.monitor.store import Monitor
from inferscale.schema import MIGRATIONS
from inferscale.types import MemberResult
from tests.support.fakes import fake_model

ECHO = fake_model("fake-echo", "echo", input_price_per_1m=1.0, output_price_per_1m=1.0)


def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = Database(path)
    rows = first.db.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall()
    assert [name for name, _ in rows] == [name for name, _ in MIGRATIONS]
    assert all(applied_at for _, applied_at in rows)
    tables = set(first.db.table_names())
    assert {"settings", "models", "requests", "model_calls", "cache_events", "routing_decisions",
            "cache_entries"} <= tables
    first.db["settings"].insert({"key": "k", "value": "1", "updated_at": 0.0})

    reopened = Database(path)  # migrating again on open is a no-op
    assert reopened.db.execute("SELECT name, applied_at FROM _migrations ORDER BY rowid").fetchall() == rows
    assert apply_migrations(reopened.db) == []
    assert reopened.db["settings"].count == 1  # data survives re-opening


def test_journal_mode_is_wal(home: Path) -> None:
    engine = Engine(Settings.from_env(home))
    assert engine.database.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    import sqlite3

    with sqlite3.connect(engine.settings.db_path) as fresh:  # WAL is a property of the file
        assert fresh.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _status_counts(engine: Engine) -> dict[str, int]:
    rows = engine.database.db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall()
    return dict(rows)


def test_writers_in_one_process_queue_on_one_lock_and_a_stuck_one_fails_the_wait_clearly(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from inferscale import db as dbmod

    first, second = Database(tmp_path / "a.db"), Database(tmp_path / "a.db")  # two handles, one file
    first.db.execute("CREATE TABLE notes (n INTEGER)")
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with first.tx() as d:
            d.execute("INSERT INTO notes VALUES (1)")
            inside.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(30)
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_S", 0.2)
    with pytest.raises(Exception, match="waited 0.2 s for this process's other writers"), second.tx():
        pass
    release.set()
    t.join(30)
    with second.tx() as d:  # free again: it writes, and sees the first handle's committed row
        d.execute("INSERT INTO notes VALUES (2)")
    assert [r[0] for r in first.db.execute("SELECT n FROM notes ORDER BY n")] == [1, 2]


def test_shared_engine_under_8_threads(make_engine, server) -> None:
    engine = make_engine(ECHO)

    def worker(t: int) -> list[str]:
        return [
            engine.ask(f"thread {t} request {i}", models=["fake-echo"], use_cache=False).request_id
            for i in range(100)
        ]

    with ThreadPoolExecutor(8) as pool:
        ids = [rid for batch in pool.map(worker, range(8)) for rid in batch]

    assert len(set(ids)) == 800
    assert _status_counts(engine) == {"ok": 800}
    assert engine.monitor.count("model_calls") == 800
    assert engine.monitor.count("model_calls", "error_class IS NULL") == 800
    assert engine.monitor.count("routing_decisions") == 800
    assert server.calls["echo"] == 800
    answers = engine.database.db.execute("SELECT prompt_preview, answer FROM requests").fetchall()
    assert all(answer == f"echo: {prompt}" for prompt, answer in answers)


def test_separate_engines_on_one_home(make_engine, server, home: Path) -> None:
    make_engine(ECHO)  # registers the fake model in this home
    engines = [Engine(Settings.from_env(home, retry_backoff_s=0.01)) for _ in range(4)]

    def worker(k: int) -> None:
        for i in range(50):
            engines[k].ask(f"engine {k} request {i}", models=["fake-echo"], use_cache=False)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, range(4)))

    check = Engine(Settings.from_env(home))
    assert _status_counts(check) == {"ok": 200}
    assert check.monitor.count("model_calls") == 200
    assert check.monitor.count("routing_decisions") == 200
    assert server.calls["echo"] == 200


_WRITER = textwrap.dedent(
    """
    import sys
    from inferscale import Engine, Settings
    from inferscale.types import MemberResult

    worker, n = sys.argv[1], int(sys.argv[2])
    engine = Engine(Settings.from_env())
    for i in range(n):
        rid = f"{worker}-{i}"
        engine.monitor.start_request(rid, f"prompt {rid}", "single", "fixed")
        call = MemberResult(model="fake", answer=None, latency_ms=1.0, error="Timeout: slow")
        engine.monitor.fail_request(rid, "Timeout", [call])
        engine.cache.put(f"L4:{rid}", "L4", {"answer": rid}, 0.0, 1.0)
    """
)


def test_separate_processes_on_one_home(home: Path) -> None:
    Engine(Settings.from_env(home))  # create and migrate before the writers race
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, f"w{k}", "150"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err

    check = Engine(Settings.from_env(home))
    assert _status_counts(check) == {"error": 600}
    assert check.monitor.count("model_calls", "error_class = 'Timeout'") == 600
    assert check.cache.count("L4") == 600


def test_processes_migrating_a_new_home_at_once(home: Path) -> None:
    code = "from inferscale import Engine, Settings; Engine(Settings.from_env())"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ),
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    engine = Engine(Settings.from_env(home))
    names = [r[0] for r in engine.database.db.execute("SELECT name FROM _migrations").fetchall()]
    assert names == [name for name, _ in MIGRATIONS]
    assert len(engine.registry.list()) == len({s.id for s in engine.registry.list()}) > 0


@pytest.mark.parametrize("n", [0, 1, 5])
def test_stats_percentiles_are_observed_values(make_engine, server, n: int) -> None:
    engine = make_engine(ECHO)
    for i in range(n):
        engine.ask(f"stat {i}", models=["fake-echo"])
    stats = engine.monitor.stats()
    assert stats["requests"] == stats["requests_ok"] == n
    if n == 0:
        assert stats["models"] == {}
        assert all(level["hit_rate"] is None for level in stats["cache"].values())
        return
    lat = [r[0] for r in engine.database.db.execute("SELECT latency_ms FROM model_calls").fetchall()]
    m = stats["models"]["fake-echo"]
    assert m["calls"] == n and m["errors"] == 0
    assert m["latency_p50_ms"] in lat and m["latency_p95_ms"] in lat
    assert m["latency_p50_ms"] <= m["latency_p95_ms"] == max(lat)


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 50, 3.0),
        ([float(v) for v in range(1, 21)], 95, 19.0),
        ([float(v) for v in range(1, 101)], 95, 95.0),
        ([7.0], 95, 7.0),
        ([1.0, 2.0, 3.0], 100, 3.0),
        ([1.0, 2.0, 3.0], 0, 1.0),
        ([], 50, None),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], pct: float, expected: float | None) -> None:
    from inferscale.monitor.store import _percentile

    assert _percentile(values, pct) == expected


def test_a_request_that_never_started_cannot_be_ended_and_leaves_no_rows(tmp_path: Path) -> None:
    monitor = Monitor(Database(tmp_path / "state.db"))
    monitor.start_request("started", "a question of my own", "single", "auto", source="cli", tenant="t1")
    call = MemberResult(model="m", answer="", latency_ms=1.0, tokens_in=1, tokens_out=0, cost_usd=0.0,
                        error="APIError: boom", attempt_errors=("APIError",))
    with pytest.raises(LookupError, match="never-started"):
        monitor.fail_request("never-started", "it failed", [call])
    monitor.fail_request("started", "it failed", [call])
    db = monitor._dbh.db
    assert db.execute("SELECT id, status, source, tenant, error FROM requests").fetchall() == [
        ("started", "error", "cli", "t1", "it failed")]
    assert db.execute("SELECT request_id, model, error_class, attempt_errors FROM model_calls").fetchall() == [
        ("started", "m", "APIError", '["APIError"]')]
