"""End to end in headless chromium against `streamlit run app.py` (one server for the module).

The tests run in file order: the Playground request leaves real rows that Performance and the
overview then show next to seeded synthetic ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from inferscale.config_store import TunablesStore
from inferscale.db import Database
from inferscale.registry import ModelSpec, Registry
from inferscale.settings import Settings
from inferscale.tools.seed import seed_synthetic
from tests.support.fakes import KEY_VAR

from .conftest import ARTIFACTS, snap

pytestmark = pytest.mark.browser

LOCAL = ("local/smollm2-135m-instruct", "local/gemma-3-270m")
XSS = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
SLOW_MS = 300_000  # the first request loads the embedding model and both GGUF models


def goto(page: Any, url: str) -> None:
    page.goto(url)
    wait_idle(page)


def wait_idle(page: Any, timeout_ms: int = 60_000) -> None:
    """Wait until the app has rendered and its script is no longer running (while it runs,
    Streamlit shows a status widget with a Stop button in the header)."""
    page.wait_for_selector('[data-testid="stAppViewContainer"]', timeout=timeout_ms)
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && ![...document.querySelectorAll('header button')].some(b => b.innerText.trim() === 'Stop')",
        timeout=timeout_ms,
    )


def registry(home: Path) -> Registry:
    return Registry(Database(Settings.from_env(home).db_path))


def test_playground_shows_both_local_models_and_the_final_answer(page: Any, app_url: str) -> None:
    goto(page, f"{app_url}/Playground")
    page.get_by_role("button", name="Run").wait_for(timeout=60_000)
    page.get_by_label("Prompt", exact=True).fill("What is the capital of France?")
    page.get_by_role("button", name="Run").click()
    # Cards appear while the models run (this first request also loads both GGUF files)…
    page.locator(".st-key-pg_live_0").wait_for(timeout=SLOW_MS)
    assert page.get_by_text("Final answer", exact=True).count() == 0
    # …and the final answer follows.
    page.get_by_text("Final answer", exact=True).first.wait_for(timeout=SLOW_MS)
    wait_idle(page, SLOW_MS)
    cards = page.locator('[class*="st-key-pg_live_final_"]')
    assert cards.count() == 2
    texts = [cards.nth(i).inner_text() for i in range(2)]
    for model in LOCAL:
        card = next(t for t in texts if model in t)
        assert "tokens" in card and " ms" in card and "L3" in card  # latency, tokens, cache status
    final = page.locator(".st-key-pg_final").inner_text().strip()
    assert final  # the consensus answer
    # The result's metrics render after the final card; on a loaded machine a read right after idle
    # could come before them (a CI run saw the cards without the metrics once).
    page.get_by_text("Agreement").first.wait_for(timeout=SLOW_MS)
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Agreement" in body and "Complexity" in body and "tier" in body  # routing reason
    # The step timeline (the ensemble's agreement bars are a chart of their own).
    timeline = page.locator('.st-key-pg_timeline [data-testid="stPlotlyChart"]')
    timeline.locator(".main-svg").first.wait_for()
    assert timeline.count() == 1
    steps = timeline.text_content()
    for step in ("analysis", "cache", "routing", "execution", "monitoring"):
        assert step in steps
    snap(page, "playground", docs=True)


def test_model_html_is_shown_as_text_in_the_browser(page: Any, app_url: str, e2e_home: Path,
                                                    fake_server: Any) -> None:
    reg = registry(e2e_home)
    reg.upsert([ModelSpec(id="fake-echo", model="openai/echo", api_base=fake_server.base_url,
                          api_key_env=KEY_VAR)])
    try:
        goto(page, f"{app_url}/Playground")
        page.get_by_role("button", name="Run").wait_for(timeout=60_000)
        page.get_by_label("Prompt", exact=True).fill(XSS)
        page.get_by_role("combobox", name="Models").click()
        page.get_by_role("option", name="fake-echo").click()
        page.keyboard.press("Escape")
        page.locator('[data-testid="stSelectbox"]').first.click()  # strategy
        page.get_by_role("option", name="single").click()
        page.get_by_role("button", name="Run").click()
        page.get_by_text("Final answer", exact=True).first.wait_for(timeout=SLOW_MS)
        wait_idle(page, SLOW_MS)
        final = page.locator(".st-key-pg_final")
        assert XSS in final.inner_text()  # visible as text
        assert final.locator("img, script").count() == 0  # never injected
        assert page.locator('[data-testid="stMain"] img[src="x"]').count() == 0
        assert page.dialogs == []  # no alert() ran
        snap(page, "playground-html-as-text")
    finally:
        reg.set_enabled("fake-echo", False)


def test_tuning_change_persists_after_reload(page: Any, app_url: str, e2e_home: Path) -> None:
    goto(page, f"{app_url}/Tuning")
    page.get_by_text("Stored values").wait_for(timeout=60_000)
    wait_idle(page)  # the what-if preview of the logged traffic renders first; edit after it
    box = page.get_by_label("Complexity thresholds", exact=True)
    expect(box).to_have_value("0.35, 0.65", timeout=60_000)
    box.fill("0.3, 0.7")
    page.get_by_role("button", name="Save").click()
    # The save's rerun replays the logged traffic for the what-if preview too: slow on a busy machine.
    page.get_by_text("Saved; effective from the next request").wait_for(timeout=120_000)
    page.reload()
    page.get_by_text("Stored values").wait_for(timeout=60_000)
    wait_idle(page)
    expect(page.get_by_label("Complexity thresholds", exact=True)).to_have_value("0.3, 0.7", timeout=60_000)
    expect(page.get_by_label("Max tokens", exact=True)).to_have_value("24", timeout=60_000)  # untouched fields kept
    stored = TunablesStore(Database(Settings.from_env(e2e_home).db_path)).load()
    assert stored.complexity_thresholds == (0.3, 0.7) and stored.max_tokens == 24
    snap(page, "tuning", docs=True)
    # And an invalid value is refused with the reason.
    page.get_by_label("Complexity thresholds", exact=True).fill("0.9, 0.1")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("must be ascending").wait_for(timeout=30_000)
    snap(page, "tuning-invalid")


def test_performance_charts_with_100k_requests(page: Any, app_url: str, e2e_home: Path) -> None:
    seed_synthetic(Database(Settings.from_env(e2e_home).db_path), 100_000)
    t0 = time.perf_counter()
    page.goto(f"{app_url}/Performance")
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 6",
        timeout=60_000)
    elapsed = time.perf_counter() - t0
    wait_idle(page)
    (ARTIFACTS / "performance-render-seconds.txt").write_text(f"{elapsed:.2f}\n")
    print(f"browser: Performance page with 100k requests showed 6 charts in {elapsed:.2f} s")
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 6
    assert page.locator('[data-testid="stDownloadButton"]').count() >= 7
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "100,001" in body or "100,002" in body  # synthetic rows plus the real requests
    snap(page, "performance", docs=True)


def test_overview_and_models_pages(page: Any, app_url: str) -> None:
    goto(page, app_url)
    page.get_by_text("Last requests").wait_for(timeout=60_000)
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
    wait_idle(page)
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "Requests" in body and "Saved by the cache" in body and "100,00" in body
    assert "L4 final result" in body
    snap(page, "overview", docs=True)
    goto(page, f"{app_url}/Models")
    page.get_by_text("Add or edit a model").wait_for(timeout=60_000)
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert "OPENAI_API_KEY" in body  # unavailable remote models name their key variable
    snap(page, "models", docs=True)
