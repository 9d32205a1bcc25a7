"""Models: the registry as a table; add, edit, enable, disable; test a connection.

Key *values* are never shown: the registry holds only the name of each key's environment variable.
"""

import streamlit as st

from dashboard.common import code_span, page
from dashboard.data import model_rows, spec_from_form
from dashboard.safe import plain
from inferscale.errors import InferscaleError
from inferscale.orchestration.runner import run_sync
from inferscale.providers.probe import probe_model

engine = page("Models", ":material/hub:")
registry = engine.registry
st.title("Models")

if flash := st.session_state.pop("models_flash", None):
    st.success(plain(flash))

rows = model_rows(registry)
st.dataframe(rows, hide_index=True, key="models_table",
             column_config={"key_set": st.column_config.CheckboxColumn("key set"),
                            "enabled": st.column_config.CheckboxColumn("enabled")})
missing = rows[rows["status"].str.startswith("unavailable")] if not rows.empty else rows
if not missing.empty:
    st.warning("Unavailable until their key variable is set in the dashboard's environment: "
               + "; ".join(f"{code_span(r.id)} needs {code_span(r.api_key_env)}"
                           for r in missing.itertuples()))

specs = {s.id: s for s in registry.list()}
ids = list(specs)

st.subheader("Enable, disable, test")
c = st.columns([3, 1, 1, 1])
chosen = c[0].selectbox("Model", ids, key="models_selected", label_visibility="collapsed")
if c[1].button("Enable", key="models_enable", disabled=chosen is None):
    try:
        registry.set_enabled(chosen, True)
        st.session_state["models_flash"] = f"{chosen} enabled."
        st.rerun()
    except InferscaleError as exc:
        st.error(plain(exc))
if c[2].button("Disable", key="models_disable", disabled=chosen is None):
    registry.set_enabled(chosen, False)
    st.session_state["models_flash"] = f"{chosen} disabled."
    st.rerun()
if c[3].button("Test connection", key="models_test", disabled=chosen is None):
    with st.spinner(f"Calling {chosen} (a tiny request; local models load first)…"):
        res = run_sync(probe_model(specs[chosen], engine.settings))
    if res.ok:
        st.success(plain(f"{chosen} answered in {res.latency_ms:,.0f} ms."))
        st.text(f"Reply: {res.answer}")
    else:
        st.error(plain(f"{chosen} failed: {res.error}"))


def _reset_form() -> None:
    for k in [k for k in st.session_state if str(k).startswith("models_form_")]:
        del st.session_state[k]


st.subheader("Add or edit a model")
NEW = "(new model)"
target = st.selectbox("Model to edit", [NEW, *ids], key="models_edit_target", on_change=_reset_form)
base = specs.get(target)
with st.form("models_form"):
    f = st.columns(2)
    values = {
        "id": f[0].text_input("Id", value=base.id if base else "", key="models_form_id",
                              disabled=base is not None, help="Unique name used by the CLI and the router."),
        "model": f[1].text_input("litellm model string", value=base.model if base else "",
                                 key="models_form_model", placeholder="openai/gpt-4o-mini"),
        "api_base": f[0].text_input("API base (optional)", value=(base and base.api_base) or "",
                                    key="models_form_api_base", placeholder="http://127.0.0.1:11434"),
        "api_key_env": f[1].text_input("API key environment variable (optional)",
                                       value=(base and base.api_key_env) or "", key="models_form_api_key_env",
                                       placeholder="OPENAI_API_KEY",
                                       help="The variable's NAME; "
                                            "the key itself never goes in the registry."),
        "input_price_per_1m": f[0].number_input("Input price, $ per 1M tokens (empty: litellm's map)",
                                                value=base.input_price_per_1m if base else None,
                                                key="models_form_input_price", format="%.4f"),
        "output_price_per_1m": f[1].number_input("Output price, $ per 1M tokens",
                                                 value=base.output_price_per_1m if base else None,
                                                 key="models_form_output_price", format="%.4f"),
        "context_window": f[0].number_input("Context window (tokens)",
                                            value=base.context_window if base else 8192,
                                            step=1024, key="models_form_context_window"),
        "tags": f[1].text_input("Tags (comma-separated)", value=", ".join(base.tags) if base else "chat",
                                key="models_form_tags", help="Capabilities: chat, code, math, reasoning…"),
        "quality_prior": f[0].number_input("Quality prior (0-1)", value=base.quality_prior if base else 0.5,
                                           step=0.05, key="models_form_quality_prior"),
        "latency_prior_ms": f[1].number_input("Latency prior (ms)",
                                              value=base.latency_prior_ms if base else 1000.0,
                                              step=100.0, key="models_form_latency_prior_ms"),
        "enabled": st.checkbox("Enabled", value=base.enabled if base else False, key="models_form_enabled"),
        "notes": st.text_area("Notes", value=base.notes if base else "", key="models_form_notes", height=68),
    }
    save = st.form_submit_button("Save model", type="primary", key="models_form_save")
if save:
    if base is not None:
        values["id"] = base.id
    try:
        spec = spec_from_form(values)
        if base is None and spec.id in specs:  # a new entry never silently replaces a model
            raise InferscaleError(f"{spec.id} already exists; pick it under 'Model to edit' to change it")
        registry.upsert([spec])
    except InferscaleError as exc:
        st.error(plain(f"Not saved: {exc}"))
    else:
        st.session_state["models_flash"] = f"Saved {spec.id}."
        _reset_form()
        st.rerun()
