"""Closing the loop on the dashboard: feedback buttons (Playground), quality from feedback
(Performance) and the what-if preview beside the Tuning controls. Logic lives in the library
(`inferscale.monitor.feedback`, `inferscale.whatif`); these only draw it."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from inferscale.errors import InferscaleError
from inferscale.monitor.feedback import FeedbackStore
from inferscale.settings import Tunables
from inferscale.types import AskResult

from .common import code_span

CURVE_THRESHOLDS = [0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0]


# -- Playground ---------------------------------------------------------------------------------
def _record(engine: Any, result: AskResult, rating: str, model: str | None, answer_key: str) -> None:
    answer = st.session_state.get(answer_key) or None
    try:
        FeedbackStore(engine.database).add(result.request_id, rating, answer=answer, model=model,
                                           source="playground")
    except InferscaleError as exc:
        st.error(f"Feedback not recorded: {exc}")
        return
    what = f"{code_span(model)}'s answer" if model else "the final answer"
    st.session_state[f"pg_fb_flash_{result.request_id}"] = f"Recorded: {what} rated {rating}."


def render_feedback(engine: Any, result: AskResult) -> None:
    """👍/👎 on the final answer and on each model's answer, with an optional corrected answer.
    Keys carry the request id, so the buttons survive the rerun their click causes."""
    rid = result.request_id[:12]
    with st.container(border=True, key=f"pg_fb_{rid}"):
        st.markdown("**Was this right?** Ratings train the learned router and flag bad cache hits.")
        st.text_input("Corrected answer (optional)", key=f"pg_fb_answer_{rid}")
        targets = [(None, "Final answer")] + [(m, m) for m in dict.fromkeys(
            mb.model for mb in result.members if mb.answer is not None)]
        if result.cache is not None:
            targets = targets[:1]  # a cached answer: the models did not answer this request
        for i, (model, label) in enumerate(targets):
            c = st.columns([3, 1, 1])
            c[0].markdown(code_span(label) if model else label)
            if c[1].button("Good", key=f"pg_fb_{rid}_{i}_good", icon=":material/thumb_up:"):
                _record(engine, result, "good", model, f"pg_fb_answer_{rid}")
            if c[2].button("Bad", key=f"pg_fb_{rid}_{i}_bad", icon=":material/thumb_down:"):
                _record(engine, result, "bad", model, f"pg_fb_answer_{rid}")
        if flash := st.session_state.get(f"pg_fb_flash_{result.request_id}"):
            st.success(flash)


# -- Performance --------------------------------------------------------------------------------
def render_quality(engine: Any) -> None:
    """Share of good ratings per day, per model and strategy."""
    rows = FeedbackStore(engine.database).quality_over_time()
    with st.container(border=True):
        st.markdown("**Quality from feedback** (share of answers rated good)")
        if not rows:
            st.caption("quality from feedback: no ratings yet (rate answers in the Playground or with "
                       "`inferscale feedback REQUEST_ID good|bad`)")
            return
        df = pd.DataFrame(rows)
        df["day"] = pd.to_datetime(df["bucket"], unit="s", utc=True)
        df["series"] = df["model"] + " · " + df["strategy"]
        fig = px.line(df, x="day", y="quality", color="series", markers=True, range_y=[0, 1.05],
                      hover_data=["good", "bad"])
        fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, height=280)
        st.plotly_chart(fig, key="perf_chart_quality")
        st.dataframe(df[["day", "model", "strategy", "good", "bad", "quality"]], hide_index=True,
                     key="perf_quality_table")


# -- Tuning -------------------------------------------------------------------------------------
def whatif_frame(report: Any) -> pd.DataFrame:
    c, p = report.current, report.proposed

    def q(side: Any) -> str:
        return "–" if side.quality["mean"] is None else f"{side.quality['mean']:.3f}"

    rows = [
        ("hit rate", f"{c.hit_rate:.1%}", f"{p.hit_rate:.1%}"),
        ("L4 (exact) hit rate", f"{c.hit_rate_by_level['L4']:.1%}", f"{p.hit_rate_by_level['L4']:.1%}"),
        ("L1 (semantic) hit rate", f"{c.hit_rate_by_level['L1']:.1%}", f"{p.hit_rate_by_level['L1']:.1%}"),
        ("saved $", f"{c.saved_usd:.6f}", f"{p.saved_usd:.6f}"),
        ("saved ms", f"{c.saved_ms:,.0f}", f"{p.saved_ms:,.0f}"),
        ("cost $ of the misses", f"{c.cost_usd:.6f}", f"{p.cost_usd:.6f}"),
        ("hits contradicting feedback/expected", str(c.contradicted_hits), str(p.contradicted_hits)),
        ("quality of routed answers", q(c), q(p)),
    ]
    for m in sorted(set(c.model_share) | set(p.model_share)):
        rows.append((f"share {m}", f"{c.model_share.get(m, 0):.1%}", f"{p.model_share.get(m, 0):.1%}"))
    return pd.DataFrame(rows, columns=["", "now", "with your change"])


def _inputs_marker(engine: Any, proposed: Tunables) -> tuple[Any, ...]:
    """What a what-if depends on: the log, the labels, the router, the current and proposed values.
    Equal markers give equal figures, so a page render that changes none of them reuses them."""
    from inferscale.routing.artefact import current_version

    db = engine.database.db
    rows = tuple(db.execute(f"SELECT COUNT(*), MAX(rowid) FROM {t}").fetchone()  # noqa: S608 - fixed names
                 for t in ("request_log", "feedback", "experiment_results", "model_calls"))
    return (str(engine.settings.home), rows, current_version(engine.settings.home),
            json.dumps(engine.tunables().to_dict(), sort_keys=True), json.dumps(proposed.to_dict(), sort_keys=True))


def _whatif_figures(engine: Any, proposed: Tunables) -> tuple[Any, pd.DataFrame]:
    """The report and the threshold curve, computed once per distinct input (every widget change
    reruns the page, and a replay of a long log takes seconds)."""
    from inferscale.whatif.report import Replay, whatif

    key = _inputs_marker(engine, proposed)
    kept = st.session_state.get("_whatif_figures")
    if kept is not None and kept[0] == key:
        return kept[1], kept[2]
    replay = Replay(engine)
    report = whatif(engine, proposed, replay=replay)
    curve = pd.DataFrame(replay.threshold_curve(proposed, CURVE_THRESHOLDS))
    st.session_state["_whatif_figures"] = (key, report, curve)
    return report, curve


def render_whatif(engine: Any, proposed: Tunables) -> None:
    """"now → with your change" over the logged traffic, and its hit rate vs semantic threshold."""
    try:
        report, curve = _whatif_figures(engine, proposed)
    except InferscaleError as exc:
        st.info(f"What-if: {exc}")
        return
    st.markdown(f"**What-if** over {report.requests:,} logged requests "
                f"({report.seconds:.2f} s); changed: {', '.join(report.changed) or 'nothing yet'}")
    st.dataframe(whatif_frame(report), hide_index=True, key="tuning_whatif_table")
    qp = report.proposed.quality
    st.caption(f"Quality: {qp['from_labels']} answers from labels (feedback, experiments), "
               f"{qp['estimated']} estimated by the learned router, {qp['unknown']} unknown. "
               "Replayed from an empty cache, in arrival order, with the cache's own verification.")
    fig = px.line(curve, x="threshold", y=["hit_rate", "l1_hit_rate"], markers=True,
                  labels={"value": "hit rate", "threshold": "semantic_threshold"})
    fig.add_vline(x=proposed.semantic_threshold, line_dash="dot")
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, height=260, legend_title_text="")
    st.plotly_chart(fig, key="tuning_whatif_curve")


# -- Experiments (the page lives on the experiments branch; it calls this) ----------------------
def render_router_curves(curves: list[Any], strong: str, weak: str, items: int) -> None:
    """Quality vs normalised cost of each router of `inferscale router eval`, and the metrics table
    (`curves`: `routing.evaluation.Curve`, from `tools.router_ops.evaluate_experiment`)."""
    rows = [{"router": c.name, "cost (0 = weak, 1 = strong)": x, "quality": q} for c in curves for x, q in c.points]
    fig = px.line(pd.DataFrame(rows), x="cost (0 = weak, 1 = strong)", y="quality", color="router",
                  markers=True)
    fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10}, height=320, legend_title_text="")
    st.caption(f"{items} held-out items; strong: {strong}, weak: {weak} (best and cheapest on the training split)")
    st.plotly_chart(fig, key="exp_router_curves")
    st.dataframe(pd.DataFrame([{"router": c.name, "APGR": c.apgr, "CPT(50%)": c.cpt50, "CPT(80%)": c.cpt80,
                                "AIQ": c.aiq} for c in curves]), hide_index=True, key="exp_router_metrics")
