"""Playground rendering: live member cards while a request runs, then the result.

Model output is always rendered with `st.markdown` *without* `unsafe_allow_html`, so HTML in an
answer (`<script>`, `<img onerror=…>`) is shown as text and never injected into the page; and it
goes through `dashboard/safe.py` first, so no image or other resource is fetched and every link
target is shown as text. Provider errors are plain text.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from typing import Any

import plotly.express as px
import streamlit as st

from dashboard.data import breakdown_frame, member_line, submit_ask, timeline_frame
from inferscale.errors import InferscaleError
from inferscale.orchestration.engine import Event
from inferscale.types import AskResult, MemberResult

from .common import LEVEL_NAMES, code_span, money, ms
from .safe import plain, render_answer
from .structure import render_structure

REFRESH_S = 0.1  # redraw streaming cards at most this often
# Material icons ship with Streamlit's frontend (emoji need a system font headless browsers lack).
STEP_ICONS = {"analysis": ":material/search:", "cache": ":material/database:",
              "routing": ":material/alt_route:",
              "execution": ":material/play_arrow:", "monitoring": ":material/monitoring:"}


@dataclass
class _Card:
    model: str
    status: Any  # st.empty for the metrics line
    body: Any  # st.empty for the answer
    call_id: int | None = None
    text: str = ""
    done: bool = False
    dirty: bool = False


class _Cards:
    """A row of cards, one per model call, matched to events by `call_id` (several calls can go to
    one model: samples, judges). When the request ends the row is redrawn from
    `AskResult.members`, which is exact."""

    def __init__(self, key: str) -> None:
        self.slot = st.empty()
        self.key = key
        self.row = self.slot.container(horizontal=True, gap="small", key=key)
        self.cards: list[_Card] = []

    def new(self, model: str, role: str = "", call_id: int | None = None) -> _Card:
        box = self.row.container(border=True, key=f"{self.key}_{len(self.cards)}")
        box.markdown(f"**{code_span(model)}**" + (f" · {role}" if role else ""))
        card = _Card(model, box.empty(), box.empty(), call_id)
        self.cards.append(card)
        return card

    def for_event(self, ev: Event, newest: bool) -> _Card:
        # getattr: `call_id`/`role` arrived with the strategies; older events match by model.
        call_id = getattr(ev, "call_id", None)
        if call_id is not None:
            hit = next((c for c in self.cards if c.call_id == call_id), None)
            return hit or self.new(ev.model or "?", getattr(ev, "role", ""), call_id)
        open_ = [c for c in self.cards if c.model == ev.model and not c.done]
        if not open_:
            return self.new(ev.model or "?")
        return open_[-1] if newest else open_[0]

    def redraw(self, members: tuple[MemberResult, ...], hit_level: str) -> None:
        self.slot.empty()
        self.row = self.slot.container(horizontal=True, gap="small", key=f"{self.key}_final")
        self.key, self.cards = f"{self.key}_final", []
        for m in members:
            render_member(self.new(m.model, getattr(m, "role", "")), m, hit_level)


def render_member(card: _Card, m: MemberResult, hit_level: str = "L3") -> None:
    with card.status.container():
        st.caption(member_line(m, hit_level))
    with card.body.container():
        if m.error:
            st.error(plain(m.error), icon=":material/error:")
        else:
            render_answer(m.answer)  # disarmed Markdown, no unsafe_allow_html: HTML stays text
            if getattr(m, "truncated", False):
                st.caption("Answer cut: the provider sent more than max_tokens allows.")
    card.done = True


def run_live(engine: Any, prompt: str, **kw: Any) -> tuple[AskResult | None, str | None]:
    """Run one request on a worker, filling a card per model call as events arrive."""
    events: queue.Queue[Event] = queue.Queue()
    future = submit_ask(engine, prompt, events, source="playground", **kw)
    status = st.status("Running: analysis → cache → routing → execution → monitoring",
                       expanded=True)
    st.markdown("#### Models")
    cards = _Cards("pg_live")
    last_draw = 0.0
    while True:
        try:
            ev = events.get(timeout=0.05)
        except queue.Empty:
            ev = None
            if future.done() and events.empty():
                break
        if ev is not None:
            _apply(ev, cards, status)
        if time.monotonic() - last_draw >= REFRESH_S:
            _redraw(cards)
            last_draw = time.monotonic()
    try:
        result = future.result()
    except InferscaleError as exc:
        status.update(label="Request failed", state="error")
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps running
        status.update(label="Request failed", state="error")
        return None, f"{type(exc).__name__}: {exc}"
    cards.redraw(result.members, result.cache.level if result.cache else "L3")
    status.update(label=f"Done in {result.latency_ms:,.0f} ms", state="complete", expanded=False)
    return result, None


def _apply(ev: Event, cards: _Cards, status: Any) -> None:
    if ev.kind == "step" and ev.step is not None:
        s = ev.step
        status.markdown(f"{STEP_ICONS.get(s.name, '•')} **{s.name}** · {s.ms:,.1f} ms")
    elif ev.kind == "started" and ev.model:
        c = cards.new(ev.model, getattr(ev, "role", ""), getattr(ev, "call_id", None))
        c.status.caption(":material/hourglass_top: running…")
    elif ev.kind == "token" and ev.model:
        c = cards.for_event(ev, newest=True)
        c.text += ev.text
        c.dirty = True
    elif ev.kind in ("finished", "failed") and ev.model and ev.member is not None:
        render_member(cards.for_event(ev, newest=False), ev.member)


def _redraw(cards: _Cards) -> None:
    for c in cards.cards:
        if c.dirty and not c.done:
            with c.body.container():
                render_answer(c.text, " ▌")  # streamed text, disarmed the same way
            c.dirty = False


def render_cards(result: AskResult) -> None:
    """Static cards for a finished result (shown again on later reruns)."""
    st.markdown("#### Models")
    cards = _Cards("pg_cards")
    level = result.cache.level if result.cache else "L3"
    for m in result.members:
        render_member(cards.new(m.model, getattr(m, "role", "")), m, level)


def render_result(result: AskResult) -> None:
    st.markdown("#### Final answer")
    with st.container(border=True, key="pg_final"):
        render_answer(result.answer)  # disarmed Markdown, no unsafe_allow_html
    c = st.columns(5)
    label = "Agreement" if result.strategy == "ensemble" else "Confidence"
    c[0].metric(label, "–" if result.confidence is None else f"{result.confidence:.2f}",
                help="Ensemble: mean similarity of the chosen answer to the others.")
    c[1].metric("Cost", money(result.cost_usd))
    c[2].metric("Latency", ms(result.latency_ms))
    c[3].metric("Strategy", result.strategy)
    if result.cache:
        c[4].metric("Cache", f"{result.cache.level} hit",
                    help=f"{LEVEL_NAMES.get(result.cache.level, '')}; saved {money(result.cache.saved_usd)}")
    else:
        c[4].metric("Cache", "miss")
    if result.cache and result.cache.detail:
        st.caption("Cache hit detail")
        st.json(result.cache.detail, expanded=False)
    render_structure(result)  # the strategy's own structure (raw JSON in a collapsed expander)

    left, right = st.columns(2)
    with left:
        st.markdown("#### Routing")
        a, r = result.analysis, result.routing
        k = st.columns(2)
        k[0].metric("Complexity", f"{a.score:.2f}", help="0 = trivial, 1 = hardest; breakdown below")
        k[1].metric("Domain", a.domain)
        st.markdown(f"**Why these models** (router {code_span(r.policy)}): "
                    + ", ".join(code_span(m) for m in r.models))
        st.text(r.reason)
        if r.fallbacks:
            st.caption("Fallbacks: " + ", ".join(code_span(m) for m in r.fallbacks))
        st.caption(f"Predicted cost {money(r.predicted_cost_usd)} · capability needed: {a.capability}")
        st.dataframe(breakdown_frame(result), hide_index=True, key="pg_breakdown")
    with right:
        st.markdown("#### Steps")
        tl = timeline_frame(result.steps)
        if not tl.empty:
            fig = px.bar(tl, x="ms", y="step", base="start_ms", orientation="h", text="ms",
                         hover_data=["note"], height=260)
            fig.update_traces(texttemplate="%{text:.1f} ms", textposition="auto", cliponaxis=False)
            fig.update_yaxes(autorange="reversed", title=None)
            fig.update_xaxes(title="ms since the request started")
            fig.update_layout(margin={"l": 10, "r": 10, "t": 10, "b": 10})
            st.plotly_chart(fig, key="pg_timeline")
        st.dataframe(tl, hide_index=True, key="pg_steps",
                     column_config={"ms": st.column_config.NumberColumn(format="%.1f"),
                                    "start_ms": st.column_config.NumberColumn(format="%.1f")})
