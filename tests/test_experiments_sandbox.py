"""The code sandbox: candidates that loop, fork, allocate or reach for the network are killed or
refused and scored 0 with the reason; a correct one passes. Real subprocesses, real limits."""

from __future__ import annotations

import os
import time

import pytest

from inferscale.experiments import scorers
from inferscale.experiments.datasets import Item
from inferscale.experiments.sandbox import Limits, run_python

TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
FAST = Limits(cpu_s=2, wall_s=5, memory_mb=256)


def _item(tests=TESTS):
    return Item("c1", "write add(a, b)", expected=tests, scorer="code")


def test_a_correct_program_passes_and_a_wrong_one_fails():
    code = scorers.build("code")
    ok = code.score("```python\ndef add(a, b):\n    return a + b\n```", _item())
    assert (ok.score, ok.reason) == (1.0, "all tests passed")
    bad = code.score("def add(a, b):\n    return a - b\n", _item())
    assert bad.score == 0.0 and "AssertionError" in bad.reason


def test_an_infinite_loop_is_killed_at_the_cpu_limit():
    t0 = time.monotonic()
    r = run_python("while True:\n    pass\n", FAST)
    assert not r.ok and r.reason.startswith("cpu limit")
    assert time.monotonic() - t0 < 5
    s = scorers.build("code").score("def add(a, b):\n    while True:\n        pass\n", _item())
    assert s.score == 0.0 and s.reason.startswith(("cpu limit", "timeout"))


def test_a_sleeping_program_is_killed_at_the_wall_clock_limit():
    r = run_python("import time\ntime.sleep(60)\n", Limits(cpu_s=2, wall_s=1.5))
    assert not r.ok and r.reason.startswith("timeout") and r.wall_ms < 5000


def test_a_fork_bomb_cannot_fork():
    r = run_python("import os\nwhile True:\n    os.fork()\n", FAST)
    assert not r.ok and r.reason.startswith("fork refused")
    # Bypassing Python's os.fork (straight to libc) meets RLIMIT_NPROC: fork returns -1.
    r = run_python("import ctypes\nprint(ctypes.CDLL(None).fork())\n", FAST)
    assert r.stdout.strip() == "-1"
    s = scorers.build("code").score("import os\nwhile True:\n    os.fork()\n", _item())
    assert s.score == 0.0 and "fork refused" in s.reason


def test_a_huge_allocation_is_refused_at_the_memory_limit():
    r = run_python("x = bytearray(8 * 1024 ** 3)\n", FAST)
    assert not r.ok and r.reason.startswith("memory limit")
    s = scorers.build("code").score("def add(a, b):\n    return len([0] * 10 ** 10)\n", _item())
    assert s.score == 0.0 and "memory limit" in s.reason


def test_no_network_and_its_own_directory():
    r = run_python("import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n", FAST)
    assert not r.ok
    r = run_python("import os\nprint(os.getcwd())\nprint(os.environ.get('INFERSCALE_SANDBOX_NETWORK'))\n", FAST)
    cwd, network = r.stdout.split()
    assert "inferscale-sandbox-" in cwd and not os.path.exists(cwd)  # removed afterwards
    assert network in ("namespace", "audit-hook")


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch only happens as root")
def test_as_root_the_candidate_runs_as_another_user():
    r = run_python("import os\nprint(os.getuid())\n", FAST)
    assert r.ok and int(r.stdout) >= 200_000
