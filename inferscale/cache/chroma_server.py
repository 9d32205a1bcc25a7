"""Who may open a home's Chroma directory, and the Chroma server that lets several processes share it.

Embedded Chroma (`PersistentClient`) is safe within one process only: two processes writing one
directory corrupt its HNSW index. So:

- `inferscale serve` runs Chroma's own server (`chroma run --path <home>/chroma`, loopback, a free
  port) and writes `<home>/chroma.server.json` (url, pid). Every process on the home — the serve
  workers, a dashboard, a CLI batch — then talks to it with `chromadb.HttpClient`.
  `INFERSCALE_CHROMA_URL` points at a server started some other way (another machine included).
- Without a server, one process opens the directory embedded and holds `<home>/chroma.lock`
  (an exclusive flock, released when it exits). Another process finding the lock taken gets
  `IndexUnavailable` (L1 is skipped: a miss, never a corruption) with the fix in the message.
The serve process holds the same lock while its server runs, so nothing opens the directory
embedded meanwhile.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..process import die_with_parent, pid_exists

URL_ENV = "INFERSCALE_CHROMA_URL"
_held: dict[str, IO[str]] = {}  # lock path -> open file, one per process (flock is per open file)
_held_lock = threading.Lock()


class ChromaBusy(RuntimeError):
    """Another process owns the Chroma directory embedded."""


def lock_path(chroma_dir: Path) -> Path:
    return chroma_dir.with_name(chroma_dir.name + ".lock")


def server_file(chroma_dir: Path) -> Path:
    return chroma_dir.with_name(chroma_dir.name + ".server.json")


def acquire(chroma_dir: Path, role: str) -> None:
    """Take the home's Chroma lock for this process (idempotent), or raise ChromaBusy."""
    path = lock_path(chroma_dir)
    with _held_lock:
        if str(path) in _held:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the process lifetime
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise ChromaBusy(f"the Chroma index {chroma_dir} is open in another process ({holder}); "
                             "start `inferscale serve` first so every process shares it through its "
                             f"Chroma server, or set {URL_ENV}") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "role": role}))
        f.flush()
        _held[str(path)] = f


def release(chroma_dir: Path) -> None:
    with _held_lock:
        f = _held.pop(str(lock_path(chroma_dir)), None)
    if f is not None:
        f.close()


def holder_role(chroma_dir: Path) -> str | None:
    try:
        return json.loads(lock_path(chroma_dir).read_text(encoding="utf-8") or "{}").get("role")
    except (OSError, ValueError):
        return None


def find_url(chroma_dir: Path, wait_s: float = 0.0) -> str | None:
    """The Chroma server for this directory: INFERSCALE_CHROMA_URL, else a live serve's file."""
    if url := os.environ.get(URL_ENV):
        return url.rstrip("/")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            info = json.loads(server_file(chroma_dir).read_text(encoding="utf-8"))
            if pid_exists(int(info["pid"])):
                return str(info["url"])
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as r:  # noqa: S310 - loopback
            return r.status == 200
    except OSError:
        return False


@dataclass
class ChromaServer:
    """A `chroma run` child process serving one home's Chroma directory on loopback."""

    chroma_dir: Path
    proc: subprocess.Popen | None = None
    url: str = ""

    def start(self, timeout_s: float = 60.0) -> ChromaServer:
        acquire(self.chroma_dir, "serve")
        self.chroma_dir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        exe = Path(sys.executable).with_name("chroma")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "chromadb.cli.cli"]
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter's chroma
            [*cmd, "run", "--path", str(self.chroma_dir), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
            preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout_s
        while not _healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Chroma server for {self.chroma_dir} did not start")
            time.sleep(0.1)
        server_file(self.chroma_dir).write_text(json.dumps({"url": self.url, "pid": self.proc.pid}),
                                                encoding="utf-8")
        return self

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            server_file(self.chroma_dir).unlink()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        release(self.chroma_dir)
