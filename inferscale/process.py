"""Whether a process id is still taken: shared by the request-owner check (monitor) and the Chroma
server discovery (cache), which both outlive the processes they point at."""

from __future__ import annotations

import os


def pid_exists(pid: int) -> bool:
    """True while `pid` names a live process (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
