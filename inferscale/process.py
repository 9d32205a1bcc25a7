"""Process helpers: whether a process id is still taken (shared by the request-owner check in the
monitor and the Chroma server discovery in the cache, which both outlive the processes they point
at), and a child that dies with its parent."""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def pid_exists(pid: int) -> bool:
    """True while `pid` names a live process (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent() -> None:
    """`preexec_fn` for a helper child (the Chroma server): on Linux it gets SIGTERM when the
    process that started it ends, however that ends (`kill -9`, a signal before a `finally` runs),
    so no orphan keeps a port and a directory lock. Elsewhere a no-op. The signal follows the
    *thread* that started the child: start it from one that lives as long as it should."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    # Without prctl the parent's own stop() still ends the child.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
