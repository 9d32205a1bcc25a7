"""Shared helpers: the throw-away environment, the fake OpenAI server, stats and Markdown tables.

`setup_env()` must run before any inferscale object is built: it points INFERSCALE_HOME at a
temporary directory so a benchmark never reads or writes the repository's data/ (apart from reading
data/models.yaml, the registry seed, and using data/models for model files when it exists).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DUMMY_KEY_ENV = "INFERSCALE_BENCH_DUMMY_KEY"
ECHO_ID = "bench-echo"


@dataclass
class Goal:
    name: str
    target: str
    measured: str
    passed: bool | None  # None: informational, or could not be measured
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]


class Env:
    """The temporary home shared by one run; each benchmark gets its own sub-home."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        self._tmp = tempfile.TemporaryDirectory(prefix="inferscale-bench-")
        self.root = Path(self._tmp.name).resolve()
        os.environ["INFERSCALE_HOME"] = str(self.root / "home")
        shared_models = REPO / "data" / "models"
        self.models_dir = shared_models if shared_models.is_dir() else self.root / "models"
        os.environ["INFERSCALE_MODELS_DIR"] = str(self.models_dir)
        os.environ[DUMMY_KEY_ENV] = "dummy-not-a-real-key"
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))  # for tests.support.openai_server
        self._server: Any = None

    def settings(self, name: str) -> Any:
        from inferscale.settings import Settings

        s = Settings.from_env(home=self.root / name)
        assert self.root in s.home.parents, f"benchmark home {s.home} escaped the temp dir"
        return s

    def engine(self, name: str, echo: bool = False) -> Any:
        from inferscale.orchestration.engine import Engine

        engine = Engine(self.settings(name))
        if echo:
            yaml_path = self.root / f"{name}-echo.yaml"
            yaml_path.write_text(
                "models:\n"
                f"  - id: {ECHO_ID}\n"
                "    model: openai/echo\n"
                f"    api_base: {self.server.base_url}\n"
                f"    api_key_env: {DUMMY_KEY_ENV}\n"
                "    tags: [chat]\n",
                encoding="utf-8",
            )
            engine.registry.import_yaml(yaml_path)
        return engine

    @property
    def server(self) -> Any:
        if self._server is None:
            self._server = start_fake_server()
        return self._server

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._tmp.cleanup()


def start_fake_server(nodelay: bool = True) -> Any:
    """The tests' fake OpenAI server (TCP_NODELAY on its sockets unless `nodelay=False`).

    Its handler writes the headers and the body in two small writes on a keep-alive connection;
    with Nagle's algorithm on, the body waits for the client's delayed ACK (~40 ms on Linux), which
    adds a constant ~40 ms to every request and would drown the few milliseconds being measured.
    """
    from tests.support.openai_server import FakeOpenAIServer

    server = FakeOpenAIServer()
    base = server.RequestHandlerClass
    server.RequestHandlerClass = type("Handler", (base,), {"disable_nagle_algorithm": nodelay})
    return server.start()


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def p50(values: Sequence[float]) -> float:
    return pct(values, 50)


def p95(values: Sequence[float]) -> float:
    return pct(values, 95)


def ms(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, headers)) + " |",
             "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def rotated(items: Sequence[Any], i: int) -> list[Any]:
    """Round-robin order so no variant always runs first (or right after the same neighbour)."""
    k = i % len(items)
    return list(items[k:]) + list(items[:k])


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def goals_table(goals: Sequence[Goal]) -> str:
    return table(["goal", "target", "measured", "result", "note"],
                 [(g.name, g.target, g.measured, g.verdict, g.note) for g in goals])


def standalone(run: Callable[[Env], list[Goal]]) -> None:
    """`python -m bench.<module> [--quick]`: run one benchmark on its own."""
    env = Env(quick="--quick" in sys.argv)
    try:
        goals = run(env)
        print()
        print(goals_table(goals))
    finally:
        env.close()
