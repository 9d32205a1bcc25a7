"""The real local models (SmolLM2 and Gemma 3 via llama.cpp), loaded once for the whole module.

Answers are never compared with fixed text: tiny models are only checked for being non-empty,
measured and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferscale import Engine, Settings
from inferscale.orchestration.runner import run_sync
from inferscale.providers.llm import litellm_module

pytestmark = pytest.mark.local_models

SMOL = "local/smollm2-135m-instruct"
GEMMA = "local/gemma-3-270m"
CAPITAL = "What is the capital of France?"


@pytest.fixture(scope="module")
def local_engine(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Engine]:
    """One engine (so one load of each GGUF) shared by every test here, on its own home."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INFERSCALE_MODELS_DIR", str(models_dir))
        engine = Engine(Settings.from_env(tmp_path_factory.mktemp("local-home")))
        engine.tunables_store.set("max_tokens", "32")
        yield engine


def _calls(engine: Engine, model: str | None = None) -> int:
    if model is None:
        return engine.monitor.count("model_calls")
    return engine.monitor.count("model_calls", "model = ?", [model])


def test_default_routing_answers_from_smollm2(local_engine: Engine) -> None:
    result = local_engine.ask(CAPITAL)

    assert result.routing.models == (SMOL,)  # simplest prompt → weakest local model
    (member,) = result.members
    assert member.ok and member.model == SMOL and not member.cached
    assert result.answer.strip() and result.answer == member.answer
    assert member.tokens_in > 5  # the real chat-templated prompt, counted by llama.cpp
    assert 0 < member.tokens_out <= 32
    assert member.cost_usd > 0 and result.cost_usd == member.cost_usd

    row = next(local_engine.database.db.query("SELECT * FROM requests WHERE id = ?", [result.request_id]))
    assert row["status"] == "ok" and row["answer"] == result.answer and row["cost_usd"] > 0
    call = next(local_engine.database.db.query(
        "SELECT * FROM model_calls WHERE request_id = ?", [result.request_id]))
    got = (call["model"], call["tokens_in"], call["tokens_out"])
    assert got == (SMOL, member.tokens_in, member.tokens_out)


def test_repeated_ask_is_an_l4_hit(local_engine: Engine) -> None:
    first = local_engine.ask(CAPITAL)  # a hit already if the test above ran; a miss otherwise
    calls_before = _calls(local_engine)

    again = local_engine.ask(CAPITAL)

    assert again.to_json()["cache"]["level"] == "L4"
    assert again.answer == first.answer
    assert again.cost_usd == 0.0
    assert _calls(local_engine) == calls_before


def test_ensemble_of_both_local_models(local_engine: Engine) -> None:
    result = local_engine.ask("Name three primary colors.", strategy="ensemble", models=[SMOL, GEMMA])

    assert [m.model for m in result.members] == [SMOL, GEMMA]
    assert all(m.ok and m.answer and m.tokens_out > 0 and m.cost_usd > 0 for m in result.members)
    assert result.confidence is not None and 0.0 <= result.confidence <= 1.0
    assert result.answer in {m.answer for m in result.members}
    assert _calls(local_engine, GEMMA) >= 1


def test_litellm_streams_a_local_model(local_engine: Engine) -> None:
    litellm = litellm_module(local_engine.settings)

    async def collect() -> list:
        stream = await litellm.acompletion(
            model=SMOL, messages=[{"role": "user", "content": "Count from one to ten."}],
            stream=True, max_tokens=16,
        )
        return [chunk async for chunk in stream]

    chunks = run_sync(collect(), timeout=120)
    text = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text) >= 3
    assert "".join(text).strip()


def test_litellm_prices_a_local_response(local_engine: Engine) -> None:
    litellm = litellm_module(local_engine.settings)
    resp = litellm.completion(model=SMOL, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8)
    assert resp.choices[0].message.content.strip()
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert litellm.completion_cost(completion_response=resp) > 0


def test_streaming_ask_emits_tokens_from_a_local_model(local_engine: Engine) -> None:
    events = []
    result = local_engine.ask("Name a fruit.", models=[SMOL], use_cache=False, on_event=events.append)
    tokens = [e.text for e in events if e.kind == "token" and e.model == SMOL]
    assert len(tokens) >= 2
    assert "".join(tokens).strip() == result.answer
    assert result.members[0].tokens_in > 0 and result.members[0].tokens_out > 0
