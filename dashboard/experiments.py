"""Helpers for the Experiments page: the background runs resource, the cost–accuracy chart, the
per-item tables, comparisons and "Use as default". The page itself only lays out widgets."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from inferscale.experiments import datasets, report
from inferscale.experiments.background import BackgroundRuns
from inferscale.experiments.runner import ExperimentSpec, RunConfig
from inferscale.experiments.store import ExperimentStore

# Strategy options that have a tunable: "Use as default" writes these; others stay per request.
OPTION_TUNABLES = {"n": "samples_n", "temperature": "sample_temperature", "tau": "cascade_tau",
                   "budget": "tree_budget", "judge_model": "judge_model", "layers": "moa_layers"}


@st.cache_resource
def background_runs(env_key: tuple[str, ...]) -> BackgroundRuns:
    """One per engine resource (same key): runs outlive the browser session that started them."""
    del env_key
    return BackgroundRuns()


def spec_from_form(name: str, dataset: datasets.Dataset, strategies: Sequence[str], models: Sequence[str],
                   options: dict[str, str], verifier: bool, limit: int | None, budget: float | None,
                   concurrency: int = 2) -> ExperimentSpec:
    from inferscale.orchestration.strategies import STRATEGIES

    configs = tuple(RunConfig(s, s, tuple(models),
                              {k: v for k, v in options.items() if k in STRATEGIES[s].Config.model_fields})
                    for s in strategies)
    return ExperimentSpec(name=name, dataset=dataset.name, configs=configs, limit=limit,
                          verifier="auto" if verifier else None, budget_usd=budget,
                          concurrency=concurrency, items=len(dataset.items))


def load_uploaded(name: str, data: bytes, limit: int | None) -> datasets.Dataset:
    """An uploaded JSONL, validated like a file given to the CLI (errors name the line)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / (Path(name).name or "upload.jsonl")
        p.write_bytes(data)
        return datasets.load_jsonl(p, limit)


def summary(store: ExperimentStore, name: str) -> tuple[dict[str, Any], list[dict[str, Any]], ExperimentSpec]:
    exp = store.get(name)
    spec = ExperimentSpec.from_json(exp["spec"])
    rows = store.results(name)
    items = spec.items or len({r["item_id"] for r in rows})
    return report.summarize(spec, rows, items, exp["status"]), rows, spec


def cost_accuracy_chart(summ: dict[str, Any]) -> Any:
    """Configs at ($ per item, accuracy) with 95% CI error bars; the Pareto front drawn as a line."""
    import plotly.graph_objects as go

    pts = [c for c in summ["configs"] if c["accuracy"] is not None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[c["cost_per_item_usd"] for c in pts], y=[c["accuracy"] for c in pts],
        mode="markers+text", text=[c["config"] for c in pts], textposition="top center", name="configs",
        error_y={"type": "data", "symmetric": False,
                 "array": [c["ci95"][1] - c["accuracy"] for c in pts],
                 "arrayminus": [c["accuracy"] - c["ci95"][0] for c in pts]},
        marker={"size": 11, "color": ["#d62728" if c["pareto"] else "#1f77b4" for c in pts]},
        hovertemplate="%{text}<br>$/item %{x:.6f}<br>accuracy %{y:.1%}<extra></extra>",
    ))
    front = sorted((c for c in pts if c["pareto"]), key=lambda c: c["cost_per_item_usd"])
    fig.add_trace(go.Scatter(x=[c["cost_per_item_usd"] for c in front], y=[c["accuracy"] for c in front],
                             mode="lines", name="Pareto front", line={"color": "#d62728", "dash": "dash"}))
    fig.update_layout(xaxis_title="$ per item", yaxis_title="accuracy (95% CI)", yaxis_range=[-0.05, 1.1],
                      height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title=f"AIQ {summ['aiq']:.4f}" if summ["aiq"] is not None else None)
    return fig


def configs_frame(summ: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for c in summ["configs"]:
        vb = c["vs_baseline"]
        rows.append({
            "config": c["config"], "strategy": c["strategy"], "models": ", ".join(c["models"]),
            "n": c["n"], "correct": c["correct"], "errors": c["errors"], "accuracy": c["accuracy"],
            "ci95": None if c["ci95"] is None else f"[{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}]",
            "pass@k": c["pass_at_k"], "$/item": c["cost_per_item_usd"], "$/correct": c["cost_per_correct_usd"],
            "p50 ms": c["latency_p50_ms"], "calls/item": c["calls_per_item"], "pareto": c["pareto"],
            "vs baseline": None if vb is None else f"+{vb['gained']} / -{vb['lost']} (p={vb['p_value']:.3f})",
        })
    return pd.DataFrame(rows)


def items_frame(rows: Sequence[dict[str, Any]], baseline: str | None,
                configs: Sequence[str] = ()) -> pd.DataFrame:
    """One row per item: each config's score, and which configs fixed or broke the baseline's items."""
    if not rows:
        return pd.DataFrame(columns=["item_id"])
    df = pd.DataFrame(rows)
    wide = df.pivot_table(index="item_id", columns="config", values="correct", aggfunc="first")
    order = [c for c in configs if c in wide.columns] or list(wide.columns)
    wide = wide.reindex(columns=order)  # the experiment's config order, not alphabetical
    wide = wide.reindex(sorted(wide.index, key=lambda i: df.loc[df.item_id == i, "seq"].min()))
    out = wide.reset_index()
    out.columns.name = None
    if baseline and baseline in wide.columns:
        base = wide[baseline]
        others = [c for c in wide.columns if c != baseline]
        out["fixed by"] = [", ".join(c for c in others if base[i] == 0 and wide.at[i, c] == 1) for i in wide.index]
        out["broken by"] = [", ".join(c for c in others if base[i] == 1 and wide.at[i, c] == 0) for i in wide.index]
    return out


def item_detail(rows: Sequence[dict[str, Any]], item_id: str) -> tuple[dict[str, Any], pd.DataFrame]:
    mine = [r for r in rows if r["item_id"] == item_id]
    head = {k: mine[0][k] for k in ("item_id", "prompt", "system", "expected")} if mine else {}
    table = pd.DataFrame([{"config": r["config"], "answer": r["answer"], "score": r["score"],
                           "correct": r["correct"], "reason": r["reason"], "error": r["error"],
                           "cost_usd": r["cost_usd"], "calls": r["calls"], "pass@k": r["pass_at_k"]}
                          for r in mine])
    return head, table


def compare(rows: Sequence[dict[str, Any]], a: str, b: str) -> tuple[dict[str, Any], pd.DataFrame]:
    """Paired comparison of two configs: b against a (gained, lost, exact McNemar p), and the
    items on which they disagree."""
    ra = [r for r in rows if r["config"] == a]
    rb = [r for r in rows if r["config"] == b]
    result = report.paired(ra, rb)
    by_a = {r["item_id"]: r for r in ra}
    diff = [{"item_id": r["item_id"], f"{a} correct": by_a[r["item_id"]]["correct"], f"{b} correct": r["correct"],
             f"{a} answer": by_a[r["item_id"]]["answer"], f"{b} answer": r["answer"]}
            for r in rb if r["item_id"] in by_a and by_a[r["item_id"]]["correct"] != r["correct"]]
    return result, pd.DataFrame(diff)


def results_csv(rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def results_json(summ: dict[str, Any], rows: Sequence[dict[str, Any]]) -> bytes:
    return json.dumps({"summary": summ, "results": list(rows)}, ensure_ascii=False).encode("utf-8")


def use_as_default(engine: Any, config: RunConfig) -> tuple[list[str], list[str]]:
    """Write the config's strategy, models (the fixed router) and options with a tunable into
    the tunables. Returns (written keys, options that have no tunable and were left out)."""
    store = engine.tunables_store
    tun = store.load().with_value("default_strategy", config.strategy)
    written = ["default_strategy"]
    if config.models:
        tun = tun.with_value("fixed_models", ",".join(config.models)).with_value("default_router", "fixed")
        written += ["fixed_models", "default_router"]
    skipped = []
    for key, value in config.options.items():
        if key in OPTION_TUNABLES:
            tun = tun.with_value(OPTION_TUNABLES[key], str(value))
            written.append(OPTION_TUNABLES[key])
        else:
            skipped.append(key)
    store.save(tun)
    return written, skipped


def scaling_chart(curves: Sequence[dict[str, Any]]) -> Any:
    """Accuracy (solid) and oracle pass@k (dotted) against calls per item, one colour per sweep."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for curve in curves:
        pts = curve["points"]
        x = [p["calls_per_item"] for p in pts]
        fig.add_trace(go.Scatter(x=x, y=[p["accuracy"] for p in pts], mode="lines+markers",
                                 name=f"{curve['curve']} accuracy", text=[p["config"] for p in pts]))
        if any(p["pass_at_k"] is not None for p in pts):
            fig.add_trace(go.Scatter(x=x, y=[p["pass_at_k"] for p in pts], mode="lines+markers",
                                     line={"dash": "dot"}, name=f"{curve['curve']} pass@k"))
    fig.update_layout(xaxis_title="calls per item", yaxis_title="share of items", yaxis_range=[-0.05, 1.05],
                      height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig
