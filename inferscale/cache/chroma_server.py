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
from typing import IO, Any

import yaml

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


def config_file(chroma_dir: Path) -> Path:
    return chroma_dir.with_name(chroma_dir.name + ".server.yaml")


def server_config(chroma_dir: Path, port: int, collection_cache: bool = True) -> dict[str, Any]:
    """`chroma run`'s config: its single-node defaults, on loopback, with the frontend's collection
    cache on. Without it every query first reads the collection and its segments from Chroma's
    SQLite: 2.3 ms of the server's CPU per k=4 query against 0.9 with it (bench/chroma_modes.py).
    The cache is keyed by collection id and the server is the one writer, so a query still finds a
    vector upserted just before it (`tests/test_chroma_server.py`)."""
    config: dict[str, Any] = {"persist_path": str(chroma_dir), "port": port, "listen_address": "127.0.0.1"}
    if collection_cache:
        config["collections_with_segments_provider"] = {
            "cache": {"lru": {"name": "collections_with_segments_cache", "capacity": 1000}},
            "cache_ttl_secs": 10, "permitted_parallelism": 100}
    return config


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
    collection_cache: bool = True  # off only to measure what it saves (bench/chroma_modes.py)

    def start(self, timeout_s: float = 60.0) -> ChromaServer:
        acquire(self.chroma_dir, "serve")
        self.chroma_dir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        exe = Path(sys.executable).with_name("chroma")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "chromadb.cli.cli"]
        config = config_file(self.chroma_dir)
        config.write_text(yaml.safe_dump(server_config(self.chroma_dir, port, self.collection_cache)), encoding="utf-8")
        # A Chroma whose config format differs from the one written here gets the plain flags: the
        # server then only lacks the collection cache.
        flags = ["--path", str(self.chroma_dir), "--host", "127.0.0.1", "--port", str(port)]
        proc = self._run([*cmd, "run", str(config)], timeout_s) or self._run([*cmd, "run", *flags], timeout_s)
        if proc is None:
            self.stop()
            raise RuntimeError(f"the Chroma server for {self.chroma_dir} did not start")
        server_file(self.chroma_dir).write_text(json.dumps({"url": self.url, "pid": proc.pid}),
                                                encoding="utf-8")
        return self

    def _run(self, argv: list[str], timeout_s: float) -> subprocess.Popen | None:
        """The server started with `argv` once it answers; None if it exited first."""
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        self.proc = proc = subprocess.Popen(  # noqa: S603 - our own interpreter's chroma
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
            preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout_s
        while not _healthy(self.url):
            if proc.poll() is not None:
                return None
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Chroma server for {self.chroma_dir} did not start in {timeout_s:.0f} s")
            time.sleep(0.1)
        return proc

    def stop(self) -> None:
        for path in (server_file(self.chroma_dir), config_file(self.chroma_dir)):  # the data stays
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        release(self.chroma_dir)
