"""inferscale dashboard: the overview page (the other pages are in pages/).

Run with `streamlit run app.py` (.streamlit/config.toml binds 127.0.0.1 and turns usage stats off).
"""

import streamlit as st

from dashboard.common import (
    LEVEL_NAMES,
    PAGES,
    code_span,
    money,
    ms,
    overview_data,
    page,
    pct,
    traffic_filters,
)

engine = page("Overview", ":material/dashboard:")
st.title("inferscale")
st.caption("Inference scaling across several LLMs: every request is analysed, checked against the "
           "cache, routed, executed and recorded. This page sums up what the monitor logged.")

f = st.columns([1, 1, 1])
include_synthetic = f[0].toggle("Include synthetic rows", value=True, key="overview_synthetic",
                                help="Rows created by `inferscale seed` are marked synthetic.")
source, tenant = traffic_filters(str(engine.settings.db_path), "overview", f[1:])
summary, recent = overview_data(str(engine.settings.db_path), include_synthetic, source, tenant)

c = st.columns(6)
c[0].metric("Requests", f"{summary['requests']:,}", help=f"{summary['failed']:,} failed")
c[1].metric("Spent", money(summary["cost_usd"]))
c[2].metric("Saved by the cache", money(summary["saved_usd"]))
c[3].metric("Latency p50", ms(summary["latency_p50_ms"]))
c[4].metric("Failed", f"{summary['failed']:,}")
c[5].metric("Interrupted", f"{summary.get('interrupted', 0):,}",
            help="Left running by a process that died (kill -9, crash); marked at the next start.")

st.subheader("Cache hit rate per level")
levels = summary["cache"]
cols = st.columns(len(levels))
for col, (level, v) in zip(cols, levels.items(), strict=True):
    col.metric(f"{level} {LEVEL_NAMES.get(level, '')}", pct(v["hit_rate"]),
               help=f"{v['hits']:,} hits / {v['lookups']:,} lookups")

st.subheader("Last requests")
if recent.empty:
    st.info("Nothing logged yet. Ask something in the Playground, or seed demo rows with "
            "`inferscale seed --requests 10000`.")
else:
    st.dataframe(
        recent, hide_index=True, key="overview_recent",
        column_config={
            "time": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "cost_usd": st.column_config.NumberColumn("cost $", format="%.6f"),
            "saved_usd": st.column_config.NumberColumn("saved $", format="%.6f"),
            "latency_ms": st.column_config.NumberColumn("latency ms", format="%.0f"),
            "synthetic": st.column_config.CheckboxColumn("synthetic"),
        },
    )
if summary["synthetic"]:
    st.caption(f"{summary['synthetic']:,} of these requests are synthetic (seeded).")

st.divider()
for col, (path, title, icon) in zip(st.columns(len(PAGES) - 1), PAGES[1:], strict=True):
    col.page_link(path, label=title, icon=icon)
st.caption(f"Engine home: {code_span(str(engine.settings.home))}")
