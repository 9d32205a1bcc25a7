"""Playground: ask once, watch every model answer, see the routing reason and the step timeline."""

import pandas as pd
import streamlit as st

from dashboard.common import code_span, page
from dashboard.data import history_row, parse_strategy_options
from dashboard.loop import render_feedback
from dashboard.playground import render_cards, render_result, run_live
from dashboard.safe import plain
from inferscale.errors import ConfigError
from inferscale.orchestration.strategies import STRATEGIES
from inferscale.routing import ROUTERS

engine = page("Playground", ":material/chat:")
engine.warm_up()  # once per engine, in the background: the first request does not wait for imports
tun = engine.tunables()
specs = engine.registry.list()
available = [s.id for s in specs if s.unavailable_reason() is None]
unavailable = [s for s in specs if s.unavailable_reason() is not None]
strategies, routers = list(STRATEGIES), list(ROUTERS)

st.title("Playground")
with st.form("pg_form", border=True):
    prompt = st.text_area("Prompt", key="pg_prompt", height=110,
                          placeholder="Ask something, e.g. What is the capital of France?")
    with st.expander("System prompt and strategy options (optional)"):
        system = st.text_area("System prompt", key="pg_system", height=80)
        options = st.text_input("Strategy options", key="pg_options", placeholder="e.g. n=3, tau=0.5",
                                help="KEY=VALUE pairs overriding the strategy's defaults for this request "
                                     "(the defaults are on the Tuning page).")
    c = st.columns([1, 1, 3, 1])
    strategy = c[0].selectbox("Strategy", strategies, key="pg_strategy",
                              index=strategies.index(tun.default_strategy)
                              if tun.default_strategy in strategies else 0)
    router = c[1].selectbox("Router", routers, key="pg_router",
                            index=routers.index(tun.default_router) if tun.default_router in routers else 0)
    models = c[2].multiselect("Models", available, key="pg_models",
                              placeholder="None: the router chooses",
                              help="Pick models to ask them explicitly; "
                                   "leave empty to let the router choose.")
    use_cache = c[3].checkbox("Use cache", value=True, key="pg_use_cache")
    submitted = st.form_submit_button("Run", type="primary", key="pg_submit")
if unavailable:
    st.caption("Not available: " + "; ".join(
        f"{code_span(s.id)} ({'disabled' if not s.enabled else 'needs ' + (s.missing_key() or '?')})"
        for s in unavailable))

history = st.session_state.setdefault("pg_history", [])
if submitted:
    try:
        opts = parse_strategy_options(options)
        extra = {"strategy_options": opts} if opts else {}
    except ConfigError as exc:
        extra = None
        st.error(plain(exc))
    if extra is not None and not prompt.strip():
        st.error("Enter a prompt first.")
    elif extra is not None:
        result, error = run_live(engine, prompt, system=system or None, strategy=strategy,
                                 models=models or None, router=router, use_cache=use_cache, **extra)
        history.insert(0, history_row(prompt, result, error))
        st.session_state["pg_last"] = result
        st.session_state["pg_last_error"] = error
        if error:
            st.error(plain(error))
        else:
            render_result(result)
            render_feedback(engine, result)
elif st.session_state.get("pg_last") is not None:
    render_cards(st.session_state["pg_last"])
    render_result(st.session_state["pg_last"])
    render_feedback(engine, st.session_state["pg_last"])
elif st.session_state.get("pg_last_error"):
    st.error(plain(st.session_state["pg_last_error"]))

if history:
    st.markdown("#### History (this session)")
    st.dataframe(pd.DataFrame(history[:50]), hide_index=True, key="pg_history_table",
                 column_config={"cost_usd": st.column_config.NumberColumn("cost $", format="%.6f")})
