"""The one place that talks to Chroma: a persistent cosine collection of our own vectors.

Chroma is given embeddings, never texts, and no embedding function (its default one downloads a
model). If the directory is missing it is created; if it cannot be opened (corrupt files, a version
it cannot read) it is moved aside to `chroma.broken-<time>` and a fresh one is created — the caller
then re-adds the vectors it keeps in SQLite (`SemanticCache.reconcile`). Nothing here raises into a
request: callers treat an `IndexUnavailable` as a miss.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..settings import prepare_offline_env

log = logging.getLogger(__name__)
COLLECTION = "inferscale_l1"


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


class IndexUnavailable(RuntimeError):
    """Chroma could not be opened or queried; the semantic level is skipped for this call."""


class ChromaIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._col: Any = None
        self._client: Any = None
        self._lock = threading.RLock()
        self.rebuilt = False  # True when this process replaced a broken directory

    def _open(self) -> Any:
        with self._lock:
            if self._col is not None:
                return self._col
            prepare_offline_env()
            try:
                self._col = self._connect()
            except Exception as exc:  # noqa: BLE001 - any failure to open means: start afresh
                log.warning("chroma at %s unusable (%s); moving it aside and rebuilding", self.path, exc)
                self._client = None
                _forget_system(self.path)
                if self.path.exists():
                    shutil.move(str(self.path), f"{self.path}.broken-{int(time.time() * 1000)}")
                try:
                    self._col = self._connect()
                except Exception as exc2:  # noqa: BLE001
                    raise IndexUnavailable(f"cannot create a Chroma index at {self.path}: {exc2}") from exc2
                self.rebuilt = True
            return self._col

    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.path.mkdir(parents=True, exist_ok=True)
        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True)
        )
        col = self._client.get_or_create_collection(
            COLLECTION, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
        )
        col.count()  # touch the files now, so corruption shows here and not mid-request
        return col

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._open())
        except IndexUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as one clear error class
            raise IndexUnavailable(f"Chroma {what} failed: {type(exc).__name__}: {exc}") from exc

    def add(self, ids: list[str], vectors: np.ndarray, scopes: list[str]) -> None:
        if not ids:
            return
        with self._lock:
            self._call("add", lambda c: c.upsert(
                ids=ids, embeddings=np.asarray(vectors, dtype=np.float32),
                metadatas=[{"scope": s} for s in scopes]))

    def query(self, vector: np.ndarray, scope: str, k: int) -> list[tuple[str, float]]:
        """Nearest ids in `scope` with their cosine similarity, best first."""
        res = self._call("query", lambda c: c.query(
            query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1), n_results=k,
            where={"scope": scope}, include=["distances"]))
        ids = res["ids"][0] if res["ids"] else []
        dists = res["distances"][0] if res.get("distances") else []
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=False)]

    def delete(self, ids: list[str]) -> None:
        if ids:
            with self._lock:
                self._call("delete", lambda c: c.delete(ids=list(ids)))

    def ids(self) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = self._call("get", lambda c, o=offset: c.get(include=[], limit=5000, offset=o))["ids"]
            out.update(got)
            if len(got) < 5000:
                return out
            offset += len(got)

    def count(self) -> int:
        return int(self._call("count", lambda c: c.count()))
