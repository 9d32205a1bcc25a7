"""The shared event loop is stopped at exit, not left to die with the interpreter.

Its thread is a daemon: at finalisation Python freezes such a thread wherever it stands, and one
frozen inside an import keeps the import lock, so a finaliser that imports (litellm's HTTP handler
does) waits forever and the process never exits. Each check runs in a fresh interpreter, as the
CLI does; an `atexit` hook registered before the loop exists runs after the runner's own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.support.fakes import fake_model

REPORT = """
import atexit, threading
atexit.register(lambda: print("loop threads at exit:",
                              [t.name for t in threading.enumerate() if t.name == "inferscale-loop"]))
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", REPORT + textwrap.dedent(code)], capture_output=True,
                          text=True, env=dict(os.environ), timeout=120, check=False)


def test_a_process_that_called_a_model_stops_the_loop_before_it_exits(make_engine, server) -> None:
    make_engine(fake_model("fake-echo", "echo"))  # registered in this test's home
    proc = _run("""
        from inferscale import Engine
        from inferscale.settings import Settings
        engine = Engine(Settings.from_env())
        print("answer:", engine.ask("Is the kettle on yet?", models=["fake-echo"], use_cache=False).answer)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "answer: echo: Is the kettle on yet?" in proc.stdout
    assert "loop threads at exit: []" in proc.stdout, proc.stdout
    assert server.calls["echo"] == 1
    assert "Unclosed client session" not in proc.stderr, proc.stderr  # litellm's pool closed on its loop


def test_stopping_cancels_what_still_runs_and_a_later_call_starts_a_new_loop() -> None:
    proc = _run("""
        import asyncio, threading
        from inferscale.orchestration import runner

        started = threading.Event()
        async def forever():
            started.set()
            await asyncio.sleep(3600)
        pending = asyncio.run_coroutine_threadsafe(forever(), runner._get_loop())
        started.wait(10)
        runner.shutdown(timeout=5)
        print("cancelled:", pending.cancelled())
        async def two():
            return 2
        print("after:", runner.run_sync(two(), timeout=10))
    """)
    assert proc.returncode == 0, proc.stderr
    assert "cancelled: True" in proc.stdout and "after: 2" in proc.stdout
    assert "loop threads at exit: []" in proc.stdout, proc.stdout  # the second loop stopped too
