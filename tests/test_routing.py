"""Routing policies: complexity tiers, cheapest, quality, the budget cap, capability filtering.

The policy-level tests build `RouteRequest`s from real records; the engine-level tests route real
prompts (real analysis) to fake models and check which model actually answered."""

from __future__ import annotations

import pytest

from inferscale.errors import InvalidPromptError, RoutingError
from inferscale.orchestration.strategies import STRATEGIES
from inferscale.registry import ModelSpec
from inferscale.routing import RouteRequest, get_router
from inferscale.routing.policies import route
from inferscale.settings import Tunables
from inferscale.types import Analysis
from tests.support.fakes import fake_model


def _analysis(score: float, capability: str = "chat", tokens: int = 10) -> Analysis:
    return Analysis(score=score, domain="factual", tokens=tokens, capability=capability, breakdown=())


def _spec(i: int, quality: float, price: float = 1.0, **kw) -> ModelSpec:
    return ModelSpec(id=f"m{i}", model="openai/echo", quality_prior=quality,
                     input_price_per_1m=price, output_price_per_1m=price, **kw)


@pytest.fixture
def cost(make_engine):
    """The engine's real cost prediction."""
    return make_engine().predicted_cost


def _request(cost, score: float, specs, thresholds=(0.35, 0.65), strategy="single", **tun) -> RouteRequest:
    tunables = Tunables(complexity_thresholds=tuple(thresholds), **tun).validate()
    # The engine asks the strategy how many models it uses; so does this helper.
    return RouteRequest(_analysis(score), tuple(specs), strategy, tunables, cost,
                        models_needed=STRATEGIES[strategy].models_needed)


@pytest.mark.parametrize("n_models", [1, 2, 3, 5])
@pytest.mark.parametrize("thresholds", [(), (0.5,), (0.35, 0.65), (0.2, 0.4, 0.6, 0.8)])
def test_complexity_tiers_cover_any_number_of_models(cost, n_models: int, thresholds) -> None:
    # Registry order deliberately differs from quality order.
    specs = [_spec(i, q) for i, q in enumerate([0.5, 0.1, 0.9, 0.3, 0.7][:n_models])]
    weakest = min(specs, key=lambda s: s.quality_prior)
    strongest = max(specs, key=lambda s: s.quality_prior)
    router = get_router("complexity")

    chosen = []
    for score in [i / 20 for i in range(21)]:
        decision = route(router, _request(cost, score, specs, thresholds))
        assert len(decision.models) == 1
        assert sorted(decision.models + decision.fallbacks) == sorted(s.id for s in specs)
        chosen.append(next(s for s in specs if s.id == decision.models[0]))

    qualities = [s.quality_prior for s in chosen]
    assert qualities == sorted(qualities), "a harder prompt never gets a weaker model"
    assert chosen[-1] == strongest
    if thresholds:
        assert chosen[0] == weakest
        distinct = len({s.id for s in chosen})
        assert distinct == min(n_models, len(thresholds) + 1)


def test_complexity_fallbacks_go_stronger_first(cost) -> None:
    specs = [_spec(i, q) for i, q in enumerate([0.2, 0.4, 0.6, 0.8])]
    decision = route(get_router("complexity"), _request(cost, 0.5, specs, (0.25, 0.5, 0.75)))
    assert decision.models == ("m2",)
    assert decision.fallbacks == ("m3", "m1", "m0")


def test_cheapest_and_quality(cost) -> None:
    specs = [_spec(0, 0.5, price=5.0), _spec(1, 0.9, price=20.0), _spec(2, 0.2, price=0.5)]
    cheapest = route(get_router("cheapest"), _request(cost, 0.5, specs))
    assert cheapest.models == ("m2",) and cheapest.fallbacks == ("m0", "m1")
    quality = route(get_router("quality"), _request(cost, 0.5, specs))
    assert quality.models == ("m1",) and quality.fallbacks == ("m0", "m2")
    assert quality.predicted_cost_usd > cheapest.predicted_cost_usd > 0


def test_ensemble_takes_k_models(cost) -> None:
    specs = [_spec(i, q) for i, q in enumerate([0.2, 0.4, 0.6, 0.8])]
    decision = route(get_router("quality"), _request(cost, 0.5, specs, strategy="ensemble", ensemble_k=3))
    assert decision.models == ("m3", "m2", "m1") and decision.fallbacks == ("m0",)


def test_budget_cap_excludes_expensive_models(cost) -> None:
    specs = [_spec(0, 0.9, price=1000.0), _spec(1, 0.3, price=1.0)]
    uncapped = route(get_router("quality"), _request(cost, 0.5, specs))
    assert uncapped.models == ("m0",)
    capped = route(get_router("quality"), _request(cost, 0.5, specs, budget_usd=0.01))
    assert capped.models == ("m1",) and capped.fallbacks == ()
    assert capped.predicted_cost_usd <= 0.01
    assert "budget" in capped.reason
    with pytest.raises(RoutingError, match="budget"):
        route(get_router("quality"), _request(cost, 0.5, specs, budget_usd=1e-9))


def test_no_available_model(cost) -> None:
    with pytest.raises(RoutingError, match="no model is available"):
        route(get_router("complexity"), _request(cost, 0.5, []))


def test_context_window_filters_candidates(cost) -> None:
    specs = [_spec(0, 0.9, context_window=100), _spec(1, 0.3, context_window=10_000)]
    req = RouteRequest(_analysis(0.5, tokens=500), tuple(specs), "single", Tunables(max_tokens=32), cost)
    assert route(get_router("quality"), req).models == ("m1",)
    too_long = RouteRequest(_analysis(0.5, tokens=20_000), tuple(specs), "single", Tunables(), cost)
    with pytest.raises(InvalidPromptError, match="context window"):
        route(get_router("quality"), too_long)


def test_unknown_router_name() -> None:
    from inferscale.errors import ConfigError

    with pytest.raises(ConfigError, match="random"):
        get_router("random")


# -- through the engine, with real prompt analysis ---------------------------------------------

def test_code_prompt_prefers_a_model_tagged_code(make_engine, server) -> None:
    engine = make_engine(
        fake_model("fake-chat", "const-chat", quality_prior=0.9, tags=["chat"]),
        fake_model("fake-coder", "const-coder", quality_prior=0.4, tags=["chat", "code"]),
    )
    code = engine.ask("Write a Python function that reverses a linked list in place.", router="quality")
    assert code.analysis.domain == "code" and code.analysis.capability == "code"
    assert code.routing.models == ("fake-coder",) and code.answer == "coder"
    assert "code" in code.routing.reason

    plain = engine.ask("What is the capital of France?", router="quality")
    assert plain.analysis.capability == "chat"
    assert plain.routing.models == ("fake-chat",) and plain.answer == "chat"


def test_engine_budget_cap(make_engine, server) -> None:
    engine = make_engine(
        fake_model("fake-pricey", "const-pricey", quality_prior=0.9,
                   input_price_per_1m=1000, output_price_per_1m=1000),
        fake_model("fake-cheap", "const-cheap", quality_prior=0.3,
                   input_price_per_1m=0.1, output_price_per_1m=0.1),
    )
    assert engine.ask("Name a colour.", router="quality").answer == "pricey"
    engine.tunables_store.set("budget_usd", "0.01")
    assert engine.ask("Name a colour.", router="quality").answer == "cheap"

    engine.tunables_store.set("budget_usd", "0.000000001")
    with pytest.raises(RoutingError, match="budget"):
        engine.ask("Name a colour.", router="quality")
    status = engine.database.db.execute(
        "SELECT status FROM requests ORDER BY ts DESC LIMIT 1").fetchone()[0]
    assert status == "error"


def test_engine_cheapest_router(make_engine, server) -> None:
    engine = make_engine(
        fake_model("fake-a", "const-a", input_price_per_1m=2, output_price_per_1m=2),
        fake_model("fake-b", "const-b", input_price_per_1m=0.5, output_price_per_1m=0.5),
        fake_model("fake-c", "const-c", input_price_per_1m=4, output_price_per_1m=4),
    )
    result = engine.ask("Name a colour.", router="cheapest")
    assert result.answer == "b"
    assert result.routing.fallbacks == ("fake-a", "fake-c")
