"""The four cache levels behind one object the engine holds.

  L1 semantic   final answers for prompts that mean the same (Chroma + verification), per scope
  L2 state      partial computation per text hash: analyses (complexity features, embeddings)
  L3 output     one model's answer per (model, messages, params): reused across strategies
  L4 result     the final aggregated answer per exact scope

Lookup order in the engine is cheapest first: L4 exact, then L1 semantic; L2 and L3 are consulted by
the steps that need them. Limits (entries, MB, TTL) come from the tunables on every call, so a change
on the dashboard applies to the next request.

Writes may be deferred (`put_later`, `store_later`) to a `background.WriteBehind`: the engine
answers first and records after. L1 stores have a writer of their own (`l1_writer`). Each costs a
Chroma upsert, and it stores the vectors the lookup already computed (the fast graph's, whose exact
ones wait until a lookup needs them: most entries never become a candidate that could pass). Each
used to cost an exact embedding pass as well; on the one writer, interleaved with the monitor's rows,
they went one at a time (gateway bench, misses: 408 stores in 257 batches, 30-90 ms each) and that
writer became the gateway's bottleneck. Alone, the stores that queue up meanwhile go in one batch.

Reads stay exact: an exact entry still queued is served from memory, and an L1 lookup waits for a
queued L1 write of its own scope only if that entry could pass verification for it
(`SemanticCache.could_match`, on the vectors both already have): waiting for every queued write
serialised concurrent requests behind each other's embedding passes.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..background import WriteBehind
from ..db import Database
from ..embeddings import Embedder
from ..settings import Settings, Tunables
from ..types import CACHE_LEVELS
from .chroma_index import ChromaIndex
from .eviction import Eviction, Limits
from .exact import Entry, ExactCache
from .judge import Judge, remembering
from .scope import Query, build_query
from .semantic import LookupResult, SemanticCache, Vectors
from .verify import VerifyConfig

log = logging.getLogger(__name__)
LEVELS = CACHE_LEVELS
ENFORCE_EVERY = 1  # check limits after every Nth write per level (1 = always)
# A lookup waits at most this long for a queued L1 entry it could match; then it searches without
# it (a hung Chroma server must not hang requests that would miss anyway).
PENDING_WAIT_S = 30.0
# A Chroma upsert's cost is mostly per call: on its server, 10-12 ms of CPU for one vector, 2.0-2.2
# per vector in a batch of 8, 1.5-1.6 in a batch of 16 (bench/chroma_modes.py). So the L1
# writer lets a batch fill for up to `L1_LINGER_S` after its oldest entry was queued, or until it
# holds `L1_BATCH` entries. Nobody waits for that: a lookup that could match a queued entry, a
# `flush` and `close` make the writer go at once (`_hurry`).
L1_BATCH = 16
L1_LINGER_S = 0.2


@dataclass(frozen=True)
class _PendingL1:
    """An L1 store handed to the writer: what to store, and what a lookup needs to tell whether
    it could match (the vectors already computed, with their error bound)."""

    query: Query
    vectors: tuple[Vectors, float] | None
    value: dict[str, Any]
    cost_usd: float
    latency_ms: float
    tun: Tunables
    written: threading.Event = field(default_factory=threading.Event, compare=False)
    queued_at: float = field(default_factory=time.monotonic, compare=False)


def limits_for(tun: Tunables, level: str) -> Limits:
    lvl = level.lower()
    return Limits(
        max_entries=int(getattr(tun, f"cache_{lvl}_max_entries")),
        max_bytes=int(float(getattr(tun, f"cache_{lvl}_max_mb")) * 1024 * 1024),
        ttl_s=float(getattr(tun, f"cache_{lvl}_ttl_s")),
    )


def verify_config(tun: Tunables) -> VerifyConfig:
    """Every threshold the L1 verification decides with, from the tunables (their one source of
    defaults; `VerifyConfig()`'s own defaults are kept equal by tests/test_tunables.py)."""
    return VerifyConfig(
        threshold=tun.semantic_threshold, floor=tun.semantic_floor,
        focused_threshold=tun.semantic_focused_threshold,
        qualifier_threshold=tun.semantic_qualifier_threshold,
        history_threshold=tun.semantic_history_threshold,
        rewrite_threshold=tun.semantic_rewrite_threshold,
        context_floor=tun.semantic_context_floor,
        context_threshold=tun.semantic_context_threshold,
        synonym_threshold=tun.semantic_synonym_threshold,
        rewrite_frame=tun.semantic_rewrite_frame,
        check_word_order=tun.semantic_check_word_order,
        role_span=tun.semantic_role_span,
    )


class CacheLevels:
    """The four levels behind one object: exact L2/L3/L4 (`get`/`put`), semantic L1
    (`lookup`/`store`), limits from the tunables on every write."""

    def __init__(self, settings: Settings, database: Database, embedder: Embedder,
                 writer: WriteBehind | None = None, l1_writer: WriteBehind | None = None) -> None:
        self.exact = ExactCache(database)
        self.semantic = SemanticCache(database, ChromaIndex(settings.chroma_dir), embedder,
                                      max_scope=settings.l1_scan_max)
        self.writer = writer
        self.l1_writer = l1_writer or writer  # L1 stores (see the module's docstring)
        self._writes: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._queued: dict[str, Entry] = {}  # exact entries handed to the writer, not yet in SQLite
        self._pending_l1: dict[str, dict[int, _PendingL1]] = defaultdict(dict)  # queued, per scope
        self._ids = itertools.count()
        self._taken: set[int] = set()  # pending L1 stores a running batch is writing
        self._more = threading.Condition(self._lock)  # the L1 batch has filled, or someone waits
        self._hurry = 0  # callers waiting for the L1 writer (it then stops lingering)
        self._closing = False

    # -- exact levels (L2, L3, L4) ----------------------------------------------------------------
    def get(self, key: str, tun: Tunables, max_age_s: float | None = None) -> Any:
        """`max_age_s` (a request's own TTL) narrows the level's TTL for this lookup."""
        level = key.split(":", 1)[0]
        ttl = _narrow(limits_for(tun, level).ttl_s if level in LEVELS else 0.0, max_age_s)
        with self._lock:
            queued = self._queued.get(key)
        if queued is not None and self.writer is not None:  # (queued implies a writer; for the type checker)
            if ttl and ttl > 0 and queued.created_at < time.time() - ttl:
                return None
            # Counted once the entry is written (the writer keeps order): hits stay true.
            self.writer.submit(self.exact.get, key)
            return queued
        return self.exact.get(key, ttl_s=ttl)

    def put(self, key: str, level: str, value: dict[str, Any], cost_usd: float, latency_ms: float,
            tun: Tunables, model: str | None = None) -> list[Eviction]:
        self.exact.put(key, level, value, cost_usd, latency_ms, model=model)
        return self.enforce(level, tun)

    def put_later(self, key: str, level: str, value: dict[str, Any], cost_usd: float, latency_ms: float,
                  tun: Tunables, model: str | None = None) -> None:
        """`put` on the writer; until it is written, `get` serves the entry from memory."""
        if self.writer is None:
            self.put(key, level, value, cost_usd, latency_ms, tun, model)
            return
        entry = Entry(key, level, value, cost_usd, latency_ms, time.time(), 1)
        with self._lock:
            self._queued[key] = entry

        def write() -> None:
            try:
                self.put(key, level, value, cost_usd, latency_ms, tun, model)
            finally:
                with self._lock:
                    if self._queued.get(key) is entry:
                        del self._queued[key]

        self.writer.submit(write)

    # -- semantic level (L1) --------------------------------------------------------------------
    @staticmethod
    def query(messages: list[dict[str, str]], **scope_parts: Any) -> Query:
        return build_query(messages, **scope_parts)

    def lookup(self, q: Query, tun: Tunables, vectors: Vectors | None = None,
               max_age_s: float | None = None, judge: Judge | None = None,
               remember: bool = True) -> LookupResult:
        """Never raises: a broken semantic level is a miss with `error` set (and a log line).
        `judge` (built by the engine from `semantic_judge_model`) may confirm a borderline candidate;
        its verdicts are kept in L2 unless `remember` is False (a request that may not store)."""
        self._await_pending(q, tun)
        if judge is not None:
            judge = remembering(judge, q.scope_key, lambda key: self._recall(key, tun),
                                (lambda key, r: self.put_later(key, "L2", {"answer": r.answer}, r.cost_usd,
                                                               r.latency_ms, tun, r.model)) if remember else None)
        try:
            return self.semantic.lookup(q, verify_config(tun),
                                        ttl_s=_narrow(limits_for(tun, "L1").ttl_s, max_age_s),
                                        vectors=vectors, judge=judge)
        except Exception as exc:  # noqa: BLE001 - the cache must not fail the request
            log.warning("L1 lookup failed: %s: %s", type(exc).__name__, exc)
            return LookupResult(None, error=f"{type(exc).__name__}: {exc}")

    def _recall(self, key: str, tun: Tunables) -> str | None:
        hit = self.get(key, tun)
        return hit.value.get("answer") if hit is not None else None

    def store(self, q: Query, value: dict[str, Any], cost_usd: float, latency_ms: float,
              tun: Tunables) -> list[Eviction]:
        try:
            if self.semantic.put(q, value, cost_usd, latency_ms) is None:
                return []
            return self.enforce("L1", tun)
        except Exception as exc:  # noqa: BLE001 - the answer is already computed; keep serving
            log.warning("L1 store failed: %s: %s", type(exc).__name__, exc)
            return []

    def store_later(self, q: Query, value: dict[str, Any], cost_usd: float, latency_ms: float,
                    tun: Tunables) -> None:
        """`store` on the L1 writer (the upsert and the rows, off the response path), with the
        vectors the lookup already computed for `q`."""
        if self.l1_writer is None:
            self.store(q, value, cost_usd, latency_ms, tun)
            return
        pending = _PendingL1(q, self.semantic.known_vectors(q), value, cost_usd, latency_ms, tun)
        with self._lock:
            self._pending_l1[q.scope_key][next(self._ids)] = pending
            if self._untaken() >= L1_BATCH:
                self._more.notify_all()
        self.l1_writer.submit(self._store_queued)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the L1 stores queued so far (the exact levels' writes are the engine's writer's)."""
        if self.l1_writer is None:
            return True
        with self._hurrying():
            return self.l1_writer.flush(timeout)

    def wait_for_room(self) -> None:
        if self.l1_writer is not None:
            self.l1_writer.wait_for_room()

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self._more.notify_all()
        if self.l1_writer is not None and self.l1_writer is not self.writer:
            self.l1_writer.close()

    @contextlib.contextmanager
    def _hurrying(self) -> Iterator[None]:
        with self._lock:
            self._hurry += 1
            self._more.notify_all()
        try:
            yield
        finally:
            with self._lock:
                self._hurry -= 1

    def _untaken(self) -> int:
        """Queued L1 entries no batch has taken yet (`_taken` is a subset of them); under the lock."""
        return sum(len(scope) for scope in self._pending_l1.values()) - len(self._taken)

    def _linger(self) -> None:
        """Let the batch fill (see `L1_BATCH`); under the lock. Not on a writer shared with other
        writes, which would wait behind it."""
        if self.l1_writer is self.writer or not self._untaken():
            return
        oldest = min(p.queued_at for scope in self._pending_l1.values() for pid, p in scope.items()
                     if pid not in self._taken)
        self._more.wait_for(lambda: self._hurry > 0 or self._closing or self._untaken() >= L1_BATCH,
                            max(0.0, oldest + L1_LINGER_S - time.monotonic()))

    def _store_queued(self) -> None:
        """Store every L1 entry queued so far in one go (one transaction, one
        upsert per scope): under load the writer's per-store costs were most of a miss's CPU.
        The jobs of entries an earlier batch took find nothing left to do."""
        with self._lock:
            self._linger()
            batch = sorted((pid, p) for scope in self._pending_l1.values() for pid, p in scope.items()
                           if pid not in self._taken)
            self._taken.update(pid for pid, _ in batch)
        if not batch:
            return
        entries = [p for _, p in batch]
        try:
            vectors, approx = self.semantic.store_vectors([(p.query, p.vectors) for p in entries])
            self.semantic.put_many([(p.query, p.value, p.cost_usd, p.latency_ms) for p in entries],
                                   vectors, approx)
            self.enforce("L1", entries[-1].tun)
        except Exception as exc:  # noqa: BLE001 - the answers are already given; keep serving
            log.warning("L1 store failed: %s: %s", type(exc).__name__, exc)
        finally:
            with self._lock:
                for pid, p in batch:
                    scope = self._pending_l1[p.query.scope_key]
                    scope.pop(pid, None)
                    if not scope:
                        del self._pending_l1[p.query.scope_key]
                    self._taken.discard(pid)
            for p in entries:
                p.written.set()

    def _await_pending(self, q: Query, tun: Tunables) -> None:
        """Wait for the queued L1 entries of `q`'s scope that could answer it (an answer already
        given must be found); entries that cannot pass verification are not waited for."""
        with self._lock:
            pending = list(self._pending_l1.get(q.scope_key, {}).values())
        if not pending:
            return
        known = [p for p in pending if p.vectors is not None]
        try:
            wait = len(known) < len(pending) or self.semantic.could_match(
                q, [(p.query, *p.vectors) for p in known if p.vectors is not None], verify_config(tun))
        except Exception as exc:  # noqa: BLE001 - when in doubt, wait
            log.warning("L1 pending check failed, waiting for the writer: %s: %s", type(exc).__name__, exc)
            wait = True
        if not wait:
            return
        with self._hurrying():
            done = pending[-1].written.wait(PENDING_WAIT_S)  # the writer keeps order
        if not done:
            log.warning("L1 lookup searched without entries still queued after %.0f s", PENDING_WAIT_S)

    # -- eviction -------------------------------------------------------------------------------
    def enforce(self, level: str, tun: Tunables, force: bool = False) -> list[Eviction]:
        with self._lock:
            self._writes[level] += 1
            due = force or self._writes[level] % ENFORCE_EVERY == 0
        if not due:
            return []
        if level == "L1":
            return self.semantic.evict(limits_for(tun, "L1"))
        return self.exact.evictor.enforce(level, limits_for(tun, level))

    def enforce_all(self, tun: Tunables) -> list[Eviction]:
        out: list[Eviction] = []
        for level in LEVELS:
            out += self.enforce(level, tun, force=True)
        return out


def _narrow(ttl_s: float, max_age_s: float | None) -> float:
    """The stricter of a level's TTL (0 = never expires) and a request's max age."""
    if max_age_s is None or max_age_s <= 0:
        return ttl_s
    return min(ttl_s, max_age_s) if ttl_s > 0 else max_age_s
