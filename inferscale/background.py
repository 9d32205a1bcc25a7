"""Writes that a response need not wait for, run by one worker thread in the order they were given.

A request's answer is ready before its bookkeeping is: the cache entries it leaves (L2/L3/L4 and
the L1 vector and its Chroma upsert) and the monitor's rows. Doing those on the
response path was most of the engine's overhead, so `Engine.aask` hands them to a `WriteBehind`
and returns. One thread keeps them in submission order (a request's row is inserted before it is
finished; an entry is written before its hit is counted) and off the event loop.

What stays exact: the cache levels read their own pending writes (`cache.levels`), the sync
`Engine.ask` returns only once its writes are done (the CLI, the dashboard and the tests see
what they did at once), and the queue is drained at exit. A crash (`kill -9`) loses at most the
writes still queued, as it would lose a request still running.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .redact import clip

log = logging.getLogger(__name__)
EXIT_WAIT_S = 60.0  # at interpreter exit, how long the queued writes may still take
# The writer's niceness above the process's: bookkeeping yields the CPU to requests being answered
# (on two cores its embedding pass otherwise slows the next request's own). `MAX_PENDING` bounds
# how far it may fall behind under sustained load: past it, `submit` waits (backpressure).
NICE = 10
MAX_PENDING = 512


class WriteBehind:
    """One worker thread running submitted writes in order; `flush` waits for all given so far."""

    def __init__(self, name: str = "inferscale-writes", on_start: Callable[[], Any] | None = None,
                 max_pending: int = MAX_PENDING, nice: int = NICE) -> None:
        self._name = name
        self._on_start = on_start  # run first in the worker thread (e.g. `embeddings.run_in_background`)
        self._max_pending = max_pending
        self._nice = nice
        self._jobs: queue.SimpleQueue[tuple[int, Callable[[], Any]] | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self.failures = 0  # writes that raised (each logged); figures only, never re-raised

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue `fn(*args, **kwargs)`. After `close`, or from the worker itself, it runs at once.
        Past `max_pending` a caller waits for room, except on a thread running an event loop: there
        it would stop every request the loop serves (the gateway's, under sustained load), so async
        callers wait for room before they start a request instead (`wait_for_room`)."""
        if self._closed or threading.current_thread() is self._thread:
            self._run(lambda: fn(*args, **kwargs))
            return
        on_loop = _on_event_loop()
        with self._cond:
            if self._thread is None:
                self._start()
            if not on_loop:
                self._cond.wait_for(self._has_room)
            self._submitted += 1
            seq = self._submitted
        self._jobs.put((seq, lambda: fn(*args, **kwargs)))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every write submitted before this call is done. False on timeout."""
        if threading.current_thread() is self._thread:
            return True  # a write waiting for the queue it is part of would wait forever
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def _has_room(self) -> bool:
        return self._submitted - self._done < self._max_pending

    @property
    def has_room(self) -> bool:
        with self._cond:
            return self._has_room()

    def wait_for_room(self, timeout: float | None = None) -> bool:
        """Wait until the queue is below `max_pending` (run it in a worker thread from async code)."""
        with self._cond:
            return self._cond.wait_for(self._has_room, timeout)

    @property
    def pending(self) -> int:
        with self._cond:
            return self._submitted - self._done

    def close(self, timeout: float | None = EXIT_WAIT_S) -> None:
        """Drain the queue and stop the worker; later writes run synchronously."""
        self.flush(timeout)
        self._closed = True
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout)
            self._thread = None

    # -- worker ---------------------------------------------------------------------------------
    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()
        # Daemon threads die with the interpreter; the queued writes must not die with them.
        atexit.register(_close_at_exit, weakref.ref(self))

    def _loop(self) -> None:
        if self._nice:
            with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: full priority
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                               os.getpriority(os.PRIO_PROCESS, 0) + self._nice)
        if self._on_start is not None:
            self._run(self._on_start)
        while (job := self._jobs.get()) is not None:
            _, fn = job
            self._run(fn)
            with self._cond:
                self._done += 1
                self._cond.notify_all()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one failed write must not stop the ones after it
            self.failures += 1
            log.warning("a background write failed: %s: %s", type(exc).__name__, clip(str(exc), 300))


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _close_at_exit(ref: weakref.ref[WriteBehind]) -> None:
    if (writer := ref()) is not None:
        writer.close()


__all__ = ["WriteBehind"]
