"""The cycle collector paused while the replay builds and walks the log.

A replay of 100,000 requests holds millions of live objects (the records, their strings, the
neighbour lists) and allocates many short-lived ones (the verifier's profiles and comparisons).
Every allocation burst then triggers collections, and each full one walks every live object:
with 100,000 logged requests that was a third of the cache replays' time. The replay makes no
reference cycles worth collecting early; whatever it leaves is collected once the pause ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0  # pauses open now (the Tuning page may replay in several sessions' threads at once)
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cycle collector off; the first pause in records whether it was on,
    the last one out turns it back on if so (nested and concurrent pauses are safe)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
