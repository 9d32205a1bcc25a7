"""Tuning: the live knobs (routing, cache, strategy defaults), saved to the settings store.

Controls are built from the `Tunables` fields, so knobs added to the engine appear here by
themselves. A saved change applies to the next request; nothing restarts.
"""

import streamlit as st

from dashboard.common import page
from dashboard.data import GROUPS, apply_tunables, display_raw, to_raw, tunable_fields
from dashboard.loop import render_whatif
from dashboard.safe import plain
from inferscale.errors import ConfigError
from inferscale.orchestration.strategies import STRATEGIES
from inferscale.routing import ROUTERS

engine = page("Tuning", ":material/tune:")
store = engine.tunables_store
current = store.load()
model_ids = [s.id for s in engine.registry.list()]
fields = tunable_fields(current, {"default_strategy": tuple(STRATEGIES), "default_router": tuple(ROUTERS),
                                  "judge_model": ("", *model_ids)})

st.title("Tuning")
st.caption("Changes are stored in the settings table and apply to the next request, no restart.")
if flash := st.session_state.pop("tuning_flash", None):
    st.success(flash)


def widget(f):  # one control per field kind; every key is tuning_<field>
    key, label, help_ = f"tuning_{f.name}", f.label, f.help or None
    if f.kind == "bool":
        return st.toggle(label, value=f.value, key=key, help=help_)
    if f.kind == "int":
        return st.number_input(label, value=int(f.value), step=1, key=key, help=help_)
    if f.kind == "float":
        return st.number_input(label, value=float(f.value), step=0.01, format="%.4f", key=key, help=help_)
    if f.kind == "choice":
        opts = list(f.choices)
        return st.selectbox(label, opts, index=opts.index(f.value) if f.value in opts else 0,
                            key=key, help=help_, format_func=lambda v: v or "(automatic)")
    if f.kind == "strs" and f.name == "fixed_models":
        opts = model_ids + [m for m in f.value if m not in model_ids]
        return st.multiselect(label, opts, default=list(f.value), key=key, help=help_)
    return st.text_input(label, value=display_raw(f.value), key=key, help=help_)


left, right = st.columns([3, 2])
with left, st.form("tuning_form"):
    for group in GROUPS:
        in_group = [f for f in fields if f.group == group]
        if not in_group:
            continue
        st.subheader(group)
        cols = st.columns(3)
        for i, f in enumerate(in_group):
            with cols[i % 3]:
                widget(f)
    b = st.columns(2)
    preview = b[0].form_submit_button("Preview what-if", key="tuning_preview",
                                      help="Replay the logged traffic with these values, without saving")
    saved = b[1].form_submit_button("Save", type="primary", key="tuning_save")

with right:
    try:
        proposed = apply_tunables(current, {f.name: to_raw(f, st.session_state[f"tuning_{f.name}"])
                                            for f in fields}) if preview else current
    except ConfigError as exc:
        st.error(f"Cannot preview: {exc}")
    else:
        render_whatif(engine, proposed)

if saved:
    raw = {f.name: to_raw(f, st.session_state[f"tuning_{f.name}"]) for f in fields}
    try:
        new = store.save(apply_tunables(current, raw))
    except ConfigError as exc:
        st.error(plain(f"Not saved: {exc}"))
    else:
        changed = [k for k, v in new.to_dict().items() if current.to_dict()[k] != v]
        st.success("Saved; effective from the next request."
                   + (f" Changed: {', '.join(changed)}." if changed else " Nothing changed."))
        current = new

if st.button("Reset to defaults", key="tuning_reset"):
    store.reset()
    for f in fields:
        st.session_state.pop(f"tuning_{f.name}", None)
    st.session_state["tuning_flash"] = "Reset to defaults."
    st.rerun()

with st.expander("Stored values"):
    st.json(current.to_dict())
