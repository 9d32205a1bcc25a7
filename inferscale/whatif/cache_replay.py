"""Re-run the L4 and L1 levels over logged requests in arrival order, with given tunables.

Nothing of the cache's decision is re-implemented here: every L1 candidate is judged by the cache's
own `verify.decide` with the `VerifyConfig` that `levels.verify_config` builds from the tunables,
on the exact vectors stored with each request, and the search vector is the cache's own
(`semantic.Vectors.search`). What is modelled, not re-run:
  * the nearest-neighbour search: the K nearest *earlier* requests of the same scope are found once
    (exact cosine, blocked), then each lookup reads the first `SemanticCache.k` of them still stored;
  * capacity: an entry count over `cache_lN_max_entries` drops the oldest entry (the cache itself
    evicts by GDSF priority, and also by MB, which the replay does not model); TTLs are exact.
The replay starts from an empty cache at the first replayed request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..cache.levels import limits_for, verify_config
from ..cache.semantic import Vectors
from ..cache.turns import Candidate
from ..cache.verify import SpanSimilarity, decide
from ..settings import Tunables
from .log import Logged

K_SEARCH = 32  # earlier neighbours kept per request; a lookup reads the first k still stored
L1_K = 4  # = SemanticCache's default k


@dataclass(frozen=True)
class Served:
    level: str | None  # "L4", "L1" or None (a miss: computed and stored)
    source: int | None  # index of the logged request whose answer is served


def neighbours(logged: Sequence[Logged], k: int = K_SEARCH, block: int = 1024) -> list[list[tuple[int, float]]]:
    """Per request, its k most similar earlier requests of the same scope: (index, cosine of the
    search vectors), most similar first. Independent of the tunables: computed once per replay."""
    out: list[list[tuple[int, float]]] = [[] for _ in logged]
    by_scope: dict[str, list[int]] = {}
    for i, r in enumerate(logged):
        by_scope.setdefault(r.scope, []).append(i)
    for idx in by_scope.values():
        if len(idx) < 2:
            continue
        V = np.stack([Vectors(logged[i].v_last, logged[i].v_hist).search for i in idx]).astype(np.float32)
        for a in range(1, len(idx), block):
            b = min(len(idx), a + block)
            S = V[a:b] @ V[:b].T
            rows = np.arange(a, b)[:, None]
            S[np.arange(b)[None, :] >= rows] = -np.inf  # only requests that came before
            kk = min(k, b - 1)
            top = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
            sims = np.take_along_axis(S, top, axis=1)
            order = np.argsort(-sims, axis=1)
            top = np.take_along_axis(top, order, axis=1)
            sims = np.take_along_axis(sims, order, axis=1)
            for r in range(b - a):
                out[idx[a + r]] = [(idx[int(j)], float(s)) for j, s in zip(top[r], sims[r], strict=True)
                                   if np.isfinite(s)]
    return out


def _lowest_need(tun: Tunables) -> float:
    """Below every similarity the verifier's config names, no candidate can pass (except an
    identical conversation, checked first): such candidates are rejected without the verifier."""
    return min(v for v in asdict(verify_config(tun)).values() if isinstance(v, float))


def replay_cache(logged: Sequence[Logged], tun: Tunables, near: list[list[tuple[int, float]]],
                 context: SpanSimilarity | None = None) -> list[Served]:
    """What each logged request would have got from the cache with `tun`."""
    if not tun.cache_enabled:
        return [Served(None, None) for _ in logged]
    cfg = verify_config(tun)
    low = _lowest_need(tun)
    l4_lim, l1_lim = limits_for(tun, "L4"), limits_for(tun, "L1")
    l4: OrderedDict[str, int] = OrderedDict()  # L4 key -> index of the request that stored it
    l1: OrderedDict[tuple[str, str], int] = OrderedDict()  # (scope, conversation hash) -> index
    out: list[Served] = []
    for i, r in enumerate(logged):
        src = l4.get(r.l4_key)
        if src is not None and not _expired(logged[src].ts, r.ts, l4_lim.ttl_s):
            out.append(Served("L4", src))
            continue
        hit = _l1(logged, i, near[i], l1, tun, cfg, low, l1_lim.ttl_s, context) if tun.semantic_enabled else None
        if hit is not None:
            out.append(Served("L1", hit))
            continue
        out.append(Served(None, None))
        _put(l4, r.l4_key, i, l4_lim.max_entries)
        if tun.semantic_enabled:
            _put(l1, (r.scope, r.exact_hash), i, l1_lim.max_entries)
    return out


def _expired(created: float, now: float, ttl_s: float) -> bool:
    return ttl_s > 0 and created < now - ttl_s


def _put(store: OrderedDict, key: object, i: int, max_entries: int) -> None:
    store.pop(key, None)  # the cache replaces an entry of the same key
    store[key] = i
    while len(store) > max_entries:
        store.popitem(last=False)


def _l1(logged: Sequence[Logged], i: int, cands: list[tuple[int, float]], l1: OrderedDict, tun: Tunables,
        cfg: object, low: float, ttl_s: float, context: SpanSimilarity | None) -> int | None:
    q = logged[i]
    query = Candidate(q.last, q.history, q.exact_hash)
    seen = 0
    for j, _ in cands:
        c = logged[j]
        if l1.get((c.scope, c.exact_hash)) != j:
            continue  # not stored (it was a hit), replaced by a later one, or evicted
        seen += 1
        if seen > L1_K:
            break
        if _expired(c.ts, q.ts, ttl_s):
            continue
        sim_last = min(1.0, float(np.dot(c.v_last, q.v_last)))  # as SemanticCache._verify
        if sim_last < low and c.exact_hash != q.exact_hash:
            continue
        sim_hist = min(1.0, float(np.dot(c.v_hist, q.v_hist))) if c.v_hist is not None and q.v_hist is not None else None
        verdict = decide(Candidate(c.last, c.history, c.exact_hash), query, sim_last, sim_hist, cfg, context)
        if verdict.ok:
            return j
    return None

