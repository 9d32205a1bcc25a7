"""Load under faults: 1,000 batch requests across 3 fake models that fail 40% of the time (20% 5xx,
10% 429 with Retry-After, 5% hangs past the timeout, 5% malformed bodies), and 100 requests in
flight at once. Every request must be answered and every failure recorded, with exact row counts."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

from inferscale.batch import BatchItem, run_batch_sync
from inferscale.orchestration.runner import run_sync
from tests.support.fakes import fake_model

CHAOS = [fake_model(f"chaos-{x}", f"chaos-{x}") for x in "abc"]
# Short timeouts and backoff keep the run quick; 4 attempts per model and 3 models make an
# unanswered request astronomically unlikely (and the draws are seeded, so the run is reproducible).
# The timeout leaves room for a loaded 2-core machine: a slow-but-real answer misread as a hang
# would break the exact fault accounting below.
FAST = {"call_timeout_s": 3.0, "retry_backoff_s": 0.01, "max_attempts": 4, "cooldown_s": 2.0}
# What the fake server injected → the error class the client must record for it.
CLASS_OF = {"500": "InternalServerError", "502": "BadGatewayError", "503": "ServiceUnavailableError",
            "429": "RateLimitError", "malformed": "MalformedResponseError", "hang": "Timeout"}


def test_a_thousand_requests_under_the_fault_mix(make_engine, server) -> None:
    engine = make_engine(*CHAOS, **FAST)
    server.hang_s = 6.0  # well past the 3 s timeout
    items = [BatchItem(i + 1, f"r{i}", f"chaos request number {i}: say something") for i in range(1000)]
    outputs: list[dict] = []
    # `single` with fallback: each request goes to its first model, fails over to the next, and
    # cooldowns move traffic off a model that keeps failing — so all three models carry load.
    # The cache is off: this is about the providers, and every prompt is new anyway.
    summary = run_batch_sync(engine, items, strategy="single", models=[c["id"] for c in CHAOS],
                             concurrency=16, use_cache=False, on_result=outputs.append)

    # Every request answered, no exception escaped, one output per request.
    assert summary.requests == summary.answered == 1000 and summary.failed == 0
    assert sorted(o["id"] for o in outputs) == sorted(i.id for i in items)
    assert all(o["answer"] == f"echo: {items[int(o['id'][1:])].prompt}" for o in outputs)

    db = engine.database.db
    assert db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall() == [("ok", 1000)]
    # One model_calls row per member call made (cooldown skips make no call and have no row).
    made = [m for o in outputs for m in o["members"] if not (m["error"] or "").startswith("ModelCoolingDown")]
    assert len(made) == db.execute("SELECT COUNT(*) FROM model_calls").fetchone()[0]
    per_model = dict(db.execute("SELECT model, COUNT(*) FROM model_calls GROUP BY model").fetchall())
    assert set(per_model) == {"chaos-a", "chaos-b", "chaos-c"} and min(per_model.values()) > 0
    # Every HTTP request the server saw is an attempt on record, and every injected fault is a
    # recorded failure of the matching class.
    attempts = db.execute("SELECT SUM(attempts) FROM model_calls").fetchone()[0]
    assert attempts == sum(server.calls.values())
    recorded: Counter[str] = Counter()
    for (errs,) in db.execute("SELECT attempt_errors FROM model_calls WHERE attempt_errors IS NOT NULL"):
        recorded.update(json.loads(errs))
    injected: Counter[str] = Counter()
    for (_, kind), n in server.injected.items():
        if kind != "ok":
            injected[CLASS_OF[kind]] += n
    assert injected["Timeout"] >= 20 and injected["MalformedResponseError"] >= 20
    assert recorded == injected
    # A member whose every attempt failed is a failed row with its final error class.
    failed_rows = db.execute("SELECT COUNT(*) FROM model_calls WHERE error_class IS NOT NULL").fetchone()[0]
    assert failed_rows == sum(1 for m in made if m["error"])
    assert engine.monitor.stats()["cooldowns"]  # the failing models did get cooled down


def test_a_hundred_requests_in_flight_at_once(make_engine, server) -> None:
    engine = make_engine(fake_model("slow", "slow-2000"), call_timeout_s=20)
    deadline = time.monotonic() + 10
    while server.inflight and time.monotonic() < deadline:  # hangs left by an earlier test
        time.sleep(0.05)
    server.reset()

    async def burst() -> list:
        return await asyncio.gather(*(
            engine.aask(f"parallel request {i}", models=["slow"], use_cache=False) for i in range(100)
        ), return_exceptions=True)

    results = run_sync(burst())
    assert not [r for r in results if isinstance(r, BaseException)]
    assert [r.answer for r in results] == [f"echo: parallel request {i}" for i in range(100)]
    assert server.max_inflight == 100
    assert engine.flush(timeout=60)  # `aask` answers before its rows are written
    assert engine.monitor.count("requests", "status = 'ok'") == 100
    assert engine.monitor.count("model_calls", "error_class IS NULL AND attempts = 1") == 100
