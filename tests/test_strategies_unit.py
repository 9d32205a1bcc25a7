"""The pure pieces behind the strategies: answer keys, votes, judge scores, budgets, configs."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from inferscale.errors import ConfigError
from inferscale.orchestration.strategies import STRATEGIES, StrategyConfig, build_strategy, parse_options
from inferscale.orchestration.strategies.answers import (
    answer_key,
    extract_number,
    majority_settled,
    matches,
    normalize_text,
    tally,
)
from inferscale.orchestration.strategies.budget import Budget
from inferscale.orchestration.strategies.judge import parse_score
from inferscale.settings import STRATEGY_NAMES, Tunables


@pytest.mark.parametrize(("text", "number"), [
    ("Natalia sold 48 clips in April and 24 in May. #### 72", "72"),
    ("so the answer is $1,234.50.", "1234.5"),
    ("The final answer is \\boxed{18}", "18"),
    ("3 apples and 4 pears make 7", "7"),
    ("Answer: -3", "-3"),
    ("7.0", "7"),
    ("no digits here", None),
])
def test_extract_number(text: str, number: str | None) -> None:
    assert extract_number(text) == number


def test_answer_key_prefers_numbers_then_normalised_text() -> None:
    assert answer_key("There are 42 of them.") == answer_key("#### 42") == "#42"
    assert answer_key("The answer is: Paris!") == answer_key("paris") == "paris"
    assert answer_key("  ") is None and answer_key(None) is None
    assert answer_key("Route 66", numeric=False) == "route 66"
    assert normalize_text("The  Eiffel tower.") == "eiffel tower"


def test_tally_and_settled_majority() -> None:
    winner, votes = tally(["#7", "#3", "#3", None, "#7"])
    assert winner == "#7" and votes == Counter({"#7": 2, "#3": 2})  # tie: the earliest seen wins
    assert majority_settled(Counter({"#42": 3}), remaining=2)
    assert not majority_settled(Counter({"#42": 2, "#7": 1}), remaining=1)
    assert majority_settled(Counter({"#42": 2, "#7": 1}), remaining=0)
    assert not majority_settled(Counter(), remaining=0)


@pytest.mark.parametrize(("answer", "expected", "ok"), [
    ("So she has 72 clips.", 72, True),
    ("#### 72", "72.0", True),
    ("about 71", "72", False),
    ("The capital is Paris.", "Paris", True),
    ("paris", "Paris", True),
    ("Parisian food", "Paris", False),
    (None, "x", False),
])
def test_matches(answer: str | None, expected: str | int, ok: bool) -> None:
    assert matches(answer, expected) is ok


@pytest.mark.parametrize(("reply", "score"), [
    ("8", 0.8), ("Score: 7/10", 0.7), ("10\nCorrect: 10", 1.0), ("0.65", 0.65), ("0", 0.0),
    ("12 + 30 = 42", None), ("I cannot judge this", None), ("", None), (None, None),
])
def test_parse_score(reply: str | None, score: float | None) -> None:
    assert parse_score(reply) == (pytest.approx(score) if score is not None else None)


def test_budget_counts_calls_and_reserves_predicted_dollars() -> None:
    b = Budget(max_calls=3, max_usd=0.010)
    assert b.reserve(0.004) and b.reserve(0.004)
    assert not b.reserve(0.004)  # 0.012 predicted would pass the cap while two calls run
    b.settle(0.004, 0.001)  # the first call turned out cheaper
    assert b.reserve(0.004)
    assert not b.reserve(0.0)  # the call budget (3) is spent
    assert b.denied == 2 and b.exhausted
    assert b.to_dict()["calls"] == 3


def test_registry_matches_settings_and_every_strategy_has_a_typed_config() -> None:
    assert tuple(STRATEGIES) == STRATEGY_NAMES
    t = Tunables(samples_n=7, cascade_tau=0.55, sample_temperature=0.9, tree_budget=5, moa_layers=2)
    assert build_strategy("self-consistency", t).config.n == 7
    assert build_strategy("cascade", t).config.tau == 0.55
    assert build_strategy("best-of-n", t, {"n": "3"}).config.n == 3  # CLI strings are converted
    assert build_strategy("tree-search", t).config.budget == 5
    assert build_strategy("moa", t).config.layers == 2
    for name, cls in STRATEGIES.items():
        strategy = build_strategy(name, t)
        assert isinstance(strategy, cls)
        assert type(strategy.config) is cls.Config and cls.Config is not StrategyConfig
        # Frozen: even a known field cannot be reassigned (an unknown one is refused by extra=forbid
        # whether or not the model is frozen, so it would prove nothing).
        for field_name in cls.Config.model_fields:
            with pytest.raises(ValidationError, match="frozen"):
                setattr(strategy.config, field_name, getattr(strategy.config, field_name))
        assert cls.Config.model_config.get("frozen") is True


@pytest.mark.parametrize(("name", "options", "message"), [
    ("cascade", {"tau": "1.5"}, "tau"),
    ("cascade", {"confidence": "vibes"}, "confidence"),
    ("self-consistency", {"samples": "3"}, "unknown option"),
    ("best-of-n", {"n": "zero"}, "n:"),
    ("nope", {}, "unknown strategy"),
])
def test_bad_options_are_config_errors_naming_the_field(name: str, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_strategy(name, Tunables(), options)


def test_parse_options() -> None:
    parsed = parse_options(["n=3", " tau = 0.5 ", "expected=a=b"])
    assert parsed == {"n": "3", "tau": "0.5", "expected": "a=b"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_options(["n"])


@pytest.mark.parametrize(("key", "raw"), [
    ("samples_n", "0"), ("cascade_tau", "2"), ("tree_budget", "1000"), ("sample_temperature", "3"),
    ("call_budget", "-1"), ("moa_layers", "9"),
])
def test_strategy_tunables_are_validated(key: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=key):
        Tunables().with_value(key, raw)
