"""Honest errors and state: the total time a timeout waited, answers capped and flagged, requests of
a dead process marked interrupted, one kept copy of a broken Chroma, a verified fast graph."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from inferscale.errors import AllModelsFailedError
from inferscale.limits import answer_char_cap
from inferscale.settings import Settings
from tests.support.fakes import fake_model


def test_timeout_message_states_the_total_waited(make_engine: Any) -> None:
    engine = make_engine(fake_model("hung", "hang"), call_timeout_s=0.4, max_attempts=2)
    t0 = time.perf_counter()
    with pytest.raises(AllModelsFailedError) as err:
        engine.ask("are you there?", models=["hung"])
    waited = time.perf_counter() - t0
    msg = str(err.value)
    assert "0.4 s per attempt, 2 attempt(s)" in msg and "s waited in all" in msg, msg
    assert waited >= 0.8


def test_default_timeouts_suit_a_small_machine() -> None:
    s = Settings.from_env()
    assert s.call_timeout_s == 60.0 and s.local_timeout_s == 180.0
    assert s.call_timeout_s * s.max_attempts <= 120  # a stuck remote model costs at most 2 min


def test_a_huge_answer_is_cut_and_flagged(make_engine: Any, cli: Any) -> None:
    engine = make_engine(fake_model("huge", "huge-5000000"), fake_model("huge-live", "huge-400000"))
    result = engine.ask("say a lot", models=["huge"])
    cap = answer_char_cap(engine.tunables().max_tokens)
    member = result.members[0]
    assert member.truncated and len(member.answer) == cap and len(result.answer) <= cap
    # Stored capped: no cache row (L1, L3, L4) holds the 5 MB.
    db = engine.database.db
    assert db.execute("SELECT MAX(bytes) FROM cache_entries").fetchone()[0] < 10 * cap
    assert db.execute("SELECT MAX(LENGTH(answer)) FROM requests").fetchone()[0] <= cap
    streamed = engine.ask("say a lot, live", models=["huge-live"], on_event=lambda e: None, use_cache=False)
    assert streamed.members[0].truncated and len(streamed.members[0].answer) <= cap
    proc = cli("ask", "say a lot", "--models", "huge", "--json")
    out = json.loads(proc.stdout)
    assert out["members"][0]["truncated"] is True  # from the L4 cache, the flag kept
    normal = make_engine(fake_model("echo", "echo")).ask("short", models=["echo"])
    assert normal.members[0].truncated is False


def test_requests_of_a_dead_process_are_marked_interrupted(make_engine: Any) -> None:
    engine = make_engine(fake_model("echo", "echo"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    engine.monitor.start_request("mine", "still running here", "single", "fixed")
    engine.monitor.start_request("theirs", "was running when it died", "single", "fixed")
    engine.monitor.start_request("reused", "pid reused by a later process", "single", "fixed")
    with engine.database.tx() as db:
        db.execute("UPDATE requests SET owner_pid = ? WHERE id = 'theirs'", [dead_pid])
        db.execute("UPDATE requests SET owner_pid = 1, owner_start = '0' WHERE id = 'reused'")
    fresh = make_engine()  # the next start
    statuses = dict(fresh.database.db.execute("SELECT id, status FROM requests").fetchall())
    assert statuses == {"mine": "running", "theirs": "interrupted", "reused": "interrupted"}
    stats = fresh.monitor.stats()
    assert stats["requests_interrupted"] == 2 and stats["requests_running"] == 1
    err = fresh.database.db.execute("SELECT error FROM requests WHERE id = 'theirs'").fetchone()[0]
    assert f"process {dead_pid} ended" in err


def test_overview_shows_interrupted_requests(make_engine: Any) -> None:
    from tests.support.dashboard import app_test, no_exception

    engine = make_engine()
    engine.monitor.start_request("gone", "lost in a crash", "single", "fixed")
    with engine.database.tx() as db:
        db.execute("UPDATE requests SET status = 'interrupted' WHERE id = 'gone'")
    at = app_test("overview")
    no_exception(at)
    assert {m.label: m.value for m in at.metric}["Interrupted"] == "1"


def test_repeated_chroma_repairs_keep_only_the_last_broken_copy(home: Path) -> None:
    from inferscale.cache.chroma_index import ChromaIndex

    chroma = home / "chroma"
    for n in range(3):
        chroma.mkdir(parents=True, exist_ok=True)
        (chroma / "chroma.sqlite3").write_bytes(b"not a database, take %d" % n)
        index = ChromaIndex(chroma)
        index.count()  # opening finds it broken and rebuilds
        assert index.rebuilt
        del index
        # Break the fresh one too, for the next round.
        for f in chroma.rglob("*"):
            if f.is_file():
                f.write_bytes(b"broken again")
        time.sleep(0.01)
    broken = sorted(p.name for p in home.iterdir() if p.name.startswith("chroma.broken-"))
    assert len(broken) == 1


def test_setup_verifies_the_fast_graph_and_rebuilds_a_corrupt_one(tmp_path: Path) -> None:
    from inferscale.embeddings import FAST_MODEL_FILE, verify_fast_model

    models = tmp_path / "models"
    graph, state = verify_fast_model(models)
    assert state == "built" and (models / (FAST_MODEL_FILE + ".sha256")).exists()
    good = graph.read_bytes()
    assert verify_fast_model(models)[1] == "checksum ok"
    graph.write_bytes(good[: len(good) // 2])  # a torn copy
    graph2, state = verify_fast_model(models)
    assert state == "corrupt, rebuilt" and graph2.read_bytes() == good
    # A graph from before checksums existed: kept if it loads, and its checksum stored.
    (models / (FAST_MODEL_FILE + ".sha256")).unlink()
    assert verify_fast_model(models)[1] == "loads; checksum stored"
