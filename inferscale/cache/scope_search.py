"""Nearest entries of a small L1 scope, searched in-process from the vectors SQLite keeps.

For a scope of a few thousand entries an exact scan with numpy takes well under a millisecond,
while asking Chroma costs a round trip and ~1.3 ms of this process's CPU (its HTTP client, under the
interpreter lock the gateway's requests share). So a scope up to `max_scope` entries is searched
here, and Chroma (its HNSW index) answers the larger ones; smaller scopes are not written to
Chroma at all (`chroma_mirror.py`).

Each process keeps a copy of a scope's search vectors and catches up before every search from
per-scope counters that triggers keep in SQLite (`semantic_scopes`, migration m013): other
processes on the same home (the gateway's workers, a CLI batch) write the same table. New rows are
read by rowid; after a delete the scope's (rowid, exact_hash) pairs, read from its index alone, say
which rows went and which came (a rowid freed by a delete can be given to a new row). The copies
of all scopes together are bounded (`max_rows`); the least recently searched goes first.

The vectors are the ones SQLite holds when a row is read. An entry whose exact vectors are computed
later (`SemanticCache._exact_row`) keeps its earlier search vector here, as it does in Chroma: it
only ranks candidates, and the decision reads the row's current vectors.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..db import Database
from ..embeddings import DIM
from ..settings import L1_SCAN_MAX

# `semantic_scopes.indexed`: whether Chroma holds a scope (`chroma_mirror.py`)
SQLITE_ONLY, PROMOTING, PROMOTED = 0, 1, 2
HISTORY_WEIGHT = 0.5  # share of the earlier turns in the search vector (as `semantic.Vectors.search`)
MAX_SCOPE = L1_SCAN_MAX  # the default of `Settings.l1_scan_max`
MAX_ROWS = 40000  # all scopes' copies together: ~61 MB


def search_vector(last: np.ndarray, history: np.ndarray | None) -> np.ndarray:
    v = last if history is None else last + HISTORY_WEIGHT * history
    return v / (np.linalg.norm(v) or 1.0)


@dataclass
class _Copy:
    inserts: int  # the scope's counters when the copy was last brought up to date
    deletes: int
    rowids: np.ndarray  # int64, one per row of `vectors`
    hashes: list[str]
    keys: list[str]
    vectors: np.ndarray  # (capacity, DIM) float32; the first len(keys) rows are in use

    @property
    def n(self) -> int:
        return len(self.keys)


def blob_vector(b: bytes | None) -> np.ndarray | None:
    """A vector as SQLite keeps it (float32 bytes), or None."""
    return None if b is None else np.frombuffer(b, dtype=np.float32)


class ScopeSearch:
    def __init__(self, database: Database, max_scope: int = MAX_SCOPE, max_rows: int = MAX_ROWS) -> None:
        self._dbh = database
        self.max_scope = max_scope
        self.max_rows = max_rows
        self._copies: OrderedDict[str, _Copy] = OrderedDict()  # least recently searched first
        self._lock = threading.Lock()

    def nearest(self, scope: str, vector: np.ndarray, k: int) -> list[tuple[str, float]] | None:
        """The `k` entries of `scope` nearest to `vector` (unit length), with their cosine
        similarity, best first; None when the scope is too large to search here and Chroma holds
        it (a scope not yet promoted is searched here whatever its size, `chroma_mirror.py`)."""
        got = self._dbh.db.execute("SELECT entries, inserts, deletes, indexed FROM semantic_scopes"
                                   " WHERE scope = ?", [scope]).fetchone()
        if got is None or got[0] <= 0:
            return []
        entries, inserts, deletes, indexed = (int(x) for x in got)
        if entries > self.max_scope and indexed == PROMOTED:
            with self._lock:
                self._copies.pop(scope, None)
            return None
        with self._lock:
            copy = self._catch_up(scope, self._copies.pop(scope, None), inserts, deletes)
            self._copies[scope] = copy
            self._bound()
            if copy.n == 0:
                return []
            sims = copy.vectors[:copy.n] @ np.asarray(vector, dtype=np.float32)
            top = np.argsort(-sims, kind="stable")[:k] if copy.n <= k else self._top(sims, k)
            return [(copy.keys[i], float(sims[i])) for i in top]

    @staticmethod
    def _top(sims: np.ndarray, k: int) -> np.ndarray:
        part = np.argpartition(-sims, k - 1)[:k]
        return part[np.argsort(-sims[part], kind="stable")]

    def _catch_up(self, scope: str, copy: _Copy | None, inserts: int, deletes: int) -> _Copy:
        # The counters were read before the rows: a write between the two reads shows in the
        # counters next time, and catching up again then only finds nothing more.
        if copy is None:
            copy = _Copy(inserts, deletes, np.empty(0, np.int64), [], [], np.empty((0, DIM), np.float32))
            rows = self._read("scope = ?", [scope])
        elif copy.deletes != deletes:
            rows = self._resync(scope, copy)
        elif copy.inserts != inserts:
            after = int(copy.rowids.max()) if copy.n else 0
            rows = self._read("scope = ? AND rowid > ?", [scope, after])
        else:
            return copy
        copy.inserts, copy.deletes = inserts, deletes
        return self._append(copy, rows)

    def _resync(self, scope: str, copy: _Copy) -> list[tuple[int, str, str, np.ndarray]]:
        """Drop the rows gone since the copy was made; return the ones it lacks. Read from the
        scope's index (rowid, exact_hash) only, so a scope's vectors are not read again."""
        now = {(int(r), h) for r, h in self._dbh.db.execute(
            "SELECT rowid, exact_hash FROM semantic_index WHERE scope = ?", [scope]).fetchall()}
        keep = [i for i in range(copy.n) if (int(copy.rowids[i]), copy.hashes[i]) in now]
        had = {(int(copy.rowids[i]), copy.hashes[i]) for i in keep}
        copy.rowids = copy.rowids[keep]
        copy.hashes = [copy.hashes[i] for i in keep]
        copy.keys = [copy.keys[i] for i in keep]
        copy.vectors = copy.vectors[keep]
        missing = sorted(r for r, h in now - had)
        out: list[tuple[int, str, str, np.ndarray]] = []
        for i in range(0, len(missing), 900):  # under SQLite's limit of bound parameters
            chunk = missing[i:i + 900]
            out += self._read(f"scope = ? AND rowid IN ({','.join('?' * len(chunk))})", [scope, *chunk])
        return out

    def _read(self, where: str, params: Sequence[object]) -> list[tuple[int, str, str, np.ndarray]]:
        cur = self._dbh.db.execute(f"SELECT rowid, key, exact_hash, v_last, v_hist FROM semantic_index"
                                   f" WHERE {where}", params)
        return [(int(r), key, h, search_vector(np.frombuffer(last, dtype=np.float32), blob_vector(hist)))
                for r, key, h, last, hist in cur.fetchall()]

    @staticmethod
    def _append(copy: _Copy, rows: list[tuple[int, str, str, np.ndarray]]) -> _Copy:
        if not rows:
            return copy
        n, need = copy.n, copy.n + len(rows)
        if need > len(copy.vectors):  # grow by doubling: a busy scope gains a row per search
            grown = np.empty((max(need, 2 * len(copy.vectors), 64), DIM), np.float32)
            grown[:n] = copy.vectors[:n]
            copy.vectors = grown
        copy.vectors[n:need] = np.stack([v for *_, v in rows])
        copy.rowids = np.concatenate([copy.rowids[:n], np.array([r for r, *_ in rows], np.int64)])
        copy.keys += [key for _, key, *_ in rows]
        copy.hashes += [h for _, _, h, _ in rows]
        return copy

    def _bound(self) -> None:
        total = sum(c.n for c in self._copies.values())
        while total > self.max_rows and len(self._copies) > 1:
            _, dropped = self._copies.popitem(last=False)
            total -= dropped.n
