"""The dashboard loads nothing chosen by a model or a provider: a hostile answer (images inline and
by reference, autolinks, HTML, TeX) and a hostile error are shown while every browser request is
intercepted; nothing may go to another origin, and no link to the hostile host is clickable."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from inferscale.registry import ModelSpec
from tests.support.fakes import KEY_VAR

from .conftest import snap
from .test_dashboard_browser import SLOW_MS, goto, registry, wait_idle

pytestmark = pytest.mark.browser


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def foreign(page: Any, app_url: str) -> list[str]:
    """Every request the page makes to an origin other than the app's (aborted, and recorded)."""
    seen: list[str] = []
    app = _origin(app_url)

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or _origin(url) == app:
            route.continue_()
        else:
            seen.append(url)
            route.abort()

    page.context.route("**/*", handle)
    page.on("request", lambda r: None if _origin(r.url) == app or r.url.startswith(("data:", "blob:"))
            else seen.append(r.url))
    return seen


def _ask(page: Any, app_url: str, model: str, prompt: str) -> None:
    goto(page, f"{app_url}/Playground")
    page.get_by_role("button", name="Run").wait_for(timeout=60_000)
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("combobox", name="Models").click()
    page.get_by_role("option", name=model).click()
    page.keyboard.press("Escape")
    page.locator('[data-testid="stSelectbox"]').first.click()  # strategy
    page.get_by_role("option", name="single").click()
    page.get_by_role("button", name="Run").click()


def test_hostile_answer_and_error_fetch_nothing(page: Any, app_url: str, e2e_home: Path,
                                                fake_server: Any, foreign: list[str]) -> None:
    hostile = fake_server.hostile_origin
    host = urlsplit(hostile).hostname
    reg = registry(e2e_home)
    reg.upsert([
        ModelSpec(id="fake-hostile-md", model="openai/hostile-md", api_base=fake_server.base_url,
                  api_key_env=KEY_VAR),
        ModelSpec(id="fake-hostile-error", model="openai/hostile-error", api_base=fake_server.base_url,
                  api_key_env=KEY_VAR),
    ])
    try:
        _ask(page, app_url, "fake-hostile-md", "answer with pictures please")
        page.get_by_text("Final answer", exact=True).first.wait_for(timeout=SLOW_MS)
        wait_idle(page, SLOW_MS)
        page.wait_for_timeout(1500)  # give any lazy image time to be requested
        main = page.locator('[data-testid="stMain"]')
        final = page.locator(".st-key-pg_final")
        text = final.inner_text()
        # Alt text and target shown as text; links show where they go.
        assert "image: tracking pixel" in text and f"{hostile}/pixel.png" in text
        assert "Re-authenticate here" in text and f"{hostile}/phish" in text
        assert final.locator("img, iframe, script").count() == 0
        bad = main.locator(f'img[src*="{host}"], iframe, a[href*="{host}"]')
        assert bad.count() == 0, [bad.nth(i).evaluate("e => e.outerHTML") for i in range(bad.count())]
        snap(page, "playground-hostile-answer")

        _ask(page, app_url, "fake-hostile-error", "fail with a link")
        page.get_by_text("Request failed").first.wait_for(timeout=SLOW_MS)
        wait_idle(page, SLOW_MS)
        page.wait_for_timeout(1500)
        errors = page.locator('[data-testid="stAlertContentError"]')
        shown = " ".join(errors.nth(i).inner_text() for i in range(errors.count()))
        assert "Re-authenticate here" in shown and f"{hostile}/phish" in shown and "err.png" in shown
        assert main.locator(f'img[src*="{host}"], a[href*="{host}"]').count() == 0
        snap(page, "playground-hostile-error")

        # The Models page's connection test shows the same error as text.
        goto(page, f"{app_url}/Models")
        page.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name="fake-hostile-error", exact=True).click()
        page.get_by_role("button", name="Test connection").click()
        page.get_by_text("fake-hostile-error failed").wait_for(timeout=SLOW_MS)
        page.wait_for_timeout(1500)
        assert main.locator(f'img[src*="{host}"], a[href*="{host}"]').count() == 0
    finally:
        reg.set_enabled("fake-hostile-md", False)
        reg.set_enabled("fake-hostile-error", False)
    assert foreign == [], sorted(set(foreign))  # nothing was fetched from any other origin
    assert page.dialogs == []
