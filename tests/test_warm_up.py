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
