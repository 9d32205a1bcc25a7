"""The bookkeeping written behind the answer: `Engine.aask` returns before its cache entries and
monitor rows are written, and nothing a later request or reader relies on is lost or reordered."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

import numpy as np
import pytest

from inferscale import embeddings
from inferscale.background import NICE, WriteBehind
from inferscale.cache import levels
from inferscale.embeddings import Embedder, run_in_background
from inferscale.orchestration.runner import run_sync
from tests.support.fakes import fake_model


def test_writes_run_in_order_and_flush_waits_for_all_of_them() -> None:
    w = WriteBehind()
    seen: list[int] = []
    for i in range(200):
        w.submit(lambda i=i: (time.sleep(0.0005), seen.append(i)))
    assert w.flush(timeout=30)
    assert seen == list(range(200)) and w.pending == 0
    w.close()
    w.submit(seen.append, -1)  # after close a write runs at once, in the caller
    assert seen[-1] == -1


def test_a_failing_write_is_logged_and_the_next_ones_still_run(caplog) -> None:
    w = WriteBehind()
    done: list[str] = []
    with caplog.at_level(logging.WARNING, logger="inferscale.background"):
        w.submit(lambda: 1 / 0)
        w.submit(done.append, "after")
        assert w.flush(timeout=10)
    assert done == ["after"] and w.failures == 1
    assert "ZeroDivisionError" in caplog.text
    w.close()


def test_flush_times_out_instead_of_hanging_behind_a_stuck_write() -> None:
    w = WriteBehind()
    gate = threading.Event()
    w.submit(gate.wait)
    assert w.flush(timeout=0.2) is False and w.pending == 1
    gate.set()
    assert w.flush(timeout=10) and w.pending == 0
    w.close()


def test_the_writer_runs_at_a_lower_priority_and_starts_with_its_hook() -> None:
    seen: list[tuple[int, str]] = []
    w = WriteBehind(on_start=lambda: seen.append((-1, "started")))
    w.submit(lambda: seen.append((os.getpriority(os.PRIO_PROCESS, 0), threading.current_thread().name)))
    assert w.flush(timeout=10)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert seen[0] == (-1, "started")
    assert seen[1] == (min(19, mine + NICE), "inferscale-writes")
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine  # the caller's own priority is untouched
    w.close()


def test_on_an_event_loop_submit_never_waits_and_a_new_request_waits_for_room_instead(
        make_engine, server) -> None:
    w = WriteBehind(max_pending=2)
    gate = threading.Event()
    w.submit(gate.wait, 30)
    w.submit(lambda: None)

    async def on_loop() -> int:
        for _ in range(3):
            w.submit(lambda: None)  # would wait 30 s for room off the loop
        return w.pending

    assert run_sync(on_loop()) == 5 and not w.has_room
    assert not w.wait_for_room(timeout=0.2)
    gate.set()
    assert w.wait_for_room(timeout=10) and w.flush(timeout=10)
    w.close()

    # The engine: a request whose writes fill the queue still finishes (its writes go past the limit
    # rather than stopping the loop), and the next request waits for room in its worker thread.
    engine = make_engine(fake_model("fake-echo"))
    engine.writer = engine.levels.writer = WriteBehind(max_pending=2)
    hold = threading.Event()
    engine.writer.submit(hold.wait, 30)  # held for 30 s unless set: a stopped loop would wait that long

    async def two() -> tuple[float, bool, str, str]:
        t0 = time.perf_counter()
        first = await engine.aask("what do moths navigate by?", models=["fake-echo"])
        took = time.perf_counter() - t0
        second = asyncio.create_task(engine.aask("why is the sea salty?", models=["fake-echo"]))
        await asyncio.sleep(0.3)  # the loop runs on while the second waits for room
        waited = not second.done()
        hold.set()
        return took, waited, first.answer, (await second).answer

    try:
        took, waited, first, second = run_sync(two())
    finally:
        hold.set()
    assert took < 10 and waited
    assert (first, second) == ("echo: what do moths navigate by?", "echo: why is the sea salty?")
    assert engine.flush(timeout=30)


def test_submit_waits_once_the_writer_is_too_far_behind() -> None:
    w = WriteBehind(max_pending=2)
    gate = threading.Event()
    w.submit(gate.wait, 30)
    w.submit(lambda: None)
    third = threading.Thread(target=w.submit, args=(lambda: None,))
    third.start()
    third.join(0.3)
    assert third.is_alive() and w.pending == 2  # backpressure: the third waits for room
    gate.set()
    third.join(10)
    assert not third.is_alive() and w.flush(timeout=10) and w.pending == 0
    w.close()


def test_background_exact_vectors_are_bit_identical_to_a_requests_own() -> None:
    """The writer embeds queued L1 stores in one batch on a one-thread session: the vectors it
    stores must be exactly those a request would compute one at a time (decisions compare them)."""
    texts = ["Why do onions make people cry?", "ok", "Which tools does a beginner need to start "
             "woodworking at home, and what should I spend the money on first? " * 3,
             "How long should fresh pasta dry before cooking?", "Name a river in Peru."]
    one_by_one = np.stack([Embedder().embed([t])[0] for t in texts])
    got: list[np.ndarray] = []

    def in_writer() -> None:
        run_in_background()
        got.append(Embedder().embed(texts))

    t = threading.Thread(target=in_writer)
    t.start()
    t.join(60)
    assert np.array_equal(got[0], one_by_one)
    assert ("onnx-int8:1" in embeddings._models) and ("onnx-int8" in embeddings._models)


def _hold(engine) -> threading.Event:
    """Block the engine's writers (the monitor's and exact levels', and L1's) until the returned
    event is set."""
    gate = threading.Event()
    engine.writer.submit(gate.wait, 30)
    engine.levels.l1_writer.submit(gate.wait, 30)
    return gate


def _spy_adds(engine) -> list[int]:
    """The size of every Chroma upsert the L1 writer makes (the real one still runs)."""
    index = engine.levels.semantic.index
    adds: list[int] = []
    real_add = index.add
    index.add = lambda ids, vectors, scopes: (adds.append(len(ids)), real_add(ids, vectors, scopes))[1]
    return adds


def _stays(cond, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not cond():
            return False
        time.sleep(0.05)
    return True


def _count(engine, sql: str) -> int:
    return engine.database.db.execute(sql).fetchone()[0]


def test_aask_answers_before_its_rows_are_written_and_they_appear_after(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"))
    gate = _hold(engine)
    result = run_sync(engine.aask("which birds migrate furthest?", models=["fake-echo"]))
    assert result.answer == "echo: which birds migrate furthest?"
    assert engine.writer.pending > 1
    # Its start is on record at once (a crash leaves it "running", then interrupted); its end is not yet.
    assert engine.database.db.execute("SELECT status FROM requests WHERE id = ?",
                                      [result.request_id]).fetchone() == ("running",)
    assert _count(engine, "SELECT COUNT(*) FROM model_calls") == 0
    gate.set()
    assert engine.flush(timeout=30)
    row = engine.database.db.execute("SELECT status, answer FROM requests WHERE id = ?",
                                     [result.request_id]).fetchone()
    assert row == ("ok", result.answer)
    assert _count(engine, "SELECT COUNT(*) FROM model_calls") == 1
    assert _count(engine, "SELECT COUNT(*) FROM cache_entries WHERE level = 'L4'") == 1


def test_a_repeat_is_an_exact_hit_while_the_first_answer_is_still_queued(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"))
    gate = _hold(engine)
    first = run_sync(engine.aask("how are pearls formed?", models=["fake-echo"]))
    again = run_sync(engine.aask("how are pearls formed?", models=["fake-echo"]))
    assert first.cache is None and again.cache is not None and again.cache.level == "L4"
    assert again.answer == first.answer and server.calls["echo"] == 1
    gate.set()
    assert engine.flush(timeout=30)
    # The hit is counted once the entry is written (the writer keeps the order).
    assert _count(engine, "SELECT hits FROM cache_entries WHERE level = 'L4'") == 1
    statuses = engine.database.db.execute("SELECT status FROM requests").fetchall()
    assert statuses == [("ok",), ("ok",)]


def test_a_reworded_question_waits_for_the_queued_semantic_entry_of_its_scope(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"))
    gate = _hold(engine)
    run_sync(engine.aask("how do glaciers carve valleys?", models=["fake-echo"]))
    threading.Timer(0.5, gate.set).start()  # the lookup must wait for it, not miss
    t0 = time.perf_counter()
    reworded = run_sync(engine.aask("How do glaciers carve valleys", models=["fake-echo"]))
    assert time.perf_counter() - t0 >= 0.4
    assert reworded.cache is not None and reworded.cache.level == "L1"
    assert server.calls["echo"] == 1


def test_a_question_no_queued_entry_could_answer_does_not_wait_for_the_writer(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"))
    gate = _hold(engine)  # held for 30 s unless set: a lookup that waited would take that long
    try:
        run_sync(engine.aask("how do glaciers carve valleys?", models=["fake-echo"]))
        t0 = time.perf_counter()
        other = run_sync(engine.aask("what keeps a bicycle upright when it moves?", models=["fake-echo"]))
        assert time.perf_counter() - t0 < 10
        assert other.cache is None and server.calls["echo"] == 2
        assert engine.writer.pending > 1  # both answers' entries are still queued
    finally:
        gate.set()
    assert engine.flush(timeout=30)
    again = run_sync(engine.aask("How do glaciers carve valleys", models=["fake-echo"]))
    assert again.cache is not None and again.cache.level == "L1" and server.calls["echo"] == 2


def test_queued_semantic_entries_are_stored_in_one_batch_and_each_is_found(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"), l1_scan_max=0)  # every scope in Chroma
    index = engine.levels.semantic.index
    adds = _spy_adds(engine)
    gate = _hold(engine)
    questions = ["which metals conduct heat best?", "how do bees find their way home?",
                 "what makes sourdough rise without yeast?"]
    for q in questions:
        run_sync(engine.aask(q, models=["fake-echo"]))
    gate.set()
    assert engine.flush(timeout=60)
    assert adds == [3]  # one upsert for the three queued stores; their own jobs found nothing left
    assert len(index.ids()) == 3 and not engine.levels._pending_l1
    for q in questions:
        again = run_sync(engine.aask(q.capitalize().rstrip("?"), models=["fake-echo"]))
        assert again.cache is not None and again.cache.level == "L1", q
    assert server.calls["echo"] == 3


def test_the_l1_writer_lets_a_batch_fill_but_a_lookup_that_needs_it_does_not_wait(
        make_engine, server, monkeypatch) -> None:
    monkeypatch.setattr(levels, "L1_LINGER_S", 30.0)  # only a full batch or a waiting caller ends it
    engine = make_engine(fake_model("fake-echo"), l1_scan_max=0)  # every scope in Chroma
    adds = _spy_adds(engine)
    questions = ["why does bread go stale?", "how do tides follow the moon?", "what do otters eat?"]
    for q in questions:
        run_sync(engine.aask(q, models=["fake-echo"]))
    assert _stays(lambda: not adds and engine.levels.l1_writer.pending > 0, 1.0)  # lingering
    t0 = time.perf_counter()
    again = run_sync(engine.aask("How do tides follow the moon", models=["fake-echo"]))
    assert time.perf_counter() - t0 < 10  # the lookup that could match made the writer go
    assert again.cache is not None and again.cache.level == "L1" and server.calls["echo"] == 3
    assert adds == [3]  # the three queued stores in one upsert


def test_a_full_l1_batch_is_written_at_once_and_flush_does_not_wait_for_the_linger(
        make_engine, server, monkeypatch) -> None:
    monkeypatch.setattr(levels, "L1_LINGER_S", 30.0)
    monkeypatch.setattr(levels, "L1_BATCH", 4)
    engine = make_engine(fake_model("fake-echo"), l1_scan_max=0)  # every scope in Chroma
    adds = _spy_adds(engine)
    for q in ["which fish live longest?", "why is the sea salty?", "how do kites stay up?",
              "what makes thunder rumble?"]:
        run_sync(engine.aask(q, models=["fake-echo"]))
    assert not _stays(lambda: not adds, 10.0) and adds == [4]  # written without anyone waiting
    run_sync(engine.aask("how do snails grow their shells?", models=["fake-echo"]))
    t0 = time.perf_counter()
    assert engine.flush(timeout=20) and time.perf_counter() - t0 < 10
    assert adds == [4, 1] and len(engine.levels.semantic.index.ids()) == 5


def test_semantic_stores_do_not_queue_behind_the_monitors_rows(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"), l1_scan_max=0)  # every scope in Chroma
    gate = threading.Event()
    engine.writer.submit(gate.wait, 30)  # the monitor's and exact levels' writer only
    try:
        run_sync(engine.aask("why do owls turn their heads so far?", models=["fake-echo"]))
        assert engine.levels.flush(timeout=30)
        assert len(engine.levels.semantic.index.ids()) == 1  # stored while the other writer is held
        assert engine.writer.pending > 1
    finally:
        gate.set()
    assert engine.flush(timeout=30)
    again = run_sync(engine.aask("Why do owls turn their heads so far", models=["fake-echo"]))
    assert again.cache is not None and again.cache.level == "L1" and server.calls["echo"] == 1


def test_the_sync_ask_returns_with_everything_written(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"))
    r = engine.ask("what makes a rainbow curved?", models=["fake-echo"])
    assert engine.writer.pending == 0 and engine.levels.l1_writer.pending == 0
    assert _count(engine, f"SELECT COUNT(*) FROM requests WHERE id = '{r.request_id}' AND status = 'ok'") == 1


def test_a_failed_request_is_recorded_after_its_start(make_engine, server) -> None:
    from inferscale.errors import AllModelsFailedError

    engine = make_engine(fake_model("fake-500", "fail-500"))
    with pytest.raises(AllModelsFailedError):
        engine.ask("will this fail?", models=["fake-500"])
    row = engine.database.db.execute("SELECT status, error FROM requests").fetchone()
    assert row[0] == "error" and "fake-500" in row[1]


def test_a_gateway_charge_counts_for_the_budget_before_it_is_written(home) -> None:
    from inferscale.db import Database
    from inferscale.gateway.keys import KeyStore

    store = KeyStore(Database(home / "keys.db"))
    key, secret = store.create("team-a", budget_usd=0.01)
    w = WriteBehind()
    gate = threading.Event()
    w.submit(gate.wait, 30)
    store.charge_later(w, key.id, 0.008)
    store.charge_later(w, key.id, 0.004)
    seen = store.verify(secret)
    assert seen is not None and seen.requests == 2 and seen.spent_usd == pytest.approx(0.012)
    assert seen.over_budget  # refused now, though nothing is written yet
    assert store.get(key.id).spent_usd == 0.0
    gate.set()
    assert w.flush(timeout=10)
    written, seen = store.get(key.id), store.verify(secret)
    assert written.requests == 2 and written.spent_usd == pytest.approx(0.012)
    assert seen == written  # counted once: the pending amount is gone once written
    w.close()


def test_a_request_cancelled_before_its_model_call_is_not_left_running(make_engine, server) -> None:
    import asyncio

    engine = make_engine(fake_model("fake-echo"))
    gate = _hold(engine)
    first = run_sync(engine.aask("how do glaciers carve valleys?", models=["fake-echo"]))

    async def cancel_while_looking_up() -> None:
        # A rewording waits in its worker thread for the first answer's queued L1 entry (held).
        task = asyncio.create_task(engine.aask("How do glaciers carve valleys", models=["fake-echo"]))
        deadline = time.monotonic() + 30
        while _count(engine, "SELECT COUNT(*) FROM requests") < 2:  # its start is on record
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_sync(cancel_while_looking_up())
    gate.set()  # the worker goes on after its caller has gone, and must end the request itself
    deadline = time.monotonic() + 30
    while (row := engine.database.db.execute("SELECT status, error FROM requests WHERE id != ?",
                                             [first.request_id]).fetchone()) == ("running", None):
        assert time.monotonic() < deadline
        engine.flush(timeout=1)
        time.sleep(0.02)
    assert row == ("error", "CancelledError:")
    assert server.calls["echo"] == 1
