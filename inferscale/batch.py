"""Batch runs: many prompts from a JSONL file through the engine, concurrently.

    from inferscale.batch import read_jsonl, run_batch_sync
    items = read_jsonl("prompts.jsonl")       # {"prompt": ..., "system"?, "id"?, "expected"?} per line
    summary = run_batch_sync(engine, items, strategy="self-consistency", concurrency=8,
                             on_result=print)

The whole file is validated before anything runs, so a typo on line 900 costs nothing. A request
that fails (every model down, budget too small…) is reported and counted; it never stops the run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import InferscaleError
from .inputs import MAX_JSON_DEPTH, InputFileError, iter_lines, json_depth, text_problem
from .limits import MAX_PROMPT_CHARS
from .orchestration.strategies import build_strategy
from .orchestration.strategies.answers import matches
from .redact import clip, redact

ALLOWED_KEYS = ("prompt", "system", "id", "expected")


class BatchFileError(InputFileError):
    """A JSONL batch file that cannot be run; the message names the line."""


@dataclass(frozen=True)
class BatchItem:
    line: int
    id: str | int
    prompt: str
    system: str | None = None
    expected: str | None = None


@dataclass(frozen=True)
class BatchSummary:
    requests: int
    answered: int
    failed: int
    cost_usd: float
    with_expected: int
    correct: int
    accuracy: float | None  # correct / with_expected, None when no line gave `expected`
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_line(raw: str, line: int, where: str = "batch file") -> BatchItem | None:  # noqa: C901 - one check per field, each with its own message
    """One JSONL line → BatchItem (None for a blank line); BatchFileError names the line."""
    if not raw.strip():
        return None
    at = f"{where} line {line}"
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BatchFileError(f"{at}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise BatchFileError(f"{at}: JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)") from None
    if json_depth(obj) > MAX_JSON_DEPTH:
        raise BatchFileError(f"{at}: JSON nested too deeply (at most {MAX_JSON_DEPTH} levels)")
    if not isinstance(obj, dict):
        raise BatchFileError(f"{at}: expected a JSON object like {{\"prompt\": \"...\"}}")
    unknown = sorted(set(obj) - set(ALLOWED_KEYS))
    if unknown:
        raise BatchFileError(f"{at}: unknown key {unknown[0]!r} (allowed: {', '.join(ALLOWED_KEYS)})")
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BatchFileError(f"{at}: \"prompt\" must be a non-empty string")
    system = obj.get("system")
    if system is not None and not isinstance(system, str):
        raise BatchFileError(f"{at}: \"system\" must be a string")
    ident = obj.get("id", line)
    if not isinstance(ident, str | int) or isinstance(ident, bool):
        raise BatchFileError(f"{at}: \"id\" must be a string or an integer")
    expected = obj.get("expected")
    if expected is not None and (not isinstance(expected, str | int | float) or isinstance(expected, bool)):
        raise BatchFileError(f"{at}: \"expected\" must be a string or a number")
    # Found now, not when the request runs: a NUL or a lone surrogate ("\ud800" is valid JSON)
    # cannot be sent to any model.
    for name, value in (("prompt", prompt), ("system", system), ("id", ident), ("expected", expected)):
        if isinstance(value, str) and (why := text_problem(value)):
            raise BatchFileError(f"{at}: \"{name}\" {why}")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BatchFileError(f"{at}: \"prompt\" has {len(prompt):,} characters, over the "
                             f"{MAX_PROMPT_CHARS:,} limit")
    return BatchItem(line, ident, prompt, system, None if expected is None else str(expected))


def read_jsonl(path: str | Path) -> list[BatchItem]:
    """Every request of a JSONL file, validated before anything runs (a regular file under the
    size cap, a BOM accepted, duplicate ids refused with their line numbers)."""
    p = Path(path)
    items = []
    first_line: dict[str | int, int] = {}
    for n, text in iter_lines(p, BatchFileError):
        if (item := parse_line(text, n, p.name)) is None:
            continue
        if item.id in first_line:
            raise BatchFileError(f"{p.name} line {n}: duplicate id {item.id!r} (first on line "
                                 f"{first_line[item.id]}); ids must be unique")
        first_line[item.id] = n
        items.append(item)
    if not items:
        raise BatchFileError(f"{p.name}: no requests (one JSON object per line, e.g. {{\"prompt\": \"hi\"}})")
    return items


async def run_batch(
    engine: Any,
    items: Sequence[BatchItem],
    *,
    strategy: str | None = None,
    models: list[str] | None = None,
    concurrency: int = 8,
    strategy_options: dict[str, Any] | None = None,
    use_cache: bool = True,
    on_result: Callable[[dict[str, Any]], Any] | None = None,
    source: str = "batch",
) -> BatchSummary:
    """Run every item (at most `concurrency` at once). Each finished request is passed to
    `on_result` as the `ask --json` object plus `id` (and `expected`/`correct` when given); a failed
    one as {"id", "error", "answer": None}."""
    if concurrency < 1:
        raise InferscaleError("--concurrency must be >= 1")
    tun = engine.tunables()
    build_strategy(strategy or tun.default_strategy, tun, strategy_options)  # fail before running
    for m in models or []:
        engine.registry.require_available(m)
    gate = asyncio.Semaphore(concurrency)
    totals = {"answered": 0, "failed": 0, "cost": 0.0, "expected": 0, "correct": 0}
    t0 = time.perf_counter()

    async def one(item: BatchItem) -> None:
        async with gate:
            out: dict[str, Any] = {"id": item.id}
            try:
                result = await engine.aask(item.prompt, system=item.system, strategy=strategy,
                                           models=models, use_cache=use_cache,
                                           strategy_options=strategy_options, source=source)
                out |= result.to_json()
                totals["answered"] += 1
                totals["cost"] += result.cost_usd
            except InferscaleError as exc:
                out |= {"answer": None, "error": redact(str(exc))}
                totals["failed"] += 1
            except Exception as exc:  # noqa: BLE001 - one broken request must not end the run
                out |= {"answer": None, "error": clip(f"{type(exc).__name__}: {exc}", 500)}
                totals["failed"] += 1
            if item.expected is not None:
                out["expected"] = item.expected
                out["correct"] = matches(out.get("answer"), item.expected)
                totals["expected"] += 1
                totals["correct"] += int(out["correct"])
        if on_result is not None:
            # A printed answer is a recorded one, even if the run is killed right after.
            await asyncio.to_thread(engine.flush)
            on_result(out)

    try:
        await asyncio.gather(*(one(i) for i in items))
    finally:  # the requests' records are written behind the answers: all of them before the summary
        await asyncio.to_thread(engine.flush)
    n_exp = totals["expected"]
    return BatchSummary(
        requests=len(items), answered=int(totals["answered"]), failed=int(totals["failed"]),
        cost_usd=totals["cost"], with_expected=int(n_exp), correct=int(totals["correct"]),
        accuracy=(totals["correct"] / n_exp) if n_exp else None, wall_s=time.perf_counter() - t0,
    )


def run_batch_sync(engine: Any, items: Sequence[BatchItem], **kw: Any) -> BatchSummary:
    """Sync wrapper around `run_batch` (runs on the engine's shared event loop)."""
    from .orchestration.runner import run_sync

    return run_sync(run_batch(engine, items, **kw))
