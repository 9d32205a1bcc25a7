"""Tunables: validated on write, persisted in SQLite, effective on the next request."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferscale import Engine, Settings, Tunables
from inferscale.errors import ConfigError
from tests.support.fakes import fake_model


def _stored(engine: Engine) -> list[tuple]:
    return engine.database.db.execute("SELECT key, value, updated_at FROM settings ORDER BY key").fetchall()


def test_defaults_when_nothing_is_stored(home: Path) -> None:
    assert Engine(Settings.from_env(home)).tunables() == Tunables()


def test_set_persists_across_engines(home: Path) -> None:
    engine = Engine(Settings.from_env(home))
    engine.tunables_store.set("complexity_thresholds", "0.2,0.9")
    engine.tunables_store.set("budget_usd", "0.5")
    engine.tunables_store.set("cache_enabled", "off")

    reopened = Engine(Settings.from_env(home)).tunables()
    assert reopened.complexity_thresholds == (0.2, 0.9)
    assert reopened.budget_usd == 0.5
    assert reopened.cache_enabled is False

    engine.tunables_store.reset()
    assert Engine(Settings.from_env(home)).tunables() == Tunables()


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("complexity_thresholds", "1.5"),
        ("complexity_thresholds", "-0.1"),
        ("complexity_thresholds", "nan"),
        ("complexity_thresholds", "0.2,inf"),
        ("complexity_thresholds", "0.9,0.2"),
        ("complexity_thresholds", "low,high"),
        ("budget_usd", "-1"),
        ("budget_usd", "nan"),
        ("max_tokens", "0"),
        ("max_tokens", "many"),
        ("temperature", "3"),
        ("ensemble_k", "0"),
        ("default_router", "random"),
        ("default_strategy", "vote"),
        ("cache_enabled", "maybe"),
        ("no_such_key", "1"),
    ],
)
def test_invalid_values_are_rejected_and_change_nothing(home: Path, key: str, raw: str) -> None:
    engine = Engine(Settings.from_env(home))
    engine.tunables_store.set("complexity_thresholds", "0.2,0.9")
    before_rows, before = _stored(engine), engine.tunables()

    with pytest.raises(ConfigError) as info:
        engine.tunables_store.set(key, raw)

    assert "\n" not in str(info.value)
    assert key in str(info.value) or "ascending" in str(info.value)
    assert _stored(engine) == before_rows
    assert Engine(Settings.from_env(home)).tunables() == before


def test_thresholds_take_effect_on_the_next_request(make_engine, server) -> None:
    # Three models from weakest to strongest; each answers with its own name.
    engine = make_engine(
        fake_model("fake-strong", "const-strong", quality_prior=0.9),
        fake_model("fake-weak", "const-weak", quality_prior=0.2),
        fake_model("fake-mid", "const-mid", quality_prior=0.5),
    )
    prompt = "What is the capital of France?"

    simple = engine.ask(prompt)
    assert simple.analysis.score < 0.35
    assert simple.routing.models == ("fake-weak",) and simple.answer == "weak"

    engine.tunables_store.set("complexity_thresholds", "0,1")  # every prompt is at least tier 2
    middle = engine.ask(prompt)
    assert middle.cache is None  # the router config is part of the cache scope
    assert middle.routing.models == ("fake-mid",) and middle.answer == "mid"

    engine.tunables_store.set("complexity_thresholds", "0,0")  # every prompt is in the top tier
    assert Engine(engine.settings).ask(prompt).answer == "strong"  # and a fresh engine agrees
    assert server.calls["const-weak"] == server.calls["const-mid"] == server.calls["const-strong"] == 1


def test_default_strategy_and_router_take_effect(make_engine, server) -> None:
    engine = make_engine(
        fake_model("fake-weak", "const-weak", quality_prior=0.2, input_price_per_1m=1, output_price_per_1m=1),
        fake_model("fake-strong", "const-strong", quality_prior=0.9, input_price_per_1m=9,
                   output_price_per_1m=9),
    )
    engine.tunables_store.set("default_router", "quality")
    assert engine.ask("What is the capital of France?").answer == "strong"
    engine.tunables_store.set("default_strategy", "ensemble")
    result = engine.ask("What is the capital of Spain?")
    assert result.strategy == "ensemble"
    assert {m.model for m in result.members} == {"fake-weak", "fake-strong"}


def test_sampling_tunables_are_sent_to_the_model(make_engine, server) -> None:
    engine = make_engine(fake_model("fake-echo"))
    engine.tunables_store.set("max_tokens", "7")
    engine.tunables_store.set("temperature", "0.5")
    engine.ask("hello", models=["fake-echo"])
    assert server.last_request["max_tokens"] == 7
    assert server.last_request["temperature"] == 0.5

    engine.tunables_store.set("max_tokens", "8")
    again = engine.ask("hello", models=["fake-echo"])
    assert again.cache is None and not again.members[0].cached  # a new value is a new cache scope
    assert server.last_request["max_tokens"] == 8
    assert server.calls["echo"] == 2


def test_cache_verification_and_strategy_defaults_come_from_the_tunables() -> None:
    import dataclasses

    from inferscale.cache.levels import verify_config
    from inferscale.cache.verify import VerifyConfig
    from inferscale.orchestration.strategies import STRATEGIES

    # Every threshold of the L1 decision is a tunable, with the same default.
    assert verify_config(Tunables()) == VerifyConfig()
    assert {f.name for f in dataclasses.fields(VerifyConfig)} <= {
        n.removeprefix("semantic_") for n in Tunables().to_dict() if n.startswith("semantic_")}
    # A strategy built without tunables has the tunables' defaults and ranges.
    t = Tunables()
    assert STRATEGIES["cascade"].Config().tau == t.cascade_tau
    assert STRATEGIES["best-of-n"].Config().n == t.samples_n
    with pytest.raises(ConfigError, match=r"n: .*less than or equal to 64"):
        STRATEGIES["self-consistency"].Config.build(t, {"n": 65})


@pytest.mark.parametrize(("key", "raw", "message"), [
    ("cascade_tau", "nan", "cascade_tau must be in [0, 1], got nan"),
    ("semantic_context_floor", "1.2", "semantic_context_floor must be in [0, 1]"),
    ("samples_n", "0", "samples_n must be an integer in [1, 64], got 0"),
    ("cache_l2_ttl_s", "inf", "cache_l2_ttl_s must be a finite number >= 0"),
    ("budget_usd", "-1", "budget_usd must be a finite number >= 0"),
])
def test_messages_name_the_field_and_its_range(key: str, raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Tunables().with_value(key, raw)
    assert message in str(info.value) and "\n" not in str(info.value)
