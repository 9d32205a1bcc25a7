"""Re-run the L4 and L1 levels over logged requests in arrival order, with given tunables.

Nothing of the cache's decision is re-implemented here: every L1 candidate is judged by the cache's
own `verify.decide` with the `VerifyConfig` that `levels.verify_config` builds from the tunables,
on the exact vectors stored with each request; the search vector is the cache's own (the last
message plus `semantic.HISTORY_WEIGHT` x the earlier turns, normalised: `semantic.Vectors.search`,
computed for all requests at once). What is modelled, not re-run:
  * the nearest-neighbour search: for each cache entry (a scope and a conversation, as L1 keys
    them), the K nearest entries first seen earlier in the same scope are found once (exact cosine,
    blocks of entries x all earlier entries as one product, ties to the earlier entry; in a scope of
    more than PROJECT_ABOVE entries, candidates from a PCA projection re-ranked exactly), then each
    lookup reads the first `SemanticCache.k` of them still stored;
  * capacity: an entry count over `cache_lN_max_entries` drops the oldest entry (the cache itself
    evicts by GDSF priority, and also by MB, which the replay does not model); TTLs are exact.
The replay starts from an empty cache at the first replayed request.

What is skipped changes no answer: a neighbour below the lowest similarity the config names is
never verified (`reach`: past the last one that could be, a lookup stops reading), and a verdict is
kept across replays with other tunables only where the fields it read agree (`verdicts`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..blas import single_thread
from ..cache.chat import decide
from ..cache.levels import limits_for, verify_config
from ..cache.lexicon import default_lexicon
from ..cache.scope_search import HISTORY_WEIGHT
from ..cache.turns import Candidate
from ..cache.verify import SpanSimilarity, VerifyConfig
from ..settings import Tunables
from .log import Logged
from .verdicts import Verdicts

K_SEARCH = 32  # earlier neighbours kept per entry; a lookup reads the first k still stored
PROJECT_ABOVE = 4096  # entries in one scope above which candidates are found in a projection
PROJECT_DIM = 64
EXACT_BLOCK = 512  # rows per product: a smaller block wastes less on the masked later entries
L1_K = 4  # = SemanticCache's default k
GROUP = 8  # columns per group in the exact search's bound on a row's k-th similarity


@dataclass(frozen=True)
class Served:
    level: str | None  # "L4", "L1" or None (a miss: computed and stored)
    source: int | None  # index of the logged request whose answer is served


@dataclass(frozen=True)
class Near:
    """Per cache entry (a scope and a conversation: what L1 keys an entry by), its most similar
    entries first seen earlier in the same scope, most similar first (ties: the earlier entry): their
    entry ids (-1 = none) and cosines of the search vectors. Independent of the tunables."""

    entry: list[int]  # request -> entry id
    top: np.ndarray  # entry id -> neighbour entry ids (-1 = none), (entries, K) int
    sims: np.ndarray  # (entries, K) float32; rows are read as lists per lookup, not all converted


Vector = np.ndarray | bytes  # a stored vector, or its float32 blob as the log holds it


def search_vectors(logged: Sequence[Logged]) -> np.ndarray:
    """`semantic.Vectors.search` for every request, as one matrix."""
    return _search_matrix([r.v_last for r in logged], [r.v_hist for r in logged])


def _matrix(vs: Sequence[Vector]) -> np.ndarray:
    if vs and isinstance(vs[0], bytes):  # one read of the joined blobs, not one array per row
        return np.frombuffer(b"".join(vs), dtype=np.float32).reshape(len(vs), -1)  # type: ignore[arg-type]
    return np.stack(vs).astype(np.float32)


def _search_matrix(last: Sequence[Vector], history: Sequence[Vector | None]) -> np.ndarray:
    L = _matrix(last)
    hist = [i for i, v in enumerate(history) if v is not None]
    if hist:
        L = L.copy() if not L.flags.writeable else L
        H = _matrix([v for i in hist if (v := history[i]) is not None])
        v = L[hist] + HISTORY_WEIGHT * H
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        L[hist] = v / np.where(norms == 0, 1.0, norms)
    return L


def entries(logged: Sequence[Logged]) -> tuple[list[int], list[int]]:
    """(entry id of each request, index of each entry's first request): requests with the same
    scope and exact text are one cache entry."""
    return _entries([r.scope for r in logged], [r.exact_hash for r in logged])


def _entries(scopes: Sequence[str], hashes: Sequence[str]) -> tuple[list[int], list[int]]:
    entry_of: dict[tuple[str, str], int] = {}
    eid = [entry_of.setdefault(key, len(entry_of)) for key in zip(scopes, hashes, strict=True)]
    # ids are given in order of first appearance: the first index of each, in id order
    reps = np.unique(np.array(eid, dtype=np.int64), return_index=True)[1].tolist() if eid else []
    return eid, reps


def neighbours(logged: Sequence[Logged], k: int = K_SEARCH, block: int = 2048) -> Near:
    return neighbours_of([r.scope for r in logged], [r.exact_hash for r in logged],
                         [r.v_last for r in logged], [r.v_hist for r in logged], k, block)


def neighbours_of(scopes: Sequence[str], hashes: Sequence[str], last: Sequence[Vector],
                  history: Sequence[Vector | None], k: int = K_SEARCH, block: int = 2048) -> Near:
    """`neighbours` from the log's columns (the replay starts it before its records are built)."""
    eid, reps = _entries(scopes, hashes)
    m = len(reps)
    top = np.full((m, k), -1, dtype=np.int64)
    sims = np.full((m, k), -np.inf, dtype=np.float32)
    by_scope: dict[str, list[int]] = {}
    for e, i in enumerate(reps):
        by_scope.setdefault(scopes[i], []).append(e)
    V_all = (_search_matrix([last[i] for i in reps], [history[i] for i in reps]) if m
             else np.zeros((0, 1), np.float32))
    with single_thread():
        for ents in by_scope.values():
            if len(ents) >= 2:
                _scope_neighbours(np.array(ents), V_all, top, sims, k, block)
    return Near(eid, top, sims)


def _scope_neighbours(ents: np.ndarray, V_all: np.ndarray, top: np.ndarray, sims: np.ndarray, k: int,
                      block: int) -> None:
    """Top-k of earlier entries by cosine, ties to the earlier entry; exact, except in a scope of more
    than PROJECT_ABOVE entries, where the candidates are found in a PCA projection first
    (PROJECT_DIM), then re-ranked exactly."""
    V = V_all[ents]
    if len(ents) <= PROJECT_ABOVE:
        _exact_top(V, ents, top, sims, k, min(block, EXACT_BLOCK))
        return
    sample = V[:: max(1, len(V) // 2000)]
    _, _, vt = np.linalg.svd(sample - sample.mean(axis=0), full_matrices=False)
    W = V @ vt[:PROJECT_DIM].T
    wide = 4 * k
    for a in range(1, len(ents), block):
        b = min(len(ents), a + block)
        S = W[a:b] @ W[:b].T
        S[np.arange(b)[None, :] >= np.arange(a, b)[:, None]] = -np.inf  # only earlier entries
        kk = min(wide, b - 1)
        part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
        ok = np.isfinite(np.take_along_axis(S, part, axis=1))
        # re-rank the candidates on the exact vectors
        ps = np.where(ok, np.einsum("rd,rcd->rc", V[a:b], V[part]), -np.inf)
        order = np.argsort(-ps, axis=1, kind="stable")[:, :k]
        part = np.take_along_axis(part, order, axis=1)
        ps = np.take_along_axis(ps, order, axis=1)
        rows = ents[a:b]
        n = part.shape[1]
        top[rows, :n] = np.where(np.isfinite(ps), ents[part], -1)
        sims[rows, :n] = ps


def _exact_top(V: np.ndarray, ents: np.ndarray, top: np.ndarray, sims: np.ndarray, k: int, block: int) -> None:
    """A block of entries x every entry up to the block's end as one product, later ones masked; per
    row the k-th largest similarity by partition, then every candidate at or above it (all of a tie)
    sorted by similarity, then by arrival: the same as sorting all earlier entries.

    The partition and the candidates are found among the columns that can hold them only: the
    columns of a row are dealt into GROUP groups (column c into group c mod the number of groups;
    the last, fewer than GROUP, columns are always read); at least k entries are at or above the
    k-th largest group maximum, so the row's k-th largest is too, and every entry at or above it is
    in a group whose maximum is. Those groups (all of a tie) are the only others the selection reads."""
    n, g = len(ents), GROUP
    low = np.finfo(V.dtype).min
    later = np.triu(np.ones((block, block), dtype=bool))  # within the diagonal block: self and later
    buf = np.empty(min(block, n) * n, dtype=V.dtype)  # one product buffer: no fresh pages per block
    for a in range(0, n, block):
        b = min(n, a + block)
        rows = b - a
        S = np.matmul(V[a:b], V[:b].T, out=buf[: rows * b].reshape(rows, b))
        S[:, a:b][later[:rows, :rows]] = -np.inf
        cols = None
        groups = b // g  # the columns past whole groups (fewer than g) are always read
        head = groups * g
        if groups > k:
            gmax = S[:, :head].reshape(rows, g, groups).max(axis=1)
            bound = np.maximum(np.partition(gmax, groups - k, axis=1)[:, groups - k], low)
            ri, gi = np.nonzero(gmax >= bound[:, None])  # every group at or above it (all of a tie)
            counts = np.bincount(ri, minlength=rows)
            keep = int(counts.max())
            if keep < groups:
                if keep == int(counts.min()):
                    sel = gi.reshape(rows, keep)
                else:  # as many groups per row: the `keep` largest (every one at the bound among them)
                    sel = np.argpartition(gmax, groups - keep, axis=1)[:, groups - keep:]
                # column = slot x groups + group, then the columns past whole groups
                sub = np.take_along_axis(S[:, :head].reshape(rows, g, groups), sel[:, None, :], axis=2)
                S = np.concatenate([sub.reshape(rows, -1), S[:, head:]], axis=1)
                cols = sel
        w = S.shape[1]
        kk = min(k, w)
        kth = np.partition(S, w - kk, axis=1)[:, w - kk]
        # at or above the k-th, never a masked entry (a row with fewer than k earlier has kth = -inf)
        ri, pi = np.nonzero(np.maximum(kth, low)[:, None] <= S)
        counts = np.bincount(ri, minlength=rows)
        pos = np.arange(len(ri)) - (np.cumsum(counts) - counts)[ri]
        width = int(counts.max()) if len(ri) else 0
        vals = np.full((rows, width), -np.inf, dtype=S.dtype)
        col = np.full((rows, width), np.iinfo(np.int64).max, dtype=np.int64)
        vals[ri, pos] = S[ri, pi]
        if cols is not None:
            wide = g * cols.shape[1]
            pi = np.where(pi < wide, (pi // cols.shape[1]) * groups + cols[ri, pi % cols.shape[1]],
                          head + pi - wide)
        col[ri, pos] = pi
        order = np.lexsort((col, -vals), axis=1)[:, :k]  # by similarity, then arrival
        vals, col = np.take_along_axis(vals, order, axis=1), np.take_along_axis(col, order, axis=1)
        r, p = np.nonzero(np.isfinite(vals))
        top[ents[a + r], p] = ents[col[r, p]]
        sims[ents[a + r], p] = vals[r, p]


def _lowest_need(cfg: VerifyConfig) -> float:
    """Below every similarity the verifier's config names, no candidate can pass (except an
    identical conversation, checked first): such candidates are rejected without the verifier."""
    return min(v for v in asdict(cfg).values() if isinstance(v, float))


def reach(near: Near, low: float, entry_hist: np.ndarray) -> list[int]:
    """Per entry, how many of its neighbours a lookup without earlier turns must look at: past
    that, every neighbour has a search similarity below `low` and no request with earlier turns,
    so its similarity is the search one (`min(1, s)`) and the verifier is never reached (a
    neighbour is another conversation: never identical). Skipping them changes no answer: a
    rejected candidate only counts towards the `L1_K` looked at, and none is left after them."""
    top, sims = near.top, near.sims
    if top.shape[1] == 0:
        return [0] * len(top)
    # compared as the loop compares, in float64 (the float32 similarities convert exactly)
    below = np.minimum(1.0, sims.astype(np.float64)) < low
    skip = (top < 0) | (below & ~entry_hist[np.maximum(top, 0)])
    trailing = np.cumprod(skip[:, ::-1], axis=1).sum(axis=1)
    return (top.shape[1] - trailing).tolist()


def beside_verdicts(tun: Tunables) -> tuple:
    """Everything of `tun` that `replay_cache` reads, other than the verifier's config: two replays
    of a log with the same of these, whose verdicts are all the same, are the same replay."""
    l4, l1 = limits_for(tun, "L4"), limits_for(tun, "L1")
    return (tun.cache_enabled, tun.semantic_enabled, _lowest_need(verify_config(tun)),
            l4.ttl_s, l4.max_entries, l1.ttl_s, l1.max_entries)


def replay_cache(  # noqa: C901 - one pass over the log, L4 then L1 per request, kept together
        logged: Sequence[Logged], tun: Tunables, near: Near,
        context: SpanSimilarity | None = None, shared: Verdicts | None = None,
        consulted: list[Hashable] | None = None) -> list[Served]:
    """What each logged request would have got from the cache with `tun`. `shared`: verdicts kept
    from replays of the same log (and `near`) with other tunables. `consulted`, if given, receives
    the key of every verdict the replay asked `shared` for."""
    miss = Served(None, None)
    if not tun.cache_enabled:
        return [miss] * len(logged)
    cfg = verify_config(tun)
    low = _lowest_need(cfg)
    lexicon = default_lexicon()  # what `decide` would look up per call (a settings read each time)
    memo = (shared or Verdicts()).serving(context, lexicon)
    l4_lim, l1_lim = limits_for(tun, "L4"), limits_for(tun, "L1")
    ttl4, ttl1, semantic = l4_lim.ttl_s, l1_lim.ttl_s, tun.semantic_enabled
    eid, ts = near.entry, [r.ts for r in logged]
    k_all = near.top.shape[1]
    entry_hist = np.zeros(len(near.top), dtype=bool)
    entry_hist[[e for e, r in zip(eid, logged, strict=True) if r.v_hist is not None]] = True
    cut = reach(near, low, entry_hist) if semantic else []
    # entry -> (n, its first n neighbours and their similarities as lists), when first read
    rows: dict[int, tuple[int, list[int], list[float]]] = {}
    l4: OrderedDict[str, int] = OrderedDict()  # L4 key -> index of the request that stored it
    l1: OrderedDict[int, int] = OrderedDict()  # entry id (scope, conversation) -> index of its request
    out: list[Served] = []
    # An exact repeat of a request served from L1 looks the same candidates up again (a hit stores
    # nothing): the verdict is a function of the two conversations and the two similarities.
    verdicts: dict[tuple[int, int, float, float | None], bool] = {}
    l4_get, l1_get, put, max4, max1 = l4.get, l1.get, out.append, l4_lim.max_entries, l1_lim.max_entries
    served_l4: dict[int, Served] = {}  # one record per source: many hits share one
    served_l1: dict[int, Served] = {}
    for i, r in enumerate(logged):
        src = l4_get(r.l4_key)
        if src is not None and not (ttl4 > 0 and ts[src] < ts[i] - ttl4):
            put(served_l4.get(src) or served_l4.setdefault(src, Served("L4", src)))
            continue
        hit = None
        if semantic:
            own = eid[i]
            # Stored entries nearest first, as (request index, similarity): the entry of this very
            # conversation (similarity 1), then the neighbours still stored (not hits, not evicted).
            found = [(j, 1.0)] if (j := l1_get(own)) is not None else []
            n = cut[own] if r.v_hist is None else k_all
            if n and len(found) < L1_K:
                row = rows.get(own)
                if row is None or row[0] != n:  # only the n read are converted (few, past `reach`)
                    row = rows[own] = (n, near.top[own, :n].tolist(), near.sims[own, :n].tolist())
                for e, s in zip(row[1], row[2], strict=True):
                    if e < 0:
                        break
                    if (j := l1_get(e)) is not None:
                        found.append((j, s))
                        if len(found) == L1_K:
                            break
            query = None
            for j, s in found:
                if ttl1 > 0 and ts[j] < ts[i] - ttl1:
                    continue  # expired
                c = logged[j]
                if c.v_hist is None and r.v_hist is None:
                    sim_last = min(1.0, s)  # the search vector is the last message's
                else:
                    sim_last = min(1.0, float(np.dot(c.v_last, r.v_last)))  # as SemanticCache._verify
                if sim_last < low and c.exact_hash != r.exact_hash:
                    continue
                sim_hist = (min(1.0, float(np.dot(c.v_hist, r.v_hist)))
                            if c.v_hist is not None and r.v_hist is not None else None)
                key = (j, own, sim_last, sim_hist)
                ok = verdicts.get(key)
                if ok is None:
                    query = query or Candidate(r.last, r.history, r.exact_hash)
                    cached = Candidate(c.last, c.history, c.exact_hash)
                    ok = verdicts[key] = memo.ok(key, cfg, lambda config: decide(  # noqa: B023 - called here
                        cached, query, sim_last, sim_hist, config, context, lexicon).ok)  # noqa: B023
                if ok:
                    hit = j
                    break
        if hit is not None:
            put(served_l1.get(hit) or served_l1.setdefault(hit, Served("L1", hit)))
            continue
        put(miss)
        # stored as the cache stores: a key already there is replaced, the oldest past the limit go
        l4.pop(r.l4_key, None)
        l4[r.l4_key] = i
        if len(l4) > max4:
            _trim(l4, max4)
        if semantic:
            l1.pop(own, None)
            l1[own] = i
            if len(l1) > max1:
                _trim(l1, max1)
    if consulted is not None:
        consulted.extend(verdicts)  # each asked once per replay (then kept in `verdicts`)
    return out


def _trim(store: OrderedDict, max_entries: int) -> None:
    while len(store) > max_entries:
        store.popitem(last=False)
