"""A request's verifier guides the searching strategies without ever seeing an expected answer."""

from __future__ import annotations

import pytest

from inferscale.errors import ConfigError
from tests.support.fakes import fake_model


def _is_five(answer: str) -> float:
    return 1.0 if answer.strip() == "5" else 0.0


def test_best_of_n_picks_the_candidate_the_verifier_accepts(make_engine):
    engine = make_engine(fake_model("fake-cycle", "cycle-3_5_7_9"))
    r = engine.ask("pick a number", strategy="best-of-n", models=["fake-cycle"], verifier=_is_five,
                   strategy_options={"n": 4, "scorer": "verifier", "early_stop": False})
    assert r.answer == "5"
    assert r.confidence == 1.0
    scores = sorted(c["score"] for c in r.detail["candidates"])
    assert scores == [0.0, 0.0, 0.0, 1.0]
    assert all(m.role.startswith("candidate") for m in r.members), "a verifier makes no model calls"


def test_tree_search_stops_once_the_verifier_accepts_a_node(make_engine):
    engine = make_engine(fake_model("fake-cycle", "cycle-2_4_5_8_9_1"))
    r = engine.ask("pick another number", strategy="tree-search", models=["fake-cycle"],
                   verifier=_is_five, strategy_options={"budget": 6, "parallel": 1, "scorer": "verifier"})
    assert r.answer == "5"
    assert r.detail["stopped"] == "stop_score"
    assert len(r.detail["nodes"]) - 1 == 3


def test_cascade_escalates_until_the_verifier_accepts(make_engine):
    engine = make_engine(fake_model("fake-cheap", "const-4", input_price_per_1m=0.1, output_price_per_1m=0.1),
                         fake_model("fake-dear", "const-5", input_price_per_1m=5, output_price_per_1m=5),
                         fake_model("fake-dearer", "const-6", input_price_per_1m=50, output_price_per_1m=50))
    r = engine.ask("what is two plus three?", strategy="cascade",
                   models=["fake-cheap", "fake-dear", "fake-dearer"], verifier=_is_five,
                   strategy_options={"confidence": "verifier", "tau": 0.5})
    assert r.answer == "5"
    tiers = r.detail["tiers"]
    assert [t["model"] for t in tiers] == ["fake-cheap", "fake-dear"]
    assert [t["confidence"] for t in tiers] == [0.0, 1.0]
    assert tiers[0]["confidence_source"] == "verifier"


def test_the_verifier_scorer_without_a_verifier_is_a_clear_error(make_engine):
    engine = make_engine(fake_model("fake-echo"))
    with pytest.raises(ConfigError, match="needs a verifier"):
        engine.ask("no verifier here", strategy="best-of-n", models=["fake-echo"],
                   strategy_options={"scorer": "verifier"})
