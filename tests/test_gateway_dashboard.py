"""Gateway traffic on the dashboard: source and key on every request, filters on Overview and
Performance, requests per key (queries and the AppTest pages)."""

from __future__ import annotations

from typing import Any

import pytest
import streamlit as st

from inferscale.monitor import queries
from tests.support.dashboard import all_text, app_test, dashboard_models, frame, no_exception


@pytest.fixture
def engine(make_engine: Any) -> Any:
    st.cache_data.clear()
    e = make_engine(*dashboard_models())
    e.ask("from the shell", models=["fake-echo"], source="cli")
    for i in range(3):
        e.ask(f"team red question {i}", models=["fake-echo"], source="gateway", tenant="red")
    e.ask("team blue question", models=["fake-const"], source="gateway", tenant="blue")
    e.ask("team blue question", models=["fake-const"], source="gateway", tenant="blue")  # an L4 hit
    return e


def test_queries_filter_by_source_and_key_and_count_per_key(engine: Any) -> None:
    conn = queries.connect(engine.settings.db_path)
    everything = queries.Window(0, 4e10)
    assert queries.summary(conn, everything)["requests"] == 6
    assert queries.summary(conn, queries.Window(0, 4e10, source="gateway"))["requests"] == 5
    blue = queries.Window(0, 4e10, tenant="blue")
    s = queries.summary(conn, blue)
    assert s["requests"] == 2 and s["cache"]["L4"]["hits"] == 1  # cache events follow their request
    per_key = queries.requests_per_key(conn, everything).set_index("key")
    assert per_key.loc["red", "requests"] == 3 and per_key.loc["blue", "cache_hits"] == 1
    assert queries.sources_and_tenants(conn) == (["cli", "gateway"], ["blue", "red"])
    recent = queries.recent_requests(conn, 10, source="gateway", tenant="red")
    assert set(recent["key"]) == {"red"} and set(recent["source"]) == {"gateway"} and len(recent) == 3
    calls = queries.load_charts(engine.settings.db_path, blue)["requests_per_model"]
    assert set(calls["model"]) == {"fake-const"}


def test_overview_filters_and_shows_source_and_key(engine: Any) -> None:
    at = app_test("overview")
    no_exception(at)
    assert {m.label: m.value for m in at.metric}["Requests"] == "6"
    recent = frame(at, "source", "key")
    assert set(recent["source"]) == {"cli", "gateway"} and {"red", "blue"} <= set(recent["key"].dropna())
    at.selectbox(key="overview_tenant").select("red").run()
    no_exception(at)
    assert {m.label: m.value for m in at.metric}["Requests"] == "3"
    at.selectbox(key="overview_tenant").select("all").run()
    at.selectbox(key="overview_source").select("cli").run()
    assert {m.label: m.value for m in at.metric}["Requests"] == "1"


def test_performance_shows_requests_per_key_and_filters(engine: Any) -> None:
    at = app_test("performance")
    no_exception(at)
    assert "Requests per key" in all_text(at)
    per_key = frame(at, "key", "requests")
    assert dict(zip(per_key["key"], per_key["requests"], strict=True)) == {"red": 3, "blue": 2}
    at.selectbox(key="perf_source").select("cli").run()
    no_exception(at)
    assert {m.label: m.value for m in at.metric}["Requests"] == "1"
