"""Complexity analysis with the real MiniLM embeddings: bounded, ordered, explainable."""

from __future__ import annotations

import pytest

from inferscale.analysis import Analyzer, approx_tokens
from inferscale.embeddings import Embedder
from inferscale.errors import InferscaleError

SIMPLE = "What is the capital of France?"
HARD = (
    "Compare the trade-offs between event sourcing and a conventional relational schema for a "
    "payments ledger, explain why each choice affects auditability, and justify a recommendation "
    "step by step. You must cite at least three failure modes, the answer must not exceed 300 words, "
    "format it as a table followed by exactly two bullet points, and do not mention any vendor by "
    "name. Then analyze the implications for regulatory reporting and derive a migration plan that "
    "never requires downtime, evaluating each step against these constraints."
)
CODE = "Write a Python function `def merge(a, b):` that merges two sorted lists and returns the result."
PROMPTS = [SIMPLE, HARD, CODE, "hi", "Solve for x: 3x + 7 = 22.", "Write a haiku about autumn.", "a" * 5000]


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer(Embedder())


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p[:20])
def test_score_is_in_unit_interval_and_explained(analyzer: Analyzer, prompt: str) -> None:
    a = analyzer.analyze(prompt)
    assert 0.0 <= a.score <= 1.0
    assert sum(c for _, c, _ in a.breakdown) == pytest.approx(a.score, abs=1e-3)
    assert all(c >= 0 for _, c, _ in a.breakdown)
    assert a.domain in dict(a.domain_scores)
    assert a.domain_scores[0][0] == a.domain  # sorted best first
    assert a.tokens == approx_tokens(prompt)
    assert a.explain().startswith(f"complexity {a.score:.2f} [{a.domain}]")


def test_hard_prompt_scores_higher_than_a_simple_one(analyzer: Analyzer) -> None:
    simple, hard = analyzer.analyze(SIMPLE), analyzer.analyze(HARD)
    assert hard.score > simple.score + 0.3
    features = {name: c for name, c, _ in hard.breakdown}
    assert features["reasoning"] > 0 and features["constraints"] > 0 and features["length"] > 0
    assert simple.domain == "factual"


def test_code_prompt_gets_the_code_feature(analyzer: Analyzer) -> None:
    code, plain = analyzer.analyze(CODE), analyzer.analyze(SIMPLE)
    assert dict((n, c) for n, c, _ in code.breakdown)["code"] > 0
    assert dict((n, c) for n, c, _ in plain.breakdown)["code"] == 0
    assert code.domain == "code" and code.capability == "code"


def test_system_prompt_counts_towards_the_analysis(analyzer: Analyzer) -> None:
    bare = analyzer.analyze(SIMPLE)
    with_system = analyzer.analyze(SIMPLE, system="You must answer in exactly one word and never explain.")
    assert with_system.tokens > bare.tokens
    assert with_system.score > bare.score


def test_analysis_is_deterministic(analyzer: Analyzer) -> None:
    assert analyzer.analyze(HARD) == analyzer.analyze(HARD)


def test_out_of_range_score_is_rejected() -> None:
    from inferscale.types import Analysis

    with pytest.raises(ValueError):
        Analysis(score=1.5, domain="chat", tokens=1, capability="chat", breakdown=())


def test_both_embedding_backends_give_the_same_vectors() -> None:
    texts = [SIMPLE, HARD, CODE, "hi", "é" * 40, "a" * 9000]
    onnx, torch = Embedder(backend="onnx-int8").embed(texts), Embedder(backend="torch").embed(texts)
    assert onnx.shape == torch.shape == (len(texts), 384)
    assert ((onnx * torch).sum(axis=1) > 0.99).all()  # int8 weights, same model: equivalent vectors
    assert abs(float((onnx * onnx).sum(axis=1).mean()) - 1.0) < 1e-4  # unit length
    with pytest.raises(InferscaleError, match="unknown embedding backend 'bert'"):
        Embedder(backend="bert")
