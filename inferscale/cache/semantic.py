"""L1, the semantic level: a cached final answer served for a prompt that means the same.

Each entry is a row in `cache_entries` (level L1: the answer, its cost, hits, GDSF priority) plus a
row in `semantic_index` (scope, the compared texts, their MiniLM vectors), and for a scope of more
than a few thousand entries a vector in Chroma (for the nearest-neighbour search inside the scope;
`chroma_mirror.py`). SQLite is the source of truth: the vectors are kept there, so a lost or
corrupt Chroma directory is rebuilt from it without re-embedding, and `reconcile()` removes
vectors whose rows are gone (and re-adds the reverse). An entry the engine's
writer stores keeps the fast graph's vectors its lookup computed (`approx`); a later lookup for
which it is a candidate that could pass computes its exact ones then, and keeps them.

Lookup: embed the last message (and the earlier turns), find the k nearest entries of the same
scope (scanned in-process up to a few thousand entries, `scope_search.py`; Chroma's HNSW index for
larger scopes), then verify each candidate (`verify.decide`) until one passes. With a judge configured
(`judge.Judge`, off by default), the best candidate that fell short only on similarity is shown to
it, once per lookup, and served only if it says yes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..db import Database
from ..embeddings import DIM, Embedder
from .chat import decide
from .chroma_index import ChromaIndex, IndexUnavailable
from .chroma_mirror import ChromaMirror
from .eviction import Eviction, Evictor, Limits, gdsf_priority
from .judge import Judge, JudgeCall, in_band
from .lexicon import Lexicon, default_lexicon
from .scope import Query
from .scope_search import MAX_SCOPE, ScopeSearch, search_vector
from .scope_search import blob_vector as _vec
from .turns import Candidate
from .verify import SpanSimilarity, Verdict, VerifyConfig

log = logging.getLogger(__name__)
# Largest gap between a similarity from the fast int8 vectors and the exact one: 0.041 over the
# 1,080 fow-cache comparisons (p99 0.026), with headroom. See `embeddings.build_fast_model`.
FAST_MARGIN = 0.06


@dataclass(frozen=True)
class Vectors:
    last: np.ndarray
    history: np.ndarray | None

    @property
    def search(self) -> np.ndarray:
        return self.last if self.history is None else search_vector(self.last, self.history)


@dataclass(frozen=True)
class SemanticMatch:
    key: str
    value: dict[str, Any]
    similarity: float
    matched_prompt: str
    reason: str
    cost_usd: float
    latency_ms: float
    created_at: float
    hits: int


@dataclass(frozen=True)
class LookupResult:
    match: SemanticMatch | None
    candidates: int = 0
    rejected: tuple[str, ...] = field(default_factory=tuple)  # verifier reasons, best candidate first
    error: str | None = None
    judged: JudgeCall | None = None  # the judge's call on the borderline candidate, when it was asked


def _agrees_in_context(*_: Any) -> float:
    return 1.0


def entry_key(q: Query) -> str:
    return "L1:" + hashlib.sha256(f"{q.scope_key}|{q.exact_hash}".encode()).hexdigest()


def _blob(v: np.ndarray | None) -> bytes | None:
    return None if v is None else np.asarray(v, dtype=np.float32).tobytes()


class SemanticCache:
    def __init__(self, database: Database, index: ChromaIndex, embedder: Embedder, k: int = 4,
                 lexicon: Lexicon | None = None, max_scope: int = MAX_SCOPE) -> None:
        """`max_scope`: entries up to which a scope is searched in-process and kept out of
        Chroma (0: every scope in Chroma from its first entry)."""
        self._dbh = database
        self._lexicon = lexicon  # None: the configured models directory's, opened on first lookup
        self.index = index
        self.scopes = ScopeSearch(database, max_scope=max_scope)  # small scopes; Chroma the others
        self.mirror = ChromaMirror(database, index, max_scope)
        self._embedder = embedder
        self.evictor = Evictor(database)
        self.k = k

    # -- vectors --------------------------------------------------------------------------------
    @staticmethod
    def _texts(q: Query) -> list[str]:
        return [q.last] + ([q.history] if q.history else [])

    def vectors(self, q: Query, fast: bool = False) -> Vectors:
        texts = self._texts(q)
        vs = self._embedder.embed_fast(texts) if fast else self._embedder.embed(texts)
        return Vectors(vs[0], vs[1] if q.history else None)

    def known_vectors(self, q: Query) -> tuple[Vectors, float] | None:
        """`q`'s vectors if already computed (no model call), with their error bound: exact ones
        (0), else the fast graph's (`FAST_MARGIN`); None when neither is memoised."""
        texts = self._texts(q)
        if (vs := self._embedder.memoised(texts)) is not None:
            return Vectors(vs[0], vs[1] if q.history else None), 0.0
        if (vs := self._embedder.memoised_fast(texts)) is not None:
            return Vectors(vs[0], vs[1] if q.history else None), FAST_MARGIN
        return None

    def store_vectors(self, known: list[tuple[Query, tuple[Vectors, float] | None]]
                      ) -> tuple[list[Vectors], list[bool]]:
        """Vectors to store each query with, and whether they are the fast graph's: those its
        lookup computed (`known_vectors`), else a fast pass (exact without a fast graph)."""
        vectors, approx = [], []
        for q, kv in known:
            if kv is None:
                kv = self.vectors(q, fast=True), FAST_MARGIN if self._embedder.fast is not None else 0.0
            vectors.append(kv[0])
            approx.append(kv[1] > 0)
        return vectors, approx

    def could_match(self, q: Query, pending: list[tuple[Query, Vectors, float]],
                    config: VerifyConfig = VerifyConfig()) -> bool:  # noqa: B008
        """Whether an entry not yet indexed (queued behind the answer) could pass verification for
        `q`: both sides' similarity errors are added, so False means it fails on exact vectors too."""
        known = self.known_vectors(q)
        qv, q_margin = known if known is not None else (self.vectors(q, fast=True), FAST_MARGIN)
        if self._lexicon is None:
            self._lexicon = default_lexicon()
        query_c = Candidate(q.last, q.history, q.exact_hash)
        for pq, pv, p_margin in pending:
            row = {"v_last": pv.last, "v_hist": pv.history, "last": pq.last, "history": pq.history,
                   "exact_hash": pq.exact_hash}
            # The words-in-context check is assumed to pass (it costs a model pass per side): the
            # answer may only err towards "could match", which merely waits.
            verdict, _ = self._verify(row, query_c, qv, config, _agrees_in_context, self._lexicon,
                                      q_margin + p_margin)
            if verdict.ok:
                return True
        return False

    # -- lookup ---------------------------------------------------------------------------------
    def lookup(self, q: Query, config: VerifyConfig = VerifyConfig(), ttl_s: float = 0.0,  # noqa: B008
               vectors: Vectors | None = None, judge: Judge | None = None) -> LookupResult:
        # Without exact vectors (from the caller, or memoised when the analysis step embedded the
        # same text), candidates are found with the fast approximate vectors; a candidate that
        # could pass is then decided on exact ones (below).
        if vectors is None and (memo := self._embedder.memoised(self._texts(q))) is not None:
            vectors = Vectors(memo[0], memo[1] if q.history else None)
        fast = vectors is None and self._embedder.fast is not None
        try:
            self.mirror.ensure_consistent()
            vec = vectors or self.vectors(q, fast=fast)
            exact = None if fast else vec
            hits, from_chroma = self._nearest(q.scope_key, vec.search)
        except IndexUnavailable as exc:
            log.warning("L1 skipped: %s", exc)
            return LookupResult(None, error=str(exc))
        if not hits:
            return LookupResult(None)
        rows = self._rows([i for i, _ in hits])
        orphans = [i for i, _ in hits if i not in rows]
        # A vector from Chroma whose row is gone (a crash between the two writes): drop it. A key
        # from the in-process copy without a row was deleted since the copy's catch-up: skipped.
        if orphans and from_chroma:
            self._safe_delete(orphans)
        now = time.time()
        query_c = Candidate(q.last, q.history, q.exact_hash)
        rejected: list[str] = []
        borderline: list[tuple[float, int, dict[str, Any], Verdict]] = []  # for the judge, if any
        ctx = self._embedder.span_similarity
        lexicon = self._lexicon = self._lexicon or default_lexicon()
        for key, _ in hits:
            row = rows.get(key)
            if row is None:
                continue
            if ttl_s and ttl_s > 0 and row["created_at"] < now - ttl_s:
                rejected.append("expired")
                continue
            row, why = self._prechecked(row, query_c, exact, vec, config, lexicon, judge)
            if why is not None:
                rejected.append(why)
                continue
            if exact is None:
                exact = self.vectors(q)
            verdict, sim = self._verify(row, query_c, exact, config, ctx, lexicon)
            if not verdict.ok:
                if in_band(verdict, sim, config, judge):
                    borderline.append((sim, len(rejected), row, verdict))
                rejected.append(verdict.reason)
                continue
            return LookupResult(self._serve(row, sim, verdict.reason), candidates=len(hits),
                                rejected=tuple(rejected))
        return self._judged(judge, borderline, query_c, rejected, len(hits))

    def _nearest(self, scope: str, search: np.ndarray) -> tuple[list[tuple[str, float]], bool]:
        """The k nearest entries, and whether Chroma gave them (the scope is too large for a scan)."""
        hits = self.scopes.nearest(scope, search, self.k)
        return (hits, False) if hits is not None else (self.index.query(search, scope, self.k), True)

    def _prechecked(self, row: dict[str, Any], query: Candidate, exact: Vectors | None, fast: Vectors,
                    config: VerifyConfig, lexicon: Lexicon, judge: Judge | None) -> tuple[dict[str, Any], str | None]:
        """A candidate with fast vectors on either side (the prompt's, the entry's) is first tried
        with its similarities raised by their largest errors: failing even then, it fails on exact
        vectors too (a higher similarity never turns a pass into a reject), and the reason is
        returned. Otherwise the entry comes back with its exact vectors. The words-in-context check
        is assumed to pass here: it reads the exact model's states, which the exact passes give."""
        margin = (FAST_MARGIN if exact is None else 0.0) + (FAST_MARGIN if row["approx"] else 0.0)
        if not margin:
            return row, None
        verdict, sim = self._verify(row, query, exact or fast, config, _agrees_in_context, lexicon, margin)
        if not (verdict.ok or in_band(verdict, sim, config, judge)):
            return row, f"{verdict.reason} (fast vectors, similarity + {margin:g} margin)"
        return self._exact_row(row), None

    def _judged(self, judge: Judge | None, borderline: list[tuple[float, int, dict[str, Any], Verdict]],
                query: Candidate, rejected: list[str], candidates: int) -> LookupResult:
        """No candidate passed: at most one judge call, on the most similar one that fell short."""
        if judge is None or not borderline:
            return LookupResult(None, candidates=candidates, rejected=tuple(rejected))
        sim, at, row, verdict = max(borderline, key=lambda b: b[0])  # the first of equals
        said = judge.confirm(Candidate(row["last"], row["history"], row["exact_hash"]), query)
        if said.confirmed:
            return LookupResult(self._serve(row, sim, f"{said.reason}: {verdict.reason}"), candidates=candidates,
                                rejected=tuple(rejected[:at] + rejected[at + 1:]), judged=said)
        rejected[at] = f"{verdict.reason}; {said.reason}"
        return LookupResult(None, candidates=candidates, rejected=tuple(rejected), judged=said)

    def _serve(self, row: dict[str, Any], sim: float, reason: str) -> SemanticMatch:
        self._touch(row)
        return SemanticMatch(
            key=row["key"], value=json.loads(row["value"]), similarity=sim, matched_prompt=row["last"],
            reason=reason, cost_usd=row["cost_usd"], latency_ms=row["latency_ms"],
            created_at=row["created_at"], hits=row["hits"] + 1,
        )

    @staticmethod
    def _verify(row: dict[str, Any], query: Candidate, vec: Vectors, config: VerifyConfig,
                context: SpanSimilarity, lexicon: Lexicon, margin: float = 0.0) -> tuple[Verdict, float]:
        sim_last = min(1.0, float(np.dot(row["v_last"], vec.last)) + margin)
        sim_hist = None
        if row["v_hist"] is not None and vec.history is not None:
            sim_hist = min(1.0, float(np.dot(row["v_hist"], vec.history)) + margin)
        cached = Candidate(row["last"], row["history"], row["exact_hash"])
        verdict = decide(cached, query, sim_last, sim_hist, config, context, lexicon)
        return verdict, min(sim_last, sim_hist) if sim_hist is not None else sim_last

    def _rows(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The candidates' rows; `value` is the stored JSON text, parsed only for the one served
        (most candidates are rejected, and an answer's JSON is a few KB)."""
        marks = ",".join("?" * len(keys))
        cur = self._dbh.db.execute(
            "SELECT s.key, s.last, s.history, s.exact_hash, s.v_last, s.v_hist, e.value, e.cost_usd,"
            f" e.latency_ms, e.created_at, e.hits, e.bytes, s.approx FROM semantic_index s JOIN cache_entries e"
            f" ON e.key = s.key WHERE s.key IN ({marks})", keys)
        out = {}
        for r in cur.fetchall():
            out[r[0]] = {
                "key": r[0], "last": r[1], "history": r[2], "exact_hash": r[3], "v_last": _vec(r[4]),
                "v_hist": _vec(r[5]), "value": r[6], "cost_usd": r[7], "latency_ms": r[8],
                "created_at": r[9], "hits": r[10], "bytes": r[11], "approx": bool(r[12]),
            }
        return out

    def _exact_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """The entry with its exact vectors, computed and kept now if it was stored with the fast
        graph's. Each text is embedded alone, which keeps its word states for the context check."""
        if not row["approx"]:
            return row
        last = self._embedder.embed([row["last"]])[0]
        hist = self._embedder.embed([row["history"]])[0] if row["history"] else None
        # Chroma keeps the fast search vector: it only ranks candidates, and the pre-check allows
        # for its error; the decision reads these, from SQLite.
        with self._dbh.tx() as db:
            db.execute("UPDATE semantic_index SET v_last = ?, v_hist = ?, approx = 0 WHERE key = ?",
                       [_blob(last), _blob(hist), row["key"]])
        return {**row, "v_last": last, "v_hist": hist, "approx": False}

    def _touch(self, row: dict[str, Any]) -> None:
        prio = gdsf_priority(self.evictor.clock("L1"), row["hits"] + 1, row["cost_usd"], row["latency_ms"],
                             row["bytes"])
        with self._dbh.tx() as db:
            db.execute("UPDATE cache_entries SET hits = hits + 1, last_hit_at = ?, priority = ?"
                       " WHERE key = ?",
                       [time.time(), prio, row["key"]])

    # -- writes ---------------------------------------------------------------------------------
    def put(self, q: Query, value: dict[str, Any], cost_usd: float, latency_ms: float,
            vectors: Vectors | None = None) -> str | None:
        """Store an answer for `q`. Returns the entry key, or None if its scope is in Chroma and
        Chroma is unavailable."""
        return self.put_many([(q, value, cost_usd, latency_ms)], [vectors] if vectors else None)[0]

    def put_many(self, items: list[tuple[Query, dict[str, Any], float, float]],
                 vectors: list[Vectors] | None = None, approx: list[bool] | None = None) -> list[str | None]:
        """`put` for several answers at once: one exact pass for the texts not memoised, one
        transaction, one upsert per scope Chroma holds (the writer stores what queued up in one go). `approx`
        marks given vectors that are the fast graph's: their exact ones wait for a lookup that
        needs them (`_exact_row`)."""
        if vectors is None:
            texts = list(dict.fromkeys(t for q, *_ in items for t in self._texts(q)))
            by_text = dict(zip(texts, self._embedder.embed(texts), strict=True)) if texts else {}
            vectors = [Vectors(by_text[q.last], by_text[q.history] if q.history else None) for q, *_ in items]
        flags = approx or [False] * len(items)
        latest = {entry_key(q): i for i, (q, *_) in enumerate(items)}  # a key queued twice: the last wins
        clock, now = self.evictor.clock("L1"), time.time()
        with self._dbh.tx() as db:
            for key, i in latest.items():
                q, value, cost_usd, latency_ms = items[i]
                vec = vectors[i]
                blob = json.dumps(value, ensure_ascii=False)
                size = len(blob.encode("utf-8", "replace")) + len(q.last) + len(q.history) + DIM * 8
                db.execute("DELETE FROM semantic_index WHERE key = ?", [key])
                db.execute(
                    "INSERT OR REPLACE INTO cache_entries (key, level, model, value, cost_usd, latency_ms,"
                    " bytes, created_at, last_hit_at, hits, priority)"
                    " VALUES (?, 'L1', NULL, ?, ?, ?, ?, ?, ?, 0, ?)",
                    [key, blob, cost_usd, latency_ms, size, now, now,
                     gdsf_priority(clock, 0, cost_usd, latency_ms, size)])
                db.execute(
                    "INSERT INTO semantic_index (key, scope, last, history, exact_hash, v_last, v_hist, approx)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [key, q.scope_key, q.last, q.history, q.exact_hash, _blob(vec.last), _blob(vec.history),
                     int(flags[i])])
            in_chroma, grown = self.mirror.mark(db, {items[i][0].scope_key for i in latest.values()})
        failed: set[str] = set()
        if keys := [k for k, i in latest.items() if items[i][0].scope_key in in_chroma]:
            try:
                self.index.add(keys, np.stack([vectors[latest[k]].search for k in keys]),
                               [items[latest[k]][0].scope_key for k in keys])
            except IndexUnavailable as exc:  # keep SQLite and Chroma in step: undo the rows
                log.warning("L1 store skipped: %s", exc)
                with self._dbh.tx() as db:
                    db.conn.executemany("DELETE FROM cache_entries WHERE key = ?", [[k] for k in keys])
                failed = set(keys)
        for scope in grown:  # past `max_scope` with these rows: Chroma takes the scope over
            self.mirror.promote(scope)
        return [None if (key := entry_key(q)) in failed else key for q, *_ in items]

    def evict(self, limits: Limits) -> list[Eviction]:
        """TTL and capacity for L1; the vectors go in the same step as their rows."""
        return self.evictor.enforce("L1", limits, before_delete=self.mirror.drop)

    def delete(self, keys: list[str]) -> None:
        self.mirror.drop(keys)
        with self._dbh.tx() as db:
            db.conn.executemany("DELETE FROM cache_entries WHERE key = ?", [[k] for k in keys])

    def _safe_delete(self, ids: list[str]) -> None:
        try:
            self.index.delete(ids)
        except IndexUnavailable as exc:
            log.warning("could not drop orphan vectors: %s", exc)

    # -- consistency ----------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._dbh.db.execute("SELECT COUNT(*) FROM semantic_index").fetchone()[0])

    def reconcile(self) -> dict[str, int]:
        """Make Chroma hold exactly the vectors of the rows of the scopes it holds."""
        return self.mirror.reconcile()
