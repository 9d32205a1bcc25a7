"""AppTest: the overview page (app.py)."""

from __future__ import annotations

from typing import Any

import pytest
import streamlit as st

from inferscale.tools.seed import seed_synthetic
from tests.support.dashboard import XSS, all_text, app_test, dashboard_models, frame, no_exception


@pytest.fixture
def engine(make_engine: Any) -> Any:
    st.cache_data.clear()
    return make_engine(*dashboard_models())


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_empty_home(engine: Any) -> None:
    at = app_test("overview")
    no_exception(at)
    m = metrics(at)
    assert m["Requests"] == "0" and m["Latency p50"] == "–"
    assert "Nothing logged yet" in all_text(at)
    labels = [p.proto.label for p in at.get("page_link")]  # the sidebar and the overview's own links
    assert {"Overview", "Playground", "Tuning", "Performance", "Models"} <= set(labels)


def test_totals_hit_rates_and_last_requests(engine: Any) -> None:
    engine.ask("first " + XSS, models=["fake-echo"])
    engine.ask("first " + XSS, models=["fake-echo"])  # an L4 hit
    at = app_test("overview")
    no_exception(at)
    m = metrics(at)
    assert m["Requests"] == "2"
    assert m["L4 final result"] == "50.0%"
    assert m["Latency p50"].endswith(" ms")
    assert m["Saved by the cache"].startswith("$") and m["Saved by the cache"] != "$0.00"
    recent = frame(at, "prompt", "status", "cache")
    assert recent["cache"].iloc[0] == "L4" and recent["cache"].isna().iloc[1]
    assert recent["prompt"].iloc[0] == "first " + XSS  # a dataframe cell: shown as text


def test_synthetic_rows_can_be_excluded(engine: Any) -> None:
    seed_synthetic(engine.database, 1000, days=1)
    at = app_test("overview")
    assert metrics(at)["Requests"] == "1,000"
    assert "1,000 of these requests are synthetic" in all_text(at)
    at.toggle(key="overview_synthetic").set_value(False).run()
    no_exception(at)
    assert metrics(at)["Requests"] == "0"
