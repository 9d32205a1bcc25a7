"""Per-request cache control: partitions that never share an entry at any level, no-cache,
no-store, a request's own max age, and where a request came from."""

from __future__ import annotations

import time

from inferscale.types import CacheControl
from tests.support.fakes import fake_model


def _levels(result) -> str | None:
    return result.cache.level if result.cache else None


def test_a_namespace_never_sees_another_namespaces_entries(make_engine, server):
    engine = make_engine(fake_model("fake-echo"))
    a, b = CacheControl(namespace="tenant-a"), CacheControl(namespace="tenant-b")
    first = engine.ask("how do tides work?", models=["fake-echo"], cache=a)
    assert first.cache is None
    # Same prompt, same models, other partition: a miss at every level, the model is called again.
    other = engine.ask("how do tides work?", models=["fake-echo"], cache=b)
    assert other.cache is None and not any(m.cached for m in other.members)
    # A reworded prompt in the other partition must not be served semantically from the first either.
    reworded = engine.ask("How do tides work?", models=["fake-echo"],
                          cache=CacheControl(namespace="tenant-c"))
    assert reworded.cache is None
    assert server.calls["echo"] == 3
    # Within a partition the entry is served; an unpartitioned request does not see it.
    again = engine.ask("how do tides work?", models=["fake-echo"], cache=a)
    assert _levels(again) == "L4"
    plain = engine.ask("how do tides work?", models=["fake-echo"])
    assert plain.cache is None
    assert server.calls["echo"] == 4


def test_no_cache_reads_nothing_but_still_stores_and_no_store_writes_nothing(make_engine, server):
    engine = make_engine(fake_model("fake-echo"))
    engine.ask("what is a heap?", models=["fake-echo"])
    fresh = engine.ask("what is a heap?", models=["fake-echo"], cache=CacheControl(read=False))
    assert fresh.cache is None and server.calls["echo"] == 2
    engine.ask("what is a trie?", models=["fake-echo"], cache=CacheControl(write=False))
    again = engine.ask("what is a trie?", models=["fake-echo"])
    assert again.cache is None, "a no-store request must leave nothing behind"
    assert _levels(engine.ask("what is a trie?", models=["fake-echo"])) == "L4"


def test_a_requests_max_age_narrows_the_level_ttl(make_engine, server):
    engine = make_engine(fake_model("fake-echo"))
    engine.ask("explain quicksort", models=["fake-echo"])
    time.sleep(0.3)
    stale = engine.ask("explain quicksort", models=["fake-echo"], cache=CacheControl(ttl_s=0.1))
    assert stale.cache is None
    fresh_enough = engine.ask("explain quicksort", models=["fake-echo"], cache=CacheControl(ttl_s=60))
    assert _levels(fresh_enough) == "L4"


def test_source_and_tenant_are_recorded(make_engine):
    engine = make_engine(fake_model("fake-echo"))
    r = engine.ask("where did I come from?", models=["fake-echo"], source="gateway", tenant="team-blue")
    row = engine.database.db.execute("SELECT source, tenant FROM requests WHERE id = ?",
                                     [r.request_id]).fetchone()
    assert tuple(row) == ("gateway", "team-blue")
    r2 = engine.ask("and me?", models=["fake-echo"])
    assert engine.database.db.execute("SELECT source, tenant FROM requests WHERE id = ?",
                                      [r2.request_id]).fetchone() == ("api", None)
