"""The thin sync wrapper: one background event loop per process runs every async call.

A persistent loop (rather than `asyncio.run` per call) keeps litellm's pooled HTTP clients bound to
a loop that stays alive, and lets several threads (Streamlit sessions, test workers) share it.
`Hops` is the other side of that loop: the engine's own threads for the blocking work it awaits.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, daemon=True, name="inferscale-loop").start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run `coro` on the shared loop and wait for its result from any thread."""
    future = asyncio.run_coroutine_threadsafe(coro, _get_loop())
    try:
        return future.result(timeout)
    except BaseException:
        future.cancel()
        raise


class Hops:
    """The engine's own worker threads for its blocking hops (SQLite, Chroma, the embedding model).

    Not the loop's default executor: litellm hops there for every call (its sync `completion`
    builds the request) and runs its logging callbacks there, and local models generate there for
    seconds at a time, so a cache lookup waited behind work it has no part in. Measured with
    `bench/gateway.py` (eight runs of each in turn, 2 cores): exact hits +20% req/s; misses at the
    same req/s with a p99 85-145 ms lower and a p50 10-20 ms higher; 3 or 4 threads were no better.
    Like `asyncio.to_thread`, a cancelled caller does not stop the worker.
    """

    def __init__(self, threads: int, name: str = "inferscale-engine") -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        ctx = contextvars.copy_context()  # what `to_thread` carries over: log context, request vars
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(ctx.run, fn, *args))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
