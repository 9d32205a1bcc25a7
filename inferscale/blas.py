"""One BLAS thread for the numpy work of routing and replay.

Routing a prompt is one matrix-vector product and training/replay are many small products: on a
busy two-core machine OpenBLAS's second thread mostly waits for the first (a 10,000 x 384 product
took 22 ms with two threads and 1.4 ms with one under the same load). The limit applies only
inside `single_thread()`, never to the rest of the process.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

_controller: Any = None
_lock = threading.Lock()


def single_thread() -> Any:
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # only speed is lost
        return contextlib.nullcontext()
    with _lock:
        if _controller is None:
            _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
