"""Who owns a `running` request: this process's pid and start time, and whether an owner lives.

The start time (clock ticks since boot, from /proc) tells a live owner from a later process that
happens to reuse its pid. Without /proc the pid alone is checked.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..process import pid_exists


def _start_ticks(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing ")".
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None  # field 22 overall: starttime


@functools.cache
def current() -> tuple[int, str]:
    """(pid, start time) of this process. Cached per pid: a forked child has its own."""
    pid = os.getpid()
    return pid, _start_ticks(pid) or ""


def me() -> tuple[int, str]:
    pid = os.getpid()
    owner = current()
    if owner[0] != pid:  # forked since the cache was filled
        current.cache_clear()
        owner = current()
    return owner


def alive(pid: int | None, start: str | None) -> bool:
    """Whether the process that started a request may still be running it."""
    if not pid:
        return False
    if pid == os.getpid():
        return start in (None, "", me()[1])
    if Path("/proc").is_dir():
        ticks = _start_ticks(pid)
        return ticks is not None and (not start or ticks == start)
    return pid_exists(pid)
