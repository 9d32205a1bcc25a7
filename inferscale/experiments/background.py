"""Experiments started from the dashboard run here: one daemon thread per experiment, owned by
the process (the dashboard keeps one `BackgroundRuns` beside its cached engine), so a run goes
on when the browser tab that started it closes. Progress and results live in SQLite; this only
holds what is running now and lets it be stopped."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .datasets import Dataset
from .runner import ExperimentSpec, Progress, prepare, run_experiment


@dataclass
class _Run:
    thread: threading.Thread
    stop: threading.Event
    progress: Progress | None = None
    status: str = "running"
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class BackgroundRuns:
    def __init__(self) -> None:
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()

    def start(self, engine: Any, spec: ExperimentSpec, dataset: Dataset, resume: bool = False) -> None:
        """Validate and claim the name now (errors raise here, in the caller), then run in the
        background."""
        with self._lock:
            if self.running(spec.name):
                raise RuntimeError(f"experiment {spec.name!r} is already running")
            prepare(engine, spec, dataset, resume)
            stop = threading.Event()
            run = _Run(threading.Thread(target=self._work, args=(engine, spec, dataset),
                                        name=f"experiment-{spec.name}", daemon=True), stop)
            self._runs[spec.name] = run
            run.thread.start()

    def _work(self, engine: Any, spec: ExperimentSpec, dataset: Dataset) -> None:
        from ..orchestration.runner import run_sync

        run = self._runs[spec.name]

        def on_progress(p: Progress) -> None:
            run.progress = p

        try:
            run.status = run_sync(run_experiment(engine, spec, dataset, on_progress=on_progress,
                                                 stop=run.stop))
        except Exception as exc:  # noqa: BLE001 - shown on the page; the rows stored so far stay
            run.status, run.error = "interrupted", f"{type(exc).__name__}: {exc}"

    def running(self, name: str) -> bool:
        run = self._runs.get(name)
        return run is not None and run.thread.is_alive()

    def progress(self, name: str) -> Progress | None:
        run = self._runs.get(name)
        return run.progress if run else None

    def error(self, name: str) -> str | None:
        run = self._runs.get(name)
        return run.error if run else None

    def stop(self, name: str) -> None:
        if run := self._runs.get(name):
            run.stop.set()

    def wait(self, name: str, timeout: float | None = None) -> bool:
        run = self._runs.get(name)
        if run is not None:
            run.thread.join(timeout)
        return not self.running(name)
