"""Which L1 scopes Chroma holds, and keeping it in step with SQLite.

A scope of up to `max_scope` entries is searched in-process (`scope_search.py`) and is not written
to Chroma at all: for the gateway's misses each upsert cost ~0.3 ms of the serving process's CPU
(chromadb's HTTP client, under the interpreter lock the requests share) and ~0.5 ms in Chroma's
server, for a vector no lookup would read. A scope is *promoted* when a write takes it past
`max_scope`; its flag (`semantic_scopes.indexed`, migration m014) goes
  0 (SQLite only) → 1 (promoting) in that writer's transaction, → 2 (complete) once its vectors,
  read from SQLite after the commit, are in Chroma.
Every writer reads the flag inside its own transaction and adds its vectors itself when it is 1 or
2, so no row of a promoting scope is missed: a row committed before the flag was set is in the bulk
read, a row committed after is added by its writer. Lookups ask Chroma only at 2 and beyond
`max_scope` entries. A promotion cut short (a crash, Chroma down) stays at 1, is still searched
in-process, and `reconcile` finishes it. A promoted scope stays promoted when eviction shrinks it.

The flag is shared by every process on the home; `max_scope` is each process's own setting (the
one that promotes first decides, and the others follow the flag).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from ..db import Database
from .chroma_index import ChromaIndex, IndexUnavailable
from .scope_search import PROMOTED, PROMOTING, SQLITE_ONLY, blob_vector, search_vector

log = logging.getLogger(__name__)
RETRY_S = 30.0  # after a repair that found Chroma unavailable
_CHUNK = 900  # keys per statement, under SQLite's limit of bound parameters; vectors per upsert


def _search(v_last: bytes, v_hist: bytes | None) -> np.ndarray:
    return search_vector(np.frombuffer(v_last, dtype=np.float32), blob_vector(v_hist))


class ChromaMirror:
    def __init__(self, database: Database, index: ChromaIndex, max_scope: int) -> None:
        self._dbh = database
        self.index = index
        self.max_scope = max_scope
        self._checked = False
        self._retry_at = 0.0  # monotonic time before which a failed repair is not tried again
        self._check_lock = threading.Lock()

    # -- writes -----------------------------------------------------------------------------------
    def mark(self, db: Any, scopes: set[str]) -> tuple[set[str], set[str]]:
        """Inside the writer's transaction, after its rows: the scopes whose new vectors the writer
        adds to Chroma itself (promoting or promoted), and the ones its rows take past
        `max_scope`, flagged now and to be `promote`d after the commit."""
        marks = ",".join("?" * len(scopes))
        got = db.execute(f"SELECT scope, entries, indexed FROM semantic_scopes WHERE scope IN ({marks})",
                         list(scopes)).fetchall()
        indexed = {sc for sc, _, flag in got if flag != SQLITE_ONLY}
        grown = {sc for sc, n, flag in got if flag == SQLITE_ONLY and n > self.max_scope}
        for sc in grown:
            db.execute("UPDATE semantic_scopes SET indexed = ? WHERE scope = ?", [PROMOTING, sc])
        return indexed, grown

    def promote(self, scope: str) -> bool:
        """Add every vector of `scope` from SQLite to Chroma, then mark it complete. On failure
        the scope stays flagged as promoting (searched in-process) for `reconcile` to finish."""
        rows = self._dbh.db.execute("SELECT key, v_last, v_hist FROM semantic_index WHERE scope = ?",
                                    [scope]).fetchall()
        try:
            for i in range(0, len(rows), _CHUNK):
                chunk = rows[i:i + _CHUNK]
                self.index.add([r[0] for r in chunk], np.stack([_search(r[1], r[2]) for r in chunk]),
                               [scope] * len(chunk))
        except IndexUnavailable as exc:
            log.warning("L1 scope of %d entries not moved to Chroma yet: %s", len(rows), exc)
            return False
        with self._dbh.tx() as db:
            db.execute("UPDATE semantic_scopes SET indexed = ? WHERE scope = ? AND indexed = ?",
                       [PROMOTED, scope, PROMOTING])
        log.info("L1 scope of %d entries now searched with Chroma", len(rows))
        return True

    def indexed_keys(self, keys: list[str]) -> list[str]:
        """Those of `keys` whose scope Chroma holds (or is being given)."""
        out: list[str] = []
        for i in range(0, len(keys), _CHUNK):
            chunk = keys[i:i + _CHUNK]
            out += [r[0] for r in self._dbh.db.execute(
                "SELECT s.key FROM semantic_index s JOIN semantic_scopes p ON p.scope = s.scope"
                f" WHERE p.indexed != 0 AND s.key IN ({','.join('?' * len(chunk))})", chunk).fetchall()]
        return out

    def drop(self, keys: list[str]) -> None:
        """Before rows go: their vectors, for the keys Chroma holds (no call for the others)."""
        if ids := self.indexed_keys(keys):
            self.index.delete(ids)

    # -- consistency ----------------------------------------------------------------------------
    def ensure_consistent(self) -> None:
        """Once per process, before its first lookup: repair when Chroma's count of vectors
        differs from the promoted scopes' rows, a promotion was left unfinished, or Chroma was
        rebuilt. A home with no promoted scope never opens Chroma here. With Chroma unavailable
        the lookup goes on (scopes searched in-process need no Chroma) and the repair is tried
        again `RETRY_S` later."""
        if self._checked or time.monotonic() < self._retry_at:
            return
        with self._check_lock:
            if self._checked:
                return
            scopes, pending, rows = self._dbh.db.execute(
                "SELECT COUNT(*), COALESCE(SUM(indexed = 1), 0), COALESCE(SUM(entries), 0)"
                " FROM semantic_scopes WHERE indexed != 0").fetchone()
            try:
                if scopes and (pending or self.index.rebuilt or self.index.count() != rows):
                    self.reconcile()
            except IndexUnavailable as exc:
                log.warning("L1 index not repaired yet: %s", exc)
                self._retry_at = time.monotonic() + RETRY_S
                return
            self._checked = True

    def reconcile(self) -> dict[str, int]:
        """Make Chroma hold exactly the vectors of the rows of promoted scopes (after a crash, a
        rebuild, an unfinished promotion); vectors of scopes searched in-process are removed."""
        # The promoting scopes are read first: one flagged after this is completed by its own
        # writer, and every row of one flagged before is in the rows read next.
        pending = [r[0] for r in self._dbh.db.execute(
            "SELECT scope FROM semantic_scopes WHERE indexed = ?", [PROMOTING]).fetchall()]
        in_chroma = self.index.ids()
        in_sql = {r[0] for r in self._dbh.db.execute(
            "SELECT s.key FROM semantic_index s JOIN semantic_scopes p ON p.scope = s.scope"
            " WHERE p.indexed != 0").fetchall()}
        orphans = sorted(in_chroma - in_sql)
        missing = sorted(in_sql - in_chroma)
        for i in range(0, len(orphans), _CHUNK):
            self.index.delete(orphans[i:i + _CHUNK])
        for i in range(0, len(missing), _CHUNK):
            chunk = missing[i:i + _CHUNK]
            got = self._dbh.db.execute(
                f"SELECT key, scope, v_last, v_hist FROM semantic_index WHERE key IN ({','.join('?' * len(chunk))})",
                chunk).fetchall()
            if got:
                self.index.add([r[0] for r in got], np.stack([_search(r[2], r[3]) for r in got]),
                               [r[1] for r in got])
        if pending:
            with self._dbh.tx() as db:
                db.conn.executemany("UPDATE semantic_scopes SET indexed = ? WHERE scope = ? AND indexed = ?",
                                    [[PROMOTED, sc, PROMOTING] for sc in pending])
        self.index.rebuilt = False
        return {"removed_vectors": len(orphans), "added_vectors": len(missing)}
