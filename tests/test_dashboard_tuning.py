"""AppTest: the Tuning page edits the stored tunables; the next request uses them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from inferscale.settings import Tunables
from tests.support.dashboard import all_text, app_test, dashboard_models, no_exception


@pytest.fixture
def engine(make_engine: Any) -> Any:
    return make_engine(*dashboard_models())


def save(at: Any) -> Any:
    return at.button(key="tuning_save").click().run()


def test_every_tunable_has_a_control_showing_the_stored_value(engine: Any) -> None:
    engine.tunables_store.set("max_tokens", "77")
    at = app_test("tuning")
    no_exception(at)
    keys = {w.key for w in at.main if getattr(w, "key", None)}
    for f in fields(Tunables):  # fields added later get a control too
        assert f"tuning_{f.name}" in keys, f.name
    assert at.number_input(key="tuning_max_tokens").value == 77
    assert at.text_input(key="tuning_complexity_thresholds").value == "0.35, 0.65"
    assert at.text_input(key="tuning_budget_usd").value == "none"


def test_saving_thresholds_persists_and_applies_to_the_next_request(engine: Any) -> None:
    at = app_test("tuning")
    at.text_input(key="tuning_complexity_thresholds").input("0.2, 0.5, 0.9")
    at.text_input(key="tuning_budget_usd").input("0.5")
    at.selectbox(key="tuning_default_strategy").select("ensemble")
    at.number_input(key="tuning_ensemble_k").set_value(2)
    at.toggle(key="tuning_cache_enabled").set_value(False)
    save(at)
    no_exception(at)
    assert "Saved" in " ".join(s.value for s in at.success)
    t = engine.tunables()
    assert t.complexity_thresholds == (0.2, 0.5, 0.9)
    assert t.budget_usd == 0.5 and t.default_strategy == "ensemble" and t.cache_enabled is False
    # Effective on the next request, same engine, no restart: the default strategy is now ensemble.
    result = engine.ask("what is two plus two?")
    assert result.strategy == "ensemble" and len(result.members) == 2
    # A fresh session (a reload) shows the stored values.
    again = app_test("tuning")
    assert again.text_input(key="tuning_complexity_thresholds").value == "0.2, 0.5, 0.9"
    assert again.selectbox(key="tuning_default_strategy").value == "ensemble"


@pytest.mark.parametrize(("key", "kind", "value", "message"), [
    ("tuning_complexity_thresholds", "text_input", "0.9, 0.1", "ascending"),
    ("tuning_complexity_thresholds", "text_input", "0.5, abc", "cannot parse"),
    ("tuning_complexity_thresholds", "text_input", "1.5", "outside [0, 1]"),
    ("tuning_budget_usd", "text_input", "-1", "budget_usd"),
    ("tuning_temperature", "number_input", 5.0, "temperature must be in [0, 2]"),
    ("tuning_max_tokens", "number_input", 0, "max_tokens"),
    ("tuning_ensemble_k", "number_input", 99, "ensemble_k"),
])
def test_invalid_values_are_rejected_with_the_reason(engine: Any, key: str, kind: str, value: Any,
                                                     message: str) -> None:
    before = engine.tunables()
    at = app_test("tuning")
    widget = getattr(at, kind)(key=key)
    widget.input(value) if kind == "text_input" else widget.set_value(value)
    save(at)
    no_exception(at)
    errors = " ".join(e.value for e in at.error).replace("\\", "")  # shown as plain text: escaped markdown
    assert "Not saved" in errors and message in errors, errors
    assert engine.tunables() == before  # nothing was written


def test_reset_to_defaults(engine: Any) -> None:
    engine.tunables_store.set("max_tokens", "33")
    engine.tunables_store.set("complexity_thresholds", "0.1,0.2")
    at = app_test("tuning")
    at.button(key="tuning_reset").click().run()
    no_exception(at)
    assert engine.tunables() == Tunables()
    assert at.number_input(key="tuning_max_tokens").value == Tunables().max_tokens
    assert "Reset to defaults." in all_text(at)


def test_fixed_models_are_picked_from_the_registry(engine: Any) -> None:
    at = app_test("tuning")
    picker = at.multiselect(key="tuning_fixed_models")
    assert "fake-echo" in picker.options
    picker.set_value(["fake-const", "fake-echo"])
    save(at)
    no_exception(at)
    assert engine.tunables().fixed_models == ("fake-const", "fake-echo")
