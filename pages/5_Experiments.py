"""Experiments: run strategies × models over a dataset, then see what combining models buys.

A run started here goes on in the server's background (closing the tab does not stop it); every
result is in SQLite, so experiments are listed again after a restart.
"""

import os

import streamlit as st

from dashboard import experiments as ex
from dashboard.common import _ENV, page
from inferscale.errors import InferscaleError
from inferscale.experiments import datasets, report
from inferscale.experiments.cli import parse_options
from inferscale.experiments.runner import RunConfig
from inferscale.experiments.store import ExperimentStore
from inferscale.orchestration.strategies import STRATEGIES

engine = page("Experiments", ":material/science:")
runs = ex.background_runs(tuple(os.environ.get(k, "") for k in _ENV))
store = ExperimentStore(engine.database)
st.title("Experiments")
st.caption("Selected accuracy is the strategy's chosen answer; pass@k (oracle) counts an item if any "
           "candidate was right. Error bars are Wilson 95% intervals.")

if flash := st.session_state.pop("exp_flash", None):
    st.success(flash)

with st.expander("New experiment", expanded=not store.list()):
    source = st.selectbox("Dataset", [*datasets.DATASETS, "Upload JSONL"], key="exp_dataset")
    upload = st.file_uploader("JSONL file", type=["jsonl"], key="exp_upload") if source == "Upload JSONL" else None
    c = st.columns(2)
    strategies = c[0].multiselect("Strategies (one config each)", list(STRATEGIES), default=["single"],
                                  key="exp_strategies")
    models = c[1].multiselect("Models", [s.id for s in engine.registry.available()], key="exp_models")
    c = st.columns(4)
    limit = c[0].number_input("Limit (items)", min_value=1, value=10, step=1, key="exp_limit")
    budget = c[1].number_input("Budget $ (0 = none)", min_value=0.0, value=0.0, format="%.4f", key="exp_budget")
    verifier = c[2].checkbox("Verifier auto", value=True, key="exp_verifier",
                             help="The dataset's own answer-free verifier guides best-of-n, tree-search, cascade")
    name = c[3].text_input("Name", key="exp_name", placeholder="e.g. eq-gemma")
    options = st.text_input("Options KEY=VALUE,… (to the strategies that have them)", key="exp_options")
    if st.button("Start", key="exp_start", type="primary"):
        try:
            if source == "Upload JSONL":
                if upload is None:
                    raise InferscaleError("choose a JSONL file to upload")
                ds = ex.load_uploaded(upload.name, upload.getvalue(), int(limit))
            else:
                ds = datasets.load(source, int(limit))
            if not name.strip():
                raise InferscaleError("give the experiment a name")
            if not strategies:
                raise InferscaleError("pick at least one strategy")
            spec = ex.spec_from_form(name.strip(), ds, strategies, models, parse_options(options),
                                     verifier and ds.has_verifier, int(limit), budget or None)
            runs.start(engine, spec, ds)
            st.session_state["exp_selected"] = spec.name
            st.session_state["exp_flash"] = f"Started {spec.name}: {len(ds.items)} items × {len(strategies)} configs."
            st.rerun()
        except (InferscaleError, RuntimeError) as exc:
            st.error(str(exc))

listed = store.list()
if not listed:
    st.info("No experiments yet: start one above, or run `inferscale eval` from a terminal.")
    st.stop()

st.dataframe([{"name": e["name"], "dataset": e["dataset"], "status": e["status"], "results": e["results"],
               "configs": ", ".join(c["name"] for c in e["spec"].get("configs", []))} for e in listed],
             hide_index=True, key="exp_list")
names = [e["name"] for e in listed]
if st.session_state.get("exp_selected") not in names:
    st.session_state["exp_selected"] = names[0]
selected = st.selectbox("Experiment", names, key="exp_selected")


@st.fragment(run_every=2 if runs.running(selected) else None)
def live() -> None:
    summ, rows, spec = ex.summary(store, selected)
    total = (spec.items or 0) * len(spec.configs)
    if runs.running(selected):
        p = runs.progress(selected)
        st.progress(min(1.0, len(rows) / total) if total else 0.0,
                    text=f"{len(rows)}/{total} results, ${(p.spent_usd if p else 0):.6f} spent"
                         + (f", ETA {p.eta_s:.0f} s" if p and p.eta_s is not None else ""))
        if st.button("Stop", key="exp_stop"):
            runs.stop(selected)
    else:
        st.caption(f"Status: {summ['status']} — {len(rows)}/{total} results")
    if err := runs.error(selected):
        st.error(err)
    st.plotly_chart(ex.cost_accuracy_chart(summ), key="exp_chart")
    st.dataframe(ex.configs_frame(summ), hide_index=True, key="exp_configs")
    if curves := report.scaling(summ):
        st.caption("Scaling: configs of one strategy and model set that differ in n or budget")
        st.plotly_chart(ex.scaling_chart(curves), key="exp_scaling")


live()
summ, rows, spec = ex.summary(store, selected)
config_names = [c.name for c in spec.configs]
c = st.columns(2)
c[0].download_button("Download CSV", ex.results_csv(rows), f"{selected}.csv", "text/csv", key="exp_csv")
c[1].download_button("Download JSON", ex.results_json(summ, rows), f"{selected}.json", "application/json",
                     key="exp_json")

st.subheader("Items")
baseline = st.selectbox("Baseline", config_names, key="exp_baseline")
st.dataframe(ex.items_frame(rows, baseline, config_names), hide_index=True, key="exp_items")
item_ids = list(dict.fromkeys(r["item_id"] for r in sorted(rows, key=lambda r: r["seq"])))
if item_ids:
    chosen = st.selectbox("Item", item_ids, key="exp_item")
    head, table = ex.item_detail(rows, chosen)
    st.text(f"Prompt: {head['prompt']}")
    st.text(f"Expected: {head['expected']}")
    st.dataframe(table, hide_index=True, key="exp_item_table")

if len(config_names) >= 2:
    st.subheader("Compare two configs")
    c = st.columns(2)
    a = c[0].selectbox("A", config_names, index=0, key="exp_cmp_a")
    b = c[1].selectbox("B", config_names, index=1, key="exp_cmp_b")
    result, diff = ex.compare(rows, a, b)
    st.markdown(f"**{b}** vs **{a}**: gained {result['gained']}, lost {result['lost']}, "
                f"exact McNemar p = {result['p_value']:.4f}")
    st.dataframe(diff, hide_index=True, key="exp_cmp_table")

st.subheader("Use as default")
pick = st.selectbox("Config", config_names, key="exp_default_config")
if st.button("Use as default", key="exp_use_default"):
    cfg: RunConfig = next(c for c in spec.configs if c.name == pick)
    try:
        written, skipped = ex.use_as_default(engine, cfg)
        st.session_state["exp_flash"] = (f"{pick} is the default now ({', '.join(written)})"
                                         + (f"; not a tunable, left out: {', '.join(skipped)}" if skipped else ""))
        st.rerun()
    except InferscaleError as exc:
        st.error(str(exc))
