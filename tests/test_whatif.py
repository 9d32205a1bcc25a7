"""What-if replay: the figures for a proposed change equal a direct re-run of the real cache, with
those tunables, over the same requests in the same order."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from inferscale import Engine
from inferscale.settings import Settings
from tests.support.fakes import LOCAL_IDS, assert_one_line_error, fake_model

MODELS = (fake_model("cheap", "solver-sum", input_price_per_1m=0.1, output_price_per_1m=0.2, quality_prior=0.3),
          fake_model("strong", "solver-sum_rev", input_price_per_1m=5.0, output_price_per_1m=15.0,
                     quality_prior=0.9))
# Repeats, paraphrases of several strengths, near-misses the verifier must reject, unrelated prompts.
TRAFFIC = [
    "How do I change the password on my router?",
    "What is 12 plus 30?",
    "How can I change the password on my router?",
    "How do I change the password on my router?",
    "how do i change the password on my router",
    "What is 12 plus 31?",
    "Which wires go where when fitting a ceiling lamp?",
    "When fitting a ceiling lamp, which wires go where?",
    "I forgot my router password; how do I set a new one?",
    "Spell the word 'lantern' backwards.",
    "Write 'lantern' backwards, letter by letter.",
    "What is 12 plus 30?",
    "What is the boiling point of water at the top of a mountain?",
    "At high altitude, what temperature does water boil at?",
    "Which wires go where when fitting a ceiling lamp?",
    "Spell the word 'lantern' backwards.",
]
CHANGES = (
    ["semantic_threshold=0.6", "semantic_rewrite_threshold=0.5"],
    ["semantic_threshold=0.97", "semantic_floor=0.9", "semantic_rewrite_threshold=0.95"],
    ["semantic_enabled=false"],
)


def engine_at(path: Path, register: Any) -> Engine:
    engine = Engine(Settings.from_env(path, retry_backoff_s=0.01, call_timeout_s=10.0))
    register(engine, *MODELS)
    for m in LOCAL_IDS:
        engine.registry.set_enabled(m, False)
    return engine


def levels(results: list[Any]) -> Counter[str]:
    return Counter(r.cache.level if r.cache else "miss" for r in results)


@pytest.mark.parametrize("change", CHANGES, ids=["looser", "stricter", "no-semantic"])
def test_whatif_equals_a_direct_rerun_of_the_cache(make_engine: Any, register: Any, tmp_path: Path,
                                                   capsys: Any, change: list[str]) -> None:
    from inferscale.cli import main

    engine = make_engine(*MODELS)
    logged = [engine.ask(p) for p in TRAFFIC]
    args = [a for kv in change for a in ("--set", kv)]
    assert main(["whatif", *args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    n = len(TRAFFIC)
    assert out["requests"] == n and set(out) == {"requests", "current", "proposed"}
    keys = {"hit_rate", "hit_rate_by_level", "saved_usd", "cost_usd", "model_share", "quality", "contradicted_hits"}
    assert set(out["current"]) == keys and set(out["proposed"]) == keys
    # The current side replays what really happened.
    got = levels(logged)
    assert round(out["current"]["hit_rate_by_level"]["L1"] * n) == got["L1"]
    assert round(out["current"]["hit_rate_by_level"]["L4"] * n) == got["L4"]
    # The proposed side equals the real cache re-run with the proposed tunables.
    other = engine_at(tmp_path / "rerun", register)
    for kv in change:
        other.tunables_store.set(*kv.split("=", 1))
    rerun = [other.ask(p) for p in TRAFFIC]
    want = levels(rerun)
    assert round(out["proposed"]["hit_rate_by_level"]["L1"] * n) == want["L1"], (out, want)
    assert round(out["proposed"]["hit_rate_by_level"]["L4"] * n) == want["L4"], (out, want)
    assert out["proposed"]["hit_rate"] == pytest.approx((want["L1"] + want["L4"]) / n)
    saved = sum(r.cache.saved_usd for r in rerun if r.cache)
    assert out["proposed"]["saved_usd"] == pytest.approx(saved, rel=1e-6, abs=1e-12)
    # Cost is a prediction for requests the log only has as hits (priced from the entry they hit).
    assert out["proposed"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in rerun), rel=0.25)
    # The stored tunables are untouched: what-if never saves.
    assert engine.tunables().semantic_threshold == 0.85


def test_routing_knobs_change_shares_and_cost_and_hits_contradicting_feedback(make_engine: Any, capsys: Any) -> None:
    from inferscale.cli import main
    from inferscale.monitor.feedback import FeedbackStore

    engine = make_engine(*MODELS)
    first = engine.ask("Spell the word 'lantern' backwards.", router="cheapest")
    assert first.answer == "not sure"
    FeedbackStore(engine.database).add(first.request_id, "bad", answer="nretnal")
    engine.ask("Write 'lantern' backwards, letter by letter.", router="cheapest")
    engine.ask("What is 12 plus 30?")
    assert main(["whatif", "--set", "semantic_rewrite_threshold=0.3", "--set", "default_router=quality",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    cur, prop = out["current"], out["proposed"]
    assert prop["contradicted_hits"] >= 1  # the looser cache serves the answer rated bad
    # Requests logged with the default router follow the proposed one: "quality" sends them to strong.
    assert prop["model_share"].get("strong", 0) > cur["model_share"].get("strong", 0)
    assert cur["quality"]["from_labels"] >= 1


def test_whatif_bad_input(make_engine: Any, cli: Any) -> None:
    engine = make_engine(*MODELS)
    assert "request log is empty" in assert_one_line_error(cli("whatif", "--set", "semantic_threshold=0.7"))
    engine.ask("What is 2 plus 2?")
    assert "unknown setting 'nope'" in assert_one_line_error(cli("whatif", "--set", "nope=1"))
    assert "semantic_threshold" in assert_one_line_error(cli("whatif", "--set", "semantic_threshold=nan"))
    assert "KEY=VALUE" in assert_one_line_error(cli("whatif", "--set", "semantic_threshold"))
    assert "default_router" in assert_one_line_error(cli("whatif", "--set", "default_router=psychic"))
    assert "--since" in assert_one_line_error(cli("whatif", "--since", "last tuesday"))
    assert "empty since" in assert_one_line_error(cli("whatif", "--since", "2999-01-01"))
    ok = cli("whatif", "--set", "semantic_threshold=0.7")
    assert ok.returncode == 0 and "with your change" in ok.stdout, ok.stderr
