"""Every strategy through the real engine and litellm's HTTP path against the fake server.

Fake behaviours used here (tests/support/openai_server.py): const-<w> answers <w>; cycle-a_b_c
answers a, b, c… call after call (`w@ms` answers late); conf-<pct>-<w> answers <w> with token
probability pct%; echo repeats the last user message — as a judge it "scores" a candidate with the
first number of the echoed text, which is the candidate itself when the question has no digits.
"""

from __future__ import annotations

import json

import pytest

from inferscale.orchestration.strategies import describe
from tests.support.fakes import assert_one_line_error, fake_model

Q = "How many moons does the planet have?"  # no digits: an echo judge then scores the answer itself


def _execution_ms(result) -> float:
    return next(s.ms for s in result.steps if s.name == "execution")


def priced(model_id: str, behaviour: str, usd_per_1m: float, **kw) -> dict:
    return fake_model(model_id, behaviour, input_price_per_1m=usd_per_1m, output_price_per_1m=usd_per_1m,
                      **kw)


# -- cascade -------------------------------------------------------------------------------------
def test_cascade_escalates_until_two_samples_agree(make_engine, server) -> None:
    engine = make_engine(priced("cheap", "cycle-7_3", 1), priced("mid", "const-42", 5),
                         priced("top", "const-99", 50))
    result = engine.ask(Q, strategy="cascade", models=["top", "cheap", "mid"], use_cache=False)

    assert result.answer == "42" and result.confidence == 1.0
    d = result.detail
    assert d["kind"] == "cascade" and d["answered_by"] == "mid" and d["answered_tier"] == 2
    assert [(t["model"], t["confidence"], t["escalated"]) for t in d["tiers"]] == [
        ("cheap", 0.0, True), ("mid", 1.0, False)]
    assert server.calls["const-99"] == 0  # the expensive tier was never needed
    tier1_cost = sum(result.members[i].cost_usd for i in d["tiers"][0]["calls"])
    assert d["escalation_cost_usd"] == pytest.approx(tier1_cost) and tier1_cost > 0
    assert [m.role for m in result.members] == ["tier 1", "tier 1 check", "tier 2", "tier 2 check"]


def test_cascade_answers_from_the_cheapest_tier_when_confident(make_engine, server) -> None:
    engine = make_engine(priced("cheap", "const-5", 1), priced("top", "const-99", 50))
    result = engine.ask(Q, strategy="cascade", models=["top", "cheap"], use_cache=False)
    assert result.answer == "5" and result.detail["answered_tier"] == 1
    assert result.detail["escalation_cost_usd"] == 0 and server.calls["const-99"] == 0


def test_cascade_confidence_from_logprobs(make_engine, server) -> None:
    engine = make_engine(priced("unsure", "conf-30-low", 1), priced("sure", "conf-95-high", 9),
                         priced("top", "conf-99-top", 90))
    result = engine.ask(Q, strategy="cascade", models=["unsure", "sure", "top"], use_cache=False,
                        strategy_options={"confidence": "logprobs", "tau": 0.9})
    assert result.answer == "high"
    tiers = result.detail["tiers"]
    assert [t["confidence"] for t in tiers] == [pytest.approx(0.3), pytest.approx(0.95)]
    assert {t["confidence_source"] for t in tiers} == {"logprobs"}
    assert len(result.members) == 2  # log-probabilities come free: no second sample
    assert server.last_request.get("logprobs") is True


def test_cascade_confidence_from_a_judge(make_engine, server) -> None:
    engine = make_engine(priced("cheap", "const-5", 1), priced("top", "const-8", 9),
                         priced("grader", "const-3", 2))
    result = engine.ask(Q, strategy="cascade", models=["cheap", "top"], use_cache=False,
                        strategy_options={"confidence": "judge", "judge_model": "grader"})
    assert result.answer == "8"
    assert result.detail["tiers"][0]["confidence"] == pytest.approx(0.3)
    assert [m.role for m in result.members] == ["tier 1", "tier 1 judge", "tier 2"]


# -- self-consistency ----------------------------------------------------------------------------
def test_self_consistency_votes_and_samples_are_not_collapsed_by_the_cache(make_engine, server) -> None:
    engine = make_engine(fake_model("m", "cycle-42_7_42_42_7"))
    opts = {"n": 5, "early_stop": False}
    result = engine.ask(Q, strategy="self-consistency", models=["m"], strategy_options=opts)

    assert result.answer == "42" and result.confidence == pytest.approx(0.6)
    assert result.detail["votes"] == {"#42": 3, "#7": 2}
    assert server.calls["cycle-42_7_42_42_7"] == 5  # five real samples, not one cached five times
    assert engine.cache.count("L3") == 5
    # Asked again with the L4 result gone, every sample comes back from its own L3 entry.
    engine.database.db.execute("DELETE FROM cache_entries WHERE level = 'L4'")
    again = engine.ask(Q, strategy="self-consistency", models=["m"], strategy_options=opts)
    assert server.calls["cycle-42_7_42_42_7"] == 5
    assert all(m.cached for m in again.members) and len(again.members) == 5
    assert again.detail["votes"] == result.detail["votes"]


def test_self_consistency_stops_early_and_cancels_stragglers(make_engine, server) -> None:
    slow = "cycle-42_42_42_7@3000_7@3000"
    engine = make_engine(fake_model("m", slow))
    result = engine.ask(Q, strategy="self-consistency", models=["m"], use_cache=False,
                        strategy_options={"n": 5})
    assert _execution_ms(result) < 2500  # did not wait for the 3-second stragglers
    assert result.answer == "42" and result.confidence == 1.0
    assert result.detail["early_stop"] == {"stopped": True, "cancelled": 2}
    cancelled = [m for m in result.members if m.error_class == "Cancelled"]
    assert len(cancelled) == 2 and len(result.members) == 5
    rows = engine.database.db.execute(
        "SELECT error_class, COUNT(*) FROM model_calls GROUP BY error_class ORDER BY 1").fetchall()
    assert rows == [(None, 3), ("Cancelled", 2)]  # the stragglers are recorded, as cancelled
    stats = engine.monitor.stats()["models"]["m"]
    assert stats["errors"] == 0 and stats["cancelled"] == 2


def test_self_consistency_falls_back_when_its_model_fails(make_engine, server) -> None:
    engine = make_engine(fake_model("bad", "fail-500"), fake_model("good", "const-9"))
    result = engine.ask(Q, strategy="self-consistency", models=["bad", "good"], use_cache=False,
                        strategy_options={"n": 3})
    assert result.answer == "9" and result.detail["model"] == "good"
    assert [m.model for m in result.members].count("bad") == 3


# -- best-of-n -----------------------------------------------------------------------------------
def test_best_of_n_judge_picks_the_best_candidate(make_engine, server) -> None:
    engine = make_engine(fake_model("three", "const-3"), fake_model("eight", "const-8"),
                         fake_model("judge", "echo", quality_prior=0.99))
    result = engine.ask(Q, strategy="best-of-n", models=["three", "eight"], use_cache=False,
                        strategy_options={"n": 4, "judge_model": "judge"})
    assert result.answer == "8" and result.confidence == pytest.approx(0.8)
    d = result.detail
    assert d["judge"] == "judge" and d["scorer"] == "judge"
    assert sorted(c["score"] for c in d["candidates"]) == pytest.approx([0.3, 0.3, 0.8, 0.8])
    best = d["candidates"][d["best"]]
    assert best["model"] == "eight" and result.members[best["judge_call"]].model == "judge"
    assert server.calls["echo"] == 4


def test_best_of_n_stops_once_a_candidate_is_perfect(make_engine, server) -> None:
    engine = make_engine(fake_model("m", "cycle-10_3@3000_3@3000"), fake_model("judge", "echo"))
    result = engine.ask(Q, strategy="best-of-n", models=["m"], use_cache=False,
                        strategy_options={"n": 3, "judge_model": "judge"})
    assert _execution_ms(result) < 2500
    assert result.answer == "10" and result.confidence == 1.0
    assert result.detail["early_stop"] == {"stopped": True, "cancelled": 2}


def test_best_of_n_with_the_exact_answer_verifier(make_engine, server) -> None:
    engine = make_engine(fake_model("m", "cycle-41_42_43"))
    result = engine.ask(Q, strategy="best-of-n", models=["m"], use_cache=False,
                        strategy_options={"n": 3, "scorer": "exact", "expected": "42", "early_stop": False})
    assert result.answer == "42" and result.confidence == 1.0
    assert result.detail["judge"] is None and len(result.members) == 3  # no judge calls


# -- mixture-of-agents ---------------------------------------------------------------------------
def test_moa_aggregator_sees_every_proposal(make_engine, server) -> None:
    engine = make_engine(fake_model("p1", "const-alpha"), fake_model("p2", "const-beta"),
                         fake_model("agg", "const-synthesis", quality_prior=0.99))
    result = engine.ask(Q, strategy="moa", models=["p1", "p2"], use_cache=False,
                        strategy_options={"aggregator": "agg"})
    assert result.answer == "synthesis"
    d = result.detail
    assert [[p["model"] for p in layer] for layer in d["layers"]] == [["p1", "p2"]]
    assert d["aggregator"]["model"] == "agg" and not d["consensus_skip"]
    system = server.last_request["messages"][0]["content"]
    assert "1. alpha" in system and "2. beta" in system
    assert server.last_request["messages"][-1]["content"] == Q


def test_moa_layers_and_consensus_skip(make_engine, server) -> None:
    engine = make_engine(fake_model("p1", "const-alpha"), fake_model("p2", "const-beta"),
                         fake_model("agg", "const-synthesis", quality_prior=0.99))
    two = engine.ask(Q, strategy="moa", models=["p1", "p2"], use_cache=False,
                     strategy_options={"layers": 2, "aggregator": "agg"})
    assert [m.role for m in two.members].count("proposer L2") == 2 and len(two.members) == 5
    engine2 = make_engine(fake_model("p1", "const-same"), fake_model("p2", "const-same"),
                          fake_model("agg", "const-synthesis", quality_prior=0.99))
    agreed = engine2.ask(Q + "?", strategy="moa", models=["p1", "p2"], use_cache=False,
                         strategy_options={"layers": 3})
    assert agreed.answer == "same" and agreed.detail["consensus_skip"] is True
    assert agreed.detail["aggregator"] is None and len(agreed.members) == 2


def test_moa_keeps_the_proposals_when_the_aggregator_fails(make_engine, server) -> None:
    engine = make_engine(fake_model("p1", "const-alpha"), fake_model("p2", "fail-500"),
                         fake_model("p3", "const-gamma"), fake_model("agg", "fail-503", quality_prior=0.99))
    result = engine.ask(Q, strategy="moa", models=["p1", "p2", "p3"], use_cache=False,
                        strategy_options={"aggregator": "agg"})
    assert result.answer in ("alpha", "gamma")
    roles = [(m.model, m.role, m.ok) for m in result.members]
    assert ("p2", "proposer L1", False) in roles and ("agg", "aggregator", False) in roles


# -- tree search ---------------------------------------------------------------------------------
def test_tree_search_returns_the_best_node_and_the_tree(make_engine, server) -> None:
    engine = make_engine(fake_model("a", "const-3"), fake_model("b", "const-8"), fake_model("judge", "echo"))
    result = engine.ask(Q, strategy="tree-search", models=["a", "b"], use_cache=False,
                        strategy_options={"budget": 5, "judge_model": "judge", "early_stop": False})
    d = result.detail
    assert d["algorithm"] == "AB-MCTS-A" and d["actions"] == ["a", "b"]
    nodes = {n["id"]: n for n in d["nodes"]}
    assert len(nodes) == 6 and nodes[-1]["parent"] is None  # root + 5 generated nodes
    assert sorted(child for _, child in d["edges"]) == [0, 1, 2, 3, 4]
    for parent, child in d["edges"]:
        assert nodes[child]["parent"] == parent and nodes[child]["depth"] == nodes[parent]["depth"] + 1
        assert result.members[nodes[child]["call"]].model == nodes[child]["model"]
    scores = [n["score"] for n in nodes.values() if n["id"] >= 0]
    assert result.answer == nodes[d["best"]]["answer"] and nodes[d["best"]]["score"] == max(scores)
    assert result.answer == ("8" if any(n["model"] == "b" for n in nodes.values()) else "3")
    assert len(result.members) == 10 and d["stopped"] == "budget"


def test_tree_search_stops_when_the_verifier_is_satisfied(make_engine, server) -> None:
    engine = make_engine(fake_model("a", "cycle-41_40_42"))
    result = engine.ask(Q, strategy="tree-search", models=["a"], use_cache=False,
                        strategy_options={"budget": 20, "parallel": 1, "scorer": "exact", "expected": "42"})
    assert result.answer == "42" and result.confidence == 1.0
    assert result.detail["stopped"] == "stop_score" and len(result.detail["nodes"]) == 4


def test_tree_search_survives_a_failing_action(make_engine, server) -> None:
    engine = make_engine(fake_model("bad", "fail-500"), fake_model("good", "const-ok"))
    result = engine.ask(Q, strategy="tree-search", models=["bad", "good"], use_cache=False,
                        strategy_options={"budget": 6, "scorer": "exact", "expected": "ok"})
    assert result.answer == "ok"
    failed = [n for n in result.detail["nodes"] if n["error"]]
    assert all(n["model"] == "bad" and n["score"] == 0.0 for n in failed)


# -- budgets, events, cache scope ----------------------------------------------------------------
def test_call_budget_is_enforced(make_engine, server) -> None:
    engine = make_engine(fake_model("m", "const-4"))
    engine.tunables_store.set("call_budget", "3")
    result = engine.ask(Q, strategy="self-consistency", models=["m"], use_cache=False,
                        strategy_options={"n": 6, "early_stop": False})
    assert server.calls["const-4"] == 3 and len(result.members) == 3
    assert result.detail["budget"] == {**result.detail["budget"], "calls": 3, "max_calls": 3, "denied": 3}


def test_dollar_budget_is_enforced(make_engine, server) -> None:
    # 128 answer tokens at $1000 per 1M tokens: each call is predicted at ~$0.13.
    engine = make_engine(priced("pricey", "const-4", 1000))
    engine.tunables_store.set("budget_usd", "0.3")
    result = engine.ask(Q, strategy="best-of-n", models=["pricey"], use_cache=False,
                        strategy_options={"n": 5, "scorer": "exact", "expected": "4", "early_stop": False})
    assert server.calls["const-4"] == 2 and result.cost_usd <= 0.3
    assert result.detail["budget"]["denied"] == 3



def test_live_events_per_member(make_engine, server) -> None:
    engine = make_engine(fake_model("ok", "echo"), fake_model("bad", "fail-500"))
    events = []
    result = engine.ask(Q, strategy="ensemble", models=["ok", "bad"], use_cache=False,
                        on_event=events.append)
    started = {e.call_id: e for e in events if e.kind == "started"}
    assert len(started) == 2 and {e.role for e in started.values()} == {"member"}
    ended = {e.call_id: e.kind for e in events if e.kind in ("finished", "failed")}
    by_model = {started[c].model: k for c, k in ended.items()}
    assert by_model == {"ok": "finished", "bad": "failed"}
    ok_id = next(c for c, e in started.items() if e.model == "ok")
    tokens = [e.text for e in events if e.kind == "token" and e.call_id == ok_id]
    assert "".join(tokens) == result.answer


def test_strategy_options_are_part_of_the_l4_scope(make_engine, server) -> None:
    engine = make_engine(fake_model("m", "const-4"))
    first = engine.ask(Q, strategy="self-consistency", models=["m"], strategy_options={"n": 2})
    assert engine.ask(Q, strategy="self-consistency", models=["m"], strategy_options={"n": 2}).cache
    other = engine.ask(Q, strategy="self-consistency", models=["m"], strategy_options={"n": 3})
    assert other.cache is None and len(other.members) == 3 and first.cache is None


def test_cli_ask_with_strategy_options(cli, make_engine, server) -> None:
    make_engine(fake_model("cheap", "const-5", input_price_per_1m=1, output_price_per_1m=1),
                fake_model("top", "const-6", input_price_per_1m=9, output_price_per_1m=9))
    proc = cli("ask", Q, "--strategy", "cascade", "--models", "cheap,top", "--option", "tau=0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["strategy"] == "cascade" and out["detail"]["tau"] == 0.5 and out["answer"] == "5"
    assert {m["role"] for m in out["members"]} == {"tier 1", "tier 1 check"}
    assert describe(out["detail"]).startswith("cascade: tier 1/2 (cheap) answered")  # the text output
    line = assert_one_line_error(cli("ask", Q, "--strategy", "cascade", "--option", "tau=7"))
    assert "tau" in line
