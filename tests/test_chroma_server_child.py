"""The Chroma server `serve` starts dies with it, however `serve` ends (here: kill -9, which runs
no `finally`), so no orphan keeps its port and the directory lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from inferscale.process import pid_exists
from inferscale.settings import REPO_ROOT

PARENT = """
import sys, time
from pathlib import Path
from inferscale.cache import chroma_server
server = chroma_server.ChromaServer(Path(sys.argv[1])).start()
print(server.proc.pid, flush=True)
time.sleep(600)
"""


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by whoever adopted it, maybe never)."""
    if not pid_exists(pid):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux-only")
def test_the_chroma_server_ends_when_its_parent_is_killed(tmp_path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path / "chroma")],
                              env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # printed once the server answers its heartbeat
        assert pid_exists(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), f"the Chroma server {child} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
