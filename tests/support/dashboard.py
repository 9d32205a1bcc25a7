"""Helpers for the dashboard tests (AppTest and browser). Fixtures come from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inferscale.settings import REPO_ROOT

from .fakes import fake_model

APP = REPO_ROOT / "app.py"
PAGES = {
    "overview": APP,
    "playground": REPO_ROOT / "pages" / "1_Playground.py",
    "tuning": REPO_ROOT / "pages" / "2_Tuning.py",
    "performance": REPO_ROOT / "pages" / "3_Performance.py",
    "models": REPO_ROOT / "pages" / "4_Models.py",
    "experiments": REPO_ROOT / "pages" / "5_Experiments.py",
}
XSS = "<img src=x onerror=alert(1)> <script>alert(2)</script>"


def dashboard_models() -> list[dict[str, Any]]:
    """Fake remote models: an echo, a constant answer, and a disabled one that always fails 401."""
    prices = {"input_price_per_1m": 1.0, "output_price_per_1m": 2.0, "latency_prior_ms": 50}
    return [
        fake_model("fake-echo", "echo", quality_prior=0.6, **prices),
        fake_model("fake-const", "const-bonjour", quality_prior=0.4, **prices),
        fake_model("fake-fail", "fail-401", quality_prior=0.1, enabled=False, **prices),
    ]


def app_test(page: str, timeout: float = 60, run: bool = True) -> Any:
    """An AppTest of the whole app (so page links resolve), switched to `page` and run once
    (unless run=False: then the caller runs it, e.g. to time the page alone)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=timeout)
    if page != "overview":
        at.run()
        at.switch_page(str(PAGES[page].relative_to(APP.parent)))
    return at.run() if run else at


def all_text(at: Any) -> str:
    """Every text-like value an AppTest run shows, joined (for assertions)."""
    parts: list[str] = []
    for kind in ("markdown", "caption", "text", "error", "warning", "info", "success", "title",
                 "header", "subheader", "code", "json"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    for df in at.dataframe:
        parts.append(df.value.to_csv(index=False))
    return "\n".join(parts)


def no_exception(at: Any) -> None:
    assert not at.exception, [e.value for e in at.exception]


def models_dir_default() -> Path:
    return REPO_ROOT / "data" / "models"


def frame(at: Any, *columns: str) -> Any:
    """The first dataframe shown whose columns include `columns` (AppTest keeps no dataframe keys)."""
    for df in at.dataframe:
        if all(c in df.value.columns for c in columns):
            return df.value
    raise AssertionError(f"no dataframe with columns {columns}")
