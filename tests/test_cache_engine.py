"""The four cache levels inside the engine (fake OpenAI-compatible server, real Chroma and MiniLM):
lookup order, what a semantic hit shows, scoping, stats per level, eviction, restart, cache-eval."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from inferscale.cache.evaluate import Pair, load_pairs, score, score_faithful
from inferscale.cache.verify import VerifyConfig
from inferscale.embeddings import Embedder
from inferscale.errors import ConfigError, InferscaleError
from inferscale.settings import Tunables
from tests.support.fakes import fake_model

ECHO = fake_model("fake-echo", "echo", input_price_per_1m=3.0, output_price_per_1m=7.0)


def test_l4_then_l1_semantic_hit_shows_what_it_matched(make_engine, server) -> None:
    engine = make_engine(ECHO)
    first = engine.ask("How do I reset my library PIN?", models=["fake-echo"])
    assert first.cache is None
    calls = server.calls["echo"]
    approx = "SELECT approx FROM semantic_index"
    # stored with the fast vectors its lookup had: no exact pass until a lookup needs one
    assert [r[0] for r in engine.database.db.execute(approx)] == [1]

    exact = engine.ask("How do I reset my library PIN?", models=["fake-echo"])
    assert exact.cache.level == "L4"  # exact is checked first

    sem = engine.ask("how can I reset my library PIN", models=["fake-echo"])
    assert server.calls["echo"] == calls  # nothing recomputed
    out = sem.to_json()["cache"]
    assert out["level"] == "L1"
    assert out["matched_prompt"] == "How do I reset my library PIN?"
    assert 0.85 <= out["similarity"] <= 1.0
    assert out["original_request_id"] == first.request_id
    assert "verification" in out and sem.answer == first.answer
    assert any(s.name == "cache" and "L1 hit" in s.note for s in sem.steps)
    assert [r[0] for r in engine.database.db.execute(approx)] == [0]  # the hit computed and kept them


def test_traps_and_other_scopes_are_computed_not_served(make_engine, server) -> None:
    engine = make_engine(ECHO)
    engine.ask("Trace parcel 70512", models=["fake-echo"])
    trap = engine.ask("Trace parcel 70521", models=["fake-echo"])
    assert trap.cache is None and trap.answer == "echo: Trace parcel 70521"
    engine.ask("Is the dental surgery open on Saturdays?", models=["fake-echo"])
    assert engine.ask("Is the dental surgery closed on Saturdays?", models=["fake-echo"]).cache is None
    # another system prompt or conversation is another scope
    assert engine.ask("Is the dental surgery open on Saturdays?", system="Answer in French.",
                      models=["fake-echo"]).cache is None
    hist = [{"role": "user", "content": "I use the Hexham dental surgery."},
            {"role": "assistant", "content": "Noted: Camden."}]
    assert engine.ask("Is the dental surgery open on Saturdays?", history=hist, models=["fake-echo"]).cache is None


def test_stats_report_every_level(make_engine, server) -> None:
    engine = make_engine(ECHO)
    engine.ask("What is the capital of France?", models=["fake-echo"])
    engine.ask("What is the capital of France?", models=["fake-echo"])
    engine.ask("what's the capital of France", models=["fake-echo"])
    stats = engine.monitor.stats()["cache"]
    assert set(stats) == {"L1", "L2", "L3", "L4"}
    for level in stats.values():
        assert {"hits", "misses", "hit_rate", "saved_usd", "saved_ms", "evictions", "entries",
                "bytes"} <= set(level)
    assert stats["L4"]["hits"] == 1 and stats["L1"]["hits"] == 1 and stats["L2"]["hits"] >= 1
    assert stats["L1"]["saved_usd"] > 0 and stats["L1"]["entries"] == 1


def test_capacity_from_tunables_evicts_and_records(make_engine, server) -> None:
    engine = make_engine(ECHO, l1_scan_max=0)  # every scope in Chroma
    engine.tunables_store.set("cache_l4_max_entries", "2")
    engine.tunables_store.set("cache_l1_max_entries", "2")
    for i in range(4):
        engine.ask(f"Tell me fact number {i} about octopuses.", models=["fake-echo"])
    stats = engine.monitor.stats()["cache"]
    assert stats["L4"]["entries"] == 2 and stats["L4"]["evictions"] == 2
    assert stats["L1"]["entries"] == 2 and stats["L1"]["evictions"] == 2
    assert engine.levels.semantic.index.count() == 2  # vectors went with their rows


def test_restart_keeps_every_level(make_engine, server, home: Path) -> None:
    engine = make_engine(ECHO)
    engine.ask("Why is the sky blue?", models=["fake-echo"])
    engine.database.close()
    from inferscale import Engine
    from inferscale.settings import Settings

    again = Engine(Settings.from_env(home))
    counts = {lvl: again.cache.count(lvl) for lvl in ("L1", "L2", "L3", "L4")}
    assert all(n >= 1 for n in counts.values()), counts
    assert again.ask("why is the sky blue", models=["fake-echo"]).cache.level == "L1"


def test_tunables_validate_cache_fields() -> None:
    t = Tunables()
    assert t.semantic_threshold == 0.85
    for key, raw in (("semantic_threshold", "nan"), ("semantic_threshold", "1.2"),
                     ("semantic_floor", "0.95"), ("cache_l1_max_entries", "0"),
                     ("cache_l3_max_mb", "-1"), ("cache_l4_ttl_s", "inf")):
        with pytest.raises(ConfigError):
            t.with_value(key, raw)
    assert t.with_value("semantic_threshold", "0.9").semantic_threshold == 0.9


def _pairs_file(tmp_path: Path) -> Path:
    rows = [
        {"a": "How do I reset my library PIN?", "b": "How can I reset my library PIN?", "same": True},
        {"a": "Trace parcel 70512", "b": "Trace parcel 70521", "same": False},
        {"a": "Is the dental surgery open on Saturdays?", "b": "Is the dental surgery closed on Saturdays?",
         "same": False},
        {"a": "Where can I see my past payslips?", "b": "so where can i see my past payslips", "same": True},
        {"a": "cancel it", "b": "cancel it", "same": False,
         "a_messages": [{"role": "user", "content": "My PulseFit gym membership is too dear."},
                        {"role": "assistant", "content": "PulseFit Off-Peak is £24.99. Cancel it?"},
                        {"role": "user", "content": "cancel it"}],
         "b_messages": [{"role": "user", "content": "I never watch Flixora."},
                        {"role": "assistant", "content": "Flixora Standard is £10.99. Cancel it?"},
                        {"role": "user", "content": "cancel it"}]},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_cache_eval_cli(cli, tmp_path: Path) -> None:
    proc = cli("cache-eval", "--pairs", str(_pairs_file(tmp_path)), "--json", "--sweep")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["counts"] == {"true_hits": 2, "false_hits": 0, "missed": 0, "correct_misses": 3}
    assert out["precision"] == 1.0 and out["recall"] == 1.0 and out["false_hit_rate"] == 0.0
    assert [r["threshold"] for r in out["sweep"]][0] == 0.5
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x", "b": "y"}\n')
    proc = cli("cache-eval", "--pairs", str(bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "line 1" in proc.stderr
    proc = cli("cache-eval", "--pairs", str(tmp_path / "pairs.jsonl"), "--threshold", "1.5")
    assert proc.returncode == 2 and proc.stderr.startswith("error: --threshold")


def test_fast_path_matches_a_real_cache_per_pair(tmp_path: Path) -> None:
    pairs = load_pairs(_pairs_file(tmp_path)) + [
        Pair([{"role": "user", "content": "Who painted The Hay Wain?"}],
             [{"role": "user", "content": "Who's the painter of The Hay Wain?"}], True),
    ]
    embedder, cfg = Embedder(), VerifyConfig()
    fast = [o.served for o in score(pairs, cfg, embedder)]
    real = [o.served for o in score_faithful(pairs, cfg, embedder)]
    assert fast == real


def test_load_pairs_errors(tmp_path: Path) -> None:
    with pytest.raises(InferscaleError, match="no such file"):
        load_pairs(tmp_path / "missing.jsonl")
    with pytest.raises(InferscaleError, match="is a directory"):  # not "not found"
        load_pairs(tmp_path)
    p = tmp_path / "x.jsonl"
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(InferscaleError, match="UTF-8"):
        load_pairs(p)


def test_cache_hit_is_served_while_the_default_executor_is_busy(make_engine, server) -> None:
    """Local generations and litellm's own hops occupy the loop's default executor for seconds;
    the engine's lookups run on threads of their own, so a hit does not queue behind them."""
    engine = make_engine(ECHO)
    first = engine.ask("Which platform does the night ferry to the island leave from?", models=["fake-echo"])
    release = threading.Event()

    async def main() -> tuple[object, bool]:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=2))
        tasks = [asyncio.ensure_future(asyncio.to_thread(release.wait, 60)) for _ in range(2)]  # all busy
        await asyncio.sleep(0.05)
        try:
            hit = await asyncio.wait_for(engine.aask(
                "Which platform does the night ferry to the island leave from?", models=["fake-echo"]), 30)
            return hit, not release.is_set()
        finally:
            release.set()
            await asyncio.gather(*tasks)

    hit, while_busy = asyncio.run(main())
    assert while_busy and hit.cache is not None and hit.cache.level == "L4"
    assert hit.answer == first.answer
    engine.flush(30)
