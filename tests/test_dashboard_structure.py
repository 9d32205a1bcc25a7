"""AppTest: the Playground's per-strategy structure views (dashboard/structure.py), drawn from real
`AskResult`s that the real engine produced against the fake OpenAI-compatible server."""

from __future__ import annotations

from typing import Any

import pytest

from inferscale.orchestration.strategies import STRATEGIES
from tests.support.dashboard import XSS, all_text, frame, no_exception
from tests.support.fakes import fake_model

PRICES = {"latency_prior_ms": 50}


def _models() -> list[dict[str, Any]]:
    def cheap(**kw: Any) -> dict[str, Any]:
        return {"input_price_per_1m": 0.1, "output_price_per_1m": 0.2, **PRICES, **kw}

    def dear(**kw: Any) -> dict[str, Any]:
        return {"input_price_per_1m": 5.0, "output_price_per_1m": 10.0, **PRICES, **kw}

    return [
        fake_model("fake-echo", "echo", **cheap(quality_prior=0.6)),
        fake_model("fake-const", "const-bonjour", **dear(quality_prior=0.5)),
        fake_model("fake-hola", "const-hola", **dear(quality_prior=0.4)),
        fake_model("fake-votes", "cycle-4_4_5_4_5", **cheap(quality_prior=0.3)),
        fake_model("fake-flip", "cycle-yes_no", **cheap(quality_prior=0.2)),
        fake_model("fake-judge", "cycle-9_3_6_8_2_7_5_4", **dear(quality_prior=0.9)),
    ]


@pytest.fixture
def engine(make_engine: Any) -> Any:
    return make_engine(*_models())


def _script() -> None:
    import streamlit as st

    from dashboard.structure import render_structure

    render_structure(st.session_state["result"])


def show(result: Any) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_script, default_timeout=30)
    at.session_state["result"] = result
    at.run()
    no_exception(at)
    assert "Strategy structure" in all_text(at)
    assert any(e.label.startswith("Strategy detail") for e in at.expander)  # raw JSON kept, collapsed
    assert all(not m.proto.allow_html for m in at.markdown)
    assert len(at.get("html")) == 0
    return at


def charts(at: Any) -> list[Any]:
    return list(at.get("plotly_chart"))


def ask(engine: Any, strategy: str, models: list[str], prompt: str = "What is two plus two?",
        **options: Any) -> Any:
    result = engine.ask(prompt, strategy=strategy, models=models, use_cache=False,
                        strategy_options=options or None)
    assert result.detail["kind"] == strategy
    return result


def test_every_strategy_has_a_renderer() -> None:
    from dashboard.structure import RENDERERS

    assert set(RENDERERS) == set(STRATEGIES)


def test_single(engine: Any) -> None:
    at = show(ask(engine, "single", ["fake-echo"]))
    assert "Answered by fake-echo (no fallback needed)" in all_text(at)


def test_ensemble_agreement_chart_and_consensus(engine: Any) -> None:
    result = ask(engine, "ensemble", ["fake-const", "fake-hola", "fake-echo"])
    at = show(result)
    assert len(charts(at)) == 1
    assert f"Consensus model: {result.detail['consensus_model']}" in [t.value for t in at.text]
    members = frame(at, "model", "ok", "answer key")
    assert sorted(members["model"]) == ["fake-const", "fake-echo", "fake-hola"]


def test_cascade_tiers_escalate_until_an_answer(engine: Any) -> None:
    # fake-flip answers differently each sample: low agreement, so it escalates to the next tier.
    result = ask(engine, "cascade", ["fake-flip", "fake-const"], tau=0.9)
    at = show(result)
    tiers = frame(at, "tier", "model", "confidence vs τ", "escalated", "cost_usd")
    assert list(tiers["model"]) == ["fake-flip", "fake-const"]
    assert list(tiers["escalated"]) == [True, False]
    assert list(tiers["answered"]) == [False, True]
    assert "< τ 0.90" in tiers.iloc[0]["confidence vs τ"]
    text = all_text(at)
    assert "Answered by tier 2/2 (fake-const)" in text and "escalation cost $" in text


def test_self_consistency_votes_winner_and_share(engine: Any) -> None:
    result = ask(engine, "self-consistency", ["fake-votes"], n=5, early_stop=False)
    detail = result.detail
    at = show(result)
    assert len(charts(at)) == 1
    texts = [t.value for t in at.text]
    assert f"Winner: {detail['winner']}" in texts
    assert any(t.startswith(f"Vote share: {detail['vote_share']:.0%}") for t in texts)
    assert len(frame(at, "call", "answer key")) == len(detail["samples"])


def test_best_of_n_candidates_with_scores_and_best(engine: Any) -> None:
    result = ask(engine, "best-of-n", ["fake-echo"], n=3, judge_model="fake-judge", early_stop=False)
    at = show(result)
    cands = frame(at, "candidate", "score", "best")
    assert len(cands) == 3
    assert cands["score"].notna().all()
    assert cands["best"].sum() == 1
    best = cands[cands["best"]].iloc[0]
    assert best["score"] == cands["score"].max()
    assert best["candidate"] == result.detail["best"] + 1
    assert "judge fake-judge" in all_text(at)


def test_moa_layers_then_aggregator(engine: Any) -> None:
    result = ask(engine, "moa", ["fake-const", "fake-hola"])
    at = show(result)
    layers = frame(at, "layer", "model", "ok")
    assert set(layers["model"]) >= {"fake-const", "fake-hola"}
    assert "Layer 1" in all_text(at)
    agg = result.detail["aggregator"]
    assert agg is not None
    assert f"Aggregator: {agg['model']} (ok)" in [t.value for t in at.text]


def test_tree_search_draws_the_tree(engine: Any) -> None:
    # Only the echo model, so every node's answer carries the script tag (which model the search
    # expands first is its own choice).
    result = ask(engine, "tree-search", ["fake-echo"], prompt=XSS, budget=5,
                 judge_model="fake-judge", early_stop=False)
    detail = result.detail
    at = show(result)
    (chart,) = charts(at)
    nodes = frame(at, "node", "parent", "depth", "score", "best")
    assert len(nodes) == len(detail["nodes"]) - 1 == 5  # the root is drawn, not tabled
    assert nodes["best"].sum() == 1 and nodes[nodes["best"]].iloc[0]["node"] == detail["best"]
    spec = chart.proto.spec
    assert "star-open" in spec  # the best node is marked
    assert "&lt;script&gt;" in spec and "<script>" not in spec  # hover text is escaped


def test_unknown_kind_falls_back_to_json(engine: Any) -> None:
    import dataclasses

    result = ask(engine, "single", ["fake-echo"])
    odd = dataclasses.replace(result, detail={"kind": "mystery", "x": 1})
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_script, default_timeout=30)
    at.session_state["result"] = odd
    at.run()
    no_exception(at)
    assert len(at.json) == 1 and not at.expander
