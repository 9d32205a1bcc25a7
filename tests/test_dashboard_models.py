"""AppTest: the Models page — table, availability, add/edit, enable/disable, test connection."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.dashboard import all_text, app_test, dashboard_models, frame, no_exception
from tests.support.fakes import KEY_VAR

SECRET = "sk-live-do-not-show-0123456789"


@pytest.fixture
def engine(make_engine: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(KEY_VAR, SECRET)
    return make_engine(*dashboard_models())


def fill(at: Any, **values: Any) -> None:
    for name, value in values.items():
        key = f"models_form_{name}"
        if name in ("enabled",):
            at.checkbox(key=key).set_value(value)
        elif name in ("input_price", "output_price", "context_window", "quality_prior", "latency_prior_ms"):
            at.number_input(key=key).set_value(value)
        elif name == "notes":
            at.text_area(key=key).input(value)
        else:
            at.text_input(key=key).input(value)


def test_table_status_and_missing_keys_never_showing_key_values(engine: Any) -> None:
    at = app_test("models")
    no_exception(at)
    table = frame(at, "id", "status", "api_key_env")
    status = dict(zip(table["id"], table["status"], strict=True))
    assert status["fake-echo"] == "available"
    assert status["fake-fail"] == "disabled"
    assert status["local/gemma-3-270m"] == "disabled"
    assert status["gpt-4o-mini"] == "unavailable: set OPENAI_API_KEY"
    assert status["claude-3-5-haiku"] == "unavailable: set ANTHROPIC_API_KEY"
    warning = " ".join(w.value for w in at.warning)
    assert "OPENAI_API_KEY" in warning and "GEMINI_API_KEY" in warning
    assert SECRET not in all_text(at)  # names of key variables only, never their values
    assert table["key_set"][table["id"] == "fake-echo"].item() is True


def test_enable_and_disable(engine: Any) -> None:
    at = app_test("models")
    at.selectbox(key="models_selected").select("fake-fail")
    at.button(key="models_enable").click().run()
    no_exception(at)
    assert engine.registry.get("fake-fail").enabled
    assert "fake-fail enabled." in all_text(at)
    at.selectbox(key="models_selected").select("fake-echo")
    at.button(key="models_disable").click().run()
    assert not engine.registry.get("fake-echo").enabled


def test_enabling_a_model_without_its_key_is_refused_naming_the_variable(engine: Any) -> None:
    at = app_test("models")
    at.selectbox(key="models_selected").select("gpt-4o-mini")
    at.button(key="models_enable").click().run()
    no_exception(at)
    assert "OPENAI_API_KEY" in " ".join(e.value for e in at.error)
    assert not engine.registry.get("gpt-4o-mini").enabled


def test_add_a_model_through_the_form(engine: Any, server: Any) -> None:
    at = app_test("models")
    fill(at, id="fake-new", model="openai/const-salut", api_base=server.base_url, api_key_env=KEY_VAR,
         input_price=0.5, output_price=1.5, context_window=16384, tags="chat, code",
         quality_prior=0.7, enabled=True, notes="added from the dashboard")
    at.button(key="models_form_save").click().run()
    no_exception(at)
    assert "Saved fake-new." in all_text(at)
    spec = engine.registry.get("fake-new")
    assert (spec.model, spec.api_base, spec.api_key_env) == ("openai/const-salut", server.base_url, KEY_VAR)
    assert spec.tags == ("chat", "code") and spec.context_window == 16384 and spec.enabled
    assert spec.input_price_per_1m == 0.5 and spec.output_price_per_1m == 1.5
    assert engine.ask("hi", models=["fake-new"]).answer == "salut"


def test_edit_an_existing_model(engine: Any) -> None:
    at = app_test("models")
    at.selectbox(key="models_edit_target").select("fake-echo").run()
    assert at.text_input(key="models_form_model").value == "openai/echo"
    assert at.text_input(key="models_form_id").disabled
    fill(at, tags="chat, math", quality_prior=0.9)
    at.button(key="models_form_save").click().run()
    no_exception(at)
    spec = engine.registry.get("fake-echo")
    assert spec.tags == ("chat", "math") and spec.quality_prior == 0.9


@pytest.mark.parametrize(("values", "message"), [
    ({"id": "bad", "model": "openai/echo", "quality_prior": 2.0}, "quality_prior"),
    ({"id": "bad", "model": "openai/echo", "input_price": -1.0}, "input_price_per_1m"),
    ({"id": "bad", "model": "openai/echo", "api_key_env": "sk-abc123"}, "environment variable name"),
    ({"id": "bad", "model": ""}, "model"),
    ({"id": "bad", "model": "openai/echo", "context_window": 0}, "context_window"),
    ({"id": "bad", "model": "openai/x", "api_key_env": "NOT_SET_ANYWHERE", "enabled": True},
     "NOT_SET_ANYWHERE is not set"),
])
def test_invalid_models_are_rejected_with_the_field(engine: Any, values: dict, message: str) -> None:
    at = app_test("models")
    fill(at, **values)
    at.button(key="models_form_save").click().run()
    no_exception(at)
    errors = " ".join(e.value for e in at.error)
    assert "Not saved" in errors and message in errors, errors
    assert "bad" not in [s.id for s in engine.registry.list()]


@pytest.mark.parametrize(("model", "expect"), [
    ("fake-echo", "answered in"),
    ("fake-fail", "Authentication"),
    ("gpt-4o-mini", "OPENAI_API_KEY is not set"),
])
def test_test_connection(engine: Any, model: str, expect: str) -> None:
    at = app_test("models")
    at.selectbox(key="models_selected").select(model)
    at.button(key="models_test").click().run(timeout=60)
    no_exception(at)
    assert expect in all_text(at)
    assert SECRET not in all_text(at)
