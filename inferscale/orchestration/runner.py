"""The thin sync wrapper: one background event loop per process runs every async call.

A persistent loop (rather than `asyncio.run` per call) keeps litellm's pooled HTTP clients bound to
a loop that stays alive, and lets several threads (Streamlit sessions, test workers) share it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
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
