"""End to end in headless chromium: the Experiments page draws the cost–accuracy chart with the
Pareto front for an experiment run against patterned fake models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferscale.orchestration.engine import Engine
from inferscale.registry import ModelSpec
from inferscale.settings import Settings
from tests.support.fakes import KEY_VAR

from .conftest import snap
from .test_dashboard_browser import goto

pytestmark = pytest.mark.browser


def _experiment(home: Path, base_url: str) -> None:
    from inferscale.experiments.datasets import Dataset, Item
    from inferscale.experiments.runner import ExperimentSpec, RunConfig, prepare, run_experiment
    from inferscale.orchestration.runner import run_sync

    engine = Engine(Settings.from_env(home))
    engine.registry.upsert([
        ModelSpec(id=i, model=f"openai/{b}", api_base=base_url, api_key_env=KEY_VAR, input_price_per_1m=0,
                  output_price_per_1m=p)
        for i, b, p in (("e2e-even", "parity-even", 1000), ("e2e-sure", "nth-1", 3000),
                        ("e2e-nth", "nth-4-e2e", 1000))])
    items = tuple(Item(f"q{i}", f"item {i}: say {i}", expected=str(i)) for i in range(8))
    ds = Dataset("patterned", items)
    spec = ExperimentSpec("browser-pareto", "patterned", (
        RunConfig("even", "single", ("e2e-even",)), RunConfig("sure", "single", ("e2e-sure",)),
        RunConfig("sc", "self-consistency", ("e2e-nth",), {"n": 4, "early_stop": False})),
        items=len(items), cache=False)
    prepare(engine, spec, ds, resume=False)
    assert run_sync(run_experiment(engine, spec, ds)) == "done"
    for m in ("e2e-even", "e2e-sure", "e2e-nth"):
        engine.registry.set_enabled(m, False)  # leave the other browser tests' routing alone
    engine.database.close()


def test_experiments_page_draws_the_pareto_front(page: Any, app_url: str, e2e_home: Path,
                                                 fake_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VAR, "fake-key-for-e2e")
    _experiment(e2e_home, fake_server.base_url)
    goto(page, f"{app_url}/Experiments")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=60_000)
    assert page.locator(".legendtext", has_text="Pareto front").count() == 1
    # Two traces: the configs (markers with error bars) and the front (a drawn line through 2 points).
    lines = chart.locator(".scatterlayer .trace path.js-line")
    assert lines.count() >= 1
    d = lines.last.get_attribute("d") or ""
    assert d.startswith("M") and "L" in d, d
    assert chart.locator(".scatterlayer .trace .points path").count() == 3  # even, sure, sc
    assert chart.locator(".errorbar").count() >= 3
    snap(page, "experiments", docs=True)
