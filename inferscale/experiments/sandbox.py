"""Run untrusted candidate code in a separate, limited, always-killed process (the `code` and
`arc-grid` scorers, the ARC verifier). Never inside the engine's process.

What is done, in the child before the candidate runs (`_child.py`):
- CPU time (RLIMIT_CPU), address space (RLIMIT_AS), file size and open files limits;
- no network: a fresh network namespace (unshare(CLONE_NEWNET) as root, or a user + network
  namespace otherwise) holding only a down loopback; where namespaces are refused, an audit hook
  refuses every socket and the result says `network: "audit-hook"`;
- no processes: as root it first switches to an unused uid, then RLIMIT_NPROC = 0 makes every fork
  fail (root itself is exempt from that limit, hence the uid switch); an audit hook also refuses
  os.fork/os.system/subprocess/exec;
- its own temporary directory as cwd and HOME, an empty environment, `python -I` (no user site).
The parent waits up to a wall-clock timeout, then kills the whole process group, always.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CHILD = Path(__file__).with_name("_child.py")
_uids = itertools.count()


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 5.0
    wall_s: float = 10.0
    memory_mb: int = 512
    output_bytes: int = 64_000


@dataclass(frozen=True)
class SandboxResult:
    ok: bool  # exited 0 within every limit
    returncode: int | None
    stdout: str
    stderr: str
    reason: str  # "ok" or why it failed: timeout, cpu limit, memory limit, fork refused, exit 1…
    wall_ms: float

    @property
    def short(self) -> str:
        return self.reason


def _sandbox_uid() -> int:
    # A uid no one uses, different per run, so RLIMIT_NPROC = 0 counts only this sandbox.
    return 200_000 + (os.getpid() % 10_000) * 100 + next(_uids) % 100


def run_python(code: str, limits: Limits = Limits(), stdin: str = "") -> SandboxResult:
    """Run `code` as a Python program in the sandbox; returns how it ended and why."""
    tmp = Path(tempfile.mkdtemp(prefix="inferscale-sandbox-"))
    uid = _sandbox_uid() if os.geteuid() == 0 else None
    try:
        (tmp / "candidate.py").write_text(code, encoding="utf-8")
        if uid is not None:
            os.chown(tmp, uid, uid)
            os.chown(tmp / "candidate.py", uid, uid)
        spec = {"cpu_s": limits.cpu_s, "memory_mb": limits.memory_mb, "uid": uid}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [_interpreter(uid is not None), "-I", str(CHILD), json.dumps(spec), str(tmp / "candidate.py")],
            cwd=tmp, env={"HOME": str(tmp), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so the kill below takes everything
        )
        timed_out = False
        try:
            out, err = proc.communicate(stdin.encode(), timeout=limits.wall_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
            out, err = proc.communicate()
        finally:
            _kill(proc)
        ms = (time.perf_counter() - t0) * 1000
        stdout = out[: limits.output_bytes].decode("utf-8", "replace")
        stderr = err[-limits.output_bytes:].decode("utf-8", "replace")
        reason = _reason(proc.returncode, stderr, timed_out)
        return SandboxResult(reason == "ok", proc.returncode, stdout, stderr, reason, ms)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _interpreter(switches_uid: bool) -> str:
    """This Python, unless the sandbox uid could not read its standard library (a Python under a
    0700 home): then the system's python3. Candidates only need the standard library."""
    if not switches_uid or _world_readable(Path(sys.base_prefix) / "lib"):
        return sys.executable
    return shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def _world_readable(path: Path) -> bool:
    for p in (path, *path.parents):
        try:
            if not p.stat().st_mode & 0o005:
                return False
        except OSError:
            return False
    return True


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _reason(code: int | None, stderr: str, timed_out: bool) -> str:
    if timed_out:
        return "timeout: killed after the wall-clock limit"
    if code == 0:
        return "ok"
    if code in (-signal.SIGXCPU, -signal.SIGKILL) and "MemoryError" not in stderr:
        return "cpu limit: killed after its CPU-time limit"
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if "MemoryError" in stderr or "Cannot allocate memory" in stderr:
        return "memory limit: allocation refused past the memory limit"
    if "sandbox refused" in tail or "BlockingIOError" in tail or "Resource temporarily unavailable" in tail:
        return f"fork refused: {tail[:160]}"
    if "sandbox: no network" in stderr:
        return "network refused"
    return f"exit {code}: {tail[:200]}" if tail else f"exit {code}"
