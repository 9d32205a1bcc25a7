"""AppTest: the Playground page against fake remote models (local models disabled)."""

from __future__ import annotations

from typing import Any

import pytest

from inferscale.orchestration.strategies import STRATEGIES
from inferscale.routing import ROUTERS
from tests.support.dashboard import XSS, all_text, app_test, dashboard_models, frame, no_exception

TIMEOUT = 180  # the first request loads the embedding model


@pytest.fixture
def engine(make_engine: Any) -> Any:
    return make_engine(*dashboard_models())


def ask(at: Any, prompt: str, *, strategy: str | None = None, models: list[str] | None = None,
        system: str | None = None, use_cache: bool | None = None) -> Any:
    at.text_area(key="pg_prompt").input(prompt)
    if system is not None:
        at.text_area(key="pg_system").input(system)
    if strategy is not None:
        at.selectbox(key="pg_strategy").select(strategy)
    if models is not None:
        at.multiselect(key="pg_models").set_value(models)
    if use_cache is not None:
        at.checkbox(key="pg_use_cache").set_value(use_cache)
    return at.button(key="pg_submit").click().run(timeout=TIMEOUT)


def test_pickers_come_from_the_registries(engine: Any) -> None:
    at = app_test("playground")
    no_exception(at)
    assert at.selectbox(key="pg_strategy").options == list(STRATEGIES)
    assert at.selectbox(key="pg_router").options == list(ROUTERS)
    assert at.multiselect(key="pg_models").options == ["fake-echo", "fake-const"]
    assert at.selectbox(key="pg_strategy").value == engine.tunables().default_strategy
    text = all_text(at)
    assert "fake-fail" in text and "disabled" in text  # unavailable models are listed with why


def test_ensemble_shows_a_card_per_model_the_final_answer_routing_and_steps(engine: Any) -> None:
    at = app_test("playground")
    ask(at, "Say hello to the dashboard", strategy="ensemble", models=["fake-echo", "fake-const"])
    no_exception(at)
    values = [m.value for m in at.markdown]
    assert "echo: Say hello to the dashboard" in values  # fake-echo's card
    assert "bonjour" in values  # fake-const's card
    for model in ("fake-echo", "fake-const"):  # one card each, headed by the model id (and role)
        assert sum(str(v).startswith(f"**`{model}`**") for v in values) == 1
    captions = [c.value for c in at.caption]
    assert sum("L3 miss" in c and "tokens" in c and "ms" in c and "$" in c for c in captions) == 2
    text = all_text(at)
    assert "Final answer" in text
    assert "Agreement" in text and "Complexity" in text and "Domain" in text
    assert "models chosen by the user" in text  # the routing reason
    steps = frame(at, "step", "start_ms")
    assert list(steps["step"]) == ["analysis", "cache", "routing", "execution", "monitoring"]
    assert (steps["ms"] >= 0).all()
    assert not frame(at, "feature", "contribution").empty
    # the ensemble's agreement chart, then the step timeline
    assert [c.key for c in at.get("plotly_chart")] == ["st_ensemble_agreement", "pg_timeline"]
    history = frame(at, "prompt", "answer")
    assert len(history) == 1 and history.iloc[0]["strategy"] == "ensemble"


def test_model_html_is_shown_as_text_never_injected(engine: Any) -> None:
    at = app_test("playground")
    ask(at, XSS, strategy="single", models=["fake-echo"])
    no_exception(at)
    shown = [m for m in at.markdown if XSS in str(m.value)]
    assert len(shown) >= 2  # the member card and the final answer
    # Every markdown element (model output included) is rendered without unsafe HTML.
    assert all(not m.proto.allow_html for m in at.markdown)
    assert len(at.get("html")) == 0


def test_result_stays_visible_on_rerun_and_history_accumulates(engine: Any) -> None:
    at = app_test("playground")
    ask(at, "first question", models=["fake-echo"])
    ask(at, "second question", models=["fake-echo"])
    no_exception(at)
    at.run()  # an unrelated rerun (e.g. another widget) keeps the last result on screen
    no_exception(at)
    assert "echo: second question" in [m.value for m in at.markdown]
    history = frame(at, "prompt", "answer")
    assert list(history["prompt"]) == ["second question", "first question"]


def test_repeat_is_served_from_the_l4_cache(engine: Any) -> None:
    at = app_test("playground")
    ask(at, "cache me", models=["fake-echo"])
    ask(at, "cache me", models=["fake-echo"])
    no_exception(at)
    assert any(m.label == "Cache" and m.value == "L4 hit" for m in at.metric)
    assert any("L4 hit" in c.value for c in at.caption)  # the member card says where it came from


def test_router_chooses_when_no_model_is_picked(engine: Any) -> None:
    at = app_test("playground")
    at.selectbox(key="pg_router").select("quality")
    ask(at, "which model answers?")
    no_exception(at)
    assert "echo: which model answers?" in [m.value for m in at.markdown]  # highest quality prior
    assert "highest quality prior" in all_text(at)


def test_a_failing_model_shows_its_error_and_the_app_survives(engine: Any) -> None:
    engine.registry.set_enabled("fake-fail", True)
    at = app_test("playground")
    ask(at, "this will fail", strategy="single", models=["fake-fail"])
    no_exception(at)
    errors = " ".join(e.value for e in at.error)
    assert "fake-fail" in errors and ("401" in errors or "Authentication" in errors)
    assert frame(at, "prompt", "answer").iloc[0]["error"]


def test_empty_prompt_is_rejected(engine: Any) -> None:
    at = app_test("playground")
    at.button(key="pg_submit").click().run()
    no_exception(at)
    assert [e.value for e in at.error] == ["Enter a prompt first."]


def test_system_prompt_and_no_cache_are_passed_through(engine: Any) -> None:
    at = app_test("playground")
    ask(at, "with a system prompt", system="You are terse.", models=["fake-echo"], use_cache=False)
    no_exception(at)
    assert "echo: with a system prompt" in [m.value for m in at.markdown]
    assert any(m.label == "Cache" and m.value == "miss" for m in at.metric)


def test_strategy_options_are_passed_and_bad_ones_explained(engine: Any) -> None:
    at = app_test("playground")
    at.text_input(key="pg_options").input("no-equals-sign")
    ask(at, "options", models=["fake-echo"])
    no_exception(at)
    assert "must look like KEY=VALUE" in " ".join(e.value for e in at.error)
    at.text_input(key="pg_options").input("no_such_option=1")
    ask(at, "options", models=["fake-echo"])
    no_exception(at)
    assert "no_such_option" in " ".join(e.value for e in at.error)  # the strategy's own validation
