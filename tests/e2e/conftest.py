"""Browser fixtures: a real `streamlit run app.py` on 127.0.0.1 and Debian's headless chromium
driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inferscale.orchestration.engine import Engine
from inferscale.settings import REPO_ROOT, Settings
from tests.support.fakes import KEY_VAR

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = REPO_ROOT / "artifacts" / "e2e"
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
_SECRET_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "INFERSCALE_MODELS_YAML")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(reason=f"{CHROMIUM} missing (apt-get install -y chromium)")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def e2e_home(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """A fresh home: the default registry (the two local models enabled), small answers, ensemble."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    engine = Engine(Settings.from_env(home, models_dir_override=models_dir))
    for key, value in (("max_tokens", "24"), ("default_strategy", "ensemble"), ("ensemble_k", "2")):
        engine.tunables_store.set(key, value)
    engine.database.close()
    return home


@pytest.fixture(scope="module")
def app_url(e2e_home: Path, models_dir: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    env.update(INFERSCALE_HOME=str(e2e_home), INFERSCALE_MODELS_DIR=str(models_dir), PYTHONUNBUFFERED="1")
    env[KEY_VAR] = "fake-key-for-e2e"  # for the fake echo model some tests register
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "streamlit.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"streamlit did not start; see {ARTIFACTS / 'streamlit.log'}")
        time.sleep(0.3)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context per test; a screenshot is kept in artifacts/ whatever the outcome."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    pg = context.new_page()
    dialogs: list[str] = []
    pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    pg.dialogs = dialogs  # an alert() from injected HTML would land here
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=True)
    finally:
        context.close()


def snap(page: Any, name: str, docs: bool = False) -> None:
    """Save a screenshot of the whole page as a test artifact; with INFERSCALE_UPDATE_SCREENSHOTS=1
    the README's copy in docs/screenshots is refreshed too (so a plain test run leaves the tree
    clean). Streamlit scrolls inside its own container, so the viewport is stretched to the
    content's height first."""
    docs = docs and os.environ.get("INFERSCALE_UPDATE_SCREENSHOTS") == "1"
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll("
        "'[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"]')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 5000))})
    page.wait_for_timeout(800)  # let charts re-layout
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        if docs:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    finally:
        page.set_viewport_size(size)
