"""Shared fixtures: an isolated INFERSCALE_HOME per test, one model-files directory per session,
one fake OpenAI-compatible server per session, and engines built through the real registry."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inferscale.settings import REPO_ROOT, Settings
from tests.support.fakes import KEY_VAR, LOCAL_IDS, run_cli, write_registry
from tests.support.openai_server import FakeOpenAIServer

# Variables that would leak the developer's real setup into a test.
_CLEARED_ENV = (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "INFERSCALE_MODELS_YAML",
    "INFERSCALE_CALL_TIMEOUT_S",
    "INFERSCALE_CPU_HOUR_USD",
    "INFERSCALE_L1_SCAN_MAX",
)
DEFAULT_FAKE_KEY = "fake-key-for-tests"


def pytest_configure(config: pytest.Config) -> None:
    # Noise from litellm's pydantic models on first use; nothing inferscale can act on.
    config.addinivalue_line("filterwarnings", "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore::pydantic.PydanticDeprecatedSince211")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the Gemma GGUF is assembled: once per session (or reused from the repo's data/models)."""
    repo_models = REPO_ROOT / "data" / "models"
    if repo_models.is_dir():
        return repo_models
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> Path:
    """Every test gets its own INFERSCALE_HOME; model files are shared across the session."""
    path = tmp_path / "home"
    monkeypatch.setenv("INFERSCALE_HOME", str(path))
    monkeypatch.setenv("INFERSCALE_MODELS_DIR", str(models_dir))
    for var in _CLEARED_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(KEY_VAR, DEFAULT_FAKE_KEY)
    return path


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeOpenAIServer]:
    srv = FakeOpenAIServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def server(fake_server: FakeOpenAIServer) -> FakeOpenAIServer:
    """The session's fake server with fresh call counters."""
    fake_server.reset()
    return fake_server


@pytest.fixture
def register(server: FakeOpenAIServer, tmp_path: Path) -> Callable[..., Any]:
    """`register(engine, *entries)`: write a registry YAML of fake models and import it."""
    counter = itertools.count()

    def _register(engine: Any, *entries: dict[str, Any], replace: bool = False) -> list[Any]:
        path = write_registry(tmp_path / f"fake-models-{next(counter)}.yaml", list(entries), server.base_url)
        return engine.registry.import_yaml(path, replace=replace)

    return _register


@pytest.fixture
def make_engine(home: Path, register: Callable[..., Any]) -> Callable[..., Any]:
    """`make_engine(*fake_entries, disable_local=True, **settings_overrides)` → a real Engine on the
    test's home. Local models are disabled by default so routing only sees the fake models."""
    from inferscale import Engine

    def _make(*entries: dict[str, Any], disable_local: bool = True, **overrides: Any) -> Any:
        kw: dict[str, Any] = {"retry_backoff_s": 0.01, "call_timeout_s": 10.0, **overrides}
        engine = Engine(Settings.from_env(home, **kw))
        if entries:
            register(engine, *entries, replace=True)  # test setup may redefine a fake model
        if disable_local:
            for model_id in LOCAL_IDS:
                engine.registry.set_enabled(model_id, False)
        return engine

    return _make


@pytest.fixture
def cli(home: Path) -> Callable[..., Any]:
    """`cli(*args)` runs the real command line with this test's environment (INFERSCALE_HOME etc.)."""

    def _cli(*args: str, timeout: float = 180) -> Any:
        return run_cli(*args, env=dict(os.environ), timeout=timeout)

    return _cli
