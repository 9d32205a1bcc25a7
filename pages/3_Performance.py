"""Performance: charts over the monitor tables, aggregated in SQL, with CSV downloads."""

import datetime as dt

import streamlit as st

from dashboard import charts
from dashboard.common import chart_frames, data_range, money, page, pct, traffic_filters
from dashboard.loop import render_quality
from inferscale.tools.seed import clear_synthetic, seed_synthetic

engine = page("Performance", ":material/monitoring:")
db = str(engine.settings.db_path)
st.title("Performance")

utc = dt.UTC
today = dt.datetime.now(utc).date()
rng = data_range(db)
first = dt.datetime.fromtimestamp(rng[0], utc).date() if rng else today
c = st.columns([2, 1, 1, 1])
picked = c[0].date_input("Date range (UTC)", value=(min(first, today), today), key="perf_range")
include_synthetic = c[1].toggle("Include synthetic rows", value=True, key="perf_synthetic")
source, tenant = traffic_filters(db, "perf", c[2:])
d0, d1 = (picked[0], picked[-1]) if isinstance(picked, (tuple, list)) and picked else (today, today)
start = dt.datetime.combine(d0, dt.time(), utc).timestamp()
end = dt.datetime.combine(d1 + dt.timedelta(days=1), dt.time(), utc).timestamp()
frames = chart_frames(db, start, end, include_synthetic, source, tenant)

co, hr = frames["cost_over_time"], frames["hit_rate_over_time"]
if co.empty:
    st.info("No requests in this range. Ask something in the Playground, widen the range, or seed "
            "synthetic rows below (`inferscale seed --requests 100000` does the same from a shell).")
else:
    k = st.columns(4)
    k[0].metric("Requests", f"{int(co['requests'].sum()):,}")
    k[1].metric("Spent", money(float(co["cost_usd"].sum())))
    k[2].metric("Saved by the cache", money(float(co["saved_usd"].sum())))
    lookups = hr.groupby("level")[["hits", "lookups"]].sum() if not hr.empty else None
    k[3].metric("Cache hit rate (all levels)",
                pct(None if lookups is None else lookups["hits"].sum() / max(1, lookups["lookups"].sum())))

SECTIONS = [
    ("hit_rate_over_time", charts.hit_rate),
    ("cost_over_time", charts.cost),
    ("latency_histogram", charts.latency),
    ("requests_per_model", charts.per_model),
    ("requests_per_strategy", charts.per_strategy),
    ("routing_by_domain", charts.routing),
]


def section(name, make):
    df = frames[name]
    with st.container(border=True):
        if df.empty:
            st.caption(f"{name.replace('_', ' ')}: no data in this range")
        else:
            st.plotly_chart(make(df), key=f"perf_chart_{name}")
        st.download_button("Download CSV", df.to_csv(index=False), file_name=f"{name}.csv",
                           mime="text/csv", key=f"perf_csv_{name}", disabled=df.empty)


for i in range(0, len(SECTIONS), 2):
    cols = st.columns(2)
    for col, (name, make) in zip(cols, SECTIONS[i:i + 2], strict=False):
        with col:
            section(name, make)

render_quality(engine)

st.subheader("Cache levels")
cl = frames["cache_levels"]
st.dataframe(cl, hide_index=True, key="perf_cache_levels",
             column_config={"hit_rate": st.column_config.NumberColumn("hit rate", format="percent"),
                            "saved_usd": st.column_config.NumberColumn("saved $", format="%.6f"),
                            "saved_ms": st.column_config.NumberColumn("saved ms", format="%.0f")})
st.download_button("Download CSV", cl.to_csv(index=False), file_name="cache_levels.csv",
                   mime="text/csv", key="perf_csv_cache_levels", disabled=cl.empty)

st.subheader("Requests per key")
pk = frames["requests_per_key"]
if pk.empty:
    st.caption("No gateway key made requests in this range (`inferscale keys create NAME`, then "
               "`inferscale serve`).")
st.dataframe(pk, hide_index=True, key="perf_per_key",
             column_config={"cost_usd": st.column_config.NumberColumn("cost $", format="%.6f"),
                            "saved_usd": st.column_config.NumberColumn("saved $", format="%.6f")})
st.download_button("Download CSV", pk.to_csv(index=False), file_name="requests_per_key.csv",
                   mime="text/csv", key="perf_csv_requests_per_key", disabled=pk.empty)

st.subheader("Latency percentiles per model")
pc = frames["latency_percentiles"]
st.dataframe(pc, hide_index=True, key="perf_percentiles",
             column_config={c: st.column_config.NumberColumn(format="%.0f")
                            for c in ("p50_ms", "p95_ms", "max_ms")})
st.download_button("Download CSV", pc.to_csv(index=False), file_name="latency_percentiles.csv",
                   mime="text/csv", key="perf_csv_latency_percentiles", disabled=pc.empty)

with st.expander("Demo data (synthetic rows)"):
    st.caption("Seeded rows are marked synthetic=1 in every monitor table and can be excluded above.")
    n = st.number_input("Requests to seed", min_value=1, max_value=1_000_000, value=10_000, step=1000,
                        key="perf_seed_n")
    b = st.columns(2)
    if b[0].button("Seed synthetic rows", key="perf_seed"):
        bar = st.progress(0.0, text="Seeding…")
        counts = seed_synthetic(engine.database, int(n), rng_seed=None,
                                on_progress=lambda done, total: bar.progress(
                                    done / total, text=f"Seeded {done:,}/{total:,}"))
        chart_frames.clear()
        data_range.clear()
        st.session_state.pop("perf_range", None)  # widen the range to the new data
        st.session_state["perf_flash"] = f"Seeded {counts['requests']:,} synthetic requests."
        st.rerun()
    if b[1].button("Remove synthetic rows", key="perf_clear"):
        deleted = clear_synthetic(engine.database)
        chart_frames.clear()
        data_range.clear()
        st.session_state.pop("perf_range", None)
        st.session_state["perf_flash"] = f"Removed {deleted['requests']:,} synthetic requests."
        st.rerun()
    if flash := st.session_state.pop("perf_flash", None):
        st.success(flash)
