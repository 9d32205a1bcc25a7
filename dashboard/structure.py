"""Each strategy's structure, drawn from `AskResult.detail` (schemas: inferscale/orchestration/strategies/).

`render_structure(result)` looks the strategy up in `RENDERERS` (kind → function) and falls back to
the raw JSON for kinds it does not know. Model answers are only ever shown as plain text
(`st.text`, dataframe cells, Plotly hover text with HTML escaped), never as HTML.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from inferscale.types import AskResult, MemberResult

from .common import money
from .safe import plain

EXCERPT = 80  # characters of an answer shown in tables and hover text
_MARGIN = {"l": 10, "r": 10, "t": 10, "b": 10}


def excerpt(text: str | None, n: int = EXCERPT) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _role(members: Sequence[MemberResult], call: int | None) -> str:
    if call is None or not 0 <= call < len(members):
        return ""
    return getattr(members[call], "role", "") or ""


def _member(members: Sequence[MemberResult], call: int | None) -> MemberResult | None:
    return members[call] if call is not None and 0 <= call < len(members) else None


def _score(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f}"


def _early_stop(detail: dict[str, Any]) -> None:
    es = detail.get("early_stop") or {}
    if es.get("stopped"):
        st.caption(f"Stopped early: {es.get('cancelled', 0)} call(s) cancelled")


def render_single(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    used = int(detail.get("fallbacks_used") or 0)
    st.text(f"Answered by {detail.get('answered_by')}"
            + (f" after {used} fallback(s)" if used else " (no fallback needed)"))


def render_ensemble(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    agreement = detail.get("agreement") or {}
    consensus = detail.get("consensus_model")
    st.text(f"Consensus model: {consensus}")
    if agreement:
        df = pd.DataFrame({"model": list(agreement), "agreement": [float(v) for v in agreement.values()]})
        df["consensus"] = df["model"] == consensus
        fig = go.Figure(go.Bar(
            x=df["agreement"], y=df["model"], orientation="h",
            marker_color=["#2e7d32" if c else "#90a4ae" for c in df["consensus"]],
            text=[f"{v:.2f}" for v in df["agreement"]], textposition="auto",
            hovertemplate="%{y}: agreement %{x:.3f}<extra></extra>",
        ))
        fig.update_xaxes(range=[0, 1], title="agreement with the other answers")
        fig.update_yaxes(autorange="reversed", title=None)
        fig.update_layout(height=80 + 40 * len(df), margin=_MARGIN)
        st.plotly_chart(fig, key="st_ensemble_agreement")
    rows = [{"call": m.get("call"), "model": m.get("model"), "ok": m.get("ok"), "answer key": m.get("key")}
            for m in detail.get("members") or []]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="st_ensemble_members")
    if failed := detail.get("failed"):
        st.caption("Failed: " + ", ".join(map(str, failed)))
    _early_stop(detail)


def render_cascade(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    tau = detail.get("tau")
    tiers = detail.get("tiers") or []
    ladder = detail.get("ladder") or []
    st.text(f"Answered by tier {detail.get('answered_tier')}/{len(ladder)} ({detail.get('answered_by')}); "
            f"escalation cost {money(float(detail.get('escalation_cost_usd') or 0.0))}")
    st.caption(f"Ladder, cheapest first: {' → '.join(map(str, ladder))} · τ = {tau} "
               f"({detail.get('confidence_source')})")
    rows = []
    for t in tiers:
        conf = t.get("confidence")
        if conf is None:
            vs = "not measured"
        elif tau is None:
            vs = _score(conf)
        else:
            vs = f"{conf:.2f} {'≥' if conf >= tau else '<'} τ {tau:.2f}"
        rows.append({
            "tier": t.get("tier"), "model": t.get("model"), "confidence": conf,
            "confidence vs τ": vs, "source": t.get("confidence_source"),
            "escalated": bool(t.get("escalated")), "answered": t.get("tier") == detail.get("answered_tier"),
            "cost_usd": float(t.get("cost_usd") or 0.0), "calls": len(t.get("calls") or []),
            "answer": excerpt(t.get("answer")), "error": t.get("error") or "",
        })
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="st_cascade_tiers",
                     column_config={"cost_usd": st.column_config.NumberColumn("cost", format="$%.6f"),
                                    "confidence": st.column_config.NumberColumn(format="%.2f")})


def render_self_consistency(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    votes = detail.get("votes") or {}
    winner = detail.get("winner")
    share = detail.get("vote_share")
    st.text(f"Winner: {excerpt(winner)}")
    st.text(f"Vote share: {'–' if share is None else f'{share:.0%}'} of {detail.get('n')} samples "
            f"from {detail.get('model')} at temperature {detail.get('temperature')}")
    if votes:
        keys = list(votes)
        fig = go.Figure(go.Bar(
            x=[excerpt(str(k), 30) for k in keys], y=[int(v) for v in votes.values()],
            marker_color=["#2e7d32" if k == winner else "#90a4ae" for k in keys],
            hovertext=[html.escape(excerpt(str(k))) for k in keys], hoverinfo="text+y",
        ))
        fig.update_xaxes(title="answer (normalised)", type="category")
        fig.update_yaxes(title="votes", dtick=1)
        fig.update_layout(height=260, margin=_MARGIN)
        st.plotly_chart(fig, key="st_sc_votes")
    rows = [{"call": s.get("call"), "model": s.get("model"), "answer key": s.get("key"),
             "error": s.get("error") or ""} for s in detail.get("samples") or []]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="st_sc_samples")
    _early_stop(detail)


def render_best_of_n(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    best = detail.get("best")
    judge = detail.get("judge")
    st.text(f"Scorer: {detail.get('scorer')}" + (f" (judge {judge})" if judge else "")
            + f" · best candidate #{'–' if best is None else int(best) + 1} of {detail.get('n')}")
    rows = [{"candidate": int(c.get("index", 0)) + 1, "model": c.get("model"), "score": c.get("score"),
             "best": c.get("index") == best, "answer": excerpt(c.get("answer")),
             "judge call": _role(members, c.get("judge_call"))}
            for c in detail.get("candidates") or []]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="st_bon_candidates",
                     column_config={"score": st.column_config.NumberColumn(format="%.2f")})
    _early_stop(detail)


def render_moa(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    layers = detail.get("layers") or []
    agg = detail.get("aggregator")
    rows = []
    for n, layer in enumerate(layers, start=1):
        for p in layer:
            m = _member(members, p.get("call"))
            rows.append({"layer": n, "model": p.get("model"), "ok": p.get("ok"),
                         "answer": excerpt(m.answer if m else None)})
    if layers:
        cols = st.columns(len(layers))
        for n, (col, layer) in enumerate(zip(cols, layers, strict=True), start=1):
            col.markdown(f"**Layer {n}**")
            col.text("\n".join(f"{'✓' if p.get('ok') else '✗'} {p.get('model')}" for p in layer) or "(empty)")
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="st_moa_layers")
    if agg:
        m = _member(members, agg.get("call"))
        st.text(f"Aggregator: {agg.get('model')} ({'ok' if agg.get('ok') else 'failed'})")
        if m is not None and m.error:
            st.caption(plain(f"Aggregator error: {m.error}"))
    elif detail.get("consensus_skip"):
        st.text("Aggregator skipped: the proposers already agreed")
    else:
        st.text("No aggregator call")


def tree_layout(nodes: list[dict[str, Any]]) -> dict[Any, tuple[float, float]]:
    """(x, y) per node id: y = -depth, x = leaf order (depth-first, children in id order); a parent
    sits above the middle of its children."""
    children: dict[Any, list[Any]] = {}
    for n in nodes:
        children.setdefault(n.get("parent"), []).append(n.get("id"))
    for kids in children.values():
        kids.sort(key=lambda i: (i is None, i))
    depth = {n.get("id"): int(n.get("depth") or 0) for n in nodes}
    pos: dict[Any, tuple[float, float]] = {}
    leaf = [0.0]

    def place(node_id: Any, seen: frozenset[Any]) -> float:
        kids = [k for k in children.get(node_id, []) if k not in seen]
        if not kids:
            x = leaf[0]
            leaf[0] += 1
        else:
            xs = [place(k, seen | {k}) for k in kids]
            x = (xs[0] + xs[-1]) / 2
        pos[node_id] = (x, -depth.get(node_id, 0))
        return x

    for root in children.get(None, []):
        place(root, frozenset({root}))
    for n in nodes:  # orphans (a parent id that is missing): put them at the right
        if n.get("id") not in pos:
            place(n.get("id"), frozenset({n.get("id")}))
    return pos


def render_tree_search(detail: dict[str, Any], members: Sequence[MemberResult]) -> None:
    nodes = detail.get("nodes") or []
    best = detail.get("best")
    judge = detail.get("judge")
    st.text(f"{detail.get('algorithm')} over {', '.join(map(str, detail.get('actions') or []))} · "
            f"scorer {detail.get('scorer')}" + (f" (judge {judge})" if judge else "")
            + f" · {max(len(nodes) - 1, 0)} node(s), best node {best}, stopped by {detail.get('stopped')}")
    if not nodes:
        return
    pos = tree_layout(nodes)
    ex: list[float | None] = []
    ey: list[float | None] = []
    for parent, child in detail.get("edges") or []:
        if parent in pos and child in pos:
            ex += [pos[parent][0], pos[child][0], None]
            ey += [pos[parent][1], pos[child][1], None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#b0bec5", "width": 1.5},
                             hoverinfo="skip", showlegend=False))
    xs = [pos[n.get("id")][0] for n in nodes]
    ys = [pos[n.get("id")][1] for n in nodes]
    scores = [n.get("score") for n in nodes]
    hover = []
    for n in nodes:
        if n.get("parent") is None and n.get("model") is None:
            hover.append("root (the question)")
            continue
        body = f"error: {n['error']}" if n.get("error") else excerpt(n.get("answer"))
        hover.append(html.escape(f"node {n.get('id')} · {n.get('model')} · score {_score(n.get('score'))}")
                     + "<br>" + html.escape(body))
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="markers+text", text=[str(n.get("id")) for n in nodes], textposition="top center",
        hovertext=hover, hoverinfo="text", showlegend=False,
        marker={"size": 18, "color": [s if s is not None else float("nan") for s in scores],
                "colorscale": "Viridis", "cmin": 0, "cmax": 1, "showscale": True,
                "colorbar": {"title": "score"}, "line": {"color": "#37474f", "width": 1}},
    ))
    if best in pos:
        fig.add_trace(go.Scatter(x=[pos[best][0]], y=[pos[best][1]], mode="markers", name="best",
                                 marker={"size": 30, "symbol": "star-open", "color": "#d32f2f",
                                         "line": {"width": 2}},
                                 hovertext=[f"best: node {best}"], hoverinfo="text"))
    fig.update_xaxes(visible=False)
    depths = sorted(set(ys))
    fig.update_yaxes(title="depth", tickvals=depths, ticktext=[str(int(-y)) for y in depths])
    fig.update_layout(height=max(260, 90 * (1 + max((-y for y in ys), default=0))), margin=_MARGIN)
    st.plotly_chart(fig, key="st_tree")
    rows = [{"node": n.get("id"), "parent": n.get("parent"), "depth": n.get("depth"), "model": n.get("model"),
             "score": n.get("score"), "best": n.get("id") == best, "answer": excerpt(n.get("answer")),
             "error": n.get("error") or ""}
            for n in nodes if n.get("parent") is not None]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="st_tree_nodes",
                     column_config={"score": st.column_config.NumberColumn(format="%.2f")})


Renderer = Callable[[dict[str, Any], Sequence[MemberResult]], None]
RENDERERS: dict[str, Renderer] = {
    "single": render_single,
    "ensemble": render_ensemble,
    "cascade": render_cascade,
    "self-consistency": render_self_consistency,
    "best-of-n": render_best_of_n,
    "moa": render_moa,
    "tree-search": render_tree_search,
}


def render_structure(result: AskResult) -> None:
    """The strategy's structure, then the raw detail in a collapsed expander."""
    detail = getattr(result, "detail", None) or {}
    if not detail:
        return
    st.markdown("#### Strategy structure")
    render = RENDERERS.get(str(detail.get("kind")))
    if render is None:
        st.json(detail, expanded=True)
        return
    try:
        render(detail, result.members)
    except Exception as exc:  # noqa: BLE001 - a malformed detail must not break the page
        st.warning(plain(f"Could not draw the {detail.get('kind')} structure ({type(exc).__name__}: {exc})"))
        st.json(detail, expanded=True)
        return
    with st.expander("Strategy detail (raw JSON)", expanded=False):
        st.json(detail, expanded=True)
