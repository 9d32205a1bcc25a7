"""Plotly figures for the Performance page, one function per chart (data comes pre-aggregated)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 340,
           "legend": {"orientation": "h", "y": -0.2}}


def _fig(fig: go.Figure, title: str) -> go.Figure:
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def hit_rate(df: pd.DataFrame) -> go.Figure:
    fig = px.line(df, x="t", y="hit_rate", color="level", markers=len(df) < 60,
                  hover_data=["hits", "lookups"], labels={"t": "time (UTC)", "hit_rate": "hit rate"})
    fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _fig(fig, "Cache hit rate per level")


def cost(df: pd.DataFrame) -> go.Figure:
    long = df.melt(id_vars=["t", "requests"], value_vars=["cost_usd", "saved_usd"],
                   var_name="series", value_name="usd")
    long["series"] = long["series"].map({"cost_usd": "spent", "saved_usd": "saved by the cache"})
    fig = px.area(long, x="t", y="usd", color="series", hover_data=["requests"],
                  labels={"t": "time (UTC)", "usd": "USD"})
    fig.update_traces(stackgroup=None, fill="tozeroy")  # overlaid, not stacked: saved is not spend
    return _fig(fig, "Cost and cost saved over time")


def latency(df: pd.DataFrame) -> go.Figure:
    d = df.assign(latency_ms=(df["latency_ms_from"] * df["latency_ms_to"]) ** 0.5)
    d["share"] = d["calls"] / d.groupby("model")["calls"].transform("sum")
    fig = px.line(d, x="latency_ms", y="share", color="model", log_x=True, markers=True,
                  line_shape="spline", hover_data=["calls", "latency_ms_from", "latency_ms_to"],
                  labels={"latency_ms": "latency (ms, log scale)", "share": "share of calls"})
    fig.update_yaxes(tickformat=".0%")
    return _fig(fig, "Latency distribution per model (successful calls)")


def per_model(df: pd.DataFrame) -> go.Figure:
    d = df.assign(ok=df["calls"] - df["errors"]).melt(
        id_vars=["model"], value_vars=["ok", "errors"], var_name="outcome", value_name="n")
    fig = px.bar(d, x="model", y="n", color="outcome", labels={"n": "calls"},
                 color_discrete_map={"ok": "#4c78a8", "errors": "#e45756"})
    return _fig(fig, "Model calls per model")


def per_strategy(df: pd.DataFrame) -> go.Figure:
    fig = px.bar(df, x="strategy", y="requests", hover_data=["errors", "cost_usd", "mean_latency_ms"])
    return _fig(fig, "Requests per strategy")


def routing(df: pd.DataFrame) -> go.Figure:
    d = df.groupby(["domain", "model"], as_index=False)["decisions"].sum()
    fig = px.bar(d, x="domain", y="decisions", color="model",
                 labels={"model": "first model chosen"})
    return _fig(fig, "Routing decisions by domain")
