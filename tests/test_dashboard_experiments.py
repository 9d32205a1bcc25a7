"""AppTest: the Experiments page — list, chart with the Pareto front, tables, drill-down, compare,
downloads, "Use as default", and a run started from the page that goes on in the background."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from inferscale.experiments.stats import wilson
from tests.support.dashboard import all_text, app_test, frame, no_exception
from tests.support.fakes import fake_model

PRICE = {"input_price_per_1m": 0, "output_price_per_1m": 1000}


def _run_patterned(engine: Any) -> None:
    from inferscale.experiments.datasets import Dataset, Item
    from inferscale.experiments.runner import ExperimentSpec, RunConfig, prepare, run_experiment
    from inferscale.orchestration.runner import run_sync

    items = tuple(Item(f"q{i}", f"item {i}: say {i}", expected=str(i)) for i in range(6))
    ds = Dataset("patterned", items)
    spec = ExperimentSpec("pat", "patterned", (
        RunConfig("even", "single", ("even",)),
        RunConfig("sure", "single", ("sure",)),
        RunConfig("sc", "self-consistency", ("nth4",), {"n": 4, "early_stop": False})),
        baseline="even", items=len(items), concurrency=2)
    prepare(engine, spec, ds, resume=False)
    assert run_sync(run_experiment(engine, spec, ds)) == "done"


@pytest.fixture
def engine(make_engine: Any) -> Any:
    e = make_engine(fake_model("even", "parity-even", **PRICE),
                    fake_model("sure", "nth-1", input_price_per_1m=0, output_price_per_1m=3000),
                    fake_model("nth4", "nth-4-d", **PRICE))
    _run_patterned(e)
    return e


def test_results_chart_tables_and_drill_down(engine: Any) -> None:
    at = app_test("experiments")
    no_exception(at)
    assert at.selectbox(key="exp_selected").value == "pat"
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t.get("name") for t in chart["data"]]
    assert names == ["configs", "Pareto front"]
    front = chart["data"][1]
    assert front["x"] == pytest.approx([0.001, 0.003]) and front["y"] == [0.5, 1.0]  # even, sure
    lo, hi = wilson(3, 6)
    assert chart["data"][0]["error_y"]["array"][0] == pytest.approx(hi - 0.5)
    assert chart["data"][0]["error_y"]["arrayminus"][0] == pytest.approx(0.5 - lo)
    configs = frame(at, "config", "pass@k", "$/item")
    assert list(configs["config"]) == ["even", "sure", "sc"]
    assert list(configs["accuracy"]) == [0.5, 1.0, 0.0] and list(configs["pass@k"].fillna(-1)) == [-1, -1, 1.0]
    items = frame(at, "item_id", "fixed by")
    assert list(items["item_id"]) == [f"q{i}" for i in range(6)]
    assert list(items.columns[1:4]) == ["even", "sure", "sc"]
    assert list(items["fixed by"]) == ["", "sure", "", "sure", "", "sure"]
    assert list(items["broken by"]) == ["sc", "", "sc", "", "sc", ""]
    at.selectbox(key="exp_item").select("q3").run()
    detail = frame(at, "config", "answer", "reason")
    assert dict(zip(detail["config"], detail["answer"], strict=True)) == {"even": "4", "sure": "3", "sc": "4"}
    assert "Prompt: item 3: say 3" in all_text(at)
    at.selectbox(key="exp_cmp_a").select("even")
    at.selectbox(key="exp_cmp_b").select("sure").run()
    assert "gained 3, lost 0" in all_text(at)
    no_exception(at)


def test_use_as_default_writes_the_tunables(engine: Any) -> None:
    at = app_test("experiments")
    at.selectbox(key="exp_default_config").select("sc")
    at.button(key="exp_use_default").click().run()
    no_exception(at)
    tun = engine.tunables()
    assert (tun.default_strategy, tun.fixed_models, tun.default_router, tun.samples_n) == \
        ("self-consistency", ("nth4",), "fixed", 4)
    assert "left out: early_stop" in all_text(at)


def test_a_run_started_from_the_page_goes_on_in_the_background(engine: Any) -> None:
    from inferscale.experiments.store import ExperimentStore

    at = app_test("experiments")
    at.selectbox(key="exp_dataset").select("verifiable")
    at.multiselect(key="exp_strategies").set_value(["single"])
    at.multiselect(key="exp_models").set_value(["sure"])
    at.number_input(key="exp_limit").set_value(8)
    at.text_input(key="exp_name").input("from-page")
    at.button(key="exp_start").click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    store = ExperimentStore(engine.database)
    deadline = time.time() + 60  # the page's script has returned: the run is the background thread's
    while time.time() < deadline and (store.get("from-page")["status"] == "running"):
        time.sleep(0.1)
    assert store.get("from-page")["status"] == "done"
    assert len(store.results("from-page")) == 8
    at2 = app_test("experiments")  # a new session (a restart of the page) lists both
    listed = frame(at2, "name", "status", "results")
    assert set(listed["name"]) == {"pat", "from-page"}


def test_a_bad_start_shows_one_error_and_starts_nothing(engine: Any) -> None:
    from inferscale.experiments.store import ExperimentStore

    at = app_test("experiments")
    at.text_input(key="exp_name").input("pat")  # taken
    at.multiselect(key="exp_models").set_value(["even"])
    at.button(key="exp_start").click().run()
    no_exception(at)
    assert "already exists" in " ".join(e.value for e in at.error)
    assert len(ExperimentStore(engine.database).list()) == 1
