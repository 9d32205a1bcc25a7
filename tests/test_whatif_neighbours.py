"""The what-if replay's blocked neighbour search gives the same neighbours, and so the same hits, as
the straightforward search (every earlier entry of the scope compared one by one, sorted by
similarity, ties to the earlier entry).

The vectors are random but exactly representable: four coordinates of 0.5 with random signs, so
every cosine is a multiple of 0.25 whatever the order of summation. That makes ties common (at the
K-th neighbour too) and puts similarities exactly on the thresholds the tunables set."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inferscale.settings import Tunables
from inferscale.types import Analysis
from inferscale.whatif.cache_replay import K_SEARCH, Near, entries, neighbours, replay_cache, search_vectors
from inferscale.whatif.log import Logged

DIM = 12
# Own sentences: the same words (served from the floor), an added word, a changed number (rejected).
TEXTS = (
    "how do I descale the kettle in my kitchen",
    "how do I descale the kettle in my kitchen quickly",
    "what time does the ferry to pier 12 leave on sunday",
    "what time does the ferry to pier 14 leave on sunday",
    "which bulb fits the lamp on my porch",
)
HISTORY = "user: I rent a flat with a small kitchen\x1eassistant: Noted."


def synthetic_log(n: int, seed: int, spread: bool = False) -> list[Logged]:
    """`spread`: coordinates in sixteenths instead, no chats (still exact: few ties, most cosines distinct)."""
    rng = np.random.default_rng(seed)
    uniques: list[tuple[np.ndarray, str, bool]] = []
    out = []
    an = Analysis(0.3, "chat", 10, "chat", ())
    for i in range(n):
        if uniques and rng.random() < 0.25:  # an exact repeat of an earlier conversation
            u = int(rng.integers(0, len(uniques)))
        else:
            v = np.zeros(DIM, dtype=np.float32)
            if spread:
                v[:] = rng.integers(-8, 9, DIM) / 16
            else:
                v[rng.choice(DIM, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
            # (no chats when spread: a chat's search vector is normalised, no longer exact)
            uniques.append((v, TEXTS[int(rng.integers(0, len(TEXTS)))], bool(rng.random() < 0.2) and not spread))
            u = len(uniques) - 1
        v, text, chat = uniques[u]
        scope = f"S:{u % 2}"
        out.append(Logged(
            request_id=f"r{i}", ts=1000.0 + i, prompt=text, scope=scope, l4_key=f"L4:{scope}:{u}", last=text,
            # A chat's history vector is its last message's: the search vector stays exact (= v).
            history=HISTORY if chat else "", exact_hash=f"x{u}", v_last=v, v_hist=v if chat else None,
            analysis=an, strategy="single", router="complexity", explicit=(), answer=f"answer {u}",
            models=("m0",), cost_usd=1e-5, latency_ms=100.0, tokens_out=10))
    return out


def straightforward(logged: list[Logged], k: int = K_SEARCH) -> Near:
    """Each entry against every earlier entry of its scope, one at a time, in float64."""
    eid, first = entries(logged)  # the grouping is shared; the search is what is checked
    V = search_vectors([logged[i] for i in first]).astype(np.float64)
    top = np.full((len(first), k), -1, dtype=np.int64)
    sims = np.full((len(first), k), -np.inf, dtype=np.float32)
    for e, i in enumerate(first):
        earlier = [(-float(V[e] @ V[d]), d) for d in range(e) if logged[first[d]].scope == logged[i].scope]
        for col, (neg, d) in enumerate(sorted(earlier)[:k]):
            top[e, col], sims[e, col] = d, -neg
    return Near(eid, top, sims)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_blocked_neighbours_equal_the_straightforward_search(seed: int) -> None:
    logged = synthetic_log(300, seed)
    assert np.array_equal(search_vectors(logged), np.stack([r.v_last for r in logged]))  # exact inputs
    ref = straightforward(logged)
    full = (ref.top >= 0).all(axis=1).sum()
    assert full > 50  # many entries have more earlier neighbours than are kept: the K-th tie matters
    for block in (2048, 37):  # one product per scope, and many blocks with a diagonal in each
        near = neighbours(logged, block=block)
        assert near.entry == ref.entry
        assert np.array_equal(near.top, ref.top)
        assert np.array_equal(near.sims, ref.sims)


@pytest.mark.parametrize("spread", [False, True], ids=["ties", "distinct"])
def test_neighbours_of_large_scopes_equal_the_straightforward_search(spread: bool) -> None:
    # Scopes of more than 512 entries: rows are narrowed to the column groups that can hold their
    # nearest (with many ties at the bound, and with hardly any).
    logged = synthetic_log(1800, 5, spread)
    ref = straightforward(logged)
    assert np.bincount([int(logged[i].scope[2:]) for i in entries(logged)[1]]).min() > 600
    near = neighbours(logged)
    assert np.array_equal(near.top, ref.top)
    assert np.array_equal(near.sims, ref.sims)


@pytest.mark.parametrize("knobs", [
    {},  # the defaults
    {"semantic_threshold": 0.75, "semantic_floor": 0.5, "semantic_qualifier_threshold": 0.75},  # on the ties
    {"semantic_floor": 0.25, "cache_l1_max_entries": 15, "cache_l4_max_entries": 20},  # eviction
    {"semantic_floor": 0.25, "cache_l1_ttl_s": 40.0, "cache_l4_ttl_s": 25.0},  # expiry
])
def test_fast_replay_gives_the_hits_of_the_straightforward_one(knobs: dict) -> None:
    logged = synthetic_log(300, 7)
    tun = replace(Tunables(), **knobs)
    fast = replay_cache(logged, tun, neighbours(logged, block=64))
    slow = replay_cache(logged, tun, straightforward(logged))
    assert fast == slow
    levels = {s.level for s in fast}
    assert {"L4", "L1", None} <= levels  # every outcome occurs, so the comparison says something


def test_narrowed_search_equals_the_full_one_on_float_vectors(monkeypatch: pytest.MonkeyPatch) -> None:
    # Cosines of random vectors are all distinct (no tie at a group bound): the same products, with
    # and without narrowing the rows to the groups that can hold their nearest.
    from inferscale.whatif import cache_replay

    rng = np.random.default_rng(11)
    logged = synthetic_log(1900, 3, spread=True)
    X = rng.standard_normal((len(logged), DIM)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    logged = [r._replace(v_last=X[int(r.exact_hash[1:])]) for r in logged]  # Logged is a named tuple
    narrowed = neighbours(logged)
    monkeypatch.setattr(cache_replay, "GROUP", 10_000)  # every row read whole
    full = neighbours(logged)
    assert np.array_equal(narrowed.top, full.top) and np.array_equal(narrowed.sims, full.sims)
    assert (full.top >= 0).all(axis=1).sum() > 1000


def test_a_verdict_is_reused_only_where_every_field_it_read_is_the_same() -> None:
    from inferscale.cache.verify import VerifyConfig
    from inferscale.whatif.verdicts import Verdicts

    calls: list[float] = []

    def run(cfg: VerifyConfig) -> bool:  # reads `floor`, and `threshold` only above a floor of 0.5
        calls.append(cfg.floor)
        return cfg.floor < 0.5 or cfg.threshold > 0.8

    memo = Verdicts()
    base = VerifyConfig(threshold=0.85, floor=0.4)
    assert memo.ok("pair", base, run) is True
    assert memo.ok("pair", replace(base, threshold=0.5), run) is True  # threshold never read: reused
    assert len(calls) == 1
    assert memo.ok("pair", replace(base, floor=0.6), run) is True  # floor read: asked again
    assert memo.ok("pair", replace(base, floor=0.6, threshold=0.7), run) is False  # now threshold was read
    assert memo.ok("other", base, run) is True  # another pair: asked again
    assert len(calls) == 4


def test_verdicts_kept_across_tunables_give_the_hits_of_fresh_replays() -> None:
    from inferscale.whatif.verdicts import Verdicts

    logged = synthetic_log(300, 7)
    near = neighbours(logged, block=64)
    memo = Verdicts()
    outcomes = set()
    for knobs in ({}, {"semantic_threshold": 0.75, "semantic_floor": 0.5, "semantic_qualifier_threshold": 0.75},
                  {"semantic_floor": 0.25}, {"semantic_threshold": 0.6, "semantic_floor": 0.25}, {}):
        tun = replace(Tunables(), **knobs)
        shared = replay_cache(logged, tun, near, shared=memo)
        assert shared == replay_cache(logged, tun, near)
        outcomes.add(tuple(shared))
    assert len(outcomes) >= 3  # the knobs change hits: kept verdicts had to be told apart


def test_an_earlier_replay_is_reused_only_where_it_would_be_repeated() -> None:
    from inferscale.whatif.report import Replay
    from inferscale.whatif.verdicts import Verdicts

    logged = synthetic_log(300, 7)
    rp = object.__new__(Replay)  # the replay's cache side only: no engine, no context model
    rp.logged, rp.near, rp.context = logged, neighbours(logged, block=64), None
    rp._served, rp._traces, rp._verdicts = {}, [], Verdicts()
    reused, outcomes = 0, set()
    # Knobs no verdict of this log reads (reused), and knobs that change verdicts, reach or eviction.
    for knobs in ({}, {"semantic_synonym_threshold": 0.99}, {"semantic_focused_threshold": 0.7},
                  {"semantic_threshold": 0.86}, {"semantic_rewrite_threshold": 0.8}, {"semantic_floor": 0.25},
                  {"semantic_floor": 0.25, "cache_l1_max_entries": 15}):
        tun = replace(Tunables(), **knobs)
        runs = len(rp._traces)
        got = rp.served(tun)
        reused += len(rp._traces) == runs
        assert got == replay_cache(logged, tun, rp.near)  # what a fresh replay serves
        outcomes.add(tuple(got))
    assert reused == 2 and len(rp._traces) == 5  # two repeated an earlier replay, the others did not
    assert len(outcomes) >= 3  # and the knobs change hits: a wrong reuse would show
