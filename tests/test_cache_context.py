"""L1 verification with the model's help, and the fast candidate search.

Real MiniLM throughout: the context check reads the swapped words' own states in their sentences;
the fast int8 graph is derived from the shipped one (once per session, in the shared models dir)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferscale.cache.chroma_index import ChromaIndex
from inferscale.cache.scope import build_query
from inferscale.cache.semantic import FAST_MARGIN, SemanticCache
from inferscale.cache.verify import VerifyConfig, verify
from inferscale.db import Database
from inferscale.embeddings import FAST_MODEL_FILE, Embedder, build_fast_model

_EMBEDDER = Embedder()


@pytest.mark.parametrize(("a", "b", "same"), [
    ("How do I silence alerts on my watch?", "How do I mute alerts on my watch?", True),
    ("Can I pay for parking with cash?", "Can I pay for parking with card?", False),
])
def test_a_swapped_word_wordnet_cannot_relate_is_judged_in_context(a: str, b: str, same: bool) -> None:
    # WordNet relates neither pair: the model's reading of the swapped words in their sentences is
    # the evidence, and without it the pair is a miss however close it embeds.
    v = verify(a, b, 0.95, VerifyConfig(), context=_EMBEDDER.span_similarity)
    assert v.ok is same and "in context" in v.reason and v.check == "edit_shape", v
    assert not verify(a, b, 0.79, VerifyConfig(), context=_EMBEDDER.span_similarity).ok  # below the floor
    assert not verify(a, b, 0.85).ok  # no model at hand: the focused threshold, 0.90


@pytest.mark.parametrize(("a", "b", "same", "why"), [
    ("Where is your nearest store to Leeds station?", "Where is your nearest shop to Leeds station?", True,
     "WordNet synonyms"),
    ("Can I bring my puppy on the train?", "Can I bring my kitten on the train?", False, "sister terms"),
    ("Is the museum suitable for toddlers?", "Is the museum suitable for teenagers?", False, "sister terms"),
    ("Should the soil be wet before sowing?", "Should the soil be dry before sowing?", False, "antonyms"),
])
def test_a_swapped_word_wordnet_relates_is_decided_by_the_relation(a: str, b: str, same: bool, why: str) -> None:
    v = verify(a, b, 0.99, VerifyConfig(), context=_EMBEDDER.span_similarity)
    assert v.ok is same and why in v.reason, v
    assert verify(a, b, 0.75).ok is same  # synonyms need only `synonym_threshold` (0.70)


def test_span_similarity_reads_words_in_their_sentence() -> None:
    a, b = "I left my bank card at the river bank", "I left my bank card at the river bank"
    first, last = [(9, 13)], [(35, 39)]
    assert _EMBEDDER.span_similarity(a, first, b, first) == pytest.approx(1.0, abs=1e-5)
    # the same word in two places (two senses): its states differ, as a word list's would not
    assert _EMBEDDER.span_similarity(a, first, b, last) < 0.99
    assert _EMBEDDER.span_similarity(a, [(100, 120)], b, first) is None  # no word piece in the span


def test_an_acronym_spelled_out_is_the_same_name_another_acronym_is_not() -> None:
    v = verify("How do I get a National Insurance number?", "How do I get an NI number?", 0.7)
    assert v.ok and v.reason.startswith("same meaningful words"), v
    v = verify("How do I get a National Insurance number?", "How do I get a VAT number?", 0.95)
    assert not v.ok and "name" in v.reason, v


def test_a_negation_and_an_undoing_verb_on_either_side_are_the_same_polarity() -> None:
    stop = "How do I stop the newsletter emails?"
    dont = "I don't want the newsletter emails any more, how do I unsubscribe from them?"
    v = verify(stop, dont, 0.7)
    assert v.ok and "negation" not in v.reason and "operator" not in v.reason, v
    v = verify("How do I get the newsletter emails?", dont, 0.7)  # only one side flips
    assert not v.ok and "negation on one side only" in v.reason, v
    # in an edit the two still cancel ("stop" vs "not"), and one alone still rejects outright
    assert verify("Should I stop watering my cactus in winter?",
                  "Should I not water my cactus in winter?", 0.95).ok
    assert verify("Should I water my cactus in winter?",
                  "Should I stop watering my cactus in winter?", 0.99).required > 1


@pytest.fixture(scope="module")
def fast_graph(models_dir: Path) -> Path:
    return build_fast_model(models_dir)


def test_the_fast_graph_is_built_once_and_stays_close(fast_graph: Path, models_dir: Path) -> None:
    assert fast_graph == models_dir / FAST_MODEL_FILE and fast_graph.stat().st_size > 1_000_000
    mtime = fast_graph.stat().st_mtime_ns
    assert build_fast_model(models_dir) == fast_graph and fast_graph.stat().st_mtime_ns == mtime
    assert not [p for p in models_dir.iterdir() if p.name.startswith(".")]  # no temp files left
    texts = ["How do I reset my library PIN?", "Which tariffs include roaming texts?"]
    exact, fast = Embedder().embed(texts), Embedder(fast=fast_graph).embed_fast(texts)
    cos = (exact * fast).sum(axis=1)
    assert (cos > 0.98).all() and (cos < 0.99999).all()  # close, and really another graph


STORED = ["How do I reset my library PIN?", "Do you deliver to Ireland?",
          "What time does the pool open on Sundays?", "Can I bring my dog to the hotel?"]
QUERIES = ["how can I reset my library PIN", "Do you deliver to Scotland?", "Do you ship to Ireland?",
           "What time does the pool close on Sundays?", "Can I bring my cat to the hotel?",
           "When does the pool open on a Sunday?", "Is the gym open late?",
           "How do I change my password?", "Can I bring my dog to the hotel?"]


def test_fast_vectors_only_rule_out_misses_every_hit_is_decided_exactly(
        fast_graph: Path, tmp_path: Path) -> None:
    stored, queries = STORED, QUERIES
    results = {}
    for name, emb in (("fast", Embedder(fast=fast_graph)), ("exact", Embedder())):
        cache = SemanticCache(Database(tmp_path / f"{name}.db"), ChromaIndex(tmp_path / name), emb)
        for s in stored:
            cache.put(build_query([{"role": "user", "content": s}]), {"answer": s}, 0.001, 100)
        results[name] = [cache.lookup(build_query([{"role": "user", "content": q}])) for q in queries]
    fast, exact = results["fast"], results["exact"]
    assert [r.match and r.match.key for r in fast] == [r.match and r.match.key for r in exact]
    assert sum(r.match is not None for r in exact) >= 3  # the set has hits, not only misses
    for f, e in zip(fast, exact, strict=True):
        if e.match:  # hits carry the exact similarity and reason
            assert f.match.similarity == pytest.approx(e.match.similarity, abs=1e-6)
            assert f.match.reason == e.match.reason
    ruled_out = [x for r in fast for x in r.rejected if "fast vectors" in x]
    assert ruled_out and all(f"+ {FAST_MARGIN} margin" in x for x in ruled_out)
    assert np.isfinite(FAST_MARGIN) and 0 < FAST_MARGIN < 0.1


def test_entries_stored_with_fast_vectors_are_decided_as_exact_ones(
        fast_graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The L1 writer stores the fast vectors a lookup already has: no exact pass at store. A
    candidate that could pass gets its exact vectors then (kept), so every decision is unchanged."""
    exact = SemanticCache(Database(tmp_path / "e.db"), ChromaIndex(tmp_path / "e"), Embedder())
    lazy_db = Database(tmp_path / "l.db")
    lazy = SemanticCache(lazy_db, ChromaIndex(tmp_path / "l"), Embedder(fast=fast_graph))
    stored = [*STORED, "Which glaze suits a stoneware mug fired at cone six?"]  # near none of the queries
    runs = _count_runs(monkeypatch)
    for s in stored:
        q = build_query([{"role": "user", "content": s}])
        vecs, approx = lazy.store_vectors([(q, lazy.known_vectors(q))])
        lazy.put_many([(q, {"answer": s}, 0.001, 100)], vecs, approx)
    assert runs and set(runs) == {"fast"}  # storing cost no exact pass
    monkeypatch.undo()
    for s in stored:
        exact.put(build_query([{"role": "user", "content": s}]), {"answer": s}, 0.001, 100)
    got = [(lazy.lookup(build_query([{"role": "user", "content": q}])),
            exact.lookup(build_query([{"role": "user", "content": q}]))) for q in QUERIES]
    assert [f.match and f.match.key for f, _ in got] == [e.match and e.match.key for _, e in got]
    assert sum(e.match is not None for _, e in got) >= 3
    for f, e in got:
        if e.match:
            assert f.match.similarity == pytest.approx(e.match.similarity, abs=1e-5)
            assert f.match.reason == e.match.reason
    still = {r[0] for r in lazy_db.db.execute("SELECT last FROM semantic_index WHERE approx = 1")}
    served = {e.match.matched_prompt for _, e in got if e.match}
    assert served and not served & still  # a served entry now holds its exact vectors
    assert still  # and entries no lookup needed exactly were never embedded exactly


def test_a_queued_entry_is_ruled_out_only_when_it_would_fail_on_exact_vectors(
        fast_graph: Path, tmp_path: Path) -> None:
    """`could_match` (an entry still queued behind its answer, both sides on fast vectors) must say
    yes for every pair the exact lookup serves, and no for some it rejects: else waiting is pointless."""
    stored, queries = STORED, QUERIES
    fast_emb = Embedder(fast=fast_graph)
    fast_cache = SemanticCache(Database(tmp_path / "f.db"), ChromaIndex(tmp_path / "f"), fast_emb)
    served, ruled_out = 0, 0
    for i, s in enumerate(stored):
        exact = SemanticCache(Database(tmp_path / f"e{i}.db"), ChromaIndex(tmp_path / f"e{i}"), Embedder())
        sq = build_query([{"role": "user", "content": s}])
        exact.put(sq, {"answer": s}, 0.001, 100)
        pending = [(sq, fast_cache.vectors(sq, fast=True), FAST_MARGIN)]
        for q in queries:
            qq = build_query([{"role": "user", "content": q}])
            hit = exact.lookup(qq).match is not None
            could = fast_cache.could_match(qq, pending)
            assert could or not hit, (s, q)
            served += hit
            ruled_out += not could
    assert served >= 3 and ruled_out >= len(stored) * len(queries) // 2


def test_exact_vectors_memoised_by_the_analysis_step_skip_the_fast_graph(
        fast_graph: Path, tmp_path: Path) -> None:
    emb = Embedder(fast=fast_graph)
    cache = SemanticCache(Database(tmp_path / "t.db"), ChromaIndex(tmp_path / "c"), emb)
    cache.put(build_query([{"role": "user", "content": "Do you deliver to Ireland?"}]), {"answer": "y"}, 0, 1)
    q = build_query([{"role": "user", "content": "Is the gym open late tonight?"}])
    assert any("fast vectors" in x for x in cache.lookup(q).rejected)  # cold: the fast graph
    emb.embed([q.last])  # what the analysis step does with the prompt before the cache lookup
    r = cache.lookup(q)
    assert r.rejected and not any("fast vectors" in x for x in r.rejected)


def test_a_broken_fast_graph_falls_back_to_exact_vectors(tmp_path: Path) -> None:
    broken = tmp_path / FAST_MODEL_FILE
    broken.write_bytes(b"not an onnx graph")
    emb = Embedder(fast=broken)
    cache = SemanticCache(Database(tmp_path / "t.db"), ChromaIndex(tmp_path / "c"), emb)
    cache.put(build_query([{"role": "user", "content": "How do I reset my library PIN?"}]), {"answer": "y"}, 0, 1)
    r = cache.lookup(build_query([{"role": "user", "content": "how can I reset my library PIN"}]))
    assert r.match is not None and r.error is None
    assert emb.fast is None  # given up once, not retried per lookup


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every real ONNX run from now on, by graph ("exact" or "fast"); the runs still happen."""
    from inferscale import embeddings

    runs: list[str] = []
    real_run = embeddings._OnnxMiniLM._run

    def counted(self: embeddings._OnnxMiniLM, enc: list, mask: np.ndarray) -> np.ndarray:
        runs.append("fast" if self.graph.name == FAST_MODEL_FILE else "exact")
        return real_run(self, enc, mask)

    monkeypatch.setattr(embeddings._OnnxMiniLM, "_run", counted)
    return runs


def test_a_prompt_embedded_alone_keeps_its_word_states_from_the_same_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferscale.embeddings import _load

    text = "Which ferry leaves Oban first on a Tuesday?"
    emb = Embedder()
    runs = _count_runs(monkeypatch)
    vec = emb.embed([text])[0]
    offsets, hidden = _load("onnx-int8").token_states(text)  # a run of its own, for comparison
    assert runs == ["exact", "exact"]
    # the kept states and vector are bit-identical to separate runs' (the inputs are the same)
    assert np.array_equal(vec, _load("onnx-int8").encode([text])[0])
    assert emb._token_states(text)[0] == offsets and np.array_equal(emb._token_states(text)[1], hidden)
    assert len(runs) == 3  # the memoised states: no run for them
    emb.embed(["Which ferry leaves Oban last?", "Is there a bus to the pier?"])  # a batch keeps none
    assert len(emb._states) == 1


def test_the_word_states_memo_is_bounded_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferscale import embeddings

    emb = Embedder(memo_size=4)
    one = emb.embed(["A lighthouse keeper's first question?"]) is not None and emb._states_bytes
    monkeypatch.setattr(embeddings, "STATES_MEMO_BYTES", int(one * 2.5))
    for i in range(6):
        emb.embed([f"A lighthouse keeper's question number {i}?"])
    assert 1 <= len(emb._states) <= 3 and emb._states_bytes <= one * 2.5


def test_a_near_miss_reads_the_prompts_word_states_from_its_exact_pass(
        fast_graph: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A swap WordNet cannot relate needs the model's states of both sentences: the prompt's come
    from the exact pass the lookup makes anyway, the cached one's from when it was stored."""
    stored, asked = "Can I pay the harbour fee with cash?", "Can I pay the harbour fee with card?"
    verdicts = {}
    for name, emb in (("fast", Embedder(fast=fast_graph)), ("exact", Embedder())):
        cache = SemanticCache(Database(tmp_path / f"{name}.db"), ChromaIndex(tmp_path / name), emb)
        cache.put(build_query([{"role": "user", "content": stored}]), {"answer": "y"}, 0, 1)
        runs = _count_runs(monkeypatch)
        r = cache.lookup(build_query([{"role": "user", "content": asked}]))
        verdicts[name] = (r.match is None, r.rejected[-1:])
        assert runs == (["fast", "exact"] if name == "fast" else ["exact"]), runs
        monkeypatch.undo()
    assert verdicts["fast"] == verdicts["exact"] and "in context" in verdicts["exact"][1][0], verdicts
