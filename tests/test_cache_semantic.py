"""L1 semantic store against a real Chroma in a temp dir and the real MiniLM embedder: hits,
verification of traps, scoping, eviction with no orphans, faults, concurrency and restart."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from inferscale.cache.chroma_index import LEGACY_COLLECTION, ChromaIndex, _forget_system, collection_name
from inferscale.cache.eviction import Limits
from inferscale.cache.lexicon import default_lexicon
from inferscale.cache.scope import EMBED_CHARS, build_query
from inferscale.cache.semantic import SemanticCache
from inferscale.cache.textdiff import profile
from inferscale.db import Database
from inferscale.embeddings import Embedder
from inferscale.errors import InvalidPromptError

_EMBEDDER = Embedder()


def _cache(home: Path) -> SemanticCache:
    # Every scope in Chroma from its first entry, so these tests keep SQLite and Chroma in step;
    # tests/test_scope_search.py covers scopes searched in-process and their promotion.
    return SemanticCache(Database(home / "t.db"), ChromaIndex(home / "chroma"), _EMBEDDER, max_scope=0)


def _q(text: str, history: list[tuple[str, str]] = (), **scope) -> object:
    msgs = [{"role": r, "content": c} for r, c in history] + [{"role": "user", "content": text}]
    return build_query(msgs, **({"strategy": "single"} | scope))


def _orphans(cache: SemanticCache) -> tuple[set[str], set[str]]:
    in_sql = {r[0] for r in cache._dbh.db.execute("SELECT key FROM semantic_index").fetchall()}
    entries = {r[0] for r in cache._dbh.db.execute("SELECT key FROM cache_entries WHERE level='L1'")}
    assert in_sql == entries, "semantic_index rows and L1 entries out of step"
    in_chroma = cache.index.ids()
    return in_chroma - in_sql, in_sql - in_chroma


def test_paraphrase_hits_and_records_what_it_matched(home: Path) -> None:
    cache = _cache(home)
    cache.put(_q("How do I reset my library PIN?"), {"answer": "Use the reset link."}, 0.002, 900)
    r = cache.lookup(_q("how can I reset my library PIN"))
    assert r.match is not None
    assert r.match.value == {"answer": "Use the reset link."}
    assert r.match.matched_prompt == "How do I reset my library PIN?"
    assert 0.9 < r.match.similarity <= 1.0001
    assert r.match.cost_usd == pytest.approx(0.002)


def test_a_full_rewrite_is_judged_by_meaning_an_edit_by_the_words_it_swaps(home: Path) -> None:
    cache = _cache(home)
    cache.put(_q("Do you have bike storage?"), {"answer": "Yes, behind the hall."}, 0.0, 10)
    r = cache.lookup(_q("Is there somewhere to leave my bicycle?"))  # shares almost no wording: a rewrite
    assert r.match is not None and r.match.reason.startswith("rewritten"), r
    assert r.match.similarity < 0.85  # served below the edit threshold, because it is a rewrite
    cache.put(_q("What jabs does my lamb need?"), {"answer": "..."}, 0.0, 10)
    r = cache.lookup(_q("What jabs does my calf need?"))  # one word swapped: an edit
    assert r.match is None and any("sister terms" in x for x in r.rejected), r


def test_opposites_come_from_wordnet_and_synonyms_are_never_opposites() -> None:
    lex = default_lexicon()
    assert lex.opposite("open", "shut") and lex.opposite("wet", "dry") and lex.opposite("add", "subtract")
    assert lex.opposite("safe", "unsafe")  # through a synonym of the antonym ("dangerous")
    assert lex.opposite("soaked", "dry")  # an adjective's satellite shares its head's antonym
    assert not lex.opposite("close", "shut") and not lex.opposite("large", "big")
    assert not lex.opposite("bread", "ocean") and not lex.opposite("zxqv", "open")


def test_a_number_in_words_is_the_number() -> None:
    assert profile("I'm twenty-three and hoping to rent a van").numbers == {"23"}
    assert profile("twenty three pounds").numbers == profile("£23").numbers
    assert profile("twenty, three of them").numbers == {"20", "3"}  # two numbers, not one


def test_one_that_counts_nothing_is_not_a_number(home: Path) -> None:
    cache = _cache(home)
    cache.put(_q("How can I order a spare bike lock key?"), {"answer": "In the app."}, 0.0, 10)
    r = cache.lookup(_q("Hi, quick one: how can I order a spare bike lock key?"))
    assert r.match is not None, r
    cache.put(_q("Can I get 8 in an order?"), {"answer": "yes"}, 0.0, 10)
    assert cache.lookup(_q("Can I get 8 in one order?")).match is None  # here "one" counts


@pytest.mark.parametrize(("cached", "new"), [
    ("Trace parcel 70512", "Trace parcel 70521"),  # IDs differ
    ("Can I cancel within 14 days?", "Can I cancel within 30 days?"),  # numbers
    ("Is paracetamol safe to take with coffee?", "Is paracetamol unsafe to take with coffee?"),  # negation
    ("Which tariffs include roaming texts?", "Which tariffs don't include roaming texts?"),
    ("How do I shift funds from savings to my current account?",
     "How do I shift funds from my current account to savings?"),  # swapped roles
    ("What's the luggage limit on Eurostar?", "What's the luggage limit on Flybe?"),  # entity
    ("What are the signs of measles?", "What are the signs of measles in toddlers?"),  # narrower scope
    ("How do I turn on notifications?", "How do I turn off notifications?"),  # particle flip
    ("Is 7 greater than 3?", "Is 3 greater than 7?"),  # same numbers, another order
    ("engine 0 request 2", "engine 2 request 0"),
    # direction
    ("How do I raise the spending cap on my fuel card?", "How do I lower the spending cap on my fuel card?"),
    ("How much stamp duty is due on a first home?", "How much stamp duty is due on a second home?"),
])
def test_near_duplicates_that_ask_something_else_never_hit(home: Path, cached: str, new: str) -> None:
    cache = _cache(home)
    cache.put(_q(cached), {"answer": "x"}, 0.0, 10)
    r = cache.lookup(_q(new))
    assert r.match is None and r.candidates == 1 and r.rejected, r


def test_scope_system_prompt_params_and_conversation(home: Path) -> None:
    cache = _cache(home)
    gym = [("user", "My PulseFit gym membership costs too much."),
           ("assistant", "Your PulseFit Off-Peak plan is £24.99 a month. Cancel it?")]
    tv = [("user", "I barely use my Vidora streaming subscription."),
          ("assistant", "Your Vidora Basic tier renews on day 14 for £10.99. Cancel it?")]
    cache.put(_q("cancel it", gym), {"answer": "gym cancelled"}, 0.0, 10)
    assert cache.lookup(_q("cancel it", gym)).match is not None  # the same conversation
    assert cache.lookup(_q("cancel it", tv)).match is None  # same last message, other chat
    assert cache.lookup(_q("cancel it")).match is None  # no conversation at all
    cache.put(_q("What is WAL mode?"), {"answer": "a"}, 0.0, 10)
    assert cache.lookup(_q("What is WAL mode?", strategy="ensemble")).match is None
    assert cache.lookup(_q("What is WAL mode?", params={"temperature": 1.0})).match is None
    sys_q = build_query([{"role": "system", "content": "Answer in French."},
                         {"role": "user", "content": "What is WAL mode?"}], strategy="single")
    assert cache.lookup(sys_q).match is None


def test_a_question_that_stands_alone_ignores_unrelated_earlier_turns(home: Path) -> None:
    cache = _cache(home)
    repair = [("user", "my tablet charger stopped working, does Kestrel swap them?"),
              ("assistant", "We do, through Kestrel Care. Book online or in any of our shops.")]
    usage = [("user", "how do I see my call minutes on Kestrel?"),
             ("assistant", "Open the Kestrel app; the meter on its first screen shows it.")]
    question = "What's the notice period for leaving a Kestrel fibre contract?"
    cache.put(_q(question, repair), {"answer": "14 days"}, 0.0, 10)
    r = cache.lookup(_q(question, usage))
    assert r.match is not None and "stands alone" in r.match.reason, r
    # A question that points back ("it") is never one that stands alone.
    cache.put(_q("How much does it cost monthly on Kestrel?", repair), {"answer": "£5"}, 0.0, 10)
    assert cache.lookup(_q("How much does it cost monthly on Kestrel?", usage)).match is None


def test_a_specific_question_ends_two_chats_the_same_a_pointer_does_not(home: Path) -> None:
    cache = _cache(home)
    rent = [("user", "Hi, my gym fee was taken twice this month"),
            ("assistant", "Sorry about that, I've asked accounts to refund the second payment.")]
    pets = [("user", "Do you allow parrots in your cottages?"),
            ("assistant", "Cats and small dogs, with the landlord's written consent.")]
    # Names nothing and points at nothing, but says what it asks about: the earlier turns of two
    # chats do not change its answer ("is there": existential, "this year": a time).
    for question in ("Is there free wifi in your offices?",
                     "When's the deadline to join the bike purchase plan this year?"):
        cache.put(_q(question, rent), {"answer": "..."}, 0.0, 10)
        r = cache.lookup(_q(question, pets))
        assert r.match is not None and "says what it asks about" in r.match.reason, (question, r)
    # Only light words around one noun: which refund is in the earlier turns.
    cache.put(_q("how long will the reimbursement take?", rent), {"answer": "3 days"}, 0.0, 10)
    assert cache.lookup(_q("how long will the reimbursement take?", pets)).match is None
    # Against a fresh prompt a chat still differs: "the office" may be one the chat named.
    assert cache.lookup(_q("Is there free wifi in your offices?")).match is None
    # The same chat with a fact changed in it is a different chat, whatever the question.
    order = [("user", "I ordered the Ardwick boots in size 8"), ("assistant", "Found your order.")]
    other = [("user", "I ordered the Ardwick boots in size 9"), ("assistant", "Found your order.")]
    cache.put(_q("what is the return period on discounted items?", order), {"answer": "28 days"}, 0.0, 10)
    r = cache.lookup(_q("what is the return period on discounted items?", other))
    assert r.match is None and any("turn 1 differs" in x for x in r.rejected), r


def test_a_rewrite_may_carry_a_negation_an_edit_may_not(home: Path) -> None:
    cache = _cache(home)
    cache.put(_q("How can I reset my Outlook passcode?"), {"answer": "Use the reset page."}, 0.0, 10)
    r = cache.lookup(_q("I can't recall my Outlook passcode, how do I log back on?"))
    assert r.match is not None and "negation on one side only" in r.match.reason, r
    assert r.match.similarity >= 0.85  # judged at the configured threshold, not the rewrite one
    cache.put(_q("Is it safe to eat raw eggs when pregnant?"), {"answer": "..."}, 0.0, 10)
    r = cache.lookup(_q("Is it not safe to eat raw eggs when pregnant?"))
    assert r.match is None and any("negation" in x for x in r.rejected), r


def test_conversations_compared_turn_by_turn(home: Path) -> None:
    cache = _cache(home)
    filler = [("assistant", "Thanks for waiting, still checking."), ("user", "no rush"),
              ("assistant", "Sorry, the system is slow today."), ("user", "that's fine")]

    def chat(order: str) -> list[tuple[str, str]]:
        return [("user", f"Hi, I'm chasing order {order}, it was due yesterday"),
                ("assistant", f"Order {order} is a navy parka sent with Parcelway on Monday."), *filler,
                ("assistant", "Almost done.")]
    cache.put(_q("so where is it now?", chat("58316")), {"answer": "depot"}, 0.0, 10)
    # The same words everywhere but the order number, set in the first turns: not the same question.
    r = cache.lookup(_q("so where is it now?", chat("58361")))
    assert r.match is None and any("turn 1 differs" in x for x in r.rejected), r
    assert cache.lookup(_q("so where is it now?", chat("58316"))).match is not None

    def offer(first: str, second: str) -> list[tuple[str, str]]:
        return [("user", "my bin wasn't emptied and the lid is cracked"),
                ("assistant", f"I can either 1) {first}, or 2) {second}. Which would you like?")]
    a, b = "report a missed collection", "request a replacement bin"
    cache.put(_q("the second option please", offer(a, b)), {"answer": "reported"}, 0.0, 10)
    # A bare reply picks what the preceding turn offered: the offers swapped order, so it misses.
    assert cache.lookup(_q("the second option please", offer(b, a))).match is None
    assert cache.lookup(_q("the second option please", offer(a, b))).match is not None

    def later(plan: str) -> list[tuple[str, str]]:
        return [("user", "my council tax is due"),
                ("assistant", f"Once your move is noted, would you like me to {plan}?"), *filler,
                ("assistant", "Did you get time to consider what I suggested?")]
    cache.put(_q("sure, sounds good then", later("extend your payments to March")), {"answer": "ok"}, 0.0, 10)
    # The offer the reply accepts sits turns back; the turn just before is the same on both sides.
    assert cache.lookup(_q("sure, sounds good then", later("move your direct debit to the 28th"))).match is None


def test_eviction_by_capacity_keeps_chroma_and_sqlite_together(home: Path) -> None:
    cache = _cache(home)
    keys = [cache.put(_q(f"What is the capital of country number {i}?"), {"answer": str(i)},
                      1.0 if i == 7 else 0.001, 100) for i in range(8)]
    for _ in range(3):  # hits raise an entry's priority
        assert cache.lookup(_q("What is the capital of country number 0?")).match.key == keys[0]
    evicted = cache.evict(Limits(max_entries=5, max_bytes=10**9, ttl_s=0))
    assert len(evicted) == 3 and all(e.reason == "entries" for e in evicted)
    # GDSF: the often-hit entry and the expensive one survive; cheap, unused ones go first
    assert not {keys[0], keys[7]} & {e.key for e in evicted}
    assert cache.count() == 5 and cache.index.count() == 5
    assert _orphans(cache) == (set(), set())
    logged = cache._dbh.db.execute("SELECT COUNT(*) FROM cache_evictions WHERE level='L1'").fetchone()[0]
    assert logged == 3
    # bytes and TTL
    assert cache.evict(Limits(max_entries=100, max_bytes=1, ttl_s=0))
    assert cache.count() == 0 and cache.index.count() == 0
    cache.put(_q("How do I book a chimney sweep?"), {"answer": "b"}, 0.0, 10)
    assert [e.reason for e in cache.evict(Limits(100, 10**9, ttl_s=1e-9))] == ["ttl"]
    assert _orphans(cache) == (set(), set())


def test_reconcile_repairs_a_crash_between_the_two_writes(home: Path) -> None:
    cache = _cache(home)
    k1 = cache.put(_q("How can I extend my library loans?"), {"answer": "1"}, 0.0, 1)
    k2 = cache.put(_q("Where do I find the lost-and-found desk?"), {"answer": "2"}, 0.0, 1)
    with cache._dbh.tx() as db:  # a row lost without its vector
        db.execute("DELETE FROM cache_entries WHERE key = ?", [k1])
    cache.index.delete([k2])  # a vector lost without its row
    assert cache.reconcile() == {"removed_vectors": 1, "added_vectors": 1}
    assert _orphans(cache) == (set(), set())
    assert cache.lookup(_q("Where do I find the lost-and-found desk?")).match is not None


def test_corrupt_or_missing_chroma_dir_is_rebuilt_from_sqlite(home: Path) -> None:
    cache = _cache(home)
    cache.put(_q("How do I change my smart meter display PIN?"), {"answer": "r"}, 0.0, 1)
    del cache
    chroma = home / "chroma"
    for f in chroma.rglob("*"):
        if f.is_file():
            f.write_bytes(b"not a database")
    reopened = _cache(home)
    r = reopened.lookup(_q("How do I change my smart meter display PIN?"))
    assert r.match is not None and r.error is None
    assert any(p.name.startswith("chroma.broken-") for p in home.iterdir())
    # a missing directory at the next start: rebuilt the same way. A start is a new process; in this
    # one, Chroma keeps a system per path until told to forget it, whenever `reopened` is collected.
    import shutil

    reopened._dbh.close()
    del reopened
    _forget_system(chroma)
    shutil.rmtree(chroma)
    again = _cache(home)
    assert again.lookup(_q("How do I change my smart meter display PIN?")).match is not None


def test_the_old_shared_collection_is_replaced_by_one_per_scope(home: Path) -> None:
    cache = _cache(home)
    q = _q("How do I renew my residents' parking permit?")
    key = cache.put(q, {"answer": "online"}, 0.0, 1)
    client = cache.index._client
    client.delete_collection(collection_name(q.scope_key))  # the layout before per-scope collections
    client.create_collection(LEGACY_COLLECTION, embedding_function=None).add(
        ids=[key], embeddings=[[1.0] + [0.0] * 383], metadatas=[{"scope": q.scope_key}])
    cache._dbh.close()
    del cache
    _forget_system(home / "chroma")  # what a restart does: Chroma keeps one system per path
    reopened = _cache(home)
    r = reopened.lookup(q)
    assert r.match is not None and r.match.value == {"answer": "online"}
    names = {c.name for c in reopened.index._client.list_collections()}
    assert names == {collection_name(q.scope_key)}  # the legacy one is gone, its vector re-added
    assert _orphans(reopened) == (set(), set())


def test_restart_keeps_entries(home: Path) -> None:
    cache = _cache(home)
    cache.put(_q("What time does the ice rink open on Tuesdays?"), {"answer": "7am"}, 0.0, 1)
    cache._dbh.close()
    del cache
    r = _cache(home).lookup(_q("What time does the ice rink open on Tuesdays"))
    assert r.match is not None and r.match.value == {"answer": "7am"}


def test_concurrent_writers_lose_nothing(home: Path) -> None:
    cache = _cache(home)
    texts = [f"Question {w}-{i}: how do I configure feature {w * 100 + i}?"
             for w in range(4) for i in range(6)]
    _EMBEDDER.embed(texts)  # warm the memo so threads race on the stores, not on the model

    def writer(w: int) -> None:
        for i in range(6):
            cache.put(_q(texts[w * 6 + i]), {"answer": f"{w}-{i}"}, 0.0, 1)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.count() == 24 and cache.index.count() == 24
    assert _orphans(cache) == (set(), set())


def test_bad_input_gives_clear_errors_and_huge_text_is_safe(home: Path) -> None:
    with pytest.raises(InvalidPromptError, match="empty"):
        _q("   ")
    with pytest.raises(InvalidPromptError, match="UTF-8"):
        _q("broken \udcff surrogate")
    with pytest.raises(InvalidPromptError, match="UTF-8"):
        build_query([{"role": "user", "content": b"\xff\xfe bad bytes"}])
    cache = _cache(home)
    huge = "Explain this log line by line. " + "x" * 2_000_000
    q1, q2 = _q(huge), _q(huge + "y")
    assert len(q1.last) == EMBED_CHARS and q1.exact_hash != q2.exact_hash  # key on the whole text
    cache.put(q1, {"answer": "long"}, 0.0, 1)
    assert cache.lookup(q1).match is not None  # the same whole text
    assert cache.lookup(q2).match is None  # same prefix, different text: never served
