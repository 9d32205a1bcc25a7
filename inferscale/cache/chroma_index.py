"""The one place that talks to Chroma: persistent cosine collections of our own vectors, one per scope.

Chroma is given embeddings, never texts, and no embedding function (its default one downloads a
model). One collection per scope (system prompt, parameters, strategy, models…) because a `where`
filter on a single shared collection makes every query first list the scope's ids from SQLite: 40 ms
at 10,000 entries, growing with the scope, against under 2 ms for a plain HNSW query
(`bench/cache_latency.py`). If the directory is missing it is created; if it cannot be opened
(corrupt files, a version it cannot read) it is moved aside to `chroma.broken-<time>` and a fresh
one is created — the caller then re-adds the vectors it keeps in SQLite (`SemanticCache.reconcile`).
Nothing here raises into a request: callers treat an `IndexUnavailable` as a miss.

Several processes on one home share the index through Chroma's server (`chroma_server.py`): when
one runs for this directory the client is a `chromadb.HttpClient`, otherwise the process opens the
directory embedded and holds its lock, so a second process never writes it behind our back.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import prepare_offline_env
from . import chroma_server

log = logging.getLogger(__name__)
PREFIX = "l1-"
LEGACY_COLLECTION = "inferscale_l1"  # one shared collection filtered by scope (before per-scope ones)
HNSW = {"hnsw": {"space": "cosine"}}
# Errors of a Chroma server that go away once a concurrent write has finished, retried after these
# pauses: "already exists" when two workers make a new collection's segment tables at once; "Nothing
# found on disk" for a query of a collection whose first upsert is still running, with the server's
# collection cache on (in 16 rounds of a query loop beside a new collection's first writes, 22 such
# errors, all within its first 20 ms; none with the cache off).
TRANSIENT = ("already exists", "Nothing found on disk")
RETRY_S = (0.05, 0.1)


def collection_name(scope: str) -> str:
    return PREFIX + hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _forget_system(path: Path) -> None:
    """Chroma caches one client system per directory for the whole process; a broken one would be
    handed back to the next client of the same path, so drop it before rebuilding."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        system = SharedSystemClient._identifier_to_system.pop(str(path), None)
        SharedSystemClient._identifier_to_refcount.pop(str(path), None)
        if system is not None:
            system.stop()
    except Exception as exc:  # noqa: BLE001 - best effort; a fresh path still works
        log.debug("could not drop Chroma's cached system for %s: %s", path, exc)


def _drop_older_broken(path: Path, kept: Path) -> None:
    """Keep only the newest moved-aside copy: repeated repairs must not fill the disk with them."""
    for old in path.parent.glob(f"{path.name}.broken-*"):
        if old != kept:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


class IndexUnavailable(RuntimeError):
    """Chroma could not be opened or queried; the semantic level is skipped for this call."""


class ChromaIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._client: Any = None
        self._cols: dict[str, Any] = {}  # collection name -> collection, every one on disk
        self._lock = threading.RLock()
        self.rebuilt = False  # True when this process replaced a broken directory
        self.remote: str | None = None  # the Chroma server's URL when the index is shared
        self._absent: dict[str, float] = {}  # remote: collection name -> when it was found missing

    def _open(self) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            prepare_offline_env()
            try:
                self._connect()
            except IndexUnavailable:
                raise  # busy or server unreachable: the directory itself is fine, leave it
            except Exception as exc:  # noqa: BLE001 - any failure to open means: start afresh
                log.warning("chroma at %s unusable (%s); moving it aside and rebuilding", self.path, exc)
                self._client = None
                self._cols = {}
                _forget_system(self.path)
                if self.path.exists():
                    kept = Path(f"{self.path}.broken-{int(time.time() * 1000)}")
                    shutil.move(str(self.path), kept)
                    _drop_older_broken(self.path, kept)
                try:
                    self._connect()
                except Exception as exc2:  # noqa: BLE001
                    self._client = None
                    raise IndexUnavailable(f"cannot create a Chroma index at {self.path}: {exc2}") from exc2
                self.rebuilt = True
            return self._client

    def _connect(self) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        url = chroma_server.find_url(self.path)
        if url is None and chroma_server.holder_role(self.path) == "serve":
            url = chroma_server.find_url(self.path, wait_s=5.0)  # serve is starting its server
        if url is not None:
            client = self._remote(url)
        else:
            try:
                chroma_server.acquire(self.path, "embedded")
            except chroma_server.ChromaBusy as exc:
                raise IndexUnavailable(str(exc)) from None
            self.path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(
                path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True)
            )
        cols = {}
        for c in client.list_collections():
            if c.name == LEGACY_COLLECTION:  # its vectors are re-added per scope from SQLite
                client.delete_collection(c.name)
                continue
            col = client.get_collection(c.name, embedding_function=None)
            col.count()  # touch the files now, so corruption shows here and not mid-request
            cols[c.name] = col
        self._client, self._cols = client, cols

    def _remote(self, url: str) -> Any:
        from urllib.parse import urlparse

        import chromadb
        from chromadb.config import Settings as ChromaSettings

        u = urlparse(url)
        try:
            client = chromadb.HttpClient(host=u.hostname or "127.0.0.1", port=u.port or 8000,
                                         ssl=u.scheme == "https",
                                         settings=ChromaSettings(anonymized_telemetry=False))
            client.heartbeat()
        except Exception as exc:  # noqa: BLE001
            raise IndexUnavailable(f"the Chroma server at {url} is unreachable: {type(exc).__name__}") from exc
        self.remote = url
        return client

    def _collection(self, scope: str, create: bool) -> Any:
        name = collection_name(scope)
        with self._lock:
            client = self._open()
            col = self._cols.get(name)
            if col is None and self.remote and not create and time.monotonic() - self._absent.get(name, -9) > 1:
                # Another process may have created it since; a missing one is re-checked after 1 s.
                try:
                    col = self._cols[name] = client.get_collection(name, embedding_function=None)
                except Exception:  # noqa: BLE001 - NotFoundError: not created by anyone yet
                    self._absent[name] = time.monotonic()
            if col is None and create:
                col = client.get_or_create_collection(
                    name, embedding_function=None, configuration=HNSW, metadata={"scope": scope[:200]})
                self._cols[name] = col
            return col

    def _call(self, what: str, fn: Any) -> Any:
        for attempt in range(1, len(RETRY_S) + 2):
            try:
                return fn()
            except IndexUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - reported as one clear error class
                if attempt <= len(RETRY_S) and any(m in str(exc) for m in TRANSIENT):
                    time.sleep(RETRY_S[attempt - 1])
                    continue
                raise IndexUnavailable(f"Chroma {what} failed: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def add(self, ids: list[str], vectors: np.ndarray, scopes: list[str]) -> None:
        if not ids:
            return
        vecs = np.asarray(vectors, dtype=np.float32)
        by_scope: dict[str, list[int]] = {}
        for i, sc in enumerate(scopes):
            by_scope.setdefault(sc, []).append(i)
        # The lock only guards the collection handles: held across the upsert's round trip, it
        # made every concurrent lookup (`query` takes it to find its collection) wait for a store.
        for sc, rows in by_scope.items():
            self._call("add", lambda sc=sc, rows=rows: self._collection(sc, create=True).upsert(
                ids=[ids[i] for i in rows], embeddings=vecs[rows]))

    def query(self, vector: np.ndarray, scope: str, k: int) -> list[tuple[str, float]]:
        """Nearest ids in `scope` with their cosine similarity, best first."""
        def run() -> Any:
            col = self._collection(scope, create=False)
            if col is None:
                return None
            # No count() first: Chroma answers a short collection with fewer ids, and counting
            # costs more than the HNSW query itself (7 ms against 2 ms at 100,000 entries).
            return col.query(query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                             n_results=k, include=["distances"])
        res = self._call("query", run)
        if not res:
            return []
        ids = res["ids"][0] if res["ids"] else []
        dists = res["distances"][0] if res.get("distances") else []
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=False)]

    def _all(self) -> list[Any]:
        with self._lock:
            client = self._open()
            if self.remote:  # other processes create collections too
                for c in self._call("list", client.list_collections):
                    if c.name not in self._cols and c.name.startswith(PREFIX):
                        self._cols[c.name] = client.get_collection(c.name, embedding_function=None)
            return list(self._cols.values())

    def delete(self, ids: list[str]) -> None:
        """Drop ids from whichever scope holds them (deleting an absent id is a no-op in Chroma)."""
        if ids:
            for col in self._all():  # outside the lock, as in `add`
                self._call("delete", lambda col=col: col.delete(ids=list(ids)))

    def ids(self) -> set[str]:
        out: set[str] = set()
        for col in self._all():
            offset = 0
            while True:
                got = self._call("get", lambda c=col, o=offset: c.get(include=[], limit=5000,
                                                                       offset=o))["ids"]
                out.update(got)
                if len(got) < 5000:
                    break
                offset += len(got)
        return out

    def count(self) -> int:
        return sum(int(self._call("count", lambda c=col: c.count())) for col in self._all())
