"""`Engine.warm_up` loads what a first request would wait for, once per engine."""

from __future__ import annotations

from inferscale.providers import llm


def test_warm_up_loads_litellm_and_the_analysis_once(make_engine) -> None:
    engine = make_engine()
    assert engine.warm_up(background=False) is None
    assert llm._litellm is not None  # imported and configured
    assert engine.analyzer._proto is not None  # the domain prototypes are embedded
    assert engine.embedder.memoised(["warm up"]) is not None  # the exact graph has run
    assert engine.warm_up() is None  # a second call starts nothing


def test_a_new_prompt_runs_the_fast_graph_once_for_the_analysis_and_the_l1_search(make_engine, monkeypatch) -> None:
    from inferscale import embeddings

    engine = make_engine()
    emb = engine.embedder
    assert emb.fast is not None
    engine.analyzer.analyze("warm the prototypes")
    graph = embeddings._load(emb.backend, emb.fast)
    encoded: list[list[str]] = []
    real = graph.encode
    monkeypatch.setattr(graph, "encode", lambda texts: encoded.append(list(texts)) or real(texts))
    engine.analyzer.analyze("a question about the tides of the northern sea")
    first = emb.embed_fast(["a question about the tides of the northern sea"])
    assert encoded == [["a question about the tides of the northern sea"]]  # the second call is memoised
    fresh = real(["a question about the tides of the northern sea"])
    assert abs(float(first[0] @ fresh[0]) - 1.0) < 1e-5
    # Approximate vectors never stand in for exact ones.
    assert emb.memoised(["a question about the tides of the northern sea"]) is None


def test_a_background_warm_up_is_waited_for_at_exit_not_frozen_mid_import(make_engine) -> None:
    thread = make_engine().warm_up()
    assert thread is not None and not thread.daemon  # see `orchestration/runner.shutdown`
    thread.join(120)
    assert not thread.is_alive() and llm._litellm is not None
