"""What every page shares: the engine resource, cached queries, page chrome.

The one `Engine` is an `st.cache_resource` shared by every session and never mutated per session
(pages only call its methods). It is keyed by the environment that shapes `Settings`, so tests that
point INFERSCALE_HOME at a fresh directory get a fresh engine.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd
import streamlit as st

from inferscale.monitor import queries
from inferscale.orchestration.engine import Engine
from inferscale.settings import Settings

QUERY_TTL_S = 10
# (script, label, icon). The sidebar is drawn from this list (Streamlit's own page list is hidden in
# .streamlit/config.toml) so the entry script can be labelled "Overview" rather than "app".
PAGES = [
    ("app.py", "Overview", ":material/dashboard:"),
    ("pages/1_Playground.py", "Playground", ":material/chat:"),
    ("pages/2_Tuning.py", "Tuning", ":material/tune:"),
    ("pages/3_Performance.py", "Performance", ":material/monitoring:"),
    ("pages/4_Models.py", "Models", ":material/hub:"),
    ("pages/5_Experiments.py", "Experiments", ":material/science:"),
]
LEVEL_NAMES = {"L1": "semantic", "L2": "intermediate", "L3": "model output", "L4": "final result"}
_ENV = ("INFERSCALE_HOME", "INFERSCALE_MODELS_DIR", "INFERSCALE_MODELS_YAML", "INFERSCALE_CPU_HOUR_USD",
        "INFERSCALE_CALL_TIMEOUT_S")


@st.cache_resource(show_spinner="Starting the engine…")
def _engine(env_key: tuple[str, ...]) -> Engine:
    del env_key  # only the cache key
    return Engine(Settings.from_env())


def get_engine() -> Engine:
    return _engine(tuple(os.environ.get(k, "") for k in _ENV))


def page(title: str, icon: str) -> Engine:
    """Page config + sidebar footer; returns the shared engine."""
    # No page_icon: for a material icon the browser fetches the favicon's SVG from
    # fonts.gstatic.com (the page icons in the sidebar ship with the frontend). `icon` is kept for
    # the callers; Streamlit's own favicon is served by the app itself.
    del icon
    st.set_page_config(page_title=f"{title} · inferscale", layout="wide")
    engine = get_engine()
    with st.sidebar:
        for path, label, page_icon in PAGES:
            st.page_link(path, label=label, icon=page_icon)
        st.divider()
        st.caption(f"Home: {code_span(str(engine.settings.home))}")
    return engine


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def overview_data(db_path: str, include_synthetic: bool, source: str | None = None,
                  tenant: str | None = None) -> tuple[dict[str, Any], pd.DataFrame]:
    conn = queries.connect(db_path)
    try:
        w = queries.Window(0.0, 4e10, include_synthetic, source, tenant)
        return queries.summary(conn, w), queries.recent_requests(conn, 25, include_synthetic, source, tenant)
    finally:
        conn.close()


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def data_range(db_path: str) -> tuple[float, float] | None:
    conn = queries.connect(db_path)
    try:
        return queries.data_range(conn)
    finally:
        conn.close()


@st.cache_data(ttl=QUERY_TTL_S, show_spinner="Querying the monitor…")
def chart_frames(db_path: str, start: float, end: float, include_synthetic: bool, source: str | None = None,
                 tenant: str | None = None) -> dict[str, pd.DataFrame]:
    """Every Performance chart's data for one window (one cache entry per filter setting)."""
    return queries.load_charts(db_path, queries.Window(start, end, include_synthetic, source, tenant))


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def filter_options(db_path: str) -> tuple[list[str], list[str]]:
    conn = queries.connect(db_path)
    try:
        return queries.sources_and_tenants(conn)
    finally:
        conn.close()


def traffic_filters(db_path: str, prefix: str, cols: Any) -> tuple[str | None, str | None]:
    """Source and key pickers ("all" = no filter) in two columns; returns (source, tenant)."""
    sources, tenants = filter_options(db_path)
    source = cols[0].selectbox("Source", ["all", *sources], key=f"{prefix}_source",
                               help="Where requests came from: playground, cli, batch, gateway…")
    tenant = cols[1].selectbox("Key", ["all", *tenants], key=f"{prefix}_tenant",
                               help="The gateway key a request was made with")
    return (None if source == "all" else source), (None if tenant == "all" else tenant)


def money(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0 or abs(x) >= 100:
        return f"${x:,.2f}"
    return f"${x:,.4f}" if abs(x) >= 0.01 else f"${x:.6f}"


def ms(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f} ms"


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def code_span(text: str) -> str:
    """Inline-code markdown for an identifier (a model id may contain * or _)."""
    return "`" + text.replace("`", "'") + "`"
